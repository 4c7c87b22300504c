#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make fuzz`: the stream decoder's longer fuzz runs.
#  1. build/bin/tiber-fuzz-stream -n 2000000 (the mutation campaign of the
#     unit test, 20x longer; TIBER_FUZZ_COUNT, TIBER_FUZZ_SEED override).
#  2. If clang can link -fsanitize=fuzzer (Debian: clang + libclang-rt-dev),
#     build tests/fuzz/fuzz_stream.c with ASan/UBSan into build/fuzz/ and
#     run it for ${TIBER_FUZZ_SECONDS:-60} s from a seed corpus of valid
#     streams written by tiber-fuzz-stream -c.
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
CLANG=${CLANG:-clang}
# libtiber's stream code (records, decoder, session order) for the harness
STREAM_SRCS="lib/crc32c.c lib/stream.c lib/stream_check.c lib/stream_dec.c
	lib/stream_disk.c lib/stream_session.c lib/common.c"

[ -x "$BIN" ] || make --no-print-directory "$BIN"

echo "fuzz: $BIN -n $COUNT -s $SEED"
"$BIN" -n "$COUNT" -s "$SEED"

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! command -v "$CLANG" >/dev/null ||
	! "$CLANG" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
	echo "fuzz: $CLANG cannot build -fsanitize=fuzzer; libFuzzer run skipped"
	exit 0
fi

mkdir -p "$FUZZ/corpus"
echo "fuzz: building $FUZZ/fuzz_stream"
"$CLANG" -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Itests/fuzz \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer \
	tests/fuzz/fuzz_stream.c tests/fuzz/stream_mutator.c \
	tests/fuzz/stream_oracle.c $STREAM_SRCS \
	-llz4 -lxxhash -lm -pthread -o "$FUZZ/fuzz_stream"
rm -rf "$FUZZ/seeds"
"$BIN" -c "$FUZZ/seeds" -n 64 -s "$SEED"

echo "fuzz: libFuzzer for ${SECS}s (corpus $FUZZ/corpus)"
rc=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$FUZZ/fuzz_stream" -max_total_time="$SECS" -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$FUZZ/" \
	"$FUZZ/corpus" "$FUZZ/seeds" 2>&1 | tee "$FUZZ/fuzz.log" | tail -25 ||
	rc=$?
# the fuzzer's own status (tee/tail hide it from the pipeline)
if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|oracle violation|deadly signal|Test unit written' "$FUZZ/fuzz.log"; then
	echo "fuzz: FAIL (log: $FUZZ/fuzz.log, reproducer in $FUZZ/)"
	exit 1
fi

# The replicator's authorize_file parser, from the committed seeds.
echo "fuzz: building $FUZZ/fuzz_authz"
"$CLANG" -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer \
	tests/fuzz/fuzz_authz.c replicator/authz.c lib/common.c -o "$FUZZ/fuzz_authz"
mkdir -p "$FUZZ/corpus-authz"
echo "fuzz: authorize_file parser for ${SECS}s"
rc=0
"$FUZZ/fuzz_authz" -max_total_time="$SECS" -max_len=4096 \
	-print_final_stats=1 -artifact_prefix="$FUZZ/authz-" \
	"$FUZZ/corpus-authz" tests/fuzz/seeds-authz 2>&1 |
	tee "$FUZZ/fuzz-authz.log" | tail -8 || rc=$?
if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|deadly signal|Test unit written' "$FUZZ/fuzz-authz.log"; then
	echo "fuzz: FAIL (log: $FUZZ/fuzz-authz.log)"
	exit 1
fi

# The backup's apply path (replica, disks), from the primary-side seeds
# of the stream harness (their 9-byte harness header dropped).
echo "fuzz: building $FUZZ/fuzz_replica"
"$CLANG" -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Itests/fuzz \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer \
	tests/fuzz/fuzz_replica.c tests/fuzz/stream_mutator.c \
	tests/fuzz/stream_oracle.c lib/replica.c lib/replica_disk.c \
	lib/bitmap.c lib/codec.c $STREAM_SRCS \
	-llz4 -lxxhash -lm -pthread -o "$FUZZ/fuzz_replica"
rm -rf "$FUZZ/seeds-replica"; mkdir -p "$FUZZ/seeds-replica" "$FUZZ/corpus-replica"
for f in "$FUZZ"/seeds/*; do
	[ $(( $(od -An -tu1 -N1 "$f") % 2 )) -eq 0 ] &&
		tail -c +10 "$f" >"$FUZZ/seeds-replica/$(basename "$f")"
done
echo "fuzz: replica apply path for ${SECS}s"
rc=0
"$FUZZ/fuzz_replica" -max_total_time="$SECS" -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$FUZZ/replica-" \
	"$FUZZ/corpus-replica" "$FUZZ/seeds-replica" 2>&1 |
	tee "$FUZZ/fuzz-replica.log" | tail -8 || rc=$?
rm -rf /tmp/tiber-fuzz-replica.*
if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|oracle violation|deadly signal|Test unit written' "$FUZZ/fuzz-replica.log"; then
	echo "fuzz: FAIL (log: $FUZZ/fuzz-replica.log)"
	exit 1
fi
echo "fuzz: PASS"
