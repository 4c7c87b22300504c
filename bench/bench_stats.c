// SPDX-License-Identifier: MIT
/* Order statistics of one phase: nearest-rank percentiles, mean, max. */
#include <math.h>
#include <stdlib.h>

#include "bench.h"

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, uint64_t n, double p)
{
	uint64_t r = (uint64_t)ceil(p / 100.0 * (double)n);

	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return v[r - 1];
}

bool bench_reached(const struct bench_res *r)
{
	return r->ok && r->ph[PH_DIRTY].p50 >=
				BENCH_REACHED * (double)r->cfg.dirty_target;
}

/* Sorts @v in place. */
void bench_stat_compute(struct bench_stat *st, double *v, uint64_t n)
{
	double sum = 0;
	uint64_t i;

	st->count = n;
	if (!n) {
		st->p50 = st->p90 = st->p99 = st->p999 = st->max = 0;
		st->mean = 0;
		return;
	}
	qsort(v, n, sizeof(*v), cmp_dbl);
	for (i = 0; i < n; i++)
		sum += v[i];
	st->p50 = pct(v, n, 50);
	st->p90 = pct(v, n, 90);
	st->p99 = pct(v, n, 99);
	st->p999 = pct(v, n, 99.9);
	st->max = v[n - 1];
	st->mean = sum / (double)n;
}
