/*
 * fuzz_pickle.c - the restricted pickle interpreter alone, then the
 * torch.save tensor walk over whatever value it built.  Must never crash,
 * leak, loop or run anything.
 */
#include "pickle.h"
#include "torch_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    graft_ctx *ctx = graft_ctx_new();
    graft_arena arena;
    graft_pk *root = NULL, *foreign = NULL;
    size_t used = 0;
    if (!ctx) return 0;
    graft_arena_init(&arena, ctx);
    /* lenient, as the torch readers load: whole-model globals reach the walk */
    if (graft_pickle__load_lenient(&root, &foreign, &used, &arena, data, size, 0, ctx) == 0) {
        graft_torch_refs refs;
        (void)graft_torch__collect(&refs, root, foreign, &arena, ctx);
        graft_torch__refs_free(&refs);
    }
    graft_arena_free(&arena);
    graft_ctx_free(ctx);
    return 0;
}
