# Shared by the bench/*.sh scripts: medians of repeated runs, peak RSS.
# measure LABEL RUNS CMD...: prints "LABEL median_s peak_MB" and sets
# LAST_MEDIAN / LAST_PEAK / LAST_CPU (user + sys seconds).
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
PY=${PY:-/usr/bin/python3}
OUT=${OUT:-$BENCH/out}
GRAFT=${GRAFT:-$ROOT/build-release/src/graft}
mkdir -p "$OUT"

build_release() {
  [ -f "$ROOT/build-release/build.ninja" ] || meson setup "$ROOT/build-release" --buildtype=release >/dev/null
  ninja -C "$ROOT/build-release" >/dev/null
}

measure() {
  local label=$1 runs=$2; shift 2
  local times=() peaks=() cpus=()
  for _ in $(seq "$runs"); do
    local line
    # FRESH (paths or globs): removed before each run, outside the timing, so
    # that every run writes a new file as graft does, not over an old one
    # (cp over a file first frees its pages: 0.17 s fresh vs 0.46 s over it)
    [ -z "${FRESH:-}" ] || rm -f $FRESH
    # and no dirty pages left by the run before: writeback throttling them
    # made runs after a large output 2-3x slower, cp's as much as graft's
    sync
    /usr/bin/time -o "$OUT/.time" -f '%e %M %U %S' "$@" >/dev/null 2>"$OUT/.stderr" ||
      { echo "$label: failed: $(tail -n 1 "$OUT/.stderr")" >&2; return 1; }
    read -r e m u s < <(tail -n 1 "$OUT/.time")
    times+=("$e"); peaks+=("$m"); cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}')")
  done
  # CPU seconds (user + sys): on a loaded machine wall time also counts waiting
  LAST_CPU=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  LAST_MEDIAN=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  LAST_PEAK=$(printf '%s\n' "${peaks[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.1f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1024}')
  printf '%-34s median %7.3f s (cpu %6.2f s)   peak %8s MB   (%d runs)\n' "$label" "$LAST_MEDIAN" "$LAST_CPU" "$LAST_PEAK" "$runs"
}
