// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the config parser (lib/config.c): a config file
 * through tb_opts_load_fp(), or a command line through
 * tb_opts_parse_argv(), against a key table with every option type,
 * bounds, words, a check hook, a short flag and a cli_only key.
 *
 * Input: byte 0 bit 0 picks the parser.
 *  0: the rest is the config file's text (fmemopen).
 *  1: the rest, split at NUL bytes, is argv[1..] (at most 32; --config
 *     is dropped: the harness reads no file).
 *
 * Oracle: no crash, no sanitizer report.  A refusal has a message (a
 * file's: one line naming "config fuzz:LINE").  A parse that succeeds leaves
 * every key within its documented bounds: numbers in [min, max] unless
 * a word set them, integers non-negative, a choice index among the
 * choices, a bool 0 or 1, a duration not negative, a string its check
 * accepts, the power-of-two size a power of two, the cli_only key
 * untouched by a file.  And, for a file without NUL bytes, a
 * re-tokenisation of its lines finds no integer key given anything but
 * a non-negative integer literal or one of its words.
 *
 * Seeds (tests/fuzz/seeds-config/): config files in the style of the
 * daemons' (comments, quotes, units, words), and a command line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/common.h"
#include "tiber/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

static const char *const modes[] = { "staged", "send-while-paused", "auto",
				     NULL };
static const struct tb_opt_word max_word[] = { { "max", UINT64_MAX },
					       { NULL, 0 } };
static const struct tb_opt_word off_word[] = { { "off", 0 },
					       { "never", 3600000000000ull },
					       { NULL, 0 } };

static struct {
	const char *name, *path, *secret;
	uint64_t count, limit, size, ring;
	uint32_t port, threads;
	int level, mode;
	double rate, gbit, ratio;
	bool flag;
	int64_t timeout, interval;
} v;

static const char *absolute(const void *value)
{
	return **(const char *const *)value == '/' ? NULL :
						     "not an absolute path";
}

static const struct tb_opt table[] = {
	{ .key = "name", .type = TB_OPT_STR, .dst = &v.name, .help = "h" },
	{ .key = "path",
	  .type = TB_OPT_STR,
	  .dst = &v.path,
	  .help = "h",
	  .check = absolute },
	{ .key = "secret",
	  .type = TB_OPT_STR,
	  .dst = &v.secret,
	  .help = "h",
	  .cli_only = true },
	{ .key = "count",
	  .type = TB_OPT_U64,
	  .dst = &v.count,
	  .help = "h",
	  .words = max_word },
	{ .key = "limit",
	  .type = TB_OPT_U64,
	  .dst = &v.limit,
	  .help = "h",
	  .min = 1,
	  .max = 1000,
	  .words = max_word },
	{ .key = "output_limit",
	  .type = TB_OPT_SIZE,
	  .dst = &v.size,
	  .help = "h",
	  .min = 64 * 1024,
	  .max = 2147483647.0 },
	{ .key = "ring",
	  .type = TB_OPT_SIZE,
	  .dst = &v.ring,
	  .help = "h",
	  .check = tb_opt_check_pow2 },
	{ .key = "port",
	  .type = TB_OPT_U32,
	  .dst = &v.port,
	  .help = "h",
	  .short_flag = 'p',
	  .min = 1,
	  .max = 65535 },
	{ .key = "copy_threads",
	  .type = TB_OPT_U32,
	  .dst = &v.threads,
	  .help = "h",
	  .short_flag = 't' },
	{ .key = "level",
	  .type = TB_OPT_INT,
	  .dst = &v.level,
	  .help = "h",
	  .min = 0,
	  .max = 7 },
	{ .key = "mode",
	  .type = TB_OPT_CHOICE,
	  .dst = &v.mode,
	  .help = "h",
	  .choices = modes },
	{ .key = "rate",
	  .type = TB_OPT_DOUBLE,
	  .dst = &v.rate,
	  .help = "h",
	  .min = 0.1,
	  .max = 10000 },
	{ .key = "link_gbit",
	  .type = TB_OPT_DOUBLE,
	  .dst = &v.gbit,
	  .help = "h",
	  .min = 0,
	  .max = 1000 },
	{ .key = "ratio", .type = TB_OPT_DOUBLE, .dst = &v.ratio, .help = "h" },
	{ .key = "flag",
	  .type = TB_OPT_BOOL,
	  .dst = &v.flag,
	  .help = "h",
	  .short_flag = 'q' },
	{ .key = "timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &v.timeout,
	  .help = "h",
	  .min = 0.01,
	  .max = 60000,
	  .words = off_word },
	{ .key = "interval",
	  .type = TB_OPT_DURATION,
	  .dst = &v.interval,
	  .help = "h" },
};

static void fail(const char *why, const char *detail)
{
	fprintf(stderr, "fuzz_config: oracle violation: %s%s%s\n", why,
		detail ? ": " : "", detail ? detail : "");
	abort();
}

/* Defaults within every bound, as a program's are. */
static void defaults(void)
{
	memset(&v, 0, sizeof(v));
	v.name = "n";
	v.path = "/p";
	v.limit = 10;
	v.size = 1 << 20;
	v.ring = 4096;
	v.port = 80;
	v.rate = 50;
	v.timeout = 200000000;
}

/* Is @x a value of one of @opt's words (in the key's type)? */
static bool is_word(const struct tb_opt *opt, double x)
{
	const struct tb_opt_word *w;

	for (w = opt->words; w && w->word; w++) {
		switch (opt->type) {
		case TB_OPT_U32:
			if (x == (double)(uint32_t)w->value)
				return true;
			break;
		case TB_OPT_INT:
			if (x == (double)(int)w->value)
				return true;
			break;
		case TB_OPT_DURATION:
			if (x == (double)(int64_t)w->value / 1e6)
				return true;
			break;
		default:
			if (x == (double)w->value)
				return true;
		}
	}
	return false;
}

/* Every key of the table within its documented bounds. */
static void check_values(bool from_file)
{
	const struct tb_opt *opt;
	size_t i;
	double x;

	for (i = 0; i < TB_ARRAY_SIZE(table); i++) {
		opt = &table[i];
		switch (opt->type) {
		case TB_OPT_STR:
			if (!*(const char **)opt->dst) {
				if (opt->dst != &v.secret) /* no default */
					fail("a string key set to NULL",
					     opt->key);
				continue;
			}
			if (opt->check && opt->check(opt->dst))
				fail("a string its check refuses", opt->key);
			continue;
		case TB_OPT_U64:
		case TB_OPT_SIZE:
			x = (double)*(uint64_t *)opt->dst;
			break;
		case TB_OPT_U32:
			x = (double)*(uint32_t *)opt->dst;
			break;
		case TB_OPT_INT:
			x = (double)*(int *)opt->dst;
			if (x < 0 && !is_word(opt, x))
				fail("a negative integer", opt->key);
			break;
		case TB_OPT_DOUBLE:
			x = *(double *)opt->dst;
			if (x != x)
				fail("a NaN", opt->key);
			break;
		case TB_OPT_DURATION:
			x = (double)*(int64_t *)opt->dst / 1e6;
			if (x < 0)
				fail("a negative duration", opt->key);
			break;
		case TB_OPT_BOOL:
			if (*(uint8_t *)opt->dst > 1)
				fail("a bool neither 0 nor 1", opt->key);
			continue;
		case TB_OPT_CHOICE:
			if (*(int *)opt->dst < 0 || *(int *)opt->dst > 2)
				fail("a choice index out of the choices",
				     opt->key);
			continue;
		default:
			continue;
		}
		if (opt->min < opt->max && (x < opt->min || x > opt->max) &&
		    !is_word(opt, x))
			fail("a value out of its bounds", opt->key);
		if (opt->check && opt->check(opt->dst) && !is_word(opt, x))
			fail("a value its check refuses", opt->key);
	}
	if (from_file && v.secret)
		fail("a cli_only key set by a file", NULL);
}

/* A non-negative integer literal as strtoull(s, 0) reads it, and nothing
 * else: no sign, no space. */
static bool int_literal(const char *s)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!s[2])
			return false;
		for (s += 2; *s; s++)
			if (!isxdigit((unsigned char)*s))
				return false;
		return true;
	}
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static const struct tb_opt *find(const char *key)
{
	for (size_t i = 0; i < TB_ARRAY_SIZE(table); i++) {
		const char *a = table[i].key, *b = key;

		for (; *a && *b; a++, b++)
			if ((*a == '-' ? '_' : *a) != (*b == '-' ? '_' : *b))
				break;
		if (!*a && !*b)
			return &table[i];
	}
	return NULL;
}

/* The accepted file's lines again: an integer key took an integer. */
static void check_lines(char *text)
{
	char *line, *save = NULL, *key, *val, *eq, *end;
	const struct tb_opt *opt;
	const struct tb_opt_word *w;
	bool word;

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		key = trim(line);
		if (!*key || *key == '#' || !(eq = strchr(key, '=')))
			continue;
		*eq = 0;
		key = trim(key);
		val = trim(eq + 1);
		if (*val == '"' && (end = strchr(val + 1, '"'))) {
			*end = 0;
			val++;
		} else if ((end = strchr(val, '#'))) {
			*end = 0;
			val = trim(val);
		}
		opt = find(key);
		if (!opt ||
		    (opt->type != TB_OPT_U64 && opt->type != TB_OPT_U32 &&
		     opt->type != TB_OPT_INT))
			continue;
		for (word = false, w = opt->words; w && w->word; w++)
			word |= !strcmp(w->word, val);
		if (!word && !int_literal(val))
			fail("an integer key took what is not a non-negative integer",
			     val);
	}
}

static void from_file(const uint8_t *data, size_t size)
{
	struct tb_opts o;
	char *text;
	FILE *f;
	int rc;

	if (!size)
		return;
	text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	f = fmemopen(text, size, "r");
	if (!f)
		abort();
	defaults();
	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_load_fp(&o, f, "fuzz");
	fclose(f);
	if (rc) {
		if (rc != -EINVAL && rc != -ENOENT && rc != -ENOMEM)
			fail("a refusal that is not -EINVAL/-ENOENT", NULL);
		if (rc != -ENOMEM && strncmp(o.err, "config fuzz:", 12))
			fail("a refusal that does not name file and line",
			     o.err);
		if (strchr(o.err, '\n'))
			fail("a refusal of more than one line", o.err);
	} else {
		check_values(true);
		if (!memchr(data, 0, size))
			check_lines(text);
	}
	tb_opts_free(&o);
	free(text);
}

static void from_argv(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[MAX_ARGS + 2], **rest;
	struct tb_opts o;
	int argc = 1, nrest, rc;
	size_t i = 0;
	bool help;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = 0;
	argv[0] = "fuzz";
	while (i <= size && argc <= MAX_ARGS) {
		if (strncmp(buf + i, "--config", 8))
			argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	defaults();
	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_argv(&o, argc, argv, &rest, &nrest, &help);
	if (rc) {
		/* (one line unless the operator's argument had a newline) */
		if (!o.err[0])
			fail("a refusal without a message", NULL);
	} else {
		check_values(false);
		if (nrest < 0 || nrest >= argc)
			fail("more positional arguments than arguments", NULL);
	}
	tb_opts_free(&o);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		from_argv(data + 1, size - 1);
	else
		from_file(data + 1, size - 1);
	return 0;
}
