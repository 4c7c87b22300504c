#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: protect a simulated guest running a key-value service with
# live clients, show the checkpoints, kill the primary (kill -9 of tiberd
# and the guest: the "host" dies), show the backup failing over, and check
# that the clients carry on against the restored guest with consistent
# data.  Exits 0 only if everything checked out.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TIBER_BIN_DIR:-$ROOT/build/bin} # or the installed programs (tests/deb-install.sh)
export TIBER_SIMGUEST=$BIN/tiber-simguest
D=$(mktemp -d /tmp/tiber-demo.XXXXXX)
export TMPDIR=$D # the restored guest's socket goes with the demo
PIDS=()
RATE=${TIBER_DEMO_RATE:-50}
PROTECT_S=${TIBER_DEMO_SECONDS:-6}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	if [ -f "$D/failover.json" ]; then
		for p in $(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$D/failover.json"); do
			kill -9 "$p" 2>/dev/null
		done
	fi
	wait 2>/dev/null
	if [ -n "${TIBER_DEMO_KEEP:-}" ]; then echo "logs kept in $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT
say() { printf '\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'VERDICT: FAILED: %s (logs: %s)\n' "$*" "$D"; TIBER_DEMO_KEEP=1; exit 1; }
until_ok() { # SECONDS CMD...
	local end=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}
status() { "$BIN/tiberctl" --socket "$D/tiberd.ctl" status --json 2>/dev/null; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

say "both hosts: a pre-shared key for the TLS 1.3 replication link"
"$ROOT/scripts/tls-keys.sh" psk "$D/link.psk" primary-1 | sed 's/^/   /'

say "backup host: tiber-replicator"
"$BIN/tiber-replicator" --listen 127.0.0.1:0 --status-file "$D/failover.json" \
	--tls-psk-file "$D/link.psk" \
	--fence-cmd "$ROOT/scripts/fence-pids.sh $D/primary.pids" \
	--control "$D/replicator.ctl" \
	--restore-args "--kv-listen unix:$D/kv.sock --stats-interval 0" \
	>"$D/replicator.log" 2>&1 &
PIDS+=($!)
until_ok 10 grep -q "listening on" "$D/replicator.log" || die "replicator did not start"
BACKUP=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$D/replicator.log" | head -1)
echo "   listening on $BACKUP (TLS 1.3, pre-shared key); it fails a guest over only after fencing its"
echo "   primary host (fence_cmd: scripts/fence-pids.sh kills that host's processes)"

say "primary host: a 256 MiB simulated guest with a key-value service"
"$BIN/tiber-simguest" --socket "$D/guest.sock" --ram 256M --workload mixed \
	--kv-listen "unix:$D/kv.sock" --dirty-rate 50000 --wss 64M --content delta \
	--stats-interval 0 >"$D/guest.log" 2>&1 &
GUEST=$!
PIDS+=("$GUEST")
until_ok 10 test -S "$D/kv.sock" || die "guest did not start"
grep -m1 "ready" "$D/guest.log" | sed 's/^/   /'

say "primary host: tiberd protects it at $RATE Hz"
"$BIN/tiberd" --backend sim --guest "$D/guest.sock" --backup "$BACKUP" \
	--tls-psk-file "$D/link.psk" --rate "$RATE" --control "$D/tiberd.ctl" --trace "$D/trace.jsonl" \
	>"$D/tiberd.log" 2>&1 &
TIBERD=$!
PIDS+=("$TIBERD")
echo "$TIBERD $GUEST" >"$D/primary.pids"
until_ok 20 sh -c "\"$BIN/tiberctl\" --socket \"$D/tiberd.ctl\" status --json | grep -q '\"state\":\"protected\"'" ||
	die "guest not protected (see tiberd.log)"

say "clients: 4 key-value clients (every reply waits for the backup's ACK)"
"$BIN/tiber-simguest" --kv-client "unix:$D/kv.sock" --clients 4 --ops 100000000 \
	--keys 16 --retry 300ms --log "$D/replies.log" >"$D/clients.log" 2>&1 &
CLIENTS=$!
PIDS+=("$CLIENTS")

for i in $(seq 1 "$PROTECT_S"); do
	sleep 1
	s=$(status)
	printf '   t=%ds state=%s epochs=%s pause p50=%sus p99=%sus backup lag=%sms shipped=%sMB skipped=%s replies=%s\n' \
		"$i" "$(field state <<<"$s")" "$(field epochs <<<"$s")" \
		"$(field pause_p50_us <<<"$s")" "$(field pause_p99_us <<<"$s")" \
		"$(field backup_lag_ms <<<"$s")" "$(field mb_shipped <<<"$s")" \
		"$(field skipped_ticks <<<"$s")" "$(wc -l <"$D/replies.log")"
done
LAST=$(status)
[ "$(field state <<<"$LAST")" = protected ] || die "not protected before the kill"

say "the primary host dies: kill -9 tiberd and the guest"
T_KILL=$(date +%s%N)
kill -9 "$TIBERD" "$GUEST"
wait "$TIBERD" "$GUEST" 2>/dev/null
BEFORE=$(wc -l <"$D/replies.log")
echo "   clients had $BEFORE replies; last epoch tiberd reported acked: $(field last_epoch <<<"$LAST")"

until_ok 10 grep -q '"event":"failover"' "$D/failover.json" || die "no failover"
FO=$(cat "$D/failover.json")
NEWPID=$(field pid <<<"$FO")
PIDS+=("$NEWPID")
grep -E "PRIMARY LOST|fence primary: (host|succeeded)|FAILOVER DONE|restore verify" "$D/replicator.log" | sed 's/^/   /'
echo "   tiberctl status on the backup:"
"$BIN/tiberctl" --socket "$D/replicator.ctl" status | sed 's/^/   /'
T_UP=$(date +%s%N)

say "clients continue against the restored guest"
until_ok 10 sh -c "[ \$(wc -l <\"$D/replies.log\") -ge $((BEFORE + 200)) ] || grep -q VIOLATION \"$D/clients.log\""
sleep 2
AFTER=$(($(wc -l <"$D/replies.log") - BEFORE))
kill -9 "$CLIENTS" 2>/dev/null
wait "$CLIENTS" 2>/dev/null
echo "   replies after failover: $AFTER"
grep "VIOLATION" "$D/clients.log" | head -3 | sed 's/^/   /'

say "verdict"
VERIFY=$(grep -o "restore verify=[a-zA-Z]*" "$D/replicator.log" | head -1 | cut -d= -f2)
VIOL=$(grep -c "CONSISTENCY VIOLATION" "$D/clients.log")
printf '   epochs acked before the kill: %s, pause p50/p99: %s/%s us\n' \
	"$(field epochs <<<"$LAST")" "$(field pause_p50_us <<<"$LAST")" "$(field pause_p99_us <<<"$LAST")"
printf '   failover: restored epoch %s, detection %s ms after the last record, restore %s ms; kill -> clients served again: %d ms\n' \
	"$(field epoch <<<"$FO")" "$(field detect_ms <<<"$FO")" "$(field restore_ms <<<"$FO")" \
	$(((T_UP - T_KILL) / 1000000))
printf '   restored guest verifier: %s; client consistency violations: %s; replies after failover: %s\n' \
	"$VERIFY" "$VIOL" "$AFTER"
[ "$VERIFY" = ok ] || die "the restored guest's memory does not verify"
[ "$VIOL" -eq 0 ] || die "a client saw output the backup did not have"
[ "$AFTER" -ge 100 ] || die "clients did not continue after the failover"
echo "VERDICT: OK: the guest survived its host; no client saw a reply the backup did not have."
