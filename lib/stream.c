// SPDX-License-Identifier: MIT
/*
 * The tiber wire format: record type names, stream errors, the epoch
 * digest, the record encoders and the PAGE_DATA builder.
 * Elsewhere: CRC32C in lib/crc32c.c, the record checks in
 * lib/stream_check.c, the decoder in lib/stream_dec.c, the session order
 * in lib/stream_session.c, the disk records in lib/stream_disk.c.  The
 * normative spec is docs/stream-format.md; every limit and check here is
 * listed there.
 *
 * Invariant: an encoder runs the decoder's own checks on the record it
 * built before committing it (tb_rec_check_close), so tiber never emits a
 * record its peer rejects.  The one-call encoders grow out->len by a
 * whole record or not at all; the PAGE_DATA builder owns the end of @out
 * from tb_enc_pages_begin to tb_enc_pages_finish.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "tiber/stream.h"
#include "stream_priv.h"

/* ================================================================ names */

static const char *const type_names[] = {
	[TB_REC_HELLO] = "HELLO",
	[TB_REC_EPOCH_BEGIN] = "EPOCH_BEGIN",
	[TB_REC_PAGE_DATA] = "PAGE_DATA",
	[TB_REC_CPU_STATE] = "CPU_STATE",
	[TB_REC_DEVICE_STATE] = "DEVICE_STATE",
	[TB_REC_EPOCH_END] = "EPOCH_END",
	[TB_REC_ACK] = "ACK",
	[TB_REC_HEARTBEAT] = "HEARTBEAT",
	[TB_REC_ERROR] = "ERROR",
	[TB_REC_DISK_INFO] = "DISK_INFO",
	[TB_REC_DISK_WRITE] = "DISK_WRITE",
};

const char *tb_rec_type_name(uint32_t type)
{
	if (type < TB_ARRAY_SIZE(type_names) && type_names[type])
		return type_names[type];
	return (type & TB_REC_OPTIONAL) ? "optional" : "unknown";
}

/* ================================================================ digest */

int tb_digest_init(struct tb_digest *d)
{
	XXH3_state_t *st = XXH3_createState();

	d->state = st;
	d->page_crc = false;
	if (!st)
		return -ENOMEM;
	XXH3_64bits_reset(st);
	return 0;
}

void tb_digest_page(struct tb_digest *d, uint64_t pfn, const void *page)
{
	uint8_t le[12];

	tb_put_le64(le, pfn);
	if (d->page_crc) {
		tb_put_le32(le + 8, tb_crc32c(0, page, TB_PAGE_SIZE));
		XXH3_64bits_update(d->state, le, sizeof(le));
		return;
	}
	XXH3_64bits_update(d->state, le, 8);
	XXH3_64bits_update(d->state, page, TB_PAGE_SIZE);
}

void tb_digest_state(struct tb_digest *d, uint32_t tag, uint32_t index,
		     const void *data, uint32_t len)
{
	uint8_t le[12];

	tb_put_le32(le, tag);
	tb_put_le32(le + 4, index);
	tb_put_le32(le + 8, len);
	XXH3_64bits_update(d->state, le, sizeof(le));
	if (len)
		XXH3_64bits_update(d->state, data, len);
}

void tb_digest_disk_info(struct tb_digest *d, const struct tb_disk_info *i)
{
	uint8_t le[36];

	tb_put_le32(le, TB_REC_DISK_INFO);
	tb_put_le32(le + 4, i->disk);
	tb_put_le32(le + 8, i->flags);
	tb_put_le64(le + 12, i->size);
	tb_put_le64(le + 20, i->gen);
	tb_put_le64(le + 28, i->base_epoch);
	XXH3_64bits_update(d->state, le, sizeof(le));
}

void tb_digest_disk_write(struct tb_digest *d, uint32_t disk, uint64_t offset,
			  const void *data, uint32_t len)
{
	static const uint8_t zero[4096];
	uint8_t le[20];
	uint32_t k;

	tb_put_le32(le, TB_REC_DISK_WRITE);
	tb_put_le32(le + 4, disk);
	tb_put_le64(le + 8, offset);
	tb_put_le32(le + 16, len);
	XXH3_64bits_update(d->state, le, sizeof(le));
	if (data) {
		XXH3_64bits_update(d->state, data, len);
		return;
	}
	for (; len; len -= k) {
		k = TB_MIN(len, (uint32_t)sizeof(zero));
		XXH3_64bits_update(d->state, zero, k);
	}
}

uint64_t tb_digest_final(struct tb_digest *d)
{
	uint64_t h = XXH3_64bits_digest(d->state);

	XXH3_64bits_reset(d->state);
	return h;
}

void tb_digest_free(struct tb_digest *d)
{
	if (d->state)
		XXH3_freeState(d->state);
	d->state = NULL;
}

/* ================================================================ errors */

static const char *const serr_names[] = {
	[TB_SERR_NONE] = "no error",
	[TB_SERR_TRUNCATED] = "stream ended inside a record",
	[TB_SERR_BAD_CRC] = "record CRC mismatch or nonzero padding",
	[TB_SERR_OVERSIZE] = "length exceeds its limit",
	[TB_SERR_BAD_ORDER] = "record not allowed in this session state",
	[TB_SERR_UNKNOWN_TYPE] = "unknown mandatory record type",
	[TB_SERR_VERSION] = "incompatible HELLO (magic, version or role)",
	[TB_SERR_BAD_FIELD] = "invalid field value",
	[TB_SERR_BAD_DIGEST] = "epoch counts or digest mismatch",
	[TB_SERR_CODEC] = "page payload does not decode",
};

const char *tb_stream_strerr(int code)
{
	if (code >= 0 && code <= TB_SERR_MAX)
		return serr_names[code];
	return "unknown stream error";
}

int tb_stream_errno(int code)
{
	switch (code) {
	case TB_SERR_NONE:
		return 0;
	case TB_SERR_TRUNCATED:
		return -EPIPE;
	case TB_SERR_BAD_CRC:
		return -EBADMSG;
	case TB_SERR_OVERSIZE:
		return -EMSGSIZE;
	case TB_SERR_BAD_ORDER:
		return -EPROTO;
	case TB_SERR_UNKNOWN_TYPE:
		return -EOPNOTSUPP;
	case TB_SERR_VERSION:
		return -EPROTONOSUPPORT;
	case TB_SERR_BAD_FIELD:
		return -EINVAL;
	case TB_SERR_BAD_DIGEST:
		return -EILSEQ;
	case TB_SERR_CODEC:
		return -EUCLEAN;
	default:
		return -EPROTO;
	}
}

/* ================================================================ encode */

/*
 * Reserve a whole record at the end of @out and write its header and
 * zero padding; the caller fills the body and calls rec_close.  Nothing
 * is committed (out->len unchanged) until rec_close.
 */
uint8_t *tb_rec_open(struct tb_buf *out, uint32_t type, uint32_t len)
{
	uint8_t *r;
	size_t pad = TB_ALIGN_UP((size_t)len, 8) - len;

	if (tb_buf_reserve(out, rec_total(len)))
		return NULL;
	r = out->data + out->len;
	tb_put_le32(r + OFF(w_rec_hdr, type), type);
	tb_put_le32(r + OFF(w_rec_hdr, length), len);
	memset(r + TB_REC_HDR_LEN + len, 0, pad);
	return r + TB_REC_HDR_LEN;
}

static void rec_close(struct tb_buf *out, uint32_t len)
{
	uint8_t *r = out->data + out->len;
	size_t covered = TB_REC_HDR_LEN + TB_ALIGN_UP((size_t)len, 8);

	tb_put_le32(r + covered + OFF(w_rec_trailer, crc),
		    tb_crc32c(0, r, covered));
	tb_put_le32(r + covered + OFF(w_rec_trailer, zero), 0);
	out->len += rec_total(len);
}

/* Validate the body just built with the decoder's own checks. */
int tb_rec_check_close(struct tb_buf *out, uint32_t type, uint32_t len)
{
	struct tb_rec rec;
	char why[128];

	if (tb_rec_parse_body(type, out->data + out->len + TB_REC_HDR_LEN, len,
			      &rec, why, sizeof(why)))
		return -EINVAL;
	rec_close(out, len);
	return 0;
}

int tb_enc_hello(struct tb_buf *out, const struct tb_hello *h)
{
	uint8_t *b;
	size_t n;

	if (!out || !h)
		return -EINVAL;
	b = tb_rec_open(out, TB_REC_HELLO, HELLO_LEN);
	if (!b)
		return -ENOMEM;
	memset(b, 0, HELLO_LEN);
	tb_put_le64(b + OFF(w_hello, magic), h->magic);
	tb_put_le32(b + OFF(w_hello, version), h->version);
	tb_put_le32(b + OFF(w_hello, role), h->role);
	tb_put_le32(b + OFF(w_hello, domid), h->domid);
	tb_put_le32(b + OFF(w_hello, page_size), h->page_size);
	tb_put_le64(b + OFF(w_hello, nr_pages), h->nr_pages);
	tb_put_le64(b + OFF(w_hello, features), h->features);
	n = strnlen(h->name, sizeof(h->name));
	memcpy(b + OFF(w_hello, name), h->name, n); /* rest stays zero */
	memcpy(b + OFF(w_hello, uuid), h->uuid, sizeof(h->uuid));
	return tb_rec_check_close(out, TB_REC_HELLO, HELLO_LEN);
}

int tb_enc_epoch_begin(struct tb_buf *out, const struct tb_epoch_begin *e)
{
	uint8_t *b;

	if (!out || !e)
		return -EINVAL;
	b = tb_rec_open(out, TB_REC_EPOCH_BEGIN, BEGIN_LEN);
	if (!b)
		return -ENOMEM;
	tb_put_le64(b + OFF(w_epoch_begin, epoch), e->epoch);
	tb_put_le32(b + OFF(w_epoch_begin, flags), e->flags);
	tb_put_le32(b + OFF(w_epoch_begin, reserved), e->reserved);
	tb_put_le64(b + OFF(w_epoch_begin, t_request_ns),
		    (uint64_t)e->t_request_ns);
	tb_put_le64(b + OFF(w_epoch_begin, t_suspended_ns),
		    (uint64_t)e->t_suspended_ns);
	tb_put_le64(b + OFF(w_epoch_begin, t_resumed_ns),
		    (uint64_t)e->t_resumed_ns);
	return tb_rec_check_close(out, TB_REC_EPOCH_BEGIN, BEGIN_LEN);
}

int tb_enc_epoch_end(struct tb_buf *out, const struct tb_epoch_end *e)
{
	uint8_t *b;

	if (!out || !e)
		return -EINVAL;
	b = tb_rec_open(out, TB_REC_EPOCH_END, END_LEN);
	if (!b)
		return -ENOMEM;
	tb_put_le64(b + OFF(w_epoch_end, epoch), e->epoch);
	tb_put_le64(b + OFF(w_epoch_end, nr_pages), e->nr_pages);
	tb_put_le64(b + OFF(w_epoch_end, nr_bytes), e->nr_bytes);
	tb_put_le64(b + OFF(w_epoch_end, digest), e->digest);
	return tb_rec_check_close(out, TB_REC_EPOCH_END, END_LEN);
}

int tb_enc_ack(struct tb_buf *out, const struct tb_ack *a)
{
	uint8_t *b;

	if (!out || !a)
		return -EINVAL;
	b = tb_rec_open(out, TB_REC_ACK, ACK_LEN);
	if (!b)
		return -ENOMEM;
	tb_put_le64(b + OFF(w_ack, epoch), a->epoch);
	tb_put_le32(b + OFF(w_ack, status), a->status);
	tb_put_le32(b + OFF(w_ack, reserved), a->reserved);
	return tb_rec_check_close(out, TB_REC_ACK, ACK_LEN);
}

int tb_enc_heartbeat(struct tb_buf *out, const struct tb_heartbeat *h)
{
	uint8_t *b;

	if (!out || !h)
		return -EINVAL;
	b = tb_rec_open(out, TB_REC_HEARTBEAT, HB_LEN);
	if (!b)
		return -ENOMEM;
	tb_put_le64(b + OFF(w_heartbeat, seq), h->seq);
	tb_put_le64(b + OFF(w_heartbeat, time_ns), (uint64_t)h->time_ns);
	tb_put_le64(b + OFF(w_heartbeat, last_epoch), h->last_epoch);
	return tb_rec_check_close(out, TB_REC_HEARTBEAT, HB_LEN);
}

int tb_enc_error(struct tb_buf *out, uint32_t code, const char *text)
{
	uint32_t n, i, len;
	uint8_t *b, *t;

	if (!out || !tb_error_code_ok(code))
		return -EINVAL;
	if (!text)
		text = "";
	n = (uint32_t)strnlen(text, TB_ERROR_TEXT_MAX);
	len = ERR_HDR_LEN + n;
	b = tb_rec_open(out, TB_REC_ERROR, len);
	if (!b)
		return -ENOMEM;
	tb_put_le32(b + OFF(w_error_hdr, code), code);
	tb_put_le32(b + OFF(w_error_hdr, text_len), n);
	t = b + ERR_HDR_LEN;
	memcpy(t, text, n);
	for (i = 0; i < n; i++)
		if (tb_text_bad_at(t + i, 1) == 0)
			t[i] = '?';
	return tb_rec_check_close(out, TB_REC_ERROR, len);
}

int tb_enc_state(struct tb_buf *out, uint32_t type, uint32_t tag,
		 uint32_t index, const void *data, uint32_t len)
{
	uint8_t *b;

	if (!out || (type != TB_REC_CPU_STATE && type != TB_REC_DEVICE_STATE) ||
	    len > TB_STATE_LEN_MAX || (len && !data))
		return -EINVAL;
	b = tb_rec_open(out, type, STATE_HDR_LEN + len);
	if (!b)
		return -ENOMEM;
	tb_put_le32(b + OFF(w_state_hdr, tag), tag);
	tb_put_le32(b + OFF(w_state_hdr, index), index);
	tb_put_le32(b + OFF(w_state_hdr, len), len);
	tb_put_le32(b + OFF(w_state_hdr, reserved), 0);
	if (len)
		memcpy(b + STATE_HDR_LEN, data, len);
	return tb_rec_check_close(out, type, STATE_HDR_LEN + len);
}

/*
 * PAGE_DATA builder.  Layout in @out while building, from rec_off:
 *   record header | pages header | room for max_pages pfns and
 *   descriptors | payloads appended by add
 * pfns and descriptors go to the scratch arrays; finish writes them into
 * place, moving the payloads down when fewer than max_pages were added.
 */
static size_t pages_arrays_off(uint32_t max_pages)
{
	return TB_REC_HDR_LEN + PAGES_HDR_LEN +
	       (size_t)max_pages * PAGE_ENTRY_LEN;
}

int tb_enc_pages_begin(struct tb_page_rec *r, struct tb_buf *out,
		       uint32_t max_pages)
{
	size_t hdr;

	if (!r || !out || max_pages == 0 || max_pages > TB_PAGES_PER_REC_MAX)
		return -EINVAL;
	if (!r->pfns) {
		r->pfns = malloc(TB_PAGES_PER_REC_MAX * sizeof(*r->pfns));
		if (!r->pfns)
			return -ENOMEM;
	}
	if (!r->descs) {
		r->descs = malloc((size_t)TB_PAGES_PER_REC_MAX * 8);
		if (!r->descs)
			return -ENOMEM;
	}
	hdr = pages_arrays_off(max_pages);
	if (tb_buf_reserve(out, hdr))
		return -ENOMEM;
	r->out = out;
	r->rec_off = out->len;
	r->max_pages = max_pages;
	r->nr_pages = 0;
	out->len += hdr;
	return 0;
}

int tb_enc_pages_add(struct tb_page_rec *r, uint64_t pfn, uint8_t enc,
		     const void *payload, uint32_t len)
{
	struct tb_buf *out = r->out;
	uint64_t body;

	if (!out || pfn > TB_PFN_MAX || !tb_page_len_ok(enc, len) ||
	    (len && !payload))
		return -EINVAL;
	if (r->nr_pages >= r->max_pages)
		return -ENOSPC;
	/* body size after compaction, with this page */
	body = (out->len - r->rec_off - pages_arrays_off(r->max_pages)) +
	       PAGES_HDR_LEN + (uint64_t)(r->nr_pages + 1) * PAGE_ENTRY_LEN +
	       len;
	if (body > TB_REC_LEN_MAX)
		return -ENOSPC;
	/* + pad and trailer, so finish never allocates */
	if (tb_buf_reserve(out, (size_t)len + 8 + TB_REC_TRAILER_LEN))
		return -ENOMEM;
	if (len)
		memcpy(out->data + out->len, payload, len);
	out->len += len;
	r->pfns[r->nr_pages] = pfn;
	memset(r->descs + 8 * (size_t)r->nr_pages, 0, 8);
	r->descs[8 * (size_t)r->nr_pages + OFF(w_page_desc, enc)] = enc;
	tb_put_le32(r->descs + 8 * (size_t)r->nr_pages + OFF(w_page_desc, len),
		    len);
	r->nr_pages++;
	return 0;
}

int tb_enc_pages_finish(struct tb_page_rec *r)
{
	struct tb_buf *out = r->out;
	size_t reserved_end, arrays_end, payload, i;
	uint32_t body_len;
	uint8_t *rec, *b;
	int rc;

	if (!out)
		return -EINVAL;
	if (r->nr_pages == 0) { /* nothing added: emit nothing */
		out->len = r->rec_off;
		r->out = NULL;
		return 0;
	}
	reserved_end = r->rec_off + pages_arrays_off(r->max_pages);
	arrays_end = r->rec_off + pages_arrays_off(r->nr_pages);
	payload = out->len - reserved_end;
	rec = out->data + r->rec_off;
	if (arrays_end != reserved_end)
		memmove(out->data + arrays_end, out->data + reserved_end,
			payload);
	body_len =
		(uint32_t)(arrays_end - r->rec_off - TB_REC_HDR_LEN + payload);
	b = rec + TB_REC_HDR_LEN;
	tb_put_le32(b + OFF(w_pages_hdr, nr_pages), r->nr_pages);
	tb_put_le32(b + OFF(w_pages_hdr, reserved), 0);
	for (i = 0; i < r->nr_pages; i++)
		tb_put_le64(b + PAGES_HDR_LEN + 8 * i, r->pfns[i]);
	memcpy(b + PAGES_HDR_LEN + 8 * (size_t)r->nr_pages, r->descs,
	       8 * (size_t)r->nr_pages);
	/* header + pad + trailer: room was reserved by add */
	out->len = r->rec_off;
	tb_put_le32(rec + OFF(w_rec_hdr, type), TB_REC_PAGE_DATA);
	tb_put_le32(rec + OFF(w_rec_hdr, length), body_len);
	memset(b + body_len, 0, TB_ALIGN_UP((size_t)body_len, 8) - body_len);
	rc = tb_rec_check_close(out, TB_REC_PAGE_DATA, body_len);
	r->out = NULL;
	return rc;
}

void tb_enc_pages_free(struct tb_page_rec *r)
{
	free(r->pfns);
	free(r->descs);
	tb_buf_free(&r->payload);
	r->pfns = NULL;
	r->descs = NULL;
	r->out = NULL;
	r->nr_pages = r->max_pages = 0;
}
