// SPDX-License-Identifier: MIT
/*
 * What a valid record is: the header check (type, per-type length) and
 * the body parsers of the stream's records (docs/stream-format.md,
 * sections 3 to 5 and 8).  The decoder (lib/stream_dec.c) runs them on
 * everything it receives; the encoders (lib/stream.c) run them on
 * everything they build, so tiber never emits a record its peer rejects.
 * The disk records' body parsers live in lib/stream_disk.c.
 *
 * Invariants: all input is hostile; every field is checked before use
 * and nothing is read outside [b, b + len) (the header check bounded len
 * first).  A check returns 0 or a TB_SERR_* code with the reason in @why.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <lz4.h>

#include "stream_priv.h"

_Static_assert(TB_PAGE_LZ4_LEN_MAX == LZ4_COMPRESSBOUND(TB_PAGE_SIZE),
	       "LZ4 page bound");

/* ================================================================ checks
 * Shared by the decoder and the encoders (which run the decoder's check
 * on what they built, so they never emit a record the peer rejects).
 * Each returns a TB_SERR_* code and writes the reason to @why.
 */

/* Write the reason for @code to @why and return @code: a check fails
 * with `return reject(why, whylen, code, fmt, ...)`. */
__attribute__((format(printf, 4, 5))) static int
reject(char *why, size_t whylen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return code;
}

/* Allowed body lengths of a record type: [*min, *max]. false: unknown. */
static bool type_len_range(uint32_t type, uint32_t *min, uint32_t *max)
{
	switch (type) {
	case TB_REC_HELLO:
		*min = HELLO_V1_LEN;
		*max = HELLO_LEN;
		return true;
	case TB_REC_EPOCH_BEGIN:
		*min = *max = BEGIN_LEN;
		return true;
	case TB_REC_PAGE_DATA:
		*min = PAGES_HDR_LEN + PAGE_ENTRY_LEN;
		*max = PAGES_LEN_MAX;
		return true;
	case TB_REC_CPU_STATE:
	case TB_REC_DEVICE_STATE:
		*min = STATE_HDR_LEN;
		*max = STATE_HDR_LEN + TB_STATE_LEN_MAX;
		return true;
	case TB_REC_EPOCH_END:
		*min = *max = END_LEN;
		return true;
	case TB_REC_ACK:
		*min = *max = ACK_LEN;
		return true;
	case TB_REC_HEARTBEAT:
		*min = *max = HB_LEN;
		return true;
	case TB_REC_ERROR:
		*min = ERR_HDR_LEN;
		*max = ERR_HDR_LEN + TB_ERROR_TEXT_MAX;
		return true;
	case TB_REC_DISK_INFO:
		*min = *max = TB_DISK_INFO_LEN;
		return true;
	case TB_REC_DISK_WRITE:
		*min = TB_DISK_WRITE_HDR_LEN;
		*max = TB_DISK_WRITE_HDR_LEN + TB_DISK_LZ4_MAX;
		return true;
	default:
		return false;
	}
}

/* Header check, done as soon as the 8 header bytes are there.  *@skip:
 * an unknown optional record (to be CRC-checked and dropped). */
int tb_rec_check_header(uint32_t type, uint32_t len, bool *skip, char *why,
			size_t whylen)
{
	uint32_t min, max;

	*skip = false;
	if (len > TB_REC_LEN_MAX)
		return reject(why, whylen, TB_SERR_OVERSIZE,
			      "length %" PRIu32 " exceeds limit %u", len,
			      TB_REC_LEN_MAX);
	if (!type_len_range(type, &min, &max)) {
		if (type & TB_REC_OPTIONAL) {
			*skip = true;
			return 0;
		}
		return reject(why, whylen, TB_SERR_UNKNOWN_TYPE,
			      "unknown mandatory type %" PRIu32, type);
	}
	if (len > max)
		return reject(why, whylen, TB_SERR_OVERSIZE,
			      "length %" PRIu32 " exceeds limit %" PRIu32
			      " of %s",
			      len, max, tb_rec_type_name(type));
	if (len < min || (min == max && len != min))
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "length %" PRIu32 " invalid for %s (%s %" PRIu32
			      ")",
			      len, tb_rec_type_name(type),
			      min == max ? "must be" : "minimum", min);
	return 0;
}

/* Text a human reads (HELLO name, ERROR text): no control characters
 * except tab.  Returns the index of the first bad byte or @n. */
size_t tb_text_bad_at(const uint8_t *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return i;
	return n;
}

int tb_page_len_ok(uint8_t enc, uint32_t len)
{
	switch (enc) {
	case TB_ENC_RAW:
		return len == TB_PAGE_SIZE;
	case TB_ENC_ZERO:
		return len == 0;
	case TB_ENC_XOR_LZ4:
	case TB_ENC_LZ4:
	case TB_ENC_XOR_RLE:
		return len >= 1 && len <= TB_PAGE_LZ4_LEN_MAX;
	case TB_ENC_XOR_MASK:
		return len >= 64 && len <= TB_PAGE_LZ4_LEN_MAX;
	default:
		return 0;
	}
}

/* ERROR.code: 0 (TB_SERR_NONE) is an orderly close, no error (the
 * primary's goodbye: the backup closes without failing over); then a
 * stream error, or TB_ERROR_ERRNO_BASE + errno. */
bool tb_error_code_ok(uint32_t code)
{
	if (code >= TB_ERROR_RECONNECTING && code <= TB_ERROR_DENIED)
		return true;
	return code <= TB_SERR_MAX || (code > TB_ERROR_ERRNO_BASE &&
				       code < TB_ERROR_ERRNO_BASE + 4096);
}

static int parse_hello(const uint8_t *b, uint32_t len, struct tb_hello *h,
		       char *why, size_t whylen)
{
	size_t n, i;

	h->magic = tb_get_le64(b + OFF(w_hello, magic));
	h->version = tb_get_le32(b + OFF(w_hello, version));
	h->role = tb_get_le32(b + OFF(w_hello, role));
	h->domid = tb_get_le32(b + OFF(w_hello, domid));
	h->page_size = tb_get_le32(b + OFF(w_hello, page_size));
	h->nr_pages = tb_get_le64(b + OFF(w_hello, nr_pages));
	h->features = tb_get_le64(b + OFF(w_hello, features));
	memcpy(h->name, b + OFF(w_hello, name), sizeof(h->name));
	memset(h->uuid, 0, sizeof(h->uuid));
	if (h->magic != TB_STREAM_MAGIC)
		return reject(why, whylen, TB_SERR_VERSION,
			      "HELLO magic 0x%016" PRIx64 " is not tiber's",
			      h->magic);
	if (h->version != TB_STREAM_VERSION)
		return reject(why, whylen, TB_SERR_VERSION,
			      "HELLO version %" PRIu32 ", this is %u",
			      h->version, TB_STREAM_VERSION);
	if (len != HELLO_LEN)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "HELLO of %" PRIu32 " bytes, version %u has %u",
			      len, TB_STREAM_VERSION, HELLO_LEN);
	memcpy(h->uuid, b + OFF(w_hello, uuid), sizeof(h->uuid));
	if (h->role != TB_ROLE_PRIMARY && h->role != TB_ROLE_BACKUP)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "HELLO role %" PRIu32, h->role);
	if (h->page_size != TB_PAGE_SIZE)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "HELLO page_size %" PRIu32, h->page_size);
	if (h->nr_pages > TB_PFN_MAX + 1 ||
	    (h->role == TB_ROLE_PRIMARY && h->nr_pages == 0))
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "HELLO nr_pages %" PRIu64, h->nr_pages);
	if (h->role == TB_ROLE_BACKUP && (h->features & ~TB_FEAT_ALL))
		return reject(
			why, whylen, TB_SERR_BAD_FIELD,
			"HELLO of the backup accepts unknown features 0x%" PRIx64,
			h->features & ~(uint64_t)TB_FEAT_ALL);
	n = strnlen(h->name, sizeof(h->name));
	i = tb_text_bad_at((const uint8_t *)h->name, n);
	if (i < n)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "HELLO name has control byte 0x%02x",
			      (uint8_t)h->name[i]);
	for (i = n; i < sizeof(h->name); i++)
		if (h->name[i])
			return reject(why, whylen, TB_SERR_BAD_FIELD,
				      "HELLO name not NUL-padded at byte %zu",
				      i);
	return 0;
}

static int parse_begin(const uint8_t *b, struct tb_epoch_begin *e, char *why,
		       size_t whylen)
{
	e->epoch = tb_get_le64(b + OFF(w_epoch_begin, epoch));
	e->flags = tb_get_le32(b + OFF(w_epoch_begin, flags));
	e->reserved = tb_get_le32(b + OFF(w_epoch_begin, reserved));
	e->t_request_ns =
		(int64_t)tb_get_le64(b + OFF(w_epoch_begin, t_request_ns));
	e->t_suspended_ns =
		(int64_t)tb_get_le64(b + OFF(w_epoch_begin, t_suspended_ns));
	e->t_resumed_ns =
		(int64_t)tb_get_le64(b + OFF(w_epoch_begin, t_resumed_ns));
	if (e->epoch == 0)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "EPOCH_BEGIN epoch 0");
	if (e->flags & ~TB_EPOCH_FULL)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "EPOCH_BEGIN unknown flags 0x%" PRIx32, e->flags);
	if (e->reserved)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "EPOCH_BEGIN reserved field nonzero");
	if (e->t_request_ns < 0 || e->t_suspended_ns < 0 || e->t_resumed_ns < 0)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "EPOCH_BEGIN negative timestamp");
	return 0;
}

static int parse_pages(const uint8_t *b, uint32_t len, struct tb_page_data *pd,
		       char *why, size_t whylen)
{
	uint32_t nr = tb_get_le32(b + OFF(w_pages_hdr, nr_pages)), i;
	uint64_t arrays, sum = 0;
	const uint8_t *pfns, *descs;

	if (tb_get_le32(b + OFF(w_pages_hdr, reserved)))
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "PAGE_DATA reserved field nonzero");
	if (nr == 0)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "PAGE_DATA with 0 pages");
	if (nr > TB_PAGES_PER_REC_MAX)
		return reject(why, whylen, TB_SERR_OVERSIZE,
			      "PAGE_DATA page count %" PRIu32
			      " exceeds limit %u",
			      nr, TB_PAGES_PER_REC_MAX);
	arrays = PAGES_HDR_LEN + (uint64_t)nr * PAGE_ENTRY_LEN;
	if (arrays > len)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "PAGE_DATA of %" PRIu32
			      " pages does not fit %" PRIu32 " bytes",
			      nr, len);
	pfns = b + PAGES_HDR_LEN;
	descs = pfns + 8 * (size_t)nr;
	for (i = 0; i < nr; i++) {
		const uint8_t *dp = descs + 8 * (size_t)i;
		uint8_t enc = dp[OFF(w_page_desc, enc)];
		uint32_t plen = tb_get_le32(dp + OFF(w_page_desc, len));
		uint64_t pfn = tb_get_le64(pfns + 8 * (size_t)i);

		if (pfn > TB_PFN_MAX)
			return reject(why, whylen, TB_SERR_BAD_FIELD,
				      "PAGE_DATA page %" PRIu32
				      ": pfn 0x%" PRIx64 " out of range",
				      i, pfn);
		if (enc > TB_ENC_MAX)
			return reject(why, whylen, TB_SERR_BAD_FIELD,
				      "PAGE_DATA page %" PRIu32
				      ": unknown encoding %u",
				      i, enc);
		if (dp[OFF(w_page_desc, reserved0)] ||
		    tb_get_le32(dp) >> 8) /* reserved0 and reserved1 */
			return reject(why, whylen, TB_SERR_BAD_FIELD,
				      "PAGE_DATA page %" PRIu32
				      ": descriptor reserved bytes nonzero",
				      i);
		if (!tb_page_len_ok(enc, plen))
			return reject(why, whylen, TB_SERR_BAD_FIELD,
				      "PAGE_DATA page %" PRIu32
				      ": length %" PRIu32
				      " invalid for encoding %u",
				      i, plen, enc);
		sum += plen;
	}
	if (sum != len - arrays)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "PAGE_DATA payload lengths sum to %" PRIu64
			      ", record has %" PRIu64,
			      sum, len - arrays);
	pd->nr_pages = nr;
	pd->pfns_le = pfns;
	pd->descs = descs;
	pd->payloads = b + arrays;
	pd->payload_len = sum;
	return 0;
}

static int parse_state(const uint8_t *b, uint32_t len, struct tb_state_blob *s,
		       char *why, size_t whylen)
{
	s->tag = tb_get_le32(b + OFF(w_state_hdr, tag));
	s->index = tb_get_le32(b + OFF(w_state_hdr, index));
	s->len = tb_get_le32(b + OFF(w_state_hdr, len));
	s->data = b + STATE_HDR_LEN;
	if (s->tag < TB_STATE_SIM || s->tag > TB_STATE_XEN_HVM)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "state tag %" PRIu32, s->tag);
	if (tb_get_le32(b + OFF(w_state_hdr, reserved)))
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "state reserved field nonzero");
	if (s->len > TB_STATE_LEN_MAX)
		return reject(why, whylen, TB_SERR_OVERSIZE,
			      "state length %" PRIu32 " exceeds limit %u",
			      s->len, TB_STATE_LEN_MAX);
	if (s->len != len - STATE_HDR_LEN)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "state length %" PRIu32
			      " but record carries %" PRIu32,
			      s->len, len - STATE_HDR_LEN);
	return 0;
}

static int parse_end(const uint8_t *b, struct tb_epoch_end *e, char *why,
		     size_t whylen)
{
	e->epoch = tb_get_le64(b + OFF(w_epoch_end, epoch));
	e->nr_pages = tb_get_le64(b + OFF(w_epoch_end, nr_pages));
	e->nr_bytes = tb_get_le64(b + OFF(w_epoch_end, nr_bytes));
	e->digest = tb_get_le64(b + OFF(w_epoch_end, digest));
	if (e->epoch == 0)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "EPOCH_END epoch 0");
	if (e->nr_pages > UINT64_MAX / TB_PAGE_SIZE ||
	    e->nr_bytes < e->nr_pages * TB_PAGE_SIZE)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "EPOCH_END %" PRIu64 " bytes cannot hold %" PRIu64
			      " pages",
			      e->nr_bytes, e->nr_pages);
	return 0;
}

static int parse_ack(const uint8_t *b, struct tb_ack *a, char *why,
		     size_t whylen)
{
	a->epoch = tb_get_le64(b + OFF(w_ack, epoch));
	a->status = tb_get_le32(b + OFF(w_ack, status));
	a->reserved = tb_get_le32(b + OFF(w_ack, reserved));
	if (a->epoch == 0)
		return reject(why, whylen, TB_SERR_BAD_FIELD, "ACK epoch 0");
	if (a->status > TB_SERR_MAX)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "ACK status %" PRIu32, a->status);
	if (a->reserved)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "ACK reserved field nonzero");
	return 0;
}

static int parse_heartbeat(const uint8_t *b, struct tb_heartbeat *h, char *why,
			   size_t whylen)
{
	h->seq = tb_get_le64(b + OFF(w_heartbeat, seq));
	h->time_ns = (int64_t)tb_get_le64(b + OFF(w_heartbeat, time_ns));
	h->last_epoch = tb_get_le64(b + OFF(w_heartbeat, last_epoch));
	if (h->time_ns < 0)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "HEARTBEAT negative time");
	return 0;
}

static int parse_error(const uint8_t *b, uint32_t len, struct tb_error *e,
		       char *why, size_t whylen)
{
	size_t i;

	e->code = tb_get_le32(b + OFF(w_error_hdr, code));
	e->text_len = tb_get_le32(b + OFF(w_error_hdr, text_len));
	e->text = (const char *)b + ERR_HDR_LEN;
	if (!tb_error_code_ok(e->code))
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "ERROR code %" PRIu32, e->code);
	if (e->text_len > TB_ERROR_TEXT_MAX)
		return reject(why, whylen, TB_SERR_OVERSIZE,
			      "ERROR text length %" PRIu32 " exceeds limit %u",
			      e->text_len, TB_ERROR_TEXT_MAX);
	if (e->text_len != len - ERR_HDR_LEN)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "ERROR text length %" PRIu32
			      " but record carries %" PRIu32,
			      e->text_len, len - ERR_HDR_LEN);
	i = tb_text_bad_at((const uint8_t *)e->text, e->text_len);
	if (i < e->text_len)
		return reject(why, whylen, TB_SERR_BAD_FIELD,
			      "ERROR text has control byte 0x%02x",
			      (uint8_t)e->text[i]);
	return 0;
}

/* Parse and validate the body of a known record (header already checked,
 * so @len is within the type's range). */
int tb_rec_parse_body(uint32_t type, const uint8_t *b, uint32_t len,
		      struct tb_rec *rec, char *why, size_t whylen)
{
	switch (type) {
	case TB_REC_HELLO:
		return parse_hello(b, len, &rec->u.hello, why, whylen);
	case TB_REC_EPOCH_BEGIN:
		return parse_begin(b, &rec->u.begin, why, whylen);
	case TB_REC_PAGE_DATA:
		return parse_pages(b, len, &rec->u.pages, why, whylen);
	case TB_REC_CPU_STATE:
	case TB_REC_DEVICE_STATE:
		return parse_state(b, len, &rec->u.state, why, whylen);
	case TB_REC_EPOCH_END:
		return parse_end(b, &rec->u.end, why, whylen);
	case TB_REC_ACK:
		return parse_ack(b, &rec->u.ack, why, whylen);
	case TB_REC_HEARTBEAT:
		return parse_heartbeat(b, &rec->u.hb, why, whylen);
	case TB_REC_ERROR:
		return parse_error(b, len, &rec->u.error, why, whylen);
	case TB_REC_DISK_INFO:
		return tb_parse_disk_info(b, &rec->u.disk_info, why, whylen);
	case TB_REC_DISK_WRITE:
		return tb_parse_disk_write(b, len, &rec->u.disk_write, why,
					   whylen);
	default:
		return reject(why, whylen, TB_SERR_UNKNOWN_TYPE,
			      "unknown mandatory type %" PRIu32, type);
	}
}
