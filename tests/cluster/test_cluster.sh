#!/usr/bin/env bash
# shellcheck disable=SC2086,SC2016,SC2119
# SPDX-License-Identifier: MIT
# make check-cluster: the resource agent ocf:tiber:tiber in a real
# two-node corosync + Pacemaker cluster with a corosync-qnetd witness
# (cluster-lib.sh: each node in its own network, mount and UTS
# namespaces), protecting a simulated guest that runs the KV service.
#
#   - set up and start the cluster (node1, node2, qnetd)
#   - fencing (fence_tibertest, one device per node) and a promotable
#     clone of ocf:tiber:tiber (promoted-max=1): the guest cold-starts on
#     one node, the other node's replica commits its first sync
#   1: kill -9 the promoted node: the other node fences it, then
#      promotes: the guest is restored from the replica, and a client's
#      next INCR follows its last acknowledged one; the killed node
#      rejoins and gets a replica again (re-protect)
#   2: cut the promoted node's link (the witness stays reachable from
#      the other node): the isolated node loses quorum and demotes (its
#      guest stopped), the quorate node fences it, then promotes; the
#      KV state again follows the last acknowledged reply
#   3: cut the witness and the promoted node's link: no partition has
#      quorum: the promoted node demotes (its guest stops) and no guest
#      runs anywhere; heal: the cluster promotes the replica, and the KV
#      state follows the last acknowledged reply
# An observer samples the simulated guests of both nodes every 0.1 s
# from start to end: never two live guests.  Prints the time of each
# step.  Everything is removed on exit, failure included (CLUSTER_KEEP=1
# keeps the state directory with all logs).
#
# Run as root: tests/cluster/test_cluster.sh (make check-cluster)
# Settings: CLUSTER_FENCE_DELAY (priority-fencing-delay, default 10s: the
# node of the promoted instance is fenced that much later, long enough for
# an isolated node to see that it lost quorum and demote first).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=cluster-lib.sh
. "$HERE/cluster-lib.sh"
export CL_VERBOSE=${CL_VERBOSE:-0}
CL_KEEP=${CLUSTER_KEEP:-0}
FENCE_DELAY=${CLUSTER_FENCE_DELAY:-10s}
RSC=tiber
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${TIBER_BIN_DIR:-$ROOT/build/bin}
OCF_LINK=/usr/lib/ocf/resource.d/tiber-test

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)
SUMMARY=()
step() {
	STEP=$1
	T_STEP=$(now)
	echo "== $STEP"
}
step_done() {
	local t
	t=$(since "$T_STEP")
	echo "   done in ${t}s"
	SUMMARY+=("$(printf '%-52s %6ss' "$STEP" "$t")")
}
note() { echo "   $*"; }

fail() {
	echo "FAIL: $*" >&2
	local n
	for n in $CL_NODES; do # the agent's files are in each node's own /run
		[ -n "$(_cl_pids "$n" 2>/dev/null)" ] || continue
		echo "--- $n: the agent's logs" >&2
		CL_EXEC_TIMEOUT=5 node_exec "$n" sh -c "tail -n 12 /run/resource-agents/tiber-$RSC/*.log" >&2
	done
	if [ -n "${CLUSTER_HOLD_ON_FAIL:-}" ]; then # debugging: inspect it live
		echo "holding the cluster for ${CLUSTER_HOLD_ON_FAIL}s: cluster_attach $CL_DIR" >&2
		sleep "$CLUSTER_HOLD_ON_FAIL"
	fi
	[ "$CL_KEEP" = 1 ] || echo "(CLUSTER_KEEP=1 keeps the state directory and all logs)" >&2
	if [ -n "$CL_DIR" ] && [ -d "$CL_DIR" ]; then
		local f
		for f in "$CL_DIR"/fence.log "$CL_DIR"/node?/log/pacemaker.log "$CL_DIR"/*/log/*.out; do
			[ -s "$f" ] || continue
			echo "--- last lines of $f" >&2
			grep -vE '\b(debug|trace|info):' "$f" | tail -n 15 >&2
		done
	fi
	exit 1
}

on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	[ -z "${OBSERVER:-}" ] || kill "$OBSERVER" 2>/dev/null
	[ -L "$OCF_LINK" ] && rm -f "$OCF_LINK"
	if [ -n "$CL_DIR" ]; then
		echo "== teardown"
		local t
		t=$(now)
		cluster_teardown || rc=1
		echo "   done in $(since "$t")s"
	fi
	exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP

other() { if [ "$1" = node1 ]; then echo node2; else echo node1; fi; }

# the node where NODE sees the (one) promoted instance
promoted() { promoted_on "$1" $RSC | head -n 1; }
# number of active instances NODE sees
instances() { crm_xml "$1" | grep -c "<resource id=\"$RSC\" [^>]*active=\"true\""; }
# NODE sees RSC promoted on P and unpromoted on the other node
settled() { [ "$(promoted "$1")" = "$2" ] && [ "$(instances "$1")" = 2 ]; }
fenced_in_history() { # VIEWER VICTIM DELEGATE
	node_exec "$1" stonith_admin --history "$2" 2>/dev/null |
		grep -q "reboot of $2 successful: delegate=$3"
}
rsc_xml() { node_exec node1 cibadmin --create -o "$1" --xml-text "$2" || fail "cibadmin --create -o $1"; }

[ "$(id -u)" = 0 ] || { echo "test_cluster.sh: run as root" >&2; exit 1; }
[ -x "$BIN/tiberd" ] || { echo "test_cluster.sh: build first (make)" >&2; exit 1; }

# The tree's agent, as provider tiber-test (an installed ocf:tiber:tiber
# is left alone); removed on exit.
[ -e "$OCF_LINK" ] && fail "$OCF_LINK exists (another run?)"
ln -s "$ROOT/ocf" "$OCF_LINK" || fail "cannot link $OCF_LINK"

# The KV service: one socket path for whichever node runs the guest
# (the machines share /tmp).  kv SEQ: INCR k as client 7, retried with
# the same seq (the guest answers a retry from its dedup record) until a
# guest answers; prints the value.
kv() { "$ROOT/tests/kv_incr.py" "$CL_DIR/kv.sock" 7 "$1" k 90; }

# INCR k once more (sequence number SEQ): the guest's state must follow
# the last reply a client got, through every failover: the answer is the
# last one + 1.  KV holds it.  WHAT says when; with WHERE and SINCE, a
# note of where the guest answered, how long after SINCE.
KV=""
kv_incr() { # SEQ WHAT [WHERE SINCE]
	local v
	v=$(kv "$1") || fail "no KV reply $2"
	[ -z "$KV" ] || [ "$v" = $((KV + 1)) ] ||
		fail "$2: INCR gave $v, the last acknowledged was $KV"
	KV=$v
	[ -z "${3:-}" ] || note "KV: INCR k = $v on $3, answering $(since "$4")s $2"
}

# NODE (re)starts and rejoins as unpromoted; PEER stays promoted.
rejoin() { # NODE PEER
	node_start "$1" || fail "node_start $1"
	cluster_wait 120 "$1 back online" node_online_in "$2" $CL_NODES || fail "$1 did not rejoin"
	cluster_wait 60 "$2 promoted, $1 unpromoted" settled "$2" "$2" || fail "the clone did not settle"
}

# This test's guests (the host may run other tests' simulated guests):
# tiber-simguest processes serving this cluster's KV socket.
cl_guests() {
	local p
	for p in $(pgrep -x tiber-simguest); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null |
			grep -qF "unix:$CL_DIR/kv.sock" && echo "$p"
	done
}

# replica_committed NODE: NODE's replicator holds a committed epoch
replica_committed() {
	node_exec "$1" "$BIN/tiberctl" --socket /run/resource-agents/tiber-$RSC/replicator.ctl status --json 2>/dev/null |
		grep -Eq '"name":"web","domid":[0-9]+,"state":"(protected|primary_lost|idle)","committed_epoch":[1-9]'
}
# The observer: live simulated guests, on both nodes, every 0.1 s; the
# most at once ends in $CL_DIR/observer.max.  A guest is a tiber-simguest
# process that is not a zombie, with its vCPU and service threads (its
# watchdog, a child process, has one thread); a guest stopped for a
# checkpoint counts.
observe() {
	local max=0 n p st
	while :; do
		n=0
		for p in $(cl_guests); do
			# state and num_threads (fields 3 and 20; comm has no space)
			st=$(awk '{ print $3, $20 }' "/proc/$p/stat" 2>/dev/null)
			case "$st" in "" | Z* | *" 1") ;; *) n=$((n + 1)) ;; esac
		done
		if [ $n -gt $max ]; then
			max=$n
			{
				echo "$max $(date +%T.%N)"
				for p in $(cl_guests); do
					echo "$p $(ip netns identify "$p") $(awk '{ print $3, $20 }' "/proc/$p/stat") $(tr '\0' ' ' <"/proc/$p/cmdline")"
				done
			} >"$CL_DIR/observer.max" 2>&1
		fi
		sleep 0.1
	done
}

# ---------------------------------------------------------------------------
step "set up namespaces, configs, authkey, certificates"
cluster_setup || fail "cluster_setup"
note "state directory $CL_DIR, network namespaces $CL_PREFIX-{node1,node2,qnetd,sw}"
step_done

step "start qnetd, then corosync+qdevice+pacemaker x2"
cluster_start || fail "cluster_start"
node_exec node1 corosync-quorumtool -s | sed -n '/^Quorate/p;/^Flags/p;/Qdevice$/p' | sed 's/^/   node1: /'
node_exec qnetd corosync-qnetd-tool -l -v | grep -E 'Cluster|TLS|Vote' | head -n 6 | sed 's/^/   qnetd: /'
step_done

# ---------------------------------------------------------------------------
step "configure fencing and a promotable clone of ocf:tiber:tiber"
for p in stonith-enabled=true no-quorum-policy=demote \
	priority-fencing-delay="$FENCE_DELAY" cluster-recheck-interval=1min; do
	node_exec node1 crm_attribute --type crm_config --name "${p%%=*}" --update "${p#*=}" ||
		fail "crm_attribute $p"
done
for n in $CL_NODES; do
	# fence-NODE: fences NODE, never runs there
	rsc_xml resources "<primitive id=\"fence-$n\" class=\"stonith\" type=\"$CL_FENCE_AGENT\">
	  <instance_attributes id=\"fence-$n-ia\">
	    <nvpair id=\"fence-$n-statedir\" name=\"statedir\" value=\"$CL_DIR\"/>
	    <nvpair id=\"fence-$n-hosts\" name=\"pcmk_host_list\" value=\"$n\"/>
	  </instance_attributes>
	  <operations><op id=\"fence-$n-monitor\" name=\"monitor\" interval=\"30s\"/></operations>
	</primitive>"
	rsc_xml constraints "<rsc_location id=\"fence-$n-not-on-$n\" rsc=\"fence-$n\" node=\"$n\" score=\"-INFINITY\"/>"
done
GUEST_CMD="$BIN/tiber-simguest --socket /run/web.sock --name web --ram 64M --workload mixed --dirty-rate 20000 --kv-listen unix:$CL_DIR/kv.sock --stats-interval 0"
PARAMS=(guest=web backend=sim bindir="$BIN" guest_socket=/run/web.sock
	nodes="node1=$CL_NET.1:7700 node2=$CL_NET.2:7700"
	start_cmd="$GUEST_CMD"
	tiberd_options="--rate 50 --heartbeat-timeout 1s --reconnect-interval 500ms --tls-psk-file $CL_DIR/link.psk"
	replicator_options="--tls-psk-file $CL_DIR/link.psk --heartbeat-timeout 1s --restore-args '--kv-listen unix:$CL_DIR/kv.sock --stats-interval 0'")
"$ROOT/scripts/tls-keys.sh" psk "$CL_DIR/link.psk" tiber-cluster >/dev/null || fail "tls-keys.sh"
nv=""
for pv in "${PARAMS[@]}"; do
	k=${pv%%=*} v=${pv#*=}
	v=$(sed -e 's/&/\&amp;/g' -e 's/"/\&quot;/g' -e "s/'/\&apos;/g" -e 's/</\&lt;/g' <<<"$v")
	nv+="<nvpair id=\"$RSC-$k\" name=\"$k\" value=\"$v\"/>"
done
observe &
OBSERVER=$!
rsc_xml resources "<clone id=\"$RSC-clone\">
  <meta_attributes id=\"$RSC-clone-meta\">
    <nvpair id=\"$RSC-clone-promotable\" name=\"promotable\" value=\"true\"/>
    <nvpair id=\"$RSC-clone-promoted-max\" name=\"promoted-max\" value=\"1\"/>
    <nvpair id=\"$RSC-clone-promoted-node-max\" name=\"promoted-node-max\" value=\"1\"/>
    <nvpair id=\"$RSC-clone-clone-max\" name=\"clone-max\" value=\"2\"/>
    <nvpair id=\"$RSC-clone-clone-node-max\" name=\"clone-node-max\" value=\"1\"/>
  </meta_attributes>
  <primitive id=\"$RSC\" class=\"ocf\" provider=\"tiber-test\" type=\"tiber\">
    <instance_attributes id=\"$RSC-ia\">$nv</instance_attributes>
    <meta_attributes id=\"$RSC-meta\">
      <nvpair id=\"$RSC-priority\" name=\"priority\" value=\"10\"/>
    </meta_attributes>
    <operations>
      <op id=\"$RSC-monitor-promoted\" name=\"monitor\" interval=\"3s\" role=\"Promoted\"/>
      <op id=\"$RSC-monitor-unpromoted\" name=\"monitor\" interval=\"2s\" role=\"Unpromoted\"/>
      <op id=\"$RSC-promote\" name=\"promote\" interval=\"0\" timeout=\"90s\"/>
      <op id=\"$RSC-demote\" name=\"demote\" interval=\"0\" timeout=\"60s\"/>
      <op id=\"$RSC-stop\" name=\"stop\" interval=\"0\" timeout=\"60s\"/>
    </operations>
  </primitive>
</clone>"
cluster_wait 90 "one promoted and one unpromoted instance" \
	eval '[ -n "$(promoted node1)" ] && settled node1 "$(promoted node1)"' ||
	fail "the clone did not settle"
fence_started() { crm_xml node1 | grep -q "<resource id=\"fence-$1\" [^>]*role=\"Started\""; }
cluster_wait 60 "fencing devices started" eval 'fence_started node1 && fence_started node2' ||
	fail "fencing devices did not start"
P=$(promoted node1)
note "promoted on $P (cold start), unpromoted on $(other "$P")"
cluster_wait 60 "$(other "$P")'s replica committed" replica_committed "$(other "$P")" ||
	fail "the replica on $(other "$P") did not commit"
kv_incr 1 "from the guest on $P"
note "KV: INCR k = $KV on $P"
step_done

# ---------------------------------------------------------------------------
step "1: kill -9 $P (promoted): $(other "$P") fences it and promotes"
O=$(other "$P")
node_kill "$P" || fail "node_kill $P"
T_KILL=$(now)
t_fenced="" t_promoted=""
end=$((SECONDS + 120))
while [ -z "$t_fenced" ] || [ -z "$t_promoted" ]; do
	[ $SECONDS -lt $end ] || fail "after kill of $P: fenced at '${t_fenced}', promoted at '${t_promoted}'"
	if [ -z "$t_fenced" ] && fenced_in_history "$O" "$P" "$O"; then
		t_fenced=$(since "$T_KILL")
	fi
	if [ -z "$t_promoted" ] && [ "$(promoted "$O")" = "$O" ]; then
		t_promoted=$(since "$T_KILL")
		[ -n "$t_fenced" ] || fenced_in_history "$O" "$P" "$O" ||
			fail "$O promoted before $P was fenced"
		[ -n "$t_fenced" ] || t_fenced=$t_promoted
	fi
	sleep 0.5
done
node_quorate "$O" || fail "$O is not quorate alone with the witness"
note "$P fenced by $O after ${t_fenced}s (priority-fencing-delay $FENCE_DELAY), $O promoted after ${t_promoted}s"
node_exec "$O" stonith_admin --history "$P" | grep "reboot of $P" | sed "s/^/   $O: stonith_admin --history: /"
kv_incr 2 "after the kill" "$O" "$T_KILL"
step_done

step "restart $P: it rejoins as unpromoted"
rejoin "$P" "$O"
cluster_wait 60 "$P's replica committed (re-protected)" replica_committed "$P" ||
	fail "$O's guest was not protected towards $P again"
step_done

# ---------------------------------------------------------------------------
I=$O         # the node of the promoted instance: its link is cut
Q=$(other "$I") # the other one keeps the witness: quorate
step "2: cut the link of $I (promoted), $Q keeps the witness"
demote_re="Result of demote operation for $RSC on $I: ok"
demotes_before=$(grep -c "$demote_re" "$CL_DIR/$I/log/pacemaker.log")
noquorum_re="This node is within the non-primary component"
noquorum_before=$(grep -c "$noquorum_re" "$CL_DIR/$I/log/corosync.log")
kv_incr 3 "before the cut"
node_isolate "$I" || fail "node_isolate $I"
T_CUT=$(now)
t_noquorum="" t_demoted="" t_fenced="" t_promoted=""
end=$((SECONDS + 150))
while [ -z "$t_fenced" ] || [ -z "$t_promoted" ]; do
	[ $SECONDS -lt $end ] ||
		fail "after cutting $I: no quorum '${t_noquorum}', demoted '${t_demoted}', fenced '${t_fenced}', $Q promoted '${t_promoted}'"
	alive=$(_cl_pids "$I" | wc -l)
	if [ "$alive" != 0 ]; then
		# the isolated node's own view (its tools may block: time-limited)
		if [ -z "$t_noquorum" ] && node_running "$I" && ! CL_EXEC_TIMEOUT=3 node_quorate "$I"; then
			# corosync answers and says "not quorate"
			CL_EXEC_TIMEOUT=3 node_exec "$I" corosync-quorumtool -s 2>/dev/null |
				grep -q '^Quorate:.*No' && t_noquorum=$(since "$T_CUT")
		fi
		if [ -n "$t_noquorum" ] && [ -z "$t_demoted" ]; then
			x=$(CL_EXEC_TIMEOUT=3 crm_xml "$I") &&
				grep -q "<resource id=\"$RSC\" " <<<"$x" &&
				! grep -q 'role="Promoted"' <<<"$(grep "<resource id=\"$RSC\" " <<<"$x")" &&
				t_demoted=$(since "$T_CUT")
		fi
	elif [ -z "$t_fenced" ]; then
		t_fenced=$(since "$T_CUT")
	fi
	if [ -z "$t_promoted" ] && [ "$(CL_EXEC_TIMEOUT=5 promoted "$Q")" = "$Q" ]; then
		t_promoted=$(since "$T_CUT")
		[ -n "$(_cl_pids "$I")" ] && fail "$Q promoted while $I still runs: two promoted instances"
		[ -n "$t_fenced" ] || t_fenced=$t_promoted
	fi
	sleep 0.3
done
fenced_in_history "$Q" "$I" "$Q" || fail "stonith history of $Q has no fencing of $I by $Q"
grep -q "reboot $I: killing [1-9]" "$CL_DIR/fence.log" || fail "fence_tibertest did not kill $I's processes"
node_quorate "$Q" || fail "$Q is not quorate"
# quorum loss: seen live (corosync-quorumtool on $I), else in $I's corosync.log
[ "$(grep -c "$noquorum_re" "$CL_DIR/$I/log/corosync.log")" -gt "$noquorum_before" ] ||
	fail "$I was fenced before it lost quorum"
if [ -n "$t_noquorum" ]; then t_noquorum=${t_noquorum}s; else t_noquorum="? (in its corosync.log)"; fi
if [ -n "$t_demoted" ]; then t_demoted=${t_demoted}s; else t_demoted="? (in its pacemaker.log)"; fi
note "$I: lost quorum after $t_noquorum, demoted after $t_demoted"
[ "$(grep -c "$demote_re" "$CL_DIR/$I/log/pacemaker.log")" -gt "$demotes_before" ] ||
	fail "$I did not demote after losing quorum (no-quorum-policy=demote)"
d=$(grep -h "$demote_re" "$CL_DIR/$I/log/pacemaker.log" | tail -n 1)
note "$I's log: ${d%%|*}"
note "$I fenced (all its processes killed by $Q's fencer) after ${t_fenced}s"
note "$Q (quorate with the witness) promoted after ${t_promoted}s"
grep -h "$noquorum_re" "$CL_DIR/$I/log/corosync.log" | tail -n 1 | sed "s/^/   $I's log: /"
kv_incr 4 "after the cut" "$Q" "$T_CUT"
step_done

step "restore $I's link, restart it: it rejoins"
node_heal "$I" || fail "node_heal $I"
rejoin "$I" "$Q"
step_done

# ---------------------------------------------------------------------------
P3=$Q           # promoted; cut off with the witness unreachable for both
O3=$(other "$P3")
cluster_wait 60 "$O3's replica committed" replica_committed "$O3" || fail "no replica on $O3"
kv_incr 5 "before the witness was cut"
step "3: cut the witness and $P3's link: no side has quorum"
qnetd_isolate || fail "qnetd_isolate"
node_isolate "$P3" || fail "node_isolate $P3"
T_CUT3=$(now)
# $P3 demotes (its guest stops); $O3, without quorum, must not promote
cluster_wait 60 "$P3's guest stopped" eval '[ -z "$(cl_guests)" ]' ||
	fail "$P3 kept its guest without quorum"
t_stopped=$(since "$T_CUT3")
end=$((SECONDS + 20))
while [ $SECONDS -lt $end ]; do
	[ -z "$(cl_guests)" ] || fail "a guest started while no partition had quorum"
	sleep 0.5
done
CL_EXEC_TIMEOUT=3 node_quorate "$O3" && fail "$O3 is quorate without the witness and its peer"
note "$P3's guest stopped after ${t_stopped}s; for 20 s more no guest ran anywhere, $O3 not quorate"
step_done

step "heal the witness and $P3's link: the cluster promotes the replica"
qnetd_heal || fail "qnetd_heal"
node_heal "$P3" || fail "node_heal $P3"
T_HEAL=$(now)
# (the node is kept from the answer that ended the wait: a second query
# can time out and say nothing)
cluster_wait 120 "a promoted instance" eval 'P4=$(CL_EXEC_TIMEOUT=5 promoted "$O3"); [ -n "$P4" ]' ||
	fail "nothing promoted after the heal"
kv_incr 6 "after the heal"
note "promoted on $P4 after $(since "$T_HEAL")s; KV: INCR k = $KV"
grep -hE "tiber\($RSC\).*(restored here|COLD START)" "$CL_DIR/$P4/log/pacemaker.log" | tail -n 1 | cut -c1-140 | sed "s/^/   $P4's log: /"
step_done

echo "== fencing history (stonith_admin --history '*' on $Q)"
node_exec "$Q" stonith_admin --history '*' | sed 's/^/   /'
echo "== fence_tibertest log"
sed 's/^/   /' "$CL_DIR/fence.log"
kill "$OBSERVER" 2>/dev/null
read -r most when <"$CL_DIR/observer.max" || fail "the observer saw no guest"
[ "$most" = 1 ] || sed 's/^/   observer: /' "$CL_DIR/observer.max"
note "observer: at most $most live guest(s) at once (first at $when)"
[ "$most" = 1 ] || fail "two guests ran at once ($when)"
echo "== timings"
printf '   %s\n' "${SUMMARY[@]}"
printf '   %-52s %6ss\n' "total (before teardown)" "$(since "$T0")"
echo "PASS"
