/* cmd_convert.c - `graft convert`: a model's tensors into a new container file. */
#include "planload.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: graft convert [-r RULES] [--to FORMAT] -o OUT [--no-clobber] [--json] [options] SOURCE\n"
    "Write every tensor of SOURCE, renamed and transformed by the source side of\n"
    "RULES (renames, ignores, ops), into a new OUT file; no skeleton is needed.\n"
    "Pickles are parsed, never run.  Non-tensor values (epochs, strings) are\n"
    "dropped with one line on stderr.\n"
    "  -o, --output OUT      the new file (never SOURCE)\n"
    "  --to FORMAT           safetensors, npz, npy, pytorch-zip, gguf, tf-checkpoint\n"
    "                        (default: from OUT's extension: .safetensors .npz .npy\n"
    "                        .pt .pth .bin .gguf .index)\n"
    "  -r, --rules RULES     source-side renames, ignores and transforms\n"
    "  --select KEY          only the sub-tree KEY of a nested checkpoint\n"
    "  --shard-size SIZE     safetensors: shards of at most SIZE bytes (e.g. 5GB, 500MB,\n"
    "                        1GiB) named as huggingface_hub names them, plus an index\n"
    "  --meta KEY[:TYPE]=VALUE   GGUF metadata (repeat; general.architecture required;\n"
    "                        TYPE u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool str)\n"
    "  --quantize TYPE       GGUF: write float matrices as q8_0 or q4_0\n"
    "  --dequantize          GGUF source: read q8_0 / q4_0 tensors as float32\n"
    "  --strict              refuse a SOURCE holding non-tensor values\n"
    "  --manifest FILE       also write a JSON provenance record to FILE\n"
    "  -q, --quiet           no progress line (shown only when stderr is a terminal)\n"
    "  --source-format NAME  read SOURCE as this format\n"
    "  --no-clobber          refuse to replace an existing OUT\n"
    "  --memory-budget SIZE  a tensor larger than SIZE that an op chain reads out of\n"
    "                        order goes through a temporary file (default 64MiB)\n"
    "  --no-sync             do not wait for OUT to reach the disk (fsync) before\n"
    "                        renaming it into place: faster, and still whole or\n"
    "                        absent to other programs, but a crash soon after may\n"
    "                        lose it\n"
    "  --json                {\"output\", \"format\", \"source\", \"tensors\", \"bytes\",\n"
    "                        \"ignored\", \"quantized\", \"dropped\", ...}\n"
    "                        (schemas/cli/convert.schema.json)\n";

enum { O_TO = 256, O_SELECT, O_SHARD, O_META, O_QUANT, O_STRICT, O_MANIFEST, O_SRCFMT, O_DEQUANT };

const cli_option convert_options[] = {
    {"output", 'o', 'o', CLI_FILE},           {"to", 0, O_TO, CLI_WRITE_FORMAT},
    {"rules", 'r', 'r', CLI_RULES},           {"select", 0, O_SELECT, CLI_TEXT},
    {"shard-size", 0, O_SHARD, CLI_TEXT},     {"meta", 0, O_META, CLI_TEXT},
    {"quantize", 0, O_QUANT, CLI_QUANT},      {"dequantize", 0, O_DEQUANT, CLI_FLAG},
    {"strict", 0, O_STRICT, CLI_FLAG},        {"manifest", 0, O_MANIFEST, CLI_FILE},
    {"source-format", 0, O_SRCFMT, CLI_FORMAT},
    {"no-clobber", 0, OPT_NO_CLOBBER, CLI_FLAG},
    {"memory-budget", 0, OPT_BUDGET, CLI_TEXT},
    {"no-sync", 0, OPT_NO_SYNC, CLI_FLAG},
    {"quiet", 'q', 'q', CLI_FLAG},            {"json", 0, OPT_JSON, CLI_FLAG},
    {"help", 'h', 'h', CLI_FLAG},             {NULL, 0, 0, 0},
};

static int parse(graft_convert_options *o, const char **out, const char ***meta,
                 cli_write_flags *fl, int argc, char **argv)
{
    int c, k;
    optind = 1;
    while ((c = cli_getopt(argc, argv, convert_options)) != -1) {
        if ((k = cli_write_flag(c, optarg, fl)) != 0) {
            if (k < 0) return -1;
            continue;
        }
        switch (c) {
        case 'r': o->rules_path = rules_named(optarg); break;
        case 'o': *out = optarg; break;
        case O_TO: o->to = optarg; break;
        case O_SELECT: o->select = optarg; break;
        case O_SHARD:
            if (cli_size_option("shard-size", optarg, &o->shard_size) < 0) return -1;
            break;
        case O_META: (*meta)[o->nmeta++] = optarg; break;
        case O_QUANT: o->quantize = optarg; break;
        case O_STRICT: o->strict = true; break;
        case O_DEQUANT: o->dequantize = true; break;
        case O_MANIFEST: o->manifest = optarg; break;
        case O_SRCFMT: o->source_format = optarg; break;
        case 'h': fputs(usage, stdout); return 1;
        default: fputs(usage, stderr); return -1;
        }
    }
    if (!*out || !**out || optind + 1 != argc) {
        fputs(usage, stderr);
        return -1;
    }
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    graft_convert_options o = GRAFT_CONVERT_OPTIONS_INIT;
    graft_convert_result res = {0};
    cli_progress prog = {.command = "convert"};
    const char *out = NULL, **meta = calloc((size_t)argc + 1, sizeof *meta);
    graft_ctx *ctx = graft_ctx_new();
    cli_write_flags fl = {0};
    char *text = NULL;
    int rc = EXIT_BAD, k;

    if (!meta || !ctx) {
        errorf("out of memory");
        goto cleanup;
    }
    if ((k = parse(&o, &out, &meta, &fl, argc, argv)) != 0) {
        rc = k > 0 ? EXIT_OK : EXIT_BAD;
        goto cleanup;
    }
    o.meta = meta;
    graft_ctx_set_memory_budget(ctx, fl.budget);
    graft_ctx_set_sync(ctx, !fl.no_sync);
    if (fl.no_clobber && refuse_existing(NULL, out)) goto cleanup;
    if (o.to) warn_extension(out, o.to);
    if (!fl.quiet && isatty(STDERR_FILENO)) {
        o.progress = cli_show_progress;
        o.progress_payload = &prog;
        prog.start = cli_now();
    }
    if (graft_convert(argv[optind], out, &o, &res, ctx) < 0) {
        if (prog.open) fputc('\n', stderr);
        errorf("%s", graft_ctx_message(ctx));
        goto cleanup;
    }
    if (res.dropped.count)
        warnf("%s: dropped %llu non-tensor value%s (%s)", argv[optind],
              (unsigned long long)res.dropped.count, res.dropped.count > 1 ? "s" : "",
              res.dropped.summary);
    if (fl.json) {
        if (print_owned(graft_convert_json(&text, argv[optind], &o, &res, ctx), &text) < 0) {
            errorf("%s", graft_ctx_message(ctx));
            goto cleanup;
        }
    } else {
        printf("%s: %zu tensors written as %s", res.out_path, res.tensors, res.format);
        if (res.quantized) printf(", %zu quantized", res.quantized);
        if (res.quantized && o.quantize) printf(" %s", o.quantize);
        if (res.dequantized) printf(", %zu dequantized", res.dequantized);
        if (res.ignored) printf(", %zu ignored by the rules", res.ignored);
        putchar('\n');
    }
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_BAD;
cleanup:
    graft_convert_result_free(&res);
    graft_ctx_free(ctx);
    free(meta);
    return rc;
}
