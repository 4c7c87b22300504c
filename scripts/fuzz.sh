#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make fuzz`: the stream decoder's longer fuzz runs.
#  1. build/bin/tiber-fuzz-stream -n 2000000 (the mutation campaign of the
#     unit test, 20x longer; TIBER_FUZZ_COUNT, TIBER_FUZZ_SEED override).
#  2. If clang can link -fsanitize=fuzzer (Debian: clang + libclang-rt-dev),
#     build each libFuzzer harness of tests/fuzz/ with ASan/UBSan into
#     build/fuzz/ and run it for ${TIBER_FUZZ_SECONDS:-60} s from its
#     seeds (fuzz_stream: valid streams written by tiber-fuzz-stream -c).
# TIBER_FUZZ_ONLY="authz config" runs only those harnesses (and the
# mutation campaign only if it names stream).
# Exits non-zero on any crash or oracle violation (reproducers are left in
# the current directory / build/fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
BIN=$BUILD/bin/tiber-fuzz-stream
FUZZ=$BUILD/fuzz
COUNT=${TIBER_FUZZ_COUNT:-2000000}
SEED=${TIBER_FUZZ_SEED:-$(date +%s)}
SECS=${TIBER_FUZZ_SECONDS:-60}
ONLY=${TIBER_FUZZ_ONLY:-}
CLANG=${CLANG:-clang}
# libtiber's stream code (records, decoder, session order) for the harness
STREAM_SRCS=(lib/crc32c.c lib/stream.c lib/stream_check.c lib/stream_dec.c
	lib/stream_disk.c lib/stream_session.c lib/common.c)

# Is harness $1 selected by TIBER_FUZZ_ONLY?
wanted() {
	[ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]
}

[ -x "$BIN" ] || make --no-print-directory "$BIN"

if wanted stream; then
	echo "fuzz: $BIN -n $COUNT -s $SEED"
	"$BIN" -n "$COUNT" -s "$SEED"
fi

probe=$(mktemp -d)
# (fuzz_replica's disk directories, even when it fails)
if wanted replica; then
	trap 'rm -rf "$probe" /tmp/tiber-fuzz-replica.*' EXIT
else
	trap 'rm -rf "$probe"' EXIT
fi
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! command -v "$CLANG" >/dev/null ||
	! "$CLANG" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
	echo "fuzz: $CLANG cannot build -fsanitize=fuzzer; libFuzzer run skipped"
	exit 0
fi
mkdir -p "$FUZZ"

# fuzz NAME MAX_LEN "SEED DIRS" SOURCES... [-lLIB...]: build
# tests/fuzz/fuzz_NAME.c with SOURCES into $FUZZ/fuzz_NAME, run it for
# $SECS s over $FUZZ/corpus-NAME and the seed dirs (log
# $FUZZ/fuzz-NAME.log, reproducers $FUZZ/NAME-*), exit 1 on a finding.
fuzz() {
	local name=$1 max_len=$2 seeds=$3 rc=0
	local log=$FUZZ/fuzz-$name.log

	shift 3
	wanted "$name" || return 0
	echo "fuzz: building $FUZZ/fuzz_$name"
	"$CLANG" -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Itests/fuzz \
		-Wall -Wextra -Wno-unused-parameter -Werror \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-fno-omit-frame-pointer "tests/fuzz/fuzz_$name.c" "$@" \
		-lm -pthread -o "$FUZZ/fuzz_$name"
	mkdir -p "$FUZZ/corpus-$name"
	echo "fuzz: fuzz_$name for ${SECS}s"
	# shellcheck disable=SC2086 # $seeds: a list of directories
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$FUZZ/fuzz_$name" -max_total_time="$SECS" -max_len="$max_len" \
		-print_final_stats=1 -artifact_prefix="$FUZZ/$name-" \
		"$FUZZ/corpus-$name" $seeds >"$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|oracle violation|deadly signal|Test unit written' "$log"; then
		tail -40 "$log"
		echo "fuzz: FAIL (log: $log, reproducer in $FUZZ/)"
		exit 1
	fi
	grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' "$log"
}

# The stream decoder and session order, from valid streams.
if wanted stream || wanted replica; then
	rm -rf "$FUZZ/seeds"
	"$BIN" -c "$FUZZ/seeds" -n 64 -s "$SEED"
fi
fuzz stream 65536 "$FUZZ/seeds" tests/fuzz/stream_mutator.c \
	tests/fuzz/stream_oracle.c "${STREAM_SRCS[@]}" -llz4 -lxxhash

# The replicator's authorize_file parser, from the committed seeds.
fuzz authz 4096 tests/fuzz/seeds-authz replicator/authz.c lib/common.c

# The backup's apply path (replica, disks), from the primary-side seeds
# of the stream harness (their 9-byte harness header dropped).
if wanted replica; then
	rm -rf "$FUZZ/seeds-replica"
	mkdir -p "$FUZZ/seeds-replica"
	for f in "$FUZZ"/seeds/*; do
		[ $(( $(od -An -tu1 -N1 "$f") % 2 )) -eq 0 ] &&
			tail -c +10 "$f" >"$FUZZ/seeds-replica/$(basename "$f")"
	done
fi
fuzz replica 65536 "$FUZZ/seeds-replica" tests/fuzz/stream_mutator.c \
	tests/fuzz/stream_oracle.c lib/replica.c lib/replica_disk.c \
	lib/bitmap.c lib/codec.c "${STREAM_SRCS[@]}" -llz4 -lxxhash

# The failover's reader of the primary's Xen state blobs, with the
# stream writer and parser as its oracle.
fuzz xenblob 16384 tests/fuzz/seeds-xenblob lib/backend/xen_stream_img.c \
	lib/backend/xen_blob.c lib/backend/xen_stream.c \
	lib/backend/xen_stream_parse.c lib/bitmap.c lib/common.c

# What the simulated hypervisor reads from its guest: the state blobs
# and the RAM image verifier.
fuzz simblob 65536 tests/fuzz/seeds-simblob lib/simproto.c lib/simram.c \
	lib/simdisk.c lib/common.c

# The config parser (files and command lines) against a key table of
# every option type.
fuzz config 4096 tests/fuzz/seeds-config lib/config.c lib/common.c

# The control-socket commands: a client's bytes through tb_ctl_reply()
# to the replicator's and tiberd's command handlers.
fuzz ctl 1024 tests/fuzz/seeds-ctl lib/ctlsock.c replicator/failover.c \
	lib/epoch_status.c lib/backend/backend.c lib/log.c lib/common.c \
	lib/sock.c lib/addr.c
echo "fuzz: PASS"
