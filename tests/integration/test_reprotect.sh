#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# After a failover the restored guest is protected again, towards a new
# backup, with one command: `tiberctl reprotect` asks the replicator where
# the restored guest runs and becomes the tiberd that protects it.  The
# restored guest (the same process, not restarted) then gets epochs acked
# by the new backup, its output flows again, and the first backup keeps
# refusing the old primary.
. "$(dirname "$0")/lib.sh"

start_replicator r --heartbeat-timeout 500ms --control "$T/r.ctl" \
	--restore-args "--kv-listen unix:$T/kvB.sock --stats-interval 0"
R1=$REPL_ADDR
start_guest g --ram 64M --workload mixed --kv-listen "unix:$T/kvA.sock" --dirty-rate 20000
start_tiberd d --rate 100 --heartbeat-timeout 500ms --reconnect-interval 200ms
# many epochs here: the re-protecting tiberd counts its own from 1 again
WAIT_S=20 wait_for acked_at_least 150 || fail "no protected epochs"
rfield() { "$BIN/tiberctl" --socket "$T/r.ctl" status --json | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

"$BIN/tiberctl" --socket "$T/r.ctl" reprotect simguest --backup "$R1" 2>"$T/early.out" &&
	fail "reprotect of a guest that has not failed over succeeded"
grep -q "has not failed over to this host" "$T/early.out" || fail "reprotect refusal unclear: $(cat "$T/early.out")"

# the primary host dies (tiberd and its guest); the operator promotes
kill -9 "$TIBERD_PID" "$GUEST_PID"
WAIT_S=10 wait_for eval '[ "$(rfield state)" = primary_lost ]' || fail "replicator state $(rfield state), want primary_lost"
"$BIN/tiberctl" --socket "$T/r.ctl" promote simguest >/dev/null || fail "promote refused"
WAIT_S=10 wait_for test -S "$T/kvB.sock" || fail "restored guest not serving"
RESTORED=$(rfield restored)
[ -S "$RESTORED" ] || fail "replicator status names no restored guest socket ('$RESTORED')"
RPID=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T/failover.json" | tail -1)
kill -0 "$RPID" || fail "restored guest process $RPID not running"

# a new backup (the repaired host), then one command
start_replicator r2 --heartbeat-timeout 500ms --control "$T/r2.ctl"
R2_PID=$REPL_PID
CTL=$T/d2.ctl
"$BIN/tiberctl" --socket "$T/r.ctl" reprotect simguest --backup "$REPL_ADDR" "${TLS_ARGS[@]}" \
	--control "$CTL" --rate 100 --heartbeat-timeout 500ms >"$T/d2.log" 2>&1 &
PIDS+=($!)
WAIT_S=20 wait_for acked_at_least 5 || fail "the restored guest is not protected again"
grep -q "re-protecting simguest (sim guest $RESTORED)" "$T/d2.log" || fail "tiberctl did not say what it protects"
r2=$("$BIN/tiberctl" --socket "$T/r2.ctl" status --json)
echo "$r2" | grep -q '"name":"simguest","domid":[0-9]*,"state":"protected"' || fail "new backup: $r2"
c2=$(echo "$r2" | sed -n 's/.*"committed_epoch":\([0-9]*\).*/\1/p')
[ "${c2:-0}" -ge 5 ] || fail "new backup committed epoch ${c2:-none}"
[ "$(rfield reprotects)" = 1 ] || fail "first backup: reprotects=$(rfield reprotects)"
[ "$(rfield state)" = failed_over ] || fail "first backup state $(rfield state), want failed_over (it still refuses the old primary)"
kill -0 "$RPID" || fail "the restored guest was restarted or died"
# its output flows: a KV round trip through the newly gated output
"$ROOT/tests/kv_incr.py" "$T/kvB.sock" 7 1 reprotect >/dev/null ||
	fail "no KV reply from the re-protected guest"
# and it is gated again: with the new backup stopped (no ACK), a reply
# stays held, whatever epoch count the restored guest's gate had
python3 - "$T/kvB.sock" "$R2_PID" <<'PY' || fail "output of the re-protected guest left before the new backup acked it"
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
os.kill(int(sys.argv[2]), signal.SIGSTOP)
try:
    s.settimeout(1.5)
    s.sendall(b"7 2 INCR reprotect\n")
    try:
        sys.exit("reply while the backup was stopped: %r" % s.recv(100))
    except socket.timeout:
        pass
finally:
    os.kill(int(sys.argv[2]), signal.SIGCONT)
s.settimeout(10)
f = s.recv(100).split()
assert f[:3] == [b"7", b"2", b"OK"], f
PY
echo "test_reprotect: ok: restored guest pid $RPID protected again, new backup at epoch $c2"
