#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2317 # stages are called indirectly as "bench_$name"
# `make bench`: run the benchmark stages in order; each prints its table
# on stdout and writes JSON (and plots) under bench-out/ (git-ignored).
#
#   TIBER_BENCH_OUT    output directory (default: bench-out)
#   TIBER_BENCH_QUICK  1: tiber-microbench --quick (tiber-bench takes its
#                      own flags from TIBER_BENCH_ARGS)
#   TIBER_BENCH_ARGS   extra arguments for tiber-bench (e.g. --quick);
#                      a full tiber-bench run also refreshes docs/bench/
#   TIBER_BENCH_STAGES names of the stages to run (default: all), e.g.
#                      TIBER_BENCH_STAGES=microbench make bench
#
# A stage is a function bench_<name> listed in STAGES; a stage whose
# program is not built yet is skipped with a note.  Add later stages by
# appending to STAGES.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
BIN=${BIN:-build/bin}
OUT=${TIBER_BENCH_OUT:-bench-out}
QUICK=()
[ "${TIBER_BENCH_QUICK:-0}" = 1 ] && QUICK=(--quick)
mkdir -p "$OUT"

bench_microbench() {
	"$BIN/tiber-microbench" "${QUICK[@]}" --json "$OUT/microbench.json"
}

bench_pause() {
	local rc
	# shellcheck disable=SC2086 # TIBER_BENCH_ARGS is split on purpose
	"$BIN/tiber-bench" --json "$OUT/bench.json" --plot "$OUT/plots" \
		--markdown "$OUT/bench.md" ${TIBER_BENCH_ARGS:-}
	rc=$?
	# A complete full sweep refreshes docs/bench/ (tables, JSON, PNGs),
	# which docs/benchmarks.md shows; partial or quick runs do not.
	case " ${TIBER_BENCH_ARGS:-} " in
	*" --quick "* | *" --only"* | *" --secs"*) return $rc ;;
	esac
	if [ $rc -ne 130 ] && [ -s "$OUT/bench.md" ]; then
		mkdir -p docs/bench
		cp "$OUT/bench.md" docs/bench/results.md
		cp "$OUT/bench.json" docs/bench/bench.json
		cp "$OUT"/plots/*.png docs/bench/
		echo "bench: docs/bench/ updated from this run"
	fi
	return $rc
}

# stage name, program it needs
STAGES=(
	"microbench tiber-microbench"
	"pause tiber-bench"
)

fail=0
for s in "${STAGES[@]}"; do
	read -r name prog <<<"$s"
	if [ -n "${TIBER_BENCH_STAGES:-}" ] &&
		[[ " ${TIBER_BENCH_STAGES//,/ } " != *" $name "* ]]; then
		continue
	fi
	if [ ! -x "$BIN/$prog" ]; then
		echo "=== bench $name: skipped ($BIN/$prog not built)"
		continue
	fi
	echo "=== bench $name: $BIN/$prog"
	start=$(date +%s.%N)
	"bench_$name"
	rc=$?
	secs=$(awk -v s="$start" -v e="$(date +%s.%N)" \
		'BEGIN{printf "%.1f", e-s}')
	if [ $rc -eq 0 ]; then
		echo "--- bench $name done (${secs}s)"
	else
		echo "--- bench $name FAILED rc=$rc (${secs}s)"
		fail=1
	fi
done
echo "bench: results in $OUT/"
exit $fail
