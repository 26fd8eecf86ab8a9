#!/usr/bin/env bash
# h5_sandbox.sh - what running libhdf5 in a confined child costs (issue 18
# item 12): the same cases with the default release build (every libhdf5
# call in a forked child) and a measurement-only build that runs libhdf5 in
# graft's own process (meson -Dhdf5_in_process=true, build-h5inproc/; never
# for untrusted files).  CPU seconds (user + sys, the child's included) are
# the figure to read on a shared machine; wall medians are printed too.
#   B1   vgg11 .pth -> Keras 2 h5 skeleton (contiguous datasets: the child
#        walks the skeleton and checks the copy; values go straight in)
#   H1   the B1 output as a source: graft convert keras h5 -> safetensors
#   H2   a gzip-chunked copy of it: graft ls --sha256 (every byte inflated
#        by libhdf5 in the child and streamed through its pipe)
# Reuses run_all.sh's inputs (vgg11.pth, vgg11_skel.h5).  Not a test.
source "$(dirname "$0")/common.sh"
set -euo pipefail
RUNS=${RUNS:-5}
D=$OUT/run_all
SRC=$OUT/vgg11.pth
[ -f "$SRC" ] && [ -f "$D/vgg11_skel.h5" ] || { echo "run bench/run_all.sh once first" >&2; exit 1; }
build_release
IN=$ROOT/build-h5inproc/src/graft
[ -f "$ROOT/build-h5inproc/build.ninja" ] ||
  meson setup "$ROOT/build-h5inproc" --buildtype=release -Dhdf5_in_process=true >/dev/null
ninja -C "$ROOT/build-h5inproc" src/graft >/dev/null
O=$(mktemp -d "$D/h5sb.XXXXXX")
trap 'rm -rf "$O"' EXIT

"$GRAFT" apply -q -r "$BENCH/vgg11_keras.yaml" -o "$O/vgg11.h5" "$SRC" "$D/vgg11_skel.h5"
$PY - "$O/vgg11.h5" "$O/vgg11_gz.h5" <<'PYEOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "w") as b:
    for k, v in a.attrs.items():
        b.attrs[k] = v
    def copy(name, obj):
        if isinstance(obj, h5py.Group):
            g = b.require_group(name)
        else:
            g = b.create_dataset(name, data=obj[()], compression="gzip", compression_opts=1,
                                 chunks=True if obj.ndim else None)
        for k, v in obj.attrs.items():
            g.attrs[k] = v
    a.visititems(copy)
PYEOF
cat "$SRC" "$D/vgg11_skel.h5" "$O/vgg11.h5" "$O/vgg11_gz.h5" >/dev/null

# pair LABEL ARGS...: RUNS runs of the case with the child and in process,
# interleaved (a shared machine drifts); medians of CPU (user + sys), wall
# and peak RSS of each, and the CPU and wall ratios.
pair() {
  local label=$1; shift
  : >"$OUT/.child"; : >"$OUT/.inproc"
  for _ in $(seq "$RUNS"); do
    for b in child inproc; do
      local exe=$GRAFT; [ $b = inproc ] && exe=$IN
      /usr/bin/time -a -o "$OUT/.$b" -f '%e %U %S %M' "$exe" "$@" >/dev/null
    done
  done
  med() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  local cc cw cm ic iw im
  cc=$(awk '{print $2 + $3}' "$OUT/.child" | med); cw=$(cut -d' ' -f1 "$OUT/.child" | med)
  cm=$(cut -d' ' -f4 "$OUT/.child" | med); ic=$(awk '{print $2 + $3}' "$OUT/.inproc" | med)
  iw=$(cut -d' ' -f1 "$OUT/.inproc" | med); im=$(cut -d' ' -f4 "$OUT/.inproc" | med)
  awk -v l="$label" -v cc="$cc" -v cw="$cw" -v cm="$cm" -v ic="$ic" -v iw="$iw" -v im="$im" \
      -v n="$RUNS" 'BEGIN {
    printf "%-26s child: cpu %6.2f s wall %6.2f s peak %6.1f MB | in process: cpu %6.2f s wall %6.2f s peak %6.1f MB (%d runs each)\n", l, cc, cw, cm / 1024, ic, iw, im / 1024, n
    printf "  => child / in process: cpu %+.1f%%, wall %+.1f%%\n", (cc / ic - 1) * 100, (cw / iw - 1) * 100 }'
}
echo "== B1: vgg11 .pth -> Keras 2 h5 skeleton"
pair "apply -> keras h5" apply -q -r "$BENCH/vgg11_keras.yaml" -o "$O/b1.h5" "$SRC" "$D/vgg11_skel.h5"
echo "== H1: keras h5 source -> safetensors"
pair "convert keras h5" convert -q -o "$O/h1.safetensors" "$O/vgg11.h5"
echo "== H2: gzip-chunked keras h5, ls --sha256"
pair "ls --sha256 chunked+gzip" ls --sha256 "$O/vgg11_gz.h5"
