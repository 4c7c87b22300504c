// SPDX-License-Identifier: MIT
#include <check.h>
#include <errno.h>
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
void prim_encode_epoch(struct prim *pr, uint64_t epoch, bool full,
		       const uint64_t *pfns, size_t n)
{
	struct tb_codec_opts opts = TB_CODEC_OPTS_DEFAULT;
	struct tb_epoch_begin b = { .epoch = epoch,
				    .flags = full ? TB_EPOCH_FULL : 0 };
	struct tb_epoch_end e = { .epoch = epoch };
	uint8_t enc, buf[TB_CODEC_OUT_MAX];
	const char cpu[] = "cpu-state", dev[] = "device-state";
	uint32_t len;
	size_t i;

	ck_assert_int_eq(tb_enc_epoch_begin(&pr->out, &b), 0);
	ck_assert_int_eq(tb_enc_pages_begin(&pr->prec, &pr->out, 16), 0);
	for (i = 0; i < n; i++) {
		uint64_t p = pfns[i];
		int rc;

		ck_assert_int_eq(
			tb_codec_encode(&opts, pr->mem[p],
					pr->shadow_ok[p] ? pr->shadow[p] : NULL,
					buf, &enc, &len, NULL),
			0);
		tb_digest_page(&pr->dig, p, pr->mem[p]);
		rc = tb_enc_pages_add(&pr->prec, p, enc, buf, len);
		if (rc == -ENOSPC) {
			ck_assert_int_eq(tb_enc_pages_finish(&pr->prec), 0);
			ck_assert_int_eq(
				tb_enc_pages_begin(&pr->prec, &pr->out, 16), 0);
			rc = tb_enc_pages_add(&pr->prec, p, enc, buf, len);
		}
		ck_assert_int_eq(rc, 0);
		memcpy(pr->shadow[p], pr->mem[p], TB_PAGE_SIZE);
		pr->shadow_ok[p] = true;
	}
	ck_assert_int_eq(tb_enc_pages_finish(&pr->prec), 0);
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
	e.digest = tb_digest_final(&pr->dig);
	ck_assert_int_eq(tb_enc_epoch_end(&pr->out, &e), 0);
}

void prim_init(struct prim *pr)
{
	unsigned i;

	memset(pr, 0, sizeof(*pr));
	ck_assert_int_eq(tb_digest_init(&pr->dig), 0);
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
	tb_enc_pages_free(&pr->prec);
	tb_digest_free(&pr->dig);
}

struct tb_hello prim_hello(void)
{
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .domid = 3,
			      .page_size = TB_PAGE_SIZE,
			      .nr_pages = PRIM_NPAGES };
	return h;
}
