// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check_main.h"

/* Checks run in forked children: each skip writes one byte to this pipe,
 * which the runner counts after the suite. */
static int skip_pipe[2] = { -1, -1 };

void tb_skip(const char *test, const char *fmt, ...)
{
	va_list ap;
	ssize_t n;

	printf("SKIP %s: ", test);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (skip_pipe[1] >= 0) {
		do
			n = write(skip_pipe[1], "s", 1);
		while (n < 0 && errno == EINTR);
	}
}

static int count_skips(void)
{
	char buf[256];
	ssize_t n;
	int total = 0;

	while ((n = read(skip_pipe[0], buf, sizeof(buf))) > 0)
		total += (int)n;
	return total;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

const char *tb_test_tmp(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

int tb_check_run(Suite *s)
{
	char tmp[PATH_MAX];
	SRunner *sr = srunner_create(s);
	int failed, run, skipped = 0;
	bool own_tmp;

	/* under the runner's directory for this run of make check
	 * (scripts/run-tests.sh), so two runs side by side do not see
	 * each other's files as litter */
	snprintf(tmp, sizeof(tmp), "%s/tiber-unit.XXXXXX", tb_test_tmp());
	own_tmp = mkdtemp(tmp) != NULL;

	/* what the code under test puts in $TMPDIR (restored guests'
	 * sockets...) goes with the suite */
	if (own_tmp)
		setenv("TMPDIR", tmp, 1);

	if (pipe2(skip_pipe, O_CLOEXEC | O_NONBLOCK))
		skip_pipe[0] = skip_pipe[1] = -1;
	srunner_run_all(sr, CK_NORMAL); /* prints "100%: Checks: N, ..." */
	failed = srunner_ntests_failed(sr);
	run = srunner_ntests_run(sr);
	srunner_free(sr);
	if (skip_pipe[0] >= 0) {
		skipped = count_skips();
		close(skip_pipe[0]);
		close(skip_pipe[1]);
	}
	if (own_tmp)
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	/* read by scripts/run-tests.sh */
	printf("Skipped: %d of %d checks\n", skipped, run);
	if (failed)
		return EXIT_FAILURE;
	/* a suite that tested nothing did not pass */
	return run && skipped >= run ? TB_EXIT_SKIP : EXIT_SUCCESS;
}

unsigned tb_check_scale(unsigned full, unsigned sanitized)
{
	const char *e = getenv("TIBER_SANITIZED");

	return (e && *e == '1') ? sanitized : full;
}
