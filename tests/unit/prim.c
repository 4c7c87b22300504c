// SPDX-License-Identifier: MIT
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "prim.h"
#include "tiber/codec.h"

void prim_fill(uint8_t *p, unsigned seed)
{
	unsigned i;

	for (i = 0; i < TB_PAGE_SIZE; i++)
		p[i] = (uint8_t)(seed * 31 + i * (seed | 1));
}

/* Encode one epoch of @pfns into pr->out (as the engine does). */
static void disk_rec(struct prim *pr, uint64_t off, const uint8_t *p,
		     uint32_t len)
{
	ck_assert_int_eq(
		tb_enc_disk_write(&pr->out, 0, off, p, len, pr->scratch), 0);
	tb_digest_disk_write(&pr->dig, 0, off, p, len);
}

/* The disk records of an epoch, as the engine sends them; returns their
 * decoded bytes.  FULL: DISK_INFO and every non-zero 64 KiB of the image
 * (the backup's fresh image is zero); else the pending writes in order. */
static uint64_t prim_encode_disk(struct prim *pr, bool full)
{
	static const uint8_t zero[65536];
	uint64_t bytes = 0, off;
	unsigned i;

	if (!pr->scratch)
		pr->scratch = malloc(TB_DISK_LZ4_MAX);
	ck_assert_ptr_nonnull(pr->scratch);
	if (full) {
		struct tb_disk_info di = {
			.disk = 0,
			.flags = pr->keep_base ? TB_DISK_KEEP : 0,
			.size = PRIM_DISK_SIZE,
			.gen = 77,
			.base_epoch = pr->keep_base,
		};

		ck_assert_int_eq(tb_enc_disk_info(&pr->out, &di), 0);
		tb_digest_disk_info(&pr->dig, &di);
	}
	if (full && !pr->keep_base) {
		for (off = 0; off < PRIM_DISK_SIZE; off += sizeof(zero)) {
			if (!memcmp(pr->disk + off, zero, sizeof(zero)))
				continue;
			disk_rec(pr, off, pr->disk + off, sizeof(zero));
			bytes += sizeof(zero);
		}
	} else {
		for (i = 0; i < pr->npend; i++) { /* incremental or KEEP */
			disk_rec(pr, pr->pend[i].off, pr->pend[i].data,
				 pr->pend[i].len);
			bytes += pr->pend[i].len;
		}
	}
	pr->npend = 0;
	return bytes;
}

void prim_disk_write(struct prim *pr, uint64_t off, const void *p, uint32_t len)
{
	ck_assert_uint_lt(pr->npend, PRIM_PEND_MAX);
	ck_assert_uint_le(len, PRIM_WRITE_MAX);
	ck_assert_uint_le(off + len, PRIM_DISK_SIZE);
	memcpy(pr->disk + off, p, len);
	pr->pend[pr->npend].off = off;
	pr->pend[pr->npend].len = len;
	memcpy(pr->pend[pr->npend].data, p, len);
	pr->npend++;
}

static int no_flush(void *ctx)
{
	(void)ctx;
	return 0; /* the records stay in pr->out */
}

void prim_encode_epoch(struct prim *pr, uint64_t epoch, bool full,
		       const uint64_t *pfns, size_t n)
{
	struct tb_codec_opts opts = TB_CODEC_OPTS_DEFAULT;
	struct tb_epoch_begin b = { .epoch = epoch,
				    .flags = full ? TB_EPOCH_FULL : 0 };
	struct tb_epoch_end e = { .epoch = epoch };
	struct tb_epoch_enc_io io = { .out = &pr->out,
				      .digest = &pr->dig,
				      .flush = no_flush };
	const char cpu[] = "cpu-state", dev[] = "device-state";
	size_t i;

	ck_assert_uint_le(n, PRIM_NPAGES);
	for (i = 0; i < n; i++) /* staged, as the engine copies them */
		memcpy(pr->staged[i], pr->mem[pfns[i]], TB_PAGE_SIZE);
	ck_assert_int_eq(tb_enc_epoch_begin(&pr->out, &b), 0);
	ck_assert_int_eq(tb_epoch_enc_run(&pr->enc, &opts, pfns,
					  &pr->staged[0][0], n, &io, NULL),
			 0);
	for (i = 0; i < n; i++)
		memcpy(pr->shadow[pfns[i]], pr->mem[pfns[i]], TB_PAGE_SIZE);
	ck_assert_int_eq(tb_enc_state(&pr->out, TB_REC_CPU_STATE, TB_STATE_SIM,
				      0, cpu, sizeof(cpu)),
			 0);
	ck_assert_int_eq(tb_enc_state(&pr->out, TB_REC_DEVICE_STATE,
				      TB_STATE_SIM, 0, dev, sizeof(dev)),
			 0);
	tb_digest_state(&pr->dig, TB_STATE_SIM, 0, cpu, sizeof(cpu));
	tb_digest_state(&pr->dig, TB_STATE_SIM, 0, dev, sizeof(dev));
	e.nr_pages = n;
	e.nr_bytes = n * TB_PAGE_SIZE + sizeof(cpu) + sizeof(dev);
	if (pr->has_disk)
		e.nr_bytes += prim_encode_disk(pr, full);
	e.digest = tb_digest_final(&pr->dig);
	ck_assert_int_eq(tb_enc_epoch_end(&pr->out, &e), 0);
}

void prim_new_link(struct prim *pr)
{
	tb_epoch_enc_forget(&pr->enc);
}

void prim_init(struct prim *pr)
{
	unsigned i;

	memset(pr, 0, sizeof(*pr));
	ck_assert_int_eq(tb_digest_init(&pr->dig), 0);
	ck_assert_int_eq(tb_epoch_enc_init(&pr->enc, PRIM_NPAGES, 16, true), 0);
	for (i = 0; i < PRIM_NPAGES; i++) {
		if (i % 5 == 0)
			memset(pr->mem[i], 0, TB_PAGE_SIZE);
		else
			prim_fill(pr->mem[i], i);
	}
}

void prim_free(struct prim *pr)
{
	tb_buf_free(&pr->out);
	tb_epoch_enc_free(&pr->enc);
	tb_digest_free(&pr->dig);
	free(pr->scratch);
}

struct tb_hello prim_hello(void)
{
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .domid = 3,
			      .page_size = TB_PAGE_SIZE,
			      .nr_pages = PRIM_NPAGES,
			      .uuid = { PRIM_UUID } };
	return h;
}
