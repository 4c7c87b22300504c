#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One fault-injection run (sourced by test_failover.sh and soak.sh):
#   kv_run DIR GATE KILL_AFTER_MS
# (KV_GUEST_ARGS, KV_TIBERD_ARGS: more flags for the guest and tiberd)
# A simguest with the durable KV service (every change is logged to its
# disk before the reply) and synthetic writers, KV clients, a replicator
# (disk replicas in DIR/rdisk) and tiberd at 100 Hz; after KILL_AFTER_MS
# of protection the primary (tiberd and the guest) is killed with
# SIGKILL.  Checks: the backup fails over from a committed epoch, the
# restored guest's RAM verifies and its disk agrees with it (the log
# holds exactly the records memory counts, nothing beyond), the clients
# continue against it, no client ever saw a reply the restored state
# does not contain (the KV service reports a sequence gap), and every
# change a client saw acknowledged is in the disk log.  Prints one line
# "run: ..." and returns 0 (ok), 1 (failed), 2 (consistency violation
# seen; expected with GATE=no).
kv_run() {
	local d=$1 gate=$2 kill_ms=$3 rp gp dp cp pid n0 n1 viol
	mkdir -p "$d/rdisk"
	"$BIN/tiber-replicator" "${TLS_ARGS[@]}" --listen 127.0.0.1:0 --status-file "$d/failover.json" \
		--disk-dir "$d/rdisk" \
		--heartbeat-timeout 500ms \
		--fence-cmd "$ROOT/scripts/fence-pids.sh $d/primary.pids" \
		--restore-args "--kv-listen unix:$d/kv.sock --stats-interval 0" \
		>"$d/r.log" 2>&1 &
	rp=$!
	# shellcheck disable=SC2086 # KV_GUEST_ARGS / KV_TIBERD_ARGS: words
	"$BIN/tiber-simguest" --socket "$d/g.sock" --ram 64M --workload mixed \
		--kv-listen "unix:$d/kv.sock" --dirty-rate 20000 --stats-interval 0 \
		--disk "$d/disk.img" --disk-size 64M ${KV_GUEST_ARGS:-} \
		>"$d/g.log" 2>&1 &
	gp=$!
	WAIT_S=10 wait_for grep -q "listening on" "$d/r.log" || { echo "run: replicator did not start"; kill -9 $rp $gp; return 1; }
	WAIT_S=10 wait_for test -S "$d/kv.sock" || { echo "run: guest did not start"; kill -9 $rp $gp; return 1; }
	addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$d/r.log" | head -1)
	"$BIN/tiberd" "${TLS_ARGS[@]}" --backend sim --guest "$d/g.sock" --backup "$addr" --rate 100 \
		--output-gating "$gate" --control "$d/ctl" --trace "$d/t.jsonl" \
		${KV_TIBERD_ARGS:-} >"$d/d.log" 2>&1 &
	dp=$!
	echo "$dp $gp" >"$d/primary.pids"
	CTL=$d/ctl WAIT_S=20 wait_for acked_at_least 3 || { echo "run: not protected"; kill -9 $rp $gp $dp; return 1; }
	"$BIN/tiber-simguest" --kv-client "unix:$d/kv.sock" --clients 4 --ops 100000000 \
		--keys 16 --retry 300ms --log "$d/c.replies" >"$d/c.log" 2>&1 &
	cp=$!
	sleep "$(awk -v m="$kill_ms" 'BEGIN{printf "%.3f", m/1000}')"
	kill -9 "$dp" "$gp"
	wait "$dp" "$gp" 2>/dev/null
	n0=$(wc -l <"$d/c.replies")
	WAIT_S=10 wait_for grep -q '"event":"failover"' "$d/failover.json" ||
		{ echo "run: no failover"; kill -9 $rp $cp; return 1; }
	pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$d/failover.json" | head -1)
	# The clients go on against the restored guest (or stop at a gap).
	WAIT_S=10 wait_for eval '[ $(wc -l <"$d/c.replies") -ge $((n0 + 40)) ] || grep -q VIOLATION "$d/c.log"'
	n1=$(wc -l <"$d/c.replies")
	kill -9 "$cp" "$pid" "$rp" 2>/dev/null
	wait "$cp" "$rp" 2>/dev/null
	viol=$(grep -c "CONSISTENCY VIOLATION" "$d/c.log")
	local epoch detect restore verify dverify durable
	durable=$("$BIN/tiber-simguest" --check-replies "$d/c.replies" --disk "$d/rdisk/simguest.disk0.img" 2>&1)
	epoch=$(sed -n 's/.*"epoch":\([0-9]*\).*/\1/p' "$d/failover.json")
	detect=$(sed -n 's/.*"detect_ms":\([0-9.]*\).*/\1/p' "$d/failover.json")
	restore=$(sed -n 's/.*"restore_ms":\([0-9.]*\).*/\1/p' "$d/failover.json")
	verify=$(grep -o "restore verify=[a-zA-Z]*" "$d/r.log" | head -1 | cut -d= -f2)
	dverify=$(grep -o "restore disk verify=[a-zA-Z]*" "$d/r.log" | head -1 | cut -d= -f2)
	echo "run: gate=$gate kill_after_ms=$kill_ms epoch=$epoch detect_ms=$detect restore_ms=$restore verify=$verify disk_verify=$dverify durable=\"$(echo "$durable" | tail -1)\" replies_before=$n0 after=$((n1 - n0)) violations=$viol"
	[ "$viol" -gt 0 ] && return 2
	[ "$verify" = ok ] || return 1
	[ "$dverify" = ok ] || return 1
	case $durable in *" 0 missing"*) ;; *) return 1 ;; esac
	[ $((n1 - n0)) -ge 40 ] || return 1
	return 0
}

# kv_runs N [HOOK]: kv_run N times, gating on, killed at random points
# 300-1199 ms into protection, into $T/run1..N (result lines appended to
# $T/runs.txt); counts them in ok and bad.  HOOK DIR RC, if given, runs
# after each; then a passed run's directory is removed (unless TB_KEEP).
kv_runs() {
	local i rc kill_ms
	ok=0 bad=0
	for i in $(seq 1 "$1"); do
		kill_ms=$(( (RANDOM % 900) + 300 ))
		kv_run "$T/run$i" yes "$kill_ms" | tee -a "$T/runs.txt"
		rc=${PIPESTATUS[0]}
		if [ "$rc" -eq 0 ]; then
			ok=$((ok + 1))
		else
			bad=$((bad + 1)); echo "run $i FAILED, logs:"; tail -n 5 "$T/run$i"/*.log
		fi
		[ -z "${2:-}" ] || "$2" "$T/run$i" "$rc"
		[ -n "${TB_KEEP:-}" ] || [ "$rc" != 0 ] || rm -rf "$T/run$i"
	done
}
