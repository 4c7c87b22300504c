#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tiberd and tiber-replicator under systemd's notification protocol (as
# in tiberd@.service, Type=notify, WatchdogSec=): a datagram socket
# stands in for systemd.  The replicator says READY=1 once listening and
# feeds the watchdog; tiberd says READY=1 only once its guest is
# protected (not while its backup is still missing), sends STATUS lines,
# and feeds the watchdog three times per WATCHDOG_USEC while its epoch
# loop runs; STOPPING=1 on SIGTERM.
. "$(dirname "$0")/lib.sh"

listen() { # NAME: a notify socket logging "TIME MESSAGE" lines to $T/NAME.msgs
	python3 - "$T/$1.nsock" >"$T/$1.msgs" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    m = s.recv(4096).decode()
    print("%.3f %s" % (time.monotonic(), m.replace("\n", " | ")), flush=True)
PY
	PIDS+=($!)
	wait_for test -S "$T/$1.nsock" || fail "no notify socket $1"
}
listen d
listen r

# tiberd first, its backup not there yet: no READY
start_guest g --ram 64M --dirty-rate 20000
RSOCK=$T/repl.sock
CTL=$T/d.ctl
NOTIFY_SOCKET=$T/d.nsock WATCHDOG_USEC=600000 "$BIN/tiberd" --backend sim --guest "$GUEST_SOCK" \
	--backup "unix:$RSOCK" "${TLS_ARGS[@]}" --control "$CTL" --rate 50 \
	--reconnect-interval 200ms >"$T/d.log" 2>&1 &
TIBERD_PID=$!
PIDS+=($TIBERD_PID)
WAIT_S=20 wait_for grep -q "STATUS=" "$T/d.msgs" ||
	fail "tiberd sent no STATUS while waiting for its backup"
grep -q "READY=1" "$T/d.msgs" && fail "tiberd said READY=1 before its guest was protected: $(grep READY "$T/d.msgs")"

NOTIFY_SOCKET=$T/r.nsock WATCHDOG_USEC=1000000 "$BIN/tiber-replicator" --listen "unix:$RSOCK" \
	"${TLS_ARGS[@]}" >"$T/r.log" 2>&1 &
PIDS+=($!)
WAIT_S=20 wait_for grep -q "READY=1" "$T/r.msgs" || fail "the replicator never said READY=1"
WAIT_S=20 wait_for grep -q "READY=1" "$T/d.msgs" || fail "tiberd never said READY=1"
state=$(status_field state)
[ "$state" = protected ] || fail "READY=1 sent, but tiberd is '$state'"
grep "READY=1" "$T/d.msgs" | head -1 | grep -q "STATUS=protected" || fail "READY=1 not with the protected STATUS: $(grep READY "$T/d.msgs")"
t_ready=$(grep "READY=1" "$T/d.msgs" | head -1 | cut -d' ' -f1)
sleep 2
# WATCHDOG_USEC 600 ms: a message every 200 ms, each feeding the watchdog
wd=$(awk -v t="$t_ready" '$1 > t && /WATCHDOG=1/' "$T/d.msgs" | wc -l)
[ "$wd" -ge 6 ] || fail "tiberd fed the watchdog $wd times in the 2 s after READY (want >= 6)"
rwd=$(grep -c "WATCHDOG=1" "$T/r.msgs")
[ "$rwd" -ge 5 ] || fail "the replicator fed its watchdog $rwd times"
kill -TERM "$TIBERD_PID"
WAIT_S=10 wait_for grep -q "STOPPING=1" "$T/d.msgs" || fail "no STOPPING=1 from tiberd"
echo "test_systemd_notify: ok: tiberd READY=1 once protected, $wd watchdog pings in 2 s; replicator READY=1, $rwd pings"
