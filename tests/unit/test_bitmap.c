// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>

#include "check_main.h"
#include "tiber/bitmap.h"
#include "tiber/common.h"

START_TEST(set_range_and_count_agree_with_bit_tests)
{
	struct tb_bitmap bm;
	uint64_t i;

	ck_assert_int_eq(tb_bitmap_init(&bm, 1000), 0);
	tb_bitmap_set_range(&bm, 3, 200);
	tb_bitmap_set_range(&bm, 990, 100); /* clipped at nbits */
	ck_assert_uint_eq(tb_bitmap_count(&bm), 210);
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(tb_bitmap_test(&bm, i),
				 (i >= 3 && i < 203) || i >= 990);
	tb_bitmap_free(&bm);
}
END_TEST

START_TEST(set_all_leaves_bits_past_the_end_clear)
{
	struct tb_bitmap bm;

	ck_assert_int_eq(tb_bitmap_init(&bm, 70), 0);
	tb_bitmap_set_all(&bm);
	ck_assert_uint_eq(tb_bitmap_count(&bm), 70);
	ck_assert_uint_eq(bm.words[1], (1ull << 6) - 1);
	ck_assert_uint_eq(tb_bitmap_next(&bm, 69), 69);
	ck_assert_uint_eq(tb_bitmap_next(&bm, 70), 70);
	tb_bitmap_free(&bm);
}
END_TEST

START_TEST(to_list_matches_random_bits_in_order)
{
	struct tb_bitmap bm;
	uint64_t *list, n = 100000, i, got, prev = 0, want = 0;
	unsigned seed = 7;

	ck_assert_int_eq(tb_bitmap_init(&bm, n), 0);
	for (i = 0; i < n; i++) {
		if (rand_r(&seed) % 7 == 0) {
			tb_bitmap_set(&bm, i);
			want++;
		}
	}
	list = malloc(n * sizeof(*list));
	got = tb_bitmap_to_list(&bm, list, n);
	ck_assert_uint_eq(got, want);
	for (i = 0; i < got; i++) {
		ck_assert(tb_bitmap_test(&bm, list[i]));
		ck_assert(i == 0 || list[i] > prev);
		prev = list[i];
		ck_assert_uint_eq(tb_bitmap_next(&bm, i ? list[i - 1] + 1 : 0),
				  list[i]);
	}
	ck_assert_uint_eq(tb_bitmap_to_list(&bm, list, 5), 5);
	free(list);
	tb_bitmap_free(&bm);
}
END_TEST

/* take_new: the bits only @src has, in order; @dst ends with both, @src
 * empty, even when the list is cut short. */
START_TEST(take_new_lists_only_new_bits_and_merges)
{
	struct tb_bitmap dst, src, both, only_src;
	uint64_t *list, n = 20000, i, got, want = 0;
	unsigned seed = 9;

	ck_assert_int_eq(tb_bitmap_init(&dst, n), 0);
	ck_assert_int_eq(tb_bitmap_init(&src, n), 0);
	ck_assert_int_eq(tb_bitmap_init(&both, n), 0);
	ck_assert_int_eq(tb_bitmap_init(&only_src, n), 0);
	for (i = 0; i < n; i++) {
		unsigned r = (unsigned)rand_r(&seed) % 8;

		if (r & 1)
			tb_bitmap_set(&dst, i);
		if (r & 2)
			tb_bitmap_set(&src, i);
		if (r & 3)
			tb_bitmap_set(&both, i);
		if (r % 4 == 2) {
			tb_bitmap_set(&only_src, i);
			want++;
		}
	}
	list = malloc(n * sizeof(*list));
	got = tb_bitmap_take_new(&dst, &src, list, n);
	ck_assert_uint_eq(got, want);
	for (i = 0; i < got; i++) {
		ck_assert(tb_bitmap_test(&only_src, list[i]));
		ck_assert(i == 0 || list[i] > list[i - 1]);
	}
	ck_assert_uint_eq(tb_bitmap_count(&src), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(tb_bitmap_test(&dst, i),
				 tb_bitmap_test(&both, i));
	/* cut short: still all merged */
	tb_bitmap_clear_all(&dst);
	tb_bitmap_set_range(&src, 0, 100);
	ck_assert_uint_eq(tb_bitmap_take_new(&dst, &src, list, 10), 10);
	ck_assert_uint_eq(list[9], 9);
	ck_assert_uint_eq(tb_bitmap_count(&dst), 100);
	ck_assert_uint_eq(tb_bitmap_count(&src), 0);
	free(list);
	tb_bitmap_free(&dst);
	tb_bitmap_free(&src);
	tb_bitmap_free(&both);
	tb_bitmap_free(&only_src);
}
END_TEST

START_TEST(parse_size_and_duration_units)
{
	uint64_t v;
	int64_t ns;

	ck_assert_int_eq(tb_parse_size("64M", &v), 0);
	ck_assert_uint_eq(v, 64ull << 20);
	ck_assert_int_eq(tb_parse_size("4GiB", &v), 0);
	ck_assert_uint_eq(v, 4ull << 30);
	ck_assert_int_eq(tb_parse_size("12x", &v), -EINVAL);
	ck_assert_int_eq(tb_parse_size("-1", &v), -EINVAL);
	ck_assert_int_eq(tb_parse_duration("2s", &ns), 0);
	ck_assert_int_eq(ns, 2000000000LL);
	ck_assert_int_eq(tb_parse_duration("500us", &ns), 0);
	ck_assert_int_eq(ns, 500000LL);
	ck_assert_int_eq(tb_parse_duration("15", &ns), 0);
	ck_assert_int_eq(ns, 15000000LL);
	ck_assert_int_eq(tb_parse_duration("1h", &ns), -EINVAL);
	ck_assert_int_eq(tb_parse_u64("0x10", &v), 0);
	ck_assert_uint_eq(v, 16);
	ck_assert_int_eq(tb_parse_u64("99999999999999999999", &v), -ERANGE);
}
END_TEST

static Suite *bitmap_suite(void)
{
	Suite *s = suite_create("bitmap");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, set_range_and_count_agree_with_bit_tests);
	tcase_add_test(tc, set_all_leaves_bits_past_the_end_clear);
	tcase_add_test(tc, to_list_matches_random_bits_in_order);
	tcase_add_test(tc, take_new_lists_only_new_bits_and_merges);
	tcase_add_test(tc, parse_size_and_duration_units);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(bitmap_suite)
