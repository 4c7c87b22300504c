/* SPDX-License-Identifier: MIT */
/* Each tests/unit/test_<module>.c ends with TB_CHECK_MAIN(<suite fn>). */
#ifndef TIBER_CHECK_MAIN_H
#define TIBER_CHECK_MAIN_H

#include <check.h>

/* Run @s in fork mode (CK_FORK=no overrides), print Check's summary,
 * return the exit status. */
int tb_check_run(Suite *s);
/* true when built with ASan/UBSan (TIBER_SANITIZED=1 in the env): tests
 * scale their iteration counts with tb_check_scale(). */
unsigned tb_check_scale(unsigned full, unsigned sanitized);

#define TB_CHECK_MAIN(suite_fn)                  \
	int main(void)                           \
	{                                        \
		return tb_check_run(suite_fn()); \
	}

#endif
