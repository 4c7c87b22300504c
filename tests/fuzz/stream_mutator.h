/* SPDX-License-Identifier: MIT */
/*
 * Stream generator, mutator and checker shared by the unit test
 * (tests/unit/test_stream.c), the standalone campaign
 * (tests/fuzz/mutate_stream.c) and the libFuzzer harness
 * (tests/fuzz/fuzz_stream.c); the code is in stream_mutator.c (generator,
 * mutator) and stream_oracle.c (oracle, campaign), linked into each of
 * them (Makefile, scripts/fuzz.sh).
 *
 * sm_check() is the oracle: it decodes a byte stream twice (one feed of
 * everything, and random chunks received through tb_dec_space/commit),
 * passes every record through the session checker, and verifies:
 *  - tb_dec_next returns 1, 0 or tb_stream_errno(d->err) with d->err one
 *    of the decoder's codes and a message, and the error is sticky;
 *  - every returned record re-validates: re-encoding it with tb_enc_*
 *    gives exactly the bytes it was decoded from, and its pointers and
 *    descriptors stay inside its body;
 *  - the session checker accepts or fails with BAD_ORDER/VERSION;
 *  - both chunkings give the same records and the same outcome.
 * Out-of-bounds reads are for ASan (make check-asan, the fuzz builds).
 */
#ifndef TIBER_STREAM_MUTATOR_H
#define TIBER_STREAM_MUTATOR_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/common.h"
#include "tiber/stream.h"

/* ---------------------------------------------------------------- rng */

struct sm_rng {
	uint64_t s;
};

uint64_t sm_next(struct sm_rng *r); /* splitmix64 */
/* Uniform in [0, n) (n > 0). */
uint32_t sm_below(struct sm_rng *r, uint32_t n);
void sm_fill(struct sm_rng *r, uint8_t *p, size_t n);

/* ---------------------------------------------------------------- records */

/* Bytes a record with a body of @len takes on the wire. */
size_t sm_rec_total(uint32_t len);
/* Append a record with any type and body, correct padding and CRC. */
int sm_put_raw(struct tb_buf *out, uint32_t type, const void *body,
	       uint32_t len);
/* Recompute the CRC of every record whose header fits (so that
 * mutations reach the body parsers). */
void sm_fix_crcs(uint8_t *p, size_t len);
/* Offsets of the records whose headers fit, at most @max. */
size_t sm_rec_offsets(const uint8_t *p, size_t len, size_t *offs, size_t max);

/* ---------------------------------------------------------------- streams */

/* Pages of generated PAGE_DATA records have pfns below this (default
 * 2^20; the replica harness's guest has 64 pages). */
extern uint32_t sm_pfn_limit;
/* A valid stream sent by @role (one direction of a session). */
int sm_gen_stream(struct sm_rng *r, enum tb_role role, struct tb_buf *out,
		  struct tb_page_rec *pr);
/* Apply 1..4 random mutations to @s; @donor (may be NULL) is another
 * valid stream to splice records from. */
void sm_mutate(struct sm_rng *r, struct tb_buf *s, const uint8_t *donor,
	       size_t donor_len);

/* ---------------------------------------------------------------- check */

struct sm_ctx {
	struct tb_buf enc;	/* re-encoding scratch */
	struct tb_page_rec pr;	/* builder reused for every re-encoding */
	struct tb_buf trace[2]; /* re-encoded records of each chunking */
	char fail[512];		/* invariant violation, "" if none */
	uint64_t index;		/* sm_campaign: the current stream */
	enum tb_role role;	/* ... and its sender */
	/* stats: [0] valid streams, [1] mutants (and libFuzzer inputs) */
	struct sm_stats {
		uint64_t streams, clean, records, bytes;
		uint64_t outcome[TB_SERR_MAX + 1];
	} st[2];
};

void sm_ctx_free(struct sm_ctx *c);
/* The oracle (see the top of the file).  0, or -1 with c->fail set. */
int sm_check(struct sm_ctx *c, const uint8_t *p, size_t len, enum tb_role role,
	     struct sm_rng *r, int mutant);
/* The mutation campaign: streams @first .. @first + @count - 1 of @seed
 * (see sm_campaign in stream_oracle.c).  0, or -1 with c->fail and the
 * failing stream in @bad. */
int sm_campaign(struct sm_ctx *c, uint64_t seed, uint64_t first, uint64_t count,
		struct tb_buf *bad);

#endif
