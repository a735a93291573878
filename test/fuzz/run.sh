#!/usr/bin/env bash
# Build every fuzz target and run each for SECONDS (default 60) on its seed
# corpus test/fuzz/corpus/<target>/ (plus the inputs earlier runs found, kept
# in out/fuzz/work/<target>/).  Exits non-zero if any target crashes, leaks,
# trips a sanitizer or times out; the input is saved as
# out/fuzz/artifacts/<target>-crash-*.  Usage: test/fuzz/run.sh [SECONDS] [TARGET...]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
out="${FUZZ_OUT:-$top/out/fuzz}"
secs="${1:-60}"
shift || true
"$here/build.sh" --out "$out" "$@"
rc=$?
if [ $rc -ne 0 ]; then
  exit $rc
fi

declare -A dict
targets=()
while read -r t d _; do
  case "$t" in ''|'#'*) continue ;; esac
  dict[$t]="$d"
  targets+=("$t")
done < "$here/targets.txt"
[ $# -gt 0 ] && targets=("$@")

mkdir -p "$out/artifacts" "$out/logs"
failed=()
summary=""
for t in "${targets[@]}"; do
  work="$out/work/$t"
  mkdir -p "$work"
  args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-")
  d="${dict[$t]:-}"
  if [ -n "$d" ] && [ "$d" != - ]; then
    args+=(-dict="$here/dict/$d")
  fi
  echo "== $t: ${secs}s"
  "$out/bin/$t" "${args[@]}" "$work" "$here/corpus/$t" > "$out/logs/$t.log" 2>&1
  trc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/logs/$t.log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$out/logs/$t.log" | tail -1)"
  if [ $trc -ne 0 ]; then
    failed+=("$t")
    grep -E 'ERROR|SUMMARY|invariant|==[0-9]+==|Test unit written|runtime error' \
      "$out/logs/$t.log" | head -20
    summary+=$(printf '%-16s FAILED (exit %d) after %s runs; log %s\n' "$t" "$trc" "${runs:-?}" \
               "$out/logs/$t.log")$'\n'
  else
    summary+=$(printf '%-16s ok  %10s runs  %s  corpus %s\n' "$t" "${runs:-?}" "${cov:-}" \
               "$(ls "$work" | wc -l)")$'\n'
  fi
done
echo
echo "== fuzz summary (${secs}s per target)"
printf '%s' "$summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
