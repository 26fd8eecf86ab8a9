/*
 * fuzz_keras.c - Keras HDF5 (keras-h5, keras3-weights through it) and .keras
 * archives from memory: libhdf5 reads the bytes through its core driver.
 * Every tensor of a file that opens is read and hashed.  Zip inputs of odd
 * size go through keras-named (config.json naming) instead of keras.
 */
#include "fuzz_open.h"
#if GRAFT_WITH_HDF5
#include "h5.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Force the format so every input reaches the Keras readers; odd-sized
     * zips also read config.json (keras-named). */
    const char *format = "keras-h5";

    /* libhdf5 spins on some inputs until the sandbox child's CPU limit
     * (10 s, and up to 30 s of wall clock on a loaded machine) ends it;
     * libFuzzer's 20 s -timeout would fire first and stop the campaign.
     * One second of CPU shows the same refusal at a tenth of the cost. */
#if GRAFT_WITH_HDF5
    graft_h5__base_cpu = 1;
    graft_h5__base_wall = 2;
#endif
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') format = size % 2 ? "keras-named" : "keras";
    fuzz_open_and_read(data, size, "fuzz.h5", format);
    return 0;
}
