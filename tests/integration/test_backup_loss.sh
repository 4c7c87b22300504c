#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Kill the backup: the guest keeps running unprotected with its output
# released; the backup returns: full re-sync and protection resume.
. "$(dirname "$0")/lib.sh"

start_replicator repl1 --failover no
PORT_ADDR=$REPL_ADDR
start_guest g --ram 128M --workload synthetic --dirty-rate 20000 --wss 16M --content delta
start_tiberd d --rate 100 --heartbeat-timeout 300ms --reconnect-interval 200ms
WAIT_S=20 wait_for acked_at_least 20 || fail "no protected epochs"
state_is protected || fail "state $(status_field state), want protected"

kill -9 "$REPL_PID"
wait "$REPL_PID" 2>/dev/null
WAIT_S=10 wait_for state_is unprotected || fail "backup loss not detected"
grep -q "BACKUP LOST" "$T/d.log" || fail "backup loss not logged"
# The guest runs on: its progress counter moves.
p1=$(kill -USR1 "$GUEST_PID"; sleep 0.3; grep -o 'progress=[0-9]*' "$T/g.log" | tail -1 | cut -d= -f2)
sleep 0.5
p2=$(kill -USR1 "$GUEST_PID"; sleep 0.3; grep -o 'progress=[0-9]*' "$T/g.log" | tail -1 | cut -d= -f2)
[ -n "$p1" ] && [ -n "$p2" ] && [ "$p2" -gt "$p1" ] || fail "guest not progressing ($p1 -> $p2)"

"$BIN/tiber-replicator" --listen "$PORT_ADDR" --failover no >"$T/repl2.log" 2>&1 &
PIDS+=($!)
e1=$(status_field epochs)
WAIT_S=20 wait_for state_is protected || fail "no re-sync after the backup returned"
WAIT_S=20 wait_for acked_at_least $((e1 + 20)) || fail "protection did not resume"
[ "$(status_field resyncs)" -ge 2 ] || fail "resyncs $(status_field resyncs), want >= 2"
[ "$(status_field backup_losses)" -ge 1 ] || fail "backup_losses not counted"

kill -TERM "$TIBERD_PID"
wait "$TIBERD_PID"
rc=$?
[ $rc -eq 0 ] || fail "tiberd exit $rc after SIGTERM"
kill -0 "$GUEST_PID" || fail "guest died"
grep -q "primary detached" "$T/repl2.log" || fail "backup did not see an orderly detach"
# A new tiberd (its epochs numbered from 1 again) protects the same guest
# on the same backup.
start_tiberd d2 --rate 100
WAIT_S=20 wait_for acked_at_least 10 || fail "a restarted tiberd was not accepted by the backup"
echo "test_backup_loss: ok ($(grep -c . "$T/d.trace") epochs traced)"
