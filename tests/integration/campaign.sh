#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The split-brain fault campaign (sourced by test_split_brain.sh and
# soak_split_brain.sh).  Each trial: a replicator in its own network
# namespace B, tiberd in namespace A, joined by a veth; the simulated
# guest on the primary and the one a failover restores serve a KV
# service on unix sockets; observer.py writes through both and asserts
# that never two guests release output and no reply a client got is
# lost.  One fault per trial, then the trial checks that the pair
# converged to one serving primary in a state its status names.
#
#   trial DIR KIND SECS [negative]
# KIND: stop_primary stop_backup link_down drop_to_backup drop_to_primary
#       kill_primary kill_backup fence_fail
# negative: failover without fencing and release on backup loss (the
# control the observer must catch).
# Both sides declare the peer lost after 1 s of silence (the default):
# with 500 ms, three make checks side by side starved a primary that
# long before its fault, the backup rightly fenced it and failed over,
# and the trial could not start.  Prints one "trial: ..." line;
# returns 0 ok, 1 broken, 2 observer violation.

CAMPAIGN_KINDS=(stop_primary stop_backup link_down drop_to_backup
	drop_to_primary kill_primary kill_backup fence_fail)
NS_A=tbA$$
NS_B=tbB$$
VETH=tbv$$
NET=10.$((200 + $$ % 50)).$(($$ % 250)).

net_up() {
	ip netns add "$NS_A" && ip netns add "$NS_B" || return 1
	ip link add "${VETH}a" type veth peer name "${VETH}b" || return 1
	ip link set "${VETH}a" netns "$NS_A"
	ip link set "${VETH}b" netns "$NS_B"
	ip -n "$NS_A" addr add "${NET}1/24" dev "${VETH}a"
	ip -n "$NS_B" addr add "${NET}2/24" dev "${VETH}b"
	ip -n "$NS_A" link set "${VETH}a" up
	ip -n "$NS_B" link set "${VETH}b" up
	ip -n "$NS_A" link set lo up
	ip -n "$NS_B" link set lo up
}

net_down() {
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
}

ctl_field() { # SOCKET KEY
	"$BIN/tiberctl" --socket "$1" status --json 2>/dev/null |
		sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -1
}

alive() { [ -n "$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ] && [ -e "/proc/$1" ]; }

trial() {
	local d=$1 kind=$2 secs=$3 neg=${4:-} rp gp dp op addr fo=auto pol=fence
	local got want viol rc=0 dstate rstate failed_over=no
	mkdir -p "$d"
	[ -n "$neg" ] && { fo=unsafe-auto; pol=release; }
	ip netns exec "$NS_B" "$BIN/tiber-replicator" "${TLS_ARGS[@]}" --listen "${NET}2:0" \
		--heartbeat-timeout 1s --failover "$fo" \
		--fence-cmd "$ROOT/scripts/fence-pids.sh $d/primary.pids" \
		--fence-retry 1s --control "$d/r.ctl" --status-file "$d/failover.json" \
		--restore-args "--kv-listen unix:$d/kvB.sock --stats-interval 0" \
		>"$d/r.log" 2>&1 &
	rp=$!
	"$BIN/tiber-simguest" --socket "$d/g.sock" --ram 64M --workload mixed \
		--kv-listen "unix:$d/kvA.sock" --dirty-rate 20000 --stats-interval 0 \
		>"$d/g.log" 2>&1 &
	gp=$!
	echo "$rp" >"$d/backup.pids"
	WAIT_S=10 wait_for grep -q "listening on" "$d/r.log" || { echo "trial: replicator did not start"; kill -9 $rp $gp; return 1; }
	WAIT_S=10 wait_for test -S "$d/kvA.sock" || { echo "trial: guest did not start"; kill -9 $rp $gp; return 1; }
	addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$d/r.log" | head -1)
	ip netns exec "$NS_A" "$BIN/tiberd" "${TLS_ARGS[@]}" --backend sim --guest "$d/g.sock" \
		--backup "$addr" --rate 100 --heartbeat-timeout 1s \
		--reconnect-interval 200ms --on-backup-loss "$pol" \
		--control "$d/d.ctl" >"$d/d.log" 2>&1 &
	dp=$!
	echo "$dp $gp" >"$d/primary.pids"
	CTL=$d/d.ctl WAIT_S=20 wait_for acked_at_least 3 || { echo "trial: not protected"; kill -9 $rp $gp $dp; return 1; }
	python3 "$ROOT/tests/integration/observer.py" "$d/kvA.sock" "$d/kvB.sock" \
		"$d/stop" >"$d/obs.out" 2>&1 &
	op=$!
	WAIT_S=10 wait_for test -e "$d/stop.A" || { echo "trial: observer got no reply from A"; kill -9 $rp $gp $dp $op; return 1; }
	sleep "0.$((RANDOM % 7 + 3))"
	case $kind in
	stop_primary) kill -STOP $dp; sleep "$secs"; kill -CONT $dp ;;
	stop_backup) kill -STOP $rp; sleep "$secs"; kill -CONT $rp ;;
	link_down)
		ip -n "$NS_A" link set "${VETH}a" down; sleep "$secs"
		ip -n "$NS_A" link set "${VETH}a" up ;;
	drop_to_backup | drop_to_primary)
		local hook=output dir=daddr
		[ $kind = drop_to_primary ] && { hook=input; dir=saddr; }
		ip netns exec "$NS_A" nft add table inet tbfault
		ip netns exec "$NS_A" nft add chain inet tbfault c "{ type filter hook $hook priority 0; }"
		ip netns exec "$NS_A" nft add rule inet tbfault c ip $dir "${NET}2" drop
		sleep "$secs"
		ip netns exec "$NS_A" nft delete table inet tbfault ;;
	kill_primary) kill -9 $dp $gp ;;
	kill_backup) kill -9 $rp ;;
	fence_fail) touch "$d/primary.pids.fail"; kill -9 $dp ;;
	esac
	# Let detection, fencing, failover or re-sync play out.
	sleep 4
	grep -q '"event":"failover"' "$d/failover.json" 2>/dev/null && failed_over=yes
	if [ $failed_over = yes ]; then
		# One primary: the restored guest; the old one fenced or gone.
		WAIT_S=10 wait_for test -S "$d/kvB.sock" || rc=1
		if alive $gp; then rc=1; echo "trial: old guest alive after failover"; fi
		want="failed_over"
		got=$(ctl_field "$d/r.ctl" state)
	else
		case $kind in
		kill_backup) want=isolated; got=$(ctl_field "$d/d.ctl" state) ;;
		fence_fail) want=primary_lost
			# detection, then the failing fence command: wait
			WAIT_S=10 wait_for eval '[ "$(ctl_field "$d/r.ctl" state)" = primary_lost ]'
			got=$(ctl_field "$d/r.ctl" state)
			[ "$(ctl_field "$d/r.ctl" fence_failures)" -ge 1 ] 2>/dev/null || rc=1 ;;
		*) want=protected
			CTL=$d/d.ctl WAIT_S=15 wait_for state_is protected
			got=$(ctl_field "$d/d.ctl" state) ;;
		esac
	fi
	[ "$got" = "$want" ] || { [ -z "$neg" ] && rc=1; }
	sleep 1
	touch "$d/stop"
	wait $op
	viol=$?
	kill -9 $dp $gp $rp 2>/dev/null
	for p in $(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$d/failover.json" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	wait $dp $gp $rp 2>/dev/null
	echo "trial: kind=$kind secs=$secs${neg:+ NEGATIVE} failover=$failed_over state=$got want=$want $(cat "$d/obs.out")"
	[ $viol -ne 0 ] && return 2
	return $rc
}
