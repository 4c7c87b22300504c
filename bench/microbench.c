// SPDX-License-Identifier: MIT
/*
 * tiber-microbench: per-component costs on this machine.
 *
 *   memcpy       GB/s, the machine reference
 *   codec        encode/decode ns per 4 KiB page and ratio, per content
 *                kind and codec mode
 *   crc32c       tb_crc32c GB/s at record-like sizes
 *   digest       the epoch digest, ns per page: XXH3 over the page's
 *                bytes, or over its CRC32C (TB_FEAT_PAGE_CRC)
 *   transport    tb_conn send throughput, loopback TCP and a unix
 *                socketpair, SEND vs SEND_ZC, into a plain recv() sink
 *                and into tb_conn_recv_rec (decoder + CRC check)
 *
 * Every figure is measured over several runs and reported as median and
 * best (min time), so a noisy shared 2-core box still gives stable
 * numbers.  Results are checked (decoded pages compared bit-exact), so a
 * broken component fails the run instead of producing a fast figure.
 *
 * Usage: tiber-microbench [--quick] [--json FILE] [--accel N]
 */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "tiber/codec.h"
#include "tiber/common.h"
#include "tiber/config.h"
#include "tiber/stream.h"
#include "tiber/transport.h"

#define PS TB_PAGE_SIZE

struct mb_cfg {
	bool quick;
	int accel;
	const char *json_path;
	unsigned reps;
};

/* JSON is collected per section and written at the end. */
struct mb_json {
	char *buf;
	size_t len;
	FILE *f;
	bool first;
};

static void mb_json_open(struct mb_json *j)
{
	j->buf = NULL;
	j->len = 0;
	j->first = true;
	j->f = open_memstream(&j->buf, &j->len);
	if (!j->f) {
		perror("open_memstream");
		exit(1);
	}
}

/* Start one object of a section's array. */
static FILE *mb_json_item(struct mb_json *j)
{
	fputs(j->first ? "\n    " : ",\n    ", j->f);
	j->first = false;
	return j->f;
}

static void mb_json_close(struct mb_json *j)
{
	fclose(j->f);
}

/* ---------------------------------------------------------------- timing */

struct mb_stat {
	double median;
	double min;
};

static int mb_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct mb_stat mb_stat_of(double *v, unsigned n)
{
	struct mb_stat s;

	qsort(v, n, sizeof(*v), mb_cmp_double);
	s.min = v[0];
	s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

/* Keep the compiler from dropping work whose result is unused. */
static void mb_clobber(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void *mb_alloc(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, n)) {
		fprintf(stderr, "tiber-microbench: out of memory (%zu bytes)\n",
			n);
		exit(1);
	}
	memset(p, 0x11, n); /* fault it in before any timing */
	return p;
}

/* ---------------------------------------------------------------- memcpy */

static void mb_memcpy(const struct mb_cfg *cfg, struct mb_json *j)
{
	size_t sizes[] = { 256u << 10, 64u << 20 };
	unsigned s, r, i, iters;
	double *t = calloc(cfg->reps, sizeof(double));

	printf("\nmemcpy (4 KiB copies through a buffer; GB/s median / best)\n");
	for (s = 0; s < TB_ARRAY_SIZE(sizes); s++) {
		size_t n = cfg->quick ? TB_MIN(sizes[s], (size_t)16 << 20) :
					sizes[s];
		uint8_t *src = mb_alloc(n), *dst = mb_alloc(n);
		struct mb_stat st;
		size_t total;

		/* about 256 MiB (quick: 64 MiB) per run */
		iters = (unsigned)TB_MAX((size_t)1,
					 ((cfg->quick ? 64u : 256u) << 20) / n);
		total = (size_t)iters * n;
		for (r = 0; r < cfg->reps; r++) {
			int64_t t0 = tb_now_ns();

			for (i = 0; i < iters; i++) {
				size_t off;

				for (off = 0; off < n; off += PS)
					memcpy(dst + off, src + off, PS);
				mb_clobber(dst);
			}
			t[r] = (double)(tb_now_ns() - t0);
		}
		st = mb_stat_of(t, cfg->reps);
		printf("  %5zu KiB buffer %6.2f / %6.2f GB/s\n", n >> 10,
		       (double)total / st.median, (double)total / st.min);
		fprintf(mb_json_item(j),
			"{\"buffer_bytes\": %zu, \"gbps_median\": %.3f, "
			"\"gbps_best\": %.3f}",
			n, (double)total / st.median, (double)total / st.min);
		free(src);
		free(dst);
	}
	free(t);
}

/* ---------------------------------------------------------------- codec */

enum mb_kind {
	MB_ZERO,
	MB_TEXT,
	MB_RANDOM,
	MB_DELTA1,
	MB_DELTA5,
	MB_KINDS
};
static const char *const mb_kind_name[MB_KINDS] = {
	"zero", "text", "random", "delta1%", "delta5%",
};

enum mb_mode {
	MB_RAW,
	MB_LZ4,
	MB_XOR_LZ4,
	MB_XOR_RLE,
	MB_XOR,
	MB_XOR_C,
	MB_XOR_PLAIN,
	MB_MODES
};
static const char *const mb_mode_name[MB_MODES] = {
	"raw", "lz4", "xor-lz4", "xor-rle", "xor", "xor-c", "xor+plain",
};
static const char *const mb_mode_help[MB_MODES] = {
	"compress off: ZERO or RAW",
	"compress on, no shadow: ZERO, LZ4 or RAW",
	"compress on, shadow, no runs or masks: ZERO, XOR_LZ4 or RAW",
	"compress on, shadow, no masks: ZERO, XOR_RLE, XOR_LZ4 or RAW",
	"compress on, shadow (default): ZERO, XOR_MASK, XOR_RLE, XOR_LZ4 or RAW",
	"as xor, the portable C paths (no SIMD): what another CPU runs",
	"as xor, plus plain LZ4 when XOR_LZ4 does not pay (try_plain)",
};

/* Real text when the machine has some: C headers and license texts. */
struct mb_corpus {
	uint8_t *data;
	size_t len;
	const char *source;
};

static void mb_corpus_load(struct mb_corpus *c, size_t want)
{
	static const char *const pats[] = { "/usr/share/common-licenses/*",
					    "/usr/include/*.h" };
	unsigned p;
	size_t i;

	c->data = malloc(want);
	c->len = 0;
	c->source = "/usr/share/common-licenses + /usr/include/*.h";
	for (p = 0; p < TB_ARRAY_SIZE(pats) && c->len < want; p++) {
		glob_t g;

		if (glob(pats[p], 0, NULL, &g))
			continue;
		for (i = 0; i < g.gl_pathc && c->len < want; i++) {
			FILE *f = fopen(g.gl_pathv[i], "rb");

			if (!f)
				continue;
			c->len += fread(c->data + c->len, 1, want - c->len, f);
			fclose(f);
		}
		globfree(&g);
	}
	if (c->len >= (size_t)16 * PS)
		return;
	/* fallback: words from a small vocabulary */
	c->source = "synthetic words";
	for (c->len = 0; c->len + 16 < want;) {
		static const char *const w[] = {
			"the ",	   "page ",   "memory ", "is ",	    "copied ",
			"to ",	   "backup ", "epoch ",	 "struct ", "int ",
			"return ", "if (",    "error",	 ");\n",    "buffer ",
			"length ", "and ",
		};
		const char *s = w[(unsigned)rand() % TB_ARRAY_SIZE(w)];
		size_t n = strlen(s);

		memcpy(c->data + c->len, s, n);
		c->len += n;
	}
}

static void mb_text_page(const struct mb_corpus *c, uint8_t *p)
{
	size_t off = (size_t)rand() % (c->len - PS);

	memcpy(p, c->data + off, PS);
}

static void mb_random_page(uint8_t *p)
{
	size_t i;

	for (i = 0; i < PS; i += 4) {
		uint32_t v = (uint32_t)rand() ^ ((uint32_t)rand() << 16);

		memcpy(p + i, &v, 4);
	}
}

/* @pages pages of @k and their shadows (the backup's previous copy). */
static void mb_make(enum mb_kind k, const struct mb_corpus *c, uint8_t *pages,
		    uint8_t *shadows, unsigned n)
{
	unsigned i, j, pct;

	for (i = 0; i < n; i++) {
		uint8_t *p = pages + (size_t)i * PS;
		uint8_t *s = shadows + (size_t)i * PS;

		switch (k) {
		case MB_ZERO: /* a page that was freed and zeroed */
			memset(p, 0, PS);
			mb_text_page(c, s);
			break;
		case MB_TEXT: /* rewritten with new text */
			mb_text_page(c, p);
			mb_text_page(c, s);
			break;
		case MB_RANDOM:
			mb_random_page(p);
			mb_random_page(s);
			break;
		case MB_DELTA1:
		case MB_DELTA5:
		case MB_KINDS:
			/* scattered single bytes of a text page changed */
			pct = k == MB_DELTA1 ? 1 : 5;
			mb_text_page(c, s);
			memcpy(p, s, PS);
			for (j = 0; j < PS * pct / 100; j++)
				p[(unsigned)rand() % PS] ^=
					(uint8_t)(1 + (unsigned)rand() % 255);
			break;
		}
	}
}

static void mb_codec(const struct mb_cfg *cfg, struct mb_json *j)
{
	unsigned n = cfg->quick ? 512 : 2048, k, m, r, i;
	uint8_t *pages = mb_alloc((size_t)n * PS);
	uint8_t *shadows = mb_alloc((size_t)n * PS);
	uint8_t *out = mb_alloc((size_t)n * TB_CODEC_OUT_MAX);
	uint8_t *back = mb_alloc((size_t)n * PS);
	uint8_t *enc = malloc(n);
	uint32_t *len = malloc(n * sizeof(*len));
	double *te = calloc(cfg->reps, sizeof(double));
	double *td = calloc(cfg->reps, sizeof(double));
	struct mb_corpus corpus;

	srand(1);
	mb_corpus_load(&corpus, 4u << 20);
	printf("\ncodec (%u pages per run, %u runs, accel %d; text from %s)\n",
	       n, cfg->reps, cfg->accel, corpus.source);
	for (m = 0; m < MB_MODES; m++)
		printf("  %-10s %s\n", mb_mode_name[m], mb_mode_help[m]);
	printf("  %-8s %-10s %17s %17s %8s %9s  %s\n", "kind", "mode",
	       "encode ns/page", "decode ns/page", "ratio", "B/page",
	       "pages ZERO/RAW/XOR_LZ4/LZ4/XOR_RLE/XOR_MASK");
	printf("  %-8s %-10s %17s %17s\n", "", "", "median (best)",
	       "median (best)");

	for (k = 0; k < MB_KINDS; k++) {
		mb_make(k, &corpus, pages, shadows, n);
		for (m = 0; m < MB_MODES; m++) {
			struct tb_codec_opts o = {
				.compress = m != MB_RAW,
				.xor_delta = true,
				.rle = m != MB_XOR_LZ4,
				.mask = m != MB_XOR_LZ4 && m != MB_XOR_RLE,
				.accel = cfg->accel,
				.try_plain = m == MB_XOR_PLAIN,
			};
			bool use_shadow = m >= MB_XOR_LZ4;
			struct tb_codec_stats cs = { 0 };
			struct mb_stat se, sd;
			char ratio[16];
			double bpp;

			tb_codec_use_portable(m == MB_XOR_C);
			for (r = 0; r < cfg->reps; r++) {
				int64_t t0;

				memset(&cs, 0, sizeof(cs));
				t0 = tb_now_ns();
				for (i = 0; i < n; i++) {
					size_t off = (size_t)i * PS;

					tb_codec_encode(&o, pages + off,
							use_shadow ?
								shadows + off :
								NULL,
							out + off, &enc[i],
							&len[i], &cs);
				}
				te[r] = (double)(tb_now_ns() - t0) / n;

				t0 = tb_now_ns();
				for (i = 0; i < n; i++) {
					size_t off = (size_t)i * PS;

					if (tb_codec_decode(enc[i], out + off,
							    len[i],
							    shadows + off,
							    back + off)) {
						fprintf(stderr,
							"codec: decode failed kind=%s mode=%s page=%u\n",
							mb_kind_name[k],
							mb_mode_name[m], i);
						exit(1);
					}
				}
				td[r] = (double)(tb_now_ns() - t0) / n;
				if (memcmp(back, pages, (size_t)n * PS) != 0) {
					fprintf(stderr,
						"codec: round trip differs kind=%s mode=%s\n",
						mb_kind_name[k],
						mb_mode_name[m]);
					exit(1);
				}
			}
			se = mb_stat_of(te, cfg->reps);
			sd = mb_stat_of(td, cfg->reps);
			bpp = (double)cs.bytes_out / n;
			if (cs.bytes_out)
				snprintf(ratio, sizeof(ratio), "%.2f",
					 (double)cs.bytes_in /
						 (double)cs.bytes_out);
			else
				snprintf(ratio, sizeof(ratio), "inf");
			printf("  %-8s %-10s %8.0f (%6.0f) %8.0f (%6.0f) %8s %9.0f  %" PRIu64
			       "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
			       "/%" PRIu64 "\n",
			       mb_kind_name[k], mb_mode_name[m], se.median,
			       se.min, sd.median, sd.min, ratio, bpp,
			       cs.pages[TB_ENC_ZERO], cs.pages[TB_ENC_RAW],
			       cs.pages[TB_ENC_XOR_LZ4], cs.pages[TB_ENC_LZ4],
			       cs.pages[TB_ENC_XOR_RLE],
			       cs.pages[TB_ENC_XOR_MASK]);
			fprintf(mb_json_item(j),
				"{\"kind\": \"%s\", \"mode\": \"%s\", "
				"\"compress\": %s, \"shadow\": %s, "
				"\"accel\": %d, \"pages\": %u, "
				"\"encode_ns_median\": %.1f, "
				"\"encode_ns_best\": %.1f, "
				"\"decode_ns_median\": %.1f, "
				"\"decode_ns_best\": %.1f, "
				"\"ratio\": %s, \"bytes_out_per_page\": %.1f, "
				"\"enc_zero\": %" PRIu64 ", "
				"\"enc_raw\": %" PRIu64 ", "
				"\"enc_xor_lz4\": %" PRIu64 ", "
				"\"enc_lz4\": %" PRIu64 ", "
				"\"enc_xor_rle\": %" PRIu64 ", "
				"\"enc_xor_mask\": %" PRIu64 "}",
				mb_kind_name[k], mb_mode_name[m],
				o.compress ? "true" : "false",
				use_shadow ? "true" : "false", cfg->accel, n,
				se.median, se.min, sd.median, sd.min,
				cs.bytes_out ? ratio : "null", bpp,
				cs.pages[TB_ENC_ZERO], cs.pages[TB_ENC_RAW],
				cs.pages[TB_ENC_XOR_LZ4], cs.pages[TB_ENC_LZ4],
				cs.pages[TB_ENC_XOR_RLE],
				cs.pages[TB_ENC_XOR_MASK]);
			tb_codec_use_portable(false);
		}
	}
	free(corpus.data);
	free(te);
	free(td);
	free(len);
	free(enc);
	free(back);
	free(out);
	free(shadows);
	free(pages);
}

/* ---------------------------------------------------------------- crc32c */

static void mb_crc(const struct mb_cfg *cfg, struct mb_json *j)
{
	static const size_t sizes[] = { 4096, 64u << 10, 16u << 20 };
	static const struct {
		const char *name;
		uint32_t (*fn)(uint32_t crc, const void *data, size_t len);
	} impls[] = {
		{ "tb_crc32c", tb_crc32c },
		{ "sw", tb_crc32c_sw },
	};
	size_t total = (size_t)(cfg->quick ? 64 : 256) << 20;
	double *t = calloc(cfg->reps, sizeof(double));
	uint8_t *buf = mb_alloc(sizes[TB_ARRAY_SIZE(sizes) - 1]);
	volatile uint32_t sink = 0;
	unsigned s, r, m;
	size_t i, n, iters;

	for (m = 0; m < TB_ARRAY_SIZE(impls); m++) {
		if (impls[m].fn(0, "123456789", 9) != 0xE3069283u) {
			fprintf(stderr, "crc32c %s: wrong check value %08x\n",
				impls[m].name, impls[m].fn(0, "123456789", 9));
			exit(1);
		}
	}
	for (i = 0; i < sizes[TB_ARRAY_SIZE(sizes) - 1]; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 9));
	printf("\ncrc32c (one buffer again and again; GB/s median / best; "
	       "hw crc32 instruction %s)\n",
	       tb_crc32c_hw_available() ? "available" : "not available");
	for (m = 0; m < TB_ARRAY_SIZE(impls); m++)
		for (s = 0; s < TB_ARRAY_SIZE(sizes); s++) {
			struct mb_stat st;

			n = sizes[s];
			/* the table version is ~10x slower: a tenth of the bytes */
			iters = total / n / (m ? 8 : 1);
			if (!iters)
				iters = 1;
			for (r = 0; r < cfg->reps; r++) {
				int64_t t0 = tb_now_ns();
				uint32_t crc = 0;

				for (i = 0; i < iters; i++)
					crc = impls[m].fn(crc, buf, n);
				sink = crc;
				t[r] = (double)(tb_now_ns() - t0);
			}
			st = mb_stat_of(t, cfg->reps);
			printf("  %-10s %8zu B buffer %6.2f / %6.2f GB/s\n",
			       impls[m].name, n,
			       (double)(iters * n) / st.median,
			       (double)(iters * n) / st.min);
			fprintf(mb_json_item(j),
				"{\"impl\": \"%s\", \"hw_available\": %s, "
				"\"buffer_bytes\": %zu, \"gbps_median\": %.3f, "
				"\"gbps_best\": %.3f}",
				impls[m].name,
				tb_crc32c_hw_available() ? "true" : "false", n,
				(double)(iters * n) / st.median,
				(double)(iters * n) / st.min);
		}
	(void)sink;
	free(buf);
	free(t);
}

/* ---------------------------------------------------------------- digest */

static void mb_digest(const struct mb_cfg *cfg, struct mb_json *j)
{
	const size_t npages =
		4096; /* 16 MiB: past the caches, as in an epoch */
	double *t = calloc(cfg->reps, sizeof(double));
	uint8_t *buf = mb_alloc(npages * TB_PAGE_SIZE);
	struct tb_digest dg;
	unsigned r, m, rounds = cfg->quick ? 4 : 16;
	size_t i, k;

	if (tb_digest_init(&dg)) {
		fprintf(stderr, "digest: out of memory\n");
		exit(1);
	}
	for (i = 0; i < npages * TB_PAGE_SIZE; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 9));
	printf("\nepoch digest (ns per 4 KiB page, median / best; %zu pages)\n",
	       npages);
	for (m = 0; m < 2; m++) {
		struct mb_stat st;

		dg.page_crc = m;
		for (r = 0; r < cfg->reps; r++) {
			int64_t t0 = tb_now_ns();

			for (k = 0; k < rounds; k++)
				for (i = 0; i < npages; i++)
					tb_digest_page(&dg, i,
						       buf + i * TB_PAGE_SIZE);
			tb_digest_final(&dg);
			t[r] = (double)(tb_now_ns() - t0) /
			       (double)(rounds * npages);
		}
		st = mb_stat_of(t, cfg->reps);
		printf("  %-22s %7.0f / %7.0f ns\n",
		       m ? "xxh3(pfn, crc32c)" : "xxh3(pfn, bytes)", st.median,
		       st.min);
		fprintf(mb_json_item(j),
			"{\"form\": \"%s\", \"ns_per_page_median\": %.1f, "
			"\"ns_per_page_best\": %.1f}",
			m ? "page_crc" : "bytes", st.median, st.min);
	}
	tb_digest_free(&dg);
	free(buf);
	free(t);
}

/* ---------------------------------------------------------------- transport */

#define MB_NET_CHUNK	  (64u << 10)
#define MB_NET_PAGES	  16u /* pages per PAGE_DATA record in "rec" mode */
#define MB_NET_TIMEOUT_NS (60 * TB_NSEC_PER_SEC)

struct mb_rx {
	int fd;		      /* raw sink: recv() here */
	struct tb_conn *conn; /* record sink: tb_conn_recv_rec here */
	uint64_t want;	      /* bytes (raw) or records (rec) */
	uint64_t got;
	int rc;
	pthread_t thr;
};

static void *mb_rx_raw(void *arg)
{
	struct mb_rx *rx = arg;
	size_t cap = 256u << 10;
	uint8_t *buf = malloc(cap);
	ssize_t n;

	rx->rc = buf ? 0 : -ENOMEM;
	while (!rx->rc && rx->got < rx->want) {
		n = recv(rx->fd, buf, TB_MIN(cap, rx->want - rx->got), 0);
		if (n > 0)
			rx->got += (uint64_t)n;
		else if (n == 0)
			rx->rc = -EPIPE;
		else if (errno != EINTR)
			rx->rc = -errno;
	}
	free(buf);
	return NULL;
}

static void *mb_rx_rec(void *arg)
{
	struct mb_rx *rx = arg;
	struct tb_rec rec;
	int rc = 0;

	while (rx->got < rx->want) {
		rc = tb_conn_recv_rec(rx->conn, &rec,
				      tb_now_ns() + MB_NET_TIMEOUT_NS);
		if (rc != 1)
			break;
		if (rec.type != TB_REC_PAGE_DATA ||
		    rec.u.pages.nr_pages != MB_NET_PAGES) {
			rc = -EBADMSG;
			break;
		}
		rx->got++;
		rc = 0;
	}
	rx->rc = rc == 0 ? 0 : (rc < 0 ? rc : -EPIPE);
	return NULL;
}

/* The syscall baseline: blocking send() until all of @buf is gone. */
static int mb_send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One PAGE_DATA record of MB_NET_PAGES raw pages, ~64 KiB. */
static int mb_net_record(struct tb_buf *out)
{
	struct tb_page_rec pr = { 0 };
	uint8_t *page = mb_alloc(PS);
	unsigned i;
	int rc;

	rc = tb_enc_pages_begin(&pr, out, MB_NET_PAGES);
	if (rc)
		goto out;
	for (i = 0; i < MB_NET_PAGES && !rc; i++) {
		memset(page, (int)i + 1, PS);
		rc = tb_enc_pages_add(&pr, i, TB_ENC_RAW, page, PS);
	}
	if (!rc)
		rc = tb_enc_pages_finish(&pr);
	tb_enc_pages_free(&pr);
out:
	free(page);
	return rc;
}

/* A connected pair: *tx is a tb_conn, the sink is *rx_conn or *rx_fd. */
static int mb_net_pair(bool tcp, const struct tb_conn_opts *o,
		       struct tb_conn **tx, struct tb_conn **rx_conn)
{
	struct tb_listener *l = NULL;
	int64_t dl = tb_now_ns() + 10 * TB_NSEC_PER_SEC;
	int sv[2], rc;

	*tx = *rx_conn = NULL;
	if (!tcp) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			return -errno;
		rc = tb_conn_from_fd(tx, sv[0], o);
		if (rc) {
			close(sv[1]);
			return rc;
		}
		rc = tb_conn_from_fd(rx_conn, sv[1], NULL);
		goto out;
	}
	rc = tb_listener_open(&l, "127.0.0.1:0");
	if (rc)
		return rc;
	rc = tb_conn_connect(tx, tb_listener_addr(l), o, dl);
	if (!rc)
		rc = tb_listener_accept(l, rx_conn, NULL, dl);
	tb_listener_close(l);
out:
	if (rc) {
		if (*tx)
			tb_conn_close(*tx);
		*tx = NULL;
	}
	return rc;
}

static void mb_net(const struct mb_cfg *cfg, struct mb_json *j)
{
	static const char *const sink_name[2] = { "raw", "rec" };
	static const char *const zc_name[3] = { "SEND", "SEND_ZC", "send()" };
	uint64_t total = (uint64_t)(cfg->quick ? 128 : 1024) << 20;
	unsigned reps = TB_MIN(cfg->reps, 5u), r, tcp, zc, sink;
	double *t = calloc(reps, sizeof(double));
	uint8_t *chunk = mb_alloc(MB_NET_CHUNK);
	struct tb_buf rec = { 0 };
	int rc;

	rc = mb_net_record(&rec);
	if (rc) {
		fprintf(stderr, "transport: building a PAGE_DATA record: %s\n",
			strerror(-rc));
		exit(1);
	}
	printf("\ntransport (%" PRIu64
	       " MiB per run, %u runs; sender tb_conn_send, receiver thread;\n"
	       "  sink raw: recv() into 256 KiB, 64 KiB sends;\n"
	       "  sink rec: tb_conn_recv_rec, PAGE_DATA records of %u pages = %zu B)\n",
	       total >> 20, reps, MB_NET_PAGES, rec.len);
	printf("  %-6s %-8s %-4s %16s %9s %9s\n", "link", "send", "sink",
	       "GB/s med (best)", "zc sends", "zc copied");

	/* zc: 0 SEND, 1 SEND_ZC, 2 plain send() on the same socket (the
	 * syscall baseline, raw sink only) */
	for (tcp = 0; tcp < 2; tcp++)
		for (zc = 0; zc < 3; zc++)
			for (sink = 0; sink < (zc == 2 ? 1u : 2u); sink++) {
				struct tb_conn_opts o = { .zerocopy = zc == 1 };
				const char *mode = zc_name[zc];
				const char *link = tcp ? "tcp" : "unix";
				struct tb_conn *tx, *rxc;
				struct tb_conn_stats cs;
				const void *buf =
					sink ? (const void *)rec.data : chunk;
				size_t len = sink ? rec.len : MB_NET_CHUNK;
				uint64_t nsend = total / len;
				struct mb_stat st;
				bool zc_ok;
				uint64_t i;

				rc = mb_net_pair(tcp, &o, &tx, &rxc);
				if (rc) {
					printf("  %-6s %-8s %-4s  setup failed: %s\n",
					       link, mode, sink_name[sink],
					       strerror(-rc));
					continue;
				}
				zc_ok = tb_conn_zc_supported(tx);
				for (r = 0; r < reps && !rc; r++) {
					struct mb_rx rx = {
						.fd = tb_conn_fd(rxc),
						.conn = rxc,
						.want = sink ? nsend :
							       nsend * len,
					};
					int64_t t0 = tb_now_ns();

					if (pthread_create(&rx.thr, NULL,
							   sink ? mb_rx_rec :
								  mb_rx_raw,
							   &rx)) {
						rc = -EAGAIN;
						break;
					}
					for (i = 0; i < nsend && !rc; i++) {
						if (zc == 2)
							rc = mb_send_all(
								tb_conn_fd(tx),
								buf, len);
						else
							rc = tb_conn_send(
								tx, buf, len,
								tb_now_ns() +
									MB_NET_TIMEOUT_NS);
					}
					if (rc)
						tb_conn_shutdown(rxc);
					pthread_join(rx.thr, NULL);
					t[r] = (double)(tb_now_ns() - t0);
					if (!rc)
						rc = rx.rc;
				}
				tb_conn_get_stats(tx, &cs);
				tb_conn_close(tx);
				tb_conn_close(rxc);
				if (rc) {
					printf("  %-6s %-8s %-4s  failed: %s\n",
					       link, mode, sink_name[sink],
					       strerror(-rc));
					continue;
				}
				st = mb_stat_of(t, reps);
				printf("  %-6s %-8s %-4s %6.2f (%6.2f) %9" PRIu64
				       " %9" PRIu64 "%s\n",
				       link, mode, sink_name[sink],
				       (double)(nsend * len) / st.median,
				       (double)(nsend * len) / st.min,
				       cs.zc_sends, cs.zc_copied,
				       zc == 1 && !zc_ok ?
					       "  (SEND_ZC unsupported: sent with SEND)" :
					       "");
				fprintf(mb_json_item(j),
					"{\"link\": \"%s\", \"send\": \"%s\", "
					"\"zc_supported\": %s, \"sink\": \"%s\", "
					"\"send_bytes\": %zu, \"bytes_per_run\": %" PRIu64
					", "
					"\"gbps_median\": %.3f, \"gbps_best\": %.3f, "
					"\"zc_sends\": %" PRIu64
					", \"zc_copied\": %" PRIu64
					", \"sends\": %" PRIu64 "}",
					link, mode, zc_ok ? "true" : "false",
					sink_name[sink], len, nsend * len,
					(double)(nsend * len) / st.median,
					(double)(nsend * len) / st.min,
					cs.zc_sends, cs.zc_copied, cs.sends);
			}
	tb_buf_free(&rec);
	free(chunk);
	free(t);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct mb_cfg cfg = { .accel = 1 };
	struct mb_json jd, jm, jc, jr, jn;
	struct utsname un;
	struct tb_opts o;
	double load;
	int rc = 0;
	FILE *f;
	const struct tb_opt table[] = {
		{ .key = "quick",
		  .type = TB_OPT_BOOL,
		  .dst = &cfg.quick,
		  .arg = "",
		  .help = "short runs (smaller buffers, 3 repetitions)",
		  .short_flag = 'q' },
		{ .key = "json",
		  .type = TB_OPT_STR,
		  .dst = &cfg.json_path,
		  .arg = "FILE",
		  .help = "also write the results as JSON to FILE",
		  .short_flag = 'j' },
		{ .key = "accel",
		  .type = TB_OPT_INT,
		  .dst = &cfg.accel,
		  .help = "LZ4 acceleration for the codec rows (default 1)",
		  .short_flag = 'a',
		  .min = 1,
		  .max = 65537 },
	};

	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_cli(
		&o, argc, argv,
		"usage: tiber-microbench [--quick] [--json FILE] [--accel N]\n"
		"Micro-benchmarks of tiber's building blocks: memcpy, the codec,\n"
		"crc32c, the epoch digest, the transport.  Flags (or KEY = VALUE lines of a\n"
		"--config file):\n");
	if (rc) {
		if (rc < 0)
			fprintf(stderr, "tiber-microbench: %s\n", o.err);
		tb_opts_free(&o);
		return rc < 0 ? 2 : 0;
	}
	cfg.reps = cfg.quick ? 3 : 7;
	if (uname(&un))
		memset(&un, 0, sizeof(un));
	/* the box is shared: say how busy it was */
	f = fopen("/proc/loadavg", "r");
	if (!f || fscanf(f, "%lf", &load) != 1)
		load = -1;
	if (f)
		fclose(f);

	printf("tiber-microbench: %s, %u runs per figure, %s %s, %ld cpus, load %.2f\n",
	       cfg.quick ? "quick" : "full", cfg.reps, un.sysname, un.release,
	       sysconf(_SC_NPROCESSORS_ONLN), load);
	mb_json_open(&jm);
	mb_memcpy(&cfg, &jm);
	mb_json_close(&jm);
	mb_json_open(&jc);
	mb_codec(&cfg, &jc);
	mb_json_close(&jc);
	mb_json_open(&jr);
	mb_crc(&cfg, &jr);
	mb_json_close(&jr);
	mb_json_open(&jd);
	mb_digest(&cfg, &jd);
	mb_json_close(&jd);
	mb_json_open(&jn);
	mb_net(&cfg, &jn);
	mb_json_close(&jn);

	if (cfg.json_path) {
		f = fopen(cfg.json_path, "w");
		if (!f) {
			fprintf(stderr, "tiber-microbench: %s: %s\n",
				cfg.json_path, strerror(errno));
			rc = 1;
			goto out;
		}
		fprintf(f,
			"{\n  \"tool\": \"tiber-microbench\", \"quick\": %s, "
			"\"runs\": %u, \"kernel\": \"%s\", \"cpus\": %ld, "
			"\"loadavg_1m_at_start\": %.2f,\n"
			"  \"memcpy\": [%s\n  ],\n"
			"  \"codec\": [%s\n  ],\n"
			"  \"crc32c\": [%s\n  ],\n"
			"  \"digest\": [%s\n  ],\n"
			"  \"transport\": [%s\n  ]\n}\n",
			cfg.quick ? "true" : "false", cfg.reps, un.release,
			sysconf(_SC_NPROCESSORS_ONLN), load, jm.buf, jc.buf,
			jr.buf, jd.buf, jn.buf);
		if (fclose(f)) {
			fprintf(stderr, "tiber-microbench: %s: %s\n",
				cfg.json_path, strerror(errno));
			rc = 1;
		}
	}
out:
	free(jm.buf);
	free(jc.buf);
	free(jr.buf);
	free(jd.buf);
	free(jn.buf);
	tb_opts_free(&o);
	return rc;
}
