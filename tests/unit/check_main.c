// SPDX-License-Identifier: MIT
#include <stdlib.h>

#include "check_main.h"

int tb_check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL); /* prints "100%: Checks: N, ..." */
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

unsigned tb_check_scale(unsigned full, unsigned sanitized)
{
	const char *e = getenv("TIBER_SANITIZED");

	return (e && *e == '1') ? sanitized : full;
}
