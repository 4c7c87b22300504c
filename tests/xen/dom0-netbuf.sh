#!/bin/sh
# SPDX-License-Identifier: MIT
# In dom0 (TIBER_XEN_JOB=netbuf make check-xen): output commit
# (lib/backend/xen_netbuf.c) on a kernel that has sch_plug, ifb,
# act_mirred, cls_matchall and sch_ingress: tests/unit/test_xen_netbuf
# (veth "vif" on a bridge; IPv4, IPv6, ARP frames held until their epoch
# is released, in order; teardown leaves nothing).  Prints TEST lines.
echo "=== netbuf (dom0 kernel $(uname -r))"
for m in sch_plug ifb act_mirred cls_matchall cls_u32 sch_ingress bridge veth; do
	modprobe "$m" 2>/dev/null || echo "NOTE modprobe $m failed"
done
T=/usr/local/bin/test_xen_netbuf
if [ ! -x "$T" ]; then
	echo "TEST netbuf_hold_release FAIL (no $T)"; exit 1
fi
CK_FORK=yes "$T" > /tmp/netbuf.log 2>&1
rc=$?
sed 's/^/INFO /' /tmp/netbuf.log
if [ $rc = 0 ] && ! grep -q SKIP /tmp/netbuf.log; then
	echo "TEST netbuf_hold_release PASS"
else
	echo "TEST netbuf_hold_release FAIL rc=$rc"
fi
