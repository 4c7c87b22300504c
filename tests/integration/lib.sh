#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Shared helpers of the integration tests (sourced).  Every process a
# test starts is killed on exit, restored guests included.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# TIBER_BIN_DIR: other builds of the programs (make check-integration-asan)
BIN=${TIBER_BIN_DIR:-$ROOT/build/bin}
export TIBER_SIMGUEST=$BIN/tiber-simguest
T=$(mktemp -d "${TMPDIR:-/tmp}/tiber-it.XXXXXX")
export TMPDIR=$T # what the daemons put in $TMPDIR goes with the test
# The link is TLS (a pre-shared key) in every test, as in production.
"$ROOT/scripts/tls-keys.sh" psk "$T/psk" tiberd-test >/dev/null
TLS_ARGS=(--tls-psk-file "$T/psk")
PIDS=()

tb_cleanup() {
	local p
	exec 2>/dev/null # not bash's "Killed" line for each job below
	if [ -n "${TIBER_SAN_LOG_DIR:-}" ]; then
		# sanitized daemons: an orderly exit first, so LeakSanitizer
		# checks them (reports go to TIBER_SAN_LOG_DIR)
		local i alive
		for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
		for i in $(seq 50); do
			alive=0
			for p in "${PIDS[@]}"; do
				[ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" = "" ] ||
					[ "$(awk '{print $3}' /proc/$p/stat)" = Z ] || alive=1
			done
			[ $alive = 0 ] && break
			sleep 0.1
		done
	fi
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	# restored guests are started by the replicator in their own session
	if [ -f "$T/failover.json" ]; then
		for p in $(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T/failover.json"); do
			kill -9 "$p" 2>/dev/null
		done
	fi
	wait 2>/dev/null
	if [ -n "${TB_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap tb_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$T"/*.log; do
		[ -f "$f" ] || continue
		echo "--- $f (tail)" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}

# wait_for CMD... : retry CMD for up to $WAIT_S seconds (default 10).
wait_for() {
	local end=$((SECONDS + ${WAIT_S:-10}))
	until "$@" 2>/dev/null; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}

# start_replicator NAME [flags...]: sets REPL_ADDR, REPL_PID
start_replicator() {
	local name=$1
	shift
	"$BIN/tiber-replicator" --listen 127.0.0.1:0 --status-file "$T/failover.json" \
		"${TLS_ARGS[@]}" "$@" >"$T/$name.log" 2>&1 &
	REPL_PID=$!
	PIDS+=("$REPL_PID")
	wait_for grep -q "listening on" "$T/$name.log" || fail "replicator did not start"
	REPL_ADDR=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$T/$name.log" | head -1)
}

# start_guest NAME [flags...]: sets GUEST_SOCK, GUEST_PID
start_guest() {
	local name=$1
	shift
	GUEST_SOCK=$T/$name.sock
	"$BIN/tiber-simguest" --socket "$GUEST_SOCK" --stats-interval 0 \
		--stats-file "$T/$name.stats.json" "$@" >"$T/$name.log" 2>&1 &
	GUEST_PID=$!
	PIDS+=("$GUEST_PID")
	wait_for test -S "$GUEST_SOCK" || fail "simguest $name did not start"
}

# start_tiberd NAME [flags...]: sets TIBERD_PID, CTL
start_tiberd() {
	local name=$1
	shift
	CTL=$T/$name.ctl
	"$BIN/tiberd" --backend sim --guest "$GUEST_SOCK" --backup "$REPL_ADDR" "${TLS_ARGS[@]}" \
		--control "$CTL" --trace "$T/$name.trace" "$@" >"$T/$name.log" 2>&1 &
	TIBERD_PID=$!
	PIDS+=("$TIBERD_PID")
}

# status_field KEY: one field of `tiberctl status` of the running tiberd
status_field() {
	"$BIN/tiberctl" --socket "$CTL" status --json 2>/dev/null |
		sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

acked_at_least() { [ "$(status_field epochs)" -ge "$1" ] 2>/dev/null; }
state_is() { [ "$(status_field state)" = "$1" ]; }
