/* dtype.c - element type names and sizes. */
#include "graft.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[GRAFT_DTYPE_COUNT] = {
    [GRAFT_DTYPE_INVALID] = {"invalid", 0},
    [GRAFT_FLOAT16] = {"float16", 2},
    [GRAFT_BFLOAT16] = {"bfloat16", 2},
    [GRAFT_FLOAT32] = {"float32", 4},
    [GRAFT_FLOAT64] = {"float64", 8},
    [GRAFT_INT8] = {"int8", 1},
    [GRAFT_INT16] = {"int16", 2},
    [GRAFT_INT32] = {"int32", 4},
    [GRAFT_INT64] = {"int64", 8},
    [GRAFT_UINT8] = {"uint8", 1},
    [GRAFT_UINT16] = {"uint16", 2},
    [GRAFT_UINT32] = {"uint32", 4},
    [GRAFT_UINT64] = {"uint64", 8},
    [GRAFT_BOOL] = {"bool", 1},
    [GRAFT_COMPLEX64] = {"complex64", 8},
    [GRAFT_COMPLEX128] = {"complex128", 16},
    [GRAFT_STRING] = {"string", 0},
    [GRAFT_FLOAT8_E4M3FN] = {"float8_e4m3fn", 1},
    [GRAFT_FLOAT8_E5M2] = {"float8_e5m2", 1},
};

const char *graft_dtype_name(graft_dtype dt)
{
    if ((unsigned)dt >= GRAFT_DTYPE_COUNT) return "invalid";
    return dtypes[dt].name;
}

graft_dtype graft_dtype_from_name(const char *name)
{
    for (int i = 1; i < GRAFT_DTYPE_COUNT; i++)
        if (strcmp(dtypes[i].name, name) == 0) return (graft_dtype)i;
    return GRAFT_DTYPE_INVALID;
}

size_t graft_dtype_size(graft_dtype dt)
{
    if ((unsigned)dt >= GRAFT_DTYPE_COUNT) return 0;
    return dtypes[dt].size;
}
