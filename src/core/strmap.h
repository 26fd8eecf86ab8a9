/*
 * strmap.h - the one string-keyed hash map: byte-string keys to entry
 * indices, for tables whose entries (and keys) live in an array the caller
 * owns (tensor names, graph nodes, rule pairs, renamed keys).
 *
 * Open addressing with linear probing, FNV-1a 64 hashes, kept at most half
 * full.  A slot holds entry index + 1; the key of an entry is asked from the
 * caller's key function, so the map holds no copies of keys and stays valid
 * when the caller's array moves (realloc).
 */
#ifndef GRAFT_CORE_STRMAP_H
#define GRAFT_CORE_STRMAP_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define GRAFT_STRMAP_NONE SIZE_MAX  /* "no such entry" */

/* The key of entry i: its bytes, and their count in *len. */
typedef const char *(*graft_strmap_key_fn)(const void *owner, size_t i, size_t *len);

typedef struct graft_strmap {
    size_t *slot;               /* cap slots: entry index + 1, 0 = empty; owned */
    size_t cap;                 /* a power of two; 0 before the first reserve */
    size_t count;               /* entries held */
    graft_strmap_key_fn key;    /* how to read entry i's key */
    const void *owner;          /* handed to key; borrowed */
} graft_strmap;

/* An empty map (no allocation). */
void graft_strmap_init(graft_strmap *m, graft_strmap_key_fn key, const void *owner);
/* Room for n entries in all (rehashing those held); GRAFT_ENOMEM on failure,
 * leaving the map as it was. */
int graft_strmap_reserve(graft_strmap *m, size_t n, graft_ctx *ctx);
/* Add entry i, after a reserve that counted it.  If an entry with the same
 * key is held, nothing changes and its index is returned; otherwise
 * GRAFT_STRMAP_NONE. */
size_t graft_strmap_put(graft_strmap *m, size_t i);
/* The entry whose key is the n bytes at key, or GRAFT_STRMAP_NONE. */
size_t graft_strmap_find(const graft_strmap *m, const char *key, size_t n);
/* The same for a NUL-terminated key. */
size_t graft_strmap_get(const graft_strmap *m, const char *key);
/* Free the slots; the map is empty again and may be reused. */
void graft_strmap_free(graft_strmap *m);

/* A key function for an array of NUL-terminated strings (owner: const char *const *). */
const char *graft_strmap_key_strv(const void *owner, size_t i, size_t *len);
/* An empty map over the strings keys[0 .. n-1] (borrowed), with room for all n. */
int graft_strmap_init_strv(graft_strmap *m, const char *const *keys, size_t n, graft_ctx *ctx);

#endif
