#!/usr/bin/env bash
# graft convert of the 531 MB vgg11 .pth (bench/gen_vgg11.py, random init)
# to safetensors, against cp of the same file and the Python way
# (torch.load, then writing safetensors: bench/py_pth_to_safetensors.py),
# page cache warm (graft fsyncs its output; cp + fsync shown beside cp);
# prints each time and peak RSS and the ratios.  RUNS runs
# each (default 1: the ratios of one run), medians.  Also checks that the
# two outputs hold the same tensors.  Not a test.
source "$(dirname "$0")/common.sh"
set -euo pipefail
RUNS=${RUNS:-1}
[ -x "$GRAFT" ] || build_release
D=$OUT/convert
mkdir -p "$D"
trap 'rm -f "$D"/*.safetensors "$D"/copy.pth' EXIT
[ -f "$OUT/vgg11.pth" ] || $PY "$BENCH/gen_vgg11.py" "$OUT/vgg11.pth"
SRC=$OUT/vgg11.pth
printf 'graft: %s\nsource: %s (%s bytes), %s run(s) each, %s cores\n' "$GRAFT" "$SRC" \
  "$(stat -c %s "$SRC")" "$RUNS" "$(nproc)"
cat "$SRC" >/dev/null
measure "cp" "$RUNS" cp "$SRC" "$D/copy.pth"; cp_t=$LAST_MEDIAN
# graft fsyncs its output before renaming it into place; cp does not
measure "cp + fsync" "$RUNS" bash -c 'cp "$0" "$1" && sync "$1"' "$SRC" "$D/copy.pth"; cps=$LAST_MEDIAN
measure "graft convert" "$RUNS" "$GRAFT" convert -q "$SRC" -o "$D/graft.safetensors"; g=$LAST_MEDIAN
measure "python (torch.load + write)" "$RUNS" $PY "$BENCH/py_pth_to_safetensors.py" "$SRC" \
  "$D/py.safetensors"; py=$LAST_MEDIAN
$PY -c 'import safetensors' 2>/dev/null && echo "  (python side: safetensors.torch.save_file)" ||
  echo "  (python side: safetensors package absent; same layout written by the script)"
"$GRAFT" diff "$D/graft.safetensors" "$D/py.safetensors" >/dev/null &&
  echo "  graft diff: the two outputs hold the same tensors"
awk -v g="$g" -v c="$cp_t" -v s="$cps" -v p="$py" 'BEGIN {
  printf "  => graft convert / cp      %6.2f\n", g / c
  printf "  => graft convert / (cp + fsync) %6.2f\n", g / s
  printf "  => python / graft convert  %6.2f\n", p / g }'
