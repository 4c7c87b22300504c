#!/bin/bash
# SPDX-License-Identifier: MIT
# Build tiber-testguest and run smoke.sh on Xen 4.17 in QEMU TCG with the
# shared recipe (/work/shared/xen-qemu, or XQ_RECIPE).  About 5-7 minutes.
# usage: tests/xen/guest/run-xq.sh [ncycles] [hz]     (needs root)
#        TG_CFG=testguest-pvh.cfg tests/xen/guest/run-xq.sh ...   (PVH)
# Artefacts: $XQ_DIR (default /var/tmp/xq-testguest), never the repo.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE=${XQ_RECIPE:-/work/shared/xen-qemu}
export XQ_DIR=${XQ_DIR:-/var/tmp/xq-testguest}
OUT=${OUT:-$(cd "$HERE/../../.." && pwd)/build/xen-guest}
make -C "$HERE" OUT="$OUT"
OVL=$XQ_DIR/overlay-testguest
rm -rf "$OVL"; mkdir -p "$OVL/root/testguest" "$OVL/usr/local/bin"
cp "$OUT/tiber-testguest" "$OUT/tiber-testguest-nocancel" \
  "$OUT/tiber-testguest-pvh" "$HERE/testguest.cfg" "$HERE/testguest-pvh.cfg" \
  "$HERE/smoke.sh" "$OVL/root/testguest/"
cp "$OUT/tg-suspcheck" "$OVL/usr/local/bin/"
export XQ_OVERLAY="$OVL ${XQ_OVERLAY:-}"
export XQ_JOB="TG_CFG=${TG_CFG:-testguest.cfg} /root/testguest/smoke.sh ${1:-100} ${2:-20}"
exec "$RECIPE/ci-run.sh" pv
