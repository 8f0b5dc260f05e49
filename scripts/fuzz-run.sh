#!/usr/bin/env bash
# Long libFuzzer runs (the numbers in bench/results/*-fuzz.md): each target named (default all) for
# RUNS executions or MAX_SECONDS, whichever comes first, one at a time on one core, growing its
# corpus in .native-build/fuzz/corpus/<target> from the seeds that `npx tap test/fuzz.test.ts`
# writes to .native-build/fuzz/seeds/. Prints one summary line per target; exits non-zero if any
# target did.
# Usage: scripts/fuzz-run.sh [RUNS=1000000] [MAX_SECONDS=1800] [target ...]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.native-build/fuzz"
runs="${1:-1000000}"
seconds="${2:-1800}"
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors gguf checkpoint lora json)
bash "$root/scripts/build-fuzz.sh" "$out" || exit $?
mkdir -p "$out/logs" "$out/crashes"
status=0
for t in "${targets[@]}"; do
  [ -d "$out/seeds/$t" ] || { echo "fuzz-run: no seeds for $t: run npx tap test/fuzz.test.ts first" >&2; exit 1; }
  mkdir -p "$out/corpus/$t"
  log="$out/logs/$t.log"
  start=$(date +%s)
  "$out/${t}_fuzzer" -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/crashes/$t-" "$out/corpus/$t" "$out/seeds/$t" >"$log" 2>&1
  code=$?
  [ $code -eq 0 ] || status=1
  executions=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  final=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed -E 's/^#[0-9]+[[:space:]]+DONE[[:space:]]+//')
  echo "$t: exit $code, ${executions:-?} executions in $(( $(date +%s) - start )) s; $final"
done
exit $status
