#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A first sync that takes seconds shows its progress: `tiberctl status`
# (JSON: sync_done_pages growing towards sync_total_pages, an ETA; the
# table: "first sync N% ... ETA") and a log line every 5 s, until the
# guest is protected.  256 MiB of random content over a link paced at
# 0.3 Gbit/s: about 7 s.
. "$(dirname "$0")/lib.sh"

start_replicator r
start_guest g --ram 256M --content random --pattern sequential --threads 2
sleep 1.5
kill -USR2 "$GUEST_PID" # quiesce: every page written, no more writes
sleep 0.5
start_tiberd d --rate 20 --link-gbit 0.3
WAIT_S=10 wait_for state_is syncing || fail "no first sync ($(status_field state))"
sleep 1
d1=$(status_field sync_done_pages); t1=$(status_field sync_total_pages); eta=$(status_field sync_eta_s)
"$BIN/tiberctl" --socket "$CTL" status >"$T/table"
sleep 1
d2=$(status_field sync_done_pages)
state=$(status_field state)
[ "$state" = syncing ] || fail "the sync finished too early to watch ($state): make it larger"
[ "${t1:-0}" -ge 65536 ] || fail "sync_total_pages=$t1, want >= 65536"
[ "${d1:-0}" -gt 0 ] && [ "${d2:-0}" -gt "$d1" ] && [ "$d2" -le "$t1" ] || fail "sync_done_pages $d1 -> $d2 of $t1"
awk -v e="$eta" 'BEGIN{exit !(e > 0)}' || fail "no ETA while syncing ($eta)"
grep -q "first sync [0-9]*% of [0-9]* MB, ETA [0-9]* s" "$T/table" || fail "table: $(cat "$T/table")"
WAIT_S=30 wait_for state_is protected || fail "never protected"
grep -q "first sync: [0-9]*/[0-9]* pages ([0-9]*%, [0-9]* MB), [0-9.]* MB/s, ETA" "$T/d.log" || fail "no progress line in the log"
echo "test_sync_progress: ok: $d1 -> $d2 of $t1 pages in 1 s, ETA ${eta}s; $(grep -c 'first sync:' "$T/d.log") log lines; $(sed -n 2p "$T/table" | tr -s ' ')"
