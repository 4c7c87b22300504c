#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run test programs one by one; every one runs even if an earlier one
# failed.  Exit status 77 means "skipped" (the environment lacks something,
# the test says what).  Prints a closing "N passed, N failed, N skipped"
# line, and for Check suites the summed counts of checks (Check's
# "Checks: N, Failures: F, Errors: E" plus "Skipped: K of N checks").
set -u
kind=$1
shift
pass=0 fail=0 skip=0 failed=()
checks=0 cfail=0 cskip=0
# This run's own directory: the tests make their files and sockets under
# $TMPDIR, and their processes carry TIBER_RUN_TAG, so that what a test
# leaves behind is found even with another make check running beside
# this one (each sees only its own).
run_dir=$(mktemp -d /tmp/tiber-r.XXXXXX)
out=$run_dir.out
trap 'rm -rf "$run_dir" "$out"' EXIT
export TMPDIR=$run_dir TIBER_RUN_TAG=${run_dir##*/}
# What a test may leave behind: its processes (tiber's programs run with
# this run's tag) and entries in the run's directory.
litter() {
	local pid comm
	ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^tiber/ {print $1, $3}' |
		while read -r pid comm; do
			tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" |
				grep -qx "TIBER_RUN_TAG=$TIBER_RUN_TAG" &&
				echo "process $pid $comm"
		done
	ls -A "$run_dir" | sed "s|^|$run_dir/|"
}

for t in "$@"; do
	[ -x "$t" ] || continue
	before=$(litter)
	echo "=== $kind: $t"
	start=$(date +%s.%N)
	# to a file, shown as it grows: a process the test leaked cannot
	# hold the runner up the way it could hold a pipe open
	if [ -n "${TIBER_VALGRIND:-}" ]; then
		valgrind -q --error-exitcode=99 --leak-check=full "$t"
	else
		"$t"
	fi >"$out" 2>&1 &
	tpid=$!
	tail -n +1 -s 0.2 -f --pid=$tpid "$out"
	wait $tpid
	rc=$?
	read -r n f e < <(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$out" | tail -1)
	checks=$((checks + ${n:-0})) cfail=$((cfail + ${f:-0} + ${e:-0}))
	k=$(sed -n 's/^Skipped: \([0-9]*\) of .*/\1/p' "$out" | tail -1)
	cskip=$((cskip + ${k:-0}))
	# a test's processes are killed at its end: give them a moment to go
	for i in $(seq 1 20); do
		left=$(comm -13 <(echo "$before" | sort) <(litter | sort))
		[ -z "$left" ] && break
		sleep 0.1
	done
	# sanitized programs write their reports there (ASAN_OPTIONS log_path).
	# LeakSanitizer's "Unable to get registers from thread N" alone is no
	# report: a thread was exiting while it stopped the process, and it
	# went on (that thread's stack counted as reachable, or skipped when
	# the thread was gone: compiler-rt lsan_common.cpp); said, not
	# counted as a failure.
	if [ -n "${TIBER_SAN_LOG_DIR:-}" ]; then
		for r in "$TIBER_SAN_LOG_DIR"/*; do
			[ -f "$r" ] && ! grep -qvE '^==[0-9]+==Unable to get registers from thread [0-9]+\.$' "$r" || continue
			echo "$t: note: $(basename "$r"): LeakSanitizer could not stop a thread that was exiting (its stack counted as reachable): $(head -1 "$r")"
			rm -f "$r"
		done
	fi
	if [ -n "${TIBER_SAN_LOG_DIR:-}" ] && [ -n "$(ls -A "$TIBER_SAN_LOG_DIR")" ]; then
		echo "$t: sanitizer reports:"
		for r in "$TIBER_SAN_LOG_DIR"/*; do echo "== $r"; head -n 40 "$r"; done
		rm -f "$TIBER_SAN_LOG_DIR"/*
		[ "$rc" -eq 0 ] && rc=1
	fi
	if [ -n "$left" ]; then
		echo "$t left behind:"; echo "$left" | sed 's/^/  /'
		[ "$rc" -eq 0 ] && rc=1
	fi
	secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
	case $rc in
	0) pass=$((pass + 1)); echo "--- PASS $t (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "--- SKIP $t (${secs}s)" ;;
	*) fail=$((fail + 1)); failed+=("$t"); echo "--- FAIL $t rc=$rc (${secs}s)" ;;
	esac
done
for f in "${failed[@]}"; do echo "failed: $f"; done
echo "$kind: $pass passed, $fail failed, $skip skipped"
[ "$checks" -gt 0 ] && echo "$kind checks: $checks run, $cfail failed, $cskip skipped"
[ "$fail" -eq 0 ]
