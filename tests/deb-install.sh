#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian package on a machine where nothing was installed by hand:
# debootstrap a minimal Debian 12, `apt-get install ./tiber_*.deb` (its
# dependencies come from the archive), then run tiberd --version,
# tiber-replicator --help, tiberctl --help, check the units and man pages
# are in place, and run the demo against the installed programs.  Needs
# root and the Debian archive.
#   tests/deb-install.sh DEB [DIR]     (default /var/tmp/tiber-fresh-deb)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEB=$(readlink -f "$1")
DIR=${2:-/var/tmp/tiber-fresh-deb}
start=$(date +%s)
. "$ROOT/tests/chroot-lib.sh"
# a fresh base each time (cached as a tarball): nothing of an earlier
# install survives
if [ ! -f "$DIR.tar" ]; then
	rm -rf "$DIR"
	debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" >/dev/null
	tar -C "$DIR" -cf "$DIR.tar" .
fi
rm -rf "$DIR" && mkdir -p "$DIR" && tar -C "$DIR" -xf "$DIR.tar"
chroot_mount
cp "$DEB" "$DIR/root/"
# the demo script and its key tool from the tree, the programs installed
mkdir -p "$DIR/root/tiber/scripts"
cp "$ROOT/scripts/demo.sh" "$ROOT/scripts/tls-keys.sh" "$ROOT/scripts/fence-pids.sh" \
	"$DIR/root/tiber/scripts/"
chroot "$DIR" /bin/bash -ec 'set -o pipefail; export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends ./root/'"$(basename "$DEB")"' \
		gnutls-bin python3 >/dev/null
	tiberd --version
	# sed reads it all: head would leave a longer --help to SIGPIPE
	tiber-replicator --help | sed -n 1p
	tiberctl --help | sed -n 1p
	test -f /lib/systemd/system/tiberd@.service
	test -f /lib/systemd/system/tiber-replicator.service
	test -f /usr/share/man/man8/tiberd.8.gz
	test -f /etc/tiber/replicator.cfg
	test -f /usr/lib/tiber/nbdkit-tiber-filter.so # the Xen disk filter
	test -x /usr/lib/ocf/resource.d/tiber/tiber # the Pacemaker agent
	mkdir -p /root/bin
	ln -sf /usr/sbin/tiberd /usr/sbin/tiber-replicator /usr/bin/tiberctl \
		/usr/bin/tiber-simguest /root/bin/
	TIBER_BIN_DIR=/root/bin bash /root/tiber/scripts/demo.sh | tail -3'
echo "deb-install: installed and ran the demo in a fresh chroot in $(( $(date +%s) - start )) s"
