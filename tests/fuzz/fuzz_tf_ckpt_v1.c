/*
 * fuzz_tf_ckpt_v1.c - TF V1 checkpoints from memory: the table, the meta
 * record, SavedSliceMeta shapes and slices, data records and their values.
 * Every tensor of a file that opens is read and hashed.
 */
#include "fuzz_open.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_open_and_read(data, size, "fuzz.ckpt", "tf-checkpoint-v1");
    return 0;
}
