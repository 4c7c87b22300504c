#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Both daemons serve Prometheus metrics (metrics_listen): a scrape parses
# as the text exposition format (python3-prometheus-client's parser and
# `promtool check metrics`),
# follows the naming conventions (counters end in _total, times are
# _seconds, sizes _bytes, histogram buckets cumulative up to +Inf = count)
# and carries live figures: tiberd's acked epochs and pause histogram,
# the replicator's committed epoch and its age for the guest.  And
# `tiberctl status` of both: a table, or JSON with --json.
. "$(dirname "$0")/lib.sh"

start_replicator r --metrics-listen 127.0.0.1:0 --control "$T/r.ctl"
start_guest g --ram 64M --dirty-rate 20000
start_tiberd d --rate 50 --metrics-listen 127.0.0.1:0
WAIT_S=20 wait_for acked_at_least 20 || fail "not protected"
url() { sed -n 's|.*metrics on \(http://[^ ]*\).*|\1|p' "$T/$1.log" | head -1; }
UD=$(url d); UR=$(url r)
[ -n "$UD" ] && [ -n "$UR" ] || fail "no 'metrics on' line in the logs"
/usr/bin/python3 - "$UD" "$UR" <<'PY' || fail "metrics check failed" # Debian's python3-prometheus-client
import sys, urllib.request, urllib.error
from prometheus_client.parser import text_string_to_metric_families

def scrape(url):
    r = urllib.request.urlopen(url, timeout=5)
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
    return r.read().decode()

def check(text, who):
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "counter":
                assert name.endswith("_total"), "%s: counter %s without _total" % (who, name)
            assert not name.endswith("_ms") and not name.endswith("_us"), "%s: %s: use seconds" % (who, name)
    return fams

def sample(fams, fam, name, **labels):
    for s in fams[fam].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError("no sample %s %s" % (name, labels))

d = check(scrape(sys.argv[1]), "tiberd")
assert sample(d, "tiber_epochs_acked", "tiber_epochs_acked_total", guest="simguest") >= 20
assert sample(d, "tiber_protected", "tiber_protected", guest="simguest") == 1
assert sample(d, "tiber_engine_state", "tiber_engine_state", state="protected") == 1
count = sample(d, "tiber_pause_seconds", "tiber_pause_seconds_count")
assert count >= 20, count
buckets = [s for s in d["tiber_pause_seconds"].samples if s.name.endswith("_bucket")]
vals = [s.value for s in buckets]
assert vals == sorted(vals) and buckets[-1].labels["le"] == "+Inf" and vals[-1] == count, vals
assert 0 < sample(d, "tiber_pause_seconds", "tiber_pause_seconds_sum") < count
for ph in ("handshake", "harvest", "copy", "resume", "commit"):
    assert sample(d, "tiber_%s_seconds" % ph, "tiber_%s_seconds_count" % ph) >= 20, ph
assert sample(d, "tiber_wire_bytes", "tiber_wire_bytes_total") > 0

r = check(scrape(sys.argv[2]), "replicator")
assert sample(r, "tiber_replica_committed_epoch", "tiber_replica_committed_epoch", guest="simguest") >= 20
age = sample(r, "tiber_replica_commit_age_seconds", "tiber_replica_commit_age_seconds", guest="simguest")
assert 0 <= age < 5, age
assert sample(r, "tiber_replica_state", "tiber_replica_state", guest="simguest", state="protected") == 1
assert sample(r, "tiber_replica_bytes", "tiber_replica_bytes", guest="simguest") == 64 << 20

try:
    urllib.request.urlopen(sys.argv[1].replace("/metrics", "/other"), timeout=5)
    raise AssertionError("/other answered")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
print("scrapes: tiberd %d families, replicator %d families" % (len(d), len(r)))
PY
# promtool (Debian's prometheus package) lints each scrape too
for u in "$UD" "$UR"; do
	/usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$u" >"$T/scrape" ||
		fail "scrape $u"
	[ -s "$T/scrape" ] || fail "empty scrape of $u"
	promtool check metrics <"$T/scrape" >"$T/promtool.out" 2>&1 || fail "promtool check metrics $u: $(cat "$T/promtool.out")"
done
# the same daemons through tiberctl: a table for people, JSON for scripts
"$BIN/tiberctl" --socket "$CTL" status >"$T/d.table" || fail "tiberctl status (tiberd)"
"$BIN/tiberctl" --socket "$T/r.ctl" status >"$T/r.table" || fail "tiberctl status (replicator)"
head -1 "$T/d.table" | grep -q "^GUEST .*STATE .*EPOCHS" || fail "tiberd table header: $(cat "$T/d.table")"
grep -q "^simguest .* protected .* ok$" "$T/d.table" || fail "tiberd table row: $(cat "$T/d.table")"
grep -q "^replicator: link psk" "$T/r.table" || fail "replicator table: $(cat "$T/r.table")"
grep -q "^simguest .* protected .*127.0.0.1:[0-9]* (tiberd-test)$" "$T/r.table" || fail "replicator table row: $(cat "$T/r.table")"
"$BIN/tiberctl" --socket "$T/r.ctl" status --json | /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["guests"][0]["state"] == "protected"' ||
	fail "replicator status --json"
echo "test_metrics: ok: $UD and $UR; tiberctl status:"
cat "$T/d.table" "$T/r.table"
