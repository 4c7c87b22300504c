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
 * - The decoder reads at most @len bytes of the hostile payload.  LZ4
 *   payloads decode into a thread-local scratch page until they have
 *   decoded to exactly TB_PAGE_SIZE bytes, and only then touch
 *   @page_out; that also makes @page_out == @prev safe.
 * - XOR_RLE is decoded in one pass that checks each run (in the page,
 *   not empty, within @len, the last zero run ends the page) before it
 *   applies it; an error in place undoes the runs applied (XOR again),
 *   an error into another page leaves it partly written (the caller
 *   discards it, as the contract says).
 * - XOR_MASK is checked whole (mask counts against @len) before any
 *   byte of the page changes, so an error leaves @page_out untouched.
 *   Its vector and portable paths give the same bytes (test_codec runs
 *   both); they read and write 8 bytes past a run's end only inside
 *   @out (the payload is at most TB_CODEC_RLE_CAP) or a local copy.
 * - Scratch memory (and the lz4 stream state) is thread-local, so encode
 *   and decode can run in several threads at once.  Neither calls the
 *   other, so one scratch page per thread serves both.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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
/* the non-zero bytes of the XOR delta in scratch, a bit each */
static __thread uint64_t tb_codec_nz[TB_PAGE_SIZE / 64];

/* The lz4 state, reused: LZ4_compress_fast() clears its 16 KiB hash
 * table on every call, LZ4_resetStream_fast() only moves its window.
 * Each block stays independent (no dictionary): LZ4_decompress_safe()
 * decodes it alone. */
static __thread LZ4_stream_t tb_codec_lz4_state;
static __thread bool tb_codec_lz4_ready;

/* lz4 of an all-zero page: the XOR_LZ4 payload of an unchanged page. */
static uint8_t tb_codec_zero_lz4[64];
static int tb_codec_zero_lz4_len;
static pthread_once_t tb_codec_once = PTHREAD_ONCE_INIT;
static void tb_codec_pick_xor(void);

static void tb_mask_init(void);

static void tb_codec_init_once(void)
{
	tb_codec_pick_xor();
	tb_mask_init();
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

/*
 * dst = a XOR b; nz[c] bit k set if byte 64 c + k of the delta is not
 * zero.  true if any is (the page changed).
 */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static bool tb_codec_xor_avx2(uint64_t *dst,
							      uint64_t *nz,
							      const uint8_t *a,
							      const uint8_t *b)
{
	const __m256i zero = _mm256_setzero_si256();
	uint64_t any = 0;

	for (size_t c = 0; c < TB_PAGE_SIZE / 64; c++) {
		const __m256i *pa = (const __m256i *)(a + 64 * c);
		const __m256i *pb = (const __m256i *)(b + 64 * c);
		__m256i *pd = (__m256i *)(dst + 8 * c);
		__m256i x0 = _mm256_xor_si256(_mm256_loadu_si256(pa),
					      _mm256_loadu_si256(pb));
		__m256i x1 = _mm256_xor_si256(_mm256_loadu_si256(pa + 1),
					      _mm256_loadu_si256(pb + 1));
		uint32_t z0 = (uint32_t)_mm256_movemask_epi8(
			_mm256_cmpeq_epi8(x0, zero));
		uint32_t z1 = (uint32_t)_mm256_movemask_epi8(
			_mm256_cmpeq_epi8(x1, zero));

		_mm256_store_si256(pd, x0);
		_mm256_store_si256(pd + 1, x1);
		nz[c] = ~((uint64_t)z1 << 32 | z0);
		any |= nz[c];
	}
	return any != 0;
}

static bool tb_codec_xor_sse2(uint64_t *dst, uint64_t *nz, const uint8_t *a,
			      const uint8_t *b)
{
	const __m128i zero = _mm_setzero_si128();
	uint64_t any = 0;

	for (size_t c = 0; c < TB_PAGE_SIZE / 64; c++) {
		const __m128i *pa = (const __m128i *)(a + 64 * c);
		const __m128i *pb = (const __m128i *)(b + 64 * c);
		__m128i *pd = (__m128i *)(dst + 8 * c);
		uint64_t z = 0;

		for (size_t k = 0; k < 4; k++) {
			__m128i x = _mm_xor_si128(_mm_loadu_si128(pa + k),
						  _mm_loadu_si128(pb + k));

			_mm_store_si128(pd + k, x);
			z |= (uint64_t)(uint32_t)_mm_movemask_epi8(
				     _mm_cmpeq_epi8(x, zero))
			     << (16 * k);
		}
		nz[c] = ~z;
		any |= nz[c];
	}
	return any != 0;
}
#endif

static bool tb_codec_xor_c(uint64_t *dst, uint64_t *nz, const uint8_t *a,
			   const uint8_t *b)
{
	uint64_t any = 0, wa, wb;

	for (size_t c = 0; c < TB_PAGE_SIZE / 64; c++) {
		nz[c] = 0;
		for (size_t i = 0; i < 8; i++) {
			memcpy(&wa, a + 64 * c + 8 * i, 8);
			memcpy(&wb, b + 64 * c + 8 * i, 8);
			dst[8 * c + i] = wa ^ wb;
			for (unsigned k = 0; k < 8; k++)
				nz[c] |= (uint64_t)((dst[8 * c + i] >> 8 * k &
						     0xff) != 0)
					 << (8 * i + k);
		}
		any |= nz[c];
	}
	return any != 0;
}

typedef bool (*tb_codec_xor_fn)(uint64_t *, uint64_t *, const uint8_t *,
				const uint8_t *);
static tb_codec_xor_fn tb_codec_xor_impl = tb_codec_xor_c;
static bool tb_codec_pshufb; /* XOR_MASK: SSSE3 shuffles and POPCNT */

static void tb_codec_pick_xor(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	tb_codec_xor_impl = __builtin_cpu_supports("avx2") ? tb_codec_xor_avx2 :
							     tb_codec_xor_sse2;
	tb_codec_pshufb = __builtin_cpu_supports("ssse3") &&
			  __builtin_cpu_supports("popcnt");
#endif
}

void tb_codec_use_portable(bool on)
{
	pthread_once(&tb_codec_once, tb_codec_init_once);
	if (on) {
		tb_codec_xor_impl = tb_codec_xor_c;
		tb_codec_pshufb = false;
	} else {
		tb_codec_pick_xor();
	}
}

/* ------------------------------------------------------------ XOR_MASK */

/*
 * tb_mask_pack[m]: shuffle indices that gather the bytes of a word whose
 * bits are set in m to its low bytes (0x80: none); tb_mask_unpack[m]:
 * the reverse, the low bytes back to the set positions, zeros elsewhere.
 */
static uint64_t tb_mask_pack[256], tb_mask_unpack[256];

static void tb_mask_init(void)
{
	for (unsigned m = 0; m < 256; m++) {
		uint64_t pk = ~0ull & 0x8080808080808080ull, up = pk;
		unsigned o = 0;

		for (unsigned k = 0; k < 8; k++) {
			if (!(m >> k & 1))
				continue;
			pk = (pk & ~(0xffull << 8 * o)) | (uint64_t)k << 8 * o;
			up = (up & ~(0xffull << 8 * k)) | (uint64_t)o << 8 * k;
			o++;
		}
		tb_mask_pack[m] = pk;
		tb_mask_unpack[m] = up;
	}
}

#if defined(__x86_64__)
__attribute__((target("ssse3"))) static inline uint64_t tb_shuffle(uint64_t x,
								   uint64_t idx)
{
	return (uint64_t)_mm_cvtsi128_si64(
		_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)x),
				 _mm_cvtsi64_si128((long long)idx)));
}
#endif

/* The bytes of @x at the set bits of @m gathered low (@pack), or the low
 * bytes of @x spread to the set bits, zeros elsewhere; with @simd a byte
 * shuffle (the caller is compiled for SSSE3), else a loop. */
static inline __attribute__((always_inline)) uint64_t
tb_mask_move(uint64_t x, unsigned m, bool pack, bool simd)
{
	uint64_t r = 0;
	unsigned o = 0, k;

#if defined(__x86_64__)
	if (simd)
		return tb_shuffle(x,
				  pack ? tb_mask_pack[m] : tb_mask_unpack[m]);
#endif
	(void)simd;
	for (; m; m &= m - 1, o++) {
		k = (unsigned)__builtin_ctz(m);
		if (pack)
			r |= (x >> 8 * k & 0xff) << 8 * o;
		else
			r |= (x >> 8 * o & 0xff) << 8 * k;
	}
	return r;
}

/* Bit k: byte k of @t is not zero. */
static unsigned tb_mask_of_bytes(uint64_t t)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;
	uint64_t hb = (((t & lo7) + lo7) | t) & ~lo7;

	return (unsigned)((hb >> 7) * 0x0102040810204080ull >> 56);
}

static void tb_rle_gaps(const uint64_t *nz, uint64_t *gap);

/*
 * The XOR_MASK payload of the delta @d (@nz its non-zero bytes) into
 * @out if it fits in @cap bytes and, with @gap, is smaller than the runs
 * of XOR_RLE could be: its length, else UINT32_MAX.  @out has room for
 * @cap + 8 bytes (a packed word is stored whole).  With @gap, the gaps
 * of tb_rle_gaps() are left there for XOR_RLE (*@have_gap set) unless
 * the bytes alone are too many.
 *
 * A run costs at least its bytes and 2 header bytes; the masks cost 64
 * bytes, one per 8-byte word changed, and the bytes.  A run starts at a
 * non-zero byte after 3 zero bytes (or the page's start).
 */
static inline __attribute__((always_inline)) uint32_t
tb_mask_encode_body(const uint64_t *d, const uint64_t *nz, uint8_t *out,
		    uint32_t cap, uint64_t *gap, bool *have_gap, bool simd)
{
	enum {
		W = TB_PAGE_SIZE / 64
	};
	uint32_t w = 0, b = 0, runs = 0, o;
	uint64_t z0 = ~nz[0];
	/* bit i: bytes i - 3 .. i - 1 are zero (before the page: zeros) */
	uint64_t after = 1 | (z0 & 1) << 1 | (z0 & z0 >> 1 & 1) << 2;
	uint8_t *data;

	for (unsigned c = 0; c < W; c++)
		b += (uint32_t)__builtin_popcountll(nz[c]);
	if (64 + b > cap) /* a dense delta */
		return UINT32_MAX;
	if (gap) {
		tb_rle_gaps(nz, gap);
		*have_gap = true;
	}
	for (unsigned c = 0; c < W; c++) {
		out[c] = (uint8_t)tb_mask_of_bytes(nz[c]);
		w += (uint32_t)__builtin_popcount(out[c]);
		if (gap) {
			after = gap[c] << 3 | (c ? gap[c - 1] >> 61 : after);
			runs += (uint32_t)__builtin_popcountll(nz[c] & after);
		}
	}
	if (64 + w + b > cap || (gap && 64 + w >= 2 * runs + 1))
		return UINT32_MAX;
	/* the word masks: nz[c]'s non-zero bytes; then the delta's */
	o = 64;
	for (unsigned c = 0; c < W; c++) {
		uint64_t v = tb_mask_move(nz[c], out[c], true, simd);

		memcpy(out + o, &v, 8);
		o += (uint32_t)__builtin_popcount(out[c]);
	}
	data = out + o;
	o = 0;
	for (unsigned i = 0; i < TB_CODEC_WORDS; i++) {
		unsigned m = (unsigned)(nz[i / 8] >> 8 * (i % 8) & 0xff);
		uint64_t v = tb_mask_move(d[i], m, true, simd);

		memcpy(data + o, &v, 8);
		o += (uint32_t)__builtin_popcount(m);
	}
	return 64 + w + o;
}

/* XOR_MASK @p (@len bytes, hostile) onto @prev into @page_out: checked
 * whole first, so an error writes nothing. */
static inline __attribute__((always_inline)) int
tb_mask_decode_body(const uint8_t *p, uint32_t len, const uint8_t *prev,
		    uint8_t *page_out, bool simd)
{
	uint8_t m[TB_CODEC_WORDS];
	uint8_t q[TB_CODEC_LZ4_MAX + 8]; /* @p, with 8 bytes to read past */
	uint32_t w = 0, b = 0, i, k = 64, o = 0;
	uint64_t x, y;

	if (len < 64 || len > TB_CODEC_LZ4_MAX)
		return -EBADMSG;
	for (i = 0; i < 64; i++)
		w += (uint32_t)__builtin_popcount(p[i]);
	if (64 + w > len)
		return -EBADMSG;
	for (i = 0; i < w; i++) {
		if (!p[64 + i])
			return -EBADMSG; /* a word with no byte changed */
		b += (uint32_t)__builtin_popcount(p[64 + i]);
	}
	if (64 + w + b != len)
		return -EBADMSG;
	memcpy(q, p, len);
	memset(q + len, 0, 8);
	/* each word's byte mask: a chunk's BMASK bytes to its words */
	for (i = 0; i < 64; i++) {
		memcpy(&x, q + k, 8);
		x = tb_mask_move(x, q[i], false, simd);
		memcpy(m + (size_t)8 * i, &x, 8);
		k += (uint32_t)__builtin_popcount(q[i]);
	}
	for (i = 0, k = 64 + w; i < TB_CODEC_WORDS; i++) {
		memcpy(&x, q + k + o, 8);
		memcpy(&y, prev + (size_t)8 * i, 8);
		y ^= tb_mask_move(x, m[i], false, simd);
		memcpy(page_out + (size_t)8 * i, &y, 8);
		o += (uint32_t)__builtin_popcount(m[i]);
	}
	return 0;
}

#if defined(__x86_64__)
__attribute__((target("ssse3,popcnt"))) static uint32_t
tb_mask_encode_x86(const uint64_t *d, const uint64_t *nz, uint8_t *out,
		   uint32_t cap, uint64_t *gap, bool *have_gap)
{
	return tb_mask_encode_body(d, nz, out, cap, gap, have_gap, true);
}

__attribute__((target("ssse3,popcnt"))) static int
tb_mask_decode_x86(const uint8_t *p, uint32_t len, const uint8_t *prev,
		   uint8_t *page_out)
{
	return tb_mask_decode_body(p, len, prev, page_out, true);
}
#endif

static uint32_t tb_mask_encode(const uint64_t *d, const uint64_t *nz,
			       uint8_t *out, uint32_t cap, uint64_t *gap,
			       bool *have_gap)
{
#if defined(__x86_64__)
	if (tb_codec_pshufb)
		return tb_mask_encode_x86(d, nz, out, cap, gap, have_gap);
#endif
	return tb_mask_encode_body(d, nz, out, cap, gap, have_gap, false);
}

static int tb_mask_decode(const uint8_t *p, uint32_t len, const uint8_t *prev,
			  uint8_t *page_out)
{
#if defined(__x86_64__)
	if (tb_codec_pshufb)
		return tb_mask_decode_x86(p, len, prev, page_out);
#endif
	return tb_mask_decode_body(p, len, prev, page_out, false);
}

/* ------------------------------------------------------------ XOR_RLE */

static uint32_t tb_uleb_put(uint8_t *p, uint32_t v) /* v < 16384 */
{
	if (v < 0x80) {
		p[0] = (uint8_t)v;
		return 1;
	}
	p[0] = (uint8_t)(v | 0x80);
	p[1] = (uint8_t)(v >> 7);
	return 2;
}

/* The first set bit of @bits (@n words) at or after bit @i; @n * 64 if
 * none. */
static uint32_t tb_next_bit(const uint64_t *bits, uint32_t n, uint32_t i)
{
	uint32_t k = i / 64;
	uint64_t w;

	if (k >= n)
		return n * 64;
	w = bits[k] & (~0ull << (i % 64));
	while (!w) {
		if (++k == n)
			return n * 64;
		w = bits[k];
	}
	return 64 * k + (uint32_t)__builtin_ctzll(w);
}

/* The gaps of 3 zero bytes that end runs: bit i of gap[k] set if bytes
 * 64 k + i .. + 2 of the delta are zero (past the page counts as zero). */
static void tb_rle_gaps(const uint64_t *nz, uint64_t *gap)
{
	for (unsigned k = 0; k < TB_PAGE_SIZE / 64; k++) {
		uint64_t z = ~nz[k],
			 zn = k + 1 < TB_PAGE_SIZE / 64 ? ~nz[k + 1] : ~0ull;

		gap[k] = z & (z >> 1 | zn << 63) & (z >> 2 | zn << 62);
	}
}

/*
 * The runs of delta @d into @out, at most @cap bytes: payload length,
 * or UINT32_MAX if they do not fit.  @nz: the delta's non-zero bytes, a
 * bit each.  A run starts at a non-zero byte and ends before the next 3
 * zero bytes (a gap of 1 or 2 costs no more inside the run than a new
 * run's header), found with bit scans over @nz and over its gaps of 3
 * (@gap: tb_rle_gaps(), already there if @have_gap).
 */
static uint32_t tb_rle_encode(const uint8_t *d, const uint64_t *nz,
			      uint64_t *gap, bool have_gap, uint8_t *out,
			      uint32_t cap)
{
	enum {
		W = TB_PAGE_SIZE / 64
	};
	uint32_t o = 0, pos = 0, rs, re, n, bytes = 0;

	for (unsigned k = 0; k < W; k++)
		bytes += (uint32_t)__builtin_popcountll(nz[k]);
	if (bytes > cap) /* the runs carry at least these: a dense delta */
		return UINT32_MAX;
	if (!have_gap)
		tb_rle_gaps(nz, gap);
	for (rs = tb_next_bit(nz, W, 0); rs < TB_PAGE_SIZE;
	     rs = tb_next_bit(nz, W, re)) {
		re = tb_next_bit(gap, W, rs);
		n = re - rs;
		if (o + 4 + n + 16 > cap)
			return UINT32_MAX;
		o += tb_uleb_put(out + o, rs - pos);
		o += tb_uleb_put(out + o, n);
		if (n <= 16 && rs + 16 <= TB_PAGE_SIZE)
			memcpy(out + o, d + rs,
			       16); /* room: cap < the buffer */
		else
			memcpy(out + o, d + rs, n);
		o += n;
		pos = re;
	}
	return o + tb_uleb_put(out + o, TB_PAGE_SIZE - pos); /* to the end */
}

/* A ULEB128 of at most 2 bytes at @p[*off], below @len; -1 if none. */
static int tb_uleb_get(const uint8_t *p, uint32_t len, uint32_t *off)
{
	uint32_t v;

	if (*off >= len)
		return -1;
	v = p[(*off)++];
	if (!(v & 0x80))
		return (int)v;
	if (*off >= len || (p[*off] & 0x80))
		return -1;
	return (int)((v & 0x7f) | (uint32_t)p[(*off)++] << 7);
}

/* Apply the runs of @p up to offset @end (already checked). */
static void tb_rle_apply(const uint8_t *p, uint32_t end, uint8_t *page)
{
	uint32_t off = 0, pos = 0, n;

	while (off < end) {
		pos += (uint32_t)tb_uleb_get(p, end, &off);
		n = (uint32_t)tb_uleb_get(p, end, &off);

		for (uint32_t k = 0; k < n; k++)
			page[pos + k] ^= p[off + k];
		pos += n;
		off += n;
	}
}

/*
 * XOR_RLE @p (@len bytes, hostile) onto @prev into @page_out, in one
 * pass that checks each run before it applies it.  On an error in place
 * (@page_out == @prev) the runs applied are applied again: XOR undoes
 * itself, the page is as it was.
 */
static int tb_rle_decode(const uint8_t *p, uint32_t len, const uint8_t *prev,
			 uint8_t *page_out)
{
	uint32_t off = 0, pos = 0, done = 0; /* runs before @done applied */
	int z, n;

	if (len > TB_CODEC_LZ4_MAX)
		return -EBADMSG;
	if (page_out != prev)
		memcpy(page_out, prev, TB_PAGE_SIZE);
	for (;;) {
		z = tb_uleb_get(p, len, &off);
		if (z < 0 || (uint32_t)z > TB_PAGE_SIZE - pos)
			break;
		if (off == len) { /* the last zero run: to the page's end */
			if (pos + (uint32_t)z != TB_PAGE_SIZE)
				break;
			return 0;
		}
		n = tb_uleb_get(p, len, &off);
		if (n < 1 || (uint32_t)n > TB_PAGE_SIZE - pos - (uint32_t)z ||
		    (uint32_t)n > len - off)
			break;
		pos += (uint32_t)z;
		for (int k = 0; k < n; k++)
			page_out[pos + (uint32_t)k] ^= p[off + (uint32_t)k];
		pos += (uint32_t)n;
		off += (uint32_t)n;
		done = off;
	}
	if (page_out == prev)
		tb_rle_apply(p, done, page_out);
	return -EBADMSG;
}

/* lz4 @src into @out; payload length, or 0 if it does not pay. */
static uint32_t tb_codec_lz4(const void *src, void *out, int accel)
{
	int n;

	if (!tb_codec_lz4_ready) {
		LZ4_initStream(&tb_codec_lz4_state, sizeof(tb_codec_lz4_state));
		tb_codec_lz4_ready = true;
	} else {
		LZ4_resetStream_fast(&tb_codec_lz4_state);
	}
	n = LZ4_compress_fast_continue(&tb_codec_lz4_state, src, out,
				       TB_PAGE_SIZE, TB_CODEC_LZ4_MAX, accel);
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
		uint64_t gap[TB_PAGE_SIZE / 64]; /* XOR_RLE's gaps of 3 */
		bool changed, have_gap = false;

		pthread_once(&tb_codec_once, tb_codec_init_once);
		changed = tb_codec_xor_impl(tb_codec_scratch, tb_codec_nz, page,
					    shadow);
		/* a dense delta stops at TB_CODEC_RLE_CAP bytes of either;
		 * bytes scattered one or two per word pay less as masks */
		if (opts->mask) {
			n = tb_mask_encode(tb_codec_scratch, tb_codec_nz, out,
					   TB_CODEC_RLE_CAP,
					   opts->rle ? gap : NULL, &have_gap);
			if (n != UINT32_MAX) {
				e = TB_ENC_XOR_MASK;
				goto done;
			}
		}
		if (opts->rle) {
			n = tb_rle_encode((const uint8_t *)tb_codec_scratch,
					  tb_codec_nz, gap, have_gap, out,
					  TB_CODEC_RLE_CAP);
			if (n != UINT32_MAX) {
				e = TB_ENC_XOR_RLE;
				goto done;
			}
		}
		if (!changed) {
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
	case TB_ENC_XOR_RLE:
		if (prev)
			rc = tb_rle_decode(payload, len, prev, page_out);
		break;
	case TB_ENC_XOR_MASK:
		if (prev) {
			pthread_once(&tb_codec_once, tb_codec_init_once);
			rc = tb_mask_decode(payload, len, prev, page_out);
		}
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
