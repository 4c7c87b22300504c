/* SPDX-License-Identifier: MIT */
/*
 * Test helper: a model primary that encodes epochs as the engine does:
 * its pages through the engine's own encoder (lib/epoch_enc.c: codec,
 * shadow, PAGE_DATA, digest), then state and EPOCH_END with the digest.
 * pr->shadow is what the backup must hold once it committed them.
 */
#ifndef TIBER_TEST_PRIM_H
#define TIBER_TEST_PRIM_H

#include <stdbool.h>
#include <stdint.h>

#include "tiber/stream.h"
#include "../../lib/epoch_enc.h"

#define PRIM_NPAGES    64u
#define PRIM_DISK_SIZE (256u * 1024u)
#define PRIM_PEND_MAX  64u
#define PRIM_WRITE_MAX 8192u

struct prim {
	uint8_t mem[PRIM_NPAGES][TB_PAGE_SIZE];
	uint8_t shadow[PRIM_NPAGES][TB_PAGE_SIZE];
	struct tb_buf out;
	struct tb_epoch_enc enc; /* 16 pages per PAGE_DATA record */
	uint8_t staged[PRIM_NPAGES][TB_PAGE_SIZE];
	struct tb_digest dig;
	/* a disk (has_disk): the guest's image and the writes not yet
	 * sent, each with its own data */
	bool has_disk;
	uint8_t disk[PRIM_DISK_SIZE];
	struct {
		uint64_t off;
		uint32_t len;
		uint8_t data[PRIM_WRITE_MAX];
	} pend[PRIM_PEND_MAX];
	unsigned npend;
	uint8_t *scratch;
	uint64_t keep_base; /* FULL epochs re-sync from this epoch (KEEP) */
};

void prim_fill(uint8_t *p, unsigned seed);
void prim_init(struct prim *pr);
void prim_free(struct prim *pr);
/* A new link: the backup's copy is unknown, no XOR deltas. */
void prim_new_link(struct prim *pr);
/* Append one epoch of @pfns to pr->out and update the shadow. */
void prim_encode_epoch(struct prim *pr, uint64_t epoch, bool full,
		       const uint64_t *pfns, size_t n);
/* prim_hello's guest UUID (its first bytes; the rest are 0) */
#define PRIM_UUID 0x7b, 0x1b, 0xe7
struct tb_hello prim_hello(void);
/* The guest writes its disk: the image changes, the write is pending
 * (sent with the next epoch; a FULL epoch sends the whole image). */
void prim_disk_write(struct prim *pr, uint64_t off, const void *p,
		     uint32_t len);

#endif
