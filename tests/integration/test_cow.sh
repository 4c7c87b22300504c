#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copy-on-write mode (tiberd --mode cow over a guest with uffd-wp sync
# tracking) under the failover test's fault injection: the primary is
# killed -9 at random points N times (TIBER_COW_RUNS, default 8); every
# failover must restore a consistent epoch (the restored guest verifies
# its RAM: a page copied after the guest changed it breaks the image),
# and no client may have seen output ahead of it.  The traces must show
# every incremental epoch's copy ending after its resume.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/failover_run.sh"

export KV_GUEST_ARGS="--dirty-mech uffd-sync" KV_TIBERD_ARGS="--mode cow"
after=0 epochs=0
check_run() { # DIR RC: tiberd ran in mode cow; count its epochs
	local n
	grep -q "mode=cow" "$1/d.log" || fail "$1: tiberd not in mode cow"
	grep -q "dirty=uffd-wp-sync" "$1/g.log" || fail "$1: no uffd-wp sync tracking"
	# epochs (not the first sync) whose copy ended after the resume
	n=$(grep -v '"full":true' "$1/t.jsonl" |
		awk -F'"t_copied":' 'NF > 1 { split($2, a, "[,}]"); c = a[1] + 0
			split($0, b, "\"t_resumed\":"); split(b[2], r, ","); if (c > r[1] + 0) n++ }
			END { print n + 0 }')
	after=$((after + n))
	epochs=$((epochs + $(grep -vc '"full":true' "$1/t.jsonl")))
}
kv_runs "${TIBER_COW_RUNS:-8}" check_run
# shellcheck disable=SC2154 # ok, bad: set by kv_runs
echo "cow: $ok passed, $bad failed; $after of $epochs incremental epochs copied after the resume"
[ "$bad" -eq 0 ] && [ "$after" -gt 0 ] && [ "$after" -eq "$epochs" ]
