#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prove the README's set-up on a machine where nothing was installed by
# hand: debootstrap a minimal Debian 12 into a directory, clone this
# repository into it, and run the README's two commands, `make demo`
# and `make check` (each installs what it needs with apt-get), inside
# the chroot.  Needs root and the Debian archive.  Only `make` and `git`
# are added by hand, as a fresh Debian installation without build tools
# needs them to run `make` at all.  TIBER_FRESH_CMD="bash .ci/run" runs
# the whole CI there instead.
#   tests/fresh-debian.sh [DIR]     (default /var/tmp/tiber-fresh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/var/tmp/tiber-fresh}
start=$(date +%s)
. "$ROOT/tests/chroot-lib.sh"
if [ ! -x "$DIR/bin/bash" ]; then
	rm -rf "$DIR"
	debootstrap --variant=minbase bookworm "$DIR" "$MIRROR"
fi
chroot_mount
rm -rf "$DIR/root/tiber"
git clone -q "$ROOT" "$DIR/root/tiber"
CMD=${TIBER_FRESH_CMD:-make demo && make check}
chroot "$DIR" /bin/bash -c "export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq make git >/dev/null &&
	cd /root/tiber && CI=true $CMD"
echo "fresh-debian: '$CMD' passed in a fresh chroot in $(( $(date +%s) - start )) s"
