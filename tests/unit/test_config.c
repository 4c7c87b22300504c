// SPDX-License-Identifier: MIT
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/common.h"
#include "tiber/config.h"

static const char *const colors[] = { "red", "green", NULL };
static const char *s_name;
static uint32_t s_count;
static double s_rate;
static bool s_flag;
static uint64_t s_size;
static int64_t s_time;
static int s_color;

static const struct tb_opt table[] = {
	{ .key = "name", .type = TB_OPT_STR, .dst = &s_name, .help = "n" },
	{ .key = "count",
	  .type = TB_OPT_U32,
	  .dst = &s_count,
	  .help = "c",
	  .min = 1,
	  .max = 100 },
	{ .key = "rate_hz", .type = TB_OPT_DOUBLE, .dst = &s_rate, .help = "r" },
	{ .key = "flag", .type = TB_OPT_BOOL, .dst = &s_flag, .help = "f" },
	{ .key = "size", .type = TB_OPT_SIZE, .dst = &s_size, .help = "s" },
	{ .key = "timeout",
	  .type = TB_OPT_DURATION,
	  .dst = &s_time,
	  .help = "t" },
	{ .key = "color",
	  .type = TB_OPT_CHOICE,
	  .dst = &s_color,
	  .help = "c",
	  .choices = colors },
	{ .key = "secret",
	  .type = TB_OPT_STR,
	  .dst = &s_name,
	  .help = "x",
	  .cli_only = true },
};

static const struct tb_opt_word max_word[] = { { "max", UINT64_MAX },
					       { NULL, 0 } };
static uint64_t s_rate_n, s_ring;
static bool s_quiet, s_replay;

static const char *even_only(const void *value)
{
	return *(const uint64_t *)value % 2 ? "not even" : NULL;
}

static const struct tb_opt table2[] = {
	{ .key = "count",
	  .type = TB_OPT_U32,
	  .dst = &s_count,
	  .help = "c",
	  .short_flag = 'n',
	  .min = 1,
	  .max = 100 },
	{ .key = "quiet",
	  .type = TB_OPT_BOOL,
	  .dst = &s_quiet,
	  .help = "q",
	  .arg = "",
	  .short_flag = 'q' },
	{ .key = "replay",
	  .type = TB_OPT_BOOL,
	  .dst = &s_replay,
	  .help = "r",
	  .short_flag = 'r' },
	{ .key = "name",
	  .type = TB_OPT_STR,
	  .dst = &s_name,
	  .help = "n",
	  .short_flag = 'N' },
	{ .key = "writes",
	  .type = TB_OPT_U64,
	  .dst = &s_rate_n,
	  .help = "w",
	  .arg = "N|max",
	  .words = max_word,
	  .check = even_only,
	  .min = 1,
	  .max = 1000 },
	{ .key = "big",
	  .type = TB_OPT_U64,
	  .dst = &s_ring,
	  .help = "big",
	  .min = 1,
	  .max = (double)UINT64_MAX },
	{ .key = "ring",
	  .type = TB_OPT_SIZE,
	  .dst = &s_ring,
	  .help = "ring",
	  .check = tb_opt_check_pow2,
	  .min = 4096,
	  .max = 1 << 30 },
};

static void reset(void)
{
	s_name = NULL;
	s_count = 0;
	s_rate = 0;
	s_flag = false;
	s_size = 0;
	s_time = 0;
	s_color = 0;
}

static char *write_file(const char *text)
{
	char *path;
	int fd;

	ck_assert_int_gt(asprintf(&path, "%s/tiber-cfg-XXXXXX", tb_test_tmp()),
			 0);
	fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	return path;
}

START_TEST(file_then_flags_override)
{
	char *path = write_file("# comment\n"
				"name = \"guest one\"  # trailing\n"
				"count = 7\n"
				"rate-hz = 40\n\n"
				"flag = yes\nsize = 64M\ntimeout = 20ms\n"
				"color = green\n");
	char *argv[] = { "prog", "--count", "9",	 "--config",
			 path,	 "rest",    "--flag=no", NULL };
	struct tb_opts o;
	char **rest;
	int nrest;
	bool help;

	reset();
	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 7, argv, &rest, &nrest, &help),
			 0);
	ck_assert_str_eq(s_name, "guest one");
	ck_assert_uint_eq(s_count, 9);
	ck_assert(s_rate == 40.0);
	ck_assert(!s_flag);
	ck_assert_uint_eq(s_size, 64ull << 20);
	ck_assert_int_eq(s_time, 20 * TB_NSEC_PER_MSEC);
	ck_assert_int_eq(s_color, 1);
	ck_assert_int_eq(nrest, 1);
	ck_assert_str_eq(rest[0], "rest");
	ck_assert(!help);
	tb_opts_free(&o);
	unlink(path);
	free(path);
}
END_TEST

static void expect_file_error(const char *text, const char *needle)
{
	char *path = write_file(text);
	struct tb_opts o;

	reset();
	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	ck_assert_int_ne(tb_opts_load_file(&o, path), 0);
	ck_assert_msg(strstr(o.err, needle), "error '%s' lacks '%s'", o.err,
		      needle);
	ck_assert_msg(strstr(o.err, path), "error '%s' lacks the path", o.err);
	tb_opts_free(&o);
	unlink(path);
	free(path);
}

START_TEST(file_errors_name_line_and_key)
{
	expect_file_error("count = 7\nbogus = 1\n", ":2: unknown key 'bogus'");
	expect_file_error("count = abc\n", "key 'count': not a non-negative");
	expect_file_error("count = 500\n",
			  "key 'count': value '500' out of range");
	expect_file_error("flag = maybe\n", "key 'flag': not a boolean");
	expect_file_error("size = 12q\n", "key 'size': not a size");
	expect_file_error("timeout = 1h\n", "key 'timeout': not a duration");
	expect_file_error("color = blue\n", "(red|green)");
	expect_file_error("just words\n", "expected KEY = VALUE");
	expect_file_error("name = \"open\n", "unterminated");
	expect_file_error("secret = x\n", "only allowed on the command line");
}
END_TEST

START_TEST(flag_errors_are_clear)
{
	char *a1[] = { "prog", "--nope", "1", NULL };
	char *a2[] = { "prog", "--count", NULL };
	char *a3[] = { "prog", "--config", "/nonexistent/x.cfg", NULL };
	char *a4[] = { "prog", "--help", NULL };
	struct tb_opts o;
	char **rest;
	int nrest;
	bool help;

	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 3, a1, &rest, &nrest, &help),
			 -EINVAL);
	ck_assert(strstr(o.err, "unknown flag '--nope'"));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 2, a2, &rest, &nrest, &help),
			 -EINVAL);
	ck_assert(strstr(o.err, "--count: missing value"));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 3, a3, &rest, &nrest, &help),
			 -ENOENT);
	ck_assert(strstr(o.err, "/nonexistent/x.cfg"));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 2, a4, &rest, &nrest, &help),
			 0);
	ck_assert(help);
	tb_opts_free(&o);
}
END_TEST

START_TEST(bool_flag_alone_means_yes)
{
	char *argv[] = { "prog", "--flag", "--count", "3", NULL };
	struct tb_opts o;
	char **rest;
	int nrest;
	bool help;

	reset();
	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 4, argv, &rest, &nrest, &help),
			 0);
	ck_assert(s_flag);
	ck_assert_uint_eq(s_count, 3);
	tb_opts_free(&o);
}
END_TEST

START_TEST(cli_rejects_positional_arguments_and_prints_help)
{
	char *a1[] = { "prog", "--count", "2", "stray", NULL };
	char *a2[] = { "prog", "--help", NULL };
	struct tb_opts o;

	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	ck_assert_int_eq(tb_opts_parse_cli(&o, 4, a1, "usage\n"), -EINVAL);
	ck_assert(strstr(o.err, "unexpected argument 'stray'"));
	ck_assert_int_eq(tb_opts_parse_cli(&o, 2, a2, "usage\n"), 1);
	tb_opts_free(&o);
}
END_TEST

START_TEST(short_flags_bundle_and_take_values)
{
	char *argv[] = { "prog", "-qn", "7",  "file1", "-r", "-Nguest",
			 "-",	 "--",	"-n", "-q",    NULL };
	struct tb_opts o;
	char **rest;
	int nrest;
	bool help;

	reset();
	s_quiet = s_replay = false;
	tb_opts_init(&o, table2, TB_ARRAY_SIZE(table2));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 10, argv, &rest, &nrest, &help),
			 0);
	ck_assert(s_quiet && s_replay && !help);
	ck_assert_uint_eq(s_count, 7);
	ck_assert_str_eq(s_name, "guest");
	/* "-" and everything after "--" are arguments */
	ck_assert_int_eq(nrest, 4);
	ck_assert_str_eq(rest[0], "file1");
	ck_assert_str_eq(rest[1], "-");
	ck_assert_str_eq(rest[2], "-n");
	ck_assert_str_eq(rest[3], "-q");
	tb_opts_free(&o);
}
END_TEST

static void expect_argv_error(int argc, char **argv, const char *needle)
{
	struct tb_opts o;
	char **rest;
	int nrest;
	bool help;

	tb_opts_init(&o, table2, TB_ARRAY_SIZE(table2));
	ck_assert_int_eq(tb_opts_parse_argv(&o, argc, argv, &rest, &nrest,
					    &help),
			 -EINVAL);
	ck_assert_msg(strstr(o.err, needle), "error '%s' lacks '%s'", o.err,
		      needle);
	tb_opts_free(&o);
}

START_TEST(short_flag_errors_name_the_key)
{
	char *a1[] = { "prog", "-x", NULL };
	char *a2[] = { "prog", "-n", NULL };
	char *a3[] = { "prog", "-n", "500", NULL };
	char *a4[] = { "prog", "-qz", NULL };
	char *a5[] = { "prog", "-nabc", NULL };

	expect_argv_error(2, a1, "unknown flag '-x'");
	expect_argv_error(2, a2, "flag -n: missing value");
	expect_argv_error(3, a3, "flag -n: key 'count': value '500' out of");
	expect_argv_error(2, a4, "unknown flag '-z'");
	expect_argv_error(2, a5, "key 'count': not a non-negative integer");
}
END_TEST

START_TEST(words_and_checks)
{
	char *a1[] = { "prog", "--writes", "max", "--ring", "64K", NULL };
	char *a2[] = { "prog", "--writes=8", NULL };
	char *a3[] = { "prog", "--writes", "7", NULL };
	char *a4[] = { "prog", "--writes", "lots", NULL };
	char *a5[] = { "prog", "--writes", "0", NULL };
	char *a6[] = { "prog", "--ring", "12K", NULL };
	char *a7[] = { "prog", "--ring", "1K", NULL };
	char *a8[] = { "prog", "--big", "0", NULL };
	struct tb_opts o;
	char **rest;
	int nrest;
	bool help;

	s_rate_n = s_ring = 0;
	tb_opts_init(&o, table2, TB_ARRAY_SIZE(table2));
	ck_assert_int_eq(tb_opts_parse_argv(&o, 5, a1, &rest, &nrest, &help),
			 0);
	ck_assert_uint_eq(s_rate_n, UINT64_MAX);
	ck_assert_uint_eq(s_ring, 64 << 10);
	ck_assert_int_eq(tb_opts_parse_argv(&o, 2, a2, &rest, &nrest, &help),
			 0);
	ck_assert_uint_eq(s_rate_n, 8);
	tb_opts_free(&o);
	expect_argv_error(3, a3, "key 'writes': not even: '7'");
	expect_argv_error(3, a4,
			  "key 'writes': not a non-negative integer: "
			  "'lots' (or max)");
	expect_argv_error(3, a5, "key 'writes': value '0' out of range");
	expect_argv_error(3, a8,
			  "key 'big': value '0' out of range (at least 1)");
	expect_argv_error(3, a6, "key 'ring': not a power of two: '12K'");
	expect_argv_error(3, a7, "key 'ring': value '1K' out of range");
	/* a failed value leaves the old one */
	ck_assert_uint_eq(s_rate_n, 8);
}
END_TEST

/* strtoull() skips leading spaces and negates a '-' after them: a quoted
 * " -1" was read as 2^64 - 1 (found by tests/fuzz/fuzz_config.c). */
START_TEST(integers_with_a_sign_are_refused_after_spaces)
{
	char text[] = "big = \" -1\"\n";
	FILE *f = fmemopen(text, strlen(text), "r");
	struct tb_opts o;
	uint64_t u;

	ck_assert_int_eq(tb_parse_u64(" -1", &u), -EINVAL);
	ck_assert_int_eq(tb_parse_u64("\t+5", &u), -EINVAL);
	ck_assert_int_eq(tb_parse_u64(" 5", &u), -EINVAL);
	ck_assert_int_eq(tb_parse_u64("0x5", &u), 0);
	ck_assert_uint_eq(u, 5);
	ck_assert_ptr_nonnull(f);
	tb_opts_init(&o, table2, TB_ARRAY_SIZE(table2));
	s_ring = 3;
	ck_assert_int_eq(tb_opts_load_fp(&o, f, "t"), -EINVAL);
	ck_assert_uint_eq(s_ring, 3);
	ck_assert_str_eq(
		o.err,
		"config t:1: key 'big': not a non-negative integer: ' -1'");
	fclose(f);
	tb_opts_free(&o);
}
END_TEST

START_TEST(cli_rest_returns_arguments_and_help_lists_short_flags)
{
	char *a1[] = { "prog", "-r", "a.bin", "-q", "b.bin", NULL };
	char *a2[] = { "prog", "-h", NULL };
	struct tb_opts o;
	char **rest, buf[4096];
	int nrest;
	FILE *f;

	tb_opts_init(&o, table2, TB_ARRAY_SIZE(table2));
	ck_assert_int_eq(
		tb_opts_parse_cli_rest(&o, 5, a1, "usage\n", &rest, &nrest), 0);
	ck_assert_int_eq(nrest, 2);
	ck_assert_str_eq(rest[0], "a.bin");
	ck_assert_str_eq(rest[1], "b.bin");
	ck_assert_int_eq(
		tb_opts_parse_cli_rest(&o, 2, a2, "usage\n", &rest, &nrest), 1);
	f = fmemopen(buf, sizeof(buf), "w");
	ck_assert_ptr_nonnull(f);
	tb_opts_usage(&o, f);
	fclose(f);
	ck_assert_msg(strstr(buf, "  --count N "), "%s", buf);
	ck_assert_msg(strstr(buf, "(also -n)\n"), "%s", buf);
	ck_assert_msg(strstr(buf, "  --quiet  "), "%s", buf);
	ck_assert_msg(strstr(buf, "  --replay [yes|no] "), "%s", buf);
	ck_assert_msg(strstr(buf, "  --writes N|max "), "%s", buf);
	tb_opts_free(&o);
}
END_TEST

START_TEST(usage_keeps_two_spaces_before_long_help)
{
	static bool b;
	static const struct tb_opt t[] = {
		{ .key = "exit_after_failover_x",
		  .type = TB_OPT_BOOL,
		  .dst = &b,
		  .help = "long" },
	};
	struct tb_opts o;
	char buf[1024];
	FILE *f;

	tb_opts_init(&o, t, TB_ARRAY_SIZE(t));
	f = fmemopen(buf, sizeof(buf), "w");
	ck_assert_ptr_nonnull(f);
	tb_opts_usage(&o, f);
	fclose(f);
	ck_assert_msg(strstr(buf, "--exit-after-failover-x [yes|no]  long\n"),
		      "%s", buf);
	tb_opts_free(&o);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, file_then_flags_override);
	tcase_add_test(tc, file_errors_name_line_and_key);
	tcase_add_test(tc, flag_errors_are_clear);
	tcase_add_test(tc, bool_flag_alone_means_yes);
	tcase_add_test(tc, cli_rejects_positional_arguments_and_prints_help);
	tcase_add_test(tc, short_flags_bundle_and_take_values);
	tcase_add_test(tc, short_flag_errors_name_the_key);
	tcase_add_test(tc, words_and_checks);
	tcase_add_test(tc, integers_with_a_sign_are_refused_after_spaces);
	tcase_add_test(tc,
		       cli_rest_returns_arguments_and_help_lists_short_flags);
	tcase_add_test(tc, usage_keeps_two_spaces_before_long_help);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(config_suite)
