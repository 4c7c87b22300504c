#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install every Debian package tiber's build, tests, demo and benchmarks
# need.  A fast no-op when all are present (dpkg-query, no apt call).
set -euo pipefail

PKGS=(
	build-essential pkg-config make gcc clang libclang-rt-14-dev
	libxen-dev liburing-dev liblz4-dev libxxhash-dev check
	libnl-route-3-dev gnuplot-nox iproute2 python3 procps util-linux
	nftables libgnutls28-dev gnutls-bin libsystemd-dev libmicrohttpd-dev
	python3-prometheus-client prometheus # promtool: test_metrics (on a host
	# with systemd this also enables prometheus.service: disable it if unwanted)
	clang-format cppcheck # static checks (make format-check, make analyze)
	debhelper lintian debootstrap # make deb, tests/deb-install.sh
	nbdkit nbdkit-plugin-dev nbd-client libnbd-bin # the Xen disk filter
	# (nbdkit-tiber-filter.so) and its tests
	resource-agents # ocf-shellfuncs and ocf-tester: the Pacemaker agent
	libxml2-utils # xmllint: ocf-tester checks the agent's meta-data with it
	systemd # systemd-analyze (make check-units; a minimal chroot lacks it)
)
# Extra packages for `make check-xen` only (QEMU, debootstrap ...).
if [ "${TIBER_DEPS_XEN:-0}" = 1 ]; then
	PKGS+=(qemu-system-x86 qemu-utils debootstrap busybox-static cpio
		e2fsprogs zstd python3 xz-utils)
fi

# Extra packages for `make check-cluster` only.
if [ "${TIBER_DEPS_CLUSTER:-0}" = 1 ]; then
	PKGS+=(corosync corosync-qdevice corosync-qnetd pacemaker pacemaker-cli-utils
		libnss3-tools)
fi

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in
	ii*) ;;
	*) missing+=("$p") ;;
	esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || {
		echo "tiber deps: need root or sudo to install: ${missing[*]}" >&2
		exit 1
	}
	SUDO=sudo
fi
echo "tiber deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
