#!/usr/bin/env bash
# suggest.sh - graft suggest on large pairs (run by hand, not a test): wall
# time, CPU and peak RSS (/usr/bin/time) of drafting the rules, per pair:
#   resnet152 .pth -> Keras-Applications-named h5 skeleton;
#   BERT-large-shaped HF state dict -> Google BERT TF checkpoint names;
#   32-layer Llama-named safetensors -> GGUF names (blk.N.attn_q, ...).
# The cost grows with the tensor count (pairing, alignment, renames learned
# by running each candidate over every name), not with the bytes; the last
# lines time synthetic pairs of 1000 to 8000 tensors to show how.
source "$(dirname "$0")/common.sh"
set -euo pipefail
RUNS=${RUNS:-3}
D=$OUT/suggest
build_release
if [ ! -f "$D/llama.pth" ]; then
  "$PY" "$BENCH/gen_suggest.py" "$D"
fi
[ -f "$D/llama.safetensors" ] || "$GRAFT" convert -q -o "$D/llama.safetensors" "$D/llama.pth"
[ -f "$D/llama.gguf" ] || "$GRAFT" convert -q -r "$D/llama_names.yaml" --meta general.architecture=llama \
  -o "$D/llama.gguf" "$D/llama.pth"
for pair in "r152.pth r152_skel.h5 resnet152->keras" "bertl.pth bertl/model.ckpt.index bert-large->tf" \
            "llama.safetensors llama.gguf llama32->gguf"; do
  set -- $pair
  # exit 1 (some guess) is an answer, not a failure
  measure "suggest $3" "$RUNS" sh -c '"$0" suggest -o "$1" "$2" "$3"; [ $? -le 1 ]' \
    "$GRAFT" "$D/$3.yaml" "$D/$1" "$D/$2"
  n=$("$GRAFT" ls "$D/$2" | wc -l)
  echo "    skeleton lines in graft ls: $n; draft: $(grep -c '' "$D/$3.yaml") lines"
done
# growth with the tensor count (names that pair by nothing but order)
for n in 1000 2000 4000 8000; do
  [ -f "$D/scale$n.pth" ] || "$PY" "$BENCH/gen_suggest.py" scale "$D" "$n"
  measure "suggest $n tensors by order" "$RUNS" sh -c '"$0" suggest -o "$1" "$2" "$3"; [ $? -le 1 ]' \
    "$GRAFT" "$D/scale$n.yaml" "$D/scale$n.pth" "$D/scale${n}_skel.pth"
done
