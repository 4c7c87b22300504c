#!/bin/bash
# SPDX-License-Identifier: MIT
# In dom0 (TIBER_XEN_JOB=ha make check-xen): the HA-on-real-Xen pieces.
#  1. netbuf_hold_release: tests/unit/test_xen_netbuf on a kernel with
#     sch_plug, ifb, act_mirred, cls_matchall, sch_ingress (veth "vif" on
#     a bridge; IPv4/IPv6/ARP frames held until released, in order;
#     teardown leaves nothing).
#  2. PV failover (function failover below) of the test guest
#     (tests/xen/guest) at 20 Hz and of the stock Linux PV domU at 10 Hz,
#     tiber-replicator --backend xen on loopback: the primary falls
#     silent, the replicator restores the last committed epoch with
#     xl restore of our stream v2; the guest's suspend hypercall returns
#     0 there, it reconnects and keeps counting from the committed state
#     (the test guest also verifies its memory ledger).
#  3. (TIBER_HA_PVH=1) the stock PVH domU: snapshot + restore alone
#     (tb-xenrestore), then failover through tiberd.  The PVH full sync
#     of its 1M-frame pfn space does not finish in time under TCG.
# Prints TEST/INFO lines.
OUT=/root/results/ha; mkdir -p $OUT
TIBERD=/usr/local/bin/tiberd
REPL=/usr/local/bin/tiber-replicator
pass=0; fail=0
now() { cut -d' ' -f1 /proc/uptime; }
el() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
res() { if [ "$2" = 0 ]; then pass=$((pass+1)); echo "TEST $1 PASS $3"; else fail=$((fail+1)); echo "TEST $1 FAIL $3"; fi; }
conlog() { echo /var/log/xen/console/guest-$1.log; }
ticks() { grep -a -o '^TICK [0-9]*' "$(conlog $1)" 2>/dev/null | cut -d' ' -f2; }
last_tick() { ticks $1 | tail -1; }
ticking() {
	local a b i; a=$(last_tick $1)
	for i in $(seq 20); do sleep 0.5; b=$(last_tick $1); [ -n "$b" ] && [ "$b" != "$a" ] && return 0; done
	return 1
}

echo "=== tiber HA: $(xl info | grep -E '^xen_version') dom0 kernel $(uname -r)"
for m in sch_plug ifb act_mirred cls_matchall cls_u32 sch_ingress bridge veth; do
	modprobe "$m" 2>/dev/null || echo "NOTE modprobe $m failed"
done

# 1. output commit
T=/usr/local/bin/test_xen_netbuf
if [ -x "$T" ]; then
	CK_FORK=yes "$T" > $OUT/netbuf.log 2>&1; rc=$?
	sed 's/^/INFO netbuf: /' $OUT/netbuf.log
	res netbuf_hold_release $(( rc != 0 || $(grep -c SKIP $OUT/netbuf.log) != 0 )) "rc=$rc"
else
	res netbuf_hold_release 1 "no $T"
fi

# 2. PV failover: the test guest, then the stock Linux PV domU
tg_field() { # FIELD: the value of FIELD= in the last TICK line on stdin
	grep -a '^TICK' | tail -1 | grep -o "$1=[0-9]*" | cut -d= -f2
}
# failover TAG CFG KERNEL HZ: protect the guest of CFG with tiberd at HZ,
# let 100 epochs be acked, then the primary host falls silent (tiberd
# frozen: no FIN, no heartbeat, so the replicator must detect the loss
# by its timeout) and its domain is destroyed.  The replicator restores
# the last committed epoch E.  Every guest: running again (a console line
# from the new domain), counting on from the primary's state: not
# restarted, never ahead.  The test guest (TICKs with counters) also:
# RESTORED (its suspend returned 0), memory ledger verified, exactly E-1
# suspend-cancels (epoch E is taken in its E-th suspend under tiberd,
# before that one is cancelled).
failover() {
	local tag=$1 cfg=$2 kernel=$3 hz=$4 port=$((7400 + RANDOM % 500))
	local G; G=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$cfg")
	local tg=0 o=$OUT/$tag; mkdir -p $o
	grep -q 'tiber-testguest' "$cfg" && tg=1
	xl destroy $G >/dev/null 2>&1; rm -f "$(conlog $G)"
	timeout 120 xl create "$cfg" > $o/create.log 2>&1; local rc=$?
	ticking $G; local tk=$?
	local DOMID; DOMID=$(xl domid $G 2>/dev/null)
	res ${tag}_boot $(( rc || tk )) "xl create rc=$rc dom${DOMID:-?}"
	[ $(( rc || tk )) = 0 ] || { res ${tag}_failover 1 "not run: no guest"; return; }
	local canc0; canc0=$(tg_field suspends_cancelled < "$(conlog $G)")
	$REPL --listen 127.0.0.1:$port --backend xen --restore_args "$cfg" \
		--heartbeat_timeout 3s --status_file $o/status.jsonl \
		> $o/replicator.log 2>&1 &
	local rpid=$!
	sleep 0.5
	$TIBERD --backend xen --domain $DOMID --backup 127.0.0.1:$port \
		--rate $hz --kernel "$kernel" --suspend_timeout 2s \
		--heartbeat_timeout 10s --lag_limit 30s --trace $o/trace.jsonl \
		> $o/tiberd.log 2>&1 &
	local tpid=$!
	local t_sync; t_sync=$(now); local acked=0 i
	for i in $(seq 600); do
		acked=$(grep -c '"t_acked":[1-9]' $o/trace.jsonl 2>/dev/null)
		[ "${acked:-0}" -ge 100 ] && break
		kill -0 $tpid 2>/dev/null || break
		sleep 0.5
	done
	echo "INFO $tag: $acked acked epochs after $(el $t_sync)s"
	kill -STOP $tpid
	xl destroy $G; local t_kill; t_kill=$(now)
	sleep 0.2 # xenconsoled writes out what the old domain printed
	local nlines; nlines=$(wc -l < "$(conlog $G)")
	local tick_kill; tick_kill=$(grep -a -o '^TICK [0-9]*' "$(conlog $G)" | tail -1 | cut -d' ' -f2)
	echo "INFO $tag: froze tiberd, destroyed dom$DOMID at TICK $tick_kill"
	local marker='^TICK'; [ $tg = 1 ] && marker='^RESTORED'
	local t_run=""
	for i in $(seq 900); do
		if tail -n +$((nlines + 1)) "$(conlog $G)" | grep -a -q "$marker"; then
			t_run=$(el $t_kill); break
		fi
		grep -q 'failover restore:' $o/replicator.log && break
		sleep 0.1
	done
	sleep 2.5 # two heartbeats of the restored guest
	grep -a -E 'PRIMARY LOST|FAILOVER|failover' $o/replicator.log | sed "s/^/INFO $tag replicator: /"
	kill -9 $tpid; wait $tpid 2>/dev/null
	local after; after=$(tail -n +$((nlines + 1)) "$(conlog $G)")
	echo "$after" | grep -a -E '^(RESTORED|VERIFY)' | sed "s/^/INFO $tag guest: /"
	local first last ep fo
	first=$(echo "$after" | grep -a -o '^TICK [0-9]*' | head -1 | cut -d' ' -f2)
	last=$(echo "$after" | grep -a -o '^TICK [0-9]*' | tail -1 | cut -d' ' -f2)
	ep=$(grep -o '"epoch":[0-9]*' $o/status.jsonl 2>/dev/null | tail -1 | cut -d: -f2)
	fo=$(grep -a 'FAILOVER DONE' $o/replicator.log | tail -1)
	kv() { echo "$fo" | grep -o " $1=[0-9.]*" | head -1 | cut -d= -f2; }
	echo "INFO $tag: guest after restore: TICK ${first:-none} -> ${last:-none} (primary's last $tick_kill), committed epoch ${ep:-?}"
	echo "INFO TIMING ${tag}_failover rate=${hz}Hz detect_ms=$(kv detect_ms) restore_ms=$(kv restore_ms) stream_ms=$(kv stream_ms) xl_restore_ms=$(kv xl_restore_ms) stream_mib=$(kv stream_mib) data_pages=$(kv data_pages) zero_pages=$(kv zero_pages) kill_to_guest_running_s=${t_run:-none}"
	local ok=1
	[ -n "$fo" ] && [ -n "$t_run" ] && [ -n "$first" ] && \
		[ "$first" -le $((tick_kill + 1)) ] && [ "$first" -ge $((tick_kill - 30)) ] && \
		[ "${last:-0}" -gt "$first" ] && ok=0
	if [ $tg = 1 ] && [ $ok = 0 ]; then
		local restores canc
		restores=$(echo "$after" | tg_field restores)
		canc=$(echo "$after" | grep -a '^TICK' | head -1 | grep -o 'suspends_cancelled=[0-9]*' | cut -d= -f2)
		echo "INFO $tag: restored guest: suspends_cancelled=${canc:-?} (${canc0:-?} before tiberd), restores=${restores:-?}"
		[ "${restores:-0}" = 1 ] && echo "$after" | grep -a -q '^VERIFY ok why=restore' && \
			[ -n "$canc" ] && [ -n "$ep" ] && [ "$canc" -eq $(( ${canc0:-0} + ep - 1 )) ] || ok=1
	fi
	res ${tag}_failover $ok "guest running ${t_run:-never}s after the primary fell silent; $(tail -1 $o/status.jsonl 2>/dev/null)"
	[ $ok = 0 ] || { tail -5 $o/replicator.log $o/tiberd.log; echo "$after" | tail -5; } | sed 's/^/INFO /'
	kill $rpid 2>/dev/null; wait $rpid 2>/dev/null
	xl list | sed "s/^/INFO $tag xl list: /"
	xl destroy $G 2>/dev/null
}
if [ -x $TIBERD ] && [ -x $REPL ]; then
	[ -f /root/testguest/testguest.cfg ] &&
		failover pv_testguest /root/testguest/testguest.cfg /root/testguest/tiber-testguest 20
	[ -f /root/domu/domu.cfg ] &&
		failover pv_linux /root/domu/domu.cfg /root/domu/vmlinuz 10
else
	res pv_failover 1 "not run: $TIBERD, $REPL needed"
fi

[ "${TIBER_HA_PVH:-0}" = 1 ] || { echo "RESULT $pass passed, $fail failed"; exit 0; }

# 3a. restore path alone (no network): tb-xenrestore suspends the PVH
# domU, snapshots it like a replica, destroys it, restore()s it.
CFG=/root/domu/domh.cfg; NAME=domh; PORT=7411
if [ -x /usr/local/bin/tb-xenrestore ]; then
	timeout 300 xl create $CFG > $OUT/create0.log 2>&1
	ticking $NAME
	DOMID=$(xl domid $NAME 2>/dev/null)
	tick_kill=$(last_tick $NAME); nlines=$(wc -l < "$(conlog $NAME)")
	t=$(now)
	timeout 600 /usr/local/bin/tb-xenrestore $DOMID $CFG /root/domu/vmlinuz > $OUT/xenrestore.log 2>&1; rc=$?
	sed 's/^/INFO xenrestore: /' $OUT/xenrestore.log
	ticking $NAME; tk=$?
	first=$(tail -n +$((nlines + 1)) "$(conlog $NAME)" | grep -a -o '^TICK [0-9]*' | head -1 | cut -d' ' -f2)
	echo "INFO console after restore: first TICK ${first:-none}, now $(last_tick $NAME) (snapshot at ~$tick_kill); state $(xl list $NAME 2>/dev/null | tail -1 | awk '{print $5}')"
	tail -n 15 "$(conlog $NAME)" | sed 's/^/INFO console: /'
	res pvh_restore_from_snapshot $(( rc || tk )) "rc=$rc ticking=$tk in $(el $t)s"
	xl destroy $NAME 2>/dev/null
fi

# 3b. PVH failover through tiberd + replicator
t=$(now)
timeout 300 xl create $CFG > $OUT/create.log 2>&1; rc=$?
ticking $NAME; tk=$?
res pvh_boot $(( rc || tk )) "xl create rc=$rc ticking after $(el $t)s"
DOMID=$(xl domid $NAME 2>/dev/null)
if [ -n "$DOMID" ] && [ -x $TIBERD ] && [ -x $REPL ]; then
	$REPL --listen 127.0.0.1:$PORT --backend xen --restore_args $CFG \
		--heartbeat_timeout 10s --status_file $OUT/status.jsonl \
		> $OUT/replicator.log 2>&1 &
	rpid=$!
	sleep 0.5
	$TIBERD --backend xen --domain $DOMID --backup 127.0.0.1:$PORT \
		--rate 10 --kernel /root/domu/vmlinuz --suspend_timeout 2s \
		--heartbeat_timeout 10s --lag_limit 30s --trace $OUT/trace.jsonl \
		> $OUT/tiberd.log 2>&1 &
	tpid=$!
	# the full sync of the PVH pfn space takes a while under TCG: wait
	# for 20 acked epochs (up to 400 s)
	t_sync=$(now); acked=0
	for i in $(seq 200); do
		acked=$(grep -c '"t_acked":[1-9]' $OUT/trace.jsonl 2>/dev/null)
		[ "${acked:-0}" -ge 20 ] && break
		kill -0 $tpid 2>/dev/null || break
		sleep 2
	done
	echo "INFO $acked acked epochs after $(el $t_sync)s"
	tick_kill=$(last_tick $NAME); nlines=$(wc -l < "$(conlog $NAME)")
	kill -9 $tpid; wait $tpid 2>/dev/null
	xl destroy $NAME; t_kill=$(now)
	echo "INFO killed tiberd and destroyed dom$DOMID at TICK $tick_kill after $acked acked epochs"
	for i in $(seq 600); do
		grep -q -E 'FAILOVER DONE|failover restore' $OUT/replicator.log && break
		sleep 0.5
	done
	t_done=$(el $t_kill)
	grep -a -E 'PRIMARY LOST|FAILOVER|failover' $OUT/replicator.log | sed 's/^/INFO replicator: /'
	ok=1
	if grep -q 'FAILOVER DONE' $OUT/replicator.log; then
		ticking $NAME; tk=$?
		t_run=$(el $t_kill)
		first=$(tail -n +$((nlines + 1)) "$(conlog $NAME)" | grep -a -o '^TICK [0-9]*' | head -1 | cut -d' ' -f2)
		last=$(last_tick $NAME)
		echo "INFO console after restore: first TICK ${first:-none}, now ${last:-none} (killed at $tick_kill)"
		# continues from the committed epoch: not restarted from 0,
		# and never ahead of what the primary had printed
		[ $tk = 0 ] && [ -n "$first" ] && [ "$first" -le $((tick_kill + 1)) ] && \
			[ "$first" -ge $((tick_kill - 20)) ] && ok=0
		res pvh_failover $ok "failover done ${t_done}s after kill, guest ticking ${t_run}s after kill; $(cat $OUT/status.jsonl 2>/dev/null)"
	else
		res pvh_failover 1 "no failover within 300 s: $(tail -3 $OUT/replicator.log | tr '\n' ' ')"
	fi
	kill $rpid 2>/dev/null; wait $rpid 2>/dev/null
	xl list | sed 's/^/INFO xl list: /'
	xl destroy $NAME 2>/dev/null
else
	res pvh_failover 1 "not run (domid=${DOMID:-none}, tiberd/replicator present?)"
fi
echo "RESULT $pass passed, $fail failed"
