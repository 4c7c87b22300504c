#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Make the replication link's credentials (GnuTLS's certtool and psktool,
# Debian package gnutls-bin).
#
#   scripts/tls-keys.sh ca DIR                 a CA: DIR/ca.pem, DIR/ca.key
#   scripts/tls-keys.sh cert DIR NAME          NAME's key and certificate,
#                                              signed by DIR's CA:
#                                              DIR/NAME.pem, DIR/NAME.key
#   scripts/tls-keys.sh psk FILE IDENTITY      add a random 256-bit key for
#                                              IDENTITY to FILE (mode 0600)
#
# NAME is the certificate's CN and DNS name: the identity the backup's
# authorization map names (and the primary's tls_peer_name, if set).
# Keys are ECDSA P-256 and never leave DIR (mode 0600); copy ca.pem to
# every host, and each host's own NAME.pem / NAME.key to that host.
set -euo pipefail
umask 077

die() { echo "tls-keys: $*" >&2; exit 2; }
command -v certtool >/dev/null && command -v psktool >/dev/null ||
	die "certtool/psktool not found (apt-get install gnutls-bin)"

cmd=${1:-}
case $cmd in
ca)
	[ $# -eq 2 ] || die "usage: $0 ca DIR"
	dir=$2
	mkdir -p "$dir"
	[ -e "$dir/ca.key" ] && die "$dir/ca.key exists: not overwriting a CA"
	printf 'cn = "tiber CA %s"\nca\ncert_signing_key\nexpiration_days = 3650\n' \
		"$(hostname)" >"$dir/ca.tmpl"
	certtool --generate-privkey --key-type=ecdsa --outfile "$dir/ca.key" 2>/dev/null
	certtool --generate-self-signed --load-privkey "$dir/ca.key" \
		--template "$dir/ca.tmpl" --outfile "$dir/ca.pem" 2>/dev/null
	rm -f "$dir/ca.tmpl"
	chmod 0644 "$dir/ca.pem"
	echo "CA: $dir/ca.pem (key $dir/ca.key)"
	;;
cert)
	[ $# -eq 3 ] || die "usage: $0 cert DIR NAME"
	dir=$2 name=$3
	[ -f "$dir/ca.key" ] || die "no CA in $dir (run: $0 ca $dir)"
	case $name in *[!A-Za-z0-9.-]* | "") die "NAME '$name': letters, digits, '.', '-' only" ;; esac
	printf 'cn = "%s"\ndns_name = "%s"\ntls_www_server\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 825\n' \
		"$name" "$name" >"$dir/$name.tmpl"
	certtool --generate-privkey --key-type=ecdsa --outfile "$dir/$name.key" 2>/dev/null
	certtool --generate-certificate --load-privkey "$dir/$name.key" \
		--load-ca-certificate "$dir/ca.pem" --load-ca-privkey "$dir/ca.key" \
		--template "$dir/$name.tmpl" --outfile "$dir/$name.pem" 2>/dev/null
	rm -f "$dir/$name.tmpl"
	chmod 0644 "$dir/$name.pem"
	echo "$name: $dir/$name.pem (key $dir/$name.key)"
	;;
psk)
	[ $# -eq 3 ] || die "usage: $0 psk FILE IDENTITY"
	psktool -s 32 -u "$3" -p "$2" >/dev/null
	chmod 0600 "$2"
	echo "$3: key added to $2"
	;;
*)
	die "usage: $0 ca DIR | cert DIR NAME | psk FILE IDENTITY"
	;;
esac
