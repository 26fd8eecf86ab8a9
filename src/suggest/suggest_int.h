/*
 * suggest_int.h - drafting a rules file from two models (internal to
 * src/suggest; the public call is graft_suggest() in graft.h).
 *
 * The steps, one file each:
 *   collect.c     every tensor of both sides: its kind (weight, bias, mean,
 *                 var), sorted dims, layout, name tokens in one vocabulary,
 *                 and whether it is known to stay out (optimizer slots,
 *                 num_batches_tracked, tied copies, global_step);
 *   fold.c        sources the skeleton's structure shows joined: BatchNorms
 *                 folded into the convolution before them (fold_bn: two
 *                 stand-ins, the conv weight and the BN bias, the rest
 *                 hidden), a recurrent layer's two biases summed or stacked
 *                 (the input-side bias stands in);
 *   pair.c        pairing: equal names, unique shapes, then a sequence
 *                 alignment of the two files' orders, leftovers by name
 *                 similarity; each target's confidence and reason;
 *   opchain.c     each pair's op chain from the two layouts (the layout
 *                 check's own graft_layout_ops), shapes as the fallback;
 *   generalise.c  renames learned from the pairs (regexes with index
 *                 arithmetic, checked on every name by the rules engine);
 *   draft.c       the YAML, its check (load, plan, one to one, reverse)
 *                 and the JSON.
 */
#ifndef GRAFT_SUGGEST_INT_H
#define GRAFT_SUGGEST_INT_H

#include "graft.h"
#include "json.h"
#include "layout.h"
#include "model.h"
#include "ops.h"

#define SG_MAXD 8 /* tensors of higher rank are never paired */

typedef enum sg_kind { SG_WEIGHT, SG_BIAS, SG_MEAN, SG_VAR } sg_kind;

typedef struct sg_t {
    const graft_tensor *t;
    const char *name;     /* borrowed from the model */
    graft_layout lay;
    sg_kind kind;
    uint32_t nd;          /* rank; > SG_MAXD: never paired */
    int64_t sd[SG_MAXD];  /* dims sorted ascending */
    uint64_t numel;       /* (a stacking stand-in: of the joined tensor) */
    char **tok;           /* name tokens in one vocabulary, stop words left out */
    size_t ntok;
    const char *ignore;   /* the ignore pattern that drops it (static or owned by
                           * the suggestion), NULL = takes part */
    const char *ignore_why;
    long pair;            /* index on the other side, -1 = none */
    long fold;            /* the sg_fold it stands for or belongs to, -1 */
    bool split;           /* sources: a (2, n) recurrent bias standing in as one of n */
    bool hidden;          /* in a fold and not its stand-in: never paired alone (a
                           * split's second target follows its first, fold.c) */
    /* targets only */
    int conf;             /* graft_confidence */
    const char *reason;   /* static text or owned (reason_owned) */
    char *reason_owned;
    char *ops;            /* the op chain as JSON "[...]", "" for none; owned */
    long nops;
} sg_t;

typedef struct sg_side {
    const graft_model *m;
    sg_t *v;
    size_t n;
} sg_side;

/* Several sources joined into one target (source indices):
 *   SG_JOIN_BN: a BatchNorm folded into the convolution before it (cb the
 *     conv's own bias, -1 when it has none); stand-ins w for the folded
 *     weight, b for the folded bias;
 *   SG_JOIN_SUM, SG_JOIN_STACK: a recurrent layer's two biases (b input
 *     side, the stand-in; g recurrent side) as one bias, their sum (Keras
 *     LSTM) or stacked (Keras GRU, reset_after); w, cb, m, v unused (-1);
 *   SG_JOIN_SPLIT, the other way: a Keras GRU's (2, n) bias (b, the
 *     source) into PyTorch's bias_ih and bias_hh (targets g and m; m hidden,
 *     it takes the source its bias_ih pairs with). */
typedef enum sg_join { SG_JOIN_BN, SG_JOIN_SUM, SG_JOIN_STACK, SG_JOIN_SPLIT } sg_join;
typedef struct sg_fold {
    sg_join op;
    long w, cb, g, b, m, v;
} sg_fold;

/* One learned rename. */
typedef struct sg_rename {
    char *match, *to;
    size_t expect;        /* target names it matches */
    size_t uncertain;     /* of the targets it helps pair: not certain */
} sg_rename;

struct graft_suggestion {
    sg_side src, dst;
    graft_model *own_src, *own_dst;
    int ren_side;         /* graft_side whose names the renames rewrite */
    sg_rename *ren;
    size_t nren;
    sg_fold *folds;
    size_t nfolds;
    char **renamed;       /* each name of that side after the renames */
    char *yaml;
    size_t nrename_entries, npairs_entries;
    size_t counts[4];     /* targets per graft_confidence */
    bool one_to_one, reversible;
};

/* collect.c */
int sg_collect(sg_side *s, const graft_model *m, bool is_source, graft_ctx *ctx);
void sg_side_free(sg_side *s);
bool sg_is_float(graft_dtype t);
bool sg_compatible(const sg_t *a, const sg_t *b);
/* Name similarity in [0, 1]; near: numbers one apart count as the same
 * (for the alignments, where an index base must not pull them one block
 * off; the confidences use the exact one). */
double sg_similarity(const sg_t *a, const sg_t *b, bool near);
bool sg_same_tokens(const sg_t *a, const sg_t *b);

/* pair.c */
int sg_pair(graft_suggestion *s, graft_ctx *ctx);
void sg_link(graft_suggestion *s, size_t ti, size_t si);
/* Needleman-Wunsch over a (na) and b (nb), gaps free: match(arg, i, j) for
 * each aligned pair of the best alignment; score <= 0 forbids a pair.  Too
 * large a table (over 4 M cells) aligns nothing. */
int sg_align(size_t na, size_t nb, float (*score)(void *, size_t, size_t),
             void (*match)(void *, size_t, size_t), void *arg, graft_ctx *ctx);
static inline bool sg_live(const sg_t *x) { return !x->ignore && !x->hidden && x->nd <= SG_MAXD; }
static inline bool sg_unpaired(const sg_t *x) { return sg_live(x) && x->pair < 0; }

/* fold.c */
#define SG_FOLD_EPS "1.0e-5"  /* PyTorch's BatchNorm default; a state dict does not keep it */
int sg_folds(graft_suggestion *s, graft_ctx *ctx);
/* The sources of target t in a pairs entry's order (1, 2 for a sum or a
 * stack, 4-5 for a fold):
 * how many, into out[0..5). */
size_t sg_sources(const graft_suggestion *s, const sg_t *t, long out[5]);
/* How target t joins its sources: -1 not at all, 0 / 1 the weight / bias
 * of a folded BatchNorm, 2 a sum, 3 a stack, 4 / 5 the first / second half
 * of a split. */
enum { SG_PART_BN_WEIGHT, SG_PART_BN_BIAS, SG_PART_SUM, SG_PART_STACK, SG_PART_SPLIT0, SG_PART_SPLIT1 };
int sg_fold_part(const graft_suggestion *s, const sg_t *t);
/* After the pairing: each split's second target takes its first's source. */
int sg_split_follow(graft_suggestion *s, graft_ctx *ctx);
/* Whether source j feeds a target (directly or folded into one). */
bool sg_src_used(const graft_suggestion *s, size_t j);

/* layers.c: whole layers (tensors sharing a name prefix) paired */
int sg_pair_layers(graft_suggestion *s, graft_ctx *ctx);

/* opchain.c: each pair's chain into dst->v[i].ops; may lower a confidence */
int sg_opchains(graft_suggestion *s, graft_ctx *ctx);

/* generalise.c: the renames that pair as many targets as possible */
int sg_generalise(graft_suggestion *s, graft_ctx *ctx);

/* draft.c: the one writer of the draft's YAML scalars (quoted as the text
 * needs) and comments ("# text", what a comment cannot hold as '?'). */
void sg_yaml_quote(graft_jsonw *w, const char *s);
void sg_yaml_comment(graft_jsonw *w, const char *text);
/* One rename entry's line, without its closing brace. */
void sg_rename_line(graft_jsonw *w, const sg_rename *rn);
/* Rules holding only the target renames ren[0..n). */
struct graft_rules;
int sg_rename_rules(struct graft_rules **out, int side, const sg_rename *ren, size_t n,
                    graft_ctx *ctx);

/* draft.c */
int sg_draft(graft_suggestion *s, graft_ctx *ctx);

/* Set a target's confidence and reason (text copied when own). */
int sg_set_conf(sg_t *t, int conf, const char *reason, bool own, graft_ctx *ctx);
/* The regex of a name matched literally: ^name$ with metacharacters escaped. */
void sg_regex_literal(graft_jsonw *w, const char *s, size_t n);

#endif
