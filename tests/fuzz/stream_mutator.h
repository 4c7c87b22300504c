/* SPDX-License-Identifier: MIT */
/*
 * Stream generator, mutator and checker shared by the unit test
 * (tests/unit/test_stream.c), the standalone campaign
 * (tests/fuzz/mutate_stream.c) and the libFuzzer harness
 * (tests/fuzz/fuzz_stream.c).  Header-only: every function is static
 * inline so each user takes what it needs.
 *
 * sm_check() is the oracle: it decodes a byte stream twice (one feed of
 * everything, and random chunks received through tb_dec_space/commit),
 * passes every record through the session checker, and verifies:
 *  - tb_dec_next returns 1, 0 or tb_stream_errno(d->err) with d->err one
 *    of the decoder's codes and a message, and the error is sticky;
 *  - every returned record re-validates: re-encoding it with tb_enc_*
 *    gives exactly the bytes it was decoded from, and its pointers and
 *    descriptors stay inside its body;
 *  - the session checker accepts or fails with BAD_ORDER/VERSION;
 *  - both chunkings give the same records and the same outcome.
 * Out-of-bounds reads are for ASan (make check-asan, the fuzz builds).
 */
#ifndef TIBER_STREAM_MUTATOR_H
#define TIBER_STREAM_MUTATOR_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/common.h"
#include "tiber/stream.h"

/* ---------------------------------------------------------------- rng */

struct sm_rng {
	uint64_t s;
};

static inline uint64_t sm_next(struct sm_rng *r) /* splitmix64 */
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0). */
static inline uint32_t sm_below(struct sm_rng *r, uint32_t n)
{
	return (uint32_t)(((sm_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline void sm_fill(struct sm_rng *r, uint8_t *p, size_t n)
{
	while (n--)
		*p++ = (uint8_t)sm_next(r);
}

/* ---------------------------------------------------------------- records */

static inline size_t sm_rec_total(uint32_t len)
{
	return TB_REC_HDR_LEN + TB_ALIGN_UP((size_t)len, 8) +
	       TB_REC_TRAILER_LEN;
}

/* Append a record with any type and body, correct padding and CRC. */
static inline int sm_put_raw(struct tb_buf *out, uint32_t type,
			     const void *body, uint32_t len)
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
static inline void sm_fix_crcs(uint8_t *p, size_t len)
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
static inline size_t sm_rec_offsets(const uint8_t *p, size_t len, size_t *offs,
				    size_t max)
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

static inline int sm_gen_pages(struct sm_rng *r, struct tb_buf *out,
			       struct tb_page_rec *pr, uint64_t *pages,
			       uint64_t *bytes)
{
	uint32_t nr = 1 + sm_below(r, 6), i;
	uint8_t payload[TB_PAGE_LZ4_LEN_MAX];
	int rc;

	rc = tb_enc_pages_begin(pr, out, nr + sm_below(r, 4));
	for (i = 0; !rc && i < nr; i++) {
		uint32_t k = sm_below(r, 20), len;
		uint8_t enc;

		if (k < 8) {
			enc = TB_ENC_ZERO, len = 0;
		} else if (k < 13) {
			enc = TB_ENC_LZ4, len = 1 + sm_below(r, 48);
		} else if (k < 18) {
			enc = TB_ENC_XOR_LZ4, len = 1 + sm_below(r, 48);
		} else if (k < 19) {
			enc = TB_ENC_RAW, len = TB_PAGE_SIZE;
		} else {
			enc = TB_ENC_LZ4, len = TB_PAGE_LZ4_LEN_MAX;
		}
		sm_fill(r, payload, len);
		rc = tb_enc_pages_add(pr, sm_next(r) & 0xfffff, enc, payload,
				      len);
	}
	*pages += nr;
	*bytes += (uint64_t)nr * TB_PAGE_SIZE;
	return rc ? rc : tb_enc_pages_finish(pr);
}

/* The disk encoder's LZ4 scratch (one per thread, kept). */
static inline void *sm_disk_scratch(void)
{
	static __thread void *p;

	if (!p)
		p = malloc(TB_DISK_LZ4_MAX);
	return p;
}

/* A DISK_INFO, or a DISK_WRITE of random, zero or compressible sectors. */
static inline int sm_gen_disk(struct sm_rng *r, struct tb_buf *out,
			      uint64_t *bytes)
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

static inline int sm_gen_optional(struct sm_rng *r, struct tb_buf *out)
{
	uint8_t body[40];
	uint32_t len = sm_below(r, sizeof(body) + 1);

	sm_fill(r, body, len);
	return sm_put_raw(out, TB_REC_OPTIONAL | (uint32_t)sm_next(r), body,
			  len);
}

static inline int sm_gen_error(struct sm_rng *r, struct tb_buf *out)
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
static inline int sm_gen_stream(struct sm_rng *r, enum tb_role role,
				struct tb_buf *out, struct tb_page_rec *pr)
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

static inline void sm_insert(struct tb_buf *s, size_t at, const uint8_t *p,
			     size_t n)
{
	if (tb_buf_reserve(s, n))
		return;
	memmove(s->data + at + n, s->data + at, s->len - at);
	memcpy(s->data + at, p, n);
	s->len += n;
}

static inline void sm_delete(struct tb_buf *s, size_t at, size_t n)
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

/* Apply 1..4 random mutations to @s; @donor (may be NULL) is another
 * valid stream to splice records from. */
static inline void sm_mutate(struct sm_rng *r, struct tb_buf *s,
			     const uint8_t *donor, size_t donor_len)
{
	uint32_t n = 1 + sm_below(r, 4);
	size_t offs[64], doffs[64], no, nd, at, k;
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
		case SM_SPLICE: /* a record of the donor at a record boundary */
			if (!donor || !donor_len)
				break;
			nd = sm_rec_offsets(donor, donor_len, doffs,
					    TB_ARRAY_SIZE(doffs));
			if (!nd)
				break;
			k = sm_below(r, (uint32_t)nd);
			{
				size_t from = doffs[k], len;

				len = (k + 1 < nd ? doffs[k + 1] : donor_len) -
				      from;
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
						break;
					memcpy(c, donor + from, len);
					sm_insert(s, at > s->len ? s->len : at,
						  c, len);
					free(c);
				}
			}
			break;
		default: /* SM_DUP_SWAP: duplicate, drop or swap records */
			if (no < 2)
				break;
			k = sm_below(r, (uint32_t)no - 1);
			{
				size_t a = offs[k], b = offs[k + 1];
				size_t c = k + 2 < no ? offs[k + 2] : s->len;
				size_t la = b - a, lb = c - b;
				uint8_t *t = malloc(la + lb);

				if (!t || c > s->len) {
					free(t);
					break;
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
	}
}

/* ---------------------------------------------------------------- check */

struct sm_ctx {
	struct tb_buf enc;	/* re-encoding scratch */
	struct tb_page_rec pr;	/* builder reused for every re-encoding */
	struct tb_buf trace[2]; /* re-encoded records of each chunking */
	char fail[512];		/* invariant violation, "" if none */
	uint64_t index;		/* sm_campaign: the current stream */
	enum tb_role role;	/* ... and its sender */
	/* stats: [0] valid streams, [1] mutants (and libFuzzer inputs) */
	struct sm_stats {
		uint64_t streams, clean, records, bytes;
		uint64_t outcome[TB_SERR_MAX + 1];
	} st[2];
};

static inline void sm_ctx_free(struct sm_ctx *c)
{
	tb_buf_free(&c->enc);
	tb_enc_pages_free(&c->pr);
	tb_buf_free(&c->trace[0]);
	tb_buf_free(&c->trace[1]);
}

__attribute__((format(printf, 2, 3))) static inline int
sm_fail(struct sm_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->fail, sizeof(c->fail), fmt, ap);
	va_end(ap);
	return -1;
}

/* Re-encode @rec and compare with the bytes it was decoded from. */
static inline int sm_revalidate(struct sm_ctx *c, const struct tb_rec *rec,
				struct sm_rng *r)
{
	const uint8_t *raw = rec->body - TB_REC_HDR_LEN;
	const uint8_t *end = rec->body + rec->length;
	struct tb_buf *e = &c->enc;
	uint32_t i;
	int rc;

	tb_buf_reset(e);
	switch (rec->type) {
	case TB_REC_HELLO:
		rc = tb_enc_hello(e, &rec->u.hello);
		break;
	case TB_REC_EPOCH_BEGIN:
		rc = tb_enc_epoch_begin(e, &rec->u.begin);
		break;
	case TB_REC_PAGE_DATA: {
		const struct tb_page_data *p = &rec->u.pages;
		const uint8_t *pl = p->payloads;
		uint64_t sum = 0;
		uint32_t max =
			p->nr_pages +
			sm_below(r, TB_PAGES_PER_REC_MAX - p->nr_pages + 1);

		if (p->nr_pages == 0 || p->nr_pages > TB_PAGES_PER_REC_MAX)
			return sm_fail(c, "PAGE_DATA with %u pages",
				       p->nr_pages);
		rc = tb_enc_pages_begin(&c->pr, e, max);
		for (i = 0; !rc && i < p->nr_pages; i++) {
			struct tb_page_desc d;

			tb_page_desc_get(p, i, &d);
			if (d.enc > TB_ENC_MAX ||
			    (d.enc == TB_ENC_ZERO && d.len) ||
			    (d.enc == TB_ENC_RAW && d.len != TB_PAGE_SIZE) ||
			    d.len > TB_PAGE_LZ4_LEN_MAX ||
			    (d.enc >= TB_ENC_XOR_LZ4 && !d.len))
				return sm_fail(c, "page %u: enc %u len %u", i,
					       d.enc, d.len);
			if (pl + d.len > end)
				return sm_fail(c, "page %u payload past body",
					       i);
			rc = tb_enc_pages_add(&c->pr, tb_page_pfn_get(p, i),
					      d.enc, pl, d.len);
			pl += d.len;
			sum += d.len;
		}
		if (!rc)
			rc = tb_enc_pages_finish(&c->pr);
		if (sum != p->payload_len || pl != end)
			return sm_fail(c,
				       "PAGE_DATA payloads %" PRIu64
				       " of %" PRIu64 " bytes",
				       sum, p->payload_len);
		break;
	}
	case TB_REC_CPU_STATE:
	case TB_REC_DEVICE_STATE:
		if (rec->u.state.data + rec->u.state.len != end)
			return sm_fail(c, "state blob not the body's tail");
		rc = tb_enc_state(e, rec->type, rec->u.state.tag,
				  rec->u.state.index, rec->u.state.data,
				  rec->u.state.len);
		break;
	case TB_REC_EPOCH_END:
		rc = tb_enc_epoch_end(e, &rec->u.end);
		break;
	case TB_REC_ACK:
		rc = tb_enc_ack(e, &rec->u.ack);
		break;
	case TB_REC_DISK_INFO:
		rc = tb_enc_disk_info(e, &rec->u.disk_info);
		break;
	case TB_REC_DISK_WRITE:
		if (rec->u.disk_write.payload + rec->u.disk_write.payload_len !=
		    end)
			return sm_fail(c, "DISK_WRITE payload not the tail");
		rc = tb_enc_disk_rec(e, &rec->u.disk_write);
		break;
	case TB_REC_HEARTBEAT:
		rc = tb_enc_heartbeat(e, &rec->u.hb);
		break;
	case TB_REC_ERROR: {
		char text[TB_ERROR_TEXT_MAX + 1];

		if (rec->u.error.text_len > TB_ERROR_TEXT_MAX ||
		    (const uint8_t *)rec->u.error.text +
				    rec->u.error.text_len !=
			    end)
			return sm_fail(c, "ERROR text not the body's tail");
		memcpy(text, rec->u.error.text, rec->u.error.text_len);
		text[rec->u.error.text_len] = 0;
		rc = tb_enc_error(e, rec->u.error.code, text);
		break;
	}
	default:
		return sm_fail(c, "decoder returned type %u", rec->type);
	}
	if (rc)
		return sm_fail(c, "re-encoding type %u failed: %d", rec->type,
			       rc);
	if (e->len != sm_rec_total(rec->length) || memcmp(e->data, raw, e->len))
		return sm_fail(c,
			       "re-encoded type %u differs (%zu vs %zu bytes)",
			       rec->type, e->len, sm_rec_total(rec->length));
	return 0;
}

/* The decoder's error codes (never BAD_DIGEST/CODEC: the application's). */
static inline int sm_dec_code_ok(int err)
{
	return err == TB_SERR_TRUNCATED || err == TB_SERR_BAD_CRC ||
	       err == TB_SERR_OVERSIZE || err == TB_SERR_UNKNOWN_TYPE ||
	       err == TB_SERR_VERSION || err == TB_SERR_BAD_FIELD ||
	       err == TB_SERR_BAD_ORDER;
}

/*
 * Decode @p: @mode 0 feeds it whole, 1 receives random chunks through
 * tb_dec_space/commit, 2 byte by byte.  Appends each record's bytes to
 * @trace; *@outcome = the final error code (0: clean).
 */
static inline int sm_decode(struct sm_ctx *c, const uint8_t *p, size_t len,
			    enum tb_role role, int mode, struct sm_rng *r,
			    struct tb_buf *trace, int *outcome, uint64_t *nrec)
{
	struct tb_dec d;
	struct tb_sess s;
	struct tb_rec rec;
	size_t pos = 0, room, n, maxchunk = 1 + sm_below(r, 512);
	uint8_t *dst;
	int rc = 0, fail = 0;

	tb_dec_init(&d);
	tb_sess_init(&s, role);
	tb_buf_reset(trace);
	*nrec = 0;
	if (mode == 0 && len && tb_dec_feed(&d, p, len)) {
		tb_dec_free(&d);
		return sm_fail(c, "feed: ENOMEM");
	}
	if (mode == 0)
		pos = len;
	for (;;) {
		rc = tb_dec_next(&d, &rec);
		if (rc == 1) {
			if (rec.body < d.buf ||
			    rec.body + rec.length > d.buf + d.len) {
				fail = sm_fail(c, "record outside the buffer");
				break;
			}
			if (sm_revalidate(c, &rec, r)) {
				fail = -1;
				break;
			}
			(*nrec)++;
			tb_buf_append(trace, rec.body - TB_REC_HDR_LEN,
				      sm_rec_total(rec.length));
			rc = tb_sess_check(&s, &rec, &d);
			if (rc) {
				if (d.err != TB_SERR_BAD_ORDER &&
				    d.err != TB_SERR_VERSION) {
					fail = sm_fail(c,
						       "tb_sess_check: err %d",
						       d.err);
					break;
				}
				if (rc != tb_stream_errno(d.err) ||
				    s.state != TB_SESS_CLOSED) {
					fail = sm_fail(c, "tb_sess_check rc %d",
						       rc);
					break;
				}
				break;
			}
			continue;
		}
		if (rc < 0)
			break;
		if (rc != 0) {
			fail = sm_fail(c, "tb_dec_next returned %d", rc);
			break;
		}
		if (pos == len) {
			rc = tb_dec_eof(&d);
			break;
		}
		if (mode == 2) {
			rc = tb_dec_feed(&d, p + pos, 1);
			pos++;
		} else {
			rc = tb_dec_space(&d, 1 + sm_below(r, 300), &dst,
					  &room);
			if (rc) {
				fail = sm_fail(c, "tb_dec_space: %d", rc);
				break;
			}
			n = 1 + sm_below(r, (uint32_t)maxchunk);
			n = TB_MIN(n, TB_MIN(room, len - pos));
			memcpy(dst, p + pos, n);
			tb_dec_commit(&d, n);
			pos += n;
		}
		if (rc) {
			fail = sm_fail(c, "feed: %d", rc);
			break;
		}
	}
	if (!fail) {
		*outcome = d.err;
		if (rc < 0 && (!sm_dec_code_ok(d.err) ||
			       rc != tb_stream_errno(d.err) || !d.msg[0]))
			fail = sm_fail(c, "rc %d with err %d msg '%s'", rc,
				       d.err, d.msg);
		else if (rc == 0 && d.err)
			fail = sm_fail(c, "rc 0 with err %d", d.err);
		else if (d.err && tb_dec_next(&d, &rec) != rc)
			fail = sm_fail(c, "error %d not sticky", d.err);
		else if (d.cap > 2 * (size_t)(TB_REC_LEN_MAX + 16) + len + 4096)
			fail = sm_fail(c, "buffer grew to %zu", d.cap);
	}
	tb_dec_free(&d);
	return fail;
}

/*
 * The oracle (see the top of the file).  0, or -1 with c->fail set.
 */
static inline int sm_check(struct sm_ctx *c, const uint8_t *p, size_t len,
			   enum tb_role role, struct sm_rng *r, int mutant)
{
	struct sm_stats *st = &c->st[mutant ? 1 : 0];
	int out0 = 0, out1 = 0,
	    mode = (len < 2048 && sm_below(r, 8) == 0) ? 2 : 1;
	uint64_t n0, n1;

	c->fail[0] = 0;
	if (sm_decode(c, p, len, role, 0, r, &c->trace[0], &out0, &n0) ||
	    sm_decode(c, p, len, role, mode, r, &c->trace[1], &out1, &n1))
		return -1;
	if (out0 != out1 || n0 != n1 || c->trace[0].len != c->trace[1].len ||
	    (c->trace[0].len &&
	     memcmp(c->trace[0].data, c->trace[1].data, c->trace[0].len)))
		return sm_fail(c,
			       "chunking changed the result: %d/%" PRIu64
			       " records vs %d/%" PRIu64,
			       out0, n0, out1, n1);
	st->streams++;
	st->records += n0;
	st->bytes += len;
	st->outcome[out0]++;
	if (!out0)
		st->clean++;
	return 0;
}

/*
 * The mutation campaign: streams @first .. @first + @count - 1 of @seed.
 * Stream i: a valid stream (it must decode cleanly), then a mutant of it
 * (splicing records of the previous valid stream), CRCs re-fixed on two
 * thirds of the mutants.  Each stream's rng depends only on (seed, i), so one
 * stream can be replayed.  0, or -1 with c->fail and the failing stream
 * in @bad.
 */
static inline int sm_campaign(struct sm_ctx *c, uint64_t seed, uint64_t first,
			      uint64_t count, struct tb_buf *bad)
{
	struct tb_buf valid = { 0 }, donor = { 0 }, mut = { 0 };
	uint64_t i, nvalid;
	int rc = 0;

	for (i = first; i < first + count; i++) {
		struct sm_rng r = { seed * 0x100000001B3ull ^
				    (i * 0x9E3779B97F4A7C15ull) };
		enum tb_role role;
		size_t k;

		sm_next(&r);
		role = sm_below(&r, 4) ? TB_ROLE_PRIMARY : TB_ROLE_BACKUP;
		c->index = i;
		c->role = role;
		tb_buf_reset(&valid);
		if (sm_gen_stream(&r, role, &valid, &c->pr)) {
			rc = sm_fail(c, "stream %" PRIu64 ": generator failed",
				     i);
			tb_buf_reset(bad);
			break;
		}
		nvalid = c->st[0].clean;
		if (sm_check(c, valid.data, valid.len, role, &r, 0) ||
		    c->st[0].clean != nvalid + 1) {
			if (!c->fail[0])
				sm_fail(c,
					"valid stream did not decode cleanly");
			rc = -1;
			tb_buf_reset(bad);
			tb_buf_append(bad, valid.data, valid.len);
			break;
		}
		tb_buf_reset(&mut);
		tb_buf_append(&mut, valid.data, valid.len);
		sm_mutate(&r, &mut, donor.data, donor.len);
		if (sm_below(&r, 3)) /* 2/3: let mutations reach the parsers */
			sm_fix_crcs(mut.data, mut.len);
		if (sm_check(c, mut.data, mut.len, role, &r, 1)) {
			rc = -1;
			tb_buf_reset(bad);
			tb_buf_append(bad, mut.data, mut.len);
			break;
		}
		/* the next stream splices from this one */
		tb_buf_reset(&donor);
		k = valid.len;
		tb_buf_append(&donor, valid.data, k);
	}
	if (rc) {
		char msg[sizeof(c->fail)];

		memcpy(msg, c->fail, sizeof(msg));
		snprintf(c->fail, sizeof(c->fail),
			 "seed %" PRIu64 " stream %" PRIu64 ": %.400s", seed, i,
			 msg);
	}
	tb_buf_free(&valid);
	tb_buf_free(&donor);
	tb_buf_free(&mut);
	return rc;
}

#endif
