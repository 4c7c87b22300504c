#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A link far slower than the guest dirties memory: ticks are skipped and
# counted (never queued), the backup is not declared lost, and tiberd's
# memory stays bounded.
. "$(dirname "$0")/lib.sh"

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

start_replicator r --failover no
start_guest g --ram 128M --workload synthetic --dirty-rate 2500 --wss 64M --content random
start_tiberd d --rate 50 --link-gbit 0.05 --lag-limit 10s
WAIT_S=60 wait_for acked_at_least 5 || fail "no epochs over the slow link"
r1=$(rss_kb "$TIBERD_PID")
sleep 4
r2=$(rss_kb "$TIBERD_PID")
skipped=$(status_field skipped_ticks)
state=$(status_field state)
epochs=$(status_field epochs)
[ "$state" = protected ] || fail "state $state, want protected"
[ "$skipped" -gt 20 ] || fail "only $skipped ticks skipped over a 50 Mbit/s link"
[ "$r2" -le $((r1 + r1 / 5 + 4096)) ] || fail "tiberd RSS grew from $r1 to $r2 kB"
inflight=$(status_field inflight)
[ "$inflight" -le 2 ] || fail "$inflight epochs in flight (limit 2)"
kill -TERM "$TIBERD_PID"
wait "$TIBERD_PID" || fail "tiberd exit status $?"
echo "test_slow_link: ok: epochs=$epochs skipped_ticks=$skipped rss_kb $r1 -> $r2"
