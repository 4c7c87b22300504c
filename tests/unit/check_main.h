/* SPDX-License-Identifier: MIT */
/* Each tests/unit/test_<module>.c ends with TB_CHECK_MAIN(<suite fn>). */
#ifndef TIBER_CHECK_MAIN_H
#define TIBER_CHECK_MAIN_H

#include <check.h>

#define TB_EXIT_SKIP 77 /* every check skipped (automake's convention) */

/* Run @s in fork mode (CK_FORK=no overrides), print Check's summary and
 * "Skipped: K of N checks", return the exit status: failure if a check
 * failed, TB_EXIT_SKIP if every check skipped. */
int tb_check_run(Suite *s);
/* The check @test cannot run here: say why (one line), count it as
 * skipped.  The caller returns right after. */
void tb_skip(const char *test, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* true when built with ASan/UBSan (TIBER_SANITIZED=1 in the env): tests
 * scale their iteration counts with tb_check_scale(). */
unsigned tb_check_scale(unsigned full, unsigned sanitized);
/* Where a check makes its files and sockets: the suite's own directory
 * ($TMPDIR, set by tb_check_run() under the runner's per-run directory),
 * so that what it leaves behind is found and removed with the suite. */
const char *tb_test_tmp(void);

#define TB_CHECK_MAIN(suite_fn)                  \
	int main(void)                           \
	{                                        \
		return tb_check_run(suite_fn()); \
	}

#endif
