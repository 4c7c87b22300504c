/* SPDX-License-Identifier: MIT */
/*
 * Test helper: a model primary that encodes epochs exactly as the engine
 * does (codec + PAGE_DATA + state + EPOCH_END with the digest), keeping
 * its own shadow of what the backup holds.
 */
#ifndef TIBER_TEST_PRIM_H
#define TIBER_TEST_PRIM_H

#include <stdbool.h>
#include <stdint.h>

#include "tiber/stream.h"

#define PRIM_NPAGES 64u

struct prim {
	uint8_t mem[PRIM_NPAGES][TB_PAGE_SIZE];
	uint8_t shadow[PRIM_NPAGES][TB_PAGE_SIZE];
	bool shadow_ok[PRIM_NPAGES];
	struct tb_buf out;
	struct tb_page_rec prec;
	struct tb_digest dig;
};

void prim_fill(uint8_t *p, unsigned seed);
void prim_init(struct prim *pr);
void prim_free(struct prim *pr);
/* Append one epoch of @pfns to pr->out and update the shadow. */
void prim_encode_epoch(struct prim *pr, uint64_t epoch, bool full,
		       const uint64_t *pfns, size_t n);
struct tb_hello prim_hello(void);

#endif
