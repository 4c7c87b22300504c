// SPDX-License-Identifier: MIT
/*
 * The streaming decoder (tb_dec_*): takes the bytes of a session in any
 * chunking (tb_dec_feed, or tb_dec_space / tb_dec_commit to receive in
 * place) and returns whole, CRC-checked, validated records
 * (docs/stream-format.md, section 8: the order of checks).
 *
 * Invariants: all input is hostile.  A record's header is checked
 * (length limit, type, per-type length) as soon as its 8 bytes are
 * present, before the decoder makes room for the rest of the record; the
 * body is parsed (lib/stream_check.c) only after the zero padding, the
 * trailer CRC and the trailer's zero word were verified.  The buffer
 * grows to at most about two of the largest records.  The first error is
 * sticky: d->err and d->msg keep it, every later call returns it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_priv.h"

#define DEC_MIN_CAP (64u << 10)
/* Growth beyond this is only to what is needed (two largest records). */
#define DEC_DOUBLE_MAX (2 * ((size_t)TB_REC_LEN_MAX + 16))

void tb_dec_init(struct tb_dec *d)
{
	memset(d, 0, sizeof(*d));
}

void tb_dec_free(struct tb_dec *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = d->off = 0;
}

/* d->msg = "record N (TYPE) at byte B: why" (truncated to fit). */
void tb_dec_set_msg(struct tb_dec *d, bool have_pos, uint64_t rec_no,
		    uint32_t type, uint64_t pos, const char *why)
{
	if (have_pos)
		snprintf(d->msg, sizeof(d->msg),
			 "record %" PRIu64 " (%s) at byte %" PRIu64 ": %.100s",
			 rec_no, tb_rec_type_name(type), pos, why);
	else
		snprintf(d->msg, sizeof(d->msg), "%s: %.100s",
			 tb_rec_type_name(type), why);
}

/* Stream offset of the first pending byte. */
static uint64_t dec_pos(const struct tb_dec *d)
{
	return d->bytes_in - (d->len - d->off);
}

__attribute__((format(printf, 5, 6))) static int
dec_fail(struct tb_dec *d, int code, uint64_t pos, uint32_t type,
	 const char *fmt, ...)
{
	char why[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!d->err) {
		d->err = code;
		tb_dec_set_msg(d, true, d->records, type, pos, why);
	}
	return tb_stream_errno(d->err);
}

/* Room for @need more bytes after d->len, moving or growing the buffer
 * only when needed. */
static int dec_reserve(struct tb_dec *d, size_t need)
{
	size_t pending, cap;
	uint8_t *nb;

	if (d->off == d->len)
		d->off = d->len = 0;
	if (d->cap - d->len >= need)
		return 0;
	pending = d->len - d->off;
	if (need > SIZE_MAX / 4 - pending)
		return -ENOMEM;
	if (pending + need <= d->cap) {
		memmove(d->buf, d->buf + d->off, pending);
		d->off = 0;
		d->len = pending;
		return 0;
	}
	/* first: 64 KiB; then double, up to about two largest records */
	cap = DEC_MIN_CAP;
	if (d->cap && d->cap * 2 <= DEC_DOUBLE_MAX)
		cap = TB_MAX(cap, d->cap * 2);
	if (cap < pending + need)
		cap = TB_ALIGN_UP(pending + need, (size_t)4096);
	nb = malloc(cap);
	if (!nb)
		return -ENOMEM;
	if (pending)
		memcpy(nb, d->buf + d->off, pending);
	free(d->buf);
	d->buf = nb;
	d->cap = cap;
	d->off = 0;
	d->len = pending;
	return 0;
}

int tb_dec_feed(struct tb_dec *d, const void *data, size_t len)
{
	if (d->err || !len)
		return 0;
	if (dec_reserve(d, len))
		return -ENOMEM;
	memcpy(d->buf + d->len, data, len);
	d->len += len;
	d->bytes_in += len;
	return 0;
}

int tb_dec_space(struct tb_dec *d, size_t want, uint8_t **p, size_t *room)
{
	size_t pending = d->len - d->off, need = want ? want : 4096;
	char why[8];
	bool skip;

	if (d->err)
		return tb_stream_errno(d->err);
	if (pending >= TB_REC_HDR_LEN) {
		const uint8_t *h = d->buf + d->off;
		uint32_t type = tb_get_le32(h + OFF(w_rec_hdr, type));
		uint32_t len = tb_get_le32(h + OFF(w_rec_hdr, length));

		/* a validated header: room for the rest of its record */
		if (!tb_rec_check_header(type, len, &skip, why, sizeof(why)) &&
		    rec_total(len) > pending)
			need = TB_MAX(need, rec_total(len) - pending);
	}
	if (dec_reserve(d, need))
		return -ENOMEM;
	*p = d->buf + d->len;
	*room = d->cap - d->len;
	return 0;
}

void tb_dec_commit(struct tb_dec *d, size_t n)
{
	if (d->err)
		return;
	if (n > d->cap - d->len) /* caller bug: never past the buffer */
		n = d->cap - d->len;
	d->len += n;
	d->bytes_in += n;
}

int tb_dec_next(struct tb_dec *d, struct tb_rec *rec)
{
	for (;;) {
		size_t pending = d->len - d->off, total, covered, i;
		const uint8_t *r, *b;
		uint32_t type, len, crc, want;
		uint64_t pos = dec_pos(d);
		char why[128];
		bool skip;
		int code;

		if (d->err)
			return tb_stream_errno(d->err);
		if (pending < TB_REC_HDR_LEN)
			return 0;
		r = d->buf + d->off;
		type = tb_get_le32(r + OFF(w_rec_hdr, type));
		len = tb_get_le32(r + OFF(w_rec_hdr, length));
		code = tb_rec_check_header(type, len, &skip, why, sizeof(why));
		if (code)
			return dec_fail(d, code, pos, type, "%s", why);
		total = rec_total(len);
		if (pending < total)
			return 0;
		b = r + TB_REC_HDR_LEN;
		covered = total - TB_REC_TRAILER_LEN;
		for (i = TB_REC_HDR_LEN + len; i < covered; i++)
			if (r[i])
				return dec_fail(d, TB_SERR_BAD_CRC, pos, type,
						"nonzero padding byte");
		crc = tb_get_le32(r + covered + OFF(w_rec_trailer, crc));
		want = tb_crc32c(0, r, covered);
		if (crc != want)
			return dec_fail(d, TB_SERR_BAD_CRC, pos, type,
					"CRC 0x%08" PRIx32
					" but content has 0x%08" PRIx32,
					crc, want);
		if (tb_get_le32(r + covered + OFF(w_rec_trailer, zero)))
			return dec_fail(d, TB_SERR_BAD_CRC, pos, type,
					"nonzero trailer word");
		if (skip) {
			d->off += total;
			d->records++;
			continue;
		}
		memset(rec, 0, sizeof(*rec));
		code = tb_rec_parse_body(type, b, len, rec, why, sizeof(why));
		if (code)
			return dec_fail(d, code, pos, type, "%s", why);
		rec->type = type;
		rec->length = len;
		rec->body = b;
		d->off += total;
		d->records++;
		return 1;
	}
}

int tb_dec_eof(struct tb_dec *d)
{
	size_t pending = d->len - d->off;

	if (d->err)
		return tb_stream_errno(d->err);
	if (!pending)
		return 0;
	if (pending >= TB_REC_HDR_LEN) {
		uint32_t len =
			tb_get_le32(d->buf + d->off + OFF(w_rec_hdr, length));

		return dec_fail(d, TB_SERR_TRUNCATED, dec_pos(d),
				tb_get_le32(d->buf + d->off),
				"stream ended after %zu of %zu bytes", pending,
				rec_total(len));
	}
	return dec_fail(d, TB_SERR_TRUNCATED, dec_pos(d), 0,
			"stream ended inside a record header (%zu bytes)",
			pending);
}
