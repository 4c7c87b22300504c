#!/bin/bash
# SPDX-License-Identifier: MIT
# `make check-xen`: tiber against a live domain on Xen 4.17 (Debian dom0 in
# QEMU TCG, ../shared/xen-qemu's recipe for the generic boot machinery).
#   1. build tiber (host), tb-xenprobe and the freestanding test guest
#   2. overlay: programs + missing shared libraries + dom0-job.sh
#   3. ci-run.sh: hypervisor with shadow paging, cached dom0 rootfs, image,
#      boot, the job (tests/xen/dom0-job.sh), results off the xfer disk
#   4. print the TEST lines, the side-by-side table and the stage times
# Needs root (debootstrap, QEMU), ~7 GB RAM, 2 cores, apt for the first run.
# Artefacts in $XQ_DIR (default /var/tmp/tiber-xen), never in the repo;
# the dom0 rootfs is cached there between runs.
# Knobs: XQ_DIR, XQ_RECIPE (default ../shared/xen-qemu), TIBER_XEN_TYPES
# ("pv pvh"), TIBER_XEN_EPOCHS (200), TIBER_XEN_RATES ("10 20 40"), and
# the recipe's XQ_* knobs.  Exit 0 only if every test passed; 77 = skipped.
set -uo pipefail
T0=$(date +%s.%N)
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
RECIPE=${XQ_RECIPE:-$TOP/../shared/xen-qemu}
export XQ_DIR=${XQ_DIR:-/var/tmp/tiber-xen}
D=$XQ_DIR
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}'; }

if [ "$(id -u)" -ne 0 ]; then
	echo "check-xen: SKIP: needs root (debootstrap, QEMU images)"; exit 77
fi
if [ ! -x "$RECIPE/ci-run.sh" ]; then
	echo "check-xen: SKIP: no xen-qemu recipe at $RECIPE (set XQ_RECIPE)"; exit 77
fi
mkdir -p "$D"

QPID_FILE=$D/qemu.pid
cleanup() { # QEMU must never outlive this script (ci-run.sh has the same trap)
	local p
	p=$(cat "$QPID_FILE" 2>/dev/null) || return 0
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -q qemu "/proc/$p/cmdline" 2>/dev/null; then
		echo "check-xen: killing qemu pid $p"; kill "$p"; sleep 2; kill -9 "$p" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. build on the host (same libxen 4.17 as dom0)
echo "check-xen: building (host)"
make -C "$TOP" -j2 all > "$D/build.log" 2>&1 || \
	echo "check-xen: NOTE 'make all' failed (see $D/build.log); using what was built"
make -C "$TOP" -j2 build/rel/libtiber.a >> "$D/build.log" 2>&1 || {
	echo "check-xen: FAIL: libtiber.a does not build"; tail -20 "$D/build.log"; exit 1; }
OVL=$D/overlay; rm -rf "$OVL"
mkdir -p "$OVL/usr/local/bin" "$OVL/root/tiber" "$OVL/root/testguest"
PKGS="xencontrol xenguest xenevtchn xenforeignmemory xenstore xentoollog liburing liblz4 libxxhash libnl-route-3.0 libnl-3.0"
# shellcheck disable=SC2046
cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
	-no-pie -I"$TOP/include" -o "$OVL/usr/local/bin/tb-xenprobe" "$HERE/tb-xenprobe.c" \
	"$TOP/build/rel/libtiber.a" $(pkg-config --libs $PKGS 2>/dev/null) -lm -lrt -pthread \
	>> "$D/build.log" 2>&1 || { echo "check-xen: FAIL: tb-xenprobe does not build"; tail -20 "$D/build.log"; exit 1; }
for p in tiberd tiber-replicator tiberctl; do
	[ -x "$TOP/build/bin/$p" ] && cp "$TOP/build/bin/$p" "$OVL/usr/local/bin/"
done
if [ -f "$HERE/guest/Makefile" ] && make -C "$HERE/guest" OUT="$D/guest" >> "$D/build.log" 2>&1; then
	cp "$D/guest/tiber-testguest" "$D/guest/tiber-testguest-nocancel" \
		"$D/guest/tiber-testguest-pvh" "$HERE/guest/testguest.cfg" \
		"$HERE/guest/testguest-pvh.cfg" "$OVL/root/testguest/"
else
	echo "check-xen: NOTE test guest not built (tests/xen/guest); stock domU only"
fi
cp "$HERE/dom0-job.sh" "$OVL/root/tiber/"
chmod 755 "$OVL/root/tiber/dom0-job.sh"
# TIBER_XEN_JOB=ha: only the HA tests (tests/xen/dom0-ha.sh: output
# commit in dom0's kernel, PVH failover through xl restore)
if [ "${TIBER_XEN_JOB:-}" = ha ]; then
	cp "$TOP/build/rel/tests/test_xen_netbuf" "$OVL/usr/local/bin/"
	# shellcheck disable=SC2046
	cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
		-no-pie -I"$TOP/include" -o "$OVL/usr/local/bin/tb-xenrestore" \
		"$HERE/tb-xenrestore.c" "$TOP/build/rel/libtiber.a" \
		$(pkg-config --libs $PKGS 2>/dev/null) -lm -lrt -pthread >> "$D/build.log" 2>&1 ||
		echo "check-xen: NOTE tb-xenrestore does not build"
	cp "$HERE/dom0-ha.sh" "$OVL/root/tiber/"
	chmod 755 "$OVL/root/tiber/dom0-ha.sh"
	# the kTLS test's pre-shared key (gnutls-bin on the host)
	"$TOP/scripts/tls-keys.sh" psk "$OVL/root/tiber/tls.psk" tiberd-xen > /dev/null ||
		echo "check-xen: NOTE no TLS key made (scripts/tls-keys.sh)"
	# the disk test: nbdkit (file plugin) with our filter, nbd-client;
	# from the host (the same Debian release; make deps installs them)
	mkdir -p "$OVL/usr/local/lib/nbdkit"
	for b in nbdkit nbd-client; do
		p=$(command -v $b || echo /usr/sbin/$b)
		[ -x "$p" ] && cp "$p" "$OVL/usr/local/bin/" ||
			echo "check-xen: NOTE no $b on the host"
	done
	cp /usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-file-plugin.so \
		"$TOP/build/bin/nbdkit-tiber-filter.so" "$OVL/usr/local/lib/nbdkit/" ||
		echo "check-xen: NOTE nbdkit's file plugin or our filter missing"
fi
echo "check-xen: programs: $(ls "$OVL/usr/local/bin" | tr '\n' ' ')"

# 2. shared libraries the programs need that the dom0 rootfs lacks (e.g.
#    libxxhash): copied from the host, which runs the same Debian release.
#    Known once the rootfs exists; ci-run.sh builds it first if not.
if [ ! -f "$D/rootfs.stamp" ]; then
	"$RECIPE/get-xen.sh" > "$D/get-xen.log" 2>&1 && \
		"$RECIPE/build-rootfs.sh" > "$D/build-rootfs.log" 2>&1 || {
		echo "check-xen: FAIL: dom0 rootfs"; tail -20 "$D/build-rootfs.log"; exit 1; }
fi
for b in "$OVL"/usr/local/bin/*; do
	ldd "$b" | awk '/=> \// {print $3}' | while read -r lib; do
		# merged /usr: /lib is a symlink in the rootfs, so /lib/... goes
		# to usr/lib/... in the overlay (e.g. libnl-3.so.200)
		dst=$lib; case $lib in /lib/*|/lib64/*) dst=/usr$lib;; esac
		[ -e "$D/rootfs$lib" ] || [ -e "$D/rootfs/usr$lib" ] || {
			mkdir -p "$OVL$(dirname "$dst")"; cp -L "$lib" "$OVL$dst"; }
	done
done

# 2b. HA job: the network test guest's initramfs (busybox, the dom0
#     kernel's xen-netfront.ko, tests/xen/netguest/init) and pktcap.py
if [ "${TIBER_XEN_JOB:-}" = ha ]; then
	NF=$(find "$D/rootfs/usr/lib/modules" -name 'xen-netfront.ko*' | head -1)
	W=$(mktemp -d); mkdir -p "$W/bin" "$W/dev" "$W/proc" "$W/sys" "$W/tmp" "$OVL/root/netguest"
	cp "$(command -v busybox)" "$W/bin/busybox"
	for a in $("$W/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$W/bin/$a"; done
	cp "$HERE/netguest/init" "$W/init"
	case $NF in *.xz) xz -dc "$NF" > "$W/xen-netfront.ko";; *) cp "$NF" "$W/xen-netfront.ko";; esac
	(cd "$W" && find . | cpio --quiet -o -H newc | gzip -9) > "$OVL/root/netguest/initrd.cpio.gz"
	rm -rf "$W"
	cp "$HERE/netguest/netguest.cfg" "$OVL/root/netguest/"
	cp "$HERE/pktcap.py" "$OVL/root/tiber/"
	[ -n "$NF" ] || echo "check-xen: NOTE no xen-netfront.ko in the dom0 rootfs"
	# the disk test guest: the same with xen-blkfront.ko and a ledger
	BF=$(find "$D/rootfs/usr/lib/modules" -name 'xen-blkfront.ko*' | head -1)
	W=$(mktemp -d); mkdir -p "$W/bin" "$W/dev" "$W/proc" "$W/sys" "$OVL/root/diskguest"
	cp "$(command -v busybox)" "$W/bin/busybox"
	for a in $("$W/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$W/bin/$a"; done
	cp "$HERE/diskguest/init" "$W/init"
	case $BF in *.xz) xz -dc "$BF" > "$W/xen-blkfront.ko";; *) cp "$BF" "$W/xen-blkfront.ko";; esac
	(cd "$W" && find . | cpio --quiet -o -H newc | gzip -9) > "$OVL/root/diskguest/initrd.cpio.gz"
	rm -rf "$W"
	cp "$HERE/diskguest/diskguest.cfg" "$OVL/root/diskguest/"
	[ -n "$BF" ] || echo "check-xen: NOTE no xen-blkfront.ko in the dom0 rootfs"
fi

# 3. Xen in QEMU, the job, results
export XQ_OVERLAY="$OVL ${XQ_OVERLAY:-}"
export XQ_JOB="/root/tiber/dom0-job.sh '${TIBER_XEN_TYPES:-pv pvh}' ${TIBER_XEN_EPOCHS:-200} '${TIBER_XEN_RATES-10 20 40}'"
[ "${TIBER_XEN_JOB:-}" = ha ] && export XQ_JOB="TIBER_HA_PVH=${TIBER_HA_PVH:-0} TIBER_HA_ONLY='${TIBER_HA_ONLY:-}' /root/tiber/dom0-ha.sh"
"$RECIPE/ci-run.sh" pv > "$D/ci-run.log" 2>&1
rc=$?
LOG=$D/results/autojob.log
echo "=== check-xen results ($LOG)"
if [ -f "$LOG" ]; then
	grep -a -E '^(===|TEST|INFO|RESULT|NOTE|TABLE)' "$LOG"
else
	echo "check-xen: no job log; tail of ci-run and console:"
	tail -30 "$D/ci-run.log"; tail -30 "$D/console.txt" 2>/dev/null
fi
echo "=== stages"
cat "$D/stages.txt" 2>/dev/null
np=$(grep -a -c '^TEST .* PASS' "$LOG" 2>/dev/null); nf=$(grep -a -c '^TEST .* FAIL' "$LOG" 2>/dev/null)
np=${np:-0}; nf=${nf:-0}
[ "$rc" = 0 ] || [ "$nf" -gt 0 ] || { nf=$((nf + 1)); echo "TEST ci_run FAIL rc=$rc"; }
# the failures again, last, where a truncated CI log still shows them
grep -a '^TEST .* FAIL' "$LOG" 2>/dev/null | cut -c1-600 | sed 's/^/FAILED: /'
echo "check-xen: total $(elapsed) s ($( [ -f "$D/rootfs.stamp" ] && echo 'dom0 rootfs cache present' ))"
echo "$np passed, $nf failed"
[ "$nf" = 0 ]
