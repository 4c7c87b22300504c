#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Policy hold: when the backup is lost the guest is held suspended (and
# its output with it) until the backup is back; then re-sync and go on.
. "$(dirname "$0")/lib.sh"

# Writes the guest made so far, read from its RAM (works while it is
# suspended, when it cannot answer SIGUSR1).
progress() {
	local f ram=
	for f in /proc/$GUEST_PID/fd/*; do
		case $(readlink "$f") in *tiber-guest-ram*) ram=$f ;; esac
	done
	"$BIN/tiber-simguest" --verify-image "$ram" 2>&1 | grep -o 'writes=[0-9]*' | cut -d= -f2
}

start_replicator repl1 --failover no
ADDR=$REPL_ADDR
start_guest g --ram 64M --workload synthetic --dirty-rate 20000 --wss 16M
start_tiberd d --rate 100 --heartbeat-timeout 300ms --reconnect-interval 200ms \
	--on-backup-loss hold
WAIT_S=20 wait_for acked_at_least 20 || fail "no protected epochs"
kill -9 "$REPL_PID"
wait "$REPL_PID" 2>/dev/null
WAIT_S=10 wait_for state_is held || fail "state $(status_field state), want held"
p1=$(progress)
sleep 0.5
p2=$(progress)
[ -n "$p1" ] && [ "$p1" = "$p2" ] || fail "held guest still progressing ($p1 -> $p2)"
"$BIN/tiber-simguest" --verify-image "/proc/$GUEST_PID/fd/$(basename "$(for f in /proc/$GUEST_PID/fd/*; do case $(readlink "$f") in *tiber-guest-ram*) echo "$f" ;; esac; done)")" >/dev/null ||
	fail "held guest's RAM is not at a consistent point"
"$BIN/tiber-replicator" "${TLS_ARGS[@]}" --listen "$ADDR" --failover no >"$T/repl2.log" 2>&1 &
PIDS+=($!)
WAIT_S=20 wait_for state_is protected || fail "no re-sync after the backup returned"
p3=$(progress)
sleep 0.5
p4=$(progress)
[ -n "$p3" ] && [ "$p4" -gt "$p3" ] || fail "guest not running after the re-sync ($p3 -> $p4)"
kill -TERM "$TIBERD_PID"
wait "$TIBERD_PID" || fail "tiberd exit status $?"
echo "test_backup_loss_hold: ok: guest held at progress $p1 while the backup was gone"
