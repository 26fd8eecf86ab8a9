/* strmap.c - the string-keyed hash map (see strmap.h). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

void graft_strmap_init(graft_strmap *m, graft_strmap_key_fn key, const void *owner)
{
    m->slot = NULL;
    m->cap = 0;
    m->count = 0;
    m->key = key;
    m->owner = owner;
}

/* The slot holding the entry with this key, or the empty slot where it goes. */
static size_t probe(const graft_strmap *m, const char *key, size_t n)
{
    size_t s = (size_t)hash(key, n) & (m->cap - 1);
    for (; m->slot[s]; s = (s + 1) & (m->cap - 1)) {
        size_t len;
        const char *k = m->key(m->owner, m->slot[s] - 1, &len);
        if (len == n && (n == 0 || memcmp(k, key, n) == 0)) break;
    }
    return s;
}

int graft_strmap_reserve(graft_strmap *m, size_t n, graft_ctx *ctx)
{
    size_t cap = m->cap ? m->cap : 16;
    while (cap / 2 < n) {
        if (cap > SIZE_MAX / 2 / sizeof *m->slot) return graft_error_oom(ctx, "a name index");
        cap *= 2;
    }
    if (cap == m->cap) return GRAFT_OK;
    size_t *old = m->slot, oldcap = m->cap;
    m->slot = graft_calloc(ctx, cap, sizeof *m->slot);
    if (!m->slot) {
        m->slot = old;
        return graft_error_oom(ctx, "a name index");
    }
    m->cap = cap;
    for (size_t s = 0; s < oldcap; s++) {
        if (!old[s]) continue;
        size_t len;
        const char *k = m->key(m->owner, old[s] - 1, &len);
        m->slot[probe(m, k, len)] = old[s];
    }
    free(old);
    return GRAFT_OK;
}

size_t graft_strmap_put(graft_strmap *m, size_t i)
{
    size_t len;
    const char *k = m->key(m->owner, i, &len);
    size_t s = probe(m, k, len);
    if (m->slot[s]) return m->slot[s] - 1;
    m->slot[s] = i + 1;
    m->count++;
    return GRAFT_STRMAP_NONE;
}

size_t graft_strmap_find(const graft_strmap *m, const char *key, size_t n)
{
    if (!m->cap) return GRAFT_STRMAP_NONE;
    size_t s = probe(m, key, n);
    return m->slot[s] ? m->slot[s] - 1 : GRAFT_STRMAP_NONE;
}

size_t graft_strmap_get(const graft_strmap *m, const char *key)
{
    return graft_strmap_find(m, key, strlen(key));
}

void graft_strmap_free(graft_strmap *m)
{
    free(m->slot);
    m->slot = NULL;
    m->cap = 0;
    m->count = 0;
}

const char *graft_strmap_key_strv(const void *owner, size_t i, size_t *len)
{
    const char *s = ((const char *const *)owner)[i];
    *len = strlen(s);
    return s;
}

int graft_strmap_init_strv(graft_strmap *m, const char *const *keys, size_t n, graft_ctx *ctx)
{
    graft_strmap_init(m, graft_strmap_key_strv, keys);
    return graft_strmap_reserve(m, n, ctx);
}
