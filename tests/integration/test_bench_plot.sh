#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tiber-bench --plot with a partial selection (--only rate draws the rate
# plot; --only tls has data for none): it exits 0, every PNG it writes has
# content, and each plot it cannot
# draw (no data for it in this run) is left out with a message, never an
# empty file or a gnuplot error.  Each run in the JSON says whether it
# reached its dirty target (measured p50 >= 80 % of it), and only such
# runs feed the headlines.
. "$(dirname "$0")/lib.sh"

for only in rate tls; do
	"$BIN/tiber-bench" --quick --only "$only" --secs 1 --plot "$T/p-$only" \
		--json "$T/b-$only.json" \
		--bin "$BIN" >"$T/bench-$only.log" 2>&1 ||
		fail "tiber-bench --only $only --plot exited $? ($(tail -3 "$T/bench-$only.log"))"
	n=0
	for png in "$T/p-$only"/*.png; do
		[ -e "$png" ] || continue
		[ -s "$png" ] || fail "$only: empty $png"
		n=$((n + 1))
	done
	[ "$only" != rate ] || [ -s "$T/p-rate/rate_jitter.png" ] || fail "rate: no rate_jitter.png"
	for p in pause_cdf pause_vs_dirty phases rate_jitter; do
		[ -e "$T/p-$only/$p.png" ] || grep -q "$p.png not drawn: " "$T/bench-$only.log" ||
			fail "$only: $p.png neither drawn nor said to be left out"
	done
	! grep -q "gnuplot failed" "$T/bench-$only.log" || fail "$only: gnuplot failed"
	python3 - "$T/b-$only.json" <<'EOF' || fail "$only: dirty_reached wrong in the JSON"
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["runs"]:
    want = r["ok"] and r["dirty_measured"]["p50"] >= 0.8 * r["dirty_target"]
    assert r["dirty_reached"] == want, (r["sweep"], r["dirty_target"], r["dirty_measured"], r["dirty_reached"])
    print("run %s %s target %d measured p50 %d reached %s" % (r["sweep"], r["rate_hz"], r["dirty_target"], r["dirty_measured"]["p50"], r["dirty_reached"]))
EOF
	echo "--only $only: $n plots; $(grep -c 'not drawn' "$T/bench-$only.log") left out with a message"
done
echo "test_bench_plot: ok"
