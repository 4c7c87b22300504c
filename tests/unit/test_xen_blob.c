// SPDX-License-Identifier: MIT
/*
 * Xen state blobs (lib/backend/xen_blob.h): what the writer puts down the
 * reader gives back, byte for byte, and through tb_xs_from_blobs() (the
 * failover's reader); cut or corrupt blobs are refused with -EINVAL,
 * never read past their end.  No Xen needed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tiber/bitmap.h"
#include "tiber/common.h"
#include "../../lib/backend/xen_blob.h"
#include "../../lib/backend/xen_stream.h"

struct rec {
	uint32_t type, id, len;
	const uint8_t *body;
};

/* Read every record of [p, p + len) into @out (at most @max): the number
 * read, or the negative error of open/next. */
static int read_all(const void *p, size_t len, uint32_t want_kind,
		    struct rec *out, int max)
{
	struct tb_xen_blob b;
	int n = 0, rc;

	rc = tb_xen_blob_open(&b, p, len);
	if (rc)
		return rc;
	ck_assert_uint_eq(b.kind, want_kind);
	for (;;) {
		struct rec r;

		rc = tb_xen_blob_next(&b, &r.type, &r.id, &r.body, &r.len);
		if (rc <= 0)
			return rc ? rc : n;
		ck_assert_int_lt(n, max);
		ck_assert(r.body >= (const uint8_t *)p &&
			  r.body + r.len <= (const uint8_t *)p + len);
		out[n++] = r;
	}
}

START_TEST(header_and_record_have_the_documented_bytes)
{
	static const uint8_t want[] = {
		0x54, 0x42, 0x58, 0x4e, 1, 0, 0, 0, /* "TBXN", version 1 */
		3,    0,    0,	  0,	2, 0, 0, 0, /* kind DEV, count 2 */
		4,    0,    0,	  0,	9, 0, 0, 0, /* type SHINFO, id 9 */
		3,    0,    0,	  0,	0, 0, 0, 0, /* length 3, pad */
		'a',  'b',  'c',		    /* body, not padded */
	};
	struct tb_buf b = { 0 };

	ck_assert_int_eq(tb_xen_blob_put_hdr(&b, TB_XEN_BLOB_DEV, 2), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&b, TB_XEN_BLOB_REC_SHINFO, 9,
					     "abc", 3),
			 0);
	ck_assert_uint_eq(b.len, sizeof(want));
	ck_assert_mem_eq(b.data, want, sizeof(want));
	tb_buf_free(&b);
}
END_TEST

START_TEST(records_read_back_as_written)
{
	uint8_t ctx[200], tail[24];
	struct tb_buf b = { 0 };
	struct tb_xen_blob h;
	struct rec r[8];

	for (size_t i = 0; i < sizeof(ctx); i++)
		ctx[i] = (uint8_t)(i * 7 + 1);
	memset(tail, 0xa5, sizeof(tail));
	ck_assert_int_eq(tb_xen_blob_put_hdr(&b, TB_XEN_BLOB_CPU_PV, 3), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&b, TB_XEN_BLOB_REC_PV_VCPU, 0,
					     ctx, sizeof(ctx)),
			 0);
	/* an offline vCPU: a record without a body */
	ck_assert_int_eq(tb_xen_blob_put_rec(&b, TB_XEN_BLOB_REC_PV_VCPU, 1,
					     NULL, 0),
			 0);
	/* @p NULL: the caller appends the body */
	ck_assert_int_eq(tb_xen_blob_put_rec(&b, TB_XEN_BLOB_REC_PV_VCPU, 2,
					     NULL, sizeof(tail)),
			 0);
	ck_assert_int_eq(tb_buf_append(&b, tail, sizeof(tail)), 0);

	ck_assert_int_eq(tb_xen_blob_open(&h, b.data, b.len), 0);
	ck_assert_uint_eq(h.count, 3);
	ck_assert_int_eq(read_all(b.data, b.len, TB_XEN_BLOB_CPU_PV, r, 8), 3);
	ck_assert_uint_eq(r[0].type, TB_XEN_BLOB_REC_PV_VCPU);
	ck_assert_uint_eq(r[0].id, 0);
	ck_assert_uint_eq(r[0].len, sizeof(ctx));
	ck_assert_mem_eq(r[0].body, ctx, sizeof(ctx));
	ck_assert_uint_eq(r[1].id, 1);
	ck_assert_uint_eq(r[1].len, 0);
	ck_assert_uint_eq(r[2].id, 2);
	ck_assert_uint_eq(r[2].len, sizeof(tail));
	ck_assert_mem_eq(r[2].body, tail, sizeof(tail));
	/* a header alone is an empty blob */
	ck_assert_int_eq(read_all(b.data, TB_XEN_BLOB_HDR_SIZE,
				  TB_XEN_BLOB_CPU_PV, r, 8),
			 0);
	tb_buf_free(&b);
}
END_TEST

START_TEST(holes_are_written_as_runs)
{
	static const uint64_t want[][2] = { { 0, 3 }, { 64, 70 }, { 199, 1 } };
	struct tb_bitmap bm;
	struct tb_buf b = { 0 };
	struct rec r[2];

	ck_assert_int_eq(tb_bitmap_init(&bm, 256), 0);
	/* nothing missing: an empty HOLES record */
	ck_assert_int_eq(tb_xen_blob_put_hdr(&b, TB_XEN_BLOB_DEV, 0), 0);
	ck_assert_int_eq(tb_xen_blob_put_holes(&b, &bm, 200), 0);
	ck_assert_int_eq(read_all(b.data, b.len, TB_XEN_BLOB_DEV, r, 2), 1);
	ck_assert_uint_eq(r[0].type, TB_XEN_BLOB_REC_HOLES);
	ck_assert_uint_eq(r[0].len, 0);

	b.len = 0;
	for (size_t i = 0; i < TB_ARRAY_SIZE(want); i++)
		tb_bitmap_set_range(&bm, want[i][0], want[i][1]);
	tb_bitmap_set(&bm, 230); /* past @nr_pages: not written */
	ck_assert_int_eq(tb_xen_blob_put_hdr(&b, TB_XEN_BLOB_DEV, 0), 0);
	ck_assert_int_eq(tb_xen_blob_put_holes(&b, &bm, 200), 0);
	ck_assert_int_eq(read_all(b.data, b.len, TB_XEN_BLOB_DEV, r, 2), 1);
	ck_assert_uint_eq(r[0].len, 16 * TB_ARRAY_SIZE(want));
	for (size_t i = 0; i < TB_ARRAY_SIZE(want); i++) {
		ck_assert_uint_eq(tb_get_le64(r[0].body + 16 * i), want[i][0]);
		ck_assert_uint_eq(tb_get_le64(r[0].body + 16 * i + 8),
				  want[i][1]);
	}
	tb_bitmap_free(&bm);
	tb_buf_free(&b);
}
END_TEST

/* HVM blobs as xen_state.c writes them, read by the failover's reader. */
static void hvm_blobs(struct tb_buf *cpu, struct tb_buf *dev,
		      const struct tb_bitmap *holes, uint64_t nr_pages)
{
	uint8_t ctx[64], tsc[24], v[8];

	memset(ctx, 0x3c, sizeof(ctx));
	tb_put_le32(tsc, 2);
	tb_put_le32(tsc + 4, 2400000);
	tb_put_le32(tsc + 8, 7);
	tb_put_le32(tsc + 12, 0);
	tb_put_le64(tsc + 16, 123456789);
	tb_put_le64(v, 0xfeffc);
	ck_assert_int_eq(tb_xen_blob_put_hdr(cpu, TB_XEN_BLOB_CPU_HVM, 1), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(cpu, TB_XEN_BLOB_REC_HVM_CTX, 0,
					     ctx, sizeof(ctx)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_hdr(dev, TB_XEN_BLOB_DEV, 0), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(dev, TB_XEN_BLOB_REC_TSC, 0, tsc,
					     sizeof(tsc)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(dev, TB_XEN_BLOB_REC_HVM_PARAM,
					     1 /* STORE_PFN */, v, sizeof(v)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_holes(dev, holes, nr_pages), 0);
}

START_TEST(hvm_blobs_round_trip_through_the_failover_reader)
{
	struct tb_buf cpu = { 0 }, dev = { 0 };
	struct tb_bitmap holes;
	struct tb_xs_blobs ps;
	struct tb_xs_image img;
	unsigned seed = 11;
	int rc;

	ck_assert_int_eq(tb_bitmap_init(&holes, 5000), 0);
	for (uint64_t pfn = 0; pfn < 5000; pfn++)
		if (rand_r(&seed) % 3 == 0)
			tb_bitmap_set(&holes, pfn);
	tb_bitmap_set_range(&holes, 4990, 10); /* a run to the end */
	hvm_blobs(&cpu, &dev, &holes, 5000);
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, 5000, &ps,
			      &img);
	ck_assert_msg(rc == 0, "%s", ps.reason);
	ck_assert_uint_eq(img.dom_type, TB_XS_DHDR_TYPE_X86_HVM);
	ck_assert_uint_eq(img.hvm_ctx_len, 64);
	ck_assert(img.have_tsc);
	ck_assert_uint_eq(img.tsc_mode, 2);
	ck_assert_uint_eq(img.tsc_khz, 2400000);
	ck_assert_uint_eq(img.tsc_incarnation, 7);
	ck_assert_uint_eq(img.tsc_nsec, 123456789);
	ck_assert_uint_eq(img.nr_params, 1);
	ck_assert_uint_eq(img.params[0].value, 0xfeffc);
	ck_assert_uint_eq(tb_bitmap_count(img.holes), tb_bitmap_count(&holes));
	for (uint64_t pfn = 0; pfn < 5000; pfn++)
		ck_assert_int_eq(tb_bitmap_test(img.holes, pfn),
				 tb_bitmap_test(&holes, pfn));
	tb_xs_blobs_free(&ps);
	tb_bitmap_free(&holes);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
}
END_TEST

START_TEST(pv_blobs_round_trip_through_the_failover_reader)
{
	enum {
		N = 1024
	};
	struct tb_buf cpu = { 0 }, dev = { 0 };
	uint8_t vc[96], info[16], shinfo[TB_PAGE_SIZE], types[16], p2m[16];
	struct tb_xs_blobs ps;
	struct tb_xs_image img;
	int rc;

	memset(vc, 0x42, sizeof(vc));
	memset(shinfo, 0x11, sizeof(shinfo));
	tb_put_le32(info, 8);
	tb_put_le32(info + 4, 4);
	tb_put_le64(info + 8, N);
	tb_put_le64(types, 5 | (uint64_t)TB_XS_PF_L4TAB << 60);
	tb_put_le64(types + 8, 6 | (uint64_t)TB_XS_PF_L1TAB << 60);
	tb_put_le64(p2m, 700);
	tb_put_le64(p2m + 8, 701);
	ck_assert_int_eq(tb_xen_blob_put_hdr(&cpu, TB_XEN_BLOB_CPU_PV, 2), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&cpu, TB_XEN_BLOB_REC_PV_VCPU, 0,
					     vc, sizeof(vc)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&cpu, TB_XEN_BLOB_REC_PV_VCPU, 1,
					     NULL, 0),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_hdr(&dev, TB_XEN_BLOB_DEV, 0), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_PV_INFO, 0,
					     info, sizeof(info)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_SHINFO, 0,
					     shinfo, sizeof(shinfo)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_PV_TYPES, 0,
					     types, sizeof(types)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_PV_P2M, 0,
					     p2m, sizeof(p2m)),
			 0);
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, N, &ps,
			      &img);
	ck_assert_msg(rc == 0, "%s", ps.reason);
	ck_assert_uint_eq(img.dom_type, TB_XS_DHDR_TYPE_X86_PV);
	ck_assert_uint_eq(img.nr_vcpus, 2);
	ck_assert_uint_eq(img.vcpus[0].basic_len, sizeof(vc));
	ck_assert_mem_eq(img.vcpus[0].basic, vc, sizeof(vc));
	ck_assert_uint_eq(img.vcpus[1].id, 1);
	ck_assert_uint_eq(img.vcpus[1].basic_len, 0);
	ck_assert_uint_eq(img.guest_width, 8);
	ck_assert_uint_eq(img.pt_levels, 4);
	ck_assert_uint_eq(img.p2m_end_pfn, N - 1);
	ck_assert_mem_eq(img.shared_info, shinfo, sizeof(shinfo));
	ck_assert_uint_eq(img.pfn_types[5], TB_XS_PF_L4TAB);
	ck_assert_uint_eq(img.pfn_types[6], TB_XS_PF_L1TAB);
	ck_assert_uint_eq(img.pfn_types[7], TB_XS_PF_NOTAB);
	ck_assert_uint_eq(img.nr_p2m_frames, 2);
	ck_assert_uint_eq(img.p2m_frames[1], 701);
	tb_xs_blobs_free(&ps);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
}
END_TEST

/* PV blobs of 64 pages: vCPU 0, and a device blob with this PV_INFO
 * and pfn 3 of page type @type. */
static int pv_blobs_with(uint32_t width, uint32_t levels, uint64_t p2m_size,
			 uint8_t type, struct tb_xs_blobs *ps)
{
	struct tb_buf cpu = { 0 }, dev = { 0 };
	uint8_t vc[64] = { 1 }, info[16], shinfo[TB_PAGE_SIZE] = { 0 };
	uint8_t types[8], p2m[8];
	struct tb_xs_image img;
	int rc;

	tb_put_le32(info, width);
	tb_put_le32(info + 4, levels);
	tb_put_le64(info + 8, p2m_size);
	tb_put_le64(types, 3 | (uint64_t)type << 60);
	tb_put_le64(p2m, 9);
	ck_assert_int_eq(tb_xen_blob_put_hdr(&cpu, TB_XEN_BLOB_CPU_PV, 1), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&cpu, TB_XEN_BLOB_REC_PV_VCPU, 0,
					     vc, sizeof(vc)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_hdr(&dev, TB_XEN_BLOB_DEV, 0), 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_PV_INFO, 0,
					     info, sizeof(info)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_SHINFO, 0,
					     shinfo, sizeof(shinfo)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_PV_TYPES, 0,
					     types, sizeof(types)),
			 0);
	ck_assert_int_eq(tb_xen_blob_put_rec(&dev, TB_XEN_BLOB_REC_PV_P2M, 0,
					     p2m, sizeof(p2m)),
			 0);
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, 64, ps,
			      &img);
	if (!rc)
		tb_xs_blobs_free(ps);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
	return rc;
}

/* What the stream writer cannot write (found by tests/fuzz/fuzz_xenblob.c:
 * such blobs were accepted and the failover's writer or xl refused the
 * stream): refused up front as malformed. */
START_TEST(pv_blobs_the_stream_cannot_carry_are_rejected)
{
	struct tb_xs_blobs ps;

	ck_assert_int_eq(pv_blobs_with(8, 4, 64, TB_XS_PF_L1TAB, &ps), 0);
	ck_assert_int_eq(pv_blobs_with(8, 4, 64,
				       TB_XS_PF_L4TAB | TB_XS_PF_LPINTAB, &ps),
			 0);
	ck_assert_int_eq(pv_blobs_with(8, 4, 64, TB_XS_PF_XTAB, &ps), 0);
	/* a 32-bit guest, page-table levels the writer does not write */
	ck_assert_int_eq(pv_blobs_with(4, 3, 64, 0, &ps), -EINVAL);
	ck_assert(strstr(ps.reason, "device blob malformed"));
	ck_assert_int_eq(pv_blobs_with(8, 0xff000004u, 64, 0, &ps), -EINVAL);
	/* a p2m whose end pfn X86_PV_P2M_FRAMES cannot hold (u32) */
	ck_assert_int_eq(pv_blobs_with(8, 4, (1ull << 32) + 1, 0, &ps),
			 -EINVAL);
	/* page types 5..8 are no XEN_DOMCTL_PFINFO_* type */
	for (uint8_t t = 5; t <= 8; t++)
		ck_assert_int_eq(pv_blobs_with(8, 4, 64, t, &ps), -EINVAL);
}
END_TEST

/*
 * A blob cut anywhere inside its header or a record is refused; a cut at
 * a record boundary is a shorter valid blob (the format has no record
 * count), which the failover's reader refuses for the record it lacks.
 */
START_TEST(truncated_blobs_are_rejected)
{
	struct tb_buf cpu = { 0 }, dev = { 0 };
	struct tb_bitmap holes;
	struct tb_xs_blobs ps;
	struct tb_xs_image img;
	struct rec r[8];
	size_t bounds[8], nb = 0;
	struct tb_xen_blob b;
	uint32_t t, id, len;
	const uint8_t *body;
	int rc;

	ck_assert_int_eq(tb_bitmap_init(&holes, 100), 0);
	tb_bitmap_set_range(&holes, 10, 20);
	hvm_blobs(&cpu, &dev, &holes, 100);
	/* the record boundaries of the device blob */
	ck_assert_int_eq(tb_xen_blob_open(&b, dev.data, dev.len), 0);
	bounds[nb++] = b.off;
	while (tb_xen_blob_next(&b, &t, &id, &body, &len) == 1)
		bounds[nb++] = b.off;
	ck_assert_uint_eq(nb, 4);
	ck_assert_uint_eq(bounds[nb - 1], dev.len);

	for (size_t cut = 0; cut < dev.len; cut++) {
		size_t k = 0;

		/* every copy is exactly @cut bytes: ASan sees overreads */
		uint8_t *p = malloc(cut ? cut : 1);

		memcpy(p, dev.data, cut);
		while (k < nb && bounds[k] < cut)
			k++;
		rc = read_all(p, cut, TB_XEN_BLOB_DEV, r, 8);
		if (cut < TB_XEN_BLOB_HDR_SIZE || bounds[k] != cut)
			ck_assert_msg(rc == -EINVAL, "cut %zu: %d", cut, rc);
		else
			ck_assert_int_eq(rc, (int)k);
		rc = tb_xs_from_blobs(cpu.data, cpu.len, p, cut, 100, &ps,
				      &img);
		ck_assert_msg(rc < 0, "cut %zu accepted", cut);
		free(p);
	}
	/* cut inside the CPU blob's context record */
	rc = tb_xs_from_blobs(cpu.data, cpu.len - 1, dev.data, dev.len, 100,
			      &ps, &img);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert(strstr(ps.reason, "CPU blob malformed"));
	/* cut inside the device blob's HOLES record */
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len - 1, 100,
			      &ps, &img);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert(strstr(ps.reason, "device blob malformed"));
	/* cut before the HOLES record: complete records, one missing */
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, bounds[2], 100, &ps,
			      &img);
	ck_assert_int_eq(rc, -ENOTSUP);
	ck_assert(strstr(ps.reason, "HOLES"));
	tb_bitmap_free(&holes);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
}
END_TEST

START_TEST(corrupt_blobs_are_rejected)
{
	struct tb_buf cpu = { 0 }, dev = { 0 };
	struct tb_bitmap holes;
	struct tb_xs_blobs ps;
	struct tb_xs_image img;
	struct tb_xen_blob b;
	struct rec r[8];
	uint8_t *p;
	int rc;

	ck_assert_int_eq(tb_bitmap_init(&holes, 100), 0);
	hvm_blobs(&cpu, &dev, &holes, 100);
	p = malloc(dev.len);
	ck_assert_int_eq(tb_xen_blob_open(&b, NULL, 0), -EINVAL);

	/* header: magic, version */
	memcpy(p, dev.data, dev.len);
	p[0] ^= 1;
	ck_assert_int_eq(tb_xen_blob_open(&b, p, dev.len), -EINVAL);
	rc = tb_xs_from_blobs(cpu.data, cpu.len, p, dev.len, 100, &ps, &img);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert(strstr(ps.reason, "not tiber Xen blobs"));
	memcpy(p, dev.data, dev.len);
	tb_put_le32(p + 4, TB_XEN_BLOB_VERSION + 1);
	ck_assert_int_eq(tb_xen_blob_open(&b, p, dev.len), -EINVAL);

	/* a record length past the end, also one that would wrap */
	memcpy(p, dev.data, dev.len);
	tb_put_le32(p + TB_XEN_BLOB_HDR_SIZE + 8, (uint32_t)dev.len);
	ck_assert_int_eq(read_all(p, dev.len, TB_XEN_BLOB_DEV, r, 8), -EINVAL);
	tb_put_le32(p + TB_XEN_BLOB_HDR_SIZE + 8, UINT32_MAX);
	ck_assert_int_eq(read_all(p, dev.len, TB_XEN_BLOB_DEV, r, 8), -EINVAL);
	rc = tb_xs_from_blobs(cpu.data, cpu.len, p, dev.len, 100, &ps, &img);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert(strstr(ps.reason, "device blob malformed"));

	/* a TSC record too short for its fields */
	memcpy(p, dev.data, dev.len);
	tb_put_le32(p + TB_XEN_BLOB_HDR_SIZE + 8, 8);
	rc = tb_xs_from_blobs(cpu.data, cpu.len, p, dev.len, 100, &ps, &img);
	ck_assert_int_eq(rc, -EINVAL);

	/* blobs of the wrong kind */
	memcpy(p, dev.data, dev.len);
	tb_put_le32(p + 8, TB_XEN_BLOB_CPU_HVM);
	rc = tb_xs_from_blobs(cpu.data, cpu.len, p, dev.len, 100, &ps, &img);
	ck_assert_int_eq(rc, -EINVAL);
	rc = tb_xs_from_blobs(dev.data, dev.len, dev.data, dev.len, 100, &ps,
			      &img);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert(strstr(ps.reason, "unknown CPU blob kind 3"));
	free(p);
	tb_bitmap_free(&holes);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
}
END_TEST

static Suite *xen_blob_suite(void)
{
	Suite *s = suite_create("xen_blob");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, header_and_record_have_the_documented_bytes);
	tcase_add_test(tc, records_read_back_as_written);
	tcase_add_test(tc, holes_are_written_as_runs);
	tcase_add_test(tc, hvm_blobs_round_trip_through_the_failover_reader);
	tcase_add_test(tc, pv_blobs_round_trip_through_the_failover_reader);
	tcase_add_test(tc, pv_blobs_the_stream_cannot_carry_are_rejected);
	tcase_add_test(tc, truncated_blobs_are_rejected);
	tcase_add_test(tc, corrupt_blobs_are_rejected);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(xen_blob_suite)
