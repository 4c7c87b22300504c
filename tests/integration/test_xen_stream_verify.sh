#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Feed the migration streams tests/unit/test_xen_stream.c writes (golden
# HVM, PV with page types, whole xl save file) to Xen's own checker,
# verify-stream-v2 (Debian: xen-utils-4.17, /usr/lib/xen-4.17/bin/).
# Skips (77) when the checker is not installed; XEN_VERIFY_STREAM names it.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
V=${XEN_VERIFY_STREAM:-$(ls /usr/lib/xen-*/bin/verify-stream-v2 2>/dev/null | head -1)}
if [ -z "$V" ] || [ ! -f "$V" ]; then
	echo "SKIP: verify-stream-v2 not found (apt-get install xen-utils-4.17, or set XEN_VERIFY_STREAM)"
	exit 77
fi
PY=$(cd "$(dirname "$V")/../lib/python" 2>/dev/null && pwd)
TEST=$ROOT/build/rel/tests/test_xen_stream
[ -x "$TEST" ] || { echo "FAIL: $TEST not built"; exit 1; }
D=$(mktemp -d "${TMPDIR:-/tmp}/tiber-xs.XXXXXX")
trap 'rm -rf "$D"' EXIT
CK_FORK=no TIBER_XS_DUMP=$D "$TEST" >"$D/unit.log" 2>&1 ||
	{ cat "$D/unit.log"; echo "FAIL: unit test"; exit 1; }
rc=0
for f in golden.libxc:libxc pv.libxc:libxc hvm.xl:xl; do
	file=${f%:*} fmt=${f#*:}
	if PYTHONPATH=${PY:-} python3 "$V" -f "$fmt" -i "$D/$file" >"$D/$file.log" 2>&1 &&
	   ! grep -q "Error" "$D/$file.log"; then
		echo "ok: verify-stream-v2 -f $fmt $file"
	else
		cat "$D/$file.log"
		echo "FAIL: verify-stream-v2 -f $fmt $file"
		rc=1
	fi
done
exit $rc
