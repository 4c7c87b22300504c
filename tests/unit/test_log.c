// SPDX-License-Identifier: MIT
/*
 * Logging (lib/log.c): errors and warnings rate-limited per call site
 * with the count of what was left out; info lines never; under journald
 * a syslog priority prefix instead of the time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/common.h"
#include "tiber/log.h"

static char path[256];
static int saved_fd = -1;

/* stderr into a fresh file */
static void capture(void)
{
	FILE *f;

	snprintf(path, sizeof(path), "%s/tiber-test-log-%d", tb_test_tmp(),
		 (int)getpid());
	fflush(stderr);
	saved_fd = dup(2);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	dup2(fileno(f), 2);
	fclose(f);
}

/* stderr back; the captured text (caller frees) */
static char *release(void)
{
	char *text = calloc(1, 65536);
	FILE *f;

	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert(fread(text, 1, 65535, f) < 65535);
	fclose(f);
	unlink(path);
	return text;
}

static unsigned count(const char *text, const char *needle)
{
	unsigned n = 0;

	for (; (text = strstr(text, needle)); text++)
		n++;
	return n;
}

static void warn_once(unsigned i)
{
	tb_warn("backup unreachable, attempt %u", i);
}

START_TEST(errors_are_rate_limited_per_site)
{
	char *text;
	unsigned i;

	unsetenv("JOURNAL_STREAM");
	tb_log_init("tlog", TB_LOG_INFO);
	tb_log_set_ratelimit(3, 200 * TB_NSEC_PER_MSEC);
	capture();
	for (i = 0; i < 10; i++)
		warn_once(i);
	tb_err("another site"); /* its own budget */
	for (i = 0; i < 20; i++)
		tb_info("info %u", i); /* never limited */
	usleep(250000);
	warn_once(10);
	text = release();
	ck_assert_uint_eq(count(text, "backup unreachable"), 4);
	ck_assert_ptr_nonnull(strstr(text, "attempt 2\n"));
	ck_assert_ptr_null(strstr(text, "attempt 3\n"));
	ck_assert_ptr_nonnull(
		strstr(text, "attempt 10 (7 more like this not logged)\n"));
	ck_assert_uint_eq(count(text, "another site"), 1);
	ck_assert_uint_eq(count(text, "tlog info: "), 20);
	/* not under journald: each line starts with the time */
	ck_assert_msg(text[4] == '-' && strstr(text, "Z tlog warn: "), "%s",
		      text);
	free(text);
	tb_log_set_ratelimit(10, 10 * TB_NSEC_PER_SEC);
}
END_TEST

START_TEST(journald_gets_priorities)
{
	struct stat st;
	char js[64], *text;

	capture();
	ck_assert_int_eq(fstat(2, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	tb_log_init("tlog", TB_LOG_DEBUG);
	tb_err("e");
	tb_warn("w");
	tb_info("i");
	tb_dbg("d");
	text = release();
	ck_assert_ptr_nonnull(strstr(text, "<3>tlog err: "));
	ck_assert_ptr_nonnull(strstr(text, "<4>tlog warn: "));
	ck_assert_ptr_nonnull(strstr(text, "<6>tlog info: "));
	ck_assert_ptr_nonnull(strstr(text, "<7>tlog debug: "));
	free(text);
	/* another stream (a pipe, a file) is not the journal */
	setenv("JOURNAL_STREAM", "1:2", 1);
	capture();
	tb_log_init("tlog", TB_LOG_INFO);
	tb_err("e");
	text = release();
	ck_assert_ptr_null(strstr(text, "<3>"));
	free(text);
	unsetenv("JOURNAL_STREAM");
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, errors_are_rate_limited_per_site);
	tcase_add_test(tc, journald_gets_priorities);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(log_suite)
