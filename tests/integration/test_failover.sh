#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kill -9 the primary at random points of the epoch cycle, N times
# (TIBER_FAILOVER_RUNS, default 30): every failover must restore a
# consistent epoch and no client may have seen output ahead of it.
# A negative control with output gating off must be caught.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/failover_run.sh"

runs=${TIBER_FAILOVER_RUNS:-30}
ok=0 bad=0
for i in $(seq 1 "$runs"); do
	kill_ms=$(( (RANDOM % 900) + 300 ))
	kv_run "$T/run$i" yes "$kill_ms" | tee -a "$T/runs.txt"
	case ${PIPESTATUS[0]} in
	0) ok=$((ok + 1)) ;;
	*) bad=$((bad + 1)); echo "run $i FAILED, logs:"; tail -n 5 "$T/run$i"/*.log ;;
	esac
	[ -n "${TB_KEEP:-}" ] || [ "${PIPESTATUS[0]:-0}" != 0 ] || rm -rf "$T/run$i"
done
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
echo "failover: $ok passed, $bad failed; negative control (gating off) caught=$caught"
[ "$bad" -eq 0 ] && [ "$caught" -eq 1 ]
