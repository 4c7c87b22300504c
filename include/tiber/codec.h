/* SPDX-License-Identifier: MIT */
/*
 * Page codec: per 4 KiB page choose zero (no payload), XOR against the
 * previous copy the backup holds then either the runs of its non-zero
 * bytes (XOR_RLE, for a page that changed in a few places) or lz4,
 * plain lz4, or raw when compression does not pay.  Runs after the
 * guest is resumed, never in the pause.  Decoding is for hostile input:
 * a bad payload is an error, never an out-of-bounds write.
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

/*
 * XOR_RLE payload: runs over d = page XOR previous copy, each
 *   ZRUN   ULEB128, 1 or 2 bytes: zero bytes of d to skip
 *   NRUN   ULEB128, 1 or 2 bytes, >= 1: bytes of d that follow
 *   BYTES  NRUN bytes of d
 * in page order, then a last ZRUN that reaches the page's end exactly
 * (an unchanged page: that ZRUN alone, 4096); 1..TB_CODEC_LZ4_MAX
 * bytes.  So a payload cut anywhere does not decode.  The encoder
 * uses it when the runs fit in TB_CODEC_RLE_CAP bytes, else lz4: a
 * sparse delta costs a scan instead of a compressor, and its runs are
 * usually smaller than lz4's output as well.
 */
#define TB_CODEC_RLE_CAP 1024u

/*
 * XOR_MASK payload: the same delta d as masks and bytes,
 *   WMASK  64 bytes: bit k of byte c set if d's 8-byte word 8 c + k has
 *          a non-zero byte
 *   BMASK  one byte per WMASK bit set, in page order, never 0: bit j set
 *          if byte j of that word is in BYTES
 *   BYTES  one byte of d per BMASK bit set, in page order
 * exactly 64 + |WMASK| + |BMASK| bytes (| |: bits set), at most
 * TB_CODEC_LZ4_MAX.  The encoder uses it, within TB_CODEC_RLE_CAP,
 * where it is smaller than the runs could be (bytes scattered one or
 * two per word, where every byte would be a run of its own): packing
 * words with a byte shuffle costs no branch per byte.
 */

struct tb_codec_opts {
	bool compress;	/* false: only ZERO and RAW */
	bool xor_delta; /* use the shadow copy when there is one */
	bool rle;	/* XOR_RLE for sparse deltas (else XOR_LZ4 only) */
	bool mask;	/* XOR_MASK for scattered sparse deltas */
	int accel;	/* LZ4_compress_fast acceleration, >= 1 */
	/*
	 * When XOR_LZ4 does not pay, also try plain LZ4 before RAW.  Off by
	 * default: it only helps a page rewritten with new compressible
	 * content and doubles the cost of every incompressible page
	 * (tiber-microbench, "xor+plain" rows).
	 */
	bool try_plain;
};
#define TB_CODEC_OPTS_DEFAULT                                     \
	{                                                         \
		.compress = true, .xor_delta = true, .rle = true, \
		.mask = true, .accel = 1                          \
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
 * xor_delta: with mask, XOR_MASK if it fits in TB_CODEC_RLE_CAP bytes and
 * is smaller than the runs could be (or !rle); with rle, XOR_RLE if the
 * runs of the delta's non-zero bytes fit in TB_CODEC_RLE_CAP bytes (an
 * unchanged page: a 2-byte payload); else
 * XOR_LZ4 (page XOR shadow, lz4), else RAW (or LZ4 first with
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
 * @payload is hostile: at most @len bytes are read from it, and nothing
 * outside @page_out is written.  On an error a decode in place
 * (@page_out == @prev) leaves the page unchanged; any other @page_out
 * must be discarded (XOR_RLE may have written part of it).
 * Thread-safe.
 */
int tb_codec_decode(uint8_t enc, const void *payload, uint32_t len,
		    const void *prev, void *page_out);

/* Tests and tiber-microbench: @on, the portable C paths instead of the
 * vector ones (same bytes out); off, back to what the CPU offers.  Not
 * to be called while other threads encode or decode. */
void tb_codec_use_portable(bool on);

#endif
