/* rules_int.h - helpers shared by the files of src/rules/ (not for callers). */
#ifndef GRAFT_RULES_INT_H
#define GRAFT_RULES_INT_H

#include "rules.h"

/* Compile pattern[0..len) into re (pattern copied into r's arena); errors
 * read "<file>:<line>:<col>: bad regex '<p>' at offset N: <pcre2 message>". */
int graft_rules__regex(graft_rules *r, graft_regex *re, const char *pattern, size_t len,
                       graft_rules_pos pos, graft_ctx *ctx);
void graft_rules__regex_free(graft_regex *re);
/* Find the index arithmetic tokens of rn->to (rn->match compiled); errors
 * name the entry's file:line:col.  minor: the file's format minor version
 * (arithmetic needs 1). */
int graft_rules__arith(graft_rules *r, graft_rename *rn, unsigned minor, graft_ctx *ctx);
/* graft_rules_rename, counting in counts[i] the names rename i matched. */
int graft_rules__rename_count(const graft_rules *r, graft_side side, const char *name,
                              char **out, size_t *counts, graft_ctx *ctx);

/* Levenshtein distance of a and b; row holds strlen(b) + 1 entries. */
size_t graft_rules__distance(const char *a, const char *b, size_t *row);

#endif
