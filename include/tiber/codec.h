/* SPDX-License-Identifier: MIT */
/*
 * Page codec: per 4 KiB page choose zero (no payload), XOR against the
 * previous copy the backup holds then lz4, plain lz4, or raw when
 * compression does not pay.  Runs after the guest is resumed, never in
 * the pause.  Decoding is for hostile input: a bad payload is an error,
 * never an out-of-bounds write.
 */
#ifndef TIBER_CODEC_H
#define TIBER_CODEC_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "tiber/stream.h"

/* Largest payload tb_codec_encode produces (raw page). */
#define TB_CODEC_OUT_MAX TB_PAGE_SIZE

/*
 * Compression must save at least TB_CODEC_MIN_GAIN bytes, else the page
 * goes RAW: an LZ4 or XOR_LZ4 payload is 1..TB_CODEC_LZ4_MAX bytes, and
 * the decoder rejects any other length for those encodings.
 */
#define TB_CODEC_MIN_GAIN 64u
#define TB_CODEC_LZ4_MAX  (TB_PAGE_SIZE - TB_CODEC_MIN_GAIN)

struct tb_codec_opts {
	bool compress;	/* false: only ZERO and RAW */
	bool xor_delta; /* use the shadow copy when there is one */
	int accel;	/* LZ4_compress_fast acceleration, >= 1 */
	/*
	 * When XOR_LZ4 does not pay, also try plain LZ4 before RAW.  Off by
	 * default: it only helps a page rewritten with new compressible
	 * content and doubles the cost of every incompressible page
	 * (tiber-microbench, "xor+plain" rows).
	 */
	bool try_plain;
};
#define TB_CODEC_OPTS_DEFAULT                                   \
	{                                                       \
		.compress = true, .xor_delta = true, .accel = 1 \
	}

struct tb_codec_stats {
	uint64_t pages[TB_ENC_MAX + 1];
	uint64_t bytes_in;
	uint64_t bytes_out;
};

/* true if the 4096-byte page is all zero. */
bool tb_page_is_zero(const void *page);

/*
 * Encode @page.  @shadow is the backup's current copy of the same pfn
 * (NULL: none known).  Writes at most TB_CODEC_OUT_MAX bytes to @out and
 * sets *@enc and *@len.  Never fails for valid arguments (returns 0);
 * -EINVAL for a bad @opts.  @stats may be NULL.
 *
 * Choice: an all-zero page is ZERO.  With compress, a @shadow and
 * xor_delta: XOR_LZ4 (page XOR shadow, lz4), else RAW (or LZ4 first with
 * try_plain).  With compress and no shadow (or !xor_delta): LZ4 or RAW.
 * Thread-safe: scratch buffers are thread-local; @out must not overlap
 * @page or @shadow.
 */
int tb_codec_encode(const struct tb_codec_opts *opts, const void *page,
		    const void *shadow, void *out, uint8_t *enc, uint32_t *len,
		    struct tb_codec_stats *stats);

/*
 * Decode one page into @page_out (4096 bytes).  @prev is the receiver's
 * copy of this pfn before the epoch (needed by XOR_LZ4; may be NULL for
 * other encodings).  @page_out must not alias @payload; it may alias
 * @prev.  0, or -EBADMSG (payload does not decode to exactly one page,
 * bad length for its encoding, unknown encoding, XOR without @prev).
 * @payload is hostile: at most @len bytes are read from it, and on any
 * error @page_out is left unchanged.  Thread-safe.
 */
int tb_codec_decode(uint8_t enc, const void *payload, uint32_t len,
		    const void *prev, void *page_out);

#endif
