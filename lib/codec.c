// SPDX-License-Identifier: MIT
/*
 * Page codec (see include/tiber/codec.h for the contract).
 *
 * Invariants:
 * - The encoder never writes more than TB_CODEC_OUT_MAX bytes to @out: lz4
 *   compresses straight into @out with a capacity of TB_CODEC_LZ4_MAX, so
 *   "does not fit" (lz4 returns 0) and "does not pay" are the same test,
 *   and lz4 gives up early on incompressible input.
 * - XOR_LZ4 is tried alone (not also plain LZ4) unless opts->try_plain:
 *   a page that changed a little compresses 10-40x as a delta, and a
 *   page rewritten with fresh content rarely compresses much better than
 *   RAW; trying both doubles the cost of every random page.
 * - The decoder reads at most @len bytes of the hostile payload, writes
 *   only into a thread-local scratch page until the payload has decoded
 *   to exactly TB_PAGE_SIZE bytes, and only then touches @page_out.
 *   That also makes @page_out == @prev safe.
 * - Scratch memory is thread-local, so encode and decode can run in
 *   several threads at once.  Neither calls the other, so one scratch
 *   page per thread serves both.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <lz4.h>

#include "tiber/codec.h"
#include "tiber/common.h"

#define TB_CODEC_WORDS (TB_PAGE_SIZE / 8)

_Static_assert(TB_PAGE_SIZE % 64 == 0, "page is whole 64-byte chunks");
_Static_assert(TB_CODEC_LZ4_MAX < TB_PAGE_SIZE, "lz4 must pay");

static const uint8_t tb_codec_zero_page[TB_PAGE_SIZE]
	__attribute__((aligned(64)));

static __thread uint64_t tb_codec_scratch[TB_CODEC_WORDS]
	__attribute__((aligned(64)));

/* lz4 of an all-zero page: the XOR_LZ4 payload of an unchanged page. */
static uint8_t tb_codec_zero_lz4[64];
static int tb_codec_zero_lz4_len;
static pthread_once_t tb_codec_once = PTHREAD_ONCE_INIT;

static void tb_codec_init_once(void)
{
	/* 4096 zeros compress to ~20 bytes; 0 here would mean a broken lz4,
	 * and then unchanged pages just take the normal path. */
	tb_codec_zero_lz4_len = LZ4_compress_default(
		(const char *)tb_codec_zero_page, (char *)tb_codec_zero_lz4,
		TB_PAGE_SIZE, (int)sizeof(tb_codec_zero_lz4));
}

bool tb_page_is_zero(const void *page)
{
	/* glibc's vectorised memcmp against a page that stays in L1 beats
	 * an OR-of-words loop: 47 vs 129 ns in cache, equal from DRAM; it
	 * stops at the first difference like the loop would. */
	return memcmp(page, tb_codec_zero_page, TB_PAGE_SIZE) == 0;
}

/* dst = a XOR b; true if the result is all zero. */
static bool tb_codec_xor(uint64_t *dst, const void *a, const void *b)
{
	const uint8_t *pa = a, *pb = b;
	uint64_t acc = 0, wa, wb;
	size_t i;

	for (i = 0; i < TB_CODEC_WORDS; i++) {
		memcpy(&wa, pa + 8 * i, 8);
		memcpy(&wb, pb + 8 * i, 8);
		dst[i] = wa ^ wb;
		acc |= dst[i];
	}
	return acc == 0;
}

/* lz4 @src into @out; payload length, or 0 if it does not pay. */
static uint32_t tb_codec_lz4(const void *src, void *out, int accel)
{
	int n = LZ4_compress_fast(src, out, TB_PAGE_SIZE, TB_CODEC_LZ4_MAX,
				  accel);

	return n > 0 ? (uint32_t)n : 0;
}

int tb_codec_encode(const struct tb_codec_opts *opts, const void *page,
		    const void *shadow, void *out, uint8_t *enc, uint32_t *len,
		    struct tb_codec_stats *stats)
{
	uint8_t e = TB_ENC_RAW;
	uint32_t n = 0;

	if (!opts || !page || !out || !enc || !len)
		return -EINVAL;
	if (opts->compress && opts->accel < 1)
		return -EINVAL;

	if (tb_page_is_zero(page)) {
		e = TB_ENC_ZERO;
		goto done;
	}
	if (!opts->compress)
		goto raw;

	if (shadow && opts->xor_delta) {
		if (tb_codec_xor(tb_codec_scratch, page, shadow)) {
			pthread_once(&tb_codec_once, tb_codec_init_once);
			if (tb_codec_zero_lz4_len > 0) {
				n = (uint32_t)tb_codec_zero_lz4_len;
				memcpy(out, tb_codec_zero_lz4, n);
				e = TB_ENC_XOR_LZ4;
				goto done;
			}
		}
		n = tb_codec_lz4(tb_codec_scratch, out, opts->accel);
		if (n) {
			e = TB_ENC_XOR_LZ4;
			goto done;
		}
		if (!opts->try_plain)
			goto raw;
	}
	n = tb_codec_lz4(page, out, opts->accel);
	if (n) {
		e = TB_ENC_LZ4;
		goto done;
	}
raw:
	memcpy(out, page, TB_PAGE_SIZE);
	e = TB_ENC_RAW;
	n = TB_PAGE_SIZE;
done:
	*enc = e;
	*len = n;
	if (stats) {
		stats->pages[e]++;
		stats->bytes_in += TB_PAGE_SIZE;
		stats->bytes_out += n;
	}
	return 0;
}

/* lz4-decode @payload into the scratch page; 0 or -EBADMSG. */
static int tb_codec_unlz4(const void *payload, uint32_t len)
{
	int n;

	if (len == 0 || len > TB_CODEC_LZ4_MAX)
		return -EBADMSG;
	n = LZ4_decompress_safe(payload, (char *)tb_codec_scratch, (int)len,
				TB_PAGE_SIZE);
	return n == (int)TB_PAGE_SIZE ? 0 : -EBADMSG;
}

int tb_codec_decode(uint8_t enc, const void *payload, uint32_t len,
		    const void *prev, void *page_out)
{
	uint8_t *po = page_out;
	const uint8_t *pp = prev;
	uint64_t w;
	size_t i;
	int rc = -EBADMSG;

	if (!page_out || (len && !payload))
		return -EINVAL;

	switch (enc) {
	case TB_ENC_ZERO:
		if (len != 0)
			break;
		memset(page_out, 0, TB_PAGE_SIZE);
		rc = 0;
		break;
	case TB_ENC_RAW:
		if (len != TB_PAGE_SIZE)
			break;
		memcpy(page_out, payload, TB_PAGE_SIZE);
		rc = 0;
		break;
	case TB_ENC_LZ4:
		rc = tb_codec_unlz4(payload, len);
		if (rc)
			break;
		memcpy(page_out, tb_codec_scratch, TB_PAGE_SIZE);
		break;
	case TB_ENC_XOR_LZ4:
		if (!prev)
			break;
		rc = tb_codec_unlz4(payload, len);
		if (rc)
			break;
		/* Word by word, read before write: page_out may be prev. */
		for (i = 0; i < TB_CODEC_WORDS; i++) {
			memcpy(&w, pp + 8 * i, 8);
			w ^= tb_codec_scratch[i];
			memcpy(po + 8 * i, &w, 8);
		}
		break;
	default:
		break;
	}
	return rc;
}
