// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the backup's apply path: a primary's stream
 * (after a fixed HELLO of 64 pages) through the decoder and the session
 * checker into a replica with disks (lib/replica.c, lib/replica_disk.c).
 * Oracle: no crash, no sanitizer report; a record the replica refuses
 * leaves no epoch open, the committed epoch and its memory image as
 * they were (byte for byte: XOR pages are applied in place and must be
 * taken back out), and no partial image of a FULL epoch (<disk>.new)
 * behind; an epoch commits only at its EPOCH_END; an epoch left open at
 * the end of the input, aborted, leaves the committed image.  Before the
 * input, the replica commits a FULL epoch 1 the harness makes (64 RAW
 * pages of a pattern, with its true digest), so the input's incremental
 * epochs have a base to decode their XOR pages against; the mutator
 * now and then makes a fresh stream whose pages fit those 64.  Built and
 * run by scripts/fuzz.sh; seeds: the stream harness's valid primary
 * streams.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream_mutator.h"
#include "tiber/replica.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static char dir[64];
static uint8_t image[64 * TB_PAGE_SIZE]; /* the committed memory */

/* Any <disk>.new file left in the disk directory? */
static int partial_images(void)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (de = readdir(d)))
		n += strstr(de->d_name, ".new") != NULL;
	if (d)
		closedir(d);
	return n;
}

static void clean_dir(void)
{
	struct dirent *de;
	char p[400];
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
}

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_replica: oracle violation: %s\n", why);
	abort();
}

/* FULL epoch 1 over 64 pages, with true counts and digest. */
static void make_base(struct tb_buf *out)
{
	struct tb_epoch_begin b = { .epoch = 1, .flags = TB_EPOCH_FULL };
	struct tb_epoch_end e = { .epoch = 1 };
	static uint8_t page[TB_PAGE_SIZE];
	struct tb_page_rec pr = { 0 };
	struct tb_digest dg;
	uint32_t i, k;

	if (tb_digest_init(&dg) || tb_enc_epoch_begin(out, &b) ||
	    tb_enc_pages_begin(&pr, out, 64))
		abort();
	for (i = 0; i < 64; i++) {
		for (k = 0; k < TB_PAGE_SIZE; k++)
			page[k] = (uint8_t)(i * 31 + k / 16);
		if (tb_enc_pages_add(&pr, i, TB_ENC_RAW, page, TB_PAGE_SIZE))
			abort();
		tb_digest_page(&dg, i, page);
	}
	if (tb_enc_pages_finish(&pr) ||
	    tb_enc_state(out, TB_REC_CPU_STATE, TB_STATE_SIM, 0, "cpu", 3) ||
	    tb_enc_state(out, TB_REC_DEVICE_STATE, TB_STATE_SIM, 0, "dev", 3))
		abort();
	tb_enc_pages_free(&pr);
	tb_digest_state(&dg, TB_STATE_SIM, 0, "cpu", 3);
	tb_digest_state(&dg, TB_STATE_SIM, 0, "dev", 3);
	e.nr_pages = 64;
	e.nr_bytes = 64 * TB_PAGE_SIZE + 6;
	e.digest = tb_digest_final(&dg);
	tb_digest_free(&dg);
	if (tb_enc_epoch_end(out, &e))
		abort();
}

/* Feed @len bytes of records (after the HELLO) to @r; the result of the
 * last record, or 0. */
static int feed_base(struct tb_replica *r, struct tb_sess *s)
{
	static struct tb_buf base;
	struct tb_rec rec;
	struct tb_dec d;
	int rc, last = 0, serr;

	if (!base.len)
		make_base(&base);
	tb_dec_init(&d);
	tb_dec_feed(&d, base.data, base.len);
	while ((rc = tb_dec_next(&d, &rec)) == 1) {
		if (tb_sess_check(s, &rec, &d))
			abort();
		last = tb_replica_rec(r, &rec, &serr);
		if (last < 0)
			abort();
	}
	tb_dec_free(&d);
	return last;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .page_size = TB_PAGE_SIZE,
			      .nr_pages = 64,
			      .name = "fuzz" };
	struct tb_rec rec = { .type = TB_REC_HELLO };
	struct tb_replica r;
	struct tb_sess s;
	struct tb_dec d;
	uint64_t committed;
	int rc, serr;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/tiber-fuzz-replica.XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	if (tb_replica_init(&r, &h) || tb_replica_disks(&r, dir, 1 << 20))
		abort();
	tb_sess_init(&s, TB_ROLE_PRIMARY);
	rec.u.hello = h;
	tb_sess_check(&s, &rec, NULL);
	if (feed_base(&r, &s) != 1 || r.committed_epoch != 1)
		fail("the harness's FULL epoch 1 did not commit");
	tb_dec_init(&d);
	tb_dec_feed(&d, data, size);
	memcpy(image, r.mem, sizeof(image));
	while ((rc = tb_dec_next(&d, &rec)) == 1) {
		if (rec.type == TB_REC_HELLO) /* the harness sent it */
			continue;
		if (tb_sess_check(&s, &rec, &d))
			break;
		committed = r.have_commit ? r.committed_epoch : 0;
		rc = tb_replica_rec(&r, &rec, &serr);
		if (rc < 0) {
			if (r.in_epoch)
				fail("an epoch stays open after an error");
			if ((r.have_commit ? r.committed_epoch : 0) !=
			    committed)
				fail("a refused record changed the commit");
			if (partial_images())
				fail("a refused FULL epoch left its image");
			if (memcmp(r.mem, image, sizeof(image)))
				fail("a refused epoch changed the committed memory");
			if (!r.err[0] || serr <= 0 || serr > TB_SERR_MAX)
				fail("an error without a reason or code");
			break;
		}
		if (rc == 1 && rec.type != TB_REC_EPOCH_END)
			fail("a commit before EPOCH_END");
		if (rc == 1)
			memcpy(image, r.mem, sizeof(image));
	}
	tb_replica_abort(&r); /* the primary is gone mid-epoch */
	if (memcmp(r.mem, image, sizeof(image)))
		fail("an aborted epoch changed the committed memory");
	tb_dec_free(&d);
	tb_replica_free(&r);
	clean_dir();
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	struct sm_rng r = { seed };
	static struct tb_page_rec pr;
	static struct tb_buf b;

	/* now and then a fresh stream for this 64-page guest: incremental
	 * epochs whose XOR pages decode in place on the committed base */
	sm_pfn_limit = 64;
	if (sm_below(&r, 4) == 0) {
		tb_buf_reset(&b);
		if (!sm_gen_stream(&r, TB_ROLE_PRIMARY, &b, &pr) &&
		    b.len <= max_size) {
			memcpy(data, b.data, b.len);
			return b.len;
		}
	}
	if (!size || sm_below(&r, 2))
		size = LLVMFuzzerMutate(data, size, max_size);
	if (size && sm_below(&r, 2)) {
		tb_buf_reset(&b);
		if (!tb_buf_append(&b, data, size)) {
			sm_mutate(&r, &b, NULL, 0);
			if (b.len <= max_size) {
				memcpy(data, b.data, b.len);
				size = b.len;
			}
		}
	}
	if (size && sm_below(&r, 4))
		sm_fix_crcs(data, size);
	return size;
}
