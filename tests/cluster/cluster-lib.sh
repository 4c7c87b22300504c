# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2015,SC2086,SC2016
# cluster-lib.sh: a real two-node corosync 3 (knet) + Pacemaker 2.1 cluster
# with a corosync-qnetd witness (quorum device "net", algorithm ffsplit, TLS
# with NSS certificates) on this one machine.  Source it (bash), as root.
#
# Three "machines", each a network namespace plus its own mount and UTS
# namespaces (hostname), held by a sleeping init (ns-init.sh):
#   node1 192.168.213.1   corosync, corosync-qdevice, pacemakerd
#   node2 192.168.213.2   corosync, corosync-qdevice, pacemakerd
#   qnetd 192.168.213.3   corosync-qnetd
# Each has an eth0 veth whose other end is a port (named after the machine)
# of bridge br0 in a fourth "switch" namespace: node_isolate / qnetd_isolate
# set that port down.  Each machine has a private tmpfs /run and /dev/shm
# (libqb IPC: abstract sockets, per network namespace, and /dev/shm files)
# and its own /etc/corosync, /var/lib/corosync, /var/lib/pacemaker,
# /var/lib/heartbeat, /var/log/pacemaker: directories of $CL_DIR/MACHINE.
# All share the machine's pid namespace: the fence agent fence_tibertest,
# run by the fencer of the surviving node, kills every process of the
# victim's network namespace ("power off").
#
# Nothing runs under systemd: the daemons are started in the foreground with
# nsenter, without CAP_SYS_BOOT (Pacemaker's panic must not reboot this
# machine; /proc/sysrq-trigger is /dev/null inside the machines).
#
# Functions (all return non-zero on failure, messages on stderr):
#   cluster_setup [DIR]     namespaces, bridge, configs, authkey, certificates
#                           (DIR: state directory, default a new /tmp/tiber-cluster.*)
#   cluster_attach DIR      use a cluster set up by another shell
#   cluster_start           qnetd, then both nodes; waits until both are
#                           online in Pacemaker and quorate
#   cluster_teardown        kills everything, removes namespaces, the fence
#                           agent link and DIR (CL_KEEP=1 keeps DIR)
#   node_exec NODE CMD...   run CMD inside NODE (node1, node2 or qnetd)
#   node_start NODE         boot NODE if needed, start its cluster stack
#   node_stop NODE          orderly stop of its cluster stack
#   node_kill NODE          kill -9 every process of NODE (a crash)
#   node_isolate NODE / node_heal NODE     cut / restore NODE's link
#   qnetd_isolate / qnetd_heal             the same for the witness
#   qnetd_start / qnetd_stop
#   node_running NODE       its cluster stack runs (corosync alive)
#   node_quorate NODE       corosync on NODE says the partition is quorate
#   node_online_in NODE N.. Pacemaker on NODE sees nodes N.. online, a DC,
#                           and quorum
#   cluster_wait SECS DESC CMD...   poll CMD every 0.5 s until it succeeds
#   crm_xml NODE            crm_mon XML status, as seen by NODE
#   promoted_on NODE RSC    nodes where NODE sees RSC promoted
#   cluster_logs            paths of all logs
# Settings (environment, before cluster_setup):
#   CL_TOKEN   corosync token timeout, ms (default 3000)
#   CL_QDEVICE_TIMEOUT, CL_QDEVICE_SYNC_TIMEOUT   quorum.device timeout and
#              sync_timeout, ms (default 5000, 8000; corosync's: 10000, 30000):
#              a node cut off loses quorum within about sync_timeout
#   CL_EXEC_TIMEOUT  if set, node_exec gives up after that many seconds
#              (a node cut off may block its Pacemaker tools)
#   CL_DC_DEADTIME  dc-deadtime in the initial CIB (default 5s)
#   CL_TLS     qdevice-net tls: on (default, NSS certificates) or off
#   CL_KEEP=1  cluster_teardown keeps DIR (the logs)
#   CL_VERBOSE=1  progress messages on stderr

CL_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CL_NODES="node1 node2"
CL_MACHINES="node1 node2 qnetd"
CL_NET=192.168.213
CL_CLUSTER=tibertest
CL_FENCE_AGENT=fence_tibertest
CL_FENCE_LINK=/usr/sbin/$CL_FENCE_AGENT
CL_TOKEN=${CL_TOKEN:-3000}
CL_TLS=${CL_TLS:-on}
CL_QDEVICE_TIMEOUT=${CL_QDEVICE_TIMEOUT:-5000}
CL_QDEVICE_SYNC_TIMEOUT=${CL_QDEVICE_SYNC_TIMEOUT:-8000}
CL_DC_DEADTIME=${CL_DC_DEADTIME:-5s}
CL_DIR=${CL_DIR:-}
CL_PREFIX=${CL_PREFIX:-}
CL_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

cl_log() {
	[ -z "$CL_DIR" ] || [ ! -d "$CL_DIR" ] ||
		echo "$(date '+%T.%N' | cut -c1-12) $*" >>"$CL_DIR/cluster.log"
	[ "${CL_VERBOSE:-0}" = 0 ] || echo "cluster: $*" >&2
}
cl_err() { echo "cluster: $*" >&2; }

_cl_ip() {
	case $1 in
	node1) echo $CL_NET.1 ;; node2) echo $CL_NET.2 ;; qnetd) echo $CL_NET.3 ;;
	*) cl_err "unknown machine $1"; return 1 ;;
	esac
}
_cl_ns() { echo "$CL_PREFIX-$1"; } # network namespace of machine $1 (or sw)
_cl_need() {
	[ -n "$CL_DIR" ] && [ -f "$CL_DIR/cluster.env" ] || {
		cl_err "no cluster set up (cluster_setup / cluster_attach)"
		return 1
	}
}

# cluster_wait SECS DESC CMD...: poll CMD until it succeeds
cluster_wait() {
	local secs=$1 desc=$2 end
	shift 2
	end=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then
			cl_err "timeout (${secs}s) waiting for: $desc"
			return 1
		fi
		sleep 0.5
	done
}

cluster_attach() {
	CL_DIR=$(cd "$1" && pwd) || return 1
	# shellcheck disable=SC1091
	. "$CL_DIR/cluster.env"
}

_cl_corosync_conf() { # MACHINE: corosync.conf of a node
	local n
	cat <<EOF
# generated by tests/cluster/cluster-lib.sh
totem {
	version: 2
	cluster_name: $CL_CLUSTER
	transport: knet
	token: $CL_TOKEN
	crypto_cipher: aes256
	crypto_hash: sha256
}

nodelist {
EOF
	for n in $CL_NODES; do
		cat <<EOF
	node {
		ring0_addr: $(_cl_ip "$n")
		name: $n
		nodeid: ${n#node}
	}
EOF
	done
	cat <<EOF
}

quorum {
	provider: corosync_votequorum
	# no two_node: the witness breaks ties
	device {
		model: net
		votes: 1
		timeout: $CL_QDEVICE_TIMEOUT
		sync_timeout: $CL_QDEVICE_SYNC_TIMEOUT
		net {
			host: $(_cl_ip qnetd)
			algorithm: ffsplit
			tls: $CL_TLS
		}
	}
}

resources {
	watchdog_device: off
}

logging {
	to_logfile: yes
	logfile: $CL_DIR/$1/log/corosync.log
	to_stderr: no
	to_syslog: no
	timestamp: hires
}
EOF
}

# _cl_with_etc MACHINE CMD...: CMD with the machine's /etc/corosync, in a
# throw-away mount namespace (certificates before the machines boot)
_cl_with_etc() {
	local m=$1
	shift
	unshare --mount --propagation private -- sh -c \
		'mount --bind "$0" /etc/corosync && exec "$@"' \
		"$CL_DIR/$m/etc/corosync" "$@"
}

_cl_certs() {
	local d=$CL_DIR n q=$CL_DIR/qnetd/etc/corosync/qnetd/nssdb
	_cl_with_etc qnetd corosync-qnetd-certutil -i >>"$d/setup.log" 2>&1 || return 1
	for n in $CL_NODES; do
		_cl_with_etc "$n" corosync-qdevice-net-certutil -i -c "$q/qnetd-cacert.crt" >>"$d/setup.log" 2>&1 || return 1
	done
	local nd=$d/node1/etc/corosync/qdevice/net/nssdb
	_cl_with_etc node1 corosync-qdevice-net-certutil -r -n "$CL_CLUSTER" >>"$d/setup.log" 2>&1 &&
		_cl_with_etc qnetd corosync-qnetd-certutil -s -c "$nd/qdevice-net-node.crq" -n "$CL_CLUSTER" >>"$d/setup.log" 2>&1 &&
		cp "$q/cluster-$CL_CLUSTER.crt" "$nd/" &&
		_cl_with_etc node1 corosync-qdevice-net-certutil -M -c "$nd/cluster-$CL_CLUSTER.crt" >>"$d/setup.log" 2>&1 || return 1
	for n in $CL_NODES; do
		[ "$n" = node1 ] && continue
		cp "$nd/qdevice-net-node.p12" "$d/$n/etc/corosync/qdevice/net/nssdb/" &&
			_cl_with_etc "$n" corosync-qdevice-net-certutil -m -c "$d/$n/etc/corosync/qdevice/net/nssdb/qdevice-net-node.p12" \
				>>"$d/setup.log" 2>&1 || return 1
	done
}

# cluster_setup [DIR]
cluster_setup() {
	local m sw
	[ "$(id -u)" = 0 ] || { cl_err "must run as root"; return 1; }
	for m in unshare nsenter setpriv ip corosync pacemakerd corosync-qnetd corosync-qdevice certutil; do
		command -v $m >/dev/null || { cl_err "$m missing"; return 1; }
	done
	if [ -e "$CL_FENCE_LINK" ] && [ "$(readlink "$CL_FENCE_LINK")" != "$CL_LIBDIR/$CL_FENCE_AGENT" ]; then
		cl_err "$CL_FENCE_LINK exists and is not ours"
		return 1
	fi
	if [ -n "${1:-}" ]; then
		mkdir -p "$1" && CL_DIR=$(cd "$1" && pwd) || return 1
		[ -z "$(ls -A "$CL_DIR")" ] || { cl_err "$CL_DIR is not empty"; return 1; }
	else
		CL_DIR=$(mktemp -d /tmp/tiber-cluster.XXXXXX) || return 1
	fi
	chmod 0755 "$CL_DIR" # the daemons running as hacluster write below it
	# network namespaces tcl-<suffix of DIR>-MACHINE
	CL_PREFIX=$(basename "$CL_DIR")
	CL_PREFIX=tcl-$(printf %s "${CL_PREFIX##*.}" | tr -c 'A-Za-z0-9_-' - | tail -c 24)
	for m in $CL_MACHINES sw; do
		if [ -e "/run/netns/$CL_PREFIX-$m" ]; then
			cl_err "network namespace $CL_PREFIX-$m exists already"
			rmdir "$CL_DIR"
			CL_DIR=
			return 1
		fi
	done
	printf 'CL_DIR=%q\nCL_PREFIX=%q\nCL_TLS=%q\nCL_TOKEN=%q\nCL_QDEVICE_TIMEOUT=%q\nCL_QDEVICE_SYNC_TIMEOUT=%q\n' \
		"$CL_DIR" "$CL_PREFIX" "$CL_TLS" "$CL_TOKEN" "$CL_QDEVICE_TIMEOUT" \
		"$CL_QDEVICE_SYNC_TIMEOUT" >"$CL_DIR/cluster.env"
	cl_log "setting up in $CL_DIR (network namespaces $CL_PREFIX-*)"

	# the network: a switch namespace with a bridge, a port per machine
	sw=$(_cl_ns sw)
	ip netns add "$sw" || return 1
	echo "$sw" >>"$CL_DIR/netns.list" # what cluster_teardown removes
	ip -n "$sw" link set lo up &&
		ip -n "$sw" link add br0 type bridge &&
		ip -n "$sw" link set br0 up || return 1
	for m in $CL_MACHINES; do
		ip netns add "$(_cl_ns "$m")" || return 1
		_cl_ns "$m" >>"$CL_DIR/netns.list"
		ip -n "$sw" link add "$m" type veth peer name eth0 netns "$(_cl_ns "$m")" &&
			ip -n "$sw" link set "$m" master br0 up &&
			ip -n "$(_cl_ns "$m")" link set lo up &&
			ip -n "$(_cl_ns "$m")" addr add "$(_cl_ip "$m")/24" dev eth0 &&
			ip -n "$(_cl_ns "$m")" link set eth0 up || return 1
		stat -L -c %i "/run/netns/$(_cl_ns "$m")" >"$CL_DIR/$m.netns.ino.tmp" || return 1

		# the machine's private directories
		local d=$CL_DIR/$m
		mkdir -p "$d/etc" "$d/var/lib/corosync" "$d/log" || return 1
		mv "$CL_DIR/$m.netns.ino.tmp" "$d/netns.ino"
		cp -a /etc/corosync "$d/etc/" && rm -rf "$d/etc/corosync/qnetd" "$d/etc/corosync/qdevice" || return 1
		rm -f "$d/etc/corosync/corosync.conf" "$d/etc/corosync/authkey"
		install -d -m 0755 "$d/var/lib/pacemaker" &&
			install -d -o hacluster -g haclient -m 0750 "$d/var/lib/pacemaker/"{cib,pengine,blackbox,cores} &&
			install -d -o hacluster -g haclient -m 0770 "$d/log" || return 1
		[ ! -d /var/lib/heartbeat ] || cp -a /var/lib/heartbeat "$d/var/lib/" || return 1
	done
	for m in $CL_NODES; do
		echo on >"$CL_DIR/$m/power"
		# a first CIB: with both nodes starting together there is no
		# need to wait the default 20 s for a DC before the election
		local cib=$CL_DIR/$m/var/lib/pacemaker/cib/cib.xml
		cibadmin --empty >"$cib" &&
			CIB_file=$cib crm_attribute --type crm_config --name dc-deadtime \
				--update "$CL_DC_DEADTIME" >>"$CL_DIR/setup.log" 2>&1 &&
			chown hacluster:haclient "$cib" && chmod 0600 "$cib" || return 1
	done

	cl_log "network and directories ready"
	# corosync: authkey and configuration
	corosync-keygen -k "$CL_DIR/authkey" >>"$CL_DIR/setup.log" 2>&1 || return 1
	for m in $CL_NODES; do
		install -m 0400 "$CL_DIR/authkey" "$CL_DIR/$m/etc/corosync/authkey" &&
			_cl_corosync_conf "$m" >"$CL_DIR/$m/etc/corosync/corosync.conf" || return 1
	done

	# qnetd / qdevice certificates (NSS databases)
	if [ "$CL_TLS" != off ]; then
		cl_log "creating certificates"
		_cl_certs || { cl_err "certificate setup failed: $CL_DIR/setup.log"; return 1; }
	fi

	# Pacemaker's fencer runs /usr/sbin/fence_* agents only.  The link is
	# removed by the last cluster_teardown (one left by a killed test is
	# taken over).
	if [ ! -e "$CL_FENCE_LINK" ]; then
		ln -s "$CL_LIBDIR/$CL_FENCE_AGENT" "$CL_FENCE_LINK" || return 1
	fi
	echo "$CL_FENCE_LINK" >"$CL_DIR/fence-link"
	cl_log "setup done"
	return 0
}

# _cl_init_pid MACHINE: pid of its running init (fails when not booted)
_cl_init_pid() {
	local p
	p=$(cat "$CL_DIR/$1/init.pid" 2>/dev/null) || return 1
	[ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "net:[$(cat "$CL_DIR/$1/netns.ino")]" ] || return 1
	echo "$p"
}

# _cl_pids MACHINE: every process of the machine
_cl_pids() {
	local ino
	ino=$(cat "$CL_DIR/$1/netns.ino" 2>/dev/null) || return 0
	[[ $ino =~ ^[0-9]+$ ]] && [ "$ino" != "$(stat -L -c %i /proc/self/ns/net)" ] || return 0
	# find reads the links without a process per pid (fast)
	find /proc/[0-9]*/ns/net -maxdepth 0 -lname "net:\\[$ino\\]" 2>/dev/null | cut -d/ -f3
	return 0
}

# _cl_killall MACHINE: kill -9 every process of the machine
_cl_killall() {
	local pids
	for _ in $(seq 100); do
		pids=$(_cl_pids "$1")
		[ -z "$pids" ] && return 0
		# shellcheck disable=SC2086
		kill -9 $pids 2>/dev/null
		sleep 0.1
	done
	cl_err "processes of $1 survive: $(_cl_pids "$1" | tr '\n' ' ')"
	return 1
}

# _cl_boot MACHINE: start its init (fresh mount/UTS namespaces) unless running
_cl_boot() {
	local m=$1 d=$CL_DIR/$1
	_cl_init_pid "$m" >/dev/null && return 0
	_cl_killall "$m" || return 1
	cl_log "$m: boot"
	rm -f "$d/init.pid"
	setsid ip netns exec "$(_cl_ns "$m")" \
		unshare --mount --uts --propagation private -- \
		setpriv --bounding-set -sys_boot -- \
		"$CL_LIBDIR/ns-init.sh" "$m" "$d" </dev/null >>"$d/log/init.log" 2>&1 &
	disown
	for _ in $(seq 100); do
		_cl_init_pid "$m" >/dev/null && return 0
		sleep 0.1
	done
	cl_err "$m did not boot: $d/log/init.log"
	return 1
}

# _cl_enter MACHINE: CL_ENTER=(the command prefix that runs a command
# inside the machine: its namespaces, no CAP_SYS_BOOT, a clean environment)
_cl_enter() {
	local p
	p=$(_cl_init_pid "$1") || { cl_err "$1 is not running"; return 1; }
	CL_ENTER=(nsenter -t "$p" -n -m -u -- setpriv --bounding-set -sys_boot --
		env -i PATH="$CL_PATH" HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}"
		TIBER_CLUSTER_DIR="$CL_DIR")
	[ -z "${CL_EXEC_TIMEOUT:-}" ] || CL_ENTER=(timeout -k 1 "$CL_EXEC_TIMEOUT" "${CL_ENTER[@]}")
}

# node_exec MACHINE CMD...: CMD inside the machine (NAME=VALUE words before
# CMD are added to its environment)
node_exec() {
	local CL_ENTER
	_cl_enter "$1" || return 1
	shift
	"${CL_ENTER[@]}" "$@"
}

# _cl_pgrep MACHINE PGREP-ARGS...: pgrep among the machine's processes only
# (all machines share the pid namespace: a plain pgrep/pkill sees them all)
_cl_pgrep() {
	local p
	p=$(_cl_init_pid "$1") || return 1
	shift
	pgrep --ns "$p" --nslist net "$@"
}
_cl_pkill() {
	local p
	p=$(_cl_init_pid "$1") || return 1
	shift
	pkill --ns "$p" --nslist net "$@"
}

# _cl_daemon MACHINE NAME CMD...: start a daemon in the background (in its own
# session), its output to MACHINE/log/NAME.out
_cl_daemon() {
	local m=$1 name=$2 CL_ENTER CL_EXEC_TIMEOUT=
	shift 2
	_cl_enter "$m" || return 1
	setsid "${CL_ENTER[@]}" "$@" </dev/null >>"$CL_DIR/$m/log/$name.out" 2>&1 &
	disown
}

qnetd_start() {
	_cl_need || return 1
	_cl_boot qnetd || return 1
	node_exec qnetd corosync-qnetd-tool -s >/dev/null 2>&1 && return 0
	local tls=on
	[ "$CL_TLS" = off ] && tls=off
	cl_log "qnetd: starting corosync-qnetd"
	_cl_daemon qnetd qnetd corosync-qnetd -f -s "$tls"
	cluster_wait 20 "qnetd on $(_cl_ip qnetd)" node_exec qnetd corosync-qnetd-tool -s
}
qnetd_stop() { _cl_need && _cl_killall qnetd; }

node_running() { node_exec "$1" corosync-cfgtool -s >/dev/null 2>&1; }
node_quorate() { node_exec "$1" corosync-quorumtool -s 2>/dev/null | grep -q '^Quorate:.*Yes'; }

node_start() {
	local n=$1
	_cl_need || return 1
	case " $CL_NODES " in *" $n "*) ;; *) cl_err "unknown node $n"; return 1 ;; esac
	_cl_boot "$n" || return 1
	echo on >"$CL_DIR/$n/power"
	if ! node_running "$n"; then
		cl_log "$n: starting corosync"
		_cl_daemon "$n" corosync corosync -f
		cluster_wait 30 "corosync on $n" node_running "$n" || return 1
	fi
	if ! node_exec "$n" corosync-qdevice-tool -s >/dev/null 2>&1; then
		cl_log "$n: starting corosync-qdevice"
		_cl_daemon "$n" qdevice corosync-qdevice -f
	fi
	if ! _cl_pgrep "$n" -x pacemakerd >/dev/null; then
		cl_log "$n: starting pacemakerd"
		_cl_daemon "$n" pacemakerd PCMK_logfacility=none \
			PCMK_logfile=/var/log/pacemaker/pacemaker.log pacemakerd
	fi
}

_cl_no_proc() { ! _cl_pgrep "$@" >/dev/null; }

# node_stop NODE: orderly shutdown of Pacemaker, then qdevice and corosync
node_stop() {
	local n=$1
	_cl_need || return 1
	_cl_init_pid "$n" >/dev/null || return 0
	_cl_pkill "$n" -TERM -x pacemakerd
	cluster_wait 120 "pacemaker stopped on $n" _cl_no_proc "$n" -f '^(pacemakerd|/usr/lib/pacemaker/)' || return 1
	_cl_pkill "$n" -TERM -f '^corosync-qdevice'
	node_exec "$n" corosync-cfgtool -H >/dev/null 2>&1 || _cl_pkill "$n" -TERM -x corosync
	cluster_wait 30 "corosync stopped on $n" _cl_no_proc "$n" -f '^corosync( |-qdevice|$)'
}

# node_kill NODE: a crash: every process of the node dies at once
node_kill() { _cl_need && cl_log "$1: kill -9" && _cl_killall "$1"; }

node_isolate() { _cl_need && cl_log "$1: link down" && ip -n "$(_cl_ns sw)" link set "$1" down; }
node_heal() { _cl_need && cl_log "$1: link up" && ip -n "$(_cl_ns sw)" link set "$1" up; }
qnetd_isolate() { node_isolate qnetd; }
qnetd_heal() { node_heal qnetd; }

crm_xml() { node_exec "$1" crm_mon -1 --output-as=xml 2>/dev/null; }

# node_online_in NODE N...: Pacemaker on NODE has a DC, quorum, N... online
node_online_in() {
	local v=$1 x n
	shift
	x=$(crm_xml "$v") || return 1
	grep -q '<current_dc present="true".*with_quorum="true"' <<<"$x" || return 1
	for n in "$@"; do
		grep -q "<node name=\"$n\" [^>]*online=\"true\"" <<<"$x" || return 1
	done
}

# promoted_on NODE RSC: nodes on which NODE sees (an instance of) RSC promoted
promoted_on() {
	crm_xml "$1" | awk -v rsc="$2" '
		/<resource / && $0 ~ "id=\"" rsc "(:[0-9]+)?\"" && /role="(Promoted|Master)"/ { want = 1 }
		want && /<node name=/ { match($0, /name="[^"]*"/); print substr($0, RSTART + 6, RLENGTH - 7); want = 0 }
		/<\/resource>/ { want = 0 }' | sort -u
}

cluster_start() {
	local n
	_cl_need || return 1
	qnetd_start || return 1
	for n in $CL_NODES; do
		node_start "$n" || return 1
	done
	for n in $CL_NODES; do
		cluster_wait 120 "both nodes online and quorate as seen by $n" \
			node_online_in "$n" $CL_NODES || return 1
	done
	cl_log "cluster up"
}

cluster_logs() {
	_cl_need || return 1
	ls -d "$CL_DIR"/*/log/* "$CL_DIR"/*.log 2>/dev/null
}

cluster_teardown() {
	local m rc=0 link
	[ -n "$CL_DIR" ] && [ -f "$CL_DIR/cluster.env" ] || return 0
	for m in $CL_MACHINES; do
		_cl_killall "$m" || rc=1
	done
	if [ -f "$CL_DIR/netns.list" ]; then
		while read -r m; do
			[ ! -e "/run/netns/$m" ] || ip netns del "$m" || rc=1
		done <"$CL_DIR/netns.list"
	fi
	if [ -f "$CL_DIR/fence-link" ]; then
		link=$(cat "$CL_DIR/fence-link")
		# unless another cluster of this library runs
		if [ "$(readlink "$link")" = "$CL_LIBDIR/$CL_FENCE_AGENT" ] &&
			! compgen -G '/run/netns/tcl-*-sw' >/dev/null; then
			rm -f "$link"
		fi
	fi
	if [ "${CL_KEEP:-0}" = 1 ]; then
		echo "cluster: state and logs kept in $CL_DIR" >&2
	else
		rm -rf "$CL_DIR"
	fi
	CL_DIR=
	return $rc
}
