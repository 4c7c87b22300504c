// SPDX-License-Identifier: MIT
/* The replica stages epochs and applies only complete, verified ones. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check_main.h"
#include "prim.h"
#include "tiber/codec.h"
#include "tiber/replica.h"
#include "tiber/stream.h"

#define NPAGES PRIM_NPAGES

/* Feed pr->out through a real decoder into the replica, letting @patch
 * (may be NULL) tamper with each decoded record first; return the last
 * tb_replica_rec result (stops at the first error). */
static int feed_patched(struct tb_replica *r, struct prim *pr, size_t cut,
			void (*patch)(struct tb_rec *rec), int *serr)
{
	struct tb_dec d;
	struct tb_rec rec;
	int rc, last = 0;

	tb_dec_init(&d);
	ck_assert_int_eq(tb_dec_feed(&d, pr->out.data, cut ? cut : pr->out.len),
			 0);
	while ((rc = tb_dec_next(&d, &rec)) == 1) {
		if (patch)
			patch(&rec);
		last = tb_replica_rec(r, &rec, serr);
		if (last < 0)
			break;
	}
	ck_assert_int_ge(rc, 0);
	tb_dec_free(&d);
	tb_buf_reset(&pr->out);
	return last;
}

static int feed(struct tb_replica *r, struct prim *pr, size_t cut, int *serr)
{
	return feed_patched(r, pr, cut, NULL, serr);
}

static void all_pfns(uint64_t *p)
{
	unsigned i;

	for (i = 0; i < NPAGES; i++)
		p[i] = i;
}

static void assert_replica_is(struct tb_replica *r, struct prim *pr)
{
	unsigned i;

	for (i = 0; i < NPAGES; i++)
		ck_assert_msg(!memcmp(r->mem + i * TB_PAGE_SIZE, pr->shadow[i],
				      TB_PAGE_SIZE),
			      "page %u differs", i);
}

/* Shared fixture: a committed full epoch 1. */
static struct prim *pr;
static struct tb_replica rep;

static void setup(void)
{
	struct tb_hello h = prim_hello();
	uint64_t pfns[NPAGES];
	int serr;

	pr = calloc(1, sizeof(*pr));
	prim_init(pr);
	ck_assert_int_eq(tb_replica_init(&rep, &h), 0);
	all_pfns(pfns);
	prim_encode_epoch(pr, 1, true, pfns, NPAGES);
	ck_assert_int_eq(feed(&rep, pr, 0, &serr), 1);
	ck_assert_uint_eq(rep.committed_epoch, 1);
	assert_replica_is(&rep, pr);
}

static void teardown(void)
{
	tb_replica_free(&rep);
	prim_free(pr);
	free(pr);
}

START_TEST(full_then_incremental_epochs_apply_bit_exact)
{
	uint64_t pfns[] = { 1, 2, 7, 40 };
	int serr, i;

	for (i = 0; i < 4; i++) {
		pr->mem[pfns[i]][100] ^= 0x5a; /* small delta: XOR_LZ4 */
		pr->mem[pfns[i]][4000] = (uint8_t)i;
	}
	prim_encode_epoch(pr, 2, false, pfns, 4);
	ck_assert_int_eq(feed(&rep, pr, 0, &serr), 1);
	ck_assert_uint_eq(rep.committed_epoch, 2);
	assert_replica_is(&rep, pr);
	ck_assert_uint_eq(rep.cpu_state.len, sizeof("cpu-state"));
}
END_TEST

/* Encode epoch 2 touching page 9, but do not update the shadow's idea of
 * what is committed: the test checks the replica still has epoch 1. */
static void make_epoch2(uint8_t before[TB_PAGE_SIZE])
{
	uint64_t pfn = 9;

	memcpy(before, rep.mem + pfn * TB_PAGE_SIZE, TB_PAGE_SIZE);
	prim_fill(pr->mem[pfn], 999);
	prim_encode_epoch(pr, 2, false, &pfn, 1);
}

static void assert_unchanged(const uint8_t before[TB_PAGE_SIZE])
{
	ck_assert_uint_eq(rep.committed_epoch, 1);
	ck_assert(!memcmp(rep.mem + 9 * TB_PAGE_SIZE, before, TB_PAGE_SIZE));
	ck_assert(!rep.in_epoch);
}

START_TEST(truncated_epoch_is_discarded)
{
	uint8_t before[TB_PAGE_SIZE];
	size_t len;
	int serr;

	make_epoch2(before);
	len = pr->out.len;
	/* Everything but EPOCH_END (40-byte body + 16 framing). */
	ck_assert_int_eq(feed(&rep, pr, len - 56, &serr), 0);
	ck_assert(rep.in_epoch);
	tb_replica_abort(&rep);
	assert_unchanged(before);
}
END_TEST

/*
 * The digest covers the decoded pages, so a replica whose committed page
 * is not the primary's shadow (the XOR base) fails the next delta epoch
 * even though every record's CRC holds.  _i: 0 the XXH3-over-bytes
 * digest, 1 the TB_FEAT_PAGE_CRC one.
 */
START_TEST(replica_that_diverged_from_the_shadow_fails_the_digest)
{
	uint64_t pfn = 1;
	int serr;

	if (_i) {
		pr->dig.page_crc = true;
		tb_replica_set_features(&rep, TB_FEAT_PAGE_CRC);
	}
	pr->mem[pfn][100] ^= 0x5a; /* a small delta */
	prim_encode_epoch(pr, 2, false, &pfn, 1);
	rep.mem[pfn * TB_PAGE_SIZE + 2000] ^= 1; /* the base differs */
	ck_assert_int_lt(feed(&rep, pr, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_DIGEST);
	ck_assert_uint_eq(rep.committed_epoch, 1);
}
END_TEST

static void flip_digest(struct tb_rec *rec)
{
	if (rec->type == TB_REC_EPOCH_END)
		rec->u.end.digest ^= 1;
}

START_TEST(bad_digest_is_rejected_and_replica_kept)
{
	uint8_t before[TB_PAGE_SIZE];
	int serr;

	make_epoch2(before);
	ck_assert_int_lt(feed_patched(&rep, pr, 0, flip_digest, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_DIGEST);
	ck_assert(strstr(rep.err, "digest"));
	assert_unchanged(before);
}
END_TEST

/*
 * An epoch whose XOR pages were decoded in place, then failed (bad
 * digest, cut short and aborted, a bad page after them): the replica is
 * the committed image again, byte for byte, and the next good epoch
 * applies on top of it.
 */
static unsigned enc_seen[8];

static void count_encodings(struct tb_rec *rec)
{
	struct tb_page_desc d;
	uint32_t i;

	if (rec->type != TB_REC_PAGE_DATA)
		return;
	for (i = 0; i < rec->u.pages.nr_pages; i++) {
		tb_page_desc_get(&rec->u.pages, i, &d);
		enc_seen[d.enc & 7]++;
	}
}

static void flip_digest_counting(struct tb_rec *rec)
{
	count_encodings(rec);
	flip_digest(rec);
}

static void last_pfn_beyond_guest(struct tb_rec *rec)
{
	if (rec->type == TB_REC_PAGE_DATA && rec->u.pages.nr_pages > 1)
		tb_put_le64((uint8_t *)rec->u.pages.pfns_le +
				    8 * (size_t)(rec->u.pages.nr_pages - 1),
			    NPAGES);
}

START_TEST(failed_epoch_takes_its_in_place_pages_back_out)
{
	static uint8_t before[NPAGES][TB_PAGE_SIZE];
	uint64_t pfns[] = { 1, 2, 3, 4, 6, 8 };
	unsigned i, k, how = (unsigned)_i;
	int serr;

	memcpy(before, rep.mem, sizeof(before));
	for (i = 0; i < 3; i++) /* a few bytes: XOR_RLE */
		pr->mem[pfns[i]][100 + i] ^= 0x5a;
	for (k = 0; k < TB_PAGE_SIZE; k += 20) /* scattered: XOR_MASK */
		pr->mem[pfns[3]][k] ^= 0x33;
	for (i = 4; i < 6; i++) /* 2 KiB changed, a pattern: XOR_LZ4 */
		for (k = 0; k < 2048; k++)
			pr->mem[pfns[i]][k * 2] ^= (uint8_t)(k % 7 + 1);
	prim_encode_epoch(pr, 2, false, pfns, 6);
	memset(enc_seen, 0, sizeof(enc_seen));
	if (how == 0) {
		ck_assert_int_lt(feed_patched(&rep, pr, 0, flip_digest_counting,
					      &serr),
				 0);
		ck_assert_int_eq(serr, TB_SERR_BAD_DIGEST);
		ck_assert_uint_ge(enc_seen[TB_ENC_XOR_RLE], 1);
		ck_assert_uint_ge(enc_seen[TB_ENC_XOR_MASK], 1);
		ck_assert_uint_ge(enc_seen[TB_ENC_XOR_LZ4], 1);
	} else if (how == 1) {
		/* everything but EPOCH_END, then the primary is gone */
		ck_assert_int_eq(feed(&rep, pr, pr->out.len - 56, &serr), 0);
		ck_assert(rep.in_epoch);
		tb_replica_abort(&rep);
	} else {
		ck_assert_int_lt(feed_patched(&rep, pr, 0,
					      last_pfn_beyond_guest, &serr),
				 0);
		ck_assert_int_eq(serr, TB_SERR_BAD_FIELD);
	}
	ck_assert(!rep.in_epoch);
	ck_assert_uint_eq(rep.committed_epoch, 1);
	for (i = 0; i < NPAGES; i++)
		ck_assert_msg(
			!memcmp(rep.mem + (size_t)i * TB_PAGE_SIZE, before[i],
				TB_PAGE_SIZE),
			"page %u not the committed one after a failed epoch",
			i);
	/* the primary sends the same pages again: they apply */
	prim_new_link(pr);
	prim_encode_epoch(pr, 3, false, pfns, 6);
	ck_assert_int_eq(feed(&rep, pr, 0, &serr), 1);
	assert_replica_is(&rep, pr);
}
END_TEST

START_TEST(replayed_and_early_epochs_are_rejected)
{
	uint64_t pfn = 3;
	int serr;

	prim_encode_epoch(pr, 1, false, &pfn, 1); /* replay of committed 1 */
	ck_assert_int_lt(feed(&rep, pr, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_ORDER);
	ck_assert_uint_eq(rep.committed_epoch, 1);
}
END_TEST

START_TEST(incremental_before_full_sync_is_rejected)
{
	struct tb_hello h = prim_hello();
	struct tb_replica r2;
	uint64_t pfn = 3;
	int serr;

	ck_assert_int_eq(tb_replica_init(&r2, &h), 0);
	prim_encode_epoch(pr, 5, false, &pfn, 1);
	ck_assert_int_lt(feed(&r2, pr, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_ORDER);
	ck_assert(!r2.have_commit);
	tb_replica_free(&r2);
}
END_TEST

static void pfn_beyond_guest(struct tb_rec *rec)
{
	if (rec->type == TB_REC_PAGE_DATA)
		tb_put_le64((uint8_t *)rec->u.pages.pfns_le, NPAGES);
}

START_TEST(duplicate_and_out_of_range_pfns_are_rejected)
{
	uint64_t dup[] = { 4, 4 };
	uint8_t before[TB_PAGE_SIZE];
	int serr;

	memcpy(before, rep.mem + 9 * TB_PAGE_SIZE, TB_PAGE_SIZE);
	prim_encode_epoch(pr, 2, false, dup, 2);
	ck_assert_int_lt(feed(&rep, pr, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_FIELD);
	ck_assert(strstr(rep.err, "sent twice"));
	assert_unchanged(before);

	/* A pfn beyond the guest: patch it in the decoded record. */
	prim_encode_epoch(pr, 3, false, dup, 1);
	ck_assert_int_lt(feed_patched(&rep, pr, 0, pfn_beyond_guest, &serr), 0);
	ck_assert(strstr(rep.err, "beyond guest size"));
	assert_unchanged(before);
}
END_TEST

static void corrupt_payload(struct tb_rec *rec)
{
	if (rec->type == TB_REC_PAGE_DATA && rec->u.pages.payload_len)
		((uint8_t *)rec->u.pages.payloads)[0] ^= 0xff;
}

START_TEST(undecodable_payload_is_rejected)
{
	uint8_t before[TB_PAGE_SIZE];
	int serr;

	make_epoch2(before);
	/* Either the codec rejects it or the digest catches the change. */
	ck_assert_int_lt(feed_patched(&rep, pr, 0, corrupt_payload, &serr), 0);
	ck_assert(serr == TB_SERR_CODEC || serr == TB_SERR_BAD_DIGEST);
	assert_unchanged(before);
}
END_TEST

START_TEST(new_full_sync_keeps_old_replica_until_committed)
{
	uint64_t pfns[NPAGES];
	uint8_t before[TB_PAGE_SIZE];
	size_t len;
	int serr;

	memcpy(before, rep.mem + 9 * TB_PAGE_SIZE, TB_PAGE_SIZE);
	prim_fill(pr->mem[9], 1234);
	prim_new_link(pr); /* new link */
	all_pfns(pfns);
	prim_encode_epoch(pr, 7, true, pfns, NPAGES);
	len = pr->out.len;
	ck_assert_int_eq(feed(&rep, pr, len - 56, &serr), 0);
	tb_replica_abort(&rep); /* primary died before END */
	assert_unchanged(before);
	/* A FULL epoch starts from nothing at the backup: no deltas. */
	prim_new_link(pr);
	prim_encode_epoch(pr, 8, true, pfns, NPAGES);
	ck_assert_int_eq(feed(&rep, pr, 0, &serr), 1);
	ck_assert_uint_eq(rep.committed_epoch, 8);
	assert_replica_is(&rep, pr);
}
END_TEST

START_TEST(new_primary_full_sync_may_restart_epoch_numbers)
{
	uint64_t pfns[NPAGES];
	int serr;

	prim_new_link(pr);
	all_pfns(pfns);
	prim_fill(pr->mem[3], 4242);
	prim_encode_epoch(pr, 1, true, pfns, NPAGES); /* committed is 1 */
	ck_assert_int_eq(feed(&rep, pr, 0, &serr), 1);
	ck_assert_uint_eq(rep.committed_epoch, 1);
	assert_replica_is(&rep, pr);
}
END_TEST

START_TEST(zero_pages_of_a_full_sync_take_no_memory)
{
	uint64_t pfns[NPAGES];
	struct stat st;
	unsigned i;
	int serr;

	prim_new_link(pr);
	for (i = 0; i < NPAGES; i++)
		memset(pr->mem[i], 0, TB_PAGE_SIZE);
	pr->mem[7][9] = 1;
	pr->mem[40][0] = 2;
	all_pfns(pfns);
	prim_encode_epoch(pr, 2, true, pfns, NPAGES);
	ck_assert_int_eq(feed(&rep, pr, 0, &serr), 1);
	/* A sparse guest (e.g. PVH's frame space) costs only its data.
	 * (Checked first: reading a tmpfs hole through a shared mapping
	 * allocates it.) */
	ck_assert_int_eq(fstat(rep.mem_fd, &st), 0);
	ck_assert_int_le(st.st_blocks * 512, 2 * TB_PAGE_SIZE);
	assert_replica_is(&rep, pr);
}
END_TEST

/* ---------------------------------------------------------------- disks */

static char ddir[80];
static struct prim *dp;
static struct tb_replica drep;

static void read_image(const struct tb_replica *r, uint8_t *buf)
{
	char path[300];
	FILE *f;

	tb_rdisks_path(&r->disks, 0, path, sizeof(path));
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(buf, 1, PRIM_DISK_SIZE, f), PRIM_DISK_SIZE);
	fclose(f);
}

/* The backup's committed disk image equals @want (PRIM_DISK_SIZE). */
static void assert_disk_is(const struct tb_replica *r, const uint8_t *want)
{
	uint8_t *img = malloc(PRIM_DISK_SIZE);
	uint32_t i;

	ck_assert_ptr_nonnull(img);
	read_image(r, img);
	for (i = 0; i < PRIM_DISK_SIZE && img[i] == want[i]; i++)
		;
	ck_assert_msg(i == PRIM_DISK_SIZE, "disk byte %u differs", i);
	free(img);
}

static void disk_setup(void)
{
	struct tb_hello h = prim_hello();
	uint64_t pfns[NPAGES];
	uint8_t blk[4096];
	int serr;

	snprintf(ddir, sizeof(ddir), "%s/tiber-test-disk.XXXXXX",
		 tb_test_tmp());
	ck_assert_ptr_nonnull(mkdtemp(ddir));
	dp = calloc(1, sizeof(*dp));
	prim_init(dp);
	dp->has_disk = true;
	prim_fill(blk, 7);
	memcpy(dp->disk + 8192, blk, sizeof(blk)); /* data before the sync */
	memcpy(h.name, "vm/../x", 8);		   /* names reach paths */
	ck_assert_int_eq(tb_replica_init(&drep, &h), 0);
	ck_assert_int_eq(tb_replica_disks(&drep, ddir, 1 << 20), 0);
	all_pfns(pfns);
	prim_encode_epoch(dp, 1, true, pfns, NPAGES);
	ck_assert_int_eq(feed(&drep, dp, 0, &serr), 1);
	ck_assert_uint_eq(drep.disks.size[0], PRIM_DISK_SIZE);
	assert_disk_is(&drep, dp->disk);
}

static void disk_teardown(void)
{
	char cmd[128];

	tb_replica_free(&drep);
	prim_free(dp);
	free(dp);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", ddir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(disk_writes_apply_in_order_at_commit_only)
{
	uint8_t a[512], b[1024], c[4096], *before = malloc(PRIM_DISK_SIZE);
	uint64_t pfn = 5;
	char path[300];
	size_t len;
	int serr;

	ck_assert_ptr_nonnull(before);
	/* the image's name keeps only [A-Za-z0-9._-] of the guest name */
	tb_rdisks_path(&drep.disks, 0, path, sizeof(path));
	ck_assert(strstr(path, "/vm_.._x.disk0.img"));
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	prim_fill(c, 3);
	prim_disk_write(dp, 4096, a, sizeof(a));
	prim_disk_write(dp, 4096, b, sizeof(b)); /* the later write wins */
	prim_disk_write(dp, 65536, c, sizeof(c));
	memset(c, 0, sizeof(c));
	prim_disk_write(dp, 8192, c, sizeof(c)); /* zeroes: a ZERO write */
	read_image(&drep, before);
	prim_encode_epoch(dp, 2, false, &pfn, 1);
	/* all but EPOCH_END: nothing of the disk changes */
	len = dp->out.len;
	{
		struct tb_buf keep = { 0 };

		ck_assert_int_eq(tb_buf_append(&keep, dp->out.data, len), 0);
		ck_assert_int_eq(feed(&drep, dp, len - 48, &serr), 0);
		ck_assert(drep.in_epoch);
		assert_disk_is(&drep, before);
		tb_replica_abort(&drep); /* the primary died mid-epoch */
		assert_disk_is(&drep, before);
		ck_assert_int_eq(tb_buf_append(&dp->out, keep.data, len), 0);
		tb_buf_free(&keep);
	}
	ck_assert_int_eq(feed(&drep, dp, 0, &serr), 1);
	ck_assert_uint_eq(drep.committed_epoch, 2);
	assert_disk_is(&drep, dp->disk);
	free(before);
}
END_TEST

static void shift_disk_write(struct tb_rec *rec)
{
	if (rec->type == TB_REC_DISK_WRITE)
		rec->u.disk_write.offset += TB_DISK_SECTOR;
}

static void disk_beyond_size(struct tb_rec *rec)
{
	if (rec->type == TB_REC_DISK_WRITE)
		rec->u.disk_write.offset = PRIM_DISK_SIZE;
}

static void corrupt_lz4(struct tb_rec *rec)
{
	if (rec->type == TB_REC_DISK_WRITE &&
	    rec->u.disk_write.enc == TB_ENC_LZ4)
		rec->u.disk_write.payload_len = 3;
}

START_TEST(bad_disk_records_keep_the_committed_disk)
{
	void (*const patch[])(struct tb_rec *) = { shift_disk_write,
						   disk_beyond_size,
						   corrupt_lz4 };
	const int want[] = { TB_SERR_BAD_DIGEST, TB_SERR_BAD_FIELD,
			     TB_SERR_CODEC };
	uint8_t *before = malloc(PRIM_DISK_SIZE), w[2048];
	uint64_t pfn = 5;
	unsigned i;
	int serr;

	ck_assert_ptr_nonnull(before);
	read_image(&drep, before);
	for (i = 0; i < TB_ARRAY_SIZE(patch); i++) {
		memset(w, 'x' + i, sizeof(w)); /* compressible: LZ4 */
		prim_disk_write(dp, 4096 * (i + 2), w, sizeof(w));
		prim_encode_epoch(dp, 2 + i, false, &pfn, 1);
		ck_assert_int_lt(feed_patched(&drep, dp, 0, patch[i], &serr),
				 0);
		ck_assert_msg(serr == want[i], "case %u: serr %d", i, serr);
		ck_assert_uint_eq(drep.committed_epoch, 1);
		assert_disk_is(&drep, before);
	}
	free(before);
}
END_TEST

START_TEST(disk_records_out_of_order_are_refused)
{
	struct tb_hello h = prim_hello();
	struct tb_replica r2;
	uint8_t w[512] = { 1 };
	uint64_t pfn = 5;
	int serr;

	/* a write to a disk the FULL epoch did not name: BAD_ORDER */
	prim_disk_write(dp, 0, w, sizeof(w));
	tb_buf_reset(&dp->out);
	{
		struct tb_epoch_begin b = { .epoch = 7,
					    .flags = TB_EPOCH_FULL };

		ck_assert_int_eq(tb_enc_epoch_begin(&dp->out, &b), 0);
		ck_assert_int_eq(tb_enc_disk_write(&dp->out, 0, 0, w, sizeof(w),
						   drep.disks.buf),
				 0);
	}
	ck_assert_int_lt(feed(&drep, dp, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_ORDER);
	ck_assert(strstr(drep.err, "before its DISK_INFO"));
	ck_assert_uint_eq(drep.committed_epoch, 1);
	/* DISK_INFO in an incremental epoch: BAD_ORDER */
	{
		struct tb_epoch_begin b = { .epoch = 8 };

		ck_assert_int_eq(tb_enc_epoch_begin(&dp->out, &b), 0);
		struct tb_disk_info di = { .size = 4096, .gen = 1 };

		ck_assert_int_eq(tb_enc_disk_info(&dp->out, &di), 0);
	}
	ck_assert_int_lt(feed(&drep, dp, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_ORDER);
	/* a backup without disk_dir refuses disk records */
	ck_assert_int_eq(tb_replica_init(&r2, &h), 0);
	dp->npend = 0;
	prim_encode_epoch(dp, 1, true, &pfn, 1);
	ck_assert_int_lt(feed(&r2, dp, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_ORDER);
	ck_assert(strstr(r2.err, "disk_dir"));
	ck_assert(!r2.have_commit);
	tb_replica_free(&r2);
}
END_TEST

START_TEST(new_full_sync_keeps_the_old_disk_until_committed)
{
	uint8_t *before = malloc(PRIM_DISK_SIZE), w[4096];
	uint64_t pfns[NPAGES];
	char path[300], tmp[310];
	struct stat st;
	int serr;

	ck_assert_ptr_nonnull(before);
	read_image(&drep, before);
	prim_fill(w, 99);
	prim_disk_write(dp, 0, w, sizeof(w));
	all_pfns(pfns);
	prim_new_link(dp); /* new link */
	prim_encode_epoch(dp, 2, true, pfns, NPAGES);
	ck_assert_int_eq(feed(&drep, dp, dp->out.len - 48, &serr), 0);
	tb_rdisks_path(&drep.disks, 0, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	ck_assert_int_eq(stat(tmp, &st), 0); /* being built beside it */
	assert_disk_is(&drep, before);
	tb_replica_abort(&drep);
	ck_assert_int_ne(stat(tmp, &st), 0); /* gone with the epoch */
	assert_disk_is(&drep, before);
	prim_new_link(dp);
	prim_encode_epoch(dp, 3, true, pfns, NPAGES);
	ck_assert_int_eq(feed(&drep, dp, 0, &serr), 1);
	assert_disk_is(&drep, dp->disk);
	free(before);
}
END_TEST

START_TEST(a_disk_over_max_disk_size_is_refused)
{
	uint8_t *before = malloc(PRIM_DISK_SIZE);
	uint64_t pfns[NPAGES];
	int serr;

	ck_assert_ptr_nonnull(before);
	read_image(&drep, before);
	drep.disks.max_size = PRIM_DISK_SIZE - 4096;
	all_pfns(pfns);
	prim_new_link(dp);
	prim_encode_epoch(dp, 2, true, pfns, NPAGES);
	ck_assert_int_lt(feed(&drep, dp, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_OVERSIZE);
	ck_assert(strstr(drep.err, "max_disk_size"));
	ck_assert_uint_eq(drep.committed_epoch, 1);
	assert_disk_is(&drep, before);
	free(before);
}
END_TEST

START_TEST(an_epoch_over_the_spool_limit_is_refused)
{
	uint8_t *before = malloc(PRIM_DISK_SIZE), w[8192];
	uint64_t pfn = 5;
	unsigned i;
	int serr;

	ck_assert_ptr_nonnull(before);
	read_image(&drep, before);
	drep.disks.spool_max = 4 * sizeof(w);
	for (i = 0; i < 5; i++) { /* random: no compression */
		prim_fill(w, 50 + i);
		prim_fill(w + 4096, 60 + i);
		prim_disk_write(dp, (uint64_t)i * sizeof(w), w, sizeof(w));
	}
	prim_encode_epoch(dp, 2, false, &pfn, 1);
	ck_assert_int_lt(feed(&drep, dp, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_OVERSIZE);
	ck_assert(strstr(drep.err, "exceed"));
	assert_disk_is(&drep, before);
	free(before);
}
END_TEST

START_TEST(resync_keeps_the_copy_and_checks_its_base)
{
	uint8_t *before = malloc(PRIM_DISK_SIZE), w[4096];
	uint64_t pfns[NPAGES], pfn = 5;
	int serr;

	ck_assert_ptr_nonnull(before);
	prim_fill(w, 11);
	prim_disk_write(dp, 4096 * 7, w, sizeof(w));
	prim_encode_epoch(dp, 2, false, &pfn, 1);
	ck_assert_int_eq(feed(&drep, dp, 0, &serr), 1);
	/* the link is lost: the next session re-syncs from epoch 2 */
	all_pfns(pfns);
	prim_fill(w, 12);
	prim_disk_write(dp, 4096 * 9, w, sizeof(w));
	prim_new_link(dp);
	dp->keep_base = 2;
	prim_encode_epoch(dp, 3, true, pfns, NPAGES);
	ck_assert_int_eq(feed(&drep, dp, 0, &serr), 1);
	assert_disk_is(&drep, dp->disk); /* the copy plus the re-sync */
	/* a base this backup never committed: refused, copy kept */
	read_image(&drep, before);
	prim_disk_write(dp, 0, w, sizeof(w));
	dp->keep_base = 9;
	prim_new_link(dp);
	prim_encode_epoch(dp, 4, true, pfns, NPAGES);
	ck_assert_int_lt(feed(&drep, dp, 0, &serr), 0);
	ck_assert_int_eq(serr, TB_SERR_BAD_ORDER);
	ck_assert(strstr(drep.err, "committed 3 only"));
	assert_disk_is(&drep, before);
	/* another generation's copy: refused */
	drep.disks.gen[0] ^= 1;
	dp->keep_base = 3;
	prim_disk_write(dp, 0, w, sizeof(w));
	prim_new_link(dp);
	prim_encode_epoch(dp, 5, true, pfns, NPAGES);
	ck_assert_int_lt(feed(&drep, dp, 0, &serr), 0);
	ck_assert(strstr(drep.err, "another one"));
	assert_disk_is(&drep, before);
	free(before);
}
END_TEST

static Suite *replica_suite(void)
{
	Suite *s = suite_create("replica");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, full_then_incremental_epochs_apply_bit_exact);
	tcase_add_test(tc, truncated_epoch_is_discarded);
	tcase_add_test(tc, bad_digest_is_rejected_and_replica_kept);
	tcase_add_loop_test(tc, failed_epoch_takes_its_in_place_pages_back_out,
			    0, 3);
	tcase_add_loop_test(
		tc, replica_that_diverged_from_the_shadow_fails_the_digest, 0,
		2);
	tcase_add_test(tc, replayed_and_early_epochs_are_rejected);
	tcase_add_test(tc, incremental_before_full_sync_is_rejected);
	tcase_add_test(tc, duplicate_and_out_of_range_pfns_are_rejected);
	tcase_add_test(tc, undecodable_payload_is_rejected);
	tcase_add_test(tc, new_full_sync_keeps_old_replica_until_committed);
	tcase_add_test(tc, new_primary_full_sync_may_restart_epoch_numbers);
	tcase_add_test(tc, zero_pages_of_a_full_sync_take_no_memory);
	suite_add_tcase(s, tc);
	tc = tcase_create("disk");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, disk_setup, disk_teardown);
	tcase_add_test(tc, disk_writes_apply_in_order_at_commit_only);
	tcase_add_test(tc, bad_disk_records_keep_the_committed_disk);
	tcase_add_test(tc, disk_records_out_of_order_are_refused);
	tcase_add_test(tc, new_full_sync_keeps_the_old_disk_until_committed);
	tcase_add_test(tc, an_epoch_over_the_spool_limit_is_refused);
	tcase_add_test(tc, a_disk_over_max_disk_size_is_refused);
	tcase_add_test(tc, resync_keeps_the_copy_and_checks_its_base);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(replica_suite)
