#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The replication link admits only who it should.  A legitimate pair
# (certificates from one CA; authorize_file grants "primary" the guest
# "simguest") protects a guest; meanwhile, against the same replicator:
#   - a plaintext primary (insecure = yes)          refused at the handshake
#   - a primary with a certificate of another CA    refused at the handshake
#   - a primary of the right CA, not authorized     refused at HELLO (DENIED)
#   - a primary expecting another backup name       refuses the backup itself
#   - silent connections                             dropped at the deadline
#   - after the primary detached, another authorized  refused at HELLO (DENIED):
#     identity claiming the guest                     the replica is bound to
#                                                     the primary that made it
# Each refusal is counted in the replicator's status; the legitimate
# primary stays the guest's only peer, keeps its rate and its replica
# keeps advancing (nothing an intruder sent was applied).
. "$(dirname "$0")/lib.sh"

K=$T/keys
"$ROOT/scripts/tls-keys.sh" ca "$K/ca" >/dev/null
for n in primary backup intruder ops; do "$ROOT/scripts/tls-keys.sh" cert "$K/ca" $n >/dev/null; done
"$ROOT/scripts/tls-keys.sh" ca "$K/rogue" >/dev/null
"$ROOT/scripts/tls-keys.sh" cert "$K/rogue" primary >/dev/null
printf '# who may protect what\nprimary simguest\nintruder otherguest\nops *\n' >"$T/authz"
x509() { echo --tls-cert "$K/$1/$2.pem" --tls-key "$K/$1/$2.key" --tls-ca "$K/ca/ca.pem"; }

TLS_ARGS=($(x509 ca backup))
start_replicator r --control "$T/r.ctl" --authorize-file "$T/authz" \
	--handshake-timeout 1s --max-handshakes 4 --failover off
grep -q "link=x509" "$T/r.log" || fail "replicator not on TLS with certificates"
rstat() { "$BIN/tiberctl" --socket "$T/r.ctl" status --json; }
rfield() { rstat | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -1; }

TLS_ARGS=($(x509 ca primary) --tls-peer-name backup)
start_guest g --ram 64M --dirty-rate 20000
start_tiberd d --rate 50
WAIT_S=20 wait_for acked_at_least 5 || fail "legitimate primary not protected"
[ "$(rfield peer_id)" = primary ] || fail "replicator peer_id '$(rfield peer_id)', want primary"
e0=$(status_field epochs)
c0=$(rfield committed_epoch)

# intruders, each a tiberd with its own simulated guest named simguest
attack() { # NAME EXPECT_IN_LOG ARGS...
	local name=$1 want=$2
	shift 2
	"$BIN/tiber-simguest" --socket "$T/$name.sock" --ram 64M --stats-interval 0 >"$T/$name-g.log" 2>&1 &
	PIDS+=($!)
	wait_for test -S "$T/$name.sock" || fail "$name: guest did not start"
	"$BIN/tiberd" --backend sim --guest "$T/$name.sock" --backup "$REPL_ADDR" \
		--control "$T/$name.ctl" --reconnect-interval 200ms "$@" >"$T/$name.log" 2>&1 &
	PIDS+=($!)
	wait_for grep -q "$want" "$T/$name.log" || fail "$name: '$want' not in its log"
	[ "$(CTL=$T/$name.ctl status_field state)" != protected ] || fail "$name got protected"
}
attack plain "unreachable" --insecure yes
attack rogue "unreachable" $(x509 rogue primary)
attack intruder "may not protect guest 'simguest'" $(x509 ca intruder)
attack wrongname "unreachable.*name in the certificate does not match" $(x509 ca primary) --tls-peer-name other-backup

# silent connections: dropped at the handshake deadline, no slot kept
python3 - "$REPL_ADDR" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
socks = [socket.create_connection((host, int(port))) for _ in range(8)]
time.sleep(2.5)  # handshake_timeout 1s
closed = 0
for s in socks:
    s.settimeout(1)
    try:
        closed += s.recv(1) == b""
    except OSError:
        closed += 1
sys.exit(0 if closed == len(socks) else 1)
PY
[ $? -eq 0 ] || fail "silent connections were not dropped at the handshake deadline"

sleep 1
rh=$(rstat | sed -n 's/.*"refused_handshakes":\([0-9]*\).*/\1/p')
ru=$(rstat | sed -n 's/.*"refused_unauthorized":\([0-9]*\).*/\1/p')
[ "${rh:-0}" -ge 10 ] || fail "refused_handshakes=$rh, want >= 10 (plain, rogue, silent)"
[ "${ru:-0}" -ge 1 ] || fail "refused_unauthorized=$ru, want >= 1"
[ "$(rfield peer_id)" = primary ] || fail "the guest's peer is now '$(rfield peer_id)'"
[ "$(rfield state)" = active ] || [ "$(rfield state)" = protected ] || fail "replicator state $(rfield state)"
e1=$(status_field epochs)
c1=$(rfield committed_epoch)
[ "$c1" -gt "$c0" ] || fail "replica stopped advancing ($c0 -> $c1)"
# spoof after detach: the legitimate primary leaves in order; "ops" may
# protect any guest, but not take over the replica "primary" committed
kill -TERM "$TIBERD_PID"
WAIT_S=10 wait_for eval '[ "$(rfield state)" = idle ]' || fail "replicator state $(rfield state) after detach, want idle"
c2=$(rfield committed_epoch)
attack ops "belongs to primary 'primary'" $(x509 ca ops)
[ "$(rfield committed_epoch)" = "$c2" ] || fail "the replica moved ($c2 -> $(rfield committed_epoch)) after a spoof"
[ "$(rfield peer_id)" = primary ] || fail "the guest's peer is now '$(rfield peer_id)'"
start_tiberd d --rate 50
CTL=$T/d.ctl WAIT_S=20 wait_for acked_at_least 3 || fail "the legitimate primary is refused after the spoof"
n=$(grep -c "refused" "$T/r.log")
echo "test_link_security: ok: epochs $e0 -> $e1 (replica $c0 -> $c1) under attack; refused_handshakes=$rh refused_unauthorized=$ru; $n refusal lines logged (rate-limited)"
