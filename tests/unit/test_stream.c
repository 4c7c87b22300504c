// SPDX-License-Identifier: MIT
/* The wire format: CRC32C, digest, encoders, decoder, session order, and
 * the randomised mutation campaign (tests/fuzz/stream_mutator.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "check_main.h"
#include "tiber/common.h"
#include "tiber/stream.h"

#include "../fuzz/stream_mutator.h"

/* ---------------------------------------------------------------- helpers */

/* A valid primary stream with every primary record type (all four page
 * encodings) and an ERROR at the end. */
static void build_primary(struct tb_buf *b)
{
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .domid = 7,
			      .page_size = TB_PAGE_SIZE,
			      .nr_pages = 262144,
			      .features = TB_FEAT_ALL,
			      .name = "guest-a",
			      .uuid = { 0xde, 0xad, 0xbe, 0xef, [15] = 0x42 } };
	struct tb_epoch_begin be = { .epoch = 5,
				     .flags = TB_EPOCH_FULL,
				     .t_request_ns = 100,
				     .t_suspended_ns = 200,
				     .t_resumed_ns = 300 };
	struct tb_epoch_end en = { .epoch = 5,
				   .nr_pages = 4,
				   .nr_bytes = 4 * 4096 + 12,
				   .digest = 0x1122334455667788ull };
	struct tb_heartbeat hb = { .seq = 3,
				   .time_ns = 123456789,
				   .last_epoch = 4 };
	struct tb_page_rec pr = { 0 };
	uint8_t raw[TB_PAGE_SIZE], lz[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	unsigned i;

	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(tb_enc_hello(b, &h), 0);
	ck_assert_int_eq(tb_enc_epoch_begin(b, &be), 0);
	ck_assert_int_eq(tb_enc_pages_begin(&pr, b, 16), 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, TB_ENC_ZERO, NULL, 0), 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 2, TB_ENC_RAW, raw, sizeof(raw)),
			 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 3, TB_ENC_LZ4, lz, 10), 0);
	ck_assert_int_eq(
		tb_enc_pages_add(&pr, TB_PFN_MAX, TB_ENC_XOR_LZ4, lz, 5), 0);
	ck_assert_int_eq(tb_enc_pages_finish(&pr), 0);
	tb_enc_pages_free(&pr);
	ck_assert_int_eq(tb_enc_state(b, TB_REC_CPU_STATE, TB_STATE_SIM, 0,
				      "cpu-state", 9),
			 0);
	ck_assert_int_eq(tb_enc_state(b, TB_REC_DEVICE_STATE, TB_STATE_XEN_HVM,
				      2, "dev", 3),
			 0);
	ck_assert_int_eq(tb_enc_heartbeat(b, &hb), 0);
	ck_assert_int_eq(tb_enc_epoch_end(b, &en), 0);
	ck_assert_int_eq(
		tb_enc_error(b, TB_ERROR_ERRNO_BASE + ENOSPC, "disk\tfull"), 0);
}

static const uint32_t primary_types[] = {
	TB_REC_HELLO,	  TB_REC_EPOCH_BEGIN,  TB_REC_PAGE_DATA,
	TB_REC_CPU_STATE, TB_REC_DEVICE_STATE, TB_REC_HEARTBEAT,
	TB_REC_EPOCH_END, TB_REC_ERROR,
};

/* Decode @p fed whole; return the final error code (0 clean) and count
 * the records. */
static int decode_whole(const uint8_t *p, size_t len, uint64_t *nrec, char *msg,
			size_t msglen)
{
	struct tb_dec d;
	struct tb_rec rec;
	int rc, err;

	tb_dec_init(&d);
	ck_assert_int_eq(tb_dec_feed(&d, p, len), 0);
	*nrec = 0;
	while ((rc = tb_dec_next(&d, &rec)) == 1)
		(*nrec)++;
	if (rc == 0)
		rc = tb_dec_eof(&d);
	err = d.err;
	ck_assert_int_eq(rc, tb_stream_errno(err));
	if (msg)
		snprintf(msg, msglen, "%s", d.msg);
	if (err)
		ck_assert(d.msg[0]);
	tb_dec_free(&d);
	return err;
}

static int decode_code(const struct tb_buf *b)
{
	uint64_t n;

	return decode_whole(b->data, b->len, &n, NULL, 0);
}

/* A copy of the one record in @rec with its body patched at @off (@width
 * bytes, little-endian) and a correct CRC. */
static void patch_rec(struct tb_buf *out, const struct tb_buf *rec, size_t off,
		      int width, uint64_t val)
{
	uint32_t type = tb_get_le32(rec->data),
		 len = tb_get_le32(rec->data + 4);
	uint8_t body[8192];

	ck_assert_uint_le(len, sizeof(body));
	memcpy(body, rec->data + 8, len);
	ck_assert_uint_le(off + width, len);
	if (width == 1)
		body[off] = (uint8_t)val;
	else if (width == 4)
		tb_put_le32(body + off, (uint32_t)val);
	else
		tb_put_le64(body + off, val);
	tb_buf_reset(out);
	ck_assert_int_eq(sm_put_raw(out, type, body, len), 0);
}

/* ---------------------------------------------------------------- CRC */

START_TEST(crc32c_check_values_both_paths)
{
	static const uint8_t iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
		0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	uint32_t (*const fns[])(uint32_t, const void *,
				size_t) = { tb_crc32c, tb_crc32c_sw,
					    tb_crc32c_hw };
	uint8_t zero[32], ones[32], inc[32], dec[32];
	unsigned i, f;

	memset(zero, 0, sizeof(zero));
	memset(ones, 0xff, sizeof(ones));
	for (i = 0; i < 32; i++) {
		inc[i] = (uint8_t)i;
		dec[i] = (uint8_t)(31 - i);
	}
	for (f = 0; f < TB_ARRAY_SIZE(fns); f++) {
		ck_assert_uint_eq(fns[f](0, "123456789", 9), 0xE3069283);
		ck_assert_uint_eq(fns[f](0, "", 0), 0);
		/* RFC 3720 B.4 */
		ck_assert_uint_eq(fns[f](0, zero, 32), 0x8A9136AA);
		ck_assert_uint_eq(fns[f](0, ones, 32), 0x62A8AB43);
		ck_assert_uint_eq(fns[f](0, inc, 32), 0x46DD794E);
		ck_assert_uint_eq(fns[f](0, dec, 32), 0x113FDB5C);
		ck_assert_uint_eq(fns[f](0, iscsi_read, 48), 0xD9963A56);
		/* incremental */
		ck_assert_uint_eq(fns[f](fns[f](0, "1234", 4), "56789", 5),
				  0xE3069283);
	}
	if (!tb_crc32c_hw_available())
		fprintf(stderr, "note: no SSE4.2, hw path = sw path\n");
}
END_TEST

START_TEST(crc32c_paths_agree_on_random_data_lengths_alignments)
{
	size_t max = 3 * 8192 * 2 + 1000, len, off, split;
	uint8_t *buf = malloc(max + 16);
	struct sm_rng r = { 42 };
	unsigned i;

	sm_fill(&r, buf, max + 16);
	for (i = 0; i < 3000; i++) {
		uint32_t a, b, c, seed = (uint32_t)sm_next(&r);

		switch (i % 4) {
		case 0:
			len = sm_below(&r, 64);
			break;
		case 1:
			len = sm_below(&r, 1024);
			break;
		case 2: /* around the 3-way block sizes */
			len = (1 + sm_below(&r, 2)) * 3 *
				      (sm_below(&r, 2) ? 8192 : 256) +
			      sm_below(&r, 17) - 8;
			break;
		default:
			len = sm_below(&r, (uint32_t)max);
		}
		off = sm_below(&r, 16);
		a = tb_crc32c_sw(seed, buf + off, len);
		b = tb_crc32c_hw(seed, buf + off, len);
		ck_assert_msg(a == b, "len %zu off %zu: sw %08x hw %08x", len,
			      off, a, b);
		ck_assert_uint_eq(tb_crc32c(seed, buf + off, len), a);
		split = len ? sm_below(&r, (uint32_t)len + 1) : 0;
		c = tb_crc32c_hw(tb_crc32c_sw(seed, buf + off, split),
				 buf + off + split, len - split);
		ck_assert_uint_eq(c, a);
	}
	free(buf);
}
END_TEST

/* ---------------------------------------------------------------- digest */

START_TEST(digest_is_xxh3_over_the_documented_bytes)
{
	struct tb_digest dg;
	uint8_t page[TB_PAGE_SIZE], all[8 + TB_PAGE_SIZE + 12 + 5];
	unsigned i;

	for (i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)(i ^ 0x5a);
	ck_assert_int_eq(tb_digest_init(&dg), 0);
	/* XXH3-64 of nothing, seed 0 */
	ck_assert_uint_eq(tb_digest_final(&dg), 0x2D06800538D394C2ull);
	tb_digest_page(&dg, 0x123456789ull, page);
	tb_digest_state(&dg, TB_STATE_SIM, 3, "state", 5);
	tb_put_le64(all, 0x123456789ull);
	memcpy(all + 8, page, sizeof(page));
	tb_put_le32(all + 8 + TB_PAGE_SIZE, TB_STATE_SIM);
	tb_put_le32(all + 12 + TB_PAGE_SIZE, 3);
	tb_put_le32(all + 16 + TB_PAGE_SIZE, 5);
	memcpy(all + 20 + TB_PAGE_SIZE, "state", 5);
	ck_assert_uint_eq(tb_digest_final(&dg), XXH3_64bits(all, sizeof(all)));
	/* final resets */
	ck_assert_uint_eq(tb_digest_final(&dg), 0x2D06800538D394C2ull);
	tb_digest_free(&dg);
	tb_digest_free(&dg);
}
END_TEST

/* TB_FEAT_PAGE_CRC: a page counts as its pfn and the standard CRC32C of
 * its bytes (u32 LE); state blobs as before.  A changed byte changes it. */
START_TEST(page_crc_digest_is_xxh3_over_pfn_and_crc32c)
{
	struct tb_digest dg;
	uint8_t page[TB_PAGE_SIZE], all[8 + 4 + 12 + 5];
	uint64_t d1;
	unsigned i;

	for (i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)(i * 7 + 1);
	ck_assert_int_eq(tb_digest_init(&dg), 0);
	ck_assert(!dg.page_crc);
	dg.page_crc = true;
	tb_digest_page(&dg, 0x123456789ull, page);
	tb_digest_state(&dg, TB_STATE_SIM, 3, "state", 5);
	tb_put_le64(all, 0x123456789ull);
	tb_put_le32(all + 8, tb_crc32c_sw(0, page, sizeof(page)));
	tb_put_le32(all + 12, TB_STATE_SIM);
	tb_put_le32(all + 16, 3);
	tb_put_le32(all + 20, 5);
	memcpy(all + 24, "state", 5);
	d1 = tb_digest_final(&dg);
	ck_assert_uint_eq(d1, XXH3_64bits(all, sizeof(all)));
	page[TB_PAGE_SIZE - 1] ^= 0x80;
	tb_digest_page(&dg, 0x123456789ull, page);
	tb_digest_state(&dg, TB_STATE_SIM, 3, "state", 5);
	ck_assert_uint_ne(tb_digest_final(&dg), d1);
	tb_digest_free(&dg);
}
END_TEST

/* ---------------------------------------------------------------- encode */

START_TEST(round_trip_of_every_record_type)
{
	struct tb_buf b = { 0 }, bb = { 0 };
	struct tb_dec d;
	struct tb_rec rec;
	struct tb_page_desc pd;
	struct tb_ack ack = { .epoch = 9, .status = TB_SERR_BAD_DIGEST };
	struct tb_hello hb = { .magic = TB_STREAM_MAGIC,
			       .version = TB_STREAM_VERSION,
			       .role = TB_ROLE_BACKUP,
			       .page_size = 4096,
			       .features = TB_FEAT_LZ4,
			       .name = "0123456789012345678901234567890X" };
	unsigned i;

	build_primary(&b);
	tb_dec_init(&d);
	ck_assert_int_eq(tb_dec_feed(&d, b.data, b.len), 0);
	for (i = 0; i < TB_ARRAY_SIZE(primary_types); i++) {
		ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
		ck_assert_uint_eq(rec.type, primary_types[i]);
		switch (rec.type) {
		case TB_REC_HELLO:
			ck_assert_uint_eq(rec.length, 88);
			ck_assert_uint_eq(rec.u.hello.uuid[0], 0xde);
			ck_assert_uint_eq(rec.u.hello.uuid[15], 0x42);
			ck_assert_uint_eq(rec.u.hello.magic, TB_STREAM_MAGIC);
			ck_assert_uint_eq(rec.u.hello.role, TB_ROLE_PRIMARY);
			ck_assert_uint_eq(rec.u.hello.domid, 7);
			ck_assert_uint_eq(rec.u.hello.nr_pages, 262144);
			ck_assert_uint_eq(rec.u.hello.features, TB_FEAT_ALL);
			ck_assert_str_eq(rec.u.hello.name, "guest-a");
			/* the magic is "TTIBESTR" on the wire */
			ck_assert(!memcmp(rec.body, "TTIBESTR", 8));
			break;
		case TB_REC_EPOCH_BEGIN:
			ck_assert_uint_eq(rec.u.begin.epoch, 5);
			ck_assert_uint_eq(rec.u.begin.flags, TB_EPOCH_FULL);
			ck_assert_int_eq(rec.u.begin.t_request_ns, 100);
			ck_assert_int_eq(rec.u.begin.t_suspended_ns, 200);
			ck_assert_int_eq(rec.u.begin.t_resumed_ns, 300);
			break;
		case TB_REC_PAGE_DATA:
			ck_assert_uint_eq(rec.u.pages.nr_pages, 4);
			ck_assert_uint_eq(rec.u.pages.payload_len, 4096 + 15);
			ck_assert_uint_eq(rec.length, 8 + 4 * 16 + 4096 + 15);
			ck_assert_uint_eq(tb_page_pfn_get(&rec.u.pages, 3),
					  TB_PFN_MAX);
			tb_page_desc_get(&rec.u.pages, 0, &pd);
			ck_assert(pd.enc == TB_ENC_ZERO && pd.len == 0);
			tb_page_desc_get(&rec.u.pages, 1, &pd);
			ck_assert(pd.enc == TB_ENC_RAW && pd.len == 4096);
			ck_assert_uint_eq(rec.u.pages.payloads[4095],
					  (uint8_t)(4095 * 7));
			tb_page_desc_get(&rec.u.pages, 2, &pd);
			ck_assert(pd.enc == TB_ENC_LZ4 && pd.len == 10);
			ck_assert_uint_eq(rec.u.pages.payloads[4096], 1);
			tb_page_desc_get(&rec.u.pages, 3, &pd);
			ck_assert(pd.enc == TB_ENC_XOR_LZ4 && pd.len == 5);
			break;
		case TB_REC_CPU_STATE:
			ck_assert_uint_eq(rec.u.state.tag, TB_STATE_SIM);
			ck_assert_uint_eq(rec.u.state.len, 9);
			ck_assert(!memcmp(rec.u.state.data, "cpu-state", 9));
			ck_assert_uint_eq(rec.length % 8,
					  1); /* 16 + 9: padded */
			break;
		case TB_REC_DEVICE_STATE:
			ck_assert_uint_eq(rec.u.state.tag, TB_STATE_XEN_HVM);
			ck_assert_uint_eq(rec.u.state.index, 2);
			break;
		case TB_REC_HEARTBEAT:
			ck_assert_uint_eq(rec.u.hb.seq, 3);
			ck_assert_int_eq(rec.u.hb.time_ns, 123456789);
			ck_assert_uint_eq(rec.u.hb.last_epoch, 4);
			break;
		case TB_REC_EPOCH_END:
			ck_assert_uint_eq(rec.u.end.epoch, 5);
			ck_assert_uint_eq(rec.u.end.nr_pages, 4);
			ck_assert_uint_eq(rec.u.end.nr_bytes, 4 * 4096 + 12);
			ck_assert_uint_eq(rec.u.end.digest,
					  0x1122334455667788ull);
			break;
		case TB_REC_ERROR:
			ck_assert_uint_eq(rec.u.error.code,
					  TB_ERROR_ERRNO_BASE + ENOSPC);
			ck_assert_uint_eq(rec.u.error.text_len, 9);
			ck_assert(!memcmp(rec.u.error.text, "disk\tfull", 9));
			break;
		}
	}
	ck_assert_int_eq(tb_dec_next(&d, &rec), 0);
	ck_assert_int_eq(tb_dec_eof(&d), 0);
	ck_assert_uint_eq(d.records, TB_ARRAY_SIZE(primary_types));
	ck_assert_uint_eq(d.bytes_in, b.len);

	/* backup direction: HELLO (32-byte name, no NUL), ACK */
	ck_assert_int_eq(tb_enc_hello(&bb, &hb), 0);
	ck_assert_int_eq(tb_enc_ack(&bb, &ack), 0);
	ck_assert_int_eq(tb_dec_feed(&d, bb.data, bb.len), 0);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
	ck_assert(!memcmp(rec.u.hello.name, hb.name, 32));
	ck_assert_uint_eq(rec.u.hello.features, TB_FEAT_LZ4);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
	ck_assert_uint_eq(rec.type, TB_REC_ACK);
	ck_assert_uint_eq(rec.u.ack.epoch, 9);
	ck_assert_uint_eq(rec.u.ack.status, TB_SERR_BAD_DIGEST);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 0);
	tb_dec_free(&d);
	tb_buf_free(&b);
	tb_buf_free(&bb);
}
END_TEST

START_TEST(wire_layout_is_little_endian_padded_and_crc_covered)
{
	struct tb_buf b = { 0 };
	uint32_t len;

	ck_assert_int_eq(tb_enc_state(&b, TB_REC_CPU_STATE, TB_STATE_SIM, 1,
				      "abc", 3),
			 0);
	len = 16 + 3;
	ck_assert_uint_eq(b.len, 8 + 24 + 8);
	ck_assert_uint_eq(b.data[0], TB_REC_CPU_STATE);
	ck_assert_uint_eq(b.data[1] | b.data[2] | b.data[3], 0);
	ck_assert_uint_eq(tb_get_le32(b.data + 4), len);
	ck_assert_uint_eq(tb_get_le32(b.data + 8), TB_STATE_SIM);
	ck_assert_uint_eq(tb_get_le32(b.data + 16), 3);
	ck_assert(!memcmp(b.data + 24, "abc", 3));
	ck_assert_uint_eq(b.data[27] | b.data[28] | b.data[29] | b.data[30] |
				  b.data[31],
			  0);
	ck_assert_uint_eq(tb_get_le32(b.data + 32), tb_crc32c(0, b.data, 32));
	ck_assert_uint_eq(tb_get_le32(b.data + 36), 0);
	tb_buf_free(&b);
}
END_TEST

/* The examples of docs/stream-format.md, section 2. */
START_TEST(known_answer_records_of_the_spec)
{
	static const uint8_t hb_bytes[40] = {
		0x08, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, /* */
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* */
		0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* */
		0x56, 0xf3, 0xa6, 0xe5, 0x00, 0x00, 0x00, 0x00,
	};
	static const uint8_t err_bytes[32] = {
		0x09, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, /* */
		0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, /* */
		0x62, 0x79, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, /* */
		0xbc, 0xd2, 0xe6, 0xe5, 0x00, 0x00, 0x00, 0x00,
	};
	struct tb_heartbeat hb = { .seq = 1, .time_ns = 2, .last_epoch = 3 };
	struct tb_buf b = { 0 };

	ck_assert_int_eq(tb_enc_heartbeat(&b, &hb), 0);
	ck_assert_uint_eq(b.len, sizeof(hb_bytes));
	ck_assert(!memcmp(b.data, hb_bytes, sizeof(hb_bytes)));
	tb_buf_reset(&b);
	ck_assert_int_eq(tb_enc_error(&b, TB_SERR_NONE, "bye"), 0);
	ck_assert_uint_eq(b.len, sizeof(err_bytes));
	ck_assert(!memcmp(b.data, err_bytes, sizeof(err_bytes)));
	tb_buf_free(&b);
}
END_TEST

START_TEST(page_builder_compacts_fills_and_rejects)
{
	struct tb_buf b = { 0 };
	struct tb_page_rec pr = { 0 };
	uint8_t payload[TB_PAGE_LZ4_LEN_MAX] = { 0 };
	struct tb_rec rec;
	struct tb_dec d;
	size_t before;
	unsigned i;

	/* reserve for 1024, add 3: compacted */
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &b, TB_PAGES_PER_REC_MAX), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(tb_enc_pages_add(&pr, i, TB_ENC_LZ4, payload,
						  100 + i),
				 0);
	ck_assert_int_eq(tb_enc_pages_finish(&pr), 0);
	ck_assert_uint_eq(b.len, sm_rec_total(8 + 3 * 16 + 303));
	/* full by pages: -ENOSPC, then a new record */
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &b, 2), 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 10, TB_ENC_ZERO, NULL, 0), 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 11, TB_ENC_ZERO, NULL, 0), 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 12, TB_ENC_ZERO, NULL, 0),
			 -ENOSPC);
	/* invalid pages: -EINVAL, record unchanged */
	ck_assert_int_eq(tb_enc_pages_finish(&pr), 0);
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &b, 8), 0);
	before = b.len;
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, 5, payload, 1), -EINVAL);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, TB_ENC_XOR_RLE, payload, 0),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, TB_ENC_RAW, payload, 4095),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, TB_ENC_ZERO, payload, 1),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, TB_ENC_LZ4, payload, 0),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, TB_ENC_XOR_LZ4, payload,
					  TB_PAGE_LZ4_LEN_MAX + 1),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_pages_add(&pr, TB_PFN_MAX + 1, TB_ENC_ZERO,
					  NULL, 0),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 1, TB_ENC_LZ4, NULL, 5),
			 -EINVAL);
	ck_assert_uint_eq(b.len, before);
	ck_assert_uint_eq(pr.nr_pages, 0);
	/* finish with nothing added emits nothing */
	ck_assert_int_eq(tb_enc_pages_finish(&pr), 0);
	ck_assert_uint_eq(b.len, sm_rec_total(8 + 3 * 16 + 303) +
					 sm_rec_total(8 + 2 * 16));
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &b, 0), -EINVAL);
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &b, TB_PAGES_PER_REC_MAX + 1),
			 -EINVAL);
	/* largest record: 1024 pages of the largest payload */
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &b, TB_PAGES_PER_REC_MAX), 0);
	for (i = 0; i < TB_PAGES_PER_REC_MAX; i++)
		ck_assert_int_eq(tb_enc_pages_add(&pr, i, TB_ENC_LZ4, payload,
						  TB_PAGE_LZ4_LEN_MAX),
				 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, i, TB_ENC_ZERO, NULL, 0),
			 -ENOSPC);
	ck_assert_int_eq(tb_enc_pages_finish(&pr), 0);
	tb_enc_pages_free(&pr);

	tb_dec_init(&d);
	ck_assert_int_eq(tb_dec_feed(&d, b.data, b.len), 0);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
	ck_assert_uint_eq(rec.u.pages.nr_pages, 3);
	ck_assert_uint_eq(tb_page_pfn_get(&rec.u.pages, 2), 2);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
	ck_assert_uint_eq(rec.u.pages.nr_pages, 2);
	ck_assert_uint_eq(tb_page_pfn_get(&rec.u.pages, 1), 11);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
	ck_assert_uint_eq(rec.u.pages.nr_pages, TB_PAGES_PER_REC_MAX);
	ck_assert_uint_le(rec.length, TB_REC_LEN_MAX);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 0);
	ck_assert_int_eq(tb_dec_eof(&d), 0);
	tb_dec_free(&d);
	tb_buf_free(&b);
}
END_TEST

START_TEST(encoders_reject_invalid_fields)
{
	struct tb_buf b = { 0 };
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .page_size = 4096,
			      .nr_pages = 1 };
	struct tb_epoch_begin be = { .epoch = 1 };
	struct tb_epoch_end en = { .epoch = 1 };
	struct tb_ack a = { .epoch = 1 };
	struct tb_heartbeat hb = { .time_ns = 0 };
	char big[TB_ERROR_TEXT_MAX + 100];
	struct tb_dec d;
	struct tb_rec rec;

	h.version = TB_STREAM_VERSION + 1;
	ck_assert_int_eq(tb_enc_hello(&b, &h), -EINVAL);
	h.version = TB_STREAM_VERSION;
	h.role = 0;
	ck_assert_int_eq(tb_enc_hello(&b, &h), -EINVAL);
	h.role = TB_ROLE_PRIMARY;
	h.nr_pages = 0;
	ck_assert_int_eq(tb_enc_hello(&b, &h), -EINVAL);
	h.nr_pages = 1;
	strcpy(h.name, "bad\nname");
	ck_assert_int_eq(tb_enc_hello(&b, &h), -EINVAL);
	be.epoch = 0;
	ck_assert_int_eq(tb_enc_epoch_begin(&b, &be), -EINVAL);
	be.epoch = 1;
	be.flags = 2;
	ck_assert_int_eq(tb_enc_epoch_begin(&b, &be), -EINVAL);
	en.nr_pages = 1;
	en.nr_bytes = 4095;
	ck_assert_int_eq(tb_enc_epoch_end(&b, &en), -EINVAL);
	a.status = TB_SERR_MAX + 1;
	ck_assert_int_eq(tb_enc_ack(&b, &a), -EINVAL);
	hb.time_ns = -1;
	ck_assert_int_eq(tb_enc_heartbeat(&b, &hb), -EINVAL);
	ck_assert_int_eq(tb_enc_error(&b, TB_ERROR_ERRNO_BASE + 4096, "x"),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_error(&b, TB_SERR_MAX + 1, "x"), -EINVAL);
	ck_assert_int_eq(tb_enc_error(&b, TB_ERROR_ERRNO_BASE, "x"), -EINVAL);
	ck_assert_int_eq(tb_enc_state(&b, TB_REC_HELLO, TB_STATE_SIM, 0, "", 0),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_state(&b, TB_REC_CPU_STATE, 0, 0, "", 0),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_state(&b, TB_REC_CPU_STATE, TB_STATE_SIM, 0,
				      big, TB_STATE_LEN_MAX + 1),
			 -EINVAL);
	ck_assert_uint_eq(b.len, 0); /* nothing emitted */

	/* long text is truncated, control characters become '?' */
	memset(big, 'x', sizeof(big));
	big[5] = '\n';
	big[sizeof(big) - 1] = 0;
	ck_assert_int_eq(tb_enc_error(&b, TB_SERR_BAD_CRC, big), 0);
	tb_dec_init(&d);
	ck_assert_int_eq(tb_dec_feed(&d, b.data, b.len), 0);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
	ck_assert_uint_eq(rec.u.error.text_len, TB_ERROR_TEXT_MAX);
	ck_assert_int_eq(rec.u.error.text[5], '?');
	tb_dec_free(&d);
	tb_buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- chunking */

/* Decode @b in the chunks given by the rng (mode: 0 random sizes via
 * space/commit, 1 byte by byte via feed, 2 byte by byte via space/commit)
 * and check the records are exactly the stream's bytes. */
static void decode_chunked(const struct tb_buf *b, struct sm_rng *r, int mode,
			   size_t first_split)
{
	struct tb_dec d;
	struct tb_rec rec;
	size_t pos = 0, room, n, got = 0;
	uint8_t *p;
	int rc;

	tb_dec_init(&d);
	for (;;) {
		while ((rc = tb_dec_next(&d, &rec)) == 1) {
			const uint8_t *raw = rec.body - 8;
			size_t total = sm_rec_total(rec.length);

			ck_assert_uint_le(got + total, b->len);
			ck_assert(!memcmp(raw, b->data + got, total));
			got += total;
		}
		ck_assert_int_eq(rc, 0);
		if (pos == b->len)
			break;
		if (mode == 1) {
			ck_assert_int_eq(tb_dec_feed(&d, b->data + pos, 1), 0);
			pos++;
			continue;
		}
		ck_assert_int_eq(
			tb_dec_space(&d, 1 + sm_below(r, 64), &p, &room), 0);
		ck_assert_uint_ge(room, 1);
		if (first_split) {
			n = first_split;
			first_split = 0;
		} else if (mode == 2) {
			n = 1;
		} else {
			n = 1 + sm_below(r, 700);
		}
		n = TB_MIN(n, TB_MIN(room, b->len - pos));
		memcpy(p, b->data + pos, n);
		tb_dec_commit(&d, n);
		pos += n;
	}
	ck_assert_uint_eq(got, b->len);
	ck_assert_int_eq(tb_dec_eof(&d), 0);
	ck_assert_uint_eq(d.bytes_in, b->len);
	tb_dec_free(&d);
}

START_TEST(decoding_is_independent_of_chunking)
{
	struct tb_buf b = { 0 };
	struct sm_rng r = { 7 };
	size_t split;
	int i;

	build_primary(&b);
	decode_chunked(&b, &r, 1, 0);
	decode_chunked(&b, &r, 2, 0);
	for (i = 0; i < 300; i++)
		decode_chunked(&b, &r, 0, 0);
	/* every two-piece split */
	for (split = 1; split < b.len; split++)
		decode_chunked(&b, &r, 0, split);
	tb_buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(truncated_stream_is_detected_at_every_cut)
{
	struct tb_buf b = { 0 };
	size_t cut, offs[32], no, k;
	uint64_t n;
	char msg[160];

	build_primary(&b);
	no = sm_rec_offsets(b.data, b.len, offs, 32);
	for (cut = 0; cut <= b.len; cut++) {
		bool boundary = cut == b.len;

		for (k = 0; k < no; k++)
			boundary |= offs[k] == cut;
		ck_assert_int_eq(decode_whole(b.data, cut, &n, msg,
					      sizeof(msg)),
				 boundary ? 0 : TB_SERR_TRUNCATED);
	}
	decode_whole(b.data, b.len - 3, &n, msg, sizeof(msg));
	ck_assert_ptr_nonnull(strstr(msg, "record 7 (ERROR) at byte"));
	ck_assert_ptr_nonnull(strstr(msg, "stream ended after"));
	ck_assert_int_eq(tb_stream_errno(TB_SERR_TRUNCATED), -EPIPE);
	tb_buf_free(&b);
}
END_TEST

START_TEST(bad_crc_nonzero_pad_and_trailer_are_rejected)
{
	struct tb_buf b = { 0 }, c = { 0 };
	size_t i, offs[32], no;
	char msg[160];
	uint64_t n;

	build_primary(&b);
	no = sm_rec_offsets(b.data, b.len, offs, 32);
	/* any single bit flip in a body or a trailer CRC */
	for (i = 0; i < b.len; i += 7) {
		size_t k = 0;
		int code;

		while (k + 1 < no && offs[k + 1] <= i)
			k++;
		if (i < offs[k] + 8) /* header: other checks come first */
			continue;
		tb_buf_reset(&c);
		tb_buf_append(&c, b.data, b.len);
		c.data[i] ^= 1u << (i % 8);
		code = decode_whole(c.data, c.len, &n, msg, sizeof(msg));
		ck_assert_msg(code == TB_SERR_BAD_CRC, "byte %zu: %s", i, msg);
		ck_assert_uint_eq(n, k);
	}
	/* nonzero padding with a correct CRC (CPU_STATE: 25-byte body) */
	tb_buf_reset(&c);
	ck_assert_int_eq(
		tb_enc_state(&c, TB_REC_CPU_STATE, 1, 0, "123456789", 9), 0);
	c.data[8 + 25] = 1;
	sm_fix_crcs(c.data, c.len);
	ck_assert_int_eq(decode_whole(c.data, c.len, &n, msg, sizeof(msg)),
			 TB_SERR_BAD_CRC);
	ck_assert_ptr_nonnull(strstr(msg, "padding"));
	/* nonzero trailer word */
	c.data[8 + 25] = 0;
	c.data[c.len - 1] = 0x80;
	sm_fix_crcs(c.data, c.len);
	ck_assert_int_eq(decode_whole(c.data, c.len, &n, msg, sizeof(msg)),
			 TB_SERR_BAD_CRC);
	ck_assert_ptr_nonnull(strstr(msg, "trailer"));
	ck_assert_int_eq(tb_stream_errno(TB_SERR_BAD_CRC), -EBADMSG);
	tb_buf_free(&b);
	tb_buf_free(&c);
}
END_TEST

START_TEST(oversize_is_rejected_from_the_header_before_buffering)
{
	struct tb_dec d;
	struct tb_rec rec;
	uint8_t hdr[8], *p;
	size_t room;
	struct {
		uint32_t type, len;
		int code;
	} cases[] = {
		{ TB_REC_PAGE_DATA, TB_REC_LEN_MAX + 1, TB_SERR_OVERSIZE },
		{ 0x12345, 0xffffffff, TB_SERR_OVERSIZE }, /* before the type */
		{ TB_REC_OPTIONAL | 77, TB_REC_LEN_MAX + 1, TB_SERR_OVERSIZE },
		{ TB_REC_PAGE_DATA, 8 + 1024 * (16 + TB_PAGE_LZ4_LEN_MAX) + 1,
		  TB_SERR_OVERSIZE },
		{ TB_REC_CPU_STATE, 16 + TB_STATE_LEN_MAX + 1,
		  TB_SERR_OVERSIZE },
		{ TB_REC_ERROR, 8 + TB_ERROR_TEXT_MAX + 1, TB_SERR_OVERSIZE },
		{ TB_REC_HELLO, 89, TB_SERR_OVERSIZE },
		{ TB_REC_HELLO, 71, TB_SERR_BAD_FIELD },
		{ TB_REC_ACK, 0, TB_SERR_BAD_FIELD },
		{ TB_REC_PAGE_DATA, 23, TB_SERR_BAD_FIELD },
		{ TB_REC_ERROR, 7, TB_SERR_BAD_FIELD },
	};
	unsigned i;

	for (i = 0; i < TB_ARRAY_SIZE(cases); i++) {
		tb_dec_init(&d);
		tb_put_le32(hdr, cases[i].type);
		tb_put_le32(hdr + 4, cases[i].len);
		ck_assert_int_eq(tb_dec_feed(&d, hdr, 8), 0);
		/* a bad header never makes room for its body */
		ck_assert_int_eq(tb_dec_space(&d, 100, &p, &room), 0);
		ck_assert_uint_lt(d.cap, 1u << 20);
		ck_assert_int_eq(tb_dec_next(&d, &rec),
				 tb_stream_errno(cases[i].code));
		ck_assert_int_eq(d.err, cases[i].code);
		ck_assert_uint_lt(d.cap, 1u << 20);
		/* sticky */
		ck_assert_int_eq(tb_dec_next(&d, &rec),
				 tb_stream_errno(cases[i].code));
		ck_assert_int_eq(tb_dec_space(&d, 100, &p, &room),
				 tb_stream_errno(cases[i].code));
		ck_assert_int_eq(tb_dec_eof(&d),
				 tb_stream_errno(cases[i].code));
		tb_dec_free(&d);
	}
	/* the message names the record, its offset and the limit */
	tb_dec_init(&d);
	{
		struct tb_buf b = { 0 };

		build_primary(&b);
		tb_put_le32(hdr, TB_REC_PAGE_DATA);
		tb_put_le32(hdr + 4, 9000000);
		tb_buf_append(&b, hdr, 8);
		ck_assert_int_eq(tb_dec_feed(&d, b.data, b.len), 0);
		while (tb_dec_next(&d, &rec) == 1)
			;
		ck_assert_int_eq(d.err, TB_SERR_OVERSIZE);
		ck_assert_msg(
			strstr(d.msg, "record 8 (PAGE_DATA) at byte ") &&
				strstr(d.msg,
				       "length 9000000 exceeds limit 8388608"),
			"%s", d.msg);
		tb_buf_free(&b);
	}
	tb_dec_free(&d);
	/* a valid header of a large record: room for all of it at once */
	tb_dec_init(&d);
	tb_put_le32(hdr, TB_REC_CPU_STATE);
	tb_put_le32(hdr + 4, 16 + TB_STATE_LEN_MAX);
	ck_assert_int_eq(tb_dec_feed(&d, hdr, 8), 0);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 0);
	ck_assert_int_eq(tb_dec_space(&d, 100, &p, &room), 0);
	ck_assert_uint_ge(room, sm_rec_total(16 + TB_STATE_LEN_MAX) - 8);
	ck_assert_int_eq(tb_stream_errno(TB_SERR_OVERSIZE), -EMSGSIZE);
	tb_dec_free(&d);
}
END_TEST

START_TEST(unknown_mandatory_type_fails_optional_is_skipped)
{
	struct tb_buf b = { 0 };
	struct tb_dec d;
	struct tb_rec rec;
	uint64_t n;

	/* optional records around a heartbeat are skipped (but counted) */
	ck_assert_int_eq(sm_put_raw(&b, TB_REC_OPTIONAL | 1, "abc", 3), 0);
	{
		struct tb_heartbeat hb = { .seq = 1 };

		ck_assert_int_eq(tb_enc_heartbeat(&b, &hb), 0);
	}
	ck_assert_int_eq(sm_put_raw(&b, TB_REC_OPTIONAL | 0x7fffffff, NULL, 0),
			 0);
	tb_dec_init(&d);
	ck_assert_int_eq(tb_dec_feed(&d, b.data, b.len), 0);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 1);
	ck_assert_uint_eq(rec.type, TB_REC_HEARTBEAT);
	ck_assert_int_eq(tb_dec_next(&d, &rec), 0);
	ck_assert_uint_eq(d.records, 3);
	ck_assert_int_eq(tb_dec_eof(&d), 0);
	tb_dec_free(&d);
	/* ... but CRC-checked */
	b.data[8] ^= 1;
	ck_assert_int_eq(decode_whole(b.data, b.len, &n, NULL, 0),
			 TB_SERR_BAD_CRC);
	/* unknown mandatory types: 0, 12 (the first after DISK_WRITE), 0x7fffffff */
	tb_buf_reset(&b);
	ck_assert_int_eq(sm_put_raw(&b, 12, "abc", 3), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_UNKNOWN_TYPE);
	tb_buf_reset(&b);
	ck_assert_int_eq(sm_put_raw(&b, 0, NULL, 0), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_UNKNOWN_TYPE);
	tb_buf_reset(&b);
	ck_assert_int_eq(sm_put_raw(&b, 0x7fffffff, NULL, 0), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_UNKNOWN_TYPE);
	/* v1 has no optional variant of a known type: skipped too */
	tb_buf_reset(&b);
	ck_assert_int_eq(sm_put_raw(&b, TB_REC_OPTIONAL | TB_REC_HELLO, "x", 1),
			 0);
	ck_assert_int_eq(decode_whole(b.data, b.len, &n, NULL, 0), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(tb_stream_errno(TB_SERR_UNKNOWN_TYPE), -EOPNOTSUPP);
	tb_buf_free(&b);
}
END_TEST

START_TEST(version_and_magic_mismatch)
{
	struct tb_buf b = { 0 }, c = { 0 };
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .page_size = 4096,
			      .nr_pages = 10 };
	uint8_t v1[72];
	char msg[160];
	uint64_t n;

	ck_assert_int_eq(tb_enc_hello(&b, &h), 0);
	patch_rec(&c, &b, 8, 4, TB_STREAM_VERSION + 1);
	ck_assert_int_eq(decode_whole(c.data, c.len, &n, msg, sizeof(msg)),
			 TB_SERR_VERSION);
	ck_assert_ptr_nonnull(strstr(msg, "version 3, this is 2"));
	/* a version 1 peer's HELLO (72 bytes, no UUID): told why */
	patch_rec(&c, &b, 8, 4, 1);
	memcpy(v1, c.data + 8, 72);
	tb_buf_reset(&c);
	ck_assert_int_eq(sm_put_raw(&c, TB_REC_HELLO, v1, 72), 0);
	ck_assert_int_eq(decode_whole(c.data, c.len, &n, msg, sizeof(msg)),
			 TB_SERR_VERSION);
	ck_assert_ptr_nonnull(strstr(msg, "HELLO version 1, this is 2"));
	/* version 2 in 72 bytes: the UUID is missing */
	patch_rec(&c, &c, 8, 4, TB_STREAM_VERSION);
	ck_assert_int_eq(decode_whole(c.data, c.len, &n, msg, sizeof(msg)),
			 TB_SERR_BAD_FIELD);
	ck_assert_ptr_nonnull(strstr(msg, "HELLO of 72 bytes"));
	patch_rec(&c, &b, 0, 8, 0x5254534542495455ull);
	ck_assert_int_eq(decode_code(&c), TB_SERR_VERSION);
	ck_assert_int_eq(tb_stream_errno(TB_SERR_VERSION), -EPROTONOSUPPORT);
	tb_buf_free(&b);
	tb_buf_free(&c);
}
END_TEST

START_TEST(bad_field_values_are_rejected)
{
	struct tb_buf rec[10] = { { 0 } }, c = { 0 };
	struct tb_page_rec pr = { 0 };
	uint8_t payload[16] = { 1 };
	struct tb_hello hp = { .magic = TB_STREAM_MAGIC,
			       .version = TB_STREAM_VERSION,
			       .role = TB_ROLE_PRIMARY,
			       .page_size = 4096,
			       .nr_pages = 10,
			       .name = "ab" };
	struct tb_hello hb = hp;
	struct tb_epoch_begin be = { .epoch = 3 };
	struct tb_epoch_end en = { .epoch = 3,
				   .nr_pages = 1,
				   .nr_bytes = 4096 };
	struct tb_ack ack = { .epoch = 3 };
	struct tb_heartbeat hbt = { .seq = 1 };
	enum {
		HP,
		HB,
		BE,
		PD,
		CS,
		EN,
		AK,
		HT,
		ER
	};
	struct {
		int rec;
		size_t off;
		int width;
		uint64_t val;
		int code;
	} cases[] = {
		{ HP, 12, 4, 0, TB_SERR_BAD_FIELD },	/* role 0 */
		{ HP, 12, 4, 3, TB_SERR_BAD_FIELD },	/* role 3 */
		{ HP, 20, 4, 8192, TB_SERR_BAD_FIELD }, /* page_size */
		{ HP, 24, 8, 0, TB_SERR_BAD_FIELD },	/* nr_pages 0 */
		{ HP, 24, 8, TB_PFN_MAX + 2, TB_SERR_BAD_FIELD },
		{ HP, 24, 8, TB_PFN_MAX + 1, 0 },
		{ HP, 32, 8, 1ull << 40, 0 },		/* offers unknown */
		{ HP, 40, 1, 0x1b, TB_SERR_BAD_FIELD }, /* ESC in name */
		{ HP, 40, 1, 0x7f, TB_SERR_BAD_FIELD }, /* DEL */
		{ HP, 71, 1, 'x', TB_SERR_BAD_FIELD },	/* not NUL-padded */
		{ HB, 32, 8, 1ull << 40,
		  TB_SERR_BAD_FIELD },		     /* accepts unknown */
		{ HB, 24, 8, 0, 0 },		     /* backup: 0 ok */
		{ BE, 0, 8, 0, TB_SERR_BAD_FIELD },  /* epoch 0 */
		{ BE, 8, 4, 2, TB_SERR_BAD_FIELD },  /* flags */
		{ BE, 12, 4, 1, TB_SERR_BAD_FIELD }, /* reserved */
		{ BE, 16, 8, (uint64_t)-1, TB_SERR_BAD_FIELD },
		{ BE, 24, 8, 1ull << 63, TB_SERR_BAD_FIELD },
		{ BE, 32, 8, (uint64_t)-5, TB_SERR_BAD_FIELD },
		{ PD, 0, 4, 0, TB_SERR_BAD_FIELD },   /* nr_pages 0 */
		{ PD, 0, 4, 1025, TB_SERR_OVERSIZE }, /* > 1024 pages */
		{ PD, 0, 4, 3, TB_SERR_BAD_FIELD },   /* counts wrong */
		{ PD, 0, 4, 5, TB_SERR_BAD_FIELD },
		{ PD, 4, 4, 1, TB_SERR_BAD_FIELD }, /* reserved */
		/* body: hdr 0..7, pfn 8..23, desc0 (LZ4 16) 24..31,
		 * desc1 (ZERO) 32..39, payload 40..55 */
		{ PD, 8, 8, TB_PFN_MAX + 1, TB_SERR_BAD_FIELD },
		{ PD, 16, 8, TB_PFN_MAX, 0 },
		{ PD, 24, 1, 5, TB_SERR_BAD_FIELD }, /* enc 5 */
		{ PD, 24, 1, TB_ENC_XOR_RLE, 0 },    /* 16 bytes: fine */
		{ PD, 24, 1, 0xff, TB_SERR_BAD_FIELD },
		{ PD, 25, 1, 1, TB_SERR_BAD_FIELD }, /* desc reserved */
		{ PD, 26, 1, 1, TB_SERR_BAD_FIELD },
		{ PD, 27, 1, 0x80, TB_SERR_BAD_FIELD },
		{ PD, 24, 1, TB_ENC_RAW, TB_SERR_BAD_FIELD },  /* RAW len 16 */
		{ PD, 24, 1, TB_ENC_ZERO, TB_SERR_BAD_FIELD }, /* ZERO len 16 */
		{ PD, 36, 4, 1, TB_SERR_BAD_FIELD },	       /* ZERO len 1 */
		{ PD, 28, 4, 0, TB_SERR_BAD_FIELD },	       /* LZ4 len 0 */
		{ PD, 28, 4, TB_PAGE_LZ4_LEN_MAX + 1, TB_SERR_BAD_FIELD },
		{ PD, 28, 4, 15, TB_SERR_BAD_FIELD }, /* trailing byte */
		{ PD, 28, 4, 17, TB_SERR_BAD_FIELD }, /* past the end */
		{ PD, 24, 1, TB_ENC_XOR_LZ4, 0 },
		{ PD, 32, 1, TB_ENC_LZ4, TB_SERR_BAD_FIELD }, /* LZ4 len 0 */
		{ PD, 32, 1, TB_ENC_XOR_RLE, TB_SERR_BAD_FIELD }, /* len 0 */
		{ CS, 0, 4, 0, TB_SERR_BAD_FIELD },		  /* tag 0 */
		{ CS, 0, 4, 4, TB_SERR_BAD_FIELD },		  /* tag 4 */
		{ CS, 4, 4, 0xffffffff, 0 },	    /* index: opaque */
		{ CS, 8, 4, 4, TB_SERR_BAD_FIELD }, /* len mismatch */
		{ CS, 8, 4, 6, TB_SERR_BAD_FIELD },
		{ CS, 8, 4, TB_STATE_LEN_MAX + 1, TB_SERR_OVERSIZE },
		{ CS, 12, 4, 1, TB_SERR_BAD_FIELD }, /* reserved */
		{ EN, 0, 8, 0, TB_SERR_BAD_FIELD },  /* epoch 0 */
		{ EN, 8, 8, 2, TB_SERR_BAD_FIELD },  /* 2 pages in 4096 B */
		{ EN, 8, 8, 1ull << 60, TB_SERR_BAD_FIELD }, /* overflow */
		{ EN, 16, 8, 4095, TB_SERR_BAD_FIELD },
		{ AK, 0, 8, 0, TB_SERR_BAD_FIELD },
		{ AK, 8, 4, TB_SERR_MAX + 1, TB_SERR_BAD_FIELD },
		{ AK, 8, 4, TB_SERR_MAX, 0 },
		{ AK, 12, 4, 1, TB_SERR_BAD_FIELD },
		{ HT, 8, 8, (uint64_t)INT64_MIN, TB_SERR_BAD_FIELD },
		{ ER, 0, 4, 0, 0 }, /* orderly close */
		{ ER, 0, 4, TB_SERR_MAX + 1, TB_SERR_BAD_FIELD },
		{ ER, 0, 4, TB_ERROR_ERRNO_BASE, TB_SERR_BAD_FIELD },
		{ ER, 0, 4, TB_ERROR_ERRNO_BASE + 4096, TB_SERR_BAD_FIELD },
		{ ER, 0, 4, TB_ERROR_ERRNO_BASE + 4095, 0 },
		{ ER, 4, 4, 3, TB_SERR_BAD_FIELD }, /* text_len */
		{ ER, 4, 4, 5, TB_SERR_BAD_FIELD },
		{ ER, 4, 4, TB_ERROR_TEXT_MAX + 1, TB_SERR_OVERSIZE },
		{ ER, 8, 1, 0, TB_SERR_BAD_FIELD }, /* NUL in text */
		{ ER, 9, 1, '\r', TB_SERR_BAD_FIELD },
		{ ER, 9, 1, 0xc3, 0 }, /* UTF-8 ok */
	};
	unsigned i;

	hb.role = TB_ROLE_BACKUP;
	ck_assert_int_eq(tb_enc_hello(&rec[HP], &hp), 0);
	ck_assert_int_eq(tb_enc_hello(&rec[HB], &hb), 0);
	ck_assert_int_eq(tb_enc_epoch_begin(&rec[BE], &be), 0);
	/* pages: LZ4 (16 bytes), ZERO */
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &rec[PD], 4), 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 5, TB_ENC_LZ4, payload, 16), 0);
	ck_assert_int_eq(tb_enc_pages_add(&pr, 6, TB_ENC_ZERO, NULL, 0), 0);
	ck_assert_int_eq(tb_enc_pages_finish(&pr), 0);
	tb_enc_pages_free(&pr);
	ck_assert_int_eq(
		tb_enc_state(&rec[CS], TB_REC_CPU_STATE, 1, 0, "12345", 5), 0);
	ck_assert_int_eq(tb_enc_epoch_end(&rec[EN], &en), 0);
	ck_assert_int_eq(tb_enc_ack(&rec[AK], &ack), 0);
	ck_assert_int_eq(tb_enc_heartbeat(&rec[HT], &hbt), 0);
	ck_assert_int_eq(tb_enc_error(&rec[ER], TB_SERR_CODEC, "oops"), 0);
	for (i = 0; i <= ER; i++)
		ck_assert_int_eq(decode_code(&rec[i]), 0);
	for (i = 0; i < TB_ARRAY_SIZE(cases); i++) {
		char msg[160];
		uint64_t n;
		int code;

		patch_rec(&c, &rec[cases[i].rec], cases[i].off, cases[i].width,
			  cases[i].val);
		code = decode_whole(c.data, c.len, &n, msg, sizeof(msg));
		ck_assert_msg(code == cases[i].code, "case %u: got %d (%s)", i,
			      code, msg);
	}
	/* trailing garbage in a fixed-size body is a length error */
	tb_buf_reset(&c);
	{
		uint8_t body[32];

		memcpy(body, rec[HT].data + 8, 24);
		body[24] = 0;
		ck_assert_int_eq(sm_put_raw(&c, TB_REC_HEARTBEAT, body, 25), 0);
		ck_assert_int_eq(decode_code(&c), TB_SERR_OVERSIZE);
	}
	ck_assert_int_eq(tb_stream_errno(TB_SERR_BAD_FIELD), -EINVAL);
	for (i = 0; i <= ER; i++)
		tb_buf_free(&rec[i]);
	tb_buf_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- session */

static struct tb_rec mk(uint32_t type, uint64_t epoch)
{
	struct tb_rec r;

	memset(&r, 0, sizeof(r));
	r.type = type;
	switch (type) {
	case TB_REC_HELLO:
		r.u.hello.role = (uint32_t)epoch; /* the role */
		break;
	case TB_REC_EPOCH_BEGIN:
		r.u.begin.epoch = epoch;
		break;
	case TB_REC_EPOCH_END:
		r.u.end.epoch = epoch;
		break;
	case TB_REC_ACK:
		r.u.ack.epoch = epoch;
		break;
	}
	return r;
}

static int sess(struct tb_sess *s, uint32_t type, uint64_t epoch)
{
	struct tb_rec r = mk(type, epoch);

	return tb_sess_check(s, &r, NULL);
}

START_TEST(session_order_primary_to_backup)
{
	struct tb_sess s;
	uint32_t t;

	tb_sess_init(&s, TB_ROLE_PRIMARY);
	ck_assert_int_eq(sess(&s, TB_REC_HELLO, TB_ROLE_PRIMARY), 0);
	ck_assert_int_eq(sess(&s, TB_REC_HEARTBEAT, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_BEGIN, 1), 0);
	ck_assert_int_eq(s.state, TB_SESS_IN_EPOCH);
	ck_assert_int_eq(sess(&s, TB_REC_PAGE_DATA, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_HEARTBEAT, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_CPU_STATE, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_DEVICE_STATE, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_DISK_INFO, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_DISK_WRITE, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_PAGE_DATA, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_END, 1), 0);
	ck_assert_int_eq(s.state, TB_SESS_IDLE);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_BEGIN, 7), 0); /* gaps ok */
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_END, 7), 0);
	ck_assert_int_eq(sess(&s, TB_REC_ERROR, 0), 0);
	ck_assert_int_eq(s.state, TB_SESS_CLOSED);
	ck_assert_int_eq(sess(&s, TB_REC_HEARTBEAT, 0), -EPROTO);

	/* each violation, each from a fresh session in the right state */
	struct {
		int prefix; /* 0 none, 1 HELLO, 2 HELLO BEGIN(5) */
		uint32_t type;
		uint64_t arg;
		int rc;
	} cases[] = {
		{ 0, TB_REC_EPOCH_BEGIN, 1, -EPROTO },
		{ 0, TB_REC_HEARTBEAT, 0, -EPROTO },
		{ 0, TB_REC_PAGE_DATA, 0, -EPROTO },
		{ 0, TB_REC_ACK, 1, -EPROTO },
		{ 0, TB_REC_ERROR, 0, 0 }, /* reporting a rejected HELLO */
		{ 0, TB_REC_HELLO, TB_ROLE_BACKUP, -EPROTONOSUPPORT },
		{ 1, TB_REC_HELLO, TB_ROLE_PRIMARY, -EPROTO },
		{ 1, TB_REC_PAGE_DATA, 0, -EPROTO },
		{ 1, TB_REC_CPU_STATE, 0, -EPROTO },
		{ 1, TB_REC_DEVICE_STATE, 0, -EPROTO },
		{ 1, TB_REC_EPOCH_END, 5, -EPROTO },
		{ 1, TB_REC_ACK, 5, -EPROTO },
		{ 2, TB_REC_EPOCH_BEGIN, 6, -EPROTO }, /* nested */
		{ 2, TB_REC_EPOCH_END, 4, -EPROTO },   /* wrong epoch */
		{ 2, TB_REC_EPOCH_END, 6, -EPROTO },
		{ 2, TB_REC_HELLO, TB_ROLE_PRIMARY, -EPROTO },
		{ 2, TB_REC_ACK, 5, -EPROTO },
		{ 2, 12, 0, -EPROTO },
		{ 2, 0, 0, -EPROTO },
		{ 1, TB_REC_DISK_INFO, 0, -EPROTO }, /* outside an epoch */
		{ 1, TB_REC_DISK_WRITE, 0, -EPROTO },
	};
	unsigned i;

	for (i = 0; i < TB_ARRAY_SIZE(cases); i++) {
		tb_sess_init(&s, TB_ROLE_PRIMARY);
		if (cases[i].prefix >= 1)
			ck_assert_int_eq(
				sess(&s, TB_REC_HELLO, TB_ROLE_PRIMARY), 0);
		if (cases[i].prefix >= 2)
			ck_assert_int_eq(sess(&s, TB_REC_EPOCH_BEGIN, 5), 0);
		ck_assert_msg(sess(&s, cases[i].type, cases[i].arg) ==
				      cases[i].rc,
			      "case %u", i);
		if (cases[i].rc) {
			ck_assert_int_eq(s.state, TB_SESS_CLOSED);
			/* fail closed: nothing is accepted afterwards */
			for (t = 0; t <= TB_REC_ERROR; t++)
				ck_assert_int_eq(sess(&s, t, 99), -EPROTO);
		}
	}
}
END_TEST

START_TEST(session_rejects_replayed_and_reordered_epochs)
{
	struct tb_sess s;
	struct tb_dec d;
	struct tb_rec r;
	struct tb_buf b = { 0 };
	struct tb_epoch_begin be = { .epoch = 10 };
	struct tb_epoch_end en = { .epoch = 10, .digest = 1 };
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .page_size = 4096,
			      .nr_pages = 1 };
	size_t first_epoch_off, first_epoch_len;
	int rc, n = 0;

	/* replay: the same epoch again, an older one */
	tb_sess_init(&s, TB_ROLE_PRIMARY);
	ck_assert_int_eq(sess(&s, TB_REC_HELLO, TB_ROLE_PRIMARY), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_BEGIN, 10), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_END, 10), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_BEGIN, 10), -EPROTO);
	tb_sess_init(&s, TB_ROLE_PRIMARY);
	ck_assert_int_eq(sess(&s, TB_REC_HELLO, TB_ROLE_PRIMARY), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_BEGIN, 10), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_END, 10), 0);
	ck_assert_int_eq(sess(&s, TB_REC_EPOCH_BEGIN, 9), -EPROTO);

	/* through the decoder: a recorded epoch replayed after the next one;
	 * the message lands in d */
	ck_assert_int_eq(tb_enc_hello(&b, &h), 0);
	first_epoch_off = b.len;
	ck_assert_int_eq(tb_enc_epoch_begin(&b, &be), 0);
	ck_assert_int_eq(tb_enc_epoch_end(&b, &en), 0);
	first_epoch_len = b.len - first_epoch_off;
	be.epoch = en.epoch = 11;
	ck_assert_int_eq(tb_enc_epoch_begin(&b, &be), 0);
	ck_assert_int_eq(tb_enc_epoch_end(&b, &en), 0);
	tb_buf_append(&b, b.data + first_epoch_off, first_epoch_len);
	tb_dec_init(&d);
	tb_sess_init(&s, TB_ROLE_PRIMARY);
	ck_assert_int_eq(tb_dec_feed(&d, b.data, b.len), 0);
	while ((rc = tb_dec_next(&d, &r)) == 1) {
		rc = tb_sess_check(&s, &r, &d);
		if (rc)
			break;
		n++;
	}
	ck_assert_int_eq(rc, -EPROTO);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(d.err, TB_SERR_BAD_ORDER);
	ck_assert_msg(strstr(d.msg, "record 5 (EPOCH_BEGIN) at byte ") &&
			      strstr(d.msg, "epoch 10 not above last epoch 11"),
		      "%s", d.msg);
	ck_assert_int_eq(tb_dec_next(&d, &r), -EPROTO); /* sticky */
	tb_dec_free(&d);

	/* backup -> primary: ACKs strictly increase */
	tb_sess_init(&s, TB_ROLE_BACKUP);
	ck_assert_int_eq(sess(&s, TB_REC_ACK, 1), -EPROTO); /* before HELLO */
	tb_sess_init(&s, TB_ROLE_BACKUP);
	ck_assert_int_eq(sess(&s, TB_REC_HELLO, TB_ROLE_PRIMARY),
			 -EPROTONOSUPPORT);
	tb_sess_init(&s, TB_ROLE_BACKUP);
	ck_assert_int_eq(sess(&s, TB_REC_HELLO, TB_ROLE_BACKUP), 0);
	ck_assert_int_eq(sess(&s, TB_REC_ACK, 3), 0);
	ck_assert_int_eq(sess(&s, TB_REC_HEARTBEAT, 0), 0);
	ck_assert_int_eq(sess(&s, TB_REC_ACK, 4), 0);
	ck_assert_int_eq(sess(&s, TB_REC_ACK, 4), -EPROTO);
	tb_sess_init(&s, TB_ROLE_BACKUP);
	ck_assert_int_eq(sess(&s, TB_REC_HELLO, TB_ROLE_BACKUP), 0);
	ck_assert_int_eq(sess(&s, TB_REC_ACK, 4), 0);
	ck_assert_int_eq(sess(&s, TB_REC_ACK, 2), -EPROTO);
	/* the backup never sends epoch content */
	for (uint32_t t = TB_REC_EPOCH_BEGIN; t <= TB_REC_EPOCH_END; t++) {
		tb_sess_init(&s, TB_ROLE_BACKUP);
		ck_assert_int_eq(sess(&s, TB_REC_HELLO, TB_ROLE_BACKUP), 0);
		ck_assert_int_eq(sess(&s, t, 1), -EPROTO);
	}
	/* a decoder error is not overwritten by the session's */
	tb_dec_init(&d);
	d.err = TB_SERR_BAD_CRC;
	strcpy(d.msg, "first");
	tb_sess_init(&s, TB_ROLE_BACKUP);
	r = mk(TB_REC_PAGE_DATA, 0);
	ck_assert_int_eq(tb_sess_check(&s, &r, &d), -EPROTO);
	ck_assert_int_eq(d.err, TB_SERR_BAD_CRC);
	ck_assert_str_eq(d.msg, "first");
	tb_dec_free(&d);
	tb_buf_free(&b);
}
END_TEST

START_TEST(error_codes_map_to_distinct_errnos)
{
	int i, j;

	ck_assert_int_eq(tb_stream_errno(TB_SERR_NONE), 0);
	for (i = 1; i <= TB_SERR_MAX; i++) {
		ck_assert_int_lt(tb_stream_errno(i), 0);
		ck_assert_str_ne(tb_stream_strerr(i), tb_stream_strerr(0));
		for (j = 1; j < i; j++) {
			ck_assert_int_ne(tb_stream_errno(i),
					 tb_stream_errno(j));
			ck_assert_str_ne(tb_stream_strerr(i),
					 tb_stream_strerr(j));
		}
	}
	ck_assert_int_eq(tb_stream_errno(TB_SERR_BAD_DIGEST), -EILSEQ);
	ck_assert_int_eq(tb_stream_errno(TB_SERR_CODEC), -EUCLEAN);
	ck_assert_str_eq(tb_stream_strerr(99), "unknown stream error");
	ck_assert_str_eq(tb_stream_strerr(-1), "unknown stream error");
}
END_TEST

/* ---------------------------------------------------------------- buffer */

START_TEST(decoder_buffer_stays_within_two_records)
{
	struct tb_buf rec = { 0 };
	struct tb_page_rec pr = { 0 };
	static uint8_t page[TB_PAGE_SIZE];
	const size_t want = 256u << 10;
	size_t sent = 0, total, room, n, max_cap = 0, pos;
	unsigned i, nrec = 24, got = 0, reallocs = 0;
	struct tb_dec d;
	struct tb_rec r;
	uint8_t *p, *last = NULL;
	int rc;

	/* the largest PAGE_DATA of raw pages: 1024 x 4 KiB */
	memset(page, 0xa5, sizeof(page));
	ck_assert_int_eq(tb_enc_pages_begin(&pr, &rec, TB_PAGES_PER_REC_MAX),
			 0);
	for (i = 0; i < TB_PAGES_PER_REC_MAX; i++)
		ck_assert_int_eq(tb_enc_pages_add(&pr, i, TB_ENC_RAW, page,
						  TB_PAGE_SIZE),
				 0);
	ck_assert_int_eq(tb_enc_pages_finish(&pr), 0);
	tb_enc_pages_free(&pr);
	total = nrec * rec.len;

	tb_dec_init(&d);
	while (sent < total) {
		while ((rc = tb_dec_next(&d, &r)) == 1) {
			ck_assert_uint_eq(r.u.pages.nr_pages,
					  TB_PAGES_PER_REC_MAX);
			got++;
		}
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(tb_dec_space(&d, want, &p, &room), 0);
		ck_assert_uint_ge(room, want);
		if (d.buf != last) {
			reallocs++;
			last = d.buf;
		}
		/* a receiver reads what the socket has: up to 1 MiB */
		n = TB_MIN(room, total - sent);
		n = TB_MIN(n, (size_t)1 << 20);
		for (pos = 0; pos < n;) {
			size_t at = (sent + pos) % rec.len;
			size_t k = TB_MIN(n - pos, rec.len - at);

			memcpy(p + pos, rec.data + at, k);
			pos += k;
		}
		tb_dec_commit(&d, n);
		sent += n;
		max_cap = TB_MAX(max_cap, d.cap);
	}
	while ((rc = tb_dec_next(&d, &r)) == 1)
		got++;
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(tb_dec_eof(&d), 0);
	ck_assert_uint_eq(got, nrec);
	/* about two records, and no reallocation in steady state */
	ck_assert_msg(max_cap <= 2 * rec.len + want + 65536,
		      "cap %zu, record %zu", max_cap, rec.len);
	ck_assert_uint_le(reallocs, 4);
	tb_dec_free(&d);
	tb_buf_free(&rec);
}
END_TEST

/* ---------------------------------------------------------------- mutation */

START_TEST(mutation_campaign_of_100k_streams)
{
	static struct sm_ctx c;
	struct tb_buf bad = { 0 };
	const uint64_t count = 100000;
	const struct sm_stats *m = &c.st[1];
	int64_t t0 = tb_now_ns();
	int k;

	memset(&c, 0, sizeof(c));
	ck_assert_msg(sm_campaign(&c, 20261123, 0, count, &bad) == 0, "%s",
		      c.fail);
	ck_assert_uint_eq(m->streams, count);
	printf("stream mutation: %" PRIu64
	       " mutants (%.1f MB) in %.1f s: clean %" PRIu64,
	       m->streams, (double)m->bytes / 1e6,
	       (double)(tb_now_ns() - t0) / 1e9, m->clean);
	for (k = 1; k <= TB_SERR_MAX; k++)
		printf(", %s %" PRIu64, tb_stream_strerr(k), m->outcome[k]);
	printf("\n");
	/* every decoder outcome is reached */
	ck_assert_uint_gt(m->clean, 0);
	ck_assert_uint_gt(m->outcome[TB_SERR_TRUNCATED], 0);
	ck_assert_uint_gt(m->outcome[TB_SERR_BAD_CRC], 0);
	ck_assert_uint_gt(m->outcome[TB_SERR_OVERSIZE], 0);
	ck_assert_uint_gt(m->outcome[TB_SERR_BAD_ORDER], 0);
	ck_assert_uint_gt(m->outcome[TB_SERR_UNKNOWN_TYPE], 0);
	ck_assert_uint_gt(m->outcome[TB_SERR_VERSION], 0);
	ck_assert_uint_gt(m->outcome[TB_SERR_BAD_FIELD], 0);
	ck_assert_uint_eq(m->outcome[TB_SERR_BAD_DIGEST], 0);
	ck_assert_uint_eq(m->outcome[TB_SERR_CODEC], 0);
	ck_assert_uint_eq(c.st[0].clean, count); /* all valid streams */
	tb_buf_free(&bad);
	sm_ctx_free(&c);
}
END_TEST

/* The one record in @b, decoded (must be valid). */
static void decode_one(const struct tb_buf *b, struct tb_dec *d,
		       struct tb_rec *rec)
{
	tb_dec_init(d);
	ck_assert_int_eq(tb_dec_feed(d, b->data, b->len), 0);
	ck_assert_int_eq(tb_dec_next(d, rec), 1);
}

/* A DISK_WRITE body: header fields, then @plen payload bytes of @fill. */
static int disk_raw(struct tb_buf *b, uint32_t disk, uint8_t enc, uint8_t res,
		    uint64_t off, uint32_t len, uint32_t plen,
		    uint32_t body_plen)
{
	uint8_t body[24 + 64] = { 0 };

	tb_put_le32(body, disk);
	body[4] = enc;
	body[6] = res;
	tb_put_le64(body + 8, off);
	tb_put_le32(body + 16, len);
	tb_put_le32(body + 20, plen);
	memset(body + 24, 0x5a, body_plen);
	tb_buf_reset(b);
	return sm_put_raw(b, TB_REC_DISK_WRITE, body, 24 + body_plen);
}

static int disk_info_raw(struct tb_buf *b, uint32_t disk, uint32_t flags,
			 uint64_t size, uint64_t gen, uint64_t base,
			 uint32_t len)
{
	uint8_t body[40] = { 0 };

	tb_put_le32(body, disk);
	tb_put_le32(body + 4, flags);
	tb_put_le64(body + 8, size);
	tb_put_le64(body + 16, gen);
	tb_put_le64(body + 24, base);
	tb_buf_reset(b);
	return sm_put_raw(b, TB_REC_DISK_INFO, body, len);
}

START_TEST(disk_records_round_trip_and_reject_bad_fields)
{
	uint8_t *data = malloc(TB_DISK_WRITE_MAX),
		*out = malloc(TB_DISK_WRITE_MAX);
	uint8_t *scratch = malloc(TB_DISK_LZ4_MAX);
	struct tb_buf b = { 0 };
	struct tb_digest d1, d2;
	struct sm_rng rng = { 42 };
	struct tb_disk_info di = { .disk = 2,
				   .flags = TB_DISK_KEEP,
				   .size = 1ull << 30,
				   .gen = 0xabcdef,
				   .base_epoch = 9 };
	struct tb_dec d;
	struct tb_rec rec;
	uint32_t i;

	ck_assert(data && out && scratch);
	/* DISK_INFO */
	ck_assert_int_eq(tb_enc_disk_info(&b, &di), 0);
	decode_one(&b, &d, &rec);
	ck_assert_uint_eq(rec.type, TB_REC_DISK_INFO);
	ck_assert_uint_eq(rec.u.disk_info.disk, 2);
	ck_assert_uint_eq(rec.u.disk_info.flags, TB_DISK_KEEP);
	ck_assert_uint_eq(rec.u.disk_info.size, 1ull << 30);
	ck_assert_uint_eq(rec.u.disk_info.gen, 0xabcdef);
	ck_assert_uint_eq(rec.u.disk_info.base_epoch, 9);
	tb_dec_free(&d);
	/* RAW (random), LZ4 (compressible, the largest write), ZERO */
	sm_fill(&rng, data, 4096);
	tb_buf_reset(&b);
	ck_assert_int_eq(
		tb_enc_disk_write(&b, 1, 4096 * 3, data, 4096, scratch), 0);
	decode_one(&b, &d, &rec);
	ck_assert_uint_eq(rec.u.disk_write.enc, TB_ENC_RAW);
	ck_assert_uint_eq(rec.u.disk_write.offset, 4096 * 3);
	ck_assert_int_eq(tb_disk_write_decode(&rec.u.disk_write, out), 0);
	ck_assert(!memcmp(out, data, 4096));
	tb_dec_free(&d);
	for (i = 0; i < TB_DISK_WRITE_MAX; i++)
		data[i] = (uint8_t)("durable log "[i % 12]);
	tb_buf_reset(&b);
	ck_assert_int_eq(tb_enc_disk_write(&b, 0, 512, data, TB_DISK_WRITE_MAX,
					   scratch),
			 0);
	decode_one(&b, &d, &rec);
	ck_assert_uint_eq(rec.u.disk_write.enc, TB_ENC_LZ4);
	ck_assert_uint_lt(rec.u.disk_write.payload_len, TB_DISK_WRITE_MAX / 16);
	ck_assert_int_eq(tb_disk_write_decode(&rec.u.disk_write, out), 0);
	ck_assert(!memcmp(out, data, TB_DISK_WRITE_MAX));
	/* a payload that does not decode to the length: CODEC */
	rec.u.disk_write.len -= 512;
	ck_assert_int_eq(tb_disk_write_decode(&rec.u.disk_write, out),
			 -EUCLEAN);
	tb_dec_free(&d);
	memset(data, 0, 8192);
	tb_buf_reset(&b);
	ck_assert_int_eq(tb_enc_disk_write(&b, 0, 0, data, 8192, scratch), 0);
	decode_one(&b, &d, &rec);
	ck_assert_uint_eq(rec.u.disk_write.enc, TB_ENC_ZERO);
	ck_assert_uint_eq(rec.u.disk_write.payload_len, 0);
	memset(out, 1, 8192);
	ck_assert_int_eq(tb_disk_write_decode(&rec.u.disk_write, out), 0);
	ck_assert(!memcmp(out, data, 8192));
	tb_dec_free(&d);
	/* a ZERO write digests like the zero bytes themselves */
	ck_assert_int_eq(tb_digest_init(&d1), 0);
	ck_assert_int_eq(tb_digest_init(&d2), 0);
	tb_digest_disk_write(&d1, 3, 1024, NULL, 8192);
	tb_digest_disk_write(&d2, 3, 1024, data, 8192);
	ck_assert_uint_eq(tb_digest_final(&d1), tb_digest_final(&d2));
	tb_digest_disk_write(&d1, 3, 1024, NULL, 8192);
	tb_digest_disk_write(&d2, 3, 1536, NULL, 8192); /* offset counts */
	ck_assert_uint_ne(tb_digest_final(&d1), tb_digest_final(&d2));
	tb_digest_free(&d1);
	tb_digest_free(&d2);
	/* the encoder refuses what the decoder would */
	ck_assert_int_eq(tb_enc_disk_write(&b, 0, 0, data, 100, scratch),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_disk_write(&b, 0, 100, data, 512, scratch),
			 -EINVAL);
	ck_assert_int_eq(tb_enc_disk_write(&b, 8, 0, data, 512, scratch),
			 -EINVAL);
	di.size = 4097;
	ck_assert_int_eq(tb_enc_disk_info(&b, &di), -EINVAL);

	/* bad fields, as a hostile peer would send them */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_RAW, 0, 0, 64, 64, 64), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* < sector */
	ck_assert_int_eq(disk_raw(&b, 8, TB_ENC_ZERO, 0, 0, 512, 0, 0), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* disk */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_ZERO, 1, 0, 512, 0, 0), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* reserved */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_XOR_LZ4, 0, 0, 512, 8, 8), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* no XOR */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_ZERO, 0, 0, 0, 0, 0), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* empty */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_ZERO, 0, 0,
				  TB_DISK_WRITE_MAX + 512, 0, 0),
			 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_OVERSIZE);
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_ZERO, 0, 100, 512, 0, 0), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* alignment */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_ZERO, 0, TB_DISK_SIZE_MAX, 512,
				  0, 0),
			 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* beyond */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_LZ4, 0, 0, 512, 9, 8), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* plen */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_LZ4, 0, 0, 512, 0, 0), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* empty LZ4 */
	ck_assert_int_eq(disk_raw(&b, 0, TB_ENC_ZERO, 0, 0, 512, 8, 8), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* ZERO+data */
	ck_assert_int_eq(disk_info_raw(&b, 0, 0, 0, 5, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* size 0 */
	ck_assert_int_eq(disk_info_raw(&b, 0, 0, 4096 + 512, 5, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD);
	ck_assert_int_eq(
		disk_info_raw(&b, 0, 0, TB_DISK_SIZE_MAX + 4096, 5, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD);
	ck_assert_int_eq(disk_info_raw(&b, 0, 2, 4096, 5, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* flags */
	ck_assert_int_eq(disk_info_raw(&b, TB_DISKS_MAX, 0, 4096, 5, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD);
	ck_assert_int_eq(disk_info_raw(&b, 0, 0, 4096, 0, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* gen 0 */
	ck_assert_int_eq(disk_info_raw(&b, 0, 0, 4096, 5, 3, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* base */
	ck_assert_int_eq(disk_info_raw(&b, 0, TB_DISK_KEEP, 4096, 5, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD); /* no base */
	ck_assert_int_eq(disk_info_raw(&b, 0, 0, 4096, 5, 0, 40), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_OVERSIZE); /* length */
	ck_assert_int_eq(disk_info_raw(&b, 0, 0, 4096, 5, 0, 16), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_BAD_FIELD);
	ck_assert_int_eq(disk_info_raw(&b, 0, 0, 4096, 5, 0, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_NONE);
	ck_assert_int_eq(disk_info_raw(&b, 0, TB_DISK_KEEP, 4096, 5, 3, 32), 0);
	ck_assert_int_eq(decode_code(&b), TB_SERR_NONE);
	tb_buf_free(&b);
	free(data);
	free(out);
	free(scratch);
}
END_TEST

static Suite *stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("core");
	TCase *slow = tcase_create("mutation");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, crc32c_check_values_both_paths);
	tcase_add_test(tc,
		       crc32c_paths_agree_on_random_data_lengths_alignments);
	tcase_add_test(tc, digest_is_xxh3_over_the_documented_bytes);
	tcase_add_test(tc, page_crc_digest_is_xxh3_over_pfn_and_crc32c);
	tcase_add_test(tc, round_trip_of_every_record_type);
	tcase_add_test(tc, wire_layout_is_little_endian_padded_and_crc_covered);
	tcase_add_test(tc, known_answer_records_of_the_spec);
	tcase_add_test(tc, page_builder_compacts_fills_and_rejects);
	tcase_add_test(tc, encoders_reject_invalid_fields);
	tcase_add_test(tc, decoding_is_independent_of_chunking);
	tcase_add_test(tc, truncated_stream_is_detected_at_every_cut);
	tcase_add_test(tc, bad_crc_nonzero_pad_and_trailer_are_rejected);
	tcase_add_test(tc,
		       oversize_is_rejected_from_the_header_before_buffering);
	tcase_add_test(tc, unknown_mandatory_type_fails_optional_is_skipped);
	tcase_add_test(tc, version_and_magic_mismatch);
	tcase_add_test(tc, bad_field_values_are_rejected);
	tcase_add_test(tc, session_order_primary_to_backup);
	tcase_add_test(tc, session_rejects_replayed_and_reordered_epochs);
	tcase_add_test(tc, error_codes_map_to_distinct_errnos);
	tcase_add_test(tc, decoder_buffer_stays_within_two_records);
	tcase_add_test(tc, disk_records_round_trip_and_reject_bad_fields);
	suite_add_tcase(s, tc);
	/* 100,000 mutants also under ASan: well under a minute */
	tcase_set_timeout(slow, 300);
	tcase_add_test(slow, mutation_campaign_of_100k_streams);
	suite_add_tcase(s, slow);
	return s;
}

TB_CHECK_MAIN(stream_suite)
