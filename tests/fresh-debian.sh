#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prove the README's set-up on a machine where nothing was installed by
# hand: debootstrap a minimal Debian 12 into a directory, clone this
# repository into it, and run .ci/run (= make check, which installs what
# it needs with apt-get) inside the chroot.  Needs root and the Debian
# archive.  Only `make` and `git` are added by hand, as a fresh Debian
# installation without build tools needs them to run `make` at all.
#   tests/fresh-debian.sh [DIR]     (default /var/tmp/tiber-fresh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/var/tmp/tiber-fresh}
MIRROR=${TIBER_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null |
	grep -v security | grep -m1 debian || echo http://deb.debian.org/debian/)}
start=$(date +%s)
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
cleanup() {
	for m in dev/pts dev proc sys run; do umount -l "$DIR/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
if [ ! -x "$DIR/bin/bash" ]; then
	rm -rf "$DIR"
	debootstrap --variant=minbase bookworm "$DIR" "$MIRROR"
fi
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
cp /etc/apt/sources.list.d/debian.sources "$DIR/etc/apt/sources.list.d/" 2>/dev/null || true
for m in proc sys dev dev/pts run; do mkdir -p "$DIR/$m"; done
mount -t proc proc "$DIR/proc"
mount --rbind /sys "$DIR/sys"
mount --rbind /dev "$DIR/dev"
mount -t tmpfs tmpfs "$DIR/run"
rm -rf "$DIR/root/tiber"
git clone -q "$ROOT" "$DIR/root/tiber"
chroot "$DIR" /bin/bash -c 'export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq make git >/dev/null &&
	cd /root/tiber && CI=true bash .ci/run'
echo "fresh-debian: .ci/run passed in a fresh chroot in $(( $(date +%s) - start )) s"
