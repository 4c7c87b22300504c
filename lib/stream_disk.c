// SPDX-License-Identifier: MIT
/*
 * The disk records of the stream (docs/stream-format.md, 5.10-5.11):
 * DISK_INFO (a disk of a FULL epoch and its size) and DISK_WRITE (one
 * write, RAW / ZERO / LZ4), their encoders, body checks and the payload
 * decoder.  The decoder and session order live in lib/stream.c.
 *
 * Invariants: every field is checked before use (the peer is hostile);
 * an LZ4 payload must decode to exactly the declared length.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <lz4.h>

#include "stream_priv.h"

_Static_assert(TB_DISK_LZ4_MAX >= LZ4_COMPRESSBOUND(TB_DISK_WRITE_MAX),
	       "LZ4 bound of a disk write");
_Static_assert(TB_DISK_WRITE_HDR_LEN + TB_DISK_LZ4_MAX <= TB_REC_LEN_MAX,
	       "DISK_WRITE fits a record");

/* Body layout (little-endian):
 *   DISK_INFO:  u32 disk, u32 flags, u64 size, u64 gen, u64 base_epoch
 *   DISK_WRITE: u32 disk, u8 enc, 3 x u8 reserved, u64 offset, u32 len,
 *               u32 payload_len, payload */
#define DW_DISK	       0
#define DW_ENC	       4
#define DW_RESERVED    5
#define DW_OFFSET      8
#define DW_LEN	       16
#define DW_PAYLOAD_LEN 20

int tb_parse_disk_info(const uint8_t *b, struct tb_disk_info *i, char *why,
		       size_t whylen)
{
	i->disk = tb_get_le32(b);
	i->flags = tb_get_le32(b + 4);
	i->size = tb_get_le64(b + 8);
	i->gen = tb_get_le64(b + 16);
	i->base_epoch = tb_get_le64(b + 24);
	if (i->disk >= TB_DISKS_MAX) {
		snprintf(why, whylen, "DISK_INFO disk %" PRIu32, i->disk);
		return TB_SERR_BAD_FIELD;
	}
	if (i->flags & ~TB_DISK_KEEP) {
		snprintf(why, whylen, "DISK_INFO flags %#" PRIx32, i->flags);
		return TB_SERR_BAD_FIELD;
	}
	if (!i->size || i->size % TB_PAGE_SIZE || i->size > TB_DISK_SIZE_MAX) {
		snprintf(why, whylen,
			 "DISK_INFO size %" PRIu64
			 " (must be a multiple of 4096, at most 2^50)",
			 i->size);
		return TB_SERR_BAD_FIELD;
	}
	if (!i->gen ||
	    (i->flags & TB_DISK_KEEP ? !i->base_epoch : i->base_epoch != 0)) {
		snprintf(
			why, whylen,
			"DISK_INFO generation %" PRIu64 ", base epoch %" PRIu64
			" (a generation is nonzero; a base epoch only with KEEP)",
			i->gen, i->base_epoch);
		return TB_SERR_BAD_FIELD;
	}
	return 0;
}

static bool disk_payload_len_ok(uint8_t enc, uint32_t len, uint32_t plen)
{
	switch (enc) {
	case TB_ENC_RAW:
		return plen == len;
	case TB_ENC_ZERO:
		return plen == 0;
	case TB_ENC_LZ4:
		return plen >= 1 && plen < len &&
		       plen <= (uint32_t)LZ4_COMPRESSBOUND(len);
	default:
		return false;
	}
}

int tb_parse_disk_write(const uint8_t *b, uint32_t len, struct tb_disk_write *w,
			char *why, size_t whylen)
{
	w->disk = tb_get_le32(b + DW_DISK);
	w->enc = b[DW_ENC];
	w->offset = tb_get_le64(b + DW_OFFSET);
	w->len = tb_get_le32(b + DW_LEN);
	w->payload_len = tb_get_le32(b + DW_PAYLOAD_LEN);
	w->payload = b + TB_DISK_WRITE_HDR_LEN;
	if (w->disk >= TB_DISKS_MAX) {
		snprintf(why, whylen, "DISK_WRITE disk %" PRIu32, w->disk);
		return TB_SERR_BAD_FIELD;
	}
	if (b[DW_RESERVED] || b[DW_RESERVED + 1] || b[DW_RESERVED + 2]) {
		snprintf(why, whylen, "DISK_WRITE reserved bytes nonzero");
		return TB_SERR_BAD_FIELD;
	}
	if (w->enc != TB_ENC_RAW && w->enc != TB_ENC_ZERO &&
	    w->enc != TB_ENC_LZ4) {
		snprintf(why, whylen, "DISK_WRITE encoding %u", w->enc);
		return TB_SERR_BAD_FIELD;
	}
	if (w->len > TB_DISK_WRITE_MAX) {
		snprintf(why, whylen,
			 "DISK_WRITE length %" PRIu32 " exceeds limit %u",
			 w->len, TB_DISK_WRITE_MAX);
		return TB_SERR_OVERSIZE;
	}
	if (!w->len || w->len % TB_DISK_SECTOR || w->offset % TB_DISK_SECTOR ||
	    w->offset > TB_DISK_SIZE_MAX - w->len) {
		snprintf(why, whylen,
			 "DISK_WRITE of %" PRIu32 " bytes at %" PRIu64
			 " (whole 512-byte sectors below 2^50 only)",
			 w->len, w->offset);
		return TB_SERR_BAD_FIELD;
	}
	if (w->payload_len != len - TB_DISK_WRITE_HDR_LEN ||
	    !disk_payload_len_ok(w->enc, w->len, w->payload_len)) {
		snprintf(why, whylen,
			 "DISK_WRITE payload %" PRIu32
			 " bytes (record carries %" PRIu32
			 ") invalid for encoding %u of %" PRIu32 " bytes",
			 w->payload_len, len - TB_DISK_WRITE_HDR_LEN, w->enc,
			 w->len);
		return TB_SERR_BAD_FIELD;
	}
	return 0;
}

int tb_enc_disk_info(struct tb_buf *out, const struct tb_disk_info *i)
{
	uint8_t *b;

	if (!out || !i)
		return -EINVAL;
	b = tb_rec_open(out, TB_REC_DISK_INFO, TB_DISK_INFO_LEN);
	if (!b)
		return -ENOMEM;
	tb_put_le32(b, i->disk);
	tb_put_le32(b + 4, i->flags);
	tb_put_le64(b + 8, i->size);
	tb_put_le64(b + 16, i->gen);
	tb_put_le64(b + 24, i->base_epoch);
	return tb_rec_check_close(out, TB_REC_DISK_INFO, TB_DISK_INFO_LEN);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return !n || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

int tb_enc_disk_rec(struct tb_buf *out, const struct tb_disk_write *w)
{
	uint32_t rlen;
	uint8_t *b;

	if (!out || !w || w->payload_len > TB_DISK_LZ4_MAX ||
	    (w->payload_len && !w->payload))
		return -EINVAL;
	rlen = TB_DISK_WRITE_HDR_LEN + w->payload_len;
	b = tb_rec_open(out, TB_REC_DISK_WRITE, rlen);
	if (!b)
		return -ENOMEM;
	tb_put_le32(b + DW_DISK, w->disk);
	memset(b + DW_ENC, 0, 4);
	b[DW_ENC] = w->enc;
	tb_put_le64(b + DW_OFFSET, w->offset);
	tb_put_le32(b + DW_LEN, w->len);
	tb_put_le32(b + DW_PAYLOAD_LEN, w->payload_len);
	if (w->payload_len)
		memcpy(b + TB_DISK_WRITE_HDR_LEN, w->payload, w->payload_len);
	return tb_rec_check_close(out, TB_REC_DISK_WRITE, rlen);
}

int tb_enc_disk_write(struct tb_buf *out, uint32_t disk, uint64_t offset,
		      const void *data, uint32_t len, void *scratch)
{
	struct tb_disk_write w = { .disk = disk,
				   .enc = TB_ENC_RAW,
				   .offset = offset,
				   .len = len,
				   .payload_len = len,
				   .payload = data };
	int c;

	if (!out || !scratch || len > TB_DISK_WRITE_MAX)
		return -EINVAL;
	if (!data || all_zero(data, len)) {
		w.enc = TB_ENC_ZERO;
		w.payload_len = 0;
		w.payload = NULL;
	} else {
		c = LZ4_compress_default(data, scratch, (int)len,
					 (int)TB_DISK_LZ4_MAX);
		if (c > 0 && (uint32_t)c <= len - len / 16) {
			w.enc = TB_ENC_LZ4;
			w.payload = scratch;
			w.payload_len = (uint32_t)c;
		}
	}
	return tb_enc_disk_rec(out, &w);
}

int tb_disk_write_decode(const struct tb_disk_write *w, void *dst)
{
	int n;

	switch (w->enc) {
	case TB_ENC_RAW:
		memcpy(dst, w->payload, w->len);
		return 0;
	case TB_ENC_ZERO:
		memset(dst, 0, w->len);
		return 0;
	case TB_ENC_LZ4:
		n = LZ4_decompress_safe((const char *)w->payload, dst,
					(int)w->payload_len, (int)w->len);
		return n == (int)w->len ? 0 : -EUCLEAN;
	default:
		return -EUCLEAN;
	}
}
