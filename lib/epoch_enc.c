// SPDX-License-Identifier: MIT
/*
 * The primary's page encoder (epoch_enc.h): shadow, codec, digest and
 * PAGE_DATA records behind one call.
 *
 * Invariants:
 * - The shadow mirrors the backup's copy: after a page is encoded its
 *   shadow is that page, so the next XOR delta is against exactly what
 *   the backup will hold once it applied this one.
 * - A zero page is not copied into the shadow (that would allocate memory
 *   for every hole of a sparse guest): its shadow is marked invalid, and
 *   the page's next change goes as plain lz4.
 * - Pages enter the digest in the order they are encoded, which is the
 *   order they are sent.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "epoch_enc.h"

int tb_epoch_enc_init(struct tb_epoch_enc *pe, uint64_t nr_pages,
		      uint32_t rec_pages, bool shadow)
{
	memset(pe, 0, sizeof(*pe));
	pe->nr_pages = nr_pages;
	pe->rec_pages = rec_pages;
	if (tb_bitmap_init(&pe->shadow_valid, (size_t)nr_pages))
		return -ENOMEM;
	if (!shadow)
		return 0;
	pe->shadow = mmap(NULL, nr_pages * TB_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pe->shadow == MAP_FAILED) {
		pe->shadow = NULL;
		return -ENOMEM;
	}
	return 0;
}

void tb_epoch_enc_free(struct tb_epoch_enc *pe)
{
	if (pe->shadow)
		munmap(pe->shadow, pe->nr_pages * TB_PAGE_SIZE);
	pe->shadow = NULL;
	tb_bitmap_free(&pe->shadow_valid);
	tb_enc_pages_free(&pe->prec);
}

void tb_epoch_enc_forget(struct tb_epoch_enc *pe)
{
	if (pe->shadow)
		tb_bitmap_clear_all(&pe->shadow_valid);
}

static void shadow_update(struct tb_epoch_enc *pe, uint64_t pfn,
			  const uint8_t *page, uint8_t enc)
{
	if (!pe->shadow)
		return;
	if (enc == TB_ENC_ZERO) {
		tb_bitmap_clear(&pe->shadow_valid, pfn);
	} else {
		memcpy(pe->shadow + pfn * TB_PAGE_SIZE, page, TB_PAGE_SIZE);
		tb_bitmap_set(&pe->shadow_valid, pfn);
	}
}

int tb_epoch_enc_run(struct tb_epoch_enc *pe, const struct tb_codec_opts *opts,
		     const uint64_t *pfns, const uint8_t *pages, size_t n,
		     const struct tb_epoch_enc_io *io,
		     struct tb_codec_stats *st)
{
	size_t i;
	int rc;

	if (!n)
		return 0;
	rc = tb_enc_pages_begin(&pe->prec, io->out, pe->rec_pages);
	for (i = 0; !rc && i < n; i++) {
		const uint8_t *page = pages + i * TB_PAGE_SIZE;
		const uint8_t *shadow = NULL;
		uint64_t pfn = pfns[i];
		uint8_t enc;
		uint32_t len;

		if (!(i & 63) && io->yield)
			io->yield(io->ctx);
		if (pfn >= pe->nr_pages)
			return -EINVAL;
		if (pe->shadow && tb_bitmap_test(&pe->shadow_valid, pfn))
			shadow = pe->shadow + pfn * TB_PAGE_SIZE;
		rc = tb_codec_encode(opts, page, shadow, pe->encbuf, &enc, &len,
				     st);
		if (rc)
			break;
		tb_digest_page(io->digest, pfn, page);
		rc = tb_enc_pages_add(&pe->prec, pfn, enc, pe->encbuf, len);
		if (rc == -ENOSPC) {
			/* the record is full: send it, start the next */
			rc = tb_enc_pages_finish(&pe->prec);
			if (!rc)
				rc = io->flush(io->ctx);
			if (!rc)
				rc = tb_enc_pages_begin(&pe->prec, io->out,
							pe->rec_pages);
			if (!rc)
				rc = tb_enc_pages_add(&pe->prec, pfn, enc,
						      pe->encbuf, len);
		}
		if (!rc)
			shadow_update(pe, pfn, page, enc);
	}
	if (!rc)
		rc = tb_enc_pages_finish(&pe->prec);
	if (!rc)
		rc = io->flush(io->ctx);
	return rc;
}
