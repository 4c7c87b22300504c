#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Planned switchover: `tiberctl switchover` on the primary takes a last
# epoch with the guest left suspended, the backup starts the guest from
# exactly that epoch, and the primary's copy is destroyed.  A client of
# each guest (observer.py) sees no reply lost and none repeated: the
# restored guest's first answer is the primary's last plus one.  Then
# `tiberctl reprotect` protects it again in the other direction.
. "$(dirname "$0")/lib.sh"

start_replicator r --control "$T/r.ctl" \
	--restore-args "--kv-listen unix:$T/kvB.sock --stats-interval 0"
start_guest g --ram 64M --workload mixed --kv-listen "unix:$T/kvA.sock" --dirty-rate 20000
start_tiberd d --rate 100
WAIT_S=20 wait_for state_is protected || fail "not protected"
python3 "$ROOT/tests/integration/observer.py" "$T/kvA.sock" "$T/kvB.sock" "$T/stop" >"$T/obs.out" 2>&1 &
OBS=$!
PIDS+=("$OBS")
wait_for test -e "$T/stop.A" || fail "the observer got no reply from the primary guest"
sleep 0.5

"$BIN/tiberctl" --socket "$T/r.ctl" promote simguest 2>/dev/null && fail "promote accepted while a live primary protects the guest"
"$BIN/tiberctl" --socket "$CTL" switchover >"$T/sw.out" || fail "switchover refused: $(cat "$T/sw.out")"
WAIT_S=20 wait_for eval '! kill -0 $TIBERD_PID 2>/dev/null' || fail "tiberd still running after the switchover"
wait "$TIBERD_PID"
rc=$?
[ $rc -eq 0 ] || fail "tiberd exited $rc after the switchover"
grep -q "SWITCHOVER DONE at epoch" "$T/d.log" || fail "no SWITCHOVER DONE in tiberd's log"
WAIT_S=10 wait_for grep -q "SWITCHOVER" "$T/r.log" || fail "the replicator did not take the switchover"
WAIT_S=10 wait_for test -e "$T/stop.B" || fail "the restored guest does not answer"
WAIT_S=5 wait_for eval '! kill -0 $GUEST_PID 2>/dev/null || [ "$(awk "{print \$3}" /proc/$GUEST_PID/stat)" = Z ]' ||
	fail "the primary's guest still runs after the switchover"
sleep 0.5
touch "$T/stop"
wait "$OBS" || fail "observer: $(cat "$T/obs.out")"
max_a=$(sed -n 's/.*max_a=\([0-9]*\).*/\1/p' "$T/obs.out")
first_b=$(sed -n 's/.*first_b=\([0-9]*\).*/\1/p' "$T/obs.out")
[ "$first_b" -eq $((max_a + 1)) ] || fail "first reply of the restored guest $first_b, want $((max_a + 1)) (lost or repeated output): $(cat "$T/obs.out")"
# then protected again in the other direction: a replicator where the
# primary was, the guest's new host running the tiberd
start_replicator r2
CTL=$T/d2.ctl
"$BIN/tiberctl" --socket "$T/r.ctl" reprotect simguest --backup "$REPL_ADDR" "${TLS_ARGS[@]}" \
	--control "$CTL" --rate 100 >"$T/d2.log" 2>&1 &
PIDS+=($!)
WAIT_S=20 wait_for acked_at_least 5 || fail "not protected again in the other direction"
echo "test_switchover: ok: $(grep -o 'SWITCHOVER DONE at epoch [0-9]*' "$T/d.log"); $(cat "$T/obs.out"); re-protected: $(status_field epochs) epochs acked by the new backup"
