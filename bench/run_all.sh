#!/usr/bin/env bash
# The benchmarks of issues 6 and 19, page cache warm, RUNS runs each
# (default 1: the ratios come from one run) with peak RSS, and the ratios
# against the targets:
#   B1  vgg11 .pth (531 MB) -> Keras 2 h5 skeleton (bench/vgg11_keras.yaml:
#       conv OIHW->HWIO, dense transposes, fc1's NCHW->NHWC flatten reorder)
#       vs cp of the source and the Python peer (vgg11_keras.py peer)
#   B2  the same source -> a TF2 checkpoint and a safetensors skeleton
#       (bench/vgg11_tf.yaml) vs cp
#   M1  [transpose, {cast: float16}] on a 1 GiB float32 matrix (gen_m1.py,
#       m1.yaml): two data-moving ops, peak RSS
#   C1  graft convert vgg11.pth -> safetensors vs cp and vs the Python way
#       (torch.load, then writing safetensors: py_pth_to_safetensors.py)
#   L1  an LLM-shaped sharded bf16 safetensors model (gen_llm.py: 32 layers,
#       8.24 GB) into a Keras 3 .weights.h5 skeleton (l1_keras.yaml: renames,
#       transposes, cast) and into GGUF (l1_gguf.yaml: llama.cpp names, RoPE
#       permutes, cast), with the scale series 3 / 15 / 32 layers (1.1, 4.1,
#       8.2 GB): time linear in size, peak RSS flat
#   B3  (B3=1) synthetic linear-layer state dicts of ~50 MB, 500 MB, 5 GB
#   ls  graft ls --sha256 vs sha256sum
# Needs /usr/bin/python3 with torch, torchvision, h5py, numpy and about 40 GB
# free under OUT (bench/out by default; L1_LAYERS="3 15" leaves out 8 GB).
# The generated M1 and L1 data are deleted at the end (KEEP=1 keeps them).
# graft fsyncs its output; cp's time depends on how much dirty data earlier
# runs left (writeback throttles it), so cp + fsync is printed beside it,
# and each job also runs with --no-sync (no fsync, as cp) against cp.
# Not a test: nothing here asserts a time.
source "$(dirname "$0")/common.sh"
set -euo pipefail
RUNS=${RUNS:-1}
GRAFT=${GRAFT:-$ROOT/build-release/src/graft}
[ -x "$GRAFT" ] || build_release
# bench/floor.c, built beside graft: transposing and writing, nothing else
FLOOR=${FLOOR:-$(dirname "$GRAFT")/../bench/bench_floor}
D=$OUT/run_all
mkdir -p "$D/tf" "$D/o"
trap 'rm -rf "$D/o"' EXIT

# ratio NAME A B TARGET_TEXT: prints A/B.
ratio() { awk -v n="$1" -v a="$2" -v b="$3" -v t="$4" 'BEGIN {printf "  => %-44s %6.2f  (target %s)\n", n, a / b, t}'; }
peak_ok() { awk -v p="$1" 'BEGIN {printf "  => peak %.1f MB %s\n", p, p <= 64 ? "(target <= 64 MB: met)" : "(target <= 64 MB: MISSED)"}'; }
warm() { cat "$@" >/dev/null; }
# graft fsyncs its output before renaming it into place; cp does not: this
# line shows what the same durability costs cp.
cp_sync() { cp "$1" "$2" && sync "$2"; }
export -f cp_sync

# ---- inputs (generated once, kept in OUT) ----
[ -f "$OUT/vgg11.pth" ] || $PY "$BENCH/gen_vgg11.py" "$OUT/vgg11.pth"
[ -f "$D/vgg11_skel.h5" ] || $PY "$BENCH/vgg11_keras.py" skeleton "$OUT/vgg11.pth" "$D/vgg11_skel.h5"
[ -f "$D/vgg11_skel.safetensors" ] ||
  $PY "$BENCH/vgg11_tf.py" "$OUT/vgg11.pth" "$D/vgg11_skel.safetensors" "$D/tf/model.ckpt"
SIZES="50 500 5000"
[ "${SKIP_5G:-0}" = 1 ] && SIZES="50 500"
[ "${B3:-0}" = 1 ] || SIZES=""
for mb in $SIZES; do
  [ -f "$D/lin$mb.pth" ] || $PY "$BENCH/gen_linear.py" "$D/lin$mb.pth" "$mb"
  [ -f "$D/lin${mb}_skel.safetensors" ] ||
    $PY "$BENCH/linear_tf.py" "$D/lin$mb.pth" "$D/lin${mb}_skel.safetensors"
done
SRC=$OUT/vgg11.pth
printf 'graft: %s\nsource: %s (%s bytes), %s runs each, %s cores\n' "$GRAFT" "$SRC" \
  "$(stat -c %s "$SRC")" "$RUNS" "$(nproc)"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
# This VM hands freshly freed memory back to its host; while that memory is
# faulted back in, any write into new page-cache pages (dd, cp, graft) runs
# 20-40x slower.  Print how fast the page cache takes writes right now.
page_cache_check() {
  local t
  t=$( { /usr/bin/time -f %e dd if=/dev/zero of="$D/o/pc_check" bs=1M count=512 status=none; } 2>&1 )
  rm -f "$D/o/pc_check"
  awk -v t="$t" 'BEGIN {printf "page cache write check: 512 MiB in %.2f s (%.0f MiB/s; under ~1000 the figures below are not comparable)\n", t, 512 / t}'
}

echo "== B1: vgg11 .pth -> Keras 2 h5 skeleton"
page_cache_check
warm "$SRC" "$D/vgg11_skel.h5"
FRESH=$D/o/copy.pth measure "cp source" "$RUNS" cp "$SRC" "$D/o/copy.pth"; cp_t=$LAST_MEDIAN
FRESH=$D/o/copy.pth measure "cp source + fsync (reference)" "$RUNS" bash -c 'cp_sync "$0" "$1"' "$SRC" "$D/o/copy.pth"; cps=$LAST_MEDIAN
rm -f "$D/o/copy.pth"
FRESH=$D/o/vgg11.h5 measure "graft apply -> keras h5" "$RUNS" "$GRAFT" apply -r "$BENCH/vgg11_keras.yaml" \
  -o "$D/o/vgg11.h5" "$SRC" "$D/vgg11_skel.h5"; g=$LAST_MEDIAN; gp=$LAST_PEAK
FRESH=$D/o/vgg11.h5 measure "graft apply --no-sync" "$RUNS" "$GRAFT" apply --no-sync -r "$BENCH/vgg11_keras.yaml" \
  -o "$D/o/vgg11.h5" "$SRC" "$D/vgg11_skel.h5"; gn=$LAST_MEDIAN
measure "python peer (torch + h5py)" "$RUNS" $PY "$BENCH/vgg11_keras.py" peer \
  "$SRC" "$D/vgg11_skel.h5" "$D/o/vgg11_py.h5"; py=$LAST_MEDIAN
cmp -s "$D/o/vgg11.h5" "$D/o/vgg11_py.h5" && echo "  outputs byte-identical" ||
  $PY - "$D/o/vgg11.h5" "$D/o/vgg11_py.h5" <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
n = []
a.visititems(lambda k, o: n.append(np.array_equal(o[()], b[k][()])) if isinstance(o, h5py.Dataset) else None)
print(f"  outputs: {sum(n)} of {len(n)} datasets equal")
PYEOF
ratio "graft / cp" "$g" "$cp_t" "<= 1.3"
ratio "graft / (cp + fsync)" "$g" "$cps" "same durability as graft"
ratio "graft --no-sync / cp" "$gn" "$cp_t" "same durability as cp"
ratio "python peer / graft" "$py" "$g" ">= 10"
peak_ok "$gp"
# B1 and B2 transpose 512 of the 531 MB: the same bytes as float32 4096x4096
# matrices, transposed and written with no checks and no memory bound
FRESH=$D/o/floor measure "floor: transpose + write, no checks" "$RUNS" "$FLOOR" "$SRC" "$D/o/floor" t 4 4096 4096
ratio "floor / cp (B1, B2)" "$LAST_MEDIAN" "$cp_t" "graft adds checks and a 64 MB bound"
rm -f "$D/o/floor"

echo "== B2: vgg11 .pth -> TF2 checkpoint and safetensors skeletons"
page_cache_check
warm "$SRC" "$D/tf/model.ckpt.data-00000-of-00001" "$D/vgg11_skel.safetensors"
FRESH=$D/o/copy.pth measure "cp source" "$RUNS" cp "$SRC" "$D/o/copy.pth"; cp_t=$LAST_MEDIAN
FRESH=$D/o/copy.pth measure "cp source + fsync (reference)" "$RUNS" bash -c 'cp_sync "$0" "$1"' "$SRC" "$D/o/copy.pth"; cps=$LAST_MEDIAN
rm -f "$D/o/copy.pth"
FRESH="$D/o/model.ckpt.*" measure "graft apply -> tf checkpoint" "$RUNS" "$GRAFT" apply -r "$BENCH/vgg11_tf.yaml" \
  -o "$D/o/model.ckpt.index" "$SRC" "$D/tf/model.ckpt.index"; g=$LAST_MEDIAN; gp=$LAST_PEAK
ratio "graft tf checkpoint / cp" "$g" "$cp_t" "<= 1.3"
ratio "graft tf checkpoint / (cp + fsync)" "$g" "$cps" "same durability"
peak_ok "$gp"
FRESH="$D/o/model.ckpt.*" measure "graft apply --no-sync -> tf ckpt" "$RUNS" "$GRAFT" apply --no-sync -r "$BENCH/vgg11_tf.yaml" \
  -o "$D/o/model.ckpt.index" "$SRC" "$D/tf/model.ckpt.index"; gn=$LAST_MEDIAN
ratio "graft --no-sync tf checkpoint / cp" "$gn" "$cp_t" "same durability as cp"
FRESH=$D/o/vgg11.safetensors measure "graft apply -> safetensors" "$RUNS" "$GRAFT" apply -r "$BENCH/vgg11_tf.yaml" \
  -o "$D/o/vgg11.safetensors" "$SRC" "$D/vgg11_skel.safetensors"; g=$LAST_MEDIAN; gp=$LAST_PEAK
ratio "graft safetensors / cp" "$g" "$cp_t" "<= 1.3"
ratio "graft safetensors / (cp + fsync)" "$g" "$cps" "same durability"
peak_ok "$gp"
FRESH=$D/o/vgg11.safetensors measure "graft apply --no-sync -> safetensors" "$RUNS" "$GRAFT" apply --no-sync -r "$BENCH/vgg11_tf.yaml" \
  -o "$D/o/vgg11.safetensors" "$SRC" "$D/vgg11_skel.safetensors"; gn=$LAST_MEDIAN
ratio "graft --no-sync safetensors / cp" "$gn" "$cp_t" "same durability as cp"
"$GRAFT" diff -r "$BENCH/vgg11_tf.yaml" "$SRC" "$D/o/model.ckpt.index" | tail -n 1 | sed 's/^/  tf checkpoint: /'
"$GRAFT" diff -r "$BENCH/vgg11_tf.yaml" "$SRC" "$D/o/vgg11.safetensors" | tail -n 1 | sed 's/^/  safetensors: /'

echo "== M1: [transpose, {cast: float16}] on a 1 GiB float32 matrix"
page_cache_check
M=$D/m1
[ -f "$M/m1.safetensors" ] || $PY "$BENCH/gen_m1.py" "$M"
warm "$M/m1.safetensors"
FRESH=$D/o/copy measure "cp source" "$RUNS" cp "$M/m1.safetensors" "$D/o/copy"; cp_t=$LAST_MEDIAN
FRESH=$D/o/copy measure "cp source + fsync (reference)" "$RUNS" bash -c 'cp_sync "$0" "$1"' "$M/m1.safetensors" "$D/o/copy"; cps=$LAST_MEDIAN
rm -f "$D/o/copy"
rm -f "$D/o/copy"
FRESH=$D/o/m1.safetensors measure "graft apply (2-op chain)" "$RUNS" "$GRAFT" apply -q -r "$BENCH/m1.yaml" \
  -o "$D/o/m1.safetensors" "$M/m1.safetensors" "$M/m1_skel.safetensors"; g=$LAST_MEDIAN; gp=$LAST_PEAK
ratio "graft / cp (1 GiB read, 512 MiB written)" "$g" "$cp_t" "-"
ratio "graft / (cp + fsync)" "$g" "$cps" "-"
peak_ok "$gp"
$PY - "$M/m1.safetensors" "$D/o/m1.safetensors" <<'PYEOF'
import sys, numpy as np
a = np.memmap(sys.argv[1], np.float32, "r", 8 + int.from_bytes(open(sys.argv[1], "rb").read(8), "little"), (16384, 16384))
b = np.memmap(sys.argv[2], np.float16, "r", 8 + int.from_bytes(open(sys.argv[2], "rb").read(8), "little"), (16384, 16384))
for r in range(0, 16384, 1024):
    assert np.array_equal(b[r:r + 1024], a[:, r:r + 1024].T.astype(np.float16)), r
print("  output equals numpy's a.T.astype(float16)")
PYEOF
rm -f "$D/o/m1.safetensors"

echo "== C1: graft convert vgg11 .pth -> safetensors vs cp and vs Python"
page_cache_check
warm "$SRC"
FRESH=$D/o/copy.pth measure "cp source" "$RUNS" cp "$SRC" "$D/o/copy.pth"; cp_t=$LAST_MEDIAN
FRESH=$D/o/copy.pth measure "cp source + fsync (reference)" "$RUNS" bash -c 'cp_sync "$0" "$1"' "$SRC" "$D/o/copy.pth"; cps=$LAST_MEDIAN
rm -f "$D/o/copy.pth"
FRESH=$D/o/c1.safetensors measure "graft convert -> safetensors" "$RUNS" "$GRAFT" convert -q "$SRC" -o "$D/o/c1.safetensors"; g=$LAST_MEDIAN; gp=$LAST_PEAK
FRESH=$D/o/c1.safetensors measure "graft convert --no-sync" "$RUNS" "$GRAFT" convert -q --no-sync "$SRC" -o "$D/o/c1.safetensors"; gn=$LAST_MEDIAN
measure "python torch.load + write" "$RUNS" $PY "$BENCH/py_pth_to_safetensors.py" "$SRC" \
  "$D/o/c1_py.safetensors"; py=$LAST_MEDIAN
"$GRAFT" diff "$D/o/c1.safetensors" "$D/o/c1_py.safetensors" >/dev/null &&
  echo "  graft diff: the two outputs hold the same tensors"
ratio "graft / cp" "$g" "$cp_t" "<= 1.3"
ratio "graft / (cp + fsync)" "$g" "$cps" "same durability"
ratio "graft --no-sync / cp" "$gn" "$cp_t" "same durability as cp"
ratio "python / graft" "$py" "$g" ">= 2"
peak_ok "$gp"
rm -f "$D/o/c1.safetensors" "$D/o/c1_py.safetensors" "$D/o/copy.pth"

echo "== L1: LLM-shaped sharded bf16 safetensors -> Keras 3 .weights.h5 and GGUF, by size"
page_cache_check
L1_LAYERS=${L1_LAYERS:-3 15 32}
kpeaks=() gpeaks=() krates=() grates=()
for n in $L1_LAYERS; do
  L=$D/l1_$n
  [ -f "$L/model.safetensors.index.json" ] || $PY "$BENCH/gen_llm.py" model "$L" "$n"
  [ -f "$L/l1.weights.h5" ] || $PY "$BENCH/gen_llm.py" keras "$L" "$n"
  sz=$(cat "$L"/model-*.safetensors | wc -c)
  echo "-- $n layers: $(ls "$L"/model-*.safetensors | wc -l) shards, $sz bytes"
  warm "$L"/model-*.safetensors
  FRESH="$D/o/model-*.safetensors" measure "cp shards" "$RUNS" bash -c 'cp "$0"/model-*.safetensors "$1"/' "$L" "$D/o"; c=$LAST_MEDIAN
  rm -f "$D/o"/model-*.safetensors
  FRESH="$D/o/model-*.safetensors" measure "cp shards + fsync (reference)" "$RUNS" bash -c 'for f in "$0"/model-*.safetensors; do cp_sync "$f" "$1/${f##*/}"; done' "$L" "$D/o"; cs=$LAST_MEDIAN
  rm -f "$D/o"/model-*.safetensors
  warm "$L"/model-*.safetensors
  # into the folder cp wrote to: on this VM's ext4, writes into the folder
  # the inputs were generated in ran 20-40x slower, for dd as for graft
  FRESH=$D/o/out.weights.h5 measure "graft apply -> keras 3 .weights.h5" "$RUNS" "$GRAFT" apply -q -r "$BENCH/l1_keras.yaml" \
    -o "$D/o/out.weights.h5" "$L/model.safetensors.index.json" "$L/l1.weights.h5"; k=$LAST_MEDIAN
  kpeaks+=("$LAST_PEAK"); krates+=("$(awk -v s="$sz" -v t="$k" 'BEGIN {printf "%.0f", s / t / 1048576}')")
  FRESH=$D/o/out.weights.h5 measure "graft apply --no-sync -> keras 3" "$RUNS" "$GRAFT" apply -q --no-sync -r "$BENCH/l1_keras.yaml" \
    -o "$D/o/out.weights.h5" "$L/model.safetensors.index.json" "$L/l1.weights.h5"; kn=$LAST_MEDIAN
  [ "$n" = "${L1_LAYERS%% *}" ] || rm -f "$D/o/out.weights.h5"
  warm "$L"/model-*.safetensors
  FRESH=$D/o/out.gguf measure "graft convert -> gguf" "$RUNS" "$GRAFT" convert -q -r "$BENCH/l1_gguf.yaml" \
    "$L/model.safetensors.index.json" -o "$D/o/out.gguf" --meta general.architecture=llama; gg=$LAST_MEDIAN
  gpeaks+=("$LAST_PEAK"); grates+=("$(awk -v s="$sz" -v t="$gg" 'BEGIN {printf "%.0f", s / t / 1048576}')")
  [ "$n" = "${L1_LAYERS%% *}" ] && cp "$D/o/out.gguf" "$D/o/out.synced.gguf"
  FRESH=$D/o/out.gguf measure "graft convert --no-sync -> gguf" "$RUNS" "$GRAFT" convert -q --no-sync -r "$BENCH/l1_gguf.yaml" \
    "$L/model.safetensors.index.json" -o "$D/o/out.gguf" --meta general.architecture=llama; ggn=$LAST_MEDIAN
  if [ "$n" = "${L1_LAYERS%% *}" ]; then
    cmp -s "$D/o/out.gguf" "$D/o/out.synced.gguf" && echo "  gguf: --no-sync output byte-identical"
    rm -f "$D/o/out.synced.gguf"
  fi
  if [ "$n" = "${L1_LAYERS%% *}" ]; then $PY "$BENCH/l1_check.py" "$L" "$D/o"; fi
  # the projections are bf16 [3072, 8192] and [8192, 3072]: the shard as
  # bf16 3072x8192 matrices, transposed and written with no cast or checks
  shards=("$L"/model-*.safetensors)
  if [ "${#shards[@]}" = 1 ]; then
    FRESH=$D/o/floor measure "floor: transpose + write, no checks" "$RUNS" "$FLOOR" "${shards[0]}" "$D/o/floor" t 2 3072 8192
    ratio "floor / cp (L1 into Keras)" "$LAST_MEDIAN" "$c" "graft adds checks and a 64 MB bound"
    rm -f "$D/o/floor"
  fi
  rm -f "$D/o/out.weights.h5" "$D/o/out.gguf"
  awk -v k="$k" -v g="$gg" -v kn="$kn" -v gn="$ggn" -v c="$c" -v cs="$cs" 'BEGIN {
    printf "  => keras: graft / cp %.2f, graft / (cp + fsync) %.2f, graft --no-sync / cp %.2f (target <= 1.3)\n", k / c, k / cs, kn / c
    printf "  => gguf:  graft / cp %.2f, graft / (cp + fsync) %.2f, graft --no-sync / cp %.2f (target <= 1.3)\n", g / c, g / cs, gn / c }'
  peak_ok "${kpeaks[-1]}"; peak_ok "${gpeaks[-1]}"
done
spread() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.1f .. %.1f MB: spread %.1f%%", a[1], a[NR], (a[NR] - a[1]) / a[1] * 100}'; }
echo "  => keras peak RSS $(spread "${kpeaks[@]}") (target within 10%)"
echo "  => gguf peak RSS $(spread "${gpeaks[@]}") (target within 10%)"
echo "  => throughput keras ${krates[*]} MiB/s, gguf ${grates[*]} MiB/s (linear time = flat throughput)"
if [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$D/m1"
  for n in $L1_LAYERS; do rm -rf "$D/l1_$n"; done
fi

echo "== B3: linear layers -> safetensors skeleton (transposed kernels), by size"
peaks=() rates=()
for mb in $SIZES; do
  sz=$(stat -c %s "$D/lin$mb.pth")
  # 5 GB does not stay in a shared page cache: fewer runs, and it is what it is.
  r=$RUNS; [ "$mb" -ge 5000 ] && r=$(( RUNS < 3 ? RUNS : 3 ))
  warm "$D/lin$mb.pth"
  measure "cp lin$mb ($((sz >> 20)) MiB)" "$r" cp "$D/lin$mb.pth" "$D/o/copy.pth"; c=$LAST_MEDIAN
  measure "cp lin$mb + fsync (reference)" "$r" bash -c 'cp_sync "$0" "$1"' "$D/lin$mb.pth" "$D/o/copy.pth"; cs=$LAST_MEDIAN
  rm -f "$D/o/copy.pth"
  measure "graft apply lin$mb" "$r" "$GRAFT" apply -r "$BENCH/linear_tf.yaml" \
    -o "$D/o/lin.safetensors" "$D/lin$mb.pth" "$D/lin${mb}_skel.safetensors"
  rm -f "$D/o/lin.safetensors"
  peaks+=("$LAST_PEAK")
  rates+=("$(awk -v s="$sz" -v t="$LAST_MEDIAN" 'BEGIN {printf "%.0f", s / t / 1048576}')")
  awk -v s="$sz" -v t="$LAST_MEDIAN" -v c="$c" -v cs="$cs" 'BEGIN {printf "  => %.0f MiB/s (cp %.0f MiB/s), graft / cp %.2f, graft / (cp + fsync) %.2f\n", s / t / 1048576, s / c / 1048576, t / c, t / cs}'
done
[ -n "$SIZES" ] && printf '%s\n' "${peaks[@]}" | sort -g | awk '{a[NR]=$1} END {printf "  => peak RSS %.1f .. %.1f MB: spread %.1f%% (target within 10%%)\n", a[1], a[NR], (a[NR] - a[1]) / a[1] * 100}'
[ -n "$SIZES" ] && printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {printf "  => throughput %d .. %d MiB/s across sizes (linear time = flat throughput)\n", a[1], a[NR]}'

echo "== ls --sha256 on the vgg11 .pth"
warm "$SRC"
measure "sha256sum" "$RUNS" sha256sum "$SRC"; b=$LAST_MEDIAN
measure "graft ls --sha256" "$RUNS" "$GRAFT" ls --sha256 "$SRC"; g=$LAST_MEDIAN
ratio "graft ls --sha256 / sha256sum" "$g" "$b" "<= 1.2"
