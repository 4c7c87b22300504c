#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fault campaign against split brain (campaign.sh): N randomized trials
# (TIBER_CAMPAIGN_TRIALS, default 24: every fault kind 3 times) with
# fencing on; none may show two guests releasing output or a lost reply,
# and each must converge.  A negative control (failover without fencing,
# output released on backup loss) must be caught by the observer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/campaign.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root for network namespaces"
	exit 77
fi
command -v nft >/dev/null || fail "nft missing (make deps installs nftables)"
trap 'net_down; tb_cleanup' EXIT
net_up || fail "cannot make network namespaces"
trials=${TIBER_CAMPAIGN_TRIALS:-24}
max_s=${TIBER_CAMPAIGN_MAX_S:-3}
ok=0 bad=0 viol=0
for i in $(seq 1 "$trials"); do
	kind=${CAMPAIGN_KINDS[$(( (i - 1) % ${#CAMPAIGN_KINDS[@]} ))]}
	secs=$(awk -v r=$RANDOM -v m="$max_s" 'BEGIN{printf "%.1f", 0.5 + (m - 0.5) * r / 32767}')
	trial "$T/t$i" "$kind" "$secs" | tee -a "$T/trials.txt"
	case ${PIPESTATUS[0]} in
	0) ok=$((ok + 1)); [ -n "${TB_KEEP:-}" ] || rm -rf "$T/t$i" ;;
	2) viol=$((viol + 1)); echo "trial $i VIOLATION, logs:"; tail -n 5 "$T/t$i"/*.log ;;
	*) bad=$((bad + 1)); echo "trial $i FAILED, logs:"; tail -n 5 "$T/t$i"/*.log ;;
	esac
done
for k in "${CAMPAIGN_KINDS[@]}"; do
	printf 'campaign: %-16s trials=%d failovers=%d\n' "$k" \
		"$(grep -c "kind=$k " "$T/trials.txt")" \
		"$(grep "kind=$k " "$T/trials.txt" | grep -c "failover=yes")"
done
caught=0
for i in 1 2 3; do
	trial "$T/neg$i" stop_primary 2.0 negative | tee "$T/neg$i.txt"
	[ "${PIPESTATUS[0]}" -eq 2 ] && { caught=1; break; }
done
echo "campaign: $ok passed, $bad failed, $viol violations with fencing; negative control (no fencing) caught=$caught"
[ $bad -eq 0 ] && [ $viol -eq 0 ] && [ $caught -eq 1 ]
