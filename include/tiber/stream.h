/* SPDX-License-Identifier: MIT */
/*
 * The tiber wire format (normative spec: docs/stream-format.md).
 *
 * A session is a byte stream of records, each:
 *
 *   u32 type | u32 length | body[length] | zero pad to 8 | u32 crc32c | u32 0
 *
 * little-endian; crc32c covers header + body + pad.  The encoder appends
 * whole records to a tb_buf; the decoder takes bytes in any chunking and
 * returns whole, CRC-checked, length-checked records.  All peer input is
 * hostile: every length is checked against the limits below before any
 * allocation, and a decoder error is sticky (the session must be closed).
 */
#ifndef TIBER_STREAM_H
#define TIBER_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/common.h"

#define TB_STREAM_MAGIC	  0x5254534542495454ull /* "TTIBESTR" little-endian */
#define TB_STREAM_VERSION 2u /* 2: HELLO carries the guest UUID */

#define TB_REC_OPTIONAL	   0x80000000u /* type bit: receiver may skip it */
#define TB_REC_HDR_LEN	   8u
#define TB_REC_TRAILER_LEN 8u
/* Largest body a record may carry (PAGE_DATA with 1024 raw pages fits). */
#define TB_REC_LEN_MAX (8u << 20)
/* Most pages one PAGE_DATA record may carry. */
#define TB_PAGES_PER_REC_MAX 1024u
/* Largest CPU_STATE / DEVICE_STATE blob. */
#define TB_STATE_LEN_MAX (4u << 20)
/* Longest ERROR text. */
#define TB_ERROR_TEXT_MAX 1024u
/* Longest LZ4 / XOR_LZ4 page payload: LZ4_compressBound(4096). */
#define TB_PAGE_LZ4_LEN_MAX 4128u
/* Highest pfn (and HELLO nr_pages <= TB_PFN_MAX + 1): 52-bit frames. */
#define TB_PFN_MAX ((1ull << 52) - 1)
/* ERROR.code: 0 is an orderly close (no error), 1..TB_SERR_MAX an enum
 * tb_stream_err; a local errno E of the sender is sent as
 * TB_ERROR_ERRNO_BASE + E (E in 1..4095). */
#define TB_ERROR_ERRNO_BASE 0x10000u

enum tb_rec_type {
	TB_REC_HELLO = 1,
	TB_REC_EPOCH_BEGIN = 2,
	TB_REC_PAGE_DATA = 3,
	TB_REC_CPU_STATE = 4,
	TB_REC_DEVICE_STATE = 5,
	TB_REC_EPOCH_END = 6,
	TB_REC_ACK = 7,
	TB_REC_HEARTBEAT = 8,
	TB_REC_ERROR = 9,
	TB_REC_DISK_INFO = 10,	/* a disk of a FULL epoch: its size */
	TB_REC_DISK_WRITE = 11, /* one write to a disk in the open epoch */
};

enum tb_role {
	TB_ROLE_PRIMARY = 1,
	TB_ROLE_BACKUP = 2,
};

/* HELLO feature bits (negotiated: the backup answers with the subset). */
#define TB_FEAT_XOR_LZ4 (1ull << 0) /* PAGE_DATA may use XOR_LZ4 */
#define TB_FEAT_LZ4	(1ull << 1) /* PAGE_DATA may use LZ4 */
#define TB_FEAT_DISK	(1ull << 2) /* DISK_INFO / DISK_WRITE records */
#define TB_FEAT_XOR_RLE (1ull << 3) /* PAGE_DATA may use XOR_RLE */
/* the epoch digest hashes each page's CRC32C, not its bytes (5.9) */
#define TB_FEAT_PAGE_CRC (1ull << 4)
#define TB_FEAT_XOR_MASK (1ull << 5) /* PAGE_DATA may use XOR_MASK */
#define TB_FEAT_ALL                                                       \
	(TB_FEAT_XOR_LZ4 | TB_FEAT_LZ4 | TB_FEAT_DISK | TB_FEAT_XOR_RLE | \
	 TB_FEAT_PAGE_CRC | TB_FEAT_XOR_MASK)

/* Disks: at most TB_DISKS_MAX per guest, sizes in 4 KiB multiples up to
 * TB_DISK_SIZE_MAX, writes in 512-byte sectors of at most
 * TB_DISK_WRITE_MAX decoded bytes. */
#define TB_DISKS_MAX	  8u
#define TB_DISK_SECTOR	  512u
#define TB_DISK_SIZE_MAX  (1ull << 50)
#define TB_DISK_WRITE_MAX (1u << 20)
#define TB_DISK_LZ4_MAX	  (TB_DISK_WRITE_MAX + TB_DISK_WRITE_MAX / 255u + 16u)

/* Per-page encodings in PAGE_DATA. */
enum tb_page_enc {
	TB_ENC_RAW = 0,	    /* 4096 bytes as they are */
	TB_ENC_ZERO = 1,    /* all-zero page, no payload */
	TB_ENC_XOR_LZ4 = 2, /* lz4(page XOR previous copy at the backup) */
	TB_ENC_LZ4 = 3,	    /* lz4(page) */
	TB_ENC_XOR_RLE =
		4, /* runs of the non-zero bytes of page XOR previous */
	TB_ENC_XOR_MASK = 5, /* masks + the non-zero bytes of the same */
	TB_ENC_MAX = 5,
};

/* Backend tags of CPU_STATE / DEVICE_STATE blobs. */
enum tb_state_tag {
	TB_STATE_SIM = 1,
	TB_STATE_XEN_PV = 2,
	TB_STATE_XEN_HVM = 3,
};

/* EPOCH_BEGIN flags */
#define TB_EPOCH_FULL (1u << 0) /* first sync: pages not sent are zero */

struct tb_hello {
	uint64_t magic;
	uint32_t version;
	uint32_t role; /* enum tb_role */
	uint32_t domid;
	uint32_t page_size;
	uint64_t nr_pages;
	uint64_t features;
	char name[32];	  /* guest name, NUL-padded, informational */
	uint8_t uuid[16]; /* the guest's UUID; the backup echoes it */
};

struct tb_epoch_begin {
	uint64_t epoch;
	uint32_t flags;
	uint32_t reserved;
	int64_t t_request_ns;
	int64_t t_suspended_ns;
	int64_t t_resumed_ns;
};

/*
 * A decoded PAGE_DATA: arrays point into the decoder's buffer and are
 * valid until the next tb_dec_next().  payload[i] has len[i] bytes.
 */
struct tb_page_data {
	uint32_t nr_pages;
	const uint8_t *pfns_le;	 /* nr_pages x u64 LE (unaligned-safe read) */
	const uint8_t *descs;	 /* nr_pages x 8 bytes, see tb_page_desc */
	const uint8_t *payloads; /* concatenated payloads */
	uint64_t payload_len;
};

struct tb_page_desc {
	uint8_t enc; /* enum tb_page_enc */
	uint32_t len;
};

struct tb_state_blob {
	uint32_t tag;	     /* enum tb_state_tag */
	uint32_t index;	     /* vcpu number or device section */
	const uint8_t *data; /* into the decoder's buffer */
	uint32_t len;
};

/* DISK_INFO flags */
#define TB_DISK_KEEP (1u << 0) /* re-sync: start from the backup's copy */

struct tb_disk_info {
	uint32_t disk;	     /* 0 .. TB_DISKS_MAX - 1 */
	uint32_t flags;	     /* TB_DISK_KEEP */
	uint64_t size;	     /* bytes */
	uint64_t gen;	     /* the copy's generation (nonzero) */
	uint64_t base_epoch; /* KEEP: the backup's copy is of this epoch or
				later; else 0 */
};

/* DISK_WRITE encodings: RAW, ZERO and LZ4 of enum tb_page_enc. */
struct tb_disk_write {
	uint32_t disk;
	uint8_t enc;
	uint64_t offset;	/* bytes, sector-aligned */
	uint32_t len;		/* decoded bytes, whole sectors */
	uint32_t payload_len;	/* RAW: len; ZERO: 0; LZ4: compressed */
	const uint8_t *payload; /* into the decoder's buffer */
};

struct tb_epoch_end {
	uint64_t epoch;
	uint64_t nr_pages; /* pages sent in this epoch */
	uint64_t nr_bytes; /* decoded page bytes + state blob bytes */
	uint64_t digest;   /* tb_digest over the decoded content, see below */
};

struct tb_ack {
	uint64_t epoch;
	uint32_t status; /* 0 = committed, else enum tb_stream_err */
	uint32_t reserved;
};

struct tb_heartbeat {
	uint64_t seq;
	int64_t time_ns;
	uint64_t last_epoch; /* primary: last sent; backup: last committed */
};

struct tb_error {
	uint32_t code; /* 0 (orderly close), enum tb_stream_err, or
			  TB_ERROR_ERRNO_BASE + errno */
	uint32_t text_len;
	const char *text; /* not NUL-terminated; into the decoder's buffer */
};

/* One decoded record. */
struct tb_rec {
	uint32_t type; /* with TB_REC_OPTIONAL cleared */
	uint32_t length;
	const uint8_t *body; /* raw body, into the decoder's buffer */
	union {
		struct tb_hello hello;
		struct tb_epoch_begin begin;
		struct tb_page_data pages;
		struct tb_state_blob state;
		struct tb_epoch_end end;
		struct tb_ack ack;
		struct tb_heartbeat hb;
		struct tb_error error;
		struct tb_disk_info disk_info;
		struct tb_disk_write disk_write;
	} u;
};

/* ---------------------------------------------------------------- CRC */

/* CRC32C (Castagnoli), standard init/final xor: crc32c("123456789") =
 * 0xE3069283.  @crc is the previous result (0 to start). */
uint32_t tb_crc32c(uint32_t crc, const void *data, size_t len);
/* The two implementations behind tb_crc32c (for tests and benchmarks):
 * table-driven slicing-by-8, and SSE4.2 (call only if available). */
uint32_t tb_crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t tb_crc32c_hw(uint32_t crc, const void *data, size_t len);
bool tb_crc32c_hw_available(void);

/* ---------------------------------------------------------------- digest */

/*
 * Epoch digest: XXH3-64 over, in record order, for every page
 * (pfn as u64 LE, then its 4096 decoded bytes, or with TB_FEAT_PAGE_CRC
 * their CRC32C as u32 LE) and every state blob
 * (tag u32 LE, index u32 LE, len u32 LE, bytes).  Both sides compute it
 * over the decoded content, so it also checks the codec.
 */
struct tb_digest {
	void *state; /* XXH3_state_t */
	/* TB_FEAT_PAGE_CRC agreed: a page is hashed as its pfn and its
	 * CRC32C (the crc32 instruction), not its bytes: tiber-microbench's
	 * "epoch digest" rows */
	bool page_crc;
};
int tb_digest_init(struct tb_digest *d);
void tb_digest_page(struct tb_digest *d, uint64_t pfn, const void *page);
void tb_digest_state(struct tb_digest *d, uint32_t tag, uint32_t index,
		     const void *data, uint32_t len);
void tb_digest_disk_info(struct tb_digest *d, const struct tb_disk_info *i);
/* @data: the @len decoded bytes (NULL for a ZERO write). */
void tb_digest_disk_write(struct tb_digest *d, uint32_t disk, uint64_t offset,
			  const void *data, uint32_t len);
uint64_t tb_digest_final(struct tb_digest *d); /* resets for the next */
void tb_digest_free(struct tb_digest *d);

/* ---------------------------------------------------------------- encode */

/* Each appends one whole record to @out.  0, -ENOMEM or -EINVAL (a field
 * out of limits: a programmer error on the sending side).  @text of
 * tb_enc_error is truncated to TB_ERROR_TEXT_MAX bytes; control
 * characters other than tab are sent as '?'. */
int tb_enc_hello(struct tb_buf *out, const struct tb_hello *h);
int tb_enc_epoch_begin(struct tb_buf *out, const struct tb_epoch_begin *b);
int tb_enc_epoch_end(struct tb_buf *out, const struct tb_epoch_end *e);
int tb_enc_ack(struct tb_buf *out, const struct tb_ack *a);
int tb_enc_heartbeat(struct tb_buf *out, const struct tb_heartbeat *h);
int tb_enc_error(struct tb_buf *out, uint32_t code, const char *text);
int tb_enc_state(struct tb_buf *out, uint32_t type, uint32_t tag,
		 uint32_t index, const void *data, uint32_t len);
int tb_enc_disk_info(struct tb_buf *out, const struct tb_disk_info *i);
/* One DISK_WRITE of @len bytes at @offset: ZERO if @data is all zero (or
 * NULL), else LZ4 when it saves at least 1/16, else RAW.  @scratch: at
 * least TB_DISK_LZ4_MAX bytes. */
int tb_enc_disk_write(struct tb_buf *out, uint32_t disk, uint64_t offset,
		      const void *data, uint32_t len, void *scratch);
/* DISK_WRITE exactly as @w says (encoding and payload given). */
int tb_enc_disk_rec(struct tb_buf *out, const struct tb_disk_write *w);
/* Decode a DISK_WRITE's payload into @dst (w->len bytes): 0 or
 * -EUCLEAN (CODEC). */
int tb_disk_write_decode(const struct tb_disk_write *w, void *dst);

/*
 * PAGE_DATA is built in place: begin reserves the header for up to
 * @max_pages (<= TB_PAGES_PER_REC_MAX) pages, add appends one page's
 * descriptor and payload, finish writes the counts, pad and CRC.
 * Body layout: u32 nr_pages, u32 0, u64 pfn[nr], {u8 enc, u8 0, u16 0,
 * u32 len}[nr], payloads.  (Arrays are sized for max_pages while
 * building and compacted by finish.)  Zero-initialise the struct before
 * the first begin; it may be reused for any number of records (scratch
 * is kept) and is released with tb_enc_pages_free.  Nothing else may be
 * appended to @out between begin and finish.  finish with no pages
 * added emits nothing.  After an error of add the record is unchanged.
 */
struct tb_page_rec {
	struct tb_buf *out;
	size_t rec_off;
	uint32_t max_pages;
	uint32_t nr_pages;
	uint64_t *pfns;	       /* scratch, max_pages */
	uint8_t *descs;	       /* scratch, 8 x max_pages */
	struct tb_buf payload; /* scratch, reused */
};
int tb_enc_pages_begin(struct tb_page_rec *r, struct tb_buf *out,
		       uint32_t max_pages);
/* -ENOSPC when the record is full (pages or bytes): finish and begin anew */
int tb_enc_pages_add(struct tb_page_rec *r, uint64_t pfn, uint8_t enc,
		     const void *payload, uint32_t len);
int tb_enc_pages_finish(struct tb_page_rec *r);
void tb_enc_pages_free(struct tb_page_rec *r);

/* Parse descriptor @i of a decoded PAGE_DATA (already bounds-checked by
 * the decoder: sum of lengths == payload_len, enc <= TB_ENC_MAX, len
 * within the encoding's limits). */
static inline void tb_page_desc_get(const struct tb_page_data *p, uint32_t i,
				    struct tb_page_desc *d)
{
	d->enc = p->descs[8 * (size_t)i];
	d->len = tb_get_le32(p->descs + 8 * (size_t)i + 4);
}
static inline uint64_t tb_page_pfn_get(const struct tb_page_data *p, uint32_t i)
{
	return tb_get_le64(p->pfns_le + 8 * (size_t)i);
}

/* ---------------------------------------------------------------- decode */

/* Distinct error codes (also sent in ERROR and ACK.status). */
enum tb_stream_err {
	TB_SERR_NONE = 0,
	TB_SERR_TRUNCATED = 1,	  /* stream ended inside a record */
	TB_SERR_BAD_CRC = 2,	  /* trailer CRC mismatch or nonzero pad */
	TB_SERR_OVERSIZE = 3,	  /* a length exceeds its limit */
	TB_SERR_BAD_ORDER = 4,	  /* record not allowed in this state */
	TB_SERR_UNKNOWN_TYPE = 5, /* unknown mandatory type */
	TB_SERR_VERSION = 6,	  /* HELLO magic/version mismatch */
	TB_SERR_BAD_FIELD = 7,	  /* a field's value is invalid */
	TB_SERR_BAD_DIGEST = 8,	  /* EPOCH_END counts/digest mismatch */
	TB_SERR_CODEC = 9,	  /* a page payload does not decode */
	TB_SERR_MAX = 9,
};
/*
 * ERROR.code values that are not stream errors but session control
 * (docs/stream-format.md section 9.1):
 * - RECONNECTING (primary): it lost the backup but is alive and will
 *   reconnect; the backup must not take this as a dead primary.
 * - PROMOTED (backup, refusing a HELLO): this guest was failed over to
 *   the backup; the primary must stop its copy and never release the
 *   output it holds (self-fencing).
 * - BUSY (backup, refusing a HELLO): a failover of this guest is under
 *   way (fencing); the primary keeps its output held and retries.
 * - SWITCHOVER (primary): planned handover; the guest is stopped for
 *   good after the last acknowledged epoch; the backup starts it.
 */
#define TB_ERROR_RECONNECTING 64u
#define TB_ERROR_PROMOTED     65u
#define TB_ERROR_BUSY	      66u
#define TB_ERROR_SWITCHOVER   67u
#define TB_ERROR_DENIED	      68u /* this peer may not protect this guest */
const char *tb_stream_strerr(int code);
/* The -errno a function returns for each stream error. */
int tb_stream_errno(int code);

struct tb_dec {
	uint8_t *buf; /* pending bytes */
	size_t len, cap, off;
	uint64_t bytes_in; /* total fed */
	uint64_t records;  /* total returned */
	int err;	   /* enum tb_stream_err, sticky */
	char msg[160];	   /* human text of err */
};

void tb_dec_init(struct tb_dec *d);
void tb_dec_free(struct tb_dec *d);
/* Take @len more bytes.  0 or -ENOMEM (bytes after a sticky error are
 * dropped).  A decoded record's pointers are valid until the next call of
 * any tb_dec_* function on @d. */
int tb_dec_feed(struct tb_dec *d, const void *data, size_t len);
/*
 * Pointer/room to receive directly into (avoids a copy): make room for at
 * least @want bytes, receive into *@p, then tb_dec_commit(n).  When the
 * header of a partial record is pending, room covers its rest as well.
 * 0, -ENOMEM, or the sticky error's -errno.
 */
int tb_dec_space(struct tb_dec *d, size_t want, uint8_t **p, size_t *room);
void tb_dec_commit(struct tb_dec *d, size_t n);
/*
 * 1: a record is in *@rec (valid until the next call); 0: need more
 * bytes; <0: -errno, d->err and d->msg say what (sticky).  Unknown
 * optional records are skipped silently (counted in d->records).
 */
int tb_dec_next(struct tb_dec *d, struct tb_rec *rec);
/* Peer closed (call after tb_dec_next returned 0): -EPIPE with
 * TB_SERR_TRUNCATED if bytes of a partial record are pending, else 0. */
int tb_dec_eof(struct tb_dec *d);

/*
 * Session order rules (one direction).  Primary -> backup: HELLO, then
 * epochs: EPOCH_BEGIN, {PAGE_DATA, CPU_STATE, DEVICE_STATE}*, EPOCH_END;
 * HEARTBEAT and ERROR anywhere after HELLO (HEARTBEAT also inside an
 * epoch).  Backup -> primary: HELLO, then ACK, HEARTBEAT, ERROR.
 * ERROR is also allowed before HELLO (to report a rejected HELLO) and
 * ends the direction.  Epoch numbers strictly increase.
 */
enum tb_sess_state {
	TB_SESS_WANT_HELLO = 0,
	TB_SESS_IDLE = 1,     /* between epochs */
	TB_SESS_IN_EPOCH = 2, /* after EPOCH_BEGIN */
	TB_SESS_CLOSED = 3,   /* after ERROR or a violation: nothing more */
};
struct tb_sess {
	uint32_t dir_role; /* role of the SENDER of this direction */
	enum tb_sess_state state;
	uint64_t last_epoch; /* last EPOCH_BEGIN (primary) or ACK */
	bool have_epoch;
};
void tb_sess_init(struct tb_sess *s, enum tb_role sender);
/* 0 if @rec may come now (and advance the state), else
 * tb_stream_errno(code) (-EPROTO for TB_SERR_BAD_ORDER, -EPROTONOSUPPORT
 * for TB_SERR_VERSION: a HELLO of the wrong role) with the code and a
 * message set in @d unless it already has an error (d may be NULL).
 * A violation is sticky: the state becomes TB_SESS_CLOSED. */
int tb_sess_check(struct tb_sess *s, const struct tb_rec *rec,
		  struct tb_dec *d);

#endif
