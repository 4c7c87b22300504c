// SPDX-License-Identifier: MIT
/* Xen migration stream v2 writer: golden bytes, field-by-field checks
 * against the spec, round trips through our parser, tiber blobs ->
 * image, and the parser's rejections. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/common.h"
#include "../../lib/backend/xen_blob.h"
#include "../../lib/backend/xen_stream.h"

#define PG TB_PAGE_SIZE

/* A memfd of @n pages; page p filled with (p * 7 + 1) & 0xff, except
 * word 0 = p. */
static int make_ram(uint64_t n)
{
	int fd = memfd_create("ram", MFD_CLOEXEC);
	uint8_t page[PG];

	ck_assert_int_ge(fd, 0);
	for (uint64_t p = 0; p < n; p++) {
		memset(page, (int)((p * 7 + 1) & 0xff), PG);
		tb_put_le64(page, p);
		ck_assert_int_eq(pwrite(fd, page, PG, (off_t)(p * PG)), PG);
	}
	return fd;
}

/* Read the whole memfd back; with TIBER_XS_DUMP=DIR also write it to
 * DIR/<test>.<n> (tests/integration/test_xen_stream_verify.sh feeds
 * those to Xen's verify-stream-v2). */
static uint8_t *slurp_named(int fd, size_t *len, const char *name)
{
	off_t end = lseek(fd, 0, SEEK_END);
	const char *dir = getenv("TIBER_XS_DUMP");
	uint8_t *b;

	ck_assert_int_gt(end, 0);
	b = malloc((size_t)end);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(pread(fd, b, (size_t)end, 0), end);
	*len = (size_t)end;
	if (dir && name) {
		char path[512];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		f = fopen(path, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(b, 1, *len, f), *len);
		fclose(f);
	}
	return b;
}
#define slurp(fd, len) slurp_named(fd, len, NULL)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------ golden */

/* One page at pfn 0, pfn 1 a hole, a 4-byte HVM context, no TSC, one
 * param: every byte of the libxc stream by hand from the spec. */
START_TEST(golden_hvm_libxc)
{
	static const uint8_t ctx[4] = { 0xde, 0xad, 0xbe, 0xef };
	struct tb_xs_hvm_param prm[2] = { { 1, 0xfeffc }, { 9, 0 } };
	struct tb_xs_image img = { 0 };
	struct tb_bitmap holes;
	struct tb_xs_stats st;
	uint8_t exp[24 + 16 + 8 + 8 + 16 + PG + 8 + 24 + 8 + 8 + 8];
	uint8_t *b, *e = exp;
	size_t len;
	int ram = make_ram(2), out = memfd_create("s", 0);

	ck_assert_int_eq(tb_bitmap_init(&holes, 2), 0);
	tb_bitmap_set(&holes, 1);
	img.dom_type = TB_XS_DHDR_TYPE_X86_HVM;
	img.xen_major = 4;
	img.xen_minor = 17;
	img.nr_pages = 2;
	img.mem_fd = ram;
	img.holes = &holes;
	img.hvm_ctx = ctx;
	img.hvm_ctx_len = sizeof(ctx);
	img.params = prm;
	img.nr_params = 2;
	ck_assert_int_eq(tb_xs_write_libxc(out, &img, &st), 0);
	b = slurp_named(out, &len, "golden.libxc");

	memset(exp, 0, sizeof(exp));
	/* image header: marker all ones, "XENF", version 3, options 0 */
	memset(e, 0xff, 8);
	memcpy(e + 8, "XENF", 4);
	e[15] = 3;
	e += 24;
	/* domain header: type 2 (HVM) LE, page_shift 12, 4.17 */
	e[0] = 2;
	e[4] = 12;
	e[8] = 4;
	e[12] = 17;
	e += 16;
	/* STATIC_DATA_END: type 0x10, length 0 */
	e[0] = 0x10;
	e += 8;
	/* PAGE_DATA: type 1, length 8 + 8 + 4096 = 0x1010 */
	e[0] = 1;
	tb_put_le32(e + 4, 8 + 8 + PG);
	e += 8;
	e[0] = 1; /* count 1, reserved 0 */
	e += 8;
	e += 8;		  /* pfn 0, type NOTAB: all zero */
	memset(e, 1, PG); /* page 0: (0 * 7 + 1), word 0 = 0 */
	memset(e, 0, 8);
	e += PG;
	/* HVM_PARAMS: type 0xa, 8 + 16 (the zero-valued param dropped) */
	e[0] = 0x0a;
	e[4] = 24;
	e += 8;
	e[0] = 1;
	e += 8;
	e[0] = 1;
	e += 8;
	tb_put_le64(e, 0xfeffc);
	e += 8;
	/* HVM_CONTEXT: type 9, length 4, body, 4 bytes padding */
	e[0] = 9;
	e[4] = 4;
	memcpy(e + 8, ctx, 4);
	e += 16;
	/* END */
	e += 8;
	ck_assert_uint_eq((size_t)(e - exp), sizeof(exp));
	ck_assert_uint_eq(len, sizeof(exp));
	ck_assert_int_eq(memcmp(b, exp, sizeof(exp)), 0);
	ck_assert_uint_eq(st.bytes, sizeof(exp));
	ck_assert_uint_eq(st.pages, 1);
	ck_assert_uint_eq(st.pages_skipped, 1);
	ck_assert_uint_eq(st.records, 5);
	free(b);
	tb_bitmap_free(&holes);
	close(ram);
	close(out);
}
END_TEST

/* ------------------------------------------------------------ round trip */

struct collect {
	int ram;
	uint64_t pages_ok, records;
	uint32_t last_type;
	uint64_t pv_types[16];
	size_t nr_pv_types;
	bool params_before_ctx;
	bool seen_params;
	uint32_t vcpu_ids[4];
	size_t nr_vcpus;
};

static int on_rec(void *arg, uint32_t type, const uint8_t *b, uint32_t len)
{
	struct collect *c = arg;

	c->records++;
	c->last_type = type;
	if (type == TB_XS_REC_HVM_PARAMS)
		c->seen_params = true;
	if (type == TB_XS_REC_HVM_CONTEXT)
		c->params_before_ctx = c->seen_params;
	if (type == TB_XS_REC_X86_PV_VCPU_BASIC && c->nr_vcpus < 4)
		c->vcpu_ids[c->nr_vcpus++] = tb_get_le32(b);
	if (type == TB_XS_REC_PAGE_DATA) {
		uint32_t n = tb_get_le32(b);
		const uint8_t *data = b + 8 + 8 * (size_t)n;

		for (uint32_t i = 0; i < n; i++) {
			uint64_t ent = tb_get_le64(b + 8 + 8 * (size_t)i);
			uint64_t pfn = ent & TB_XS_PFN_MASK;
			unsigned t = (unsigned)(ent >> 60);
			uint8_t ref[PG];

			if (t != 0 && c->nr_pv_types < 16)
				c->pv_types[c->nr_pv_types++] = ent;
			if (t == TB_XS_PF_XTAB || t == TB_XS_PF_XALLOC)
				continue;
			ck_assert_int_eq(
				pread(c->ram, ref, PG, (off_t)(pfn * PG)), PG);
			if (!memcmp(ref, data, PG))
				c->pages_ok++;
			data += PG;
		}
	}
	return 0;
}

START_TEST(roundtrip_hvm_xl)
{
	static const char cfg[] = "name = \"g\"\ntype = \"pvh\"\nmemory = 8\n";
	uint8_t ctx[100];
	struct tb_xs_hvm_param prm[3] = {
		{ 1, 0xfeffc },
		{ 17, 0xfeffd },
		{ 12, 0xfeffb000 },
	};
	uint64_t n = 3000; /* three PAGE_DATA batches */
	struct tb_xs_image img = { 0 };
	struct tb_xs_parsed p;
	struct tb_bitmap holes;
	struct tb_xs_stats st;
	struct collect c = { 0 };
	const char *why = NULL;
	int ram = make_ram(n), out = memfd_create("s", 0);
	uint8_t *b;
	size_t len, off;

	for (size_t i = 0; i < sizeof(ctx); i++)
		ctx[i] = (uint8_t)i;
	ck_assert_int_eq(tb_bitmap_init(&holes, n), 0);
	tb_bitmap_set_range(&holes, 1000, 500);
	img.dom_type = TB_XS_DHDR_TYPE_X86_HVM;
	img.xen_major = 4;
	img.xen_minor = 17;
	img.nr_pages = n;
	img.mem_fd = ram;
	img.holes = &holes;
	img.have_tsc = true;
	img.tsc_mode = 2;
	img.tsc_khz = 2000000;
	img.tsc_nsec = 123456789;
	img.tsc_incarnation = 3;
	img.hvm_ctx = ctx;
	img.hvm_ctx_len = sizeof(ctx);
	img.params = prm;
	img.nr_params = 3;
	ck_assert_int_eq(tb_xs_write_xl(out, cfg, strlen(cfg), &img, &st), 0);
	b = slurp_named(out, &len, "hvm.xl");
	/* the xl header + config text is unaligned; the rest is records */
	ck_assert_uint_eq((len - 52 - strlen(cfg)) % 8, 0);
	ck_assert_uint_eq(st.bytes, len);

	/* xl header: magic, LE byteorder 0x01020304, flags 0, optional
	 * data = u32 config length + config */
	ck_assert_int_eq(memcmp(b, "Xen saved domain, xl format\n \0 \r", 32),
			 0);
	ck_assert_uint_eq(tb_get_le32(b + 32), 0x01020304);
	ck_assert_uint_eq(tb_get_le32(b + 36), 2); /* STREAMv2 */
	ck_assert_uint_eq(tb_get_le32(b + 44), 4 + strlen(cfg));
	ck_assert_uint_eq(tb_get_le32(b + 48), strlen(cfg));
	ck_assert_int_eq(memcmp(b + 52, cfg, strlen(cfg)), 0);
	/* libxl header (big-endian) then LIBXC_CONTEXT (empty) */
	off = 52 + strlen(cfg);
	ck_assert_int_eq(memcmp(b + off, "LibxlFmt", 8), 0);
	ck_assert_uint_eq(be32(b + off + 8), 2);
	ck_assert_uint_eq(be32(b + off + 12), 0);
	ck_assert_uint_eq(tb_get_le32(b + off + 16), 1);
	ck_assert_uint_eq(tb_get_le32(b + off + 20), 0);
	/* libxc image header follows */
	ck_assert_int_eq(memcmp(b + off + 24 + 8, "XENF", 4), 0);
	/* last record: libxl END */
	ck_assert_uint_eq(tb_get_le64(b + len - 8), 0);

	c.ram = ram;
	ck_assert_msg(tb_xs_parse(b, len, &p, on_rec, &c, &why) == 0, "%s",
		      why);
	ck_assert(p.xl_header && p.libxl);
	ck_assert_uint_eq(p.xl_config_len, strlen(cfg));
	ck_assert_int_eq(memcmp(p.xl_config, cfg, strlen(cfg)), 0);
	ck_assert_uint_eq(p.dom_type, TB_XS_DHDR_TYPE_X86_HVM);
	ck_assert_uint_eq(p.xen_major, 4);
	ck_assert_uint_eq(p.xen_minor, 17);
	ck_assert_uint_eq(p.pages, n - 500);
	ck_assert_uint_eq(c.pages_ok, n - 500);
	ck_assert_uint_eq(p.max_pfn, n - 1);
	ck_assert(p.seen_tsc && p.seen_hvm_params && p.seen_hvm_ctx);
	ck_assert(c.params_before_ctx);
	ck_assert_uint_eq(c.last_type, TB_XS_REC_END);
	/* SDE + 3 PAGE_DATA (1024, 1024, 452) + TSC + PARAMS + CTX + END */
	ck_assert_uint_eq(p.records, 8);
	ck_assert_uint_eq(st.records, 8 + 2);
	free(b);
	tb_bitmap_free(&holes);
	close(ram);
	close(out);
}
END_TEST

START_TEST(roundtrip_pv)
{
	uint8_t shinfo[PG], vc0[5000], vc2[5000];
	uint64_t p2m[2] = { 40, 41 };
	struct tb_xs_stats st;
	struct tb_xs_vcpu vcpus[3] = {
		{ 0, vc0, sizeof(vc0) },
		{ 1, NULL, 0 },
		{ 2, vc2, sizeof(vc2) },
	};
	uint8_t types[600];
	uint64_t n = 600;
	struct tb_xs_image img = { 0 };
	struct tb_xs_parsed p;
	struct collect c = { 0 };
	const char *why = NULL;
	int ram = make_ram(n), out = memfd_create("s", 0);
	uint8_t *b;
	size_t len;

	memset(shinfo, 0x5a, sizeof(shinfo));
	memset(vc0, 1, sizeof(vc0));
	memset(vc2, 2, sizeof(vc2));
	memset(types, 0, sizeof(types));
	types[10] = TB_XS_PF_L4TAB | TB_XS_PF_LPINTAB;
	types[11] = TB_XS_PF_L1TAB;
	types[12] = TB_XS_PF_XTAB;
	img.dom_type = TB_XS_DHDR_TYPE_X86_PV;
	img.xen_major = 4;
	img.xen_minor = 17;
	img.nr_pages = n;
	img.mem_fd = ram;
	img.pfn_types = types;
	img.guest_width = 8;
	img.pt_levels = 4;
	img.p2m_end_pfn = n - 1;
	img.p2m_frames = p2m;
	img.nr_p2m_frames = 2;
	img.shared_info = shinfo;
	img.vcpus = vcpus;
	img.nr_vcpus = 3;
	/* all-zero pages: pfn 20 (NOTAB) goes as XALLOC without data, the
	 * L1 table at pfn 11 keeps its type and data */
	{
		uint8_t z[PG] = { 0 };

		ck_assert_int_eq(pwrite(ram, z, PG, 20 * PG), PG);
		ck_assert_int_eq(pwrite(ram, z, PG, 11 * PG), PG);
	}
	ck_assert_int_eq(tb_xs_write_libxc(out, &img, &st), 0);
	ck_assert_uint_eq(st.pages_zero, 1);
	b = slurp_named(out, &len, "pv.libxc");
	/* first record after the headers: X86_PV_INFO {8, 4} */
	ck_assert_uint_eq(tb_get_le32(b + 40), TB_XS_REC_X86_PV_INFO);
	ck_assert_uint_eq(tb_get_le32(b + 44), 8);
	ck_assert_uint_eq(b[48], 8);
	ck_assert_uint_eq(b[49], 4);
	ck_assert_uint_eq(tb_get_le32(b + 56), TB_XS_REC_STATIC_DATA_END);
	/* P2M_FRAMES: start 0, end 599, frames 40 41 */
	ck_assert_uint_eq(tb_get_le32(b + 64), TB_XS_REC_X86_PV_P2M_FRAMES);
	ck_assert_uint_eq(tb_get_le32(b + 68), 8 + 16);
	ck_assert_uint_eq(tb_get_le32(b + 72), 0);
	ck_assert_uint_eq(tb_get_le32(b + 76), 599);
	ck_assert_uint_eq(tb_get_le64(b + 80), 40);
	ck_assert_uint_eq(tb_get_le64(b + 88), 41);

	c.ram = ram;
	ck_assert_msg(tb_xs_parse(b, len, &p, on_rec, &c, &why) == 0, "%s",
		      why);
	ck_assert(!p.xl_header && !p.libxl);
	ck_assert_uint_eq(p.dom_type, TB_XS_DHDR_TYPE_X86_PV);
	ck_assert_uint_eq(p.pfns, n);
	ck_assert_uint_eq(p.pages, n - 2); /* XTAB, XALLOC have no data */
	ck_assert_uint_eq(c.pages_ok, n - 2);
	ck_assert_uint_eq(c.nr_pv_types, 4);
	ck_assert_uint_eq(c.pv_types[0], 10 | 0xcull << 60);
	ck_assert_uint_eq(c.pv_types[1], 11 | 0x1ull << 60);
	ck_assert_uint_eq(c.pv_types[2], 12 | 0xfull << 60);
	ck_assert_uint_eq(c.pv_types[3], 20 | 0xeull << 60);
	ck_assert(p.seen_shinfo && p.seen_p2m && p.seen_pv_info);
	/* the offline vCPU 1 is not written; 5000 bytes are padded */
	ck_assert_uint_eq(p.vcpus_basic, 2);
	ck_assert_uint_eq(c.vcpu_ids[0], 0);
	ck_assert_uint_eq(c.vcpu_ids[1], 2);
	ck_assert_uint_eq(len % 8, 0);

	/* inconsistent p2m frame count */
	img.nr_p2m_frames = 1;
	ck_assert_int_eq(tb_xs_write_libxc(out, &img, NULL), -EINVAL);
	free(b);
	close(ram);
	close(out);
}
END_TEST

/* ------------------------------------------------------------ rejections */

static uint8_t *small_stream(size_t *len)
{
	static const uint8_t ctx[12] = { 1 };
	struct tb_xs_image img = { 0 };
	int ram = make_ram(2), out = memfd_create("s", 0);
	uint8_t *b;

	img.dom_type = TB_XS_DHDR_TYPE_X86_HVM;
	img.xen_major = 4;
	img.xen_minor = 17;
	img.nr_pages = 2;
	img.mem_fd = ram;
	img.hvm_ctx = ctx;
	img.hvm_ctx_len = sizeof(ctx);
	ck_assert_int_eq(tb_xs_write_xl(out, NULL, 0, &img, NULL), 0);
	b = slurp(out, len);
	close(ram);
	close(out);
	return b;
}

START_TEST(parser_rejects)
{
	struct tb_xs_parsed p;
	const char *why;
	size_t len, x = 48 + 16 + 8;		/* libxc image header */
	size_t pd = x + 24 + 16 + 8;		/* PAGE_DATA record */
	size_t ctxr = pd + 8 + 8 + 16 + 2 * PG; /* HVM_CONTEXT record */
	uint8_t *b = small_stream(&len), *m = malloc(len);

	ck_assert_int_eq(tb_xs_parse(b, len, &p, NULL, NULL, &why), 0);
	ck_assert(p.xl_header && p.libxl && !p.xl_config_len);
	ck_assert_uint_eq(tb_get_le32(b + pd), TB_XS_REC_PAGE_DATA);
	ck_assert_uint_eq(tb_get_le32(b + ctxr), TB_XS_REC_HVM_CONTEXT);

#define MUT(stmt, msg)                                                      \
	do {                                                                \
		memcpy(m, b, len);                                          \
		stmt;                                                       \
		ck_assert_int_eq(tb_xs_parse(m, len, &p, NULL, NULL, &why), \
				 -EPROTO);                                  \
		ck_assert_str_eq(why, msg);                                 \
	} while (0)

	MUT(m[x] = 0, "bad image header marker");
	MUT(m[x + 15] = 2, "image header version is not 3");
	MUT(m[x + 17] = 1, "image options/reserved not zero (big-endian?)");
	MUT(m[x + 24 + 4] = 13, "page shift not 12 or reserved not zero");
	MUT(tb_put_le32(m + pd + 8, 0), "PAGE_DATA with count 0");
	MUT(m[pd + 16 + 7] = 0x50, "PAGE_DATA unknown page type");
	MUT(m[pd + 16 + 6] = 0x10, "PAGE_DATA pfn reserved bits set");
	MUT(m[pd + 16 + 7] = 0xf0, "PAGE_DATA length does not match its pages");
	MUT(m[ctxr + 8 + 12] = 1, "non-zero record padding");
	MUT(tb_put_le32(m + x + 40, TB_XS_REC_PAGE_DATA),
	    "PAGE_DATA before STATIC_DATA_END");
	MUT(tb_put_le32(m + ctxr, 0x13), "unknown mandatory record");
	MUT(tb_put_le32(m + ctxr, 0x80000013), "HVM stream lacks HVM_CONTEXT");
	MUT(m[len - 8] = 3, "libxl: no END after the libxc stream");
	MUT(m[32] = 5, "xl header byte order");
	/* truncation anywhere fails cleanly */
	for (size_t cut = 0; cut < len; cut += 8)
		ck_assert_int_eq(tb_xs_parse(b, cut, &p, NULL, NULL, &why),
				 -EPROTO);
	free(m);
	free(b);
}
END_TEST

/* ------------------------------------------------------------ blobs */

/* The blob writer (xen_blob.c, tests/unit/test_xen_blob.c pins its bytes) */
static void blob_hdr(struct tb_buf *o, uint32_t kind, uint32_t count)
{
	ck_assert_int_eq(tb_xen_blob_put_hdr(o, kind, count), 0);
}

static void blob_rec(struct tb_buf *o, uint32_t type, uint32_t id,
		     const void *p, uint32_t len)
{
	ck_assert_int_eq(tb_xen_blob_put_rec(o, type, id, p, len), 0);
}

START_TEST(from_blobs)
{
	struct tb_buf cpu = { 0 }, dev = { 0 }, pv = { 0 };
	uint8_t ctx[40], tsc[24] = { 0 }, v[8], holes[32];
	struct tb_xs_blobs ps;
	struct tb_xs_image img;
	int rc;

	memset(ctx, 7, sizeof(ctx));
	blob_hdr(&cpu, 2, 1);
	blob_rec(&cpu, 2, 0, ctx, sizeof(ctx));
	blob_hdr(&dev, 3, 0);
	tb_put_le32(tsc, 1);
	tb_put_le32(tsc + 4, 1000000);
	tb_put_le32(tsc + 8, 2);
	tb_put_le64(tsc + 16, 999);
	blob_rec(&dev, 3, 0, tsc, sizeof(tsc));
	tb_put_le64(v, 0xfeffc);
	blob_rec(&dev, 5, 1, v, 8);  /* STORE_PFN: kept */
	blob_rec(&dev, 5, 10, v, 8); /* TIMER_MODE: dropped */
	blob_rec(&dev, 5, 2, v, 8);  /* STORE_EVTCHN: dropped */

	/* no HOLES record: refused */
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, 100, &ps,
			      &img);
	ck_assert_int_eq(rc, -ENOTSUP);
	ck_assert(strstr(ps.reason, "HOLES"));

	tb_put_le64(holes, 10);
	tb_put_le64(holes + 8, 5);
	tb_put_le64(holes + 16, 90);
	tb_put_le64(holes + 24, 10);
	blob_rec(&dev, TB_XEN_BLOB_REC_HOLES, 0, holes, sizeof(holes));
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, 100, &ps,
			      &img);
	ck_assert_msg(rc == 0, "%s", ps.reason);
	ck_assert_uint_eq(img.dom_type, TB_XS_DHDR_TYPE_X86_HVM);
	ck_assert_uint_eq(img.hvm_ctx_len, sizeof(ctx));
	ck_assert(img.have_tsc);
	ck_assert_uint_eq(img.tsc_mode, 1);
	ck_assert_uint_eq(img.tsc_khz, 1000000);
	ck_assert_uint_eq(img.tsc_incarnation, 2);
	ck_assert_uint_eq(img.tsc_nsec, 999);
	ck_assert_uint_eq(img.nr_params, 1);
	ck_assert_uint_eq(img.params[0].index, 1);
	ck_assert_uint_eq(tb_bitmap_count(img.holes), 15);
	ck_assert(tb_bitmap_test(img.holes, 14));
	ck_assert(!tb_bitmap_test(img.holes, 15));
	ck_assert(tb_bitmap_test(img.holes, 99));
	tb_xs_blobs_free(&ps);

	/* a hole range past the pfn space */
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, 95, &ps,
			      &img);
	ck_assert_int_eq(rc, -EINVAL);

	/* PV CPU blob with HVM device records: not enough for PV */
	blob_hdr(&pv, 1, 1);
	blob_rec(&pv, 1, 0, ctx, sizeof(ctx));
	rc = tb_xs_from_blobs(pv.data, pv.len, dev.data, dev.len, 100, &ps,
			      &img);
	ck_assert_int_eq(rc, -ENOTSUP);
	ck_assert(strstr(ps.reason, "PV_INFO"));
	/* garbage */
	rc = tb_xs_from_blobs(ctx, sizeof(ctx), dev.data, dev.len, 100, &ps,
			      &img);
	ck_assert_int_eq(rc, -EINVAL);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
	tb_buf_free(&pv);
}
END_TEST

/* A PV replica's blobs as xen.c writes them: each record missing is
 * named; the complete set becomes a stream the parser accepts with the
 * types, p2m frames and vCPUs of the blobs. */
START_TEST(from_blobs_pv)
{
	enum {
		N = 1024
	};
	struct tb_buf cpu = { 0 }, dev = { 0 };
	uint8_t vc[64], info[16], shinfo[PG], types[24], p2m[16], tsc[24];
	struct tb_xs_blobs ps;
	struct tb_xs_image img;
	struct tb_xs_parsed p;
	struct collect c = { 0 };
	const char *why = NULL;
	int ram = make_ram(N), out = memfd_create("s", 0), rc;
	uint8_t *b;
	size_t len;

	memset(vc, 3, sizeof(vc));
	memset(shinfo, 0x11, sizeof(shinfo));
	memset(tsc, 0, sizeof(tsc));
	blob_hdr(&cpu, 1, 2);
	blob_rec(&cpu, 1, 0, vc, sizeof(vc));
	blob_rec(&cpu, 1, 1, NULL, 0); /* offline */
	blob_hdr(&dev, 3, 0);
	blob_rec(&dev, 3, 0, tsc, sizeof(tsc));
	tb_put_le32(info, 8);
	tb_put_le32(info + 4, 4);
	tb_put_le64(info + 8, N);
	tb_put_le64(types, 5 | (uint64_t)(TB_XS_PF_L4TAB | TB_XS_PF_LPINTAB)
					   << 60);
	tb_put_le64(types + 8, 6 | (uint64_t)TB_XS_PF_L1TAB << 60);
	tb_put_le64(types + 16, (N - 1) | (uint64_t)TB_XS_PF_XTAB << 60);
	tb_put_le64(p2m, 700);
	tb_put_le64(p2m + 8, 701);

	static const struct {
		uint32_t type;
		const char *missing;
	} steps[] = {
		{ 6, "PV_INFO" },
		{ 4, "SHINFO" },
		{ TB_XEN_BLOB_REC_PV_TYPES, "PV_TYPES" },
		{ TB_XEN_BLOB_REC_PV_P2M, "PV_P2M" },
	};
	for (size_t i = 0; i < TB_ARRAY_SIZE(steps); i++) {
		rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, N,
				      &ps, &img);
		ck_assert_int_eq(rc, -ENOTSUP);
		ck_assert_msg(strstr(ps.reason, steps[i].missing), "%s",
			      ps.reason);
		switch (steps[i].type) {
		case 6:
			blob_rec(&dev, 6, 0, info, sizeof(info));
			break;
		case 4:
			blob_rec(&dev, 4, 0, shinfo, sizeof(shinfo));
			break;
		case TB_XEN_BLOB_REC_PV_TYPES:
			blob_rec(&dev, steps[i].type, 0, types, sizeof(types));
			break;
		default:
			blob_rec(&dev, steps[i].type, 0, p2m, sizeof(p2m));
		}
	}
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, N, &ps,
			      &img);
	ck_assert_msg(rc == 0, "%s", ps.reason);
	ck_assert_uint_eq(img.dom_type, TB_XS_DHDR_TYPE_X86_PV);
	ck_assert_uint_eq(img.nr_vcpus, 2);
	ck_assert_uint_eq(img.p2m_end_pfn, N - 1);
	ck_assert_uint_eq(img.nr_p2m_frames, 2);
	ck_assert_uint_eq(img.pfn_types[5], TB_XS_PF_L4TAB | TB_XS_PF_LPINTAB);
	ck_assert_uint_eq(img.pfn_types[7], TB_XS_PF_NOTAB);
	img.mem_fd = ram;
	ck_assert_int_eq(tb_xs_write_xl(out, "type = \"pv\"\n", 12, &img, NULL),
			 0);
	b = slurp_named(out, &len, "pv-blobs.xl");
	c.ram = ram;
	ck_assert_msg(tb_xs_parse(b, len, &p, on_rec, &c, &why) == 0, "%s",
		      why);
	ck_assert(p.xl_header && p.libxl && p.seen_p2m && p.seen_shinfo);
	ck_assert_uint_eq(p.vcpus_basic, 1);
	ck_assert_uint_eq(c.nr_pv_types, 3);
	ck_assert_uint_eq(c.pv_types[0], 5 | 0xcull << 60);
	ck_assert_uint_eq(c.pages_ok, N - 1); /* all but the XTAB pfn */
	tb_xs_blobs_free(&ps);
	free(b);

	/* a type entry past the pfn space is malformed, not truncated */
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, N - 1, &ps,
			      &img);
	ck_assert_int_eq(rc, -EINVAL);
	/* no vCPU 0 */
	cpu.len = 16;
	blob_rec(&cpu, 1, 1, vc, sizeof(vc));
	rc = tb_xs_from_blobs(cpu.data, cpu.len, dev.data, dev.len, N, &ps,
			      &img);
	ck_assert_int_eq(rc, -EINVAL);
	tb_buf_free(&cpu);
	tb_buf_free(&dev);
	close(ram);
	close(out);
}
END_TEST

START_TEST(write_errors)
{
	static const uint8_t ctx[8] = { 1 };
	struct tb_xs_image img = { 0 };
	int ram = make_ram(4), pfd[2];

	img.dom_type = TB_XS_DHDR_TYPE_X86_HVM;
	img.nr_pages = 8; /* RAM shorter than the pfn space */
	img.mem_fd = ram;
	img.hvm_ctx = ctx;
	img.hvm_ctx_len = sizeof(ctx);
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	close(pfd[0]);
	/* EPIPE (SIGPIPE ignored) or -EIO: never success */
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_lt(tb_xs_write_libxc(pfd[1], &img, NULL), 0);
	close(pfd[1]);
	img.dom_type = 7;
	ck_assert_int_eq(tb_xs_write_libxc(ram, &img, NULL), -EINVAL);
	close(ram);
}
END_TEST

static Suite *xen_stream_suite(void)
{
	Suite *s = suite_create("xen_stream");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, golden_hvm_libxc);
	tcase_add_test(tc, roundtrip_hvm_xl);
	tcase_add_test(tc, roundtrip_pv);
	tcase_add_test(tc, from_blobs_pv);
	tcase_add_test(tc, parser_rejects);
	tcase_add_test(tc, from_blobs);
	tcase_add_test(tc, write_errors);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(xen_stream_suite)
