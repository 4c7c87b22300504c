// SPDX-License-Identifier: MIT
/*
 * The physical bound of a pause, measured in the bench process right
 * after each run (the same box, the same minute):
 *
 *   memcpy     one contiguous memcpy of N pages, pre-faulted source and
 *              destination, caches evicted first
 *   scattered  N random distinct 4 KiB pages (sorted, as PAGEMAP_SCAN
 *              returns them) of a RAM-sized pre-faulted MAP_SHARED memfd
 *              copied into a pre-faulted staging buffer, cache-cold, with
 *              1 thread and 2 threads (a persistent worker woken by a
 *              barrier, as tiberd's pause copy); the bound is the
 *              faster of the two
 *
 * Each figure is the median of REPS repetitions.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "tiber/common.h"
#include "bench.h"

#define PS	     4096ull
#define REPS	     7
#define EVICT_BYTES  (128ull << 20) /* L3 here is 32 MiB */
#define KEEP_SRC_MAX (1ull << 30)

static uint8_t *src, *dst, *evict;
static uint64_t src_bytes, dst_pages;

struct worker {
	pthread_t thr;
	pthread_barrier_t start, done;
	const uint64_t *pfns;
	uint64_t from, to;
	bool quit;
};

static void copy_range(const uint64_t *pfns, uint64_t from, uint64_t to)
{
	uint64_t i;

	for (i = from; i < to; i++)
		memcpy(dst + i * PS, src + pfns[i] * PS, PS);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		pthread_barrier_wait(&w->start);
		if (w->quit)
			return NULL;
		copy_range(w->pfns, w->from, w->to);
		pthread_barrier_wait(&w->done);
	}
}

static uint64_t sink;

static void evict_caches(void)
{
	uint64_t i, s = 0;

	for (i = 0; i < EVICT_BYTES; i += 64) {
		s += evict[i];
		evict[i] = (uint8_t)s;
	}
	sink += s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
	return v[n / 2];
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int ensure_buffers(uint64_t ram_bytes, uint64_t nr_pages)
{
	uint64_t i;

	if (!evict) {
		evict = mmap(NULL, EVICT_BYTES, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (evict == MAP_FAILED) {
			evict = NULL;
			return -ENOMEM;
		}
	}
	if (src_bytes != ram_bytes) {
		int fd;

		if (src)
			munmap(src, src_bytes);
		src = NULL;
		src_bytes = 0;
		/* the guest's RAM is a MAP_SHARED memfd: the same here */
		fd = memfd_create("tiber-bench-src", MFD_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, (off_t)ram_bytes)) {
			close(fd);
			return -errno;
		}
		src = mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fd, 0);
		close(fd);
		if (src == MAP_FAILED) {
			src = NULL;
			return -ENOMEM;
		}
		src_bytes = ram_bytes;
		for (i = 0; i < ram_bytes; i += PS)
			memset(src + i, (int)(i >> 12) | 1, 64);
	}
	if (dst_pages < nr_pages) {
		if (dst)
			munmap(dst, dst_pages * PS);
		dst = mmap(NULL, nr_pages * PS, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (dst == MAP_FAILED) {
			dst = NULL;
			dst_pages = 0;
			return -ENOMEM;
		}
		dst_pages = nr_pages;
		for (i = 0; i < nr_pages * PS; i += PS)
			dst[i] = 1;
	}
	return 0;
}

void bench_copy_free(void)
{
	if (src)
		munmap(src, src_bytes);
	if (dst)
		munmap(dst, dst_pages * PS);
	if (evict)
		munmap(evict, EVICT_BYTES);
	src = dst = evict = NULL;
	src_bytes = dst_pages = 0;
}

/* @nr_pages distinct random pfns below @ram_pages, sorted. */
static int pick_pfns(uint64_t *pfns, uint64_t nr_pages, uint64_t ram_pages)
{
	uint8_t *used = calloc(ram_pages / 8 + 1, 1);
	uint64_t i = 0;

	if (!used)
		return -ENOMEM;
	while (i < nr_pages) {
		uint64_t p = rng() % ram_pages;

		if (used[p / 8] & (1u << (p % 8)))
			continue;
		used[p / 8] |= (uint8_t)(1u << (p % 8));
		pfns[i++] = p;
	}
	free(used);
	qsort(pfns, nr_pages, sizeof(*pfns), cmp_u64);
	return 0;
}

int bench_copy_bound(uint64_t ram_bytes, uint64_t nr_pages,
		     struct bench_res *res)
{
	uint64_t ram_pages = ram_bytes / PS, *pfns = NULL;
	double t_mc[REPS], t_s1[REPS], t_s2[REPS];
	struct worker w = { 0 };
	int i, rc;

	res->copy_memcpy_ns = res->copy_scattered_ns = 0;
	res->copy_scattered_1t_ns = res->copy_scattered_2t_ns = 0;
	nr_pages = TB_MIN(nr_pages, ram_pages / 2);
	if (!nr_pages)
		return 0;
	rc = ensure_buffers(ram_bytes, nr_pages);
	if (rc)
		goto out;
	pfns = malloc(nr_pages * sizeof(*pfns));
	if (!pfns) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_barrier_init(&w.start, NULL, 2);
	pthread_barrier_init(&w.done, NULL, 2);
	w.pfns = pfns;
	w.from = nr_pages / 2;
	w.to = nr_pages;
	if (pthread_create(&w.thr, NULL, worker_main, &w)) {
		rc = -EAGAIN;
		goto out_barrier;
	}
	for (i = 0; i < REPS; i++) {
		uint64_t off = rng() % (ram_pages - nr_pages + 1);
		int64_t t;

		rc = pick_pfns(pfns, nr_pages, ram_pages);
		if (rc)
			break;
		evict_caches();
		t = tb_now_ns();
		memcpy(dst, src + off * PS, nr_pages * PS);
		t_mc[i] = (double)(tb_now_ns() - t);

		evict_caches();
		t = tb_now_ns();
		copy_range(pfns, 0, nr_pages);
		t_s1[i] = (double)(tb_now_ns() - t);

		rc = pick_pfns(pfns, nr_pages, ram_pages);
		if (rc)
			break;
		evict_caches();
		t = tb_now_ns();
		pthread_barrier_wait(&w.start);
		copy_range(pfns, 0, nr_pages / 2);
		pthread_barrier_wait(&w.done);
		t_s2[i] = (double)(tb_now_ns() - t);
	}
	w.quit = true;
	pthread_barrier_wait(&w.start);
	pthread_join(w.thr, NULL);
	if (!rc) {
		res->copy_memcpy_ns = median(t_mc, REPS);
		res->copy_scattered_1t_ns = median(t_s1, REPS);
		res->copy_scattered_2t_ns = median(t_s2, REPS);
		/* the bound is the better of the two ways to copy */
		res->copy_scattered_ns = TB_MIN(res->copy_scattered_1t_ns,
						res->copy_scattered_2t_ns);
	}
out_barrier:
	pthread_barrier_destroy(&w.start);
	pthread_barrier_destroy(&w.done);
out:
	free(pfns);
	/* a 4 GiB source must not sit beside the next run's guest */
	if (src_bytes > KEEP_SRC_MAX) {
		munmap(src, src_bytes);
		src = NULL;
		src_bytes = 0;
	}
	return rc;
}
