// SPDX-License-Identifier: MIT
/* Page bitmaps.  Invariant: bits at and past nbits are always zero. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/bitmap.h"

int tb_bitmap_init(struct tb_bitmap *bm, uint64_t nbits)
{
	size_t n = (size_t)((nbits + 63) / 64);

	bm->nbits = nbits;
	bm->words = calloc(n ? n : 1, sizeof(uint64_t));
	return bm->words ? 0 : -ENOMEM;
}

void tb_bitmap_free(struct tb_bitmap *bm)
{
	free(bm->words);
	bm->words = NULL;
	bm->nbits = 0;
}

void tb_bitmap_clear_all(struct tb_bitmap *bm)
{
	memset(bm->words, 0, tb_bitmap_nwords(bm) * sizeof(uint64_t));
}

void tb_bitmap_set_all(struct tb_bitmap *bm)
{
	size_t n = tb_bitmap_nwords(bm);

	if (!n)
		return;
	memset(bm->words, 0xff, n * sizeof(uint64_t));
	if (bm->nbits & 63)
		bm->words[n - 1] = (1ull << (bm->nbits & 63)) - 1;
}

void tb_bitmap_set_range(struct tb_bitmap *bm, uint64_t first, uint64_t n)
{
	uint64_t end, b;

	if (first >= bm->nbits)
		return;
	end = n > bm->nbits - first ? bm->nbits : first + n;
	b = first;
	while (b < end && (b & 63))
		tb_bitmap_set(bm, b++);
	while (b + 64 <= end) {
		bm->words[b >> 6] = ~0ull;
		b += 64;
	}
	while (b < end)
		tb_bitmap_set(bm, b++);
}

uint64_t tb_bitmap_count(const struct tb_bitmap *bm)
{
	size_t i, n = tb_bitmap_nwords(bm);
	uint64_t c = 0;

	for (i = 0; i < n; i++)
		c += (uint64_t)__builtin_popcountll(bm->words[i]);
	return c;
}

uint64_t tb_bitmap_next(const struct tb_bitmap *bm, uint64_t from)
{
	size_t i, n = tb_bitmap_nwords(bm);
	uint64_t w;

	if (from >= bm->nbits)
		return bm->nbits;
	i = (size_t)(from >> 6);
	w = bm->words[i] & (~0ull << (from & 63));
	for (;;) {
		if (w)
			return ((uint64_t)i << 6) +
			       (uint64_t)__builtin_ctzll(w);
		if (++i >= n)
			return bm->nbits;
		w = bm->words[i];
	}
}

void tb_bitmap_or(struct tb_bitmap *dst, const struct tb_bitmap *src)
{
	size_t i, n = tb_bitmap_nwords(dst);

	for (i = 0; i < n; i++)
		dst->words[i] |= src->words[i];
}

size_t tb_bitmap_to_list(const struct tb_bitmap *bm, uint64_t *pfns, size_t cap)
{
	size_t i, n = tb_bitmap_nwords(bm), out = 0;
	uint64_t w;

	for (i = 0; i < n && out < cap; i++) {
		w = bm->words[i];
		while (w && out < cap) {
			pfns[out++] = ((uint64_t)i << 6) +
				      (uint64_t)__builtin_ctzll(w);
			w &= w - 1;
		}
	}
	return out;
}

size_t tb_bitmap_take_new(struct tb_bitmap *dst, struct tb_bitmap *src,
			  uint64_t *pfns, size_t cap)
{
	size_t i, n = tb_bitmap_nwords(dst), out = 0;
	uint64_t w;

	for (i = 0; i < n; i++) {
		w = src->words[i] & ~dst->words[i];
		dst->words[i] |= src->words[i];
		src->words[i] = 0;
		for (; w && out < cap; w &= w - 1)
			pfns[out++] = ((uint64_t)i << 6) +
				      (uint64_t)__builtin_ctzll(w);
	}
	return out;
}
