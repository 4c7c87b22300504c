// SPDX-License-Identifier: MIT
/*
 * Page codec: bit-exact round trips, the encoding chosen per content,
 * stats, and hostile payloads (rejected or decoded to some page, never
 * an out-of-bounds access: payloads live in exact-size heap blocks so
 * ASan sees any over-read).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "check_main.h"
#include "tiber/codec.h"
#include "tiber/common.h"

#define PS TB_PAGE_SIZE

enum kind {
	K_ZERO,
	K_TEXT,
	K_RANDOM,
	K_DELTA,
	K_SCATTER,
	K_SAME,
	K_NR
};

static void fill_random(uint8_t *p, size_t n, unsigned *seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(rand_r(seed) >> 7);
}

/* Prose- and code-like text from a small vocabulary. */
static void fill_text(uint8_t *p, size_t n, unsigned *seed)
{
	static const char *const words[] = {
		"the",	   "page",	 "of",	     "memory",	 "is",
		"copied",  "to",	 "a",	     "backup",	 "host",
		"while",   "guest",	 "runs",     "and",	 "every",
		"epoch",   "checkpoint", "must",     "be",	 "acknowledged",
		"before",  "output",	 "released", "struct",	 "int",
		"return",  "if",	 "else",     "for",	 "static",
		"const",   "char",	 "unsigned", "long",	 "buffer",
		"length",  "error",	 "count",    "value",	 "network",
		"replica", "state",	 "device",   "kernel",	 "in",
		"with",	   "that",	 "which",    "from",	 "by",
		"on",	   "this",	 "license",  "software",
	};
	size_t i = 0, w, len;
	int cap = 1;

	while (i < n) {
		const char *s = words[rand_r(seed) % TB_ARRAY_SIZE(words)];
		char tmp[32];

		len = strlen(s);
		memcpy(tmp, s, len);
		if (cap)
			tmp[0] = (char)(tmp[0] - 'a' + 'A');
		cap = 0;
		w = rand_r(seed) % 16;
		if (w == 0) {
			tmp[len++] = '.';
			cap = 1;
		} else if (w == 1) {
			tmp[len++] = ',';
		} else if (w == 2) {
			len += (size_t)snprintf(tmp + len, sizeof(tmp) - len,
						" %d", rand_r(seed) % 10000);
		}
		tmp[len++] = (rand_r(seed) % 12 == 0) ? '\n' : ' ';
		w = TB_MIN(len, n - i);
		memcpy(p + i, tmp, w);
		i += w;
	}
}

/* Change @pct percent of the bytes of @p (each to a different value). */
static void perturb(uint8_t *p, unsigned pct, unsigned *seed)
{
	unsigned i, n = PS * pct / 100;

	for (i = 0; i < n; i++)
		p[rand_r(seed) % PS] ^= (uint8_t)(1 + rand_r(seed) % 255);
}

/* Page of @k into @page; its shadow (the previous copy) into @shadow. */
static void make_page(enum kind k, uint8_t *page, uint8_t *shadow,
		      unsigned *seed)
{
	switch (k) {
	case K_ZERO:
		memset(page, 0, PS);
		fill_random(shadow, PS, seed);
		break;
	case K_TEXT:
		fill_text(page, PS, seed);
		fill_text(shadow, PS, seed);
		break;
	case K_RANDOM:
		fill_random(page, PS, seed);
		fill_random(shadow, PS, seed);
		break;
	case K_DELTA:
		fill_text(shadow, PS, seed);
		memcpy(page, shadow, PS);
		perturb(page, 1, seed);
		break;
	case K_SCATTER: /* 5 %: XOR_MASK */
		fill_text(shadow, PS, seed);
		memcpy(page, shadow, PS);
		perturb(page, 5, seed);
		break;
	case K_SAME:
	case K_NR:
		fill_text(shadow, PS, seed);
		memcpy(page, shadow, PS);
		break;
	}
}

/* Length rules every payload the encoder emits must follow. */
static void check_len(uint8_t enc, uint32_t len)
{
	switch (enc) {
	case TB_ENC_ZERO:
		ck_assert_uint_eq(len, 0);
		break;
	case TB_ENC_RAW:
		ck_assert_uint_eq(len, PS);
		break;
	case TB_ENC_LZ4:
	case TB_ENC_XOR_LZ4:
	case TB_ENC_XOR_RLE:
		ck_assert_uint_ge(len, 1);
		ck_assert_uint_le(len, TB_CODEC_LZ4_MAX);
		break;
	case TB_ENC_XOR_MASK:
		ck_assert_uint_ge(len, 64);
		ck_assert_uint_le(len, TB_CODEC_RLE_CAP);
		break;
	default:
		ck_abort_msg("bad encoding %u", enc);
	}
}

/* Encode @page, check the length rules, decode into a fresh page with
 * prev = @shadow (or a garbage page when there is none), compare. */
static uint8_t roundtrip(const struct tb_codec_opts *o, const uint8_t *page,
			 const uint8_t *shadow, uint32_t *len_out)
{
	uint8_t *out = malloc(TB_CODEC_OUT_MAX), *back = malloc(PS);
	uint8_t *payload, enc = 0xff;
	uint32_t len = 0xffffffff;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(
		tb_codec_encode(o, page, shadow, out, &enc, &len, NULL), 0);
	check_len(enc, len);
	if (!shadow || !o->xor_delta)
		ck_assert(enc != TB_ENC_XOR_LZ4 && enc != TB_ENC_XOR_RLE &&
			  enc != TB_ENC_XOR_MASK);
	if (!o->rle)
		ck_assert_uint_ne(enc, TB_ENC_XOR_RLE);
	if (!o->mask)
		ck_assert_uint_ne(enc, TB_ENC_XOR_MASK);
	if (enc == TB_ENC_XOR_RLE)
		ck_assert_uint_le(len, TB_CODEC_RLE_CAP);
	if (!o->compress)
		ck_assert(enc == TB_ENC_ZERO || enc == TB_ENC_RAW);
	/* exact-size copy: an over-read of the payload trips ASan */
	payload = len ? malloc(len) : NULL;
	if (len)
		memcpy(payload, out, len);
	memset(back, 0xa5, PS);
	ck_assert_int_eq(tb_codec_decode(enc, payload, len, shadow, back), 0);
	ck_assert_int_eq(memcmp(back, page, PS), 0);
	free(payload);
	free(back);
	free(out);
	if (len_out)
		*len_out = len;
	return enc;
}

START_TEST(is_zero_finds_a_single_nonzero_byte_anywhere)
{
	uint8_t *p = calloc(1, PS);
	size_t i;

	ck_assert(tb_page_is_zero(p));
	for (i = 0; i < PS; i++) {
		p[i] = (uint8_t)(1u << (i % 8));
		ck_assert_msg(!tb_page_is_zero(p), "byte %zu", i);
		p[i] = 0;
	}
	ck_assert(tb_page_is_zero(p));
	free(p);
}
END_TEST

START_TEST(round_trips_are_bit_exact_for_every_kind_and_option)
{
	static const int accels[] = { 1, 2, 8, 65537 };
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	unsigned seed = 11, k, a, c;

	/* c's bits: shadow, compress, xor_delta, try_plain, rle, mask */
	for (k = 0; k < K_NR; k++) {
		for (a = 0; a < TB_ARRAY_SIZE(accels); a++) {
			for (c = 0; c < 64; c++) {
				struct tb_codec_opts o = {
					.compress = c & 2,
					.xor_delta = c & 4,
					.accel = accels[a],
					.try_plain = c & 8,
					.rle = c & 16,
					.mask = c & 32,
				};

				make_page(k, page, shadow, &seed);
				roundtrip(&o, page, (c & 1) ? shadow : NULL,
					  NULL);
			}
		}
	}
	free(page);
	free(shadow);
}
END_TEST

/* The expected choice per content, with the default options. */
START_TEST(chosen_encodings_match_the_content)
{
	struct tb_codec_opts def = TB_CODEC_OPTS_DEFAULT;
	struct tb_codec_opts off = def, noxor = def, plain = def, lz = def;
	struct tb_codec_opts runs = def;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	unsigned seed = 5;
	uint32_t len;

	off.compress = false;
	noxor.xor_delta = false;
	plain.try_plain = true;
	lz.rle = false;
	lz.mask = false;
	runs.mask = false;

	make_page(K_ZERO, page, shadow, &seed);
	ck_assert_uint_eq(roundtrip(&def, page, NULL, NULL), TB_ENC_ZERO);
	ck_assert_uint_eq(roundtrip(&def, page, shadow, NULL), TB_ENC_ZERO);
	ck_assert_uint_eq(roundtrip(&off, page, shadow, NULL), TB_ENC_ZERO);

	make_page(K_RANDOM, page, shadow, &seed);
	ck_assert_uint_eq(roundtrip(&def, page, NULL, NULL), TB_ENC_RAW);
	ck_assert_uint_eq(roundtrip(&def, page, shadow, NULL), TB_ENC_RAW);
	ck_assert_uint_eq(roundtrip(&plain, page, shadow, NULL), TB_ENC_RAW);

	make_page(K_TEXT, page, shadow, &seed);
	ck_assert_uint_eq(roundtrip(&def, page, NULL, &len), TB_ENC_LZ4);
	ck_assert_uint_lt(len, PS * 3 / 4); /* text compresses >= 1.33x */
	ck_assert_uint_eq(roundtrip(&noxor, page, shadow, NULL), TB_ENC_LZ4);
	ck_assert_uint_eq(roundtrip(&off, page, NULL, NULL), TB_ENC_RAW);
	/* text over a random shadow: the delta is random, so RAW, unless
	 * try_plain gets the plain lz4 of the text */
	fill_random(shadow, PS, &seed);
	ck_assert_uint_eq(roundtrip(&def, page, shadow, NULL), TB_ENC_RAW);
	ck_assert_uint_eq(roundtrip(&plain, page, shadow, NULL), TB_ENC_LZ4);

	make_page(K_DELTA, page, shadow, &seed);
	/* 1 % of the bytes changed: runs, about 3 bytes per changed byte */
	ck_assert_uint_eq(roundtrip(&def, page, shadow, &len), TB_ENC_XOR_RLE);
	ck_assert_uint_lt(len, PS / 20);
	ck_assert_uint_eq(roundtrip(&lz, page, shadow, &len), TB_ENC_XOR_LZ4);
	ck_assert_uint_lt(len, PS / 8); /* >= 8x */
	ck_assert_uint_eq(roundtrip(&off, page, shadow, NULL), TB_ENC_RAW);
	/* 30 % changed: the runs do not fit TB_CODEC_RLE_CAP, lz4 or RAW */
	make_page(K_DELTA, page, shadow, &seed);
	perturb(page, 30, &seed);
	ck_assert_uint_ne(roundtrip(&def, page, shadow, NULL), TB_ENC_XOR_RLE);

	/* 1 % of 8-byte words changed in a random page */
	fill_random(shadow, PS, &seed);
	memcpy(page, shadow, PS);
	for (len = 0; len < PS / 8 / 100; len++)
		page[8 * (rand_r(&seed) % (PS / 8))] ^= 0x5a;
	ck_assert_uint_eq(roundtrip(&def, page, shadow, &len), TB_ENC_XOR_RLE);
	ck_assert_uint_lt(len, 32);
	ck_assert_uint_eq(roundtrip(&lz, page, shadow, &len), TB_ENC_XOR_LZ4);
	ck_assert_uint_lt(len, PS / 8);
	ck_assert_uint_eq(roundtrip(&def, page, NULL, NULL), TB_ENC_RAW);

	/* runs at both ends of the page and in every 64-byte chunk */
	memcpy(page, shadow, PS);
	page[0] ^= 1;
	page[PS - 1] ^= 0x80;
	ck_assert_uint_eq(roundtrip(&def, page, shadow, &len), TB_ENC_XOR_RLE);
	ck_assert_uint_eq(len,
			  1 + 1 + 1 + 2 + 1 + 1 + 1); /* two runs, 0 left */
	/* and the last byte of each chunk: 65 runs of 3 bytes and a ZRUN
	 * of 0, or 64 bytes of WMASK, then 65 words of 1 byte */
	for (len = 0; len < PS; len += 64)
		page[len + 63] ^= 7;
	ck_assert_uint_eq(roundtrip(&runs, page, shadow, &len), TB_ENC_XOR_RLE);
	ck_assert_uint_eq(len, 65 * 3 + 1);
	ck_assert_uint_eq(roundtrip(&def, page, shadow, &len), TB_ENC_XOR_MASK);
	ck_assert_uint_eq(len, 64 + 65 + 65);

	make_page(K_SAME, page, shadow, &seed);
	ck_assert_uint_eq(roundtrip(&def, page, shadow, &len), TB_ENC_XOR_RLE);
	ck_assert_uint_eq(len, 2); /* ZRUN 4096 */
	ck_assert_uint_eq(roundtrip(&lz, page, shadow, &len), TB_ENC_XOR_LZ4);
	ck_assert_uint_lt(len, 64);
	free(page);
	free(shadow);
}
END_TEST

START_TEST(stats_count_pages_and_bytes_per_encoding)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	struct tb_codec_stats st = { 0 };
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(TB_CODEC_OUT_MAX), enc;
	uint64_t want_out = 0;
	unsigned seed = 3, k;
	uint32_t len;

	for (k = 0; k < K_NR; k++) {
		make_page(k, page, shadow, &seed);
		ck_assert_int_eq(tb_codec_encode(&o, page, shadow, out, &enc,
						 &len, &st),
				 0);
		want_out += len;
	}
	/* zero, text over text (XOR or RAW), random, delta, same */
	ck_assert_uint_eq(st.pages[TB_ENC_ZERO], 1);
	ck_assert_uint_eq(
		st.pages[TB_ENC_ZERO] + st.pages[TB_ENC_RAW] +
			st.pages[TB_ENC_LZ4] + st.pages[TB_ENC_XOR_LZ4] +
			st.pages[TB_ENC_XOR_RLE] + st.pages[TB_ENC_XOR_MASK],
		K_NR);
	ck_assert_uint_ge(st.pages[TB_ENC_XOR_RLE], 2);	 /* delta, same */
	ck_assert_uint_eq(st.pages[TB_ENC_XOR_MASK], 1); /* scatter */
	ck_assert_uint_ge(st.pages[TB_ENC_RAW], 1);
	ck_assert_uint_eq(st.bytes_in, (uint64_t)K_NR * PS);
	ck_assert_uint_eq(st.bytes_out, want_out);
	free(out);
	free(page);
	free(shadow);
}
END_TEST

START_TEST(bad_arguments_are_einval)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = calloc(1, PS), *out = malloc(TB_CODEC_OUT_MAX), enc;
	uint32_t len;

	page[7] = 1;
	o.accel = 0;
	ck_assert_int_eq(tb_codec_encode(&o, page, NULL, out, &enc, &len, NULL),
			 -EINVAL);
	o.accel = -3;
	ck_assert_int_eq(tb_codec_encode(&o, page, NULL, out, &enc, &len, NULL),
			 -EINVAL);
	o.accel = 1;
	ck_assert_int_eq(tb_codec_encode(NULL, page, NULL, out, &enc, &len,
					 NULL),
			 -EINVAL);
	ck_assert_int_eq(tb_codec_encode(&o, NULL, NULL, out, &enc, &len, NULL),
			 -EINVAL);
	ck_assert_int_eq(tb_codec_encode(&o, page, NULL, NULL, &enc, &len,
					 NULL),
			 -EINVAL);
	ck_assert_int_eq(tb_codec_decode(TB_ENC_ZERO, NULL, 0, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(tb_codec_decode(TB_ENC_RAW, NULL, PS, NULL, out),
			 -EINVAL);
	free(page);
	free(out);
}
END_TEST

START_TEST(xor_decode_in_place_over_prev)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(TB_CODEC_OUT_MAX), enc;
	unsigned seed = 9;
	uint32_t len;

	/* 0: XOR_LZ4, 1: XOR_RLE, 2: XOR_MASK */
	for (int kind = 0; kind < 3; kind++) {
		o.rle = kind == 1;
		o.mask = kind == 2;
		make_page(K_DELTA, page, shadow, &seed);
		ck_assert_int_eq(tb_codec_encode(&o, page, shadow, out, &enc,
						 &len, NULL),
				 0);
		ck_assert_uint_eq(enc, kind == 1 ? TB_ENC_XOR_RLE :
				       kind == 2 ? TB_ENC_XOR_MASK :
						   TB_ENC_XOR_LZ4);
		ck_assert_int_eq(tb_codec_decode(enc, out, len, shadow, shadow),
				 0);
		ck_assert_int_eq(memcmp(shadow, page, PS), 0);
	}
	free(out);
	free(page);
	free(shadow);
}
END_TEST

START_TEST(fixed_corruptions_are_rejected_and_leave_output_alone)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(PS + 64), *back = malloc(PS), *p, enc;
	uint8_t *before = malloc(PS);
	unsigned seed = 21, e;
	uint32_t len, n;

	o.rle = o.mask = false; /* XOR_LZ4 here; the others: own tests */
	make_page(K_DELTA, page, shadow, &seed);
	ck_assert_int_eq(
		tb_codec_encode(&o, page, shadow, out, &enc, &len, NULL), 0);
	ck_assert_uint_eq(enc, TB_ENC_XOR_LZ4);
	fill_random(back, PS, &seed);
	memcpy(before, back, PS);

	/* every truncation, exact-size copies */
	for (n = 0; n < len; n++) {
		p = malloc(n ? n : 1);
		memcpy(p, out, n);
		ck_assert_int_eq(tb_codec_decode(enc, p, n, shadow, back),
				 -EBADMSG);
		ck_assert_int_eq(tb_codec_decode(TB_ENC_LZ4, p, n, NULL, back),
				 -EBADMSG);
		free(p);
	}
	/* trailing garbage, up to and past the compressed limit */
	fill_random(out + len, PS + 64 - len, &seed);
	for (n = len + 1; n <= PS + 64; n += (n < len + 64) ? 1 : 61) {
		p = malloc(n);
		memcpy(p, out, n);
		ck_assert_int_eq(tb_codec_decode(enc, p, n, shadow, back),
				 -EBADMSG);
		free(p);
	}
	/* XOR without prev */
	ck_assert_int_eq(tb_codec_decode(enc, out, len, NULL, back), -EBADMSG);
	/* unknown encodings */
	for (e = TB_ENC_MAX + 1; e < 256; e++)
		ck_assert_int_eq(tb_codec_decode((uint8_t)e, out, len, shadow,
						 back),
				 -EBADMSG);
	/* wrong lengths for ZERO and RAW */
	ck_assert_int_eq(tb_codec_decode(TB_ENC_ZERO, out, 1, NULL, back),
			 -EBADMSG);
	ck_assert_int_eq(tb_codec_decode(TB_ENC_RAW, out, len, NULL, back),
			 -EBADMSG);
	ck_assert_int_eq(tb_codec_decode(TB_ENC_RAW, out, PS + 1, NULL, back),
			 -EBADMSG);
	ck_assert_int_eq(tb_codec_decode(TB_ENC_RAW, NULL, 0, NULL, back),
			 -EBADMSG);
	/* a raw page presented as lz4 is too long for it */
	ck_assert_int_eq(tb_codec_decode(TB_ENC_LZ4, page, PS, NULL, back),
			 -EBADMSG);
	ck_assert_int_eq(memcmp(back, before, PS), 0);
	free(before);
	free(back);
	free(out);
	free(page);
	free(shadow);
}
END_TEST

/* A valid lz4 stream that saves less than TB_CODEC_MIN_GAIN bytes is sent
 * RAW by the encoder and refused by the decoder. */
START_TEST(lz4_that_saves_too_little_is_raw_and_rejected)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *out = malloc(2 * PS), *back = malloc(PS);
	uint8_t *p, enc;
	unsigned seed = 4;
	uint32_t len;
	int n;

	fill_random(page, PS, &seed);
	memset(page + 1000, 0, TB_CODEC_MIN_GAIN / 2);
	n = LZ4_compress_default((const char *)page, (char *)out, PS, 2 * PS);
	ck_assert_int_gt(n, TB_CODEC_LZ4_MAX);
	ck_assert_int_lt(n, PS);
	p = malloc((size_t)n);
	memcpy(p, out, (size_t)n);
	ck_assert_int_eq(tb_codec_decode(TB_ENC_LZ4, p, (uint32_t)n, NULL,
					 back),
			 -EBADMSG);
	ck_assert_int_eq(tb_codec_encode(&o, page, NULL, out, &enc, &len, NULL),
			 0);
	ck_assert_uint_eq(enc, TB_ENC_RAW);
	/* while one that pays is LZ4 */
	memset(page + 1000, 0, 2 * TB_CODEC_MIN_GAIN);
	ck_assert_uint_eq(roundtrip(&o, page, NULL, NULL), TB_ENC_LZ4);
	free(p);
	free(back);
	free(out);
	free(page);
}
END_TEST

/*
 * Random mutations of valid payloads of every kind, and pure garbage:
 * each decode either fails with -EBADMSG and leaves the output page as
 * it was (XOR_RLE: when decoded in place), or succeeds.  ASan checks
 * that nothing is read or written out of bounds (payload and output are
 * exact-size heap blocks).
 */
START_TEST(random_corruptions_never_touch_memory_out_of_bounds)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	unsigned iters = tb_check_scale(6000, 2000), it, seed = 77, j, flips;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(TB_CODEC_OUT_MAX), *back = malloc(PS);
	uint8_t *before = malloc(PS), *p, enc;
	uint32_t len, n;
	unsigned rejected = 0, accepted = 0;
	bool inplace;
	int rc;

	for (it = 0; it < iters; it++) {
		enum kind k = (enum kind)(rand_r(&seed) % K_NR);
		const uint8_t *prev = shadow;

		make_page(k, page, shadow, &seed);
		ck_assert_int_eq(tb_codec_encode(&o, page, shadow, out, &enc,
						 &len, NULL),
				 0);
		switch (rand_r(&seed) % 6) {
		case 0: /* bit flips */
			n = len;
			p = malloc(n ? n : 1);
			memcpy(p, out, n);
			flips = 1 + rand_r(&seed) % 8;
			for (j = 0; n && j < flips; j++)
				p[rand_r(&seed) % n] ^=
					(uint8_t)(1u << (rand_r(&seed) % 8));
			break;
		case 1: /* truncation */
			n = len ? rand_r(&seed) % len : 0;
			p = malloc(n ? n : 1);
			memcpy(p, out, n);
			break;
		case 2: /* over-long: garbage appended */
			n = len + 1 + rand_r(&seed) % 80;
			p = malloc(n);
			memcpy(p, out, len);
			fill_random(p + len, n - len, &seed);
			break;
		case 3: /* wrong encoding byte */
			n = len;
			p = malloc(n ? n : 1);
			memcpy(p, out, n);
			enc = (uint8_t)(rand_r(&seed) % 8);
			break;
		case 4: /* no prev */
			n = len;
			p = malloc(n ? n : 1);
			memcpy(p, out, n);
			prev = NULL;
			break;
		default: /* garbage of any length and encoding */
			n = rand_r(&seed) % (PS + 2);
			p = malloc(n ? n : 1);
			fill_random(p, n, &seed);
			enc = (uint8_t)(rand_r(&seed) % (TB_ENC_MAX + 1));
			break;
		}
		fill_random(back, PS, &seed);
		inplace = prev && rand_r(&seed) % 2;
		if (inplace) { /* as the replica decodes a full sync */
			memcpy(back, prev, PS);
			prev = back;
		}
		memcpy(before, back, PS);
		rc = tb_codec_decode(enc, n ? p : NULL, n, prev, back);
		ck_assert_msg(rc == 0 || rc == -EBADMSG, "rc=%d", rc);
		if (rc) {
			/* unchanged, but for XOR_RLE into another page
			 * (to be discarded, as the contract says) */
			if (inplace || enc != TB_ENC_XOR_RLE)
				ck_assert_int_eq(memcmp(back, before, PS), 0);
			rejected++;
		} else {
			accepted++;
		}
		free(p);
	}
	/* both outcomes happen, and most corruptions are caught */
	ck_assert_uint_gt(rejected, iters / 2);
	ck_assert_uint_gt(accepted, 0);
	free(before);
	free(back);
	free(out);
	free(page);
	free(shadow);
}
END_TEST

struct thr_arg {
	unsigned seed;
	unsigned iters;
	int failures;
};

static void *thr_main(void *argp)
{
	struct thr_arg *a = argp;
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(TB_CODEC_OUT_MAX), *back = malloc(PS), enc;
	uint32_t len;
	unsigned i;

	for (i = 0; i < a->iters; i++) {
		make_page((enum kind)(i % K_NR), page, shadow, &a->seed);
		if (tb_codec_encode(&o, page, shadow, out, &enc, &len, NULL) ||
		    tb_codec_decode(enc, out, len, shadow, back) ||
		    memcmp(back, page, PS))
			a->failures++;
	}
	free(back);
	free(out);
	free(page);
	free(shadow);
	return NULL;
}

START_TEST(concurrent_threads_round_trip_independently)
{
	struct thr_arg args[4];
	pthread_t t[4];
	unsigned i;

	for (i = 0; i < 4; i++) {
		args[i] =
			(struct thr_arg){ .seed = 100 + i,
					  .iters = tb_check_scale(2000, 400) };
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, thr_main, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(args[i].failures, 0);
	}
}
END_TEST

/* XOR_RLE from a hostile peer: every cut, every byte changed, and hand-
 * made bad runs are rejected, a decode in place leaving the page as it
 * was, or decode to some page; never a read or write out of bounds
 * (exact-size copies). */
static int in_place(uint8_t enc, const uint8_t *payload, uint32_t n,
		    const uint8_t *shadow, uint8_t *back)
{
	uint8_t *p = malloc(n ? n : 1);
	int rc;

	memcpy(p, payload, n);
	memcpy(back, shadow, PS);
	rc = tb_codec_decode(enc, p, n, back, back);
	if (rc)
		ck_assert_int_eq(memcmp(back, shadow, PS), 0);
	free(p);
	return rc;
}

START_TEST(rle_corruptions_are_rejected_or_harmless)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(PS), *back = malloc(PS), enc;
	unsigned seed = 33, i, v;
	uint32_t len, n;
	static const struct {
		uint8_t b[8];
		uint32_t len;
		int rc;
	} hand[] = {
		{ { 0x80, 0x20 }, 2, 0 },		    /* ZRUN 4096 */
		{ { 0x00, 0x01, 0x01, 0xff, 0x1f }, 5, 0 }, /* 1 + 4095 */
		{ { 0xff, 0x1f }, 2, -EBADMSG },       /* ZRUN 4095: short */
		{ { 0x81, 0x20 }, 2, -EBADMSG },       /* ZRUN 4097 */
		{ { 0x80, 0x80, 0x01 }, 3, -EBADMSG }, /* 3-byte ULEB */
		{ { 0x00, 0x00, 0x80, 0x20 }, 4, -EBADMSG }, /* NRUN 0 */
		{ { 0x00, 0x02, 0xaa }, 3, -EBADMSG }, /* NRUN past the end */
		{ { 0xff, 0x1f, 0x02, 1, 2 }, 5, -EBADMSG }, /* past the page */
		{ { 0x00, 0x01, 0x01, 0x80 }, 4, -EBADMSG }, /* ULEB cut */
		{ { 0x00, 0x01, 0x01, 0x00, 0x01, 0x01, 0x7f },
		  7,
		  -EBADMSG }, /* two runs applied, then short: undone */
	};

	make_page(K_DELTA, page, shadow, &seed);
	ck_assert_int_eq(
		tb_codec_encode(&o, page, shadow, out, &enc, &len, NULL), 0);
	ck_assert_uint_eq(enc, TB_ENC_XOR_RLE);
	for (n = 0; n < len; n++) /* every cut */
		ck_assert_int_eq(in_place(TB_ENC_XOR_RLE, out, n, shadow, back),
				 -EBADMSG);
	for (i = 0; i < len; i++) { /* every byte, a few values */
		for (v = 1; v < 256; v += 51) {
			out[i] ^= (uint8_t)v;
			in_place(TB_ENC_XOR_RLE, out, len, shadow, back);
			out[i] ^= (uint8_t)v;
		}
	}
	ck_assert_int_eq(in_place(TB_ENC_XOR_RLE, out, len, shadow, back), 0);
	ck_assert_int_eq(memcmp(back, page, PS), 0);
	ck_assert_int_eq(tb_codec_decode(enc, out, len, NULL, back), -EBADMSG);
	for (i = 0; i < TB_ARRAY_SIZE(hand); i++) {
		ck_assert_int_eq(in_place(TB_ENC_XOR_RLE, hand[i].b,
					  hand[i].len, shadow, back),
				 hand[i].rc);
		ck_assert_uint_eq(back[0], shadow[0] ^ (i == 1 ? 1 : 0));
	}
	free(back);
	free(out);
	free(page);
	free(shadow);
}
END_TEST

/* The XOR_MASK example of docs/stream-format.md 5.3, byte for byte. */
START_TEST(xor_mask_known_answer)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(TB_CODEC_OUT_MAX), want[71] = { 0 }, enc;
	unsigned seed = 8;
	uint32_t len;

	fill_text(shadow, PS, &seed);
	memcpy(page, shadow, PS);
	page[0] ^= 0x11; /* word 0 */
	page[9] ^= 0x22; /* word 1, bytes 1 and 2 */
	page[10] ^= 0x33;
	page[PS - 1] ^= 0x44; /* word 511: chunk 63, word 7, byte 7 */
	want[0] = 0x03;	      /* WMASK: words 0 and 1 of chunk 0 */
	want[63] = 0x80;      /* and word 7 of chunk 63 */
	want[64] = 0x01;      /* BMASK of word 0 */
	want[65] = 0x06;      /* of word 1 */
	want[66] = 0x80;      /* of word 511 */
	want[67] = 0x11;      /* BYTES */
	want[68] = 0x22;
	want[69] = 0x33;
	want[70] = 0x44;
	o.rle = false;
	for (int portable = 0; portable < 2; portable++) {
		tb_codec_use_portable(portable);
		ck_assert_int_eq(tb_codec_encode(&o, page, shadow, out, &enc,
						 &len, NULL),
				 0);
		ck_assert_uint_eq(enc, TB_ENC_XOR_MASK);
		ck_assert_uint_eq(len, sizeof(want));
		ck_assert_mem_eq(out, want, sizeof(want));
		ck_assert_int_eq(in_place(enc, want, sizeof(want), shadow, out),
				 0);
		ck_assert_mem_eq(out, page, PS);
	}
	tb_codec_use_portable(false);
	free(out);
	free(page);
	free(shadow);
}
END_TEST

/* Words and bytes of the delta page ^ shadow: what XOR_MASK carries. */
static uint32_t mask_len(const uint8_t *page, const uint8_t *shadow)
{
	uint32_t n = 64;

	for (unsigned w = 0; w < PS / 8; w++) {
		unsigned b = 0;

		for (unsigned j = 0; j < 8; j++)
			b += page[8 * w + j] != shadow[8 * w + j];
		n += b ? b + 1 : 0;
	}
	return n;
}

/* From 1 % to 10 % of the bytes changed, scattered or in clumps: with
 * masks the payload is never larger than without, is XOR_MASK where
 * the bytes are scattered (4 % and more), and has exactly the length
 * the format gives. */
START_TEST(xor_mask_is_chosen_where_it_is_smaller)
{
	struct tb_codec_opts def = TB_CODEC_OPTS_DEFAULT, runs = def;
	uint8_t *page = malloc(PS), *shadow = malloc(PS), enc;
	uint8_t *out = malloc(TB_CODEC_OUT_MAX);
	unsigned seed = 17, masks = 0;
	uint32_t len, len_runs;

	runs.mask = false;
	for (unsigned pct = 1; pct <= 10; pct++) {
		for (unsigned clump = 1; clump <= 16; clump *= 4) {
			fill_text(shadow, PS, &seed);
			memcpy(page, shadow, PS);
			for (unsigned i = 0; i < PS * pct / 100 / clump; i++) {
				unsigned at = rand_r(&seed) % (PS - clump);

				for (unsigned j = 0; j < clump; j++)
					page[at + j] ^= (uint8_t)(1 + j);
			}
			enc = roundtrip(&def, page, shadow, &len);
			ck_assert_int_eq(tb_codec_encode(&runs, page, shadow,
							 out, &(uint8_t){ 0 },
							 &len_runs, NULL),
					 0);
			ck_assert_msg(len <= len_runs,
				      "%u%% clump %u: %u > %u bytes", pct,
				      clump, len, len_runs);
			if (enc == TB_ENC_XOR_MASK) {
				ck_assert_uint_eq(len, mask_len(page, shadow));
				masks++;
			}
			if (clump == 1 && pct >= 4 &&
			    mask_len(page, shadow) <= TB_CODEC_RLE_CAP)
				ck_assert_msg(enc == TB_ENC_XOR_MASK,
					      "%u%%: enc %u", pct, enc);
		}
	}
	ck_assert_uint_ge(masks, 5);
	free(out);
	free(page);
	free(shadow);
}
END_TEST

/* The portable C paths (XOR, masks) give the bytes the vector ones do,
 * and each decodes what the other encoded. */
START_TEST(portable_and_vector_paths_agree)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out[2], *back = malloc(PS), enc[2];
	unsigned seed = 23;
	uint32_t len[2];

	out[0] = malloc(TB_CODEC_OUT_MAX);
	out[1] = malloc(TB_CODEC_OUT_MAX);
	for (unsigned i = 0; i < 400; i++) {
		make_page((enum kind)(i % K_NR), page, shadow, &seed);
		if (i % 7 == 0)
			perturb(page, 1 + i % 12, &seed);
		o.rle = i % 3 != 0;
		for (int portable = 0; portable < 2; portable++) {
			tb_codec_use_portable(portable);
			ck_assert_int_eq(tb_codec_encode(&o, page, shadow,
							 out[portable],
							 &enc[portable],
							 &len[portable], NULL),
					 0);
		}
		ck_assert_uint_eq(enc[0], enc[1]);
		ck_assert_uint_eq(len[0], len[1]);
		ck_assert_mem_eq(out[0], out[1], len[0]);
		for (int portable = 0; portable < 2; portable++) {
			tb_codec_use_portable(portable);
			ck_assert_int_eq(tb_codec_decode(enc[0], out[!portable],
							 len[0], shadow, back),
					 0);
			ck_assert_mem_eq(back, page, PS);
		}
	}
	tb_codec_use_portable(false);
	free(out[0]);
	free(out[1]);
	free(back);
	free(page);
	free(shadow);
}
END_TEST

/* XOR_MASK from a hostile peer: checked whole before the page changes,
 * so every rejection in place leaves the page as it was. */
START_TEST(xor_mask_corruptions_are_rejected_or_harmless)
{
	struct tb_codec_opts o = TB_CODEC_OPTS_DEFAULT;
	uint8_t *page = malloc(PS), *shadow = malloc(PS);
	uint8_t *out = malloc(PS + 8), *back = malloc(PS), enc;
	unsigned seed = 35, i, v, rejected = 0;
	uint32_t len, n;

	make_page(K_SCATTER, page, shadow, &seed);
	ck_assert_int_eq(
		tb_codec_encode(&o, page, shadow, out, &enc, &len, NULL), 0);
	ck_assert_uint_eq(enc, TB_ENC_XOR_MASK);
	for (n = 0; n < len; n++) /* every cut */
		ck_assert_int_eq(in_place(enc, out, n, shadow, back), -EBADMSG);
	for (n = len + 1; n <= len + 8; n++) /* trailing bytes */
		ck_assert_int_eq(in_place(enc, out, n, shadow, back), -EBADMSG);
	for (i = 0; i < len; i++) { /* every byte, a few values */
		for (v = 1; v < 256; v += 51) {
			out[i] ^= (uint8_t)v;
			if (in_place(enc, out, len, shadow, back))
				rejected += i < 64; /* WMASK */
			out[i] ^= (uint8_t)v;
		}
	}
	/* a word mask changed: the lengths no longer add up (but for
	 * the rare change that swaps equal counts) */
	ck_assert_uint_ge(rejected, 64 * 5 * 9 / 10);
	/* a BMASK byte of 0 (a word with no byte changed) */
	ck_assert_uint_ne(out[64], 0);
	v = out[64];
	out[64] = 0;
	ck_assert_int_eq(in_place(enc, out,
				  len - (uint32_t)__builtin_popcount(v), shadow,
				  back),
			 -EBADMSG);
	out[64] = (uint8_t)v;
	/* an unchanged page: the WMASK alone */
	ck_assert_int_eq(in_place(enc, (uint8_t[64]){ 0 }, 64, shadow, back),
			 0);
	ck_assert_mem_eq(back, shadow, PS);
	ck_assert_int_eq(in_place(enc, out, len, shadow, back), 0);
	ck_assert_mem_eq(back, page, PS);
	ck_assert_int_eq(tb_codec_decode(enc, out, len, NULL, back), -EBADMSG);
	free(back);
	free(out);
	free(page);
	free(shadow);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, is_zero_finds_a_single_nonzero_byte_anywhere);
	tcase_add_test(tc, round_trips_are_bit_exact_for_every_kind_and_option);
	tcase_add_test(tc, chosen_encodings_match_the_content);
	tcase_add_test(tc, stats_count_pages_and_bytes_per_encoding);
	tcase_add_test(tc, bad_arguments_are_einval);
	tcase_add_test(tc, xor_decode_in_place_over_prev);
	tcase_add_test(tc, rle_corruptions_are_rejected_or_harmless);
	tcase_add_test(tc, xor_mask_known_answer);
	tcase_add_test(tc, xor_mask_is_chosen_where_it_is_smaller);
	tcase_add_test(tc, portable_and_vector_paths_agree);
	tcase_add_test(tc, xor_mask_corruptions_are_rejected_or_harmless);
	tcase_add_test(tc,
		       fixed_corruptions_are_rejected_and_leave_output_alone);
	tcase_add_test(tc, lz4_that_saves_too_little_is_raw_and_rejected);
	tcase_add_test(tc, random_corruptions_never_touch_memory_out_of_bounds);
	tcase_add_test(tc, concurrent_threads_round_trip_independently);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(codec_suite)
