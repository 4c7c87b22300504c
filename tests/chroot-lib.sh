#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sourced by tests/fresh-debian.sh and tests/deb-install.sh: a Debian 12
# chroot in $DIR.  Sets MIRROR; chroot_mount makes $DIR a mount point
# (its own bind mount), gives the chroot the host's resolver and archive
# list (security and updates too) and mounts /proc, /sys, /dev and /run,
# which are unmounted on exit.
MIRROR=${TIBER_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null |
	grep -v security | grep -m1 debian || echo http://deb.debian.org/debian/)}
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
chroot_cleanup() {
	for m in dev/pts dev proc sys run; do umount -l "$DIR/$m" 2>/dev/null || true; done
	[ -z "${CHROOT_SELF_BIND:-}" ] || umount -l "$DIR" 2>/dev/null || true
}
trap chroot_cleanup EXIT
chroot_mount() {
	# "/" of the chroot a mount point, as on a machine: `ip netns add`
	# (the split-brain campaign) makes / rslave and fails otherwise
	if ! mountpoint -q "$DIR"; then
		mount --bind "$DIR" "$DIR"
		CHROOT_SELF_BIND=1
	fi
	cp /etc/resolv.conf "$DIR/etc/resolv.conf"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		cp /etc/apt/sources.list.d/debian.sources "$DIR/etc/apt/sources.list.d/"
		rm -f "$DIR/etc/apt/sources.list"
	fi
	for m in proc sys dev dev/pts run; do mkdir -p "$DIR/$m"; done
	mount -t proc proc "$DIR/proc"
	mount --rbind /sys "$DIR/sys"
	mount --rbind /dev "$DIR/dev"
	mount -t tmpfs tmpfs "$DIR/run"
}
