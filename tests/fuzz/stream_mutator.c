// SPDX-License-Identifier: MIT
/*
 * The stream generator and mutator of tests/fuzz/stream_mutator.h: the
 * rng, raw records, valid streams of either direction, and the
 * structure-aware mutations (records' lengths and types, interesting
 * words, splicing, duplicating, dropping and swapping records).  The
 * oracle is in stream_oracle.c.
 *
 * Invariants: every random choice comes from the caller's sm_rng, one
 * call per statement (the order of evaluation of initialisers and
 * arguments is unspecified), so a campaign's stream i depends only on
 * (seed, i) and can be replayed; sm_gen_stream only builds streams the
 * decoder and the session checker must accept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/common.h"
#include "tiber/stream.h"
#include "stream_mutator.h"

/* ---------------------------------------------------------------- rng */

uint64_t sm_next(struct sm_rng *r) /* splitmix64 */
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0). */
uint32_t sm_below(struct sm_rng *r, uint32_t n)
{
	return (uint32_t)(((sm_next(r) >> 32) * (uint64_t)n) >> 32);
}

void sm_fill(struct sm_rng *r, uint8_t *p, size_t n)
{
	while (n--)
		*p++ = (uint8_t)sm_next(r);
}

/* ---------------------------------------------------------------- records */

size_t sm_rec_total(uint32_t len)
{
	return TB_REC_HDR_LEN + TB_ALIGN_UP((size_t)len, 8) +
	       TB_REC_TRAILER_LEN;
}

/* Append a record with any type and body, correct padding and CRC. */
int sm_put_raw(struct tb_buf *out, uint32_t type, const void *body,
	       uint32_t len)
{
	size_t total = sm_rec_total(len), covered = total - 8;
	uint8_t *r;

	if (tb_buf_reserve(out, total))
		return -ENOMEM;
	r = out->data + out->len;
	memset(r, 0, total);
	tb_put_le32(r, type);
	tb_put_le32(r + 4, len);
	if (len)
		memcpy(r + 8, body, len);
	tb_put_le32(r + covered, tb_crc32c(0, r, covered));
	out->len += total;
	return 0;
}

/* Recompute the CRC of every record whose header fits (so that
 * mutations reach the body parsers). */
void sm_fix_crcs(uint8_t *p, size_t len)
{
	size_t off = 0;

	while (len - off >= TB_REC_HDR_LEN) {
		uint32_t rl = tb_get_le32(p + off + 4);
		size_t total = sm_rec_total(rl);

		if (rl > TB_REC_LEN_MAX || total > len - off)
			return;
		tb_put_le32(p + off + total - 8,
			    tb_crc32c(0, p + off, total - 8));
		off += total;
	}
}

/* Offsets of the records whose headers fit, at most @max. */
size_t sm_rec_offsets(const uint8_t *p, size_t len, size_t *offs, size_t max)
{
	size_t off = 0, n = 0;

	while (n < max && len - off >= TB_REC_HDR_LEN) {
		uint32_t rl = tb_get_le32(p + off + 4);
		size_t total = sm_rec_total(rl);

		offs[n++] = off;
		if (rl > TB_REC_LEN_MAX || total > len - off)
			break;
		off += total;
	}
	return n;
}

/* ---------------------------------------------------------------- generate */

/* A valid XOR_RLE payload (include/tiber/codec.h): one run somewhere,
 * then the zero run to the page's end.  Its length. */
uint32_t sm_pfn_limit = 1u << 20;

static uint32_t sm_rle(struct sm_rng *r, uint8_t *p)
{
	uint32_t z = sm_below(r, TB_PAGE_SIZE - 64), n = 1 + sm_below(r, 40);
	uint32_t o = 0, v[3] = { z, n, TB_PAGE_SIZE - z - n };

	for (unsigned i = 0; i < 3; i++) {
		if (v[i] >= 0x80)
			p[o++] = (uint8_t)(v[i] | 0x80),
			p[o++] = (uint8_t)(v[i] >> 7);
		else
			p[o++] = (uint8_t)v[i];
		if (i == 1) {
			sm_fill(r, p + o, n);
			o += n;
		}
	}
	return o;
}

/* A valid XOR_MASK payload: up to 8 words changed, each in 1..8 bytes.
 * Its length. */
static uint32_t sm_mask(struct sm_rng *r, uint8_t *p)
{
	uint32_t words = 1 + sm_below(r, 8), o = 64, b = 0, i;
	uint8_t bm[8];

	memset(p, 0, 64);
	for (i = 0; i < words; i++) {
		uint32_t w = sm_below(r, TB_PAGE_SIZE / 8);

		p[w / 8] |= (uint8_t)(1u << (w % 8));
	}
	for (i = 0, words = 0; i < 64; i++)
		words += (uint32_t)__builtin_popcount(p[i]);
	for (i = 0; i < words; i++) {
		bm[i] = (uint8_t)(1 + sm_below(r, 255));
		p[o++] = bm[i];
		b += (uint32_t)__builtin_popcount(bm[i]);
	}
	sm_fill(r, p + o, b);
	return o + b;
}

static int sm_gen_pages(struct sm_rng *r, struct tb_buf *out,
			struct tb_page_rec *pr, uint64_t *pages,
			uint64_t *bytes)
{
	uint32_t nr = 1 + sm_below(r, 6), i;
	uint8_t payload[TB_PAGE_LZ4_LEN_MAX];
	int rc;

	rc = tb_enc_pages_begin(pr, out, nr + sm_below(r, 4));
	for (i = 0; !rc && i < nr; i++) {
		uint32_t k = sm_below(r, 20), len;
		bool sm_fill_keep = false;
		uint8_t enc;

		if (k < 8) {
			enc = TB_ENC_ZERO, len = 0;
		} else if (k < 13) {
			enc = TB_ENC_LZ4, len = 1 + sm_below(r, 48);
		} else if (k < 16) {
			enc = TB_ENC_XOR_LZ4, len = 1 + sm_below(r, 48);
		} else if (k < 17) {
			enc = TB_ENC_XOR_RLE, len = sm_rle(r, payload);
			sm_fill_keep = true;
		} else if (k < 18) {
			enc = TB_ENC_XOR_MASK, len = sm_mask(r, payload);
			sm_fill_keep = true;
		} else if (k < 19) {
			enc = TB_ENC_RAW, len = TB_PAGE_SIZE;
		} else {
			enc = TB_ENC_LZ4, len = TB_PAGE_LZ4_LEN_MAX;
		}
		if (!sm_fill_keep)
			sm_fill(r, payload, len);
		rc = tb_enc_pages_add(pr, sm_next(r) % sm_pfn_limit, enc,
				      payload, len);
	}
	*pages += nr;
	*bytes += (uint64_t)nr * TB_PAGE_SIZE;
	return rc ? rc : tb_enc_pages_finish(pr);
}

/* The disk encoder's LZ4 scratch (one per thread, kept). */
static void *sm_disk_scratch(void)
{
	static __thread void *p;

	if (!p)
		p = malloc(TB_DISK_LZ4_MAX);
	return p;
}

/* A DISK_INFO, or a DISK_WRITE of random, zero or compressible sectors. */
static int sm_gen_disk(struct sm_rng *r, struct tb_buf *out, uint64_t *bytes)
{
	uint8_t data[2048];
	uint32_t len = TB_DISK_SECTOR * (1 + sm_below(r, 4));
	uint64_t off = TB_DISK_SECTOR * (uint64_t)sm_below(r, 1u << 20);

	if (sm_below(r, 3) == 0) {
		struct tb_disk_info di = {
			.disk = sm_below(r, TB_DISKS_MAX),
			.flags = sm_below(r, 2) ? TB_DISK_KEEP : 0,
			.size = TB_PAGE_SIZE *
				(1 + (uint64_t)sm_below(r, 1u << 20)),
			.gen = 1 + sm_next(r) % 1000,
		};

		di.base_epoch = di.flags ? 1 + sm_below(r, 100) : 0;
		return tb_enc_disk_info(out, &di);
	}
	if (sm_below(r, 2))
		sm_fill(r, data, len);
	else
		memset(data, sm_below(r, 2) ? 0 : 'a', len);
	*bytes += len;
	return tb_enc_disk_write(out, sm_below(r, TB_DISKS_MAX), off, data, len,
				 sm_disk_scratch());
}

static int sm_gen_optional(struct sm_rng *r, struct tb_buf *out)
{
	uint8_t body[40];
	uint32_t len = sm_below(r, sizeof(body) + 1);

	sm_fill(r, body, len);
	return sm_put_raw(out, TB_REC_OPTIONAL | (uint32_t)sm_next(r), body,
			  len);
}

static int sm_gen_error(struct sm_rng *r, struct tb_buf *out)
{
	char text[64];
	uint32_t n = sm_below(r, sizeof(text)), i;

	for (i = 0; i < n; i++)
		text[i] = (char)(0x20 + sm_below(r, 0x5f));
	text[n] = 0;
	/* 0 (orderly close), a stream error, or an errno */
	return tb_enc_error(out,
			    sm_below(r, 2) ?
				    sm_below(r, TB_SERR_MAX + 1) :
				    TB_ERROR_ERRNO_BASE + 1 + sm_below(r, 200),
			    text);
}

/* A valid stream sent by @role (one direction of a session). */
int sm_gen_stream(struct sm_rng *r, enum tb_role role, struct tb_buf *out,
		  struct tb_page_rec *pr)
{
	/* one rng call per statement: the order of evaluation of
	 * initialisers and arguments is unspecified */
	struct tb_hello h = {
		.magic = TB_STREAM_MAGIC,
		.version = TB_STREAM_VERSION,
		.role = role,
		.page_size = TB_PAGE_SIZE,
	};
	uint64_t epoch;
	uint32_t n, i, j, items;
	int rc;

	h.domid = sm_below(r, 100);
	h.nr_pages = 1 + sm_below(r, 1u << 20);
	h.features = sm_next(r) & TB_FEAT_ALL;
	epoch = 1 + sm_below(r, 1000);

	snprintf(h.name, sizeof(h.name), "guest-%u", sm_below(r, 1000));
	if (role == TB_ROLE_PRIMARY && sm_below(r, 8) == 0)
		h.features |= 1ull << (2 + sm_below(r, 60)); /* offer unknown */
	if (role == TB_ROLE_BACKUP && sm_below(r, 2))
		h.nr_pages = 0;
	rc = tb_enc_hello(out, &h);
	n = 1 + sm_below(r, 3);
	for (i = 0; !rc && i < n; i++, epoch += 1 + sm_below(r, 3)) {
		struct tb_heartbeat hb = { .seq = i,
					   .time_ns = (int64_t)sm_below(
						   r, 1u << 30),
					   .last_epoch = epoch - 1 };

		if (sm_below(r, 4) == 0)
			rc = tb_enc_heartbeat(out, &hb);
		if (!rc && sm_below(r, 16) == 0)
			rc = sm_gen_optional(r, out);
		if (rc)
			break;
		if (role == TB_ROLE_BACKUP) {
			struct tb_ack a = {
				.epoch = epoch,
				.status = sm_below(r, 8) ?
						  0 :
						  sm_below(r, TB_SERR_MAX + 1)
			};

			rc = tb_enc_ack(out, &a);
			continue;
		}
		{
			struct tb_epoch_begin b = {
				.epoch = epoch,
				.flags = sm_below(r, 2) ? TB_EPOCH_FULL : 0,
				.t_request_ns = 1000 + i,
				.t_suspended_ns = 2000 + i,
				.t_resumed_ns = 3000 + i,
			};
			struct tb_epoch_end e = { .epoch = epoch,
						  .digest = sm_next(r) };

			rc = tb_enc_epoch_begin(out, &b);
			items = 1 + sm_below(r, 4);
			for (j = 0; !rc && j < items; j++) {
				uint32_t k = sm_below(r, 20), blen;
				uint8_t blob[100];

				if (k < 13) {
					rc = sm_gen_pages(r, out, pr,
							  &e.nr_pages,
							  &e.nr_bytes);
				} else if (k < 17) {
					uint32_t tag, index;

					blen = sm_below(r, sizeof(blob) + 1);
					sm_fill(r, blob, blen);
					tag = 1 + sm_below(r, 3);
					index = sm_below(r, 4);
					rc = tb_enc_state(
						out,
						k < 15 ? TB_REC_CPU_STATE :
							 TB_REC_DEVICE_STATE,
						tag, index, blob, blen);
					e.nr_bytes += blen;
				} else if (k < 18) {
					rc = tb_enc_heartbeat(out, &hb);
				} else if (k < 19) {
					rc = sm_gen_disk(r, out, &e.nr_bytes);
				} else {
					rc = sm_gen_optional(r, out);
				}
			}
			if (!rc)
				rc = tb_enc_epoch_end(out, &e);
		}
	}
	if (!rc && sm_below(r, 10) == 0)
		rc = sm_gen_error(r, out);
	return rc;
}

/* ---------------------------------------------------------------- mutate */

enum sm_mut {
	SM_BITFLIP,
	SM_BYTESET,
	SM_INSERT,
	SM_DELETE,
	SM_TRUNCATE,
	SM_LENGTH,
	SM_TYPE,
	SM_WORD,
	SM_SPLICE,
	SM_DUP_SWAP,
	SM_NR_MUT,
};

static void sm_insert(struct tb_buf *s, size_t at, const uint8_t *p, size_t n)
{
	if (tb_buf_reserve(s, n))
		return;
	memmove(s->data + at + n, s->data + at, s->len - at);
	memcpy(s->data + at, p, n);
	s->len += n;
}

static void sm_delete(struct tb_buf *s, size_t at, size_t n)
{
	if (n > s->len - at)
		n = s->len - at;
	memmove(s->data + at, s->data + at + n, s->len - at - n);
	s->len -= n;
}

static const uint32_t sm_interesting32[] = {
	0,
	1,
	2,
	7,
	8,
	0x7f,
	0x80,
	0xff,
	TB_PAGE_SIZE - 1,
	TB_PAGE_SIZE,
	TB_PAGE_SIZE + 1,
	TB_PAGE_LZ4_LEN_MAX,
	TB_PAGE_LZ4_LEN_MAX + 1,
	TB_PAGES_PER_REC_MAX,
	TB_PAGES_PER_REC_MAX + 1,
	TB_ERROR_TEXT_MAX,
	TB_ERROR_TEXT_MAX + 1,
	TB_STATE_LEN_MAX,
	TB_STATE_LEN_MAX + 1,
	TB_REC_LEN_MAX,
	TB_REC_LEN_MAX + 1,
	TB_SERR_MAX + 1,
	TB_ERROR_ERRNO_BASE,
	0x7fffffff,
	0x80000000,
	0xfffffff8,
	0xffffffff,
};

/* SM_SPLICE: a record of the donor (NULL: none) at a record boundary of
 * @s, whose first @no record offsets are @offs. */
static void sm_splice(struct sm_rng *r, struct tb_buf *s, const size_t *offs,
		      size_t no, const uint8_t *donor, size_t donor_len)
{
	size_t doffs[64], nd, at, k;

	if (!donor || !donor_len)
		return;
	nd = sm_rec_offsets(donor, donor_len, doffs, TB_ARRAY_SIZE(doffs));
	if (!nd)
		return;
	k = sm_below(r, (uint32_t)nd);
	{
		size_t from = doffs[k], len;

		len = (k + 1 < nd ? doffs[k + 1] : donor_len) - from;
		at = no ? offs[sm_below(r, (uint32_t)no)] : 0;
		if (sm_below(r, 3) == 0 && no)
			at = s->len; /* append */
		if (sm_below(r, 2) && no && at < s->len) {
			/* replace the record at @at */
			size_t i = 0, end = s->len;

			while (i < no && offs[i] != at)
				i++;
			if (i + 1 < no)
				end = offs[i + 1];
			sm_delete(s, at, end - at);
		}
		if (len > 64 * 1024)
			len = 64 * 1024;
		{
			uint8_t *c = malloc(len);

			if (!c)
				return;
			memcpy(c, donor + from, len);
			sm_insert(s, at > s->len ? s->len : at, c, len);
			free(c);
		}
	}
}

/* SM_DUP_SWAP: duplicate, drop or swap records of @s (offsets as for
 * sm_splice). */
static void sm_dup_swap(struct sm_rng *r, struct tb_buf *s, const size_t *offs,
			size_t no)
{
	size_t k;

	if (no < 2)
		return;
	k = sm_below(r, (uint32_t)no - 1);
	{
		size_t a = offs[k], b = offs[k + 1];
		size_t c = k + 2 < no ? offs[k + 2] : s->len;
		size_t la = b - a, lb = c - b;
		uint8_t *t = malloc(la + lb);

		if (!t || c > s->len) {
			free(t);
			return;
		}
		switch (sm_below(r, 3)) {
		case 0: /* duplicate a */
			memcpy(t, s->data + a, la);
			sm_insert(s, b, t, la);
			break;
		case 1: /* drop a */
			sm_delete(s, a, la);
			break;
		default: /* swap a and b */
			memcpy(t, s->data + b, lb);
			memcpy(t + lb, s->data + a, la);
			memcpy(s->data + a, t, la + lb);
		}
		free(t);
	}
}

/* Apply 1..4 random mutations to @s; @donor (may be NULL) is another
 * valid stream to splice records from. */
void sm_mutate(struct sm_rng *r, struct tb_buf *s, const uint8_t *donor,
	       size_t donor_len)
{
	uint32_t n = 1 + sm_below(r, 4);
	size_t offs[64], no, at, k;
	uint8_t tmp[32];

	while (n--) {
		no = sm_rec_offsets(s->data, s->len, offs, TB_ARRAY_SIZE(offs));
		switch (sm_below(r, SM_NR_MUT)) {
		case SM_BITFLIP:
			for (k = 1 + sm_below(r, 8); k-- && s->len;) {
				at = sm_below(r, (uint32_t)s->len);
				s->data[at] ^= (uint8_t)(1u << sm_below(r, 8));
			}
			break;
		case SM_BYTESET:
			if (s->len) {
				at = sm_below(r, (uint32_t)s->len);
				s->data[at] = (uint8_t)sm_next(r);
			}
			break;
		case SM_INSERT:
			k = 1 + sm_below(r, 16);
			sm_fill(r, tmp, k);
			sm_insert(s, sm_below(r, (uint32_t)s->len + 1), tmp, k);
			break;
		case SM_DELETE:
			if (s->len) {
				at = sm_below(r, (uint32_t)s->len);
				sm_delete(s, at, 1 + sm_below(r, 16));
			}
			break;
		case SM_TRUNCATE:
			s->len = sm_below(r, (uint32_t)s->len + 1);
			break;
		case SM_LENGTH:
			if (!no)
				break;
			at = offs[sm_below(r, (uint32_t)no)] + 4;
			if (at + 4 > s->len)
				break;
			k = tb_get_le32(s->data + at);
			switch (sm_below(r, 4)) {
			case 0:
				k = sm_interesting32[sm_below(
					r, TB_ARRAY_SIZE(sm_interesting32))];
				break;
			case 1:
				k += (uint32_t)sm_below(r, 17) - 8;
				break;
			case 2:
				k ^= 1u << sm_below(r, 32);
				break;
			default:
				k = (uint32_t)sm_next(r);
			}
			tb_put_le32(s->data + at, (uint32_t)k);
			break;
		case SM_TYPE:
			if (!no)
				break;
			at = offs[sm_below(r, (uint32_t)no)];
			switch (sm_below(r, 4)) {
			case 0:
				k = sm_below(r, TB_REC_DISK_WRITE + 2);
				break;
			case 1:
				k = TB_REC_OPTIONAL | sm_below(r, 12);
				break;
			case 2:
				k = tb_get_le32(s->data + at) ^
				    (1u << sm_below(r, 32));
				break;
			default:
				k = (uint32_t)sm_next(r);
			}
			tb_put_le32(s->data + at, (uint32_t)k);
			break;
		case SM_WORD:
			if (s->len < 8)
				break;
			/* an aligned word, usually inside a body */
			at = sm_below(r, (uint32_t)(s->len - 4)) & ~(size_t)3;
			if (sm_below(r, 4) == 0 && at + 8 <= s->len) {
				uint64_t v = (uint64_t)-1;

				if (sm_below(r, 2)) {
					v = sm_next(r);
					v >>= sm_below(r, 64);
				}
				tb_put_le64(s->data + at, v);
			} else
				tb_put_le32(
					s->data + at,
					sm_interesting32[sm_below(
						r, TB_ARRAY_SIZE(
							   sm_interesting32))]);
			break;
		case SM_SPLICE:
			sm_splice(r, s, offs, no, donor, donor_len);
			break;
		default:
			sm_dup_swap(r, s, offs, no);
		}
	}
}
