#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Protect a busy simguest at 100 Hz, quiesce it, and check that the
# backup's replica equals the guest's RAM bit for bit, that the image
# passes the guest's own verifier, and that the guest counted one
# suspend-cancel per epoch tiberd ran.
. "$(dirname "$0")/lib.sh"

start_replicator r --failover no --dump-dir "$T"
start_guest g --ram 128M --workload synthetic --threads 2 --dirty-rate 100000 \
	--wss 32M --content delta
start_tiberd d --rate 100
WAIT_S=30 wait_for acked_at_least 100 || fail "fewer than 100 epochs acked"
kill -USR2 "$GUEST_PID"
wait_for grep -q "workload quiesced" "$T/g.log" || fail "guest did not quiesce"
e=$(status_field epochs)
WAIT_S=10 wait_for acked_at_least $((e + 10)) || fail "no epochs after quiesce"
kill -TERM "$TIBERD_PID"
wait "$TIBERD_PID" || fail "tiberd exit status $?"
wait_for test -f "$T/dom0.json" || fail "replicator wrote no image"

ramfd=$(for f in /proc/$GUEST_PID/fd/*; do
	case $(readlink "$f") in *tiber-guest-ram*) basename "$f" ;; esac
done | head -1)
[ -n "$ramfd" ] || fail "guest RAM memfd not found"
cmp "$T/dom0.img" "/proc/$GUEST_PID/fd/$ramfd" || fail "replica differs from guest RAM"
"$BIN/tiber-simguest" --verify-image "$T/dom0.img" >"$T/verify.log" 2>&1 ||
	fail "replica image does not verify"

epochs=$(grep -c '"acked":true' "$T/d.trace")
kill -USR1 "$GUEST_PID"
sleep 0.3
cancels=$(grep -o 'suspend_cancels=[0-9]*' "$T/g.log" | tail -1 | cut -d= -f2)
[ "$cancels" = "$epochs" ] || fail "guest counted $cancels suspend-cancels, tiberd acked $epochs epochs"
grep -q '"epoch":'"$(sed -n 's/.*"epoch":\([0-9]*\).*/\1/p' "$T/dom0.json")" "$T/d.trace" ||
	fail "dumped epoch not in the trace"
echo "test_protect_replica: ok: $epochs epochs, replica == guest RAM ($(du -h "$T/dom0.img" | cut -f1)), $cancels suspend-cancels"
