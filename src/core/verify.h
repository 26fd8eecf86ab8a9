/*
 * verify.h - a source's deferred checksums (graft_tensor.check), verified
 * on a second thread while a transplant reads the same tensors.
 *
 * A source opened with deferred checks is not read whole at open; here its
 * tensors' CRCs run beside the transform instead of before it, and every
 * sink's commit (graft_sink_commit) waits for them through ctx->verify, so
 * no output is put in place from bytes that failed their checksum.
 */
#ifndef GRAFT_CORE_VERIFY_H
#define GRAFT_CORE_VERIFY_H

#include "model.h"

typedef struct graft_verify graft_verify;

/* Verify the tensors of m with want[i] set (all when want is NULL) that
 * have a check; m's reads skip those checks until graft_verify_end.  With
 * nothing to check, *out is NULL.  Without a thread the checks run here. */
int graft_verify_start(graft_verify **out, graft_model *m, const bool *want, graft_ctx *ctx);
/* Wait for the checks; the first failure, named by file and tensor. */
int graft_verify_wait(graft_verify *v, graft_ctx *ctx);
/* Finish: after a failure (rc < 0) stop the checks and return rc; else
 * wait for them and return their result.  Frees v; NULL returns rc. */
int graft_verify_end(graft_verify *v, int rc, graft_ctx *ctx);

#endif
