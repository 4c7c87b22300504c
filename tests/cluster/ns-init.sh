#!/bin/bash
# SPDX-License-Identifier: MIT
# ns-init.sh NAME DIR: the "init" of one machine of the namespace test
# cluster (tests/cluster/cluster-lib.sh).  Started by the library inside the
# machine's network namespace and fresh mount + UTS namespaces (ip netns
# exec NS unshare --mount --uts ...): sets the hostname, gives the machine a
# private /run and /dev/shm (tmpfs: a "reboot" empties them) and its own
# /etc/corosync, /var/lib/corosync, /var/lib/pacemaker, /var/log/pacemaker
# from DIR, then sleeps: the library enters these namespaces with nsenter -t
# <this pid>.  Its pid is written to DIR/init.pid once all is mounted.
set -eu
name=$1 dir=$2
hostname "$name"
mount --make-rprivate /
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
mkdir -p /run/lock /run/corosync-qdevice /run/corosync-qnetd /run/resource-agents
install -d -o hacluster -g haclient -m 0750 /run/crm
install -d -o hacluster -g haclient -m 0750 /run/pacemaker
mount -t tmpfs -o mode=1777,size=256m tmpfs /dev/shm
# Pacemaker's panic (pcmk__panic) writes 'b' to /proc/sysrq-trigger then
# calls reboot(2): neither must reach this machine.  reboot(2) is refused
# because the library runs everything without CAP_SYS_BOOT.
[ ! -e /proc/sysrq-trigger ] || mount --bind /dev/null /proc/sysrq-trigger
mount --bind "$dir/etc/corosync" /etc/corosync
mount --bind "$dir/var/lib/corosync" /var/lib/corosync
mount --bind "$dir/var/lib/pacemaker" /var/lib/pacemaker
mount --bind "$dir/log" /var/log/pacemaker
[ ! -d /var/lib/heartbeat ] || mount --bind "$dir/var/lib/heartbeat" /var/lib/heartbeat
echo $$ >"$dir/init.pid.new"
mv "$dir/init.pid.new" "$dir/init.pid"
exec sleep infinity
