// SPDX-License-Identifier: MIT
/* The replica stages epochs and applies only complete, verified ones. */
#include <errno.h>
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
	memset(pr->shadow_ok, 0, sizeof(pr->shadow_ok)); /* new link */
	all_pfns(pfns);
	prim_encode_epoch(pr, 7, true, pfns, NPAGES);
	len = pr->out.len;
	ck_assert_int_eq(feed(&rep, pr, len - 56, &serr), 0);
	tb_replica_abort(&rep); /* primary died before END */
	assert_unchanged(before);
	/* A FULL epoch starts from nothing at the backup: no deltas. */
	memset(pr->shadow_ok, 0, sizeof(pr->shadow_ok));
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

	memset(pr->shadow_ok, 0, sizeof(pr->shadow_ok));
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

	memset(pr->shadow_ok, 0, sizeof(pr->shadow_ok));
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

static Suite *replica_suite(void)
{
	Suite *s = suite_create("replica");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, full_then_incremental_epochs_apply_bit_exact);
	tcase_add_test(tc, truncated_epoch_is_discarded);
	tcase_add_test(tc, bad_digest_is_rejected_and_replica_kept);
	tcase_add_test(tc, replayed_and_early_epochs_are_rejected);
	tcase_add_test(tc, incremental_before_full_sync_is_rejected);
	tcase_add_test(tc, duplicate_and_out_of_range_pfns_are_rejected);
	tcase_add_test(tc, undecodable_payload_is_rejected);
	tcase_add_test(tc, new_full_sync_keeps_old_replica_until_committed);
	tcase_add_test(tc, new_primary_full_sync_may_restart_epoch_numbers);
	tcase_add_test(tc, zero_pages_of_a_full_sync_take_no_memory);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(replica_suite)
