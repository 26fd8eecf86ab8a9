/*
 * fuzz_gguf.c - GGUF files from memory: header counts, the key-value walk
 * (strings, arrays, general.alignment), tensor infos (dims, ggml types,
 * block sizes, offsets) and the data-section bounds.  Every tensor of a file
 * that opens is read and hashed.
 */
#include "fuzz_open.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_open_and_read(data, size, "fuzz.gguf", "gguf");
    return 0;
}
