#!/bin/bash
# SPDX-License-Identifier: MIT
# In dom0 (TIBER_XEN_JOB=ha make check-xen): the HA-on-real-Xen pieces.
#  1. netbuf_hold_release: tests/unit/test_xen_netbuf on a kernel with
#     sch_plug, ifb, act_mirred, cls_matchall, sch_ingress (veth "vif" on
#     a bridge; IPv4/IPv6/ARP frames held until released, in order;
#     teardown leaves nothing).
#  1b. overflow policies pause/drop (overflow_test below)
#  1c. a guest's own packets held and released in order, no leak
#      across a failover (guestnet below)
#  2. PV failover (function failover below) of the test guest
#     (tests/xen/guest) at 20 Hz and of the stock Linux PV domU at 10 Hz,
#     tiber-replicator --backend xen on loopback: the primary falls
#     silent, the replicator restores the last committed epoch with
#     xl restore of our stream v2; the guest's suspend hypercall returns
#     0 there, it reconnects and keeps counting from the committed state
#     (the test guest also verifies its memory ledger).  The restored
#     test guest is then protected again towards a second replicator
#     (tiberctl reprotect; function reprotect below).
#  1d. a guest's disk replicated with its checkpoints (diskguest below):
#     its disk is an nbdkit export through nbdkit-tiber-filter; tiberd
#     mirrors the filter's journal; after a failover the restored guest's
#     disk (the backup's copy) holds its ledger contiguous, one life
#  1e. the replication link in TLS 1.3 with the records sealed by dom0's
#     kernel (kTLS, the tls module): tiberd and the replicator both
#     kTLS, then tiberd kTLS against a replicator in user-space GnuTLS
#     (ktls below)
#  3. (TIBER_HA_PVH=1) the stock PVH domU: snapshot + restore alone
#     (tb-xenrestore), then failover through tiberd.  The PVH full sync
#     of its 1M-frame pfn space does not finish in time under TCG.
# Prints TEST/INFO lines.
OUT=/root/results/ha; mkdir -p $OUT
TIBERD=/usr/local/bin/tiberd
REPL=/usr/local/bin/tiber-replicator

# fence_of DOMID: the replicator's fence command for the old primary's
# domain (no fencing, no failover): destroy it, succeed only once it is
# gone or dying (a dying domain never runs again; it stays listed while
# a frozen tiberd still maps its memory).  tiber appends GUEST PEER as
# arguments: a function takes them.
fence_of() {
	echo "f() { xl destroy $1 2>/dev/null; s=\$(xl list $1 2>/dev/null | awk 'NR == 2 {print \$5}'); [ -z \"\$s\" ] || case \$s in *d*) true;; *) false;; esac; }; f"
}
pass=0; fail=0
now() { cut -d' ' -f1 /proc/uptime; }
el() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
# TIBER_HA_ONLY="netbuf overflow guestnet disk ktls failover": run only these sections
want() { [ -z "${TIBER_HA_ONLY:-}" ] || case " $TIBER_HA_ONLY " in *" $1 "*) ;; *) false;; esac; }
SEEN=" "
res() { SEEN="$SEEN$1 "; if [ "$2" = 0 ]; then pass=$((pass+1)); echo "TEST $1 PASS $3"; else fail=$((fail+1)); echo "TEST $1 FAIL $3"; fi; }
# The tests the chosen sections must run; one that printed no TEST line
# (a precondition missing) fails at the end (finish).
EXPECTED=""
want netbuf && EXPECTED="$EXPECTED netbuf_hold_release"
want overflow && EXPECTED="$EXPECTED overflow_pause overflow_drop"
want guestnet && EXPECTED="$EXPECTED guestnet_inorder guestnet_held guestnet_failover"
want disk && EXPECTED="$EXPECTED disk_protected disk_ledger_failover"
want ktls && EXPECTED="$EXPECTED ktls_link ktls_interop"
want failover && EXPECTED="$EXPECTED pv_testguest_boot pv_testguest_failover pv_testguest_reprotect pv_linux_boot pv_linux_failover"
[ "${TIBER_HA_PVH:-0}" = 1 ] && EXPECTED="$EXPECTED pvh_restore_from_snapshot pvh_linux_boot pvh_linux_failover"
finish() {
	local t
	for t in $EXPECTED; do
		case $SEEN in *" $t "*) ;; *) res $t 1 "not run (a precondition was missing: see above)";; esac
	done
	echo "RESULT $pass passed, $fail failed"
	exit 0
}
conlog() { echo /var/log/xen/console/guest-$1.log; }
ticks() { grep -a -o '^TICK [0-9]*' "$(conlog $1)" 2>/dev/null | cut -d' ' -f2; }
last_tick() { ticks $1 | tail -1; }
ticking() {
	local a b i; a=$(last_tick $1)
	for i in $(seq 20); do sleep 0.5; b=$(last_tick $1); [ -n "$b" ] && [ "$b" != "$a" ] && return 0; done
	return 1
}

echo "=== tiber HA: $(xl info | grep -E '^xen_version') dom0 kernel $(uname -r)"
for m in sch_plug ifb act_mirred cls_matchall cls_u32 sch_ingress bridge veth tls; do
	modprobe "$m" 2>/dev/null || echo "NOTE modprobe $m failed"
done

# 1. output commit
T=/usr/local/bin/test_xen_netbuf
if ! want netbuf; then :
elif [ -x "$T" ]; then
	CK_FORK=yes "$T" > $OUT/netbuf.log 2>&1; rc=$?
	sed 's/^/INFO netbuf: /' $OUT/netbuf.log
	res netbuf_hold_release $(( rc != 0 || $(grep -c SKIP $OUT/netbuf.log) != 0 )) "rc=$rc"
else
	res netbuf_hold_release 1 "no $T"
fi

# 1b. overflow policies through tiberd, on a veth standing in for the
# vif (TIBER_XEN_VIF): frames sent into its peer are the "guest's
# output".  The replicator is stopped (no acks) while 100 KB arrive with
# output_limit=64K: policy pause must pause the test guest (xl list 'p')
# and unpause it once the acks resume, dropping nothing; policy drop
# must leave the guest running and count the drops (cap 64 KB).
jstat() { # KEY: integer value of KEY in the JSON on stdin
	grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2 | cut -d. -f1
}
wait_epochs() { # CTLSOCK N PID: until tiberd PID reports N epochs (120 s);
	local i e # prints the last count
	for i in $(seq 240); do
		e=$(tiberctl --socket "$1" status --json 2>/dev/null | jstat epochs)
		[ "${e:-0}" -ge "$2" ] && break
		kill -0 "$3" 2>/dev/null || break
		sleep 0.5
	done
	echo "${e:-0}"
}
blast() { # IFACE N: N broadcast frames of 1000 bytes
	# A held frame stays charged to the sending socket (the redirect
	# keeps skb->sk) until the plug releases it: with the default send
	# buffer (~90 frames) send() would block until the backup acks, so
	# give it room for every frame (SO_SNDBUFFORCE: dom0 runs as root).
	python3 -c "
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE
s.bind((sys.argv[1], 0))
f = b'\xff' * 6 + b'\x02\x00\x00\x00\x00\x01' + b'\x08\x00' + bytes(986)
for i in range(int(sys.argv[2])):
    s.send(f)
" "$1" "$2"
}
overflow_test() { # POLICY FRAMES
	local pol=$1 frames=$2
	local o=$OUT/ovf-$1 port=$((7900 + RANDOM % 90))
	local G=testguest cfg=/root/testguest/testguest.cfg
	mkdir -p $o
	ip link del tbova 2>/dev/null
	ip link add tbova type veth peer name tbovb && ip link set tbova up && ip link set tbovb up
	xl destroy $G >/dev/null 2>&1; rm -f "$(conlog $G)"
	timeout 120 xl create $cfg > $o/create.log 2>&1
	ticking $G || { res overflow_$pol 1 "no guest"; return; }
	local DOMID; DOMID=$(xl domid $G)
	$REPL --insecure yes --listen 127.0.0.1:$port --backend xen --failover no \
		--heartbeat_timeout 30s > $o/replicator.log 2>&1 &
	local rpid=$!
	sleep 0.5
	TIBER_XEN_VIF=tbova $TIBERD --insecure yes --backend xen --domain $DOMID \
		--backup 127.0.0.1:$port --rate 20 --kernel /root/testguest/tiber-testguest \
		--suspend_timeout 2s --heartbeat_timeout 30s --lag_limit 60s \
		--output_limit 64K --output_overflow $pol --control $o/ctl.sock \
		--trace $o/trace.jsonl --log-level debug > $o/tiberd.log 2>&1 &
	local tpid=$! i paused=0 st1 st2 state2
	wait_epochs $o/ctl.sock 20 $tpid > /dev/null
	kill -STOP $rpid
	blast tbovb $frames || echo "INFO overflow_$pol: blast failed"
	for i in $(seq 20); do # paused for overflow: 'p' in xl list
		case $(xl list $G | tail -1 | awk '{print $5}') in *p*) paused=1; break;; esac
		sleep 0.2
	done
	st1=$(tiberctl --socket $o/ctl.sock status --json 2>&1)
	kill -CONT $rpid
	for i in $(seq 40); do # acks again: unpaused, under the limit
		sleep 0.25
		state2=$(xl list $G | tail -1 | awk '{print $5}')
		case $state2 in *p*) ;; *) [ $pol = drop ] || [ $i -ge 8 ] && break;; esac
	done
	st2=$(tiberctl --socket $o/ctl.sock status --json 2>&1)
	ticking $G; local tk=$?
	echo "INFO overflow_$pol: acks stopped, $frames x 1000 B sent: paused_seen=$paused held=$(echo "$st1" | jstat output_held_bytes) dropped_packets=$(echo "$st1" | jstat output_dropped_packets) overflow_pauses=$(echo "$st1" | jstat output_overflow_pauses)"
	echo "INFO overflow_$pol: acks back: state '$state2' held=$(echo "$st2" | jstat output_held_bytes) released=$(echo "$st2" | jstat output_released_bytes) dropped_packets=$(echo "$st2" | jstat output_dropped_packets) overflow_pauses=$(echo "$st2" | jstat output_overflow_pauses) paused_ms=$(echo "$st2" | grep -o '"output_overflow_paused_ms":[0-9.]*' | cut -d: -f2)"
	local ok=1 drops pauses
	drops=$(echo "$st2" | jstat output_dropped_packets); pauses=$(echo "$st2" | jstat output_overflow_pauses)
	if [ $pol = pause ]; then
		[ $paused = 1 ] && [ "${drops:-1}" = 0 ] && [ "${pauses:-0}" -ge 1 ] && \
			case $state2 in *p*) false;; *) true;; esac && [ $tk = 0 ] && ok=0
	else
		[ $paused = 0 ] && [ "${drops:-0}" -ge $((frames - 70)) ] && \
			[ "${pauses:-1}" = 0 ] && [ $tk = 0 ] && ok=0
	fi
	res overflow_$pol $ok "limit 64 KiB, $frames frames of 1000 B while unacked"
	[ $ok = 0 ] || { echo "$st1"; tail -5 $o/tiberd.log; } | sed 's/^/INFO /'
	kill $tpid; wait $tpid 2>/dev/null
	kill $rpid; wait $rpid 2>/dev/null
	xl destroy $G
	ip link del tbova 2>/dev/null
}
if want overflow && [ -x $TIBERD ] && [ -x $REPL ] && [ -f /root/testguest/testguest.cfg ]; then
	overflow_test pause 100
	overflow_test drop 200
fi

# 1c. a guest's own packets (tests/xen/netguest: Debian's kernel with
# netfront on dom0's bridge xenbr0, ICMP echo requests every 50 ms over
# IPv4 and every 100 ms over IPv6, plus ARP), captured on the bridge by
# pktcap.py, i.e. after tiber released them.  tiberd protects it at 20 Hz:
#  guestnet_inorder     IPv4 and IPv6 sequence numbers arrive in order
#                       without gaps, ARP too (the redirect takes every
#                       protocol)
#  guestnet_held        the replicator stopped 2 s (no acks): nothing
#                       arrives from 0.3 s after the stop until the
#                       continue, then the held packets come as a burst,
#                       in order, no gaps
#  guestnet_failover    the primary falls silent and its domain is
#                       destroyed; the restored guest's first echo
#                       request carries a higher sequence number than
#                       every packet seen before (nothing from beyond the
#                       last acked epoch escaped), and it keeps sending
pkts() { # FILE KIND [FROM [TO]]: the SEQs of KIND captured in [FROM, TO)
	awk -v k="$2" -v a="${3:-0}" -v b="${4:-1e12}" '$2 == k && $1 >= a && $1 < b {print $3}' "$1"
}
inorder() { # no gap, no reordering (16-bit wrap allowed)
	awk 'NR > 1 && $1 != (p + 1) % 65536 {bad++} {p = $1} END {exit bad > 0}'
}
guestnet() {
	local NG=/root/netguest G=netguest o=$OUT/guestnet port=$((7600 + RANDOM % 90))
	local mac=00:16:3e:99:00:02 i
	mkdir -p $o
	[ -f $NG/initrd.cpio.gz ] || { res guestnet_inorder 1 "no $NG/initrd.cpio.gz"; return; }
	ip link add xenbr0 type bridge 2>/dev/null
	ip link set xenbr0 address 02:00:0a:63:00:01 # netguest/init: its ARP entry
	ip addr add 10.99.0.1/24 dev xenbr0 2>/dev/null
	ip link set xenbr0 up
	xl destroy $G >/dev/null 2>&1; rm -f "$(conlog $G)"
	python3 /root/tiber/pktcap.py xenbr0 $mac > $o/pkts.txt 2> $o/pktcap.err &
	local cpid=$!
	timeout 120 xl create $NG/netguest.cfg > $o/create.log 2>&1
	for i in $(seq 100); do grep -a -q '^TICK' "$(conlog $G)" 2>/dev/null && break; sleep 0.3; done
	grep -a '^NET-UP' "$(conlog $G)" | sed 's/^/INFO guestnet: /'
	local DOMID; DOMID=$(xl domid $G 2>/dev/null)
	$REPL --insecure yes --listen 127.0.0.1:$port --backend xen --restore_args $NG/netguest.cfg \
		--fence_cmd "$(fence_of $DOMID)" \
		--heartbeat_timeout 3s --status_file $o/status.jsonl > $o/replicator.log 2>&1 &
	local rpid=$!
	sleep 0.5
	local t0; t0=$(now)
	$TIBERD --insecure yes --backend xen --domain $DOMID --backup 127.0.0.1:$port --rate 20 \
		--kernel /root/domu/vmlinuz --suspend_timeout 2s --heartbeat_timeout 10s \
		--lag_limit 30s --control $o/ctl.sock > $o/tiberd.log 2>&1 &
	local tpid=$! e
	e=$(wait_epochs $o/ctl.sock 60 $tpid)
	local t1; t1=$(now)
	local n4 n6 na
	n4=$(pkts $o/pkts.txt icmp4 $t0 $t1 | wc -l); n6=$(pkts $o/pkts.txt icmp6 $t0 $t1 | wc -l)
	na=$(pkts $o/pkts.txt arp $t0 $t1 | wc -l)
	pkts $o/pkts.txt icmp4 $t0 $t1 | inorder && pkts $o/pkts.txt icmp6 $t0 $t1 | inorder
	local io=$?
	res guestnet_inorder $(( io || n4 < 20 || n6 < 10 )) "${e:-0} epochs: $n4 IPv4, $n6 IPv6 echo requests in order without gaps ($io), $na ARP, via $(ip -o link show | grep -o 'tb-vif[0-9.]*' | head -1)"
	# (b) no acks for 2 s
	local ts tc before
	local e0 e1
	e0=$(tiberctl --socket $o/ctl.sock status --json 2>/dev/null | jstat epochs)
	ts=$(now); kill -STOP $rpid; sleep 2; tc=$(now); kill -CONT $rpid
	# the replicator works off the backlog of epochs (about a second
	# under TCG, more on a slower host): wait until 60 more epochs are
	# acked (the stop's 40 and new ones), so what was held is released
	e1=$(wait_epochs $o/ctl.sock $(( ${e0:-0} + 60 )) $tpid)
	local tr; tr=$(el $tc); sleep 0.5
	local held burst
	held=$(awk -v a="$ts" -v b="$tc" '$1 >= a + 0.3 && $1 < b' $o/pkts.txt | wc -l)
	# held packets come out once acks flow again; a lost one would be
	# a gap (in_order below)
	burst=$(pkts $o/pkts.txt icmp4 $tc | wc -l)
	pkts $o/pkts.txt icmp4 $t0 | inorder && pkts $o/pkts.txt icmp6 $t0 | inorder
	io=$?
	echo "INFO guestnet: acks stopped $(awk -v a=$ts -v b=$tc 'BEGIN{printf "%.2f", b-a}') s: $held packets seen from 0.3 s after the stop to the continue; epochs ${e0:-?} -> ${e1:-?} ${tr}s after it; $burst IPv4 echo requests since the continue (sent at 20/s: 40 held, then new ones)"
	res guestnet_held $(( held != 0 || burst < 40 || io )) "held=$held burst=$burst in_order=$io"
	# (c) failover
	kill -STOP $tpid
	xl destroy $G; local tk; tk=$(now)
	for i in $(seq 300); do
		grep -q 'FAILOVER DONE\|failover restore:' $o/replicator.log && break
		sleep 0.1
	done
	# the restored guest's network comes up (vif hotplug, netfront):
	# until it has sent 20 IPv4 echo requests, 30 s at most
	for i in $(seq 60); do
		[ "$(pkts $o/pkts.txt icmp4 $tk | wc -l)" -ge 20 ] && break
		sleep 0.5
	done
	local mb4 mb6 fa4 fa6 na4
	mb4=$(pkts $o/pkts.txt icmp4 0 $tk | tail -1); mb6=$(pkts $o/pkts.txt icmp6 0 $tk | tail -1)
	fa4=$(pkts $o/pkts.txt icmp4 $tk | head -1); fa6=$(pkts $o/pkts.txt icmp6 $tk | head -1)
	na4=$(pkts $o/pkts.txt icmp4 $tk | wc -l)
	grep -a 'FAILOVER DONE' $o/replicator.log | sed 's/^/INFO guestnet: /'
	echo "INFO guestnet: before the primary fell silent: last IPv4 seq ${mb4:-none}, IPv6 ${mb6:-none}; restored guest: first IPv4 seq ${fa4:-none}, IPv6 ${fa6:-none}, $na4 IPv4 requests $(el $tk) s after the stop"
	[ -n "$mb4" ] && [ -n "$fa4" ] && [ -n "$mb6" ] && [ -n "$fa6" ] && \
		[ "$fa4" -gt "$mb4" ] && [ "$fa6" -gt "$mb6" ] && [ "$na4" -ge 20 ] && \
		pkts $o/pkts.txt icmp4 $tk | inorder
	res guestnet_failover $? "IPv4 $mb4 -> $fa4, IPv6 $mb6 -> $fa6 (unreleased: $(( ${fa4:-0} - ${mb4:-0} - 1 )) IPv4)"
	grep -a -h -E ' err: | warn: |FAILOVER|fence' $o/replicator.log $o/tiberd.log | tail -n 20 | sed 's/^/INFO guestnet log: /'
	kill -9 $tpid; wait $tpid 2>/dev/null
	kill $rpid $cpid; wait $rpid $cpid 2>/dev/null
	xl destroy $G 2>/dev/null
	for l in $(ip -o link show | grep -o 'tb-vif[0-9.]*'); do ip link del "$l"; done
}
if want guestnet && [ -x $TIBERD ] && [ -x $REPL ]; then
	guestnet
fi

# 1d. disk replication: nbdkit (file plugin) with nbdkit-tiber-filter
# serves the guest's image over NBD (/dev/nbd0, blkback); tiberd gets the
# image and the filter's journal; the replicator keeps the copy in
# /root/rdisk and restores the guest onto it (a loop device on the
# committed image).  The guest writes a ledger (tests/xen/diskguest): at
# sector n "LEDGER n LIFE", synced before it prints "LEDGER n".
diskguest() {
	local DG=/root/diskguest G=diskguest o=$OUT/diskguest port=$((7700 + RANDOM % 90))
	local img=/root/dg.img j=/dev/shm/tiber-dg.journal sock=/run/dg-nbd.sock
	local NBDK=/usr/local/lib/nbdkit i
	mkdir -p $o /root/rdisk; rm -f /root/rdisk/* $img $j
	[ -f $DG/initrd.cpio.gz ] && [ -x /usr/local/bin/nbdkit ] && [ -f $NBDK/nbdkit-tiber-filter.so ] ||
		{ res disk_protected 1 "no diskguest initrd, nbdkit or the filter in dom0"; return; }
	modprobe nbd nbds_max=2 > $o/modprobe.log 2>&1 && modprobe loop >> $o/modprobe.log 2>&1 ||
		{ res disk_protected 1 "no nbd or loop module: $(cat $o/modprobe.log)"; return; }
	truncate -s 64M $img
	/usr/local/bin/nbdkit -f -U $sock --filter=$NBDK/nbdkit-tiber-filter.so \
		$NBDK/nbdkit-file-plugin.so file=$img journal=$j > $o/nbdkit.log 2>&1 &
	local npid=$!
	for i in $(seq 50); do [ -S $sock ] && break; sleep 0.1; done
	/usr/local/bin/nbd-client -unix $sock /dev/nbd0 -b 512 > $o/nbd-client.log 2>&1 ||
		{ res disk_protected 1 "nbd-client: $(tail -2 $o/nbd-client.log)"; kill $npid; return; }
	xl destroy $G >/dev/null 2>&1; rm -f "$(conlog $G)"
	timeout 120 xl create $DG/diskguest.cfg > $o/create.log 2>&1
	for i in $(seq 100); do grep -a -q '^LEDGER 5$' "$(conlog $G)" 2>/dev/null && break; sleep 0.3; done
	grep -a '^DISK-UP' "$(conlog $G)" | sed 's/^/INFO disk: /'
	local DOMID; DOMID=$(xl domid $G 2>/dev/null)
	$REPL --insecure yes --listen 127.0.0.1:$port --backend xen --restore_args $o/backup.cfg \
		--disk_dir /root/rdisk --fence_cmd "$(fence_of $DOMID)" \
		--heartbeat_timeout 3s --status_file $o/status.jsonl > $o/replicator.log 2>&1 &
	local rpid=$!
	sleep 0.5
	$TIBERD --insecure yes --backend xen --domain $DOMID --backup 127.0.0.1:$port --rate 10 \
		--kernel /root/domu/vmlinuz --suspend_timeout 2s --heartbeat_timeout 10s \
		--lag_limit 30s --disk_image $img --disk_journal $j \
		--control $o/ctl.sock > $o/tiberd.log 2>&1 &
	local tpid=$! e
	e=$(wait_epochs $o/ctl.sock 40 $tpid)
	# the backup's domain config: the committed copy through a loop device
	local loop; loop=$(losetup -f --show /root/rdisk/diskguest.disk0.img 2>$o/losetup.log)
	sed "s|phy:/dev/nbd0|phy:$loop|" $DG/diskguest.cfg > $o/backup.cfg
	local full; full=$(grep -c 'disks: full copy' $o/tiberd.log)
	res disk_protected $(( ${e:-0} < 40 || full != 1 || ${#loop} == 0 )) \
		"${e:-0} epochs, disk full copy logged $full time(s), backup copy on ${loop:-no loop device}"
	# failover: the primary falls silent, its domain is destroyed
	local before; before=$(grep -a -c '^LEDGER' "$(conlog $G)")
	ledger() { grep -a '^LEDGER' "$(conlog $G)" | tail -1 | tr -d '\r' | cut -d' ' -f2; }
	local last; last=$(ledger)
	kill -STOP $tpid
	xl destroy $G; local tk; tk=$(now)
	for i in $(seq 300); do
		grep -q 'FAILOVER DONE\|failover restore:' $o/replicator.log && break
		sleep 0.1
	done
	for i in $(seq 60); do
		[ "$(grep -a -c '^LEDGER' "$(conlog $G)")" -ge $((before + 20)) ] && break
		sleep 0.5
	done
	xl pause $G 2>/dev/null; sync
	local now_n; now_n=$(ledger)
	# the copy's ledger: records 1..M contiguous, one life
	local check
	check=$(dd if=/root/rdisk/diskguest.disk0.img bs=512 count=100000 2>/dev/null | tr -d '\000' |
		grep -a -o 'LEDGER [0-9]* [0-9a-f]*' | awk '
		{ n = $2 + 0; if (NR == 1) life = $3
		  if (n != NR || $3 != life) { bad = "record " NR " is \"" $0 "\""; exit } m = n }
		END { if (bad) print "BAD " bad; else print "OK " m " " life }')
	grep -a 'FAILOVER DONE' $o/replicator.log | sed 's/^/INFO disk: /'
	echo "INFO disk: console: last LEDGER before the primary fell silent $last, now $now_n ($(( $(grep -a -c '^LEDGER' "$(conlog $G)") - before )) since); the copy: $check"
	local ok=1
	case $check in
	OK*) set -- $check; [ "$2" -ge "$now_n" ] && [ "$now_n" -gt "${last:-0}" ] && ok=0 ;;
	esac
	res disk_ledger_failover $ok "before ${last:-?}, restored guest at ${now_n:-?}, copy: $check"
	grep -a -h -E ' err: | warn: |FAILOVER|disks:' $o/replicator.log $o/tiberd.log | tail -n 12 | sed 's/^/INFO disk log: /'
	kill -9 $tpid; wait $tpid 2>/dev/null
	kill $rpid; wait $rpid 2>/dev/null
	xl destroy $G 2>/dev/null
	/usr/local/bin/nbd-client -d /dev/nbd0 > /dev/null 2>&1
	kill $npid; wait $npid 2>/dev/null
	[ -n "$loop" ] && losetup -d $loop
}
if want disk && [ -x $TIBERD ] && [ -x $REPL ]; then
	diskguest
fi

# 1e. kernel TLS: the test guest protected at 20 Hz over TLS 1.3 (PSK
# made on the host by scripts/tls-keys.sh) with tls_kernel = yes on
# tiberd (it refuses to run without kTLS) and REPL_KERNEL on the
# replicator; 100 epochs must commit (each one verified by its digest
# on the replicator: a record sealed or opened wrong fails it), and both
# logs must say who seals the records.
PSK=/root/tiber/tls.psk
ktls_test() { # NAME REPL_KERNEL REPL_SAYS
	local name=$1 rk=$2 says=$3 o=$OUT/$1 port=$((7900 + RANDOM % 90))
	local G=testguest cfg=/root/testguest/testguest.cfg
	mkdir -p $o
	xl destroy $G >/dev/null 2>&1; rm -f "$(conlog $G)"
	timeout 120 xl create $cfg > $o/create.log 2>&1
	ticking $G || { res $name 1 "no guest"; return; }
	local DOMID; DOMID=$(xl domid $G)
	$REPL --tls_psk_file $PSK --tls_kernel $rk --listen 127.0.0.1:$port \
		--backend xen --failover no --heartbeat_timeout 30s > $o/replicator.log 2>&1 &
	local rpid=$!
	sleep 0.5
	$TIBERD --tls_psk_file $PSK --tls_kernel yes --backend xen --domain $DOMID \
		--backup 127.0.0.1:$port --rate 20 --kernel /root/testguest/tiber-testguest \
		--suspend_timeout 2s --heartbeat_timeout 30s --control $o/ctl.sock \
		> $o/tiberd.log 2>&1 &
	local tpid=$! t e ok=1
	t=$(now)
	e=$(wait_epochs $o/ctl.sock 100 $tpid)
	local rsays tsays
	rsays=$(grep -o 'authenticated as .*' $o/replicator.log | head -1)
	tsays=$(grep -o 'TLS1.3/[^,]*' $o/tiberd.log | head -1)
	[ "$e" -ge 100 ] && case $rsays in *"$says"*) true;; *) false;; esac &&
		case $tsays in *kTLS) true;; *) false;; esac && ok=0
	res $name $ok "$e epochs acked in $(el $t)s; tiberd: '$tsays'; replicator: '$rsays'"
	[ $ok = 0 ] || { tail -5 $o/tiberd.log; tail -5 $o/replicator.log; } | sed 's/^/INFO /'
	kill $tpid; wait $tpid 2>/dev/null
	kill $rpid; wait $rpid 2>/dev/null
	xl destroy $G
}
if want ktls && [ -x $TIBERD ] && [ -x $REPL ] && [ -f $PSK ] && [ -f /root/testguest/testguest.cfg ]; then
	chmod 0600 $PSK
	grep -q '^tls ' /proc/modules || echo "INFO ktls: no tls module loaded: tiberd must refuse"
	ktls_test ktls_link yes " kTLS)"
	ktls_test ktls_interop no "user-space)"
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
	$REPL --insecure yes --listen 127.0.0.1:$port --backend xen --restore_args "$cfg" \
		--fence_cmd "$(fence_of $DOMID)" --control $o/r.ctl \
		--heartbeat_timeout 3s --status_file $o/status.jsonl \
		> $o/replicator.log 2>&1 &
	local rpid=$!
	sleep 0.5
	$TIBERD --insecure yes --backend xen --domain $DOMID --backup 127.0.0.1:$port \
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
	# xenconsoled may still write the old domain's last line late: the
	# test guest's restored output starts at RESTORED
	[ $tg = 1 ] && after=$(echo "$after" | sed -n '/^RESTORED/,$p')
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
	# no fencing, no failover: the restore came after fence_cmd succeeded
	grep -q 'fence primary: succeeded' $o/replicator.log || ok=1
	res ${tag}_failover $ok "guest running ${t_run:-never}s after the primary fell silent (fenced: $(grep -c 'fence primary: succeeded' $o/replicator.log)); $(tail -1 $o/status.jsonl 2>/dev/null)"
	[ $ok = 0 ] || { for f in $o/replicator.log $o/tiberd.log; do echo "== $f"; tail -n 12 $f; done; ps -ef | grep -E 'xl|hotplug|vif|block' | grep -v grep; echo "$after" | tail -n 5; } | sed 's/^/INFO /'
	[ $tg = 1 ] && [ $ok = 0 ] && reprotect $tag $G $o $kernel $hz
	kill $rpid 2>/dev/null; wait $rpid 2>/dev/null
	xl list | sed "s/^/INFO $tag xl list: /"
	xl destroy $G 2>/dev/null
}
# reprotect TAG GUEST DIR KERNEL HZ: the restored guest is protected
# again towards a new replicator (the repaired host's) with one command,
# tiberctl reprotect against the replicator it failed over to: 20 epochs
# acked by the new one, the guest (same domain) still counting
reprotect() {
	local tag=$1 G=$2 o=$3 kernel=$4 hz=$5 port=$((8000 + RANDOM % 500))
	local d0 t0 e
	d0=$(xl domid $G 2>/dev/null)
	$REPL --insecure yes --listen 127.0.0.1:$port --backend xen --failover no \
		--heartbeat_timeout 3s > $o/replicator2.log 2>&1 &
	local r2=$!
	sleep 0.5
	t0=$(now)
	tiberctl --socket $o/r.ctl reprotect $G --backup 127.0.0.1:$port --insecure yes \
		--rate $hz --kernel "$kernel" --suspend_timeout 2s --heartbeat_timeout 10s \
		--lag_limit 30s --control $o/ctl2.sock > $o/tiberd2.log 2>&1 &
	local t2=$!
	e=$(wait_epochs $o/ctl2.sock 20 $t2)
	ticking $G; local tk=$? same=1
	[ "$(xl domid $G 2>/dev/null)" = "$d0" ] && same=0
	echo "INFO ${tag}_reprotect: $(head -1 $o/tiberd2.log); ${e} epochs acked by the new replicator in $(el $t0)s"
	res ${tag}_reprotect $(( e < 20 || tk || same )) \
		"restored dom$d0 protected again: $e epochs acked by a second replicator (ticking: $tk)"
	[ "$e" -ge 20 ] || { tail -5 $o/tiberd2.log; tail -5 $o/replicator2.log; } | sed 's/^/INFO /'
	kill $t2 $r2 2>/dev/null; wait $t2 $r2 2>/dev/null
}
if ! want failover; then :
elif [ -x $TIBERD ] && [ -x $REPL ]; then
	[ -f /root/testguest/testguest.cfg ] &&
		failover pv_testguest /root/testguest/testguest.cfg /root/testguest/tiber-testguest 20
	[ -f /root/domu/domu.cfg ] &&
		failover pv_linux /root/domu/domu.cfg /root/domu/vmlinuz 10
else
	res pv_failover 1 "not run: $TIBERD, $REPL needed"
fi

[ "${TIBER_HA_PVH:-0}" = 1 ] || finish

# 3a. restore path alone (no network): tb-xenrestore suspends the PVH
# domU, snapshots it like a replica, destroys it, restore()s it.
CFG=/root/domu/domh.cfg; NAME=domh
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

# 3b. PVH failover through tiberd + replicator (same test as for PV)
failover pvh_linux $CFG /root/domu/vmlinuz 10
finish
