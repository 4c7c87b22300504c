#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A backup that cannot be reached is loud: a malformed address is a
# start-up error naming the key; a name that does not resolve and a port
# nobody listens on are logged at warning with the reason, once per reason
# (not at every retry), and shown in `tiberctl status` as link_error.
. "$(dirname "$0")/lib.sh"

"$BIN/tiberd" --backend sim --guest "$T/none.sock" --backup garbage >"$T/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "tiberd --backup garbage exited $rc, want 2"
grep -q "key 'backup': 'garbage' is not HOST:PORT" "$T/bad.out" || fail "no clear error: $(cat "$T/bad.out")"

start_guest g --ram 16M
REPL_ADDR=tiber-test.invalid:7700
start_tiberd d --rate 50 --reconnect-interval 100ms
wait_for eval '[ "$(status_field link_error)" = "cannot resolve host name" ]' ||
	fail "status link_error '$(status_field link_error)', want 'cannot resolve host name'"
sleep 1 # ten more retries
n=$(grep -c "warn: .*backup=tiber-test.invalid:7700 unreachable, retrying every 100 ms: cannot resolve host name" "$T/d.log")
[ "$n" -eq 1 ] || fail "unresolvable backup logged $n times at warning, want once"
[ "$(status_field state)" = starting ] || fail "state $(status_field state), want starting"
kill "$TIBERD_PID"; wait "$TIBERD_PID"

# a port nobody listens on: refused, a new reason, logged again
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REPL_ADDR=127.0.0.1:$port
start_tiberd d2 --rate 50 --reconnect-interval 100ms
wait_for grep -q "warn: .*backup=127.0.0.1:$port unreachable.*: Connection refused" "$T/d2.log" ||
	fail "refused backup not logged at warning"
wait_for eval '[ "$(status_field link_error)" = "Connection refused" ]' ||
	fail "status link_error '$(status_field link_error)'"
echo "test_unreachable_backup: ok"
