#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Disks across a lost backup: a durable KV guest (every change logged to
# its disk before the reply) with a disk writer beside it; the backup
# stalls (SIGSTOP) long enough for the primary to lose it and keep the
# guest running with its output held; when the backup is back, the
# re-sync sends only the disk blocks written since the last acked epoch
# (not the whole disk); then the primary dies (kill -9) and the backup
# fails over: the restored guest's disk agrees with its memory, and
# every change a client saw acknowledged is in its disk log.  A 100 GiB
# sparse disk costs neither side memory in proportion to its size.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/rdisk"
: >"$T/primary.pids"
start_replicator r --disk-dir "$T/rdisk" --heartbeat-timeout 500ms \
	--reconnect-grace 10s --fence-cmd "$ROOT/scripts/fence-pids.sh $T/primary.pids" \
	--restore-args "--kv-listen unix:$T/kv2.sock --stats-interval 0"
start_guest g --ram 64M --workload kv --kv-listen "unix:$T/kv.sock" \
	--disk "$T/disk.img" --disk-size 100G --disk-writes 500
start_tiberd d --rate 50 --heartbeat-timeout 300ms --reconnect-interval 200ms
echo "$TIBERD_PID $GUEST_PID" >"$T/primary.pids"
WAIT_S=60 wait_for acked_at_least 20 || fail "no protected epochs"
grep -q "disks: full copy (102400 MiB)" "$T/d.log" || fail "no full copy of the disk logged"
"$BIN/tiber-simguest" --kv-client "unix:$T/kv.sock" --clients 4 --ops 100000000 \
	--keys 16 --retry 300ms --log "$T/c.replies" >"$T/c.log" 2>&1 &
PIDS+=($!)
sleep 1

# Memory: a bitmap per disk and bounded buffers, not the disk's size.
hwm() { awk '/VmHWM/ {print int($2 / 1024)}' /proc/"$1"/status; }
[ "$(hwm "$REPL_PID")" -lt 256 ] || fail "replicator peak RSS $(hwm "$REPL_PID") MiB for a 100 GiB disk"
[ "$(hwm "$TIBERD_PID")" -lt 512 ] || fail "tiberd peak RSS $(hwm "$TIBERD_PID") MiB for a 100 GiB disk"
alloc=$(du -m "$T/rdisk/simguest.disk0.img" | cut -f1)
[ "$alloc" -lt 1024 ] || fail "the backup's sparse copy takes $alloc MiB"

kill -STOP "$REPL_PID"
WAIT_S=10 wait_for state_is isolated || fail "backup loss not detected (state $(status_field state))"
sleep 1
kill -CONT "$REPL_PID"
WAIT_S=30 wait_for eval '[ "$(status_field resyncs)" -ge 2 ] && state_is protected' ||
	fail "no re-sync after the backup returned (state $(status_field state))"
line=$(grep -o "disks: re-sync of [0-9]* blocks changed since epoch [0-9]*" "$T/d.log" | tail -1)
[ -n "$line" ] || fail "the re-sync copied the whole disk again"
blocks=$(echo "$line" | awk '{print $4}')
[ "$blocks" -gt 0 ] && [ "$blocks" -lt 100000 ] || fail "re-sync of $blocks blocks (of 26214400)"
[ "$(grep -c "disks: full copy" "$T/d.log")" -eq 1 ] || fail "more than one full copy"
e1=$(status_field epochs)
WAIT_S=20 wait_for acked_at_least $((e1 + 20)) || fail "protection did not resume"
sleep 0.5

kill -9 "$TIBERD_PID" "$GUEST_PID"
WAIT_S=20 wait_for grep -q '"event":"failover"' "$T/failover.json" || fail "no failover"
WAIT_S=10 wait_for grep -q "restore disk verify=" "$T/r.log" || fail "restored guest did not check its disk"
grep -q "restore disk verify=ok" "$T/r.log" || fail "disk and memory disagree: $(grep 'restore disk verify' "$T/r.log")"
grep -q "restore verify=ok" "$T/r.log" || fail "restored RAM inconsistent"
out=$("$BIN/tiber-simguest" --check-replies "$T/c.replies" --disk "$T/rdisk/simguest.disk0.img") ||
	fail "acknowledged changes lost: $out"
echo "test_disk_resync: ok ($line; $out)"
