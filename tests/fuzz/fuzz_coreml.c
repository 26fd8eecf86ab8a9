/*
 * fuzz_coreml.c - Core ML .mlmodel protobufs from memory: the Model, network
 * and layer messages walked by descriptor, WeightParams and layer shapes.
 * Every tensor of a file that opens is read and hashed.
 */
#include "fuzz_open.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_open_and_read(data, size, "fuzz.mlmodel", "coreml");
    return 0;
}
