/*
 * fuzz_tflite.c - TFLite FlatBuffers from memory: the root, vtables, vectors,
 * buffers (inline and offset/size), tensors, quantization parameters, names.
 * Every tensor of a file that opens is read and hashed.
 */
#include "fuzz_open.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* reach the parser whatever the identifier says */
    fuzz_open_and_read(data, size, "fuzz.tflite", "tflite");
    return 0;
}
