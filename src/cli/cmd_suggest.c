/* cmd_suggest.c - `graft suggest`: draft a rules file from the two models. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>

static const char usage[] =
    "usage: graft suggest [--json] [-o RULES] [--source-format F] [--skeleton-format F]\n"
    "                     SOURCE SKELETON\n"
    "Draft a rules file (format 1.1) that fills SKELETON from SOURCE: pairs from\n"
    "names, shapes, layouts, file order and structure; renames generalised into\n"
    "regexes; op chains from the two layouts.  Each skeleton tensor is certain,\n"
    "likely or a guess; entries that are not certain carry a comment.  The draft\n"
    "is checked (it loads and its plan is complete) before it is written.\n"
    "  -o RULES            write the rules there (atomically) instead of stdout\n"
    "  --json              print {\"targets\": [{\"target\", \"sources\", \"ops\",\n"
    "                      \"confidence\", \"reason\"}], \"rules\": ...}\n"
    "Exit status: 0 when every tensor is certain or likely, 1 when some are a\n"
    "guess or unpaired, 2 on errors.\n";

enum { OPT_JSON = 256, OPT_SRC_FMT, OPT_DST_FMT };

int cmd_suggest(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"output", required_argument, NULL, 'o'},
        {"source-format", required_argument, NULL, OPT_SRC_FMT},
        {"skeleton-format", required_argument, NULL, OPT_DST_FMT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    graft_suggest_options o = GRAFT_SUGGEST_OPTIONS_INIT;
    const char *out_path = NULL;
    bool json = false;
    int c, rc = EXIT_BAD;

    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = true; break;
        case 'o': out_path = optarg; break;
        case OPT_SRC_FMT: o.source_format = optarg; break;
        case OPT_DST_FMT: o.skeleton_format = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (optind + 2 != argc) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    graft_ctx *ctx = graft_ctx_new();
    graft_suggestion *s = NULL;
    if (!ctx) {
        errorf("out of memory");
        return EXIT_BAD;
    }
    if (graft_suggest(&s, argv[optind], argv[optind + 1], &o, ctx) < 0) {
        errorf("%s", graft_ctx_message(ctx));
        goto cleanup;
    }
    if (out_path && graft_suggestion_write(s, out_path, ctx) < 0) {
        errorf("%s", graft_ctx_message(ctx));
        goto cleanup;
    }
    if (json) {
        char *text = NULL;
        if (print_owned(graft_suggestion_json(&text, s, ctx), &text) < 0) {
            errorf("%s", graft_ctx_message(ctx));
            goto cleanup;
        }
    } else if (!out_path) {
        fputs(graft_suggestion_rules(s), stdout);
    }
    size_t unsure = graft_suggestion_count(s, GRAFT_SUGGEST_GUESS) +
                    graft_suggestion_count(s, GRAFT_SUGGEST_UNPAIRED);
    fprintf(stderr, "graft: suggest: %zu certain, %zu likely, %zu guess, %zu unpaired\n",
            graft_suggestion_count(s, GRAFT_SUGGEST_CERTAIN),
            graft_suggestion_count(s, GRAFT_SUGGEST_LIKELY),
            graft_suggestion_count(s, GRAFT_SUGGEST_GUESS),
            graft_suggestion_count(s, GRAFT_SUGGEST_UNPAIRED));
    rc = fflush(stdout) != 0 ? EXIT_BAD : unsure ? EXIT_PLAN : EXIT_OK;
cleanup:
    graft_suggestion_free(s);
    graft_ctx_free(ctx);
    return rc;
}
