// SPDX-License-Identifier: MIT
/*
 * CRC32C (Castagnoli), the record checksum of the stream
 * (docs/stream-format.md, section 2): a portable slicing-by-8 version and,
 * on x86-64 with SSE4.2, the crc32 instruction over three interleaved
 * streams.  tb_crc32c picks the fastest at run time.
 *
 * Invariants: both paths give the same value for any data, length,
 * alignment and seed (tests/unit/test_stream.c checks them against each
 * other); the tables are built once (pthread_once) before first use, so
 * every entry point is thread-safe.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "tiber/stream.h"

#define CRC32C_POLY 0x82F63B78u	   /* reflected Castagnoli */
#define CRC_LONG    ((size_t)8192) /* hw: three interleaved streams of this */
#define CRC_SHORT   ((size_t)256)  /* ... and of this for the tail */

static uint32_t crc_table[8][256];	 /* slicing-by-8 */
static uint32_t crc_long_shift[4][256];	 /* x^(8*CRC_LONG) mod P */
static uint32_t crc_short_shift[4][256]; /* x^(8*CRC_SHORT) mod P */
static bool crc_have_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* a * b mod P over GF(2), reflected (bit 31 is x^0). */
static uint32_t crc_multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	while (m) {
		if (a & m)
			p ^= b;
		m >>= 1;
		b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
	}
	return p;
}

/* x^(8 * n) mod P, reflected. */
static uint32_t crc_x8n(size_t n)
{
	uint32_t r = 1u << 31, sq = 1u << 30; /* x^0, x^1 */
	size_t bits = n * 8;

	while (bits) {
		if (bits & 1)
			r = crc_multmodp(sq, r);
		sq = crc_multmodp(sq, sq);
		bits >>= 1;
	}
	return r;
}

/* Table to multiply a raw CRC register by @op, a byte at a time. */
static void crc_shift_table(uint32_t t[4][256], uint32_t op)
{
	unsigned k, n;

	for (k = 0; k < 4; k++)
		for (n = 0; n < 256; n++)
			t[k][n] = crc_multmodp(op, (uint32_t)n << (8 * k));
}

static inline uint32_t crc_shift(const uint32_t t[4][256], uint32_t crc)
{
	return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^
	       t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

static void crc_init(void)
{
	unsigned n, k;

	for (n = 0; n < 256; n++) {
		uint32_t c = n;

		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][n] = c;
	}
	for (n = 0; n < 256; n++)
		for (k = 1; k < 8; k++)
			crc_table[k][n] =
				(crc_table[k - 1][n] >> 8) ^
				crc_table[0][crc_table[k - 1][n] & 0xff];
	crc_shift_table(crc_long_shift, crc_x8n(CRC_LONG));
	crc_shift_table(crc_short_shift, crc_x8n(CRC_SHORT));
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static inline void crc_ready(void)
{
	pthread_once(&crc_once, crc_init);
}

uint32_t tb_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	crc_ready();
	crc = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w = tb_get_le64(p) ^ crc;

		crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
		      crc_table[5][(w >> 16) & 0xff] ^
		      crc_table[4][(w >> 24) & 0xff] ^
		      crc_table[3][(w >> 32) & 0xff] ^
		      crc_table[2][(w >> 40) & 0xff] ^
		      crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
/*
 * Three independent crc32 streams over adjacent blocks hide the
 * instruction's 3-cycle latency; the partial CRCs are combined with the
 * shift tables (crc(A B) = shift_|B|(crc(A)) ^ crc(B), raw registers).
 */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c0 = ~crc, c1, c2, w0, w1, w2;
	const uint8_t *end;

	while (len && ((uintptr_t)p & 7)) {
		c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
		len--;
	}
	while (len >= 3 * CRC_LONG) {
		c1 = c2 = 0;
		end = p + CRC_LONG;
		do {
			memcpy(&w0, p, 8);
			memcpy(&w1, p + CRC_LONG, 8);
			memcpy(&w2, p + 2 * CRC_LONG, 8);
			c0 = __builtin_ia32_crc32di(c0, le64toh(w0));
			c1 = __builtin_ia32_crc32di(c1, le64toh(w1));
			c2 = __builtin_ia32_crc32di(c2, le64toh(w2));
			p += 8;
		} while (p < end);
		c0 = crc_shift(crc_long_shift, (uint32_t)c0) ^ c1;
		c0 = crc_shift(crc_long_shift, (uint32_t)c0) ^ c2;
		p += 2 * CRC_LONG;
		len -= 3 * CRC_LONG;
	}
	while (len >= 3 * CRC_SHORT) {
		c1 = c2 = 0;
		end = p + CRC_SHORT;
		do {
			memcpy(&w0, p, 8);
			memcpy(&w1, p + CRC_SHORT, 8);
			memcpy(&w2, p + 2 * CRC_SHORT, 8);
			c0 = __builtin_ia32_crc32di(c0, le64toh(w0));
			c1 = __builtin_ia32_crc32di(c1, le64toh(w1));
			c2 = __builtin_ia32_crc32di(c2, le64toh(w2));
			p += 8;
		} while (p < end);
		c0 = crc_shift(crc_short_shift, (uint32_t)c0) ^ c1;
		c0 = crc_shift(crc_short_shift, (uint32_t)c0) ^ c2;
		p += 2 * CRC_SHORT;
		len -= 3 * CRC_SHORT;
	}
	while (len >= 8) {
		memcpy(&w0, p, 8);
		c0 = __builtin_ia32_crc32di(c0, le64toh(w0));
		p += 8;
		len -= 8;
	}
	while (len--)
		c0 = __builtin_ia32_crc32qi((uint32_t)c0, *p++);
	return ~(uint32_t)c0;
}
#endif

bool tb_crc32c_hw_available(void)
{
	crc_ready();
	return crc_have_hw;
}

uint32_t tb_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	crc_ready();
#if defined(__x86_64__)
	if (crc_have_hw)
		return crc32c_sse42(crc, data, len);
#endif
	return tb_crc32c_sw(crc, data, len);
}

uint32_t tb_crc32c(uint32_t crc, const void *data, size_t len)
{
	crc_ready();
#if defined(__x86_64__)
	if (crc_have_hw)
		return crc32c_sse42(crc, data, len);
#endif
	return tb_crc32c_sw(crc, data, len);
}
