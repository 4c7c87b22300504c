// SPDX-License-Identifier: MIT
/*
 * tiber-microbench: per-component costs on this machine.
 *
 *   memcpy       GB/s, the machine reference
 *   codec        encode/decode ns per 4 KiB page and ratio, per content
 *                kind and codec mode
 *
 * Every figure is measured over several runs and reported as median and
 * best (min time), so a noisy shared 2-core box still gives stable
 * numbers.  Results are checked (decoded pages compared bit-exact), so a
 * broken component fails the run instead of producing a fast figure.
 *
 * Usage: tiber-microbench [--quick] [--json FILE] [--accel N]
 */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "tiber/codec.h"
#include "tiber/common.h"

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

enum mb_kind { MB_ZERO, MB_TEXT, MB_RANDOM, MB_DELTA1, MB_DELTA5, MB_KINDS };
static const char *const mb_kind_name[MB_KINDS] = {
	"zero", "text", "random", "delta1%", "delta5%",
};

enum mb_mode { MB_RAW, MB_LZ4, MB_XOR, MB_XOR_PLAIN, MB_MODES };
static const char *const mb_mode_name[MB_MODES] = {
	"raw", "lz4", "xor", "xor+plain",
};
static const char *const mb_mode_help[MB_MODES] = {
	"compress off: ZERO or RAW",
	"compress on, no shadow: ZERO, LZ4 or RAW",
	"compress on, shadow (default): ZERO, XOR_LZ4 or RAW",
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
	if (c->len >= 16 * PS)
		return;
	/* fallback: words from a small vocabulary */
	c->source = "synthetic words";
	for (c->len = 0; c->len + 16 < want;) {
		static const char *const w[] = {
			"the ", "page ", "memory ", "is ", "copied ", "to ",
			"backup ", "epoch ", "struct ", "int ", "return ",
			"if (", "error", ");\n", "buffer ", "length ", "and ",
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
	       "pages ZERO/RAW/XOR/LZ4");
	printf("  %-8s %-10s %17s %17s\n", "", "", "median (best)",
	       "median (best)");

	for (k = 0; k < MB_KINDS; k++) {
		mb_make(k, &corpus, pages, shadows, n);
		for (m = 0; m < MB_MODES; m++) {
			struct tb_codec_opts o = {
				.compress = m != MB_RAW,
				.xor_delta = true,
				.accel = cfg->accel,
				.try_plain = m == MB_XOR_PLAIN,
			};
			bool use_shadow = m == MB_XOR || m == MB_XOR_PLAIN;
			struct tb_codec_stats cs;
			struct mb_stat se, sd;
			char ratio[16];
			double bpp;

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
				if (memcmp(back, pages, (size_t)n * PS)) {
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
			       "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "\n",
			       mb_kind_name[k], mb_mode_name[m], se.median,
			       se.min, sd.median, sd.min, ratio, bpp,
			       cs.pages[TB_ENC_ZERO], cs.pages[TB_ENC_RAW],
			       cs.pages[TB_ENC_XOR_LZ4], cs.pages[TB_ENC_LZ4]);
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
				"\"enc_lz4\": %" PRIu64 "}",
				mb_kind_name[k], mb_mode_name[m],
				o.compress ? "true" : "false",
				use_shadow ? "true" : "false", cfg->accel, n,
				se.median, se.min, sd.median, sd.min,
				cs.bytes_out ? ratio : "null", bpp,
				cs.pages[TB_ENC_ZERO], cs.pages[TB_ENC_RAW],
				cs.pages[TB_ENC_XOR_LZ4], cs.pages[TB_ENC_LZ4]);
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

/* ---------------------------------------------------------------- main */

static void mb_usage(FILE *f)
{
	fprintf(f,
		"usage: tiber-microbench [--quick] [--json FILE] [--accel N]\n"
		"  --quick      short runs (smaller buffers, 3 repetitions)\n"
		"  --json FILE  also write the results as JSON to FILE\n"
		"  --accel N    LZ4 acceleration for the codec rows (default 1)\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "accel", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mb_cfg cfg = { .accel = 1 };
	struct mb_json jm, jc;
	struct utsname un;
	uint64_t v;
	int c, rc = 0;
	FILE *f;

	while ((c = getopt_long(argc, argv, "qj:a:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			cfg.quick = true;
			break;
		case 'j':
			cfg.json_path = optarg;
			break;
		case 'a':
			if (tb_parse_u64(optarg, &v) || v < 1 || v > 65537) {
				fprintf(stderr, "bad --accel: %s\n", optarg);
				return 2;
			}
			cfg.accel = (int)v;
			break;
		case 'h':
			mb_usage(stdout);
			return 0;
		default:
			mb_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		mb_usage(stderr);
		return 2;
	}
	cfg.reps = cfg.quick ? 3 : 7;
	if (uname(&un))
		memset(&un, 0, sizeof(un));

	printf("tiber-microbench: %s, %u runs per figure, %s %s\n",
	       cfg.quick ? "quick" : "full", cfg.reps, un.sysname,
	       un.release);
	mb_json_open(&jm);
	mb_memcpy(&cfg, &jm);
	mb_json_close(&jm);
	mb_json_open(&jc);
	mb_codec(&cfg, &jc);
	mb_json_close(&jc);

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
			"\"runs\": %u, \"kernel\": \"%s\",\n"
			"  \"memcpy\": [%s\n  ],\n"
			"  \"codec\": [%s\n  ]\n}\n",
			cfg.quick ? "true" : "false", cfg.reps, un.release,
			jm.buf, jc.buf);
		if (fclose(f)) {
			fprintf(stderr, "tiber-microbench: %s: %s\n",
				cfg.json_path, strerror(errno));
			rc = 1;
		}
	}
out:
	free(jm.buf);
	free(jc.buf);
	return rc;
}
