/*
 * tf_table.h - TensorFlow's immutable sorted key/value table (LevelDB's
 * table format without filter blocks), the container of a checkpoint's
 * `.index` file.  Reader and byte-exact writer; see tf_table.c for the layout.
 */
#ifndef GRAFT_FORMATS_TF_TABLE_H
#define GRAFT_FORMATS_TF_TABLE_H

#include "error.h"
#include "sink.h"
#include "source.h"

#define GRAFT_TF_TABLE_MAGIC 0xdb4775248b80fb57ull
#define GRAFT_TF_FOOTER_SIZE 48
#define GRAFT_TF_MASK_DELTA 0xa282ead8u

/* One entry; key and val are borrowed from the table (or the file). */
typedef struct graft_tf_kv {
    const char *key;       /* not NUL-terminated when it holds NULs; key[key_len] is 0 */
    size_t key_len;
    const uint8_t *val;    /* in the mapped file, or in a decompressed block */
    size_t val_len;
    uint64_t val_off;      /* file offset of val, or of its block when compressed */
} graft_tf_kv;

typedef struct graft_tf_table {
    graft_tf_kv *kv;       /* count entries in key order; owned */
    size_t count, cap;
    char *keys;            /* storage for the keys; owned */
    size_t keys_len, keys_cap;
    uint8_t **blocks;      /* decompressed Snappy blocks; owned */
    size_t nblocks, blocks_cap;
    bool snappy;           /* some block was Snappy-compressed */
    const graft_source *src; /* the mapped file, whose checked pages are let go, or NULL */
} graft_tf_table;

/* Parse and check a whole table: footer, every block's CRC, key order. */
int graft_tf_table_open(graft_tf_table **out, const uint8_t *data, size_t size,
                        graft_ctx *ctx);
/* The same over a whole mapped source, letting its pages go once checked
 * (values stay readable: they are faulted in again when used). */
int graft_tf_table_open_source(graft_tf_table **out, const graft_source *src, graft_ctx *ctx);
void graft_tf_table_free(graft_tf_table *t);

/* CRC masking as TensorFlow and LevelDB store every checksum. */
static inline uint32_t graft_tf_mask(uint32_t c)
{
    return ((c >> 15) | (c << 17)) + GRAFT_TF_MASK_DELTA;
}
static inline uint32_t graft_tf_unmask(uint32_t m)
{
    uint32_t r = m - GRAFT_TF_MASK_DELTA;
    return (r >> 17) | (r << 15);
}

typedef struct graft_tf_table_options {
    size_t block_size;        /* 262144 in TensorFlow */
    int restart_interval;     /* 16 */
    bool snappy;              /* compress blocks when it saves 1/8 */
} graft_tf_table_options;

#define GRAFT_TF_TABLE_OPTIONS_INIT {262144, 16, false}

typedef struct graft_tf_table_writer graft_tf_table_writer;

/* A writer appending to `sink` (borrowed); keys must be added in strictly
 * increasing bytewise order. */
int graft_tf_table_writer_new(graft_tf_table_writer **out, graft_sink *sink,
                              const graft_tf_table_options *opts, graft_ctx *ctx);
int graft_tf_table_add(graft_tf_table_writer *w, const void *key, size_t key_len,
                       const void *val, size_t val_len);
/* Flush the last block, write the metaindex and index blocks and the footer. */
int graft_tf_table_finish(graft_tf_table_writer *w);
void graft_tf_table_writer_free(graft_tf_table_writer *w);

#endif
