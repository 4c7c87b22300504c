/* SPDX-License-Identifier: MIT */
/* Page bitmaps: one bit per guest pfn. */
#ifndef TIBER_BITMAP_H
#define TIBER_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_bitmap {
	uint64_t nbits;
	uint64_t *words; /* (nbits + 63) / 64 words, bits past nbits zero */
};

/* Allocate a cleared bitmap of @nbits.  0 or -ENOMEM/-EINVAL. */
int tb_bitmap_init(struct tb_bitmap *bm, uint64_t nbits);
void tb_bitmap_free(struct tb_bitmap *bm);
void tb_bitmap_clear_all(struct tb_bitmap *bm);
void tb_bitmap_set_all(struct tb_bitmap *bm);
static inline size_t tb_bitmap_nwords(const struct tb_bitmap *bm)
{
	return (size_t)((bm->nbits + 63) / 64);
}
static inline void tb_bitmap_set(struct tb_bitmap *bm, uint64_t bit)
{
	bm->words[bit >> 6] |= 1ull << (bit & 63);
}
static inline void tb_bitmap_clear(struct tb_bitmap *bm, uint64_t bit)
{
	bm->words[bit >> 6] &= ~(1ull << (bit & 63));
}
static inline bool tb_bitmap_test(const struct tb_bitmap *bm, uint64_t bit)
{
	return (bm->words[bit >> 6] >> (bit & 63)) & 1;
}
/* Set bits [first, first + n); clipped to nbits. */
void tb_bitmap_set_range(struct tb_bitmap *bm, uint64_t first, uint64_t n);
uint64_t tb_bitmap_count(const struct tb_bitmap *bm);
/* First set bit >= @from, or nbits when none. */
uint64_t tb_bitmap_next(const struct tb_bitmap *bm, uint64_t from);
/* dst |= src (same nbits). */
void tb_bitmap_or(struct tb_bitmap *dst, const struct tb_bitmap *src);
/*
 * Write the set bits in ascending order into @pfns (at most @cap) and
 * return how many were written.
 */
size_t tb_bitmap_to_list(const struct tb_bitmap *bm, uint64_t *pfns,
			 size_t cap);
/*
 * Move @src into @dst: write the bits set in @src and not in @dst in
 * ascending order into @pfns (at most @cap), then dst |= src and clear
 * @src (all of it, also past @cap).  Returns how many were written.
 */
size_t tb_bitmap_take_new(struct tb_bitmap *dst, struct tb_bitmap *src,
			  uint64_t *pfns, size_t cap);

#endif
