#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Without a fence command the backup never fails over by itself: a lost
# primary is reported (tiberctl status: primary_lost) until an operator
# runs `tiberctl promote`.  The old primary, back from a stall, learns on
# reconnect that the guest runs on the backup and fences itself: its
# guest is stopped, its held output never released (the observer checks
# no two guests released output and no reply was lost).
. "$(dirname "$0")/lib.sh"

start_replicator r --heartbeat-timeout 500ms --control "$T/r.ctl" \
	--restore-args "--kv-listen unix:$T/kvB.sock --stats-interval 0"
grep -q "NOT failed over automatically" "$T/r.log" || fail "no warning about failover without fence_cmd"
start_guest g --ram 64M --workload mixed --kv-listen "unix:$T/kvA.sock" --dirty-rate 20000
start_tiberd d --rate 100 --heartbeat-timeout 500ms --reconnect-interval 200ms
WAIT_S=20 wait_for acked_at_least 5 || fail "no protected epochs"
rstate() { "$BIN/tiberctl" --socket "$T/r.ctl" status --json | sed -n 's/.*"state":"\([a-z_]*\)".*/\1/p'; }
[ "$(rstate)" = protected ] || fail "replicator state $(rstate), want protected"
python3 "$ROOT/tests/integration/observer.py" "$T/kvA.sock" "$T/kvB.sock" "$T/stop" >"$T/obs.out" 2>&1 &
OBS=$!
PIDS+=("$OBS")
wait_for test -e "$T/stop.A" || fail "the observer got no reply from the primary guest"

kill -STOP "$TIBERD_PID"
WAIT_S=10 wait_for eval '[ "$(rstate)" = primary_lost ]' || fail "replicator state $(rstate), want primary_lost"
sleep 1.5
[ "$(rstate)" = primary_lost ] || fail "state $(rstate) without fencing or an operator"
[ -S "$T/kvB.sock" ] && fail "a guest was restored without fencing or an operator"
grep -q "NOT failing over without fencing" "$T/r.log" || fail "the wait for an operator is not logged"
"$BIN/tiberctl" --socket "$T/r.ctl" status | grep -q "^simguest .* wait_operator " ||
	fail "tiberctl status does not say the guest waits for an operator: $("$BIN/tiberctl" --socket "$T/r.ctl" status)"
"$BIN/tiberctl" --socket "$T/r.ctl" promote nosuchguest 2>/dev/null && fail "promote of an unknown guest succeeded"
"$BIN/tiberctl" --socket "$T/r.ctl" promote simguest >"$T/promote.out" || fail "promote refused: $(cat "$T/promote.out")"
[ "$(rstate)" = failed_over ] || fail "state $(rstate) after promote"
"$BIN/tiberctl" --socket "$T/r.ctl" promote simguest 2>/dev/null && fail "a second promote succeeded"
WAIT_S=10 wait_for test -S "$T/kvB.sock" || fail "restored guest not serving"

# The old primary comes back: it must fence itself.
kill -CONT "$TIBERD_PID"
WAIT_S=10 wait_for state_is fenced || fail "old primary state $(status_field state), want fenced"
grep -q "SELF-FENCING" "$T/d.log" || fail "self-fencing not logged"
WAIT_S=5 wait_for eval '! kill -0 $GUEST_PID 2>/dev/null || [ "$(awk "{print \$3}" /proc/$GUEST_PID/stat)" = Z ]' ||
	fail "old guest still alive after self-fencing"
sleep 1
touch "$T/stop"
wait "$OBS" || fail "observer: $(cat "$T/obs.out")"
echo "test_promote: ok: $(cat "$T/obs.out")"
