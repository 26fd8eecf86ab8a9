/* sha256.h - SHA-256 (FIPS 180-4), incremental and one-shot. */
#ifndef GRAFT_CORE_SHA256_H
#define GRAFT_CORE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft.h" /* graft_sha256_hex is public */

typedef struct graft_sha256_ctx {
    uint32_t h[8];
    uint64_t total;      /* bytes hashed so far */
    uint8_t buf[64];     /* partial block */
    size_t fill;         /* bytes in buf */
} graft_sha256_ctx;

void graft_sha256_init(graft_sha256_ctx *c);
void graft_sha256_update(graft_sha256_ctx *c, const void *data, size_t n);
void graft_sha256_final(graft_sha256_ctx *c, uint8_t out[32]);
void graft_sha256(const void *data, size_t n, uint8_t out[32]);
/* Tests: switch the CPU's SHA extensions off (false) or back to auto (true).
 * Returns whether they were in use. */
bool graft_sha256__use_hw(bool on);
/* 64 lowercase hex digits and a NUL. */
void graft_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
