/* SPDX-License-Identifier: MIT */
/*
 * The primary's page encoder (lib/epoch_enc.c): staged pages -> PAGE_DATA
 * records, through the codec, against a shadow of what the backup holds,
 * into the epoch's digest.  No threads, no I/O: the caller's flush
 * function sends what the encoder wrote.  Internal to lib/.
 */
#ifndef TIBER_EPOCH_ENC_H
#define TIBER_EPOCH_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/bitmap.h"
#include "tiber/codec.h"
#include "tiber/common.h"
#include "tiber/stream.h"

struct tb_epoch_enc {
	uint64_t nr_pages;
	uint32_t rec_pages; /* pages per PAGE_DATA record, at most */
	uint8_t *shadow;    /* backup's copy of every page sent; NULL: none */
	struct tb_bitmap shadow_valid;
	struct tb_page_rec prec;
	uint8_t encbuf[TB_CODEC_OUT_MAX];
};

/* Where encoded records go: @out, handed to @flush(@ctx) whenever a
 * record is full and at the end (it sends and empties @out); @yield(@ctx)
 * (may be NULL) every 64 pages. */
struct tb_epoch_enc_io {
	struct tb_buf *out;
	struct tb_digest *digest;
	int (*flush)(void *ctx);
	void (*yield)(void *ctx);
	void *ctx;
};

/*
 * For a guest of @nr_pages, records of up to @rec_pages pages; @shadow:
 * keep the backup's copy of each page for XOR deltas (costs the guest's
 * size in untouched virtual memory).  0 or -ENOMEM; tb_epoch_enc_free()
 * either way.
 */
int tb_epoch_enc_init(struct tb_epoch_enc *pe, uint64_t nr_pages,
		      uint32_t rec_pages, bool shadow);
void tb_epoch_enc_free(struct tb_epoch_enc *pe);
/* A new backup holds nothing: no XOR delta until a page is sent again. */
void tb_epoch_enc_forget(struct tb_epoch_enc *pe);
/*
 * Encode the @n pages @pages (page i at @pages + i * TB_PAGE_SIZE is pfn
 * @pfns[i], < nr_pages) with @opts into PAGE_DATA records; each page goes
 * into @io->digest in order.  @st (may be NULL) accumulates the codec's
 * counts.  0, or the first error (the codec's, the record builder's or
 * @io->flush's).
 */
int tb_epoch_enc_run(struct tb_epoch_enc *pe, const struct tb_codec_opts *opts,
		     const uint64_t *pfns, const uint8_t *pages, size_t n,
		     const struct tb_epoch_enc_io *io,
		     struct tb_codec_stats *st);

#endif
