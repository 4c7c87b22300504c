// SPDX-License-Identifier: MIT
/*
 * tiber-fuzz-stream: the stream decoder's mutation campaign, standalone
 * (the unit test runs the same campaign with 100,000 streams).
 *
 *   tiber-fuzz-stream [-n COUNT] [-s SEED] [-i FIRST] [-q]
 *       generate COUNT valid streams and one mutant of each, check both
 *       with the oracle of tests/fuzz/stream_mutator.h; on a violation
 *       write the stream to stream-fail-SEED-I.bin (in libFuzzer input
 *       format) and exit 1.  Stream i depends only on (SEED, i): -i I
 *       -n 1 replays it.
 *   tiber-fuzz-stream -c DIR [-n COUNT] [-s SEED]
 *       write COUNT valid streams as a libFuzzer seed corpus into DIR.
 *   tiber-fuzz-stream -r FILE...
 *       check libFuzzer-format inputs (crash reproducers).
 * (Long forms too: --count, --seed, --first, --corpus, --quiet, --replay;
 * tiber-fuzz-stream --help.)
 *
 * libFuzzer input format (tests/fuzz/fuzz_stream.c): byte 0 bit 0 is the
 * sender's role (0 primary, 1 backup), bytes 1..8 seed the chunking, the
 * rest is the stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stream_mutator.h"
#include "tiber/config.h"

static int write_input(const char *path, enum tb_role role, uint64_t seed,
		       const uint8_t *p, size_t len)
{
	uint8_t hdr[9];
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	hdr[0] = role == TB_ROLE_BACKUP;
	tb_put_le64(hdr + 1, seed);
	ok = fwrite(hdr, 1, sizeof(hdr), f) == sizeof(hdr) &&
	     (!len || fwrite(p, 1, len, f) == len);
	if (fclose(f) || !ok) {
		fprintf(stderr, "%s: write failed\n", path);
		return -1;
	}
	return 0;
}

static int write_corpus(const char *dir, uint64_t seed, uint64_t count)
{
	struct tb_page_rec pr = { 0 };
	struct tb_buf b = { 0 };
	char path[4096];
	uint64_t i;
	int rc = 0;

	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (i = 0; i < count && !rc; i++) {
		struct sm_rng r = { seed + i };
		enum tb_role role = (i & 3) == 3 ? TB_ROLE_BACKUP :
						   TB_ROLE_PRIMARY;

		tb_buf_reset(&b);
		if (sm_gen_stream(&r, role, &b, &pr)) {
			fprintf(stderr, "generator failed\n");
			rc = 1;
			break;
		}
		snprintf(path, sizeof(path), "%s/seed-%04" PRIu64, dir, i);
		rc = write_input(path, role, seed + i, b.data, b.len) ? 1 : 0;
	}
	tb_buf_free(&b);
	tb_enc_pages_free(&pr);
	if (!rc)
		printf("tiber-fuzz-stream: wrote %" PRIu64 " seeds to %s\n",
		       count, dir);
	return rc;
}

static int replay(struct sm_ctx *c, int argc, char **argv)
{
	int i, bad = 0;

	for (i = 0; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		struct tb_buf b = { 0 };
		uint8_t tmp[65536];
		size_t n;

		if (!f) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
			tb_buf_append(&b, tmp, n);
		fclose(f);
		if (b.len >= 9) {
			struct sm_rng r = { tb_get_le64(b.data + 1) };

			if (sm_check(c, b.data + 9, b.len - 9,
				     (b.data[0] & 1) ? TB_ROLE_BACKUP :
						       TB_ROLE_PRIMARY,
				     &r, 1)) {
				printf("%s: FAIL: %s\n", argv[i], c->fail);
				bad = 1;
			} else {
				printf("%s: ok\n", argv[i]);
			}
		}
		tb_buf_free(&b);
	}
	return bad;
}

int main(int argc, char **argv)
{
	uint64_t count = 100000, seed = 1, first = 0, chunk, done;
	const char *corpus = NULL;
	struct sm_ctx c = { 0 };
	struct tb_buf bad = { 0 };
	bool quiet = false, do_replay = false;
	int64_t t0, t_last;
	struct tb_opts o;
	char **files;
	int rc = 0, k, nfiles;
	const struct tb_opt table[] = {
		{ .key = "count",
		  .type = TB_OPT_U64,
		  .dst = &count,
		  .help = "streams to generate (default 100000; corpus: at most 64 once over 1000)",
		  .short_flag = 'n' },
		{ .key = "seed",
		  .type = TB_OPT_U64,
		  .dst = &seed,
		  .help = "campaign seed (default 1)",
		  .short_flag = 's' },
		{ .key = "first",
		  .type = TB_OPT_U64,
		  .dst = &first,
		  .help = "index of the first stream (-s S -i I -n 1 replays one)",
		  .short_flag = 'i' },
		{ .key = "corpus",
		  .type = TB_OPT_STR,
		  .dst = &corpus,
		  .arg = "DIR",
		  .help = "write valid streams as a libFuzzer seed corpus into DIR",
		  .short_flag = 'c' },
		{ .key = "quiet",
		  .type = TB_OPT_BOOL,
		  .dst = &quiet,
		  .arg = "",
		  .help = "no progress lines",
		  .short_flag = 'q' },
		{ .key = "replay",
		  .type = TB_OPT_BOOL,
		  .dst = &do_replay,
		  .arg = "",
		  .help = "check the libFuzzer-format FILEs given as arguments",
		  .short_flag = 'r' },
	};

	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_cli_rest(
		&o, argc, argv,
		"usage: tiber-fuzz-stream [-n COUNT] [-s SEED] [-i FIRST] [-q]\n"
		"       tiber-fuzz-stream -c DIR [-n COUNT] [-s SEED]\n"
		"       tiber-fuzz-stream -r FILE...\n"
		"Flags (or KEY = VALUE lines of a --config file):\n",
		&files, &nfiles);
	if (!rc && nfiles && !do_replay) {
		snprintf(o.err, sizeof(o.err),
			 "unexpected argument '%.200s' (FILEs need -r)",
			 files[0]);
		rc = -EINVAL;
	}
	if (rc) {
		if (rc < 0)
			fprintf(stderr, "tiber-fuzz-stream: %s\n", o.err);
		tb_opts_free(&o);
		return rc < 0 ? 2 : 0;
	}
	if (do_replay) {
		rc = replay(&c, nfiles, files);
		sm_ctx_free(&c);
		tb_opts_free(&o);
		return rc;
	}
	if (corpus) {
		rc = write_corpus(corpus, seed, count > 1000 ? 64 : count);
		tb_opts_free(&o);
		return rc;
	}

	t0 = t_last = tb_now_ns();
	for (done = 0; done < count; done += chunk) {
		chunk = TB_MIN(count - done, (uint64_t)10000);
		if (sm_campaign(&c, seed, first + done, chunk, &bad)) {
			char path[64];
			uint64_t at = c.index;

			snprintf(path, sizeof(path),
				 "stream-fail-%" PRIu64 "-%" PRIu64 ".bin",
				 seed, at);
			fprintf(stderr, "tiber-fuzz-stream: FAIL: %s\n",
				c.fail);
			/* -r FILE checks it with another chunking; -s/-i
			 * replay the exact case */
			if (!write_input(path, c.role, 0, bad.data, bad.len))
				fprintf(stderr,
					"tiber-fuzz-stream: stream in %s "
					"(replay: -s %" PRIu64 " -i %" PRIu64
					" -n 1)\n",
					path, seed, at);
			rc = 1;
			break;
		}
		if (!quiet && tb_now_ns() - t_last > 5 * TB_NSEC_PER_SEC) {
			t_last = tb_now_ns();
			printf("tiber-fuzz-stream: %" PRIu64 " mutants ...\n",
			       done + chunk);
			fflush(stdout);
		}
	}
	{
		double secs = (double)(tb_now_ns() - t0) / 1e9;
		const struct sm_stats *m = &c.st[1], *v = &c.st[0];

		printf("tiber-fuzz-stream: seed %" PRIu64 ": %" PRIu64
		       " valid streams (%" PRIu64 " records) and %" PRIu64
		       " mutants (%.1f MB) in %.1f s (%.0f mutants/s)\n",
		       seed, v->streams, v->records, m->streams,
		       (double)m->bytes / 1e6, secs,
		       secs > 0 ? (double)m->streams / secs : 0.0);
		printf("tiber-fuzz-stream: mutant outcomes: decoded cleanly %" PRIu64,
		       m->clean);
		for (k = 1; k <= TB_SERR_MAX; k++)
			if (m->outcome[k])
				printf(", %s %" PRIu64, tb_stream_strerr(k),
				       m->outcome[k]);
		printf("\n");
	}
	if (!rc)
		printf("tiber-fuzz-stream: PASS\n");
	tb_buf_free(&bad);
	sm_ctx_free(&c);
	tb_opts_free(&o);
	return rc;
}
