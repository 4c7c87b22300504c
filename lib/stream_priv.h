/* SPDX-License-Identifier: MIT */
/*
 * What the files of the wire format share (lib/stream.c, stream_check.c,
 * stream_dec.c, stream_session.c, stream_disk.c): the record layout
 * (wire structs, body lengths, record size), the record builder, the
 * record checks, the body parsers of the disk records and the decoder's
 * error message.  Not installed; not for other modules.
 *
 * Invariant: the wire structs are only used through offsetof/sizeof (the
 * _Static_asserts pin them to docs/stream-format.md); bytes are read and
 * written with tb_get_le* / tb_put_le*, never through the structs.
 */
#ifndef TIBER_STREAM_PRIV_H
#define TIBER_STREAM_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/stream.h"

/* ---------------------------------------------------------------- layout
 * Wire structs: the offsets of every field (all little-endian).  They are
 * only used through offsetof/sizeof; values are stored with tb_put_le*. */
struct w_rec_hdr {
	uint32_t type;
	uint32_t length;
};
struct w_rec_trailer {
	uint32_t crc;
	uint32_t zero;
};
struct w_hello {
	uint64_t magic;
	uint32_t version;
	uint32_t role;
	uint32_t domid;
	uint32_t page_size;
	uint64_t nr_pages;
	uint64_t features;
	char name[32];
	uint8_t uuid[16];
};
struct w_epoch_begin {
	uint64_t epoch;
	uint32_t flags;
	uint32_t reserved;
	int64_t t_request_ns;
	int64_t t_suspended_ns;
	int64_t t_resumed_ns;
};
struct w_pages_hdr {
	uint32_t nr_pages;
	uint32_t reserved;
	/* then u64 pfn[nr], struct w_page_desc desc[nr], payloads */
};
struct w_page_desc {
	uint8_t enc;
	uint8_t reserved0;
	uint16_t reserved1;
	uint32_t len;
};
struct w_state_hdr {
	uint32_t tag;
	uint32_t index;
	uint32_t len;
	uint32_t reserved;
	/* then data[len] */
};
struct w_epoch_end {
	uint64_t epoch;
	uint64_t nr_pages;
	uint64_t nr_bytes;
	uint64_t digest;
};
struct w_ack {
	uint64_t epoch;
	uint32_t status;
	uint32_t reserved;
};
struct w_heartbeat {
	uint64_t seq;
	int64_t time_ns;
	uint64_t last_epoch;
};
struct w_error_hdr {
	uint32_t code;
	uint32_t text_len;
	/* then text[text_len] */
};

#define OFF(s, f) offsetof(struct s, f)

_Static_assert(sizeof(struct w_rec_hdr) == TB_REC_HDR_LEN, "rec hdr");
_Static_assert(sizeof(struct w_rec_trailer) == TB_REC_TRAILER_LEN, "trailer");
_Static_assert(sizeof(struct w_hello) == 88, "HELLO body is 88 bytes");
/* a version 1 HELLO ends at the name: long enough to say "version 1" */
#define HELLO_V1_LEN 72u
_Static_assert(OFF(w_hello, uuid) == HELLO_V1_LEN, "HELLO uuid offset");
_Static_assert(OFF(w_hello, nr_pages) == 24 && OFF(w_hello, features) == 32 &&
		       OFF(w_hello, name) == 40,
	       "HELLO offsets");
_Static_assert(sizeof(((struct w_hello *)0)->name) ==
		       sizeof(((struct tb_hello *)0)->name),
	       "HELLO name");
_Static_assert(sizeof(struct w_epoch_begin) == 40, "EPOCH_BEGIN is 40 bytes");
_Static_assert(OFF(w_epoch_begin, t_request_ns) == 16, "EPOCH_BEGIN offsets");
_Static_assert(sizeof(struct w_pages_hdr) == 8, "PAGE_DATA header");
_Static_assert(sizeof(struct w_page_desc) == 8, "page descriptor");
_Static_assert(OFF(w_page_desc, len) == 4, "page descriptor offsets");
_Static_assert(sizeof(struct w_state_hdr) == 16, "state header");
_Static_assert(sizeof(struct w_epoch_end) == 32, "EPOCH_END is 32 bytes");
_Static_assert(sizeof(struct w_ack) == 16, "ACK is 16 bytes");
_Static_assert(sizeof(struct w_heartbeat) == 24, "HEARTBEAT is 24 bytes");
_Static_assert(sizeof(struct w_error_hdr) == 8, "ERROR header");
_Static_assert(TB_PAGE_SIZE == 4096, "the wire format has 4 KiB pages");

#define HELLO_LEN     ((uint32_t)sizeof(struct w_hello))
#define BEGIN_LEN     ((uint32_t)sizeof(struct w_epoch_begin))
#define END_LEN	      ((uint32_t)sizeof(struct w_epoch_end))
#define ACK_LEN	      ((uint32_t)sizeof(struct w_ack))
#define HB_LEN	      ((uint32_t)sizeof(struct w_heartbeat))
#define ERR_HDR_LEN   ((uint32_t)sizeof(struct w_error_hdr))
#define STATE_HDR_LEN ((uint32_t)sizeof(struct w_state_hdr))
#define PAGES_HDR_LEN ((uint32_t)sizeof(struct w_pages_hdr))
/* pfn + descriptor per page */
#define PAGE_ENTRY_LEN (8u + (uint32_t)sizeof(struct w_page_desc))
/* Largest PAGE_DATA body: every page at the largest payload. */
#define PAGES_LEN_MAX    \
	(PAGES_HDR_LEN + \
	 TB_PAGES_PER_REC_MAX * (PAGE_ENTRY_LEN + TB_PAGE_LZ4_LEN_MAX))
_Static_assert(PAGES_LEN_MAX <= TB_REC_LEN_MAX, "PAGE_DATA fits a record");
_Static_assert(STATE_HDR_LEN + TB_STATE_LEN_MAX <= TB_REC_LEN_MAX,
	       "state fits a record");
_Static_assert(TB_REC_LEN_MAX <= UINT32_MAX - 32, "no overflow on totals");

/* Bytes a record with a body of @len takes on the wire. */
static inline size_t rec_total(uint32_t len)
{
	return TB_REC_HDR_LEN + TB_ALIGN_UP((size_t)len, 8) +
	       TB_REC_TRAILER_LEN;
}

#define TB_DISK_INFO_LEN      32u
#define TB_DISK_WRITE_HDR_LEN 24u

/* Reserve a whole record of body @len at the end of @out (header and
 * padding written): the caller fills the body, then tb_rec_check_close
 * validates it with the decoder's own checks and commits it. */
uint8_t *tb_rec_open(struct tb_buf *out, uint32_t type, uint32_t len);
int tb_rec_check_close(struct tb_buf *out, uint32_t type, uint32_t len);

/* "HELLO", ..., or "optional" / "unknown" (lib/stream.c). */
const char *tb_rec_type_name(uint32_t type);

/* ---------------------------------------------------------------- checks
 * lib/stream_check.c, shared by the decoder and the encoders.  Each check
 * returns 0 or a TB_SERR_* code and writes the reason to @why. */

/* Header check, done as soon as the 8 header bytes are there.  *@skip:
 * an unknown optional record (to be CRC-checked and dropped). */
int tb_rec_check_header(uint32_t type, uint32_t len, bool *skip, char *why,
			size_t whylen);
/* Parse and validate the body of a known record (header already checked,
 * so @len is within the type's range). */
int tb_rec_parse_body(uint32_t type, const uint8_t *b, uint32_t len,
		      struct tb_rec *rec, char *why, size_t whylen);
/* Text a human reads (HELLO name, ERROR text): no control characters
 * except tab.  Returns the index of the first bad byte or @n. */
size_t tb_text_bad_at(const uint8_t *s, size_t n);
/* Nonzero if @len is a valid payload length for page encoding @enc. */
int tb_page_len_ok(uint8_t enc, uint32_t len);
/* A valid ERROR.code: 0, a stream error, a TB_ERROR_* or an errno. */
bool tb_error_code_ok(uint32_t code);

/* d->msg = "record N (TYPE) at byte B: why", or "TYPE: why" without
 * @have_pos (lib/stream_dec.c; the session checker reports through it). */
void tb_dec_set_msg(struct tb_dec *d, bool have_pos, uint64_t rec_no,
		    uint32_t type, uint64_t pos, const char *why);

/* Body checks of the disk records (lib/stream_disk.c; the header check
 * already bounded @len).  0 or a stream error code with the reason in
 * @why. */
int tb_parse_disk_info(const uint8_t *b, struct tb_disk_info *i, char *why,
		       size_t whylen);
int tb_parse_disk_write(const uint8_t *b, uint32_t len, struct tb_disk_write *w,
			char *why, size_t whylen);

#endif
