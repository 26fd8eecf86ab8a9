/* cmd_ls.c - `graft ls FILE`: list the tensors of a model file. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>

static const char usage[] =
    "usage: graft ls [--json] [--sha256] [--format NAME] [--select KEY] FILE\n"
    "List every tensor of FILE: name, dtype, shape, bytes.  A tensor graft cannot\n"
    "read is listed as 'unsupported' with its stored type and no data.\n"
    "  --json          a JSON array of {name, dtype, shape, sha256[, encoding][, quant], role,\n"
    "                  layout, certainty (structure | convention | unknown)[, gates, flatten]}\n"
    "  --sha256        add the SHA-256 of each tensor's row-major little-endian elements\n"
    "  --format NAME   read FILE as this format instead of detecting it\n"
    "  --select KEY    only the sub-tree KEY of a nested checkpoint, prefix stripped\n";

/* --help ends with the formats compiled in, from the registry itself. */
static void help(void)
{
    const char *const *names = graft_format_names();
    fputs(usage, stdout);
    fputs("formats (in detection order):", stdout);
    for (size_t i = 0; names[i]; i++) printf("%s %s", i ? "," : "", names[i]);
    putchar('\n');
}

static int hash_hex(const graft_model *m, const graft_tensor *t, char hex[65], graft_ctx *ctx)
{
    uint8_t digest[32];
    if (graft_tensor_sha256(m, t, digest, ctx) < 0) return -1;
    graft_sha256_hex(digest, hex);
    return 0;
}

static int list_text(const graft_model *m, bool sha, graft_ctx *ctx)
{
    char hex[65];
    for (size_t i = 0; i < graft_model_count(m); i++) {
        const graft_tensor *t = graft_model_tensor(m, i);
        const char *stored = graft_tensor_unsupported(t);
        printf("%s\t%s\t", graft_tensor_name(t),
               stored ? "unsupported" : graft_dtype_name(graft_tensor_dtype(t)));
        print_shape(stdout, t, ",");
        printf("\t%llu", (unsigned long long)graft_tensor_nbytes(t));
        if (stored) { /* listed with its stored type, never read */
            printf("%s\tstored as %s (no data)\n", sha ? "\t-" : "", stored);
            continue;
        }
        if (sha) {
            if (hash_hex(m, t, hex, ctx) < 0) return -1;
            printf("\t%s", hex);
        }
        if (graft_tensor_encoding(m, t)) printf("\t%s", graft_tensor_encoding(m, t));
        putchar('\n');
    }
    return 0;
}

int cmd_ls(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},   {"sha256", no_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'}, {"select", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},   {NULL, 0, NULL, 0},
    };
    graft_open_options opts = GRAFT_OPEN_OPTIONS_INIT;
    bool json = false, sha = false;
    graft_ctx *ctx = NULL;
    graft_model *m = NULL;
    int c, rc = EXIT_BAD;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 's': sha = true; break;
        case 'f': opts.format = optarg; break;
        case 'S': opts.select = optarg; break;
        case 'h': help(); return EXIT_OK;
        default: fputs(usage, stderr); return EXIT_BAD;
        }
    }
    if (optind + 1 != argc) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    ctx = graft_ctx_new();
    if (!ctx) {
        errorf("out of memory");
        return EXIT_BAD;
    }
    if (graft_model_open(&m, argv[optind], &opts, ctx) < 0) {
        errorf("%s", graft_ctx_message(ctx));
        goto cleanup;
    }
    char *text = NULL;
    if ((json ? print_owned(graft_model_json(&text, m, ctx), &text) : list_text(m, sha, ctx)) < 0) {
        fflush(stdout);
        errorf("%s: %s", argv[optind], graft_ctx_message(ctx));
        goto cleanup;
    }
    /* a model can hold no weights, but an empty listing should not pass for
     * a successful read of a file that is not what it seems */
    if (graft_model_count(m) == 0) warnf("%s: no tensors in this %s model", argv[optind],
                                         graft_model_format(m));
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
cleanup:
    graft_model_free(m);
    graft_ctx_free(ctx);
    return rc;
}
