#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tiber-bench --plot with a partial selection (--only rate draws the rate
# plot; --only tls has data for none): it exits 0, every PNG it writes has
# content, and each plot it cannot
# draw (no data for it in this run) is left out with a message, never an
# empty file or a gnuplot error.
. "$(dirname "$0")/lib.sh"

for only in rate tls; do
	"$BIN/tiber-bench" --quick --only "$only" --secs 1 --plot "$T/p-$only" \
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
	echo "--only $only: $n plots; $(grep -c 'not drawn' "$T/bench-$only.log") left out with a message"
done
echo "test_bench_plot: ok"
