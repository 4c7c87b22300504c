// SPDX-License-Identifier: MIT
/*
 * The replicator's authorize_file (replicator/authz.c): who may protect
 * which guest and how big it may be, and errors that name the file and
 * line.
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
	ck_assert(repl_authz_allows("primary-a", "web", NULL));
	ck_assert(repl_authz_allows("primary-a", "db", NULL));
	ck_assert(!repl_authz_allows("primary-a", "cache", NULL));
	ck_assert(repl_authz_allows("primary-b", "cache", NULL));
	ck_assert(!repl_authz_allows("primary-b", "web", NULL));
	ck_assert(repl_authz_allows("ops", "anything", NULL));
	ck_assert(!repl_authz_allows("primary", "web",
				     NULL)); /* no prefix match */
	ck_assert(!repl_authz_allows("primary-a", "we", NULL));
	ck_assert(!repl_authz_allows(NULL, "web", NULL)); /* unauthenticated */
	repl_authz_free();
	/* no file: every authenticated primary, any guest */
	ck_assert(repl_authz_allows("x", "y", NULL));
}
END_TEST

START_TEST(errors_name_file_and_line)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "a web\nlonely\n", "f:2: 'lonely' grants no guest" },
		{ "# nothing\n\n",
		  "f: no rule (nobody could protect anything)" },
		{ "", "f: no rule (nobody could protect anything)" },
		{ "a 0123456789012345678901234567890123\n",
		  "f:1: guest name '0123456789012345678901234567890123' too long" },
		{ "a web:lots\n",
		  "f:1: guest 'web': bad size 'lots' (want e.g. 512M, 4G)" },
		{ "a web:100\n",
		  "f:1: guest 'web': bad size '100' (want e.g. 512M, 4G)" },
		{ "a :4G\n", "f:1: a grant without a guest name" },
	};
	char why[256];
	size_t i;

	ck_assert_int_eq(repl_authz_parse("a web\n", "good", why, sizeof(why)),
			 0);
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
	ck_assert(repl_authz_allows("a", "web", NULL));
	ck_assert(!repl_authz_allows("lonely", "web", NULL));
	repl_authz_free();
}
END_TEST

START_TEST(grants_bound_guest_size)
{
	char why[256];
	uint64_t max = 1;

	ck_assert_int_eq(repl_authz_parse("ops *:1G web:512M\n"
					  "dev db\n",
					  "t", why, sizeof(why)),
			 0);
	ck_assert(repl_authz_allows("ops", "web", &max));
	ck_assert_uint_eq(max, 512ull << 20); /* the named grant wins */
	ck_assert(repl_authz_allows("ops", "cache", &max));
	ck_assert_uint_eq(max, 1ull << 30);
	ck_assert(repl_authz_allows("dev", "db", &max));
	ck_assert_uint_eq(max, 0); /* no size in the grant */
	ck_assert(!repl_authz_allows("dev", "web", &max));
	repl_authz_free();
}
END_TEST

static Suite *authz_suite(void)
{
	Suite *s = suite_create("authz");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, grants_are_exact);
	tcase_add_test(tc, errors_name_file_and_line);
	tcase_add_test(tc, grants_bound_guest_size);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(authz_suite)
