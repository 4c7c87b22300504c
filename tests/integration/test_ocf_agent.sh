#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Pacemaker resource agent (ocf/tiber), driven the way Pacemaker
# drives it, on two "nodes" of this host (their own replicator ports and
# state dirs), with simulated guests running the KV service:
# - ocf-tester (resource-agents) passes it;
# - promotion scores: a cold-start score where nobody has a replica, the
#   replica's score once its first sync committed, none for a replica a
#   live primary stopped committing to (stale);
# - promote cold-starts, or restores from the committed replica with the
#   KV state the clients saw; demote stops the guest first; a promoted
#   node whose tiberd died reports FAILED_MASTER;
# - peer-fenced (tiberd's fence_cmd) succeeds only when Pacemaker reports
#   the peer offline and clean from a quorate partition.
# crm_attribute and crm_mon are stand-ins here (no cluster): the real
# cluster test is tests/cluster/.
. "$(dirname "$0")/lib.sh"

# ocf-tester runs the agent as nobody too: a copy where nobody can reach
# it (a checkout under /root, or this run's 0700 $TMPDIR, is out of reach)
AGENT_DIR=$(mktemp -d /tmp/tiber-ocfagent.XXXXXX)
trap 'rm -rf "$AGENT_DIR"; tb_cleanup' EXIT
chmod 755 "$AGENT_DIR"
install -m 755 "$ROOT/ocf/tiber" "$AGENT_DIR/tiber"
AGENT=$AGENT_DIR/tiber
export OCF_ROOT=/usr/lib/ocf
[ -f "$OCF_ROOT/lib/heartbeat/ocf-shellfuncs" ] || fail "resource-agents is not installed (make deps)"
command -v ocf-tester >/dev/null || fail "ocf-tester (resource-agents) is not installed (make deps)"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- ocf-tester: one node, a cold-started guest, a peer that is not there
P0=$(port)
ocf-tester -n tb0 -o guest=t0 -o backend=sim -o "nodes=$(uname -n)=127.0.0.1:$P0 nobody=127.0.0.1:1" \
	-o bindir="$BIN" -o state_dir="$T/sd0" -o guest_socket="$T/t0.sock" \
	-o "start_cmd=$BIN/tiber-simguest --socket $T/t0.sock --name t0 --ram 16M --stats-interval 0" \
	-o "tiberd_options=--rate 20 --tls-psk-file $T/psk" -o "replicator_options=--tls-psk-file $T/psk" \
	"$AGENT" >"$T/ocf-tester.out" 2>&1 || { cat "$T/ocf-tester.out" >&2; fail "ocf-tester"; }
grep -q "passed all tests" "$T/ocf-tester.out" || fail "ocf-tester: $(cat "$T/ocf-tester.out")"

# ---- two nodes
P1=$(port)
P2=$(port)
mkdir -p "$T/sbin" "$T/bin"
# promotion scores land in $T/score.NODE ("none" when deleted)
cat >"$T/sbin/crm_attribute" <<'EOF'
#!/bin/sh
v=none
while [ $# -gt 0 ]; do [ "$1" = -v ] && v=$2; shift; done
echo "$v" >"$TIBER_SCORES/score.$OCF_RESKEY_CRM_meta_on_node"
EOF
cp "$T/sbin/crm_attribute" "$T/sbin/crm_master"
# crm_mon: what $T/crm_mon.xml says
printf '#!/bin/sh\ncat "%s/crm_mon.xml"\n' "$T" >"$T/bin/crm_mon"
chmod +x "$T/sbin/"* "$T/bin/crm_mon"
export HA_SBIN_DIR=$T/sbin TIBER_SCORES=$T OCF_RESKEY_crm_feature_set=3.16.2
export PATH=$T/bin:$PATH
export OCF_RESOURCE_INSTANCE=web OCF_RESKEY_guest=web OCF_RESKEY_backend=sim
export OCF_RESKEY_nodes="n1=127.0.0.1:$P1 n2=127.0.0.1:$P2" OCF_RESKEY_bindir=$BIN
export OCF_RESKEY_tiberd_options="--rate 50 --heartbeat-timeout 500ms --reconnect-interval 200ms --tls-psk-file $T/psk"
export OCF_RESKEY_peer_fence_wait=1 OCF_RESKEY_max_commit_age=1500
ra() { # NODE ACTION: the agent's exit status
	local node=$1 kv
	shift
	[ "$node" = n1 ] && kv=$T/kv1.sock || kv=$T/kv2.sock
	OCF_RESKEY_CRM_meta_on_node=$node OCF_RESKEY_state_dir=$T/$node \
		OCF_RESKEY_guest_socket="$T/$node.guest.sock" \
		OCF_RESKEY_start_cmd="$BIN/tiber-simguest --socket $T/$node.guest.sock --name web --ram 64M --workload mixed --dirty-rate 20000 --kv-listen unix:$kv --stats-interval 0" \
		OCF_RESKEY_replicator_options="--tls-psk-file $T/psk --heartbeat-timeout 500ms --restore-args '--kv-listen unix:$kv --stats-interval 0'" \
		"$AGENT" "$@" >>"$T/agent.$node.log" 2>&1
}
score() { cat "$T/score.$1" 2>/dev/null; }
# SIGKILL is asynchronous: wait (bounded) until the process is gone or a zombie
dead() { local st; st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null); [ -z "$st" ] || [ "$st" = Z ]; }
monitor_is() { # NODE RC
	ra "$1" monitor
	[ $? = "$2" ]
}
kv() { "$ROOT/tests/kv_incr.py" "$1" 9 "$2" k; } # SOCKET SEQ: the value
all_pids() { cat "$T"/n?/*.pid 2>/dev/null; sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T"/n?/failover.json 2>/dev/null; }
cleanup_nodes() {
	ra n1 stop
	ra n2 stop
}
trap 'cleanup_nodes; rm -rf "$AGENT_DIR"; tb_cleanup' EXIT

ra n1 start || fail "start n1"
ra n2 start || fail "start n2"
monitor_is n1 0 || fail "n1 monitor after start"
[ "$(score n1)" = 1 ] || fail "n1 score '$(score n1)', want 1 (cold start: nobody has a replica)"

ra n1 promote || fail "promote n1 (cold start)"
monitor_is n1 8 || fail "n1 not RUNNING_MASTER after promote"
WAIT_S=30 wait_for eval '[ "$(ra n2 monitor; score n2)" = 100 ]' ||
	fail "n2 score '$(score n2)' after its first sync, want 100"
v1=$(kv "$T/kv1.sock" 1) || fail "no KV reply from the cold-started guest"
v2=$(kv "$T/kv1.sock" 2) || fail "no KV reply"
[ "$v2" = $((v1 + 1)) ] || fail "KV $v1 then $v2"

# stale: the primary still talks to n2 but commits nothing (guest frozen)
GPID=$(cat "$T/n1/guest.pid")
kill -STOP "$GPID"
WAIT_S=10 wait_for eval '[ "$(ra n2 monitor; score n2)" = none ]' ||
	fail "n2 score '$(score n2)' while its primary commits nothing, want none"
kill -CONT "$GPID"
WAIT_S=10 wait_for eval '[ "$(ra n2 monitor; score n2)" = 100 ]' || fail "n2 score did not come back"

# peer-fenced: only "offline and clean" seen with quorum counts
xml() { printf '<crm_mon><summary><current_dc present="true" with_quorum="%s"/></summary><nodes><node name="n2" id="2" online="%s" unclean="%s"/></nodes></crm_mon>\n' "$@" >"$T/crm_mon.xml"; }
xml true true false
"$AGENT" peer-fenced n2 web x >/dev/null && fail "peer-fenced: peer online"
xml true false true
"$AGENT" peer-fenced n2 web x >/dev/null && fail "peer-fenced: peer unclean (not fenced yet)"
xml false false false
"$AGENT" peer-fenced n2 web x >/dev/null && fail "peer-fenced: no quorum here"
xml true false false
"$AGENT" peer-fenced n2 web x >/dev/null || fail "peer-fenced: peer fenced"

# n1 dies (Pacemaker fences it); n2 is promoted from its replica
OLD=$(cat "$T/n1/tiberd.pid" "$T/n1/guest.pid" "$T/n1/replicator.pid")
kill -9 $OLD
for p in $OLD; do WAIT_S=5 wait_for dead "$p" || fail "process $p survived kill -9"; done
v3=$(kv "$T/kv1.sock" 3 2>/dev/null) && fail "the killed guest still answers ($v3)"
ra n2 promote || fail "promote n2: $(tail -n 3 "$T/agent.n2.log")"
monitor_is n2 8 || fail "n2 not RUNNING_MASTER after promote"
grep -q "restored here from epoch" "$T/agent.n2.log" || fail "n2 did not restore from its replica"
v3=$(kv "$T/kv2.sock" 3) || fail "no KV reply from the restored guest"
[ "$v3" = $((v2 + 1)) ] || fail "restored guest INCR gave $v3 after $v2: replica lost acknowledged state"

# n1 comes back: stop cleans up, start; the new primary syncs to it
ra n1 stop || fail "stop n1 after its death"
ra n1 start || fail "restart n1"
WAIT_S=30 wait_for eval '[ "$(ra n1 monitor; score n1)" = 100 ]' ||
	fail "n1 score '$(score n1)': n2's tiberd did not protect the guest towards n1"

# a promoted node whose tiberd died is FAILED_MASTER
kill -STOP "$(cat "$T/n2/tiberd.pid")"
monitor_is n2 8 || fail "n2 monitor with tiberd stopped (alive)"
kill -CONT "$(cat "$T/n2/tiberd.pid")"

# planned move: demote n2 (guest stopped first), promote n1
RPID=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T/n2/failover.json" | tail -n 1)
ra n2 demote || fail "demote n2"
WAIT_S=5 wait_for dead "$RPID" || fail "demote left the guest running"
monitor_is n2 0 || fail "n2 not unpromoted after demote"
ra n1 promote || fail "promote n1 from its replica: $(tail -n 3 "$T/agent.n1.log")"
v4=$(kv "$T/kv1.sock" 4) || fail "no KV reply after the move"
[ "$v4" = $((v3 + 1)) ] || fail "after the move INCR gave $v4 after $v3"
kill -9 "$(cat "$T/n1/tiberd.pid")"
WAIT_S=5 wait_for dead "$(cat "$T/n1/tiberd.pid")" || fail "tiberd survived kill -9"
monitor_is n1 9 || fail "n1 with tiberd dead: not FAILED_MASTER"

PIDS_LEFT=$(all_pids)
cleanup_nodes
for p in $PIDS_LEFT; do kill -0 "$p" 2>/dev/null && fail "stop left process $p"; done
echo "test_ocf_agent: ok: ocf-tester passed; cold start, scores 1/100/none, failover kept KV $v2 -> $v3, move -> $v4"
