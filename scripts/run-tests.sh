#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run test programs one by one; every one runs even if an earlier one
# failed.  Exit status 77 means "skipped" (the environment lacks something,
# the test says what).  Prints a closing "N passed, N failed" line.
set -u
kind=$1
shift
pass=0 fail=0 skip=0 failed=()
for t in "$@"; do
	[ -x "$t" ] || continue
	echo "=== $kind: $t"
	start=$(date +%s.%N)
	if [ -n "${TIBER_VALGRIND:-}" ]; then
		valgrind -q --error-exitcode=99 --leak-check=full "$t"
	else
		"$t"
	fi
	rc=$?
	secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
	case $rc in
	0) pass=$((pass + 1)); echo "--- PASS $t (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "--- SKIP $t (${secs}s)" ;;
	*) fail=$((fail + 1)); failed+=("$t"); echo "--- FAIL $t rc=$rc (${secs}s)" ;;
	esac
done
for f in "${failed[@]}"; do echo "failed: $f"; done
echo "$kind: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
