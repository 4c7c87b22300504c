// SPDX-License-Identifier: MIT
/*
 * The oracle of tests/fuzz/stream_mutator.h (what sm_check verifies is
 * described there) and the mutation campaign that feeds it valid streams
 * and their mutants (stream_mutator.c).
 *
 * Invariants: the oracle never trusts a decoded record beyond what it
 * re-checks itself (pointers inside the body, re-encoding gives the same
 * bytes); every violation returns -1 with the reason in c->fail; the rng
 * is the caller's, so a campaign's stream i depends only on (seed, i).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/common.h"
#include "tiber/stream.h"
#include "stream_mutator.h"

void sm_ctx_free(struct sm_ctx *c)
{
	tb_buf_free(&c->enc);
	tb_enc_pages_free(&c->pr);
	tb_buf_free(&c->trace[0]);
	tb_buf_free(&c->trace[1]);
}

__attribute__((format(printf, 2, 3))) static int sm_fail(struct sm_ctx *c,
							 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->fail, sizeof(c->fail), fmt, ap);
	va_end(ap);
	return -1;
}

/* Re-encode @rec and compare with the bytes it was decoded from. */
static int sm_revalidate(struct sm_ctx *c, const struct tb_rec *rec,
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
			    (d.enc >= TB_ENC_XOR_LZ4 && !d.len) ||
			    (d.enc == TB_ENC_XOR_MASK && d.len < 64))
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
static int sm_dec_code_ok(int err)
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
static int sm_decode(struct sm_ctx *c, const uint8_t *p, size_t len,
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
int sm_check(struct sm_ctx *c, const uint8_t *p, size_t len, enum tb_role role,
	     struct sm_rng *r, int mutant)
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
int sm_campaign(struct sm_ctx *c, uint64_t seed, uint64_t first, uint64_t count,
		struct tb_buf *bad)
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
