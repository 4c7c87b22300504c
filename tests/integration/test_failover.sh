#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kill -9 the primary at random points of the epoch cycle, N times
# (TIBER_FAILOVER_RUNS, default 30): every failover must restore a
# consistent epoch and no client may have seen output ahead of it.
# A negative control with output gating off must be caught.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/failover_run.sh"

kv_runs "${TIBER_FAILOVER_RUNS:-30}"
stat() { # field name -> "p50=X max=Y" over the runs
	grep -o "$1=[0-9.]*" "$T/runs.txt" | cut -d= -f2 | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) printf "p50=%.1f max=%.1f", v[int((NR + 1) / 2)], v[NR] }'
}
echo "failover: detect_ms $(stat detect_ms) restore_ms $(stat restore_ms) (runs with gating)"

# Negative control: without output gating clients must get caught seeing
# replies from epochs the backup never had.
caught=0
for i in 1 2 3; do
	kv_run "$T/neg$i" no 700 >"$T/neg$i.txt"
	rc=$?
	cat "$T/neg$i.txt"
	if [ $rc -eq 2 ]; then caught=1; break; fi
done
# shellcheck disable=SC2154 # ok, bad: set by kv_runs
echo "failover: $ok passed, $bad failed; negative control (gating off) caught=$caught"
[ "$bad" -eq 0 ] && [ "$caught" -eq 1 ]
