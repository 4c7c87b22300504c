#!/bin/bash
# SPDX-License-Identifier: MIT
# tiber's check-xen job.  Runs INSIDE dom0 (the xen-qemu recipe's XQ_JOB),
# with the overlay that tests/xen/run.sh builds:
#   /usr/local/bin/{tb-xenprobe,tiberd,tiber-replicator}  (tiberd optional)
#   /root/testguest/{tiber-testguest,tiber-testguest-nocancel,testguest.cfg}
# usage: dom0-job.sh [types="pv pvh"] [epochs=200] [rates="10 20 40"]
# Per guest type: boot the stock Debian domU, sanity-check the backend
# (tb-xenprobe), a cancelled suspend, SIGKILL + recover, then tiberd +
# tiber-replicator on loopback for EPOCHS epochs at each rate, then
# `xl remus` for the same time, and a side-by-side table.  Then the
# freestanding test guest (event-channel path).  Prints TEST lines,
# TABLE lines and "N passed, N failed"; raw data in /root/results/tiber/.
set -u
TYPES=${1:-pv pvh}
EPOCHS=${2:-200}
RATES=${3-10 20 40}
OUT=/root/results/tiber; mkdir -p $OUT
PROBE=/usr/local/bin/tb-xenprobe
TIBERD=/usr/local/bin/tiberd
REPL=/usr/local/bin/tiber-replicator
pass=0; fail=0
now() { cut -d' ' -f1 /proc/uptime; }
T0=$(now)
el() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
SEEN=" "
res() { SEEN="$SEEN$1 "; if [ "$2" = 0 ]; then pass=$((pass+1)); echo "TEST $1 PASS $3"; else fail=$((fail+1)); echo "TEST $1 FAIL $3"; fi; }
# The tests this configuration must run: one that printed no TEST line
# (a section skipped for a missing precondition) fails at the end.
EXPECTED=""
for TYPE in $TYPES; do
	EXPECTED="$EXPECTED ${TYPE}_boot ${TYPE}_backend_sanity ${TYPE}_deadline_cancel ${TYPE}_sigkill_recover ${TYPE}_killed_suspended_recover ${TYPE}_crash_detected"
	for HZ in $RATES; do EXPECTED="$EXPECTED tiber_${TYPE}-${HZ}hz xl_remus_${TYPE}-${HZ}hz"; done
	tg=testguest; [ $TYPE = pvh ] && tg=testguest_pvh
	EXPECTED="$EXPECTED ${tg}_boot ${tg}_evtchn_mode"
	for HZ in ${RATES:-20}; do
		EXPECTED="$EXPECTED tiber_${tg}-${HZ}hz ${tg}_cancels_${HZ}hz"
		[ "$HZ" -le 10 ] && EXPECTED="$EXPECTED ${tg}_rate_${HZ}hz"
	done
done
EXPECTED="$EXPECTED testguest_nocancel_refused"
conlog() { echo /var/log/xen/console/guest-$1.log; }
last_tick() { grep -a -o '^TICK [0-9]*' "$(conlog $1)" 2>/dev/null | tail -1 | cut -d' ' -f2; }
ticking() { # guest's TICK counter advances within 8 s
	local a b i; a=$(last_tick $1)
	for i in $(seq 16); do sleep 0.5; b=$(last_tick $1); [ -n "$b" ] && [ "$b" != "$a" ] && return 0; done
	return 1
}
running() { # the domain exists and is not shut down / crashed
	xl list $1 2>/dev/null | tail -1 | awk '{print $5}' | grep -q '^[rb-]*$'
}
USE_TIBERD=0
[ -x $TIBERD ] && [ -x $REPL ] && USE_TIBERD=1
echo "=== tiber check-xen: $(xl info | grep -E '^xen_version') dom0 kernel $(uname -r)"
echo "INFO driver=$([ $USE_TIBERD = 1 ] && echo 'tiberd+tiber-replicator (loopback)' || echo 'tb-xenprobe (tiberd not built)')"

# stats FILE KEY...: p50/p99 of trace fields (ms)
tracestats() {
	python3 - "$1" <<'EOF'
import json, sys
rows = []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith('{'):
        continue
    try:
        rows.append(json.loads(line))
    except ValueError:
        pass
def pct(v, p):
    if not v: return float('nan')
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * p))]
ok = [r for r in rows if r.get('t_resumed', 0) and r.get('t_suspended', 0)]
w = [(r['t_suspended'] - r['t_request']) / 1e6 for r in ok]
pz = [(r['t_resumed'] - r['t_suspended']) / 1e6 for r in ok]
t = sorted(r['t_request'] for r in ok)
per = [(b - a) / 1e6 for a, b in zip(t, t[1:])]
acked = sum(1 for r in rows if r.get('acked', True))
skipped = sum(r.get('skipped_ticks', 0) for r in rows)
# achieved rate: epochs per second from the first request to the last
rate = (len(t) - 1) / ((t[-1] - t[0]) / 1e9) if len(t) > 1 and t[-1] > t[0] else 0.0
print("rows=%d acked=%d skipped=%d rate=%.1f " % (len(rows), acked, skipped, rate), end='')
print("n=%d req_susp_p50=%.1f req_susp_p99=%.1f pause_p50=%.2f pause_p99=%.2f period_p50=%.1f period_p99=%.1f"
      % (len(ok), pct(w, .5), pct(w, .99), pct(pz, .5), pct(pz, .99), pct(per, .5), pct(per, .99)))
EOF
}

# remusstats FILE: the same from `xl -vvv remus | tsline` (pause = guest
# suspended until its checkpoint is written: "guest has suspended" ->
# last "Checkpointed save: N/N", the resume is not logged by xl)
remusstats() {
	python3 - "$1" <<'EOF'
import sys
req = susp = None; w = []; pz = []; per = []; last_req = None; n = 0
for line in open(sys.argv[1], errors='replace'):
    parts = line.split(' ', 1)
    try: t = float(parts[0]) * 1e3
    except ValueError: continue
    s = parts[1] if len(parts) > 1 else ''
    if 'issuing' in s and 'suspend' in s:
        if last_req is not None: per.append(t - last_req)
        last_req = req = t
    elif 'guest has suspended' in s and req is not None:
        susp = t; w.append(t - req)
    elif 'Checkpointed save: ' in s:
        a = s.split('Checkpointed save: ')[1].split()[0].split('/')
        if len(a) == 2 and a[0] == a[1]:
            n += 1
            if susp is not None: pz.append(t - susp); susp = None
def pct(v, p):
    if not v: return float('nan')
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * p))]
print("n=%d req_susp_p50=%.1f req_susp_p99=%.1f pause_p50=%.2f pause_p99=%.2f period_p50=%.1f period_p99=%.1f"
      % (n, pct(w, .5), pct(w, .99), pct(pz, .5), pct(pz, .99), pct(per, .5), pct(per, .99)))
EOF
}
field() { sed -n "s/\(^\|.* \)$1=\([^ ]*\).*/\2/p" <<<"$2"; }
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; }

# run_tiber NAME DOMID HZ KERNEL TAG: EPOCHS epochs; sets TSTATS
run_tiber() {
	local name=$1 domid=$2 hz=$3 kernel=$4 tag=$5 tr=$OUT/trace-$5.jsonl
	local port=$((7000 + RANDOM % 2000)) rpid rc t tick0 tick1
	rm -f $tr
	tick0=$(last_tick $name)
	t=$(now)
	if [ $USE_TIBERD = 1 ] && [ "${TIBERD_OOM:-}" = "$name" ]; then
		RUN_S=0; TSTATS=""; TIBER_FAILED=1
		res tiber_${tag} 1 "not run: tiberd was OOM-killed on $name at a lower rate"
		return
	fi
	if [ $USE_TIBERD = 1 ]; then
		# Under QEMU TCG with one dom0 vCPU the default 1 s heartbeat
		# timeout and 200 ms suspend deadline are too tight (measured:
		# resyncs, 7/200 suspend timeouts); Xen failover is not
		# implemented yet, so the replicator must not try it.
		$REPL --insecure yes --listen 127.0.0.1:$port --backend xen --failover no \
			--heartbeat_timeout 10s > $OUT/replicator-$tag.log 2>&1 &
		rpid=$!
		sleep 0.5
		timeout $((EPOCHS / hz * 4 + 120)) $TIBERD --insecure yes --backend xen --domain $domid \
			--backup 127.0.0.1:$port --rate $hz --epochs $EPOCHS \
			--trace $tr --kernel $kernel --suspend_timeout 2s \
			--heartbeat_timeout 10s --lag_limit 30s \
			> $OUT/tiberd-$tag.log 2>&1
		rc=$?
		kill $rpid 2>/dev/null; wait $rpid 2>/dev/null
	else
		timeout $((EPOCHS / hz * 4 + 120)) $PROBE $domid $EPOCHS $hz \
			kernel=$kernel trace=$tr > $OUT/probe-$tag.log 2>&1
		rc=$?
		grep -E '^(INFO|RESULT)' $OUT/probe-$tag.log
	fi
	RUN_S=$(el $t)
	TSTATS=$(tracestats $tr)
	local n rows acked; n=$(num n "$TSTATS"); rows=$(num rows "$TSTATS"); acked=$(num acked "$TSTATS")
	ticking $name; local tk=$?
	tick1=$(last_tick $name)
	running $name; local up=$?
	local state; state=$(xl list $name 2>/dev/null | tail -1 | awk '{print $5}')
	# every epoch: suspended, resumed and (tiberd) acked by the replicator
	TIBER_FAILED=$(( rc != 0 || n < EPOCHS || rows != n || acked != rows || tk != 0 || up != 0 || USE_TIBERD == 0 ))
	res tiber_${tag} $TIBER_FAILED \
		"$([ $USE_TIBERD = 1 ] || echo 'tiberd not built: tb-xenprobe ran instead; ')rc=$rc epochs=$n/$EPOCHS in ${RUN_S}s guest_state=$state ticks ${tick0:-?}->${tick1:-?} $TSTATS"
	[ $rc = 0 ] || tail -5 $OUT/tiberd-$tag.log $OUT/probe-$tag.log 2>/dev/null
	if [ $rc = 137 ]; then
		dmesg | grep -i -m2 "out of memory\|oom-kill"
		TIBERD_OOM=$name
	fi
	# a tiberd that died may have left log-dirty on (xl remus would get
	# EBUSY) or the guest suspended: what `tiberctl recover` is for
	if [ $rc != 0 ]; then
		echo "NOTE after tiberd rc=$rc: $($PROBE $domid recover | grep RESULT)"
	fi
}

# run_probe NAME DOMID HZ KERNEL TAG: the backend alone (no replicator), for
# numbers when tiberd failed; sets PSTATS
run_probe() {
	local tr=$OUT/trace-probe-$5.jsonl rc
	timeout $((EPOCHS / $3 * 4 + 120)) $PROBE $2 $EPOCHS $3 kernel=$4 \
		trace=$tr > $OUT/probe-$5.log 2>&1
	rc=$?
	PSTATS=$(tracestats $tr)
	ticking $1; local tk=$?
	res probe_$5 $(( rc || tk )) "rc=$rc $(grep -o 'epochs_ok=[0-9]* failed=[0-9]*' $OUT/probe-$5.log) $PSTATS"
}

# run_remus NAME HZ SECONDS TAG: xl remus to a blackhole; sets RSTATS
run_remus() {
	local name=$1 hz=$2 secs=$3 tag=$4 rl=$OUT/xl-remus-$4.log
	local iv=$((1000 / hz))
	(timeout -s INT $secs xl -vvv remus -F -b -n -d -i $iv $name localhost 2>&1 | tsline > $rl)
	sleep 1
	# xl remus may leave the guest suspended when interrupted mid-checkpoint
	if xl list $name 2>/dev/null | tail -1 | awk '{print $5}' | grep -q s; then
		$PROBE $(xl domid $name) recover > /dev/null; echo "NOTE xl remus left $name suspended; recovered"
	fi
	# an interrupted xl remus leaves log-dirty on (measured: the next
	# attach failed), which the next tiberd could not enable
	local did; did=$($PROBE $(xl domid $name) recover | sed -n 's/^RESULT recover rc=0 did: //p')
	[ -n "$did" ] && [ "$did" != "nothing " ] && echo "NOTE after xl remus, recover did: $did"
	RSTATS=$(remusstats $rl)
	ticking $name; local tk=$?
	# every row of the table: a pause and a request->suspended figure
	local full=0
	case "$(field pause_p50 "$RSTATS") $(field req_susp_p50 "$RSTATS")" in *nan*|" "*|*" ") full=1;; esac
	res xl_remus_${tag} $(( tk != 0 || $(num n "$RSTATS") == 0 || full )) \
		"-i $iv for ${secs}s guest_ticking=$([ $tk = 0 ] && echo yes || echo no) $RSTATS"
	gzip -f $rl
}

row() { # TABLE lines: type hz who stats
	echo "TABLE $1 $2Hz $3 req->susp p50/p99 $(field req_susp_p50 "$4")/$(field req_susp_p99 "$4") ms | pause p50/p99 $(field pause_p50 "$4")/$(field pause_p99 "$4") ms | period p50/p99 $(field period_p50 "$4")/$(field period_p99 "$4") ms | n=$(field n "$4")"
}

TABLE=()
for TYPE in $TYPES; do
	case $TYPE in
	pv) CFG=/root/domu/domu.cfg; NAME=domu ;;
	pvh) CFG=/root/domu/domh.cfg; NAME=domh ;;
	esac
	echo "=== $TYPE"
	xl destroy $NAME >/dev/null 2>&1; rm -f $(conlog $NAME)
	t=$(now)
	# the recipe's config plus sysrq_always_enabled (Debian's kernel.sysrq
	# mask refuses `xl sysrq c`, measured), for the crash test below
	sed 's/^extra = "\(.*\)"/extra = "\1 sysrq_always_enabled=1"/' $CFG > /root/tiber/$NAME.cfg
	timeout 300 xl create /root/tiber/$NAME.cfg > $OUT/create-$TYPE.log 2>&1; rc=$?
	for i in $(seq 600); do grep -q DOMU-BOOTED $(conlog $NAME) 2>/dev/null && break; sleep 0.2; done
	ticking $NAME; tk=$?
	res ${TYPE}_boot $(( rc != 0 || tk != 0 )) "xl create rc=$rc, booted and ticking after $(el $t)s"
	[ $tk = 0 ] || continue
	DOMID=$(xl domid $NAME)
	echo "INFO $TYPE device/suspend/event-channel='$(xenstore-read /local/domain/$DOMID/device/suspend/event-channel 2>/dev/null)' control/feature-suspend='$(xenstore-read /local/domain/$DOMID/control/feature-suspend 2>/dev/null)'"

	# backend sanity: 20 epochs with the probe (attach .. detach)
	timeout 120 $PROBE $DOMID 20 10 kernel=/root/domu/vmlinuz > $OUT/probe-$TYPE-sanity.log 2>&1; rc=$?
	grep -E '^(INFO|RESULT|SUMMARY)' $OUT/probe-$TYPE-sanity.log
	ticking $NAME; tk=$?
	res ${TYPE}_backend_sanity $(( rc || tk )) "$(grep -o 'epochs_ok=[0-9]* failed=[0-9]*' $OUT/probe-$TYPE-sanity.log) ticking=$([ $tk = 0 ] && echo yes || echo no)"

	# a suspend that misses its deadline is cancelled; guest keeps running
	timeout 60 $PROBE $DOMID timeout kernel=/root/domu/vmlinuz > $OUT/probe-$TYPE-timeout.log 2>&1; rc=$?
	grep RESULT $OUT/probe-$TYPE-timeout.log
	ticking $NAME; tk=$?
	res ${TYPE}_deadline_cancel $(( rc || tk )) "ticking=$([ $tk = 0 ] && echo yes || echo no)"

	# SIGKILL in the middle of a run, then recover (tiberctl recover's function)
	$PROBE $DOMID 100000 40 kernel=/root/domu/vmlinuz > $OUT/probe-$TYPE-kill.log 2>&1 &
	ppid=$!
	for i in $(seq 100); do grep -q '^EPOCH 3 ' $OUT/probe-$TYPE-kill.log && break; sleep 0.2; done
	sleep 1.$((RANDOM % 10)); kill -9 $ppid; wait $ppid 2>/dev/null
	st=$(xl list $NAME | tail -1 | awk '{print $5}')
	timeout 60 $PROBE $DOMID recover > $OUT/probe-$TYPE-recover.log 2>&1; rc=$?
	grep RESULT $OUT/probe-$TYPE-recover.log
	ticking $NAME; tk=$?
	res ${TYPE}_sigkill_recover $(( rc || tk )) "state after kill -9 mid-run: '$st'; ticking after recover=$([ $tk = 0 ] && echo yes || echo no)"
	# killed while the guest is suspended: recover must resume it
	timeout 60 $PROBE $DOMID die-suspended kernel=/root/domu/vmlinuz > $OUT/probe-$TYPE-die.log 2>&1
	grep RESULT $OUT/probe-$TYPE-die.log
	st=$(xl list $NAME | tail -1 | awk '{print $5}')
	timeout 60 $PROBE $DOMID recover > $OUT/probe-$TYPE-recover2.log 2>&1; rc=$?
	grep RESULT $OUT/probe-$TYPE-recover2.log
	ticking $NAME; tk=$?
	res ${TYPE}_killed_suspended_recover $(( rc || tk )) "state after kill -9: '$st'; ticking after recover=$([ $tk = 0 ] && echo yes || echo no)"

	for HZ in $RATES; do
		run_tiber $NAME $DOMID $HZ /root/domu/vmlinuz $TYPE-${HZ}hz
		TABLE+=("$(row $TYPE $HZ tiber "$TSTATS")")
		if [ $USE_TIBERD = 1 ] && [ $TIBER_FAILED != 0 ]; then
			run_probe $NAME $DOMID $HZ /root/domu/vmlinuz $TYPE-${HZ}hz
			TABLE+=("$(row $TYPE $HZ tb-xenprobe "$PSTATS")")
		fi
		secs=${RUN_S%.*}; [ "${secs:-0}" -ge 5 ] || secs=$((EPOCHS / HZ + 5))
		[ "$secs" -le $((EPOCHS / HZ * 3 + 10)) ] || secs=$((EPOCHS / HZ * 3 + 10))
		run_remus $NAME $HZ $secs $TYPE-${HZ}hz
		TABLE+=("$(row $TYPE $HZ xl-remus "$RSTATS")")
		running $NAME || break
	done
	xl dmesg | grep -i -E "triple|crash" | tail -3
	# A guest that crashes while protected (like the recipe's PVH triple
	# fault) is detected and reported: crash it with sysrq-c (the domU
	# configs say on_crash="preserve") in the middle of a 10 Hz run.
	if running $NAME; then
		$PROBE $DOMID 100000 10 kernel=/root/domu/vmlinuz > $OUT/probe-$TYPE-crash.log 2>&1 &
		ppid=$!
		for i in $(seq 100); do grep -q '^EPOCH 3 ' $OUT/probe-$TYPE-crash.log && break; sleep 0.2; done
		xl sysrq $NAME c
		for i in $(seq 60); do kill -0 $ppid 2>/dev/null || break; sleep 0.5; done
		kill -9 $ppid 2>/dev/null; wait $ppid 2>/dev/null
		grep -E '^(EPOCH .*failed|RESULT)' $OUT/probe-$TYPE-crash.log | tail -2
		$PROBE $DOMID recover > /dev/null 2>&1 # if it did not crash
		grep -q 'health=-14 .*shut down: reason crash' $OUT/probe-$TYPE-crash.log
		res ${TYPE}_crash_detected $? "state: $(xl list $NAME 2>/dev/null | tail -1 | awk '{print $5}')"
	fi
	cp $(conlog $NAME) $OUT/ 2>/dev/null
	xl destroy $NAME >/dev/null 2>&1
done

# The freestanding PV test guest: publishes device/suspend/event-channel
# suspends_cancelled= of the test guest's last console heartbeat
tg_cancels() {
	grep -o 'suspends_cancelled=[0-9]*' "$(conlog $1)" 2>/dev/null | tail -1 | cut -d= -f2
}

# testguest_run TYPE: the test guest's PV or PVH build (same sources)
testguest_run() {
	local type=$1 cfg kernel tag G
	case $type in
	pv) cfg=/root/testguest/testguest.cfg; tag=testguest ;;
	pvh) cfg=/root/testguest/testguest-pvh.cfg; tag=testguest_pvh ;;
	*) return ;;
	esac
	[ -f $cfg ] || return
	kernel=$(sed -n 's/^kernel *= *"\(.*\)"/\1/p' $cfg)
	G=$(sed -n 's/^name *= *"\(.*\)"/\1/p' $cfg)
	echo "=== $tag ($type, event-channel suspend path)"
	xl destroy $G >/dev/null 2>&1; rm -f $(conlog $G)
	timeout 120 xl create $cfg > $OUT/create-$G.log 2>&1; rc=$?
	for i in $(seq 100); do [ -n "$(last_tick $G)" ] && break; sleep 0.2; done
	ticking $G; tk=$?
	res ${tag}_boot $(( rc || tk )) "xl create rc=$rc"
	if [ $tk = 0 ]; then
		DOMID=$(xl domid $G)
		echo "INFO $tag device/suspend/event-channel='$(xenstore-read /local/domain/$DOMID/device/suspend/event-channel 2>/dev/null)'"
		timeout 60 $PROBE $DOMID 5 10 kernel=$kernel > $OUT/probe-$tag-sanity.log 2>&1
		grep -E '^INFO dom' $OUT/probe-$tag-sanity.log
		grep -q 'suspend_mode=evtchn' $OUT/probe-$tag-sanity.log
		res ${tag}_evtchn_mode $? "$(grep -o 'suspend_mode=[a-z]*' $OUT/probe-$tag-sanity.log)"
		# Every rate: the guest's own suspend-cancel count must grow
		# by exactly the number of epochs tiberd suspended it for.
		for hz in ${RATES:-20}; do
			# the console heartbeat is once a second: wait for one
			# that follows any earlier suspend (e.g. the sanity probe)
			sleep 1.5
			c0=$(tg_cancels $G)
			run_tiber $G $DOMID $hz $kernel $tag-${hz}hz
			TABLE+=("$(row $tag $hz tiber-evtchn "$TSTATS")")
			sleep 1.5 # one more heartbeat line on the console
			c1=$(tg_cancels $G)
			ne=$(grep -c '"t_suspended":[1-9]' $OUT/trace-$tag-${hz}hz.jsonl)
			[ -n "$c0" ] && [ -n "$c1" ] && [ $((c1 - c0)) -eq "$ne" ]
			res ${tag}_cancels_${hz}hz $? "guest suspend-cancels ${c0:-?}->${c1:-?} (+$(( ${c1:-0} - ${c0:-0} ))), epochs suspended by tiberd $ne"
			# the achieved rate: at least 0.9x the target at 10 Hz;
			# above, reported: on TCG tiberd's encoder and the
			# replicator share dom0's one vCPU, and a slower or
			# busier host drops 20 Hz to 0.65x (measured)
			local r; r=$(field rate "$TSTATS")
			if [ "$hz" -le 10 ]; then
				awk -v r="${r:-0}" -v h=$hz 'BEGIN{exit !(r >= 0.9 * h)}'
				res ${tag}_rate_${hz}hz $? "achieved ${r:-?} Hz of $hz ($(awk -v r="${r:-0}" -v h=$hz 'BEGIN{printf "%.2f", r / h}')x)"
			else
				echo "INFO ${tag}_rate_${hz}hz achieved ${r:-?} Hz of $hz ($(awk -v r="${r:-0}" -v h=$hz 'BEGIN{printf "%.2f", r / h}')x; not asserted above 10 Hz)"
			fi
		done
		xl destroy $G
	fi
}

if [ -f /root/testguest/testguest.cfg ]; then
	for t in $TYPES; do testguest_run $t; done
	# the variant without XEN_ELFNOTE_SUSPEND_CANCEL must be refused
	sed -e 's/^name = .*/name = "tgnc"/' -e 's#tiber-testguest"#tiber-testguest-nocancel"#' \
		/root/testguest/testguest.cfg > /root/testguest/tgnc.cfg
	timeout 120 xl create /root/testguest/tgnc.cfg > /dev/null 2>&1
	sleep 2
	timeout 60 $PROBE $(xl domid tgnc) 5 10 > $OUT/probe-tgnc.log 2>&1; rc=$?
	grep RESULT $OUT/probe-tgnc.log | head -1
	grep -q 'does not advertise SUSPEND_CANCEL' $OUT/probe-tgnc.log
	res testguest_nocancel_refused $? "attach rc=$rc"
	xl destroy tgnc >/dev/null 2>&1
fi

echo "=== side by side (ms; tiber pause = suspended->resumed incl. page copy; xl remus pause = suspended->checkpoint written, -b blackhole)"
for l in "${TABLE[@]}"; do echo "$l"; done
for t in $EXPECTED; do
	case $SEEN in *" $t "*) ;; *) res $t 1 "not run (a precondition was missing: see above)";; esac
done
echo "=== tiber check-xen done in $(el $T0)s"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
