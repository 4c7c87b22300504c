// SPDX-License-Identifier: MIT
/*
 * The replicator's authorize_file (replicator/authz.c): who may protect
 * which guest, and errors that name the file and line.
 */
#include <errno.h>
#include <string.h>

#include "check_main.h"
#include "../../replicator/replicator.h"

START_TEST(grants_are_exact)
{
	char why[256];

	ck_assert_int_eq(repl_authz_parse("# comment\n"
					  "primary-a web db  # two guests\n"
					  "\n"
					  "   primary-b\tcache\r\n"
					  "ops *\n",
					  "t", why, sizeof(why)),
			 0);
	ck_assert_uint_eq(repl_authz_rules(), 4);
	ck_assert(repl_authz_allows("primary-a", "web"));
	ck_assert(repl_authz_allows("primary-a", "db"));
	ck_assert(!repl_authz_allows("primary-a", "cache"));
	ck_assert(repl_authz_allows("primary-b", "cache"));
	ck_assert(!repl_authz_allows("primary-b", "web"));
	ck_assert(repl_authz_allows("ops", "anything"));
	ck_assert(!repl_authz_allows("primary", "web"));   /* no prefix match */
	ck_assert(!repl_authz_allows("primary-a", "we"));
	ck_assert(!repl_authz_allows(NULL, "web")); /* unauthenticated */
	repl_authz_free();
	/* no file: every authenticated primary, any guest */
	ck_assert(repl_authz_allows("x", "y"));
}
END_TEST

START_TEST(errors_name_file_and_line)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "a web\nlonely\n", "f:2: 'lonely' grants no guest" },
		{ "# nothing\n\n", "f: no rule (nobody could protect anything)" },
		{ "", "f: no rule (nobody could protect anything)" },
		{ "a 0123456789012345678901234567890123\n",
		  "f:1: guest name '0123456789012345678901234567890123' too long" },
	};
	char why[256];
	size_t i;

	ck_assert_int_eq(repl_authz_parse("a web\n", "good", why, sizeof(why)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		ck_assert_int_eq(repl_authz_parse(bad[i].text, "f", why,
						  sizeof(why)),
				 -EINVAL);
		ck_assert_msg(!strcmp(why, bad[i].want), "'%s': got '%s'",
			      bad[i].text, why);
	}
	/* a failed parse changes nothing: no half-parsed rule is kept */
	ck_assert_uint_eq(repl_authz_rules(), 1);
	ck_assert(repl_authz_allows("a", "web"));
	ck_assert(!repl_authz_allows("lonely", "web"));
	repl_authz_free();
}
END_TEST

static Suite *authz_suite(void)
{
	Suite *s = suite_create("authz");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, grants_are_exact);
	tcase_add_test(tc, errors_name_file_and_line);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(authz_suite)
