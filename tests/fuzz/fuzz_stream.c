// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the stream decoder and the session checker.
 * Built and run by scripts/fuzz.sh (clang -fsanitize=fuzzer,address,
 * undefined); the oracle is sm_check() of stream_mutator.h.
 *
 * Input: byte 0 bit 0 is the sender's role (0 primary, 1 backup), bytes
 * 1..8 seed the random chunking, the rest is the stream.  The custom
 * mutator mixes libFuzzer's mutations with the structure-aware ones of
 * stream_mutator.h and re-fixes record CRCs on most inputs, so mutations
 * get past the CRC check to the body parsers.
 */
#include <stdio.h>
#include <stdlib.h>

#include "stream_mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define IN_HDR 9

static struct sm_ctx ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sm_rng r = { 0 };
	enum tb_role role;

	if (size < IN_HDR)
		return 0;
	role = (data[0] & 1) ? TB_ROLE_BACKUP : TB_ROLE_PRIMARY;
	r.s = tb_get_le64(data + 1);
	if (sm_check(&ctx, data + IN_HDR, size - IN_HDR, role, &r, 1)) {
		fprintf(stderr, "fuzz_stream: oracle violation: %s\n",
			ctx.fail);
		abort();
	}
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	struct sm_rng r = { seed };
	static struct tb_buf b;

	if (size < IN_HDR || max_size < IN_HDR || sm_below(&r, 2))
		size = LLVMFuzzerMutate(data, size, max_size);
	if (size > IN_HDR && sm_below(&r, 2)) {
		tb_buf_reset(&b);
		if (!tb_buf_append(&b, data + IN_HDR, size - IN_HDR)) {
			sm_mutate(&r, &b, NULL, 0);
			if (b.len <= max_size - IN_HDR) {
				memcpy(data + IN_HDR, b.data, b.len);
				size = IN_HDR + b.len;
			}
		}
	}
	if (size > IN_HDR && sm_below(&r, 4))
		sm_fix_crcs(data + IN_HDR, size - IN_HDR);
	return size;
}
