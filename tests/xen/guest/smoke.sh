#!/bin/bash
# SPDX-License-Identifier: MIT
# tiber-testguest smoke test.  Runs INSIDE dom0 (the xen-qemu recipe's
# XQ_JOB), with the overlay from tests/xen/guest/run-xq.sh:
#   /root/testguest/{tiber-testguest,tiber-testguest-nocancel,testguest.cfg}
#   /usr/local/bin/tg-suspcheck
# usage: smoke.sh [ncycles=100] [hz=20]   (TG_CFG=testguest-pvh.cfg: PVH)
# Prints "TEST <name> PASS|FAIL detail" lines and "N passed, N failed";
# raw outputs go to /root/results/testguest/.
set -u
NCYC=${1:-100}
HZ=${2:-20}
G=/root/testguest
CFG=$G/${TG_CFG:-testguest.cfg}
NAME=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$CFG")
OUT=/root/results/testguest; mkdir -p $OUT
CHK=/usr/local/bin/tg-suspcheck
pass=0; fail=0
res() { if [ "$2" = 0 ]; then pass=$((pass+1)); echo "TEST $1 PASS $3"; else fail=$((fail+1)); echo "TEST $1 FAIL $3"; fi; }
log() { echo /var/log/xen/console/guest-$1.log; }
last_tick() { grep -a '^TICK ' "$(log $1)" 2>/dev/null | tail -1; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }
wait_ticks() { # name n: wait (max 60 s) until TICK n or later appears
  local i t
  for i in $(seq 120); do
    t=$(last_tick $1); t=${t#TICK }; t=${t%% *}
    [ -n "$t" ] && [ "$t" -ge "$2" ] && return 0; sleep 0.5
  done; return 1
}
ticking() { # name: the TICK counter advances within 5 s
  local a b i; a=$(last_tick $1)
  for i in $(seq 10); do sleep 0.5; b=$(last_tick $1); [ -n "$b" ] && [ "$b" != "$a" ] && return 0; done
  return 1
}

echo "=== $NAME smoke: $(xl info | grep -E '^xen_version') ncycles=$NCYC hz=$HZ"
xl destroy $NAME >/dev/null 2>&1; rm -f $(log $NAME)
# 1. boot
timeout 120 xl create $CFG > $OUT/create.log 2>&1; rc=$?
wait_ticks $NAME 3; t=$?
res boot_and_tick $((rc || t)) "xl create rc=$rc; $(last_tick $NAME)"
DOMID=$(xl domid $NAME)
grep -a -E '^(tiber-testguest|CONFIG|XENSTORE|SUSPEND-CHANNEL|VERIFY)' $(log $NAME)
# 2. suspend event channel published
ev=$(xenstore-read /local/domain/$DOMID/device/suspend/event-channel 2>/dev/null)
[ -n "$ev" ] && [ "$ev" -gt 0 ] 2>/dev/null; res evtchn_published $? "device/suspend/event-channel='$ev'"
# 3. checkpoint loop over the event channel with fast resume, log-dirty on
before=$(field suspends_cancelled "$(last_tick $NAME)")
timeout 600 $CHK $DOMID $NCYC $HZ dirty > $OUT/suspcheck-evtchn.txt 2>&1; rc=$?
grep -E '^(INFO|RESULT|SUMMARY)' $OUT/suspcheck-evtchn.txt
grep '^CYCLE' $OUT/suspcheck-evtchn.txt | tail -3
sleep 2.5
after=$(field suspends_cancelled "$(last_tick $NAME)")
res evtchn_checkpoints $rc "$(grep -o 'cycles_ok=[0-9]* of [0-9]*' $OUT/suspcheck-evtchn.txt)"
[ "$((after - before))" = "$NCYC" ]; res guest_counts_cancels $? "suspends_cancelled $before -> $after (expected +$NCYC); $(last_tick $NAME)"
ticking $NAME; res ticking_after_checkpoints $? ""
# 4. xenstore fallback: control/shutdown=suspend
timeout 120 $CHK $DOMID 5 5 xs > $OUT/suspcheck-xs.txt 2>&1; rc=$?
grep -E '^(RESULT|SUMMARY request)' $OUT/suspcheck-xs.txt
sleep 2.5
res xenstore_fallback $rc "$(last_tick $NAME)"
# 5. xl save / xl restore: the guest sees 0 (restored), reconnects, verifies
timeout 300 xl save $NAME /root/tg.save > $OUT/save.log 2>&1; rc=$?
res xl_save $rc "size=$(stat -c %s /root/tg.save 2>/dev/null)"
tail -3 $OUT/save.log
cp $(log $NAME) $OUT/guest-before-restore.log
timeout 300 xl restore /root/tg.save > $OUT/restore.log 2>&1; rc=$?
tail -3 $OUT/restore.log
rm -f /root/tg.save
DOMID=$(xl domid $NAME 2>/dev/null)
sleep 3
grep -a -E '^(RESTORED|VERIFY|XENSTORE|SUSPEND-CHANNEL)' $(log $NAME) | tail -4
grep -a -q '^VERIFY ok why=restore' $(log $NAME); v=$?
ticking $NAME; t=$?
res xl_restore $((rc || v || t)) "domid=$DOMID $(last_tick $NAME)"
ev=$(xenstore-read /local/domain/$DOMID/device/suspend/event-channel 2>/dev/null)
before=$(field suspends_cancelled "$(last_tick $NAME)")
timeout 300 $CHK $DOMID 20 $HZ > $OUT/suspcheck-after-restore.txt 2>&1; rc=$?
sleep 2.5
after=$(field suspends_cancelled "$(last_tick $NAME)")
grep -E '^(RESULT|SUMMARY request)' $OUT/suspcheck-after-restore.txt
[ $rc = 0 ] && [ "$((after - before))" = 20 ]; res checkpoints_after_restore $? "port='$ev' suspends_cancelled $before -> $after"
cp $(log $NAME) $OUT/guest-testguest.log
# 6. xl remus to localhost (libxl suspends through our event channel and
#    fast-resumes), then failover: the backup domain's guest sees 0
#    (restored) and must verify its memory and keep ticking.
B=$NAME--incoming
xl destroy $B >/dev/null 2>&1; rm -f $(log $B)
before=$(field suspends_cancelled "$(last_tick $NAME)")
(xl -vvv remus -F -n -d -i 100 -s '' $NAME "xl migrate-receive -r -e" > $OUT/xl-remus.log 2>&1) &
sleep ${REMUS_S:-20}
after=$(field suspends_cancelled "$(last_tick $NAME)")
cp $(log $NAME) $OUT/guest-testguest.log
XLPID=$(pgrep -f "^xl -vvv remus .* $NAME " | head -1)
xl destroy $NAME; kill -9 $XLPID 2>/dev/null
for i in $(seq 60); do xl list $NAME 2>/dev/null | tail -1 | awk '{print $5}' | grep -q '[rb]' && ! xl list $B >/dev/null 2>&1 && break; sleep 0.5; done
for i in $(seq 20); do [ -z "$(jobs -r)" ] && break; sleep 0.5; done
sleep 3
n=$(grep -c 'guest has suspended' $OUT/xl-remus.log)
grep -a -E '^(RESTORED|VERIFY|SUSPEND-CHANNEL)' $(log $B) | tail -3
grep -a -q '^VERIFY ok why=restore' $(log $B); v=$?
ticking $B; t=$?
[ "$n" -gt 0 ] && [ $v = 0 ] && [ $t = 0 ]; res xl_remus_failover $? "checkpoints=$n primary suspends_cancelled $before -> $after; backup domid=$(xl domid $NAME 2>/dev/null) $(last_tick $B)"
xl destroy $NAME
cp $(log $B) $OUT/ 2>/dev/null
gzip -f $OUT/xl-remus.log
# 7. the variant without XEN_ELFNOTE_SUSPEND_CANCEL boots and publishes too
sed -e 's/^name = .*/name = "testguest-nc"/' -e 's/tiber-testguest"/tiber-testguest-nocancel"/' \
  $G/testguest.cfg > /root/testguest-nc.cfg
rm -f $(log testguest-nc)
timeout 120 xl create /root/testguest-nc.cfg > $OUT/create-nc.log 2>&1; rc=$?
wait_ticks testguest-nc 2; t=$?
grep -a '^CONFIG' $(log testguest-nc)
res nocancel_boots $((rc || t)) "$(last_tick testguest-nc)"
xl destroy testguest-nc
cp $(log testguest-nc) $OUT/ 2>/dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ]
