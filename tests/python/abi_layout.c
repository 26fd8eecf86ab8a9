/* Prints "struct field offset size" for every field of the public structs
 * the Python package declares with ctypes (python/graft/_lib.py), and
 * "struct - sizeof" for each struct: test_abi.py compares them with
 * ctypes' layout, so a field added to graft.h but not to Python fails. */
#include <stddef.h>
#include <stdio.h>

#include "graft.h"

#define F(s, f) printf("%s %s %zu %zu\n", #s, #f, offsetof(s, f), sizeof(((s *)0)->f))
#define S(s) printf("%s - 0 %zu\n", #s, sizeof(s))

int main(void)
{
    S(graft_open_options);
    F(graft_open_options, version); F(graft_open_options, format);
    F(graft_open_options, select);
    S(graft_plan_options);
    F(graft_plan_options, version); F(graft_plan_options, reverse);
    F(graft_plan_options, strict); F(graft_plan_options, source_format);
    F(graft_plan_options, skeleton_format); F(graft_plan_options, select);
    S(graft_apply_options);
    F(graft_apply_options, version); F(graft_apply_options, progress);
    F(graft_apply_options, payload); F(graft_apply_options, cancel);
    F(graft_apply_options, manifest); F(graft_apply_options, rules_path);
    S(graft_apply_stats);
    F(graft_apply_stats, tensors); F(graft_apply_stats, transplanted);
    F(graft_apply_stats, kept); F(graft_apply_stats, bytes);
    S(graft_diff_result);
    F(graft_diff_result, numeric); F(graft_diff_result, max_abs);
    F(graft_diff_result, equal); F(graft_diff_result, numel); F(graft_diff_result, max_rel);
    S(graft_extras);
    F(graft_extras, count); F(graft_extras, summary);
    S(graft_convert_options);
    F(graft_convert_options, version); F(graft_convert_options, to);
    F(graft_convert_options, rules_path); F(graft_convert_options, select);
    F(graft_convert_options, source_format); F(graft_convert_options, meta);
    F(graft_convert_options, nmeta); F(graft_convert_options, quantize);
    F(graft_convert_options, dequantize); F(graft_convert_options, shard_size);
    F(graft_convert_options, strict); F(graft_convert_options, manifest);
    F(graft_convert_options, progress); F(graft_convert_options, progress_payload);
    S(graft_convert_result);
    F(graft_convert_result, tensors); F(graft_convert_result, ignored);
    F(graft_convert_result, quantized); F(graft_convert_result, dequantized);
    F(graft_convert_result, bytes); F(graft_convert_result, format);
    F(graft_convert_result, out_path); F(graft_convert_result, dropped);
    S(graft_suggest_options);
    F(graft_suggest_options, version); F(graft_suggest_options, source_format);
    F(graft_suggest_options, skeleton_format);
    return 0;
}
