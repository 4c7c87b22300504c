#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fence agent for simulated hosts (the demo and the tests): a "host" is the set
# of processes listed in PIDFILE (one pid per line: its tiberd, its
# guest, or its replicator and restored guests).  Fencing = SIGKILL all
# of them; exit 0 only once none is alive (zombies count as dead), like
# a power fence that confirms the power is off.
#   fence_cmd = fence-pids.sh PIDFILE      (tiber appends GUEST PEER)
# TIBER_FENCE_FAIL=1 in the environment, or a file PIDFILE.fail, makes
# it fail without touching anything (the tests' broken fence device).
set -u
pidfile=$1
if [ -n "${TIBER_FENCE_FAIL:-}" ] || [ -e "$pidfile.fail" ]; then
	echo "fence device unreachable (simulated failure)"
	exit 1
fi
[ -r "$pidfile" ] || { echo "no pid file $pidfile"; exit 1; }
pids=$(cat "$pidfile")
alive_of() {
	local p s out=
	for p in $pids; do
		s=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || continue
		[ "$s" = Z ] || out="$out $p"
	done
	echo "$out"
}
for p in $pids; do kill -9 "$p" 2>/dev/null; done
for _ in $(seq 200); do
	alive=$(alive_of)
	if [ -z "$alive" ]; then
		echo "host fenced: pids $(echo $pids) stopped (guest ${2:-?}, peer ${3:-?})"
		exit 0
	fi
	sleep 0.05
done
echo "still alive after SIGKILL:$alive"
exit 1
