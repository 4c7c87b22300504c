// SPDX-License-Identifier: MIT
/*
 * In-process fake backend for unit tests (see tiber/fake.h).
 * Suspend = the writers' rwlock taken for writing; resume = released.
 * Copy-on-write: an armed page is copied by the write that would change
 * it (under the lock), the rest at cow_finish.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tiber/fake.h"
#include "tiber/stream.h"

struct fake_priv {
	pthread_rwlock_t guest; /* writers hold it shared */
	pthread_mutex_t lock;
	struct tb_bitmap dirty;
	bool requested;
	/* fault injection, under lock */
	enum tb_fake_phase fail_phase;
	int fail_rc;
	uint64_t fail_min_writes;
	bool fail_this_pause; /* the armed fault fires in this pause */
	/* copy-on-write, under lock: cow[pfn] = list index + 1 while armed
	 * and not copied yet */
	uint32_t *cow;
	const uint64_t *cow_pfns;
	size_t cow_n;
	uint8_t *cow_dst;
	bool armed;
	size_t cow_prepared; /* head of cow_pfns given to cow_prepare */
	uint64_t late_writes;
};

static struct tb_fake *the_fake;

int tb_fake_create(struct tb_fake **out, uint64_t nr_pages)
{
	struct tb_fake *f = calloc(1, sizeof(*f));
	struct fake_priv *p = calloc(1, sizeof(*p));

	if (!f || !p)
		goto fail;
	f->nr_pages = nr_pages;
	f->ram = mmap(NULL, nr_pages * TB_PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p->cow = calloc(nr_pages, sizeof(*p->cow));
	if (f->ram == MAP_FAILED || !p->cow ||
	    tb_bitmap_init(&p->dirty, nr_pages))
		goto fail;
	pthread_rwlock_init(&p->guest, NULL);
	pthread_mutex_init(&p->lock, NULL);
	f->priv = p;
	the_fake = f;
	*out = f;
	return 0;
fail:
	if (f && f->ram && f->ram != MAP_FAILED)
		munmap(f->ram, nr_pages * TB_PAGE_SIZE);
	if (p)
		free(p->cow);
	free(p);
	free(f);
	return -ENOMEM;
}

void tb_fake_destroy(struct tb_fake *f)
{
	struct fake_priv *p = f->priv;

	munmap(f->ram, f->nr_pages * TB_PAGE_SIZE);
	tb_bitmap_free(&p->dirty);
	free(p->cow);
	pthread_rwlock_destroy(&p->guest);
	pthread_mutex_destroy(&p->lock);
	free(p);
	if (the_fake == f)
		the_fake = NULL;
	free(f);
}

/* Under p->lock: copy @pfn into the armed staging if it is still due. */
static void cow_copy(struct fake_priv *p, struct tb_fake *f, uint64_t pfn)
{
	uint32_t slot = p->cow[pfn];

	if (!slot)
		return;
	memcpy(p->cow_dst + (size_t)(slot - 1) * TB_PAGE_SIZE,
	       f->ram + pfn * TB_PAGE_SIZE, TB_PAGE_SIZE);
	p->cow[pfn] = 0;
}

void tb_fake_write(struct tb_fake *f, uint64_t pfn, uint32_t off, uint8_t val)
{
	struct fake_priv *p = f->priv;

	pthread_rwlock_rdlock(&p->guest);
	pthread_mutex_lock(&p->lock);
	cow_copy(p, f, pfn); /* before the write changes it */
	f->ram[pfn * TB_PAGE_SIZE + off] = val;
	tb_bitmap_set(&p->dirty, pfn);
	f->writes++;
	pthread_mutex_unlock(&p->lock);
	pthread_rwlock_unlock(&p->guest);
}

void tb_fake_fail_at(struct tb_fake *f, enum tb_fake_phase phase, int rc,
		     uint64_t min_writes)
{
	struct fake_priv *p = f->priv;

	pthread_mutex_lock(&p->lock);
	p->fail_phase = phase;
	p->fail_rc = rc;
	p->fail_min_writes = min_writes;
	pthread_mutex_unlock(&p->lock);
}

/* The injected error of @phase in this pause, once; else 0. */
static int injected(struct tb_fake *f, enum tb_fake_phase phase)
{
	struct fake_priv *p = f->priv;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	/* the copy of mode cow runs after the resume, in the same epoch */
	if ((f->suspended || phase == TB_FAKE_COW_FINISH) &&
	    p->fail_this_pause && p->fail_phase == phase) {
		rc = p->fail_rc;
		p->fail_phase = TB_FAKE_NONE;
		p->fail_this_pause = false;
		f->faults++;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void tb_fake_quiesce(struct tb_fake *f, void (*fn)(void *), void *arg)
{
	struct fake_priv *p = f->priv;

	pthread_rwlock_wrlock(&p->guest);
	fn(arg);
	pthread_rwlock_unlock(&p->guest);
}

static int fake_attach(struct tb_dom **out, const struct tb_dom_cfg *cfg)
{
	struct tb_fake *f = the_fake;

	if (!f)
		return -ENODEV;
	if (f->no_suspend_cancel && !cfg->allow_slow_resume) {
		tb_backend_set_reason(
			"guest does not advertise SUSPEND_CANCEL");
		return -EPERM;
	}
	f->attached = true;
	*out = (struct tb_dom *)f;
	return 0;
}

static void fake_get_info(struct tb_dom *d, struct tb_dom_info *info)
{
	struct tb_fake *f = (struct tb_fake *)d;

	memset(info, 0, sizeof(*info));
	info->domid = 1;
	strcpy(info->name, "fake");
	strcpy(info->kind, "fake");
	strcpy(info->dirty_mech, "fake-log");
	info->nr_pages = f->nr_pages;
	info->nr_vcpus = 1;
	info->state_tag = TB_STATE_SIM;
	info->suspend_mode = TB_SUSPEND_EVTCHN;
	info->suspend_cancel = !f->no_suspend_cancel;
	info->can_cow = true;
}

static int fake_request_suspend(struct tb_dom *d)
{
	struct tb_fake *f = (struct tb_fake *)d;
	struct fake_priv *p = f->priv;

	if (f->dead)
		return -ESRCH;
	if (f->late_write_pages) {
		uint64_t k = p->late_writes++;

		tb_fake_write(f, f->nr_pages - 1 - k % f->late_write_pages,
			      (uint32_t)(k % TB_PAGE_SIZE), (uint8_t)(k + 1));
	}
	p->requested = true;
	return 0;
}

static int fake_await(struct tb_dom *d, int64_t deadline_ns)
{
	struct tb_fake *f = (struct tb_fake *)d;
	struct fake_priv *p = f->priv;

	if (!p->requested)
		return -EINVAL;
	p->requested = false;
	if (f->ignore_suspend) {
		tb_sleep_until(deadline_ns);
		f->timeouts++;
		return -ETIMEDOUT;
	}
	pthread_rwlock_wrlock(&p->guest);
	f->suspended = true;
	f->suspends++;
	pthread_mutex_lock(&p->lock);
	p->fail_this_pause = p->fail_phase != TB_FAKE_NONE &&
			     f->writes >= p->fail_min_writes;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int fake_harvest(struct tb_dom *d, struct tb_bitmap *out)
{
	struct tb_fake *f = (struct tb_fake *)d;
	struct fake_priv *p = f->priv;
	int rc = injected(f, TB_FAKE_HARVEST);

	if (rc)
		return rc; /* the bitmap stays, like a failed CLEAN op */
	pthread_mutex_lock(&p->lock);
	tb_bitmap_or(out, &p->dirty);
	tb_bitmap_clear_all(&p->dirty);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int fake_copy(struct tb_dom *d, const uint64_t *pfns, size_t n,
		     void *dst)
{
	struct tb_fake *f = (struct tb_fake *)d;
	int rc = injected(f, TB_FAKE_COPY);
	size_t i;

	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		if (pfns[i] >= f->nr_pages)
			return -EINVAL;
		memcpy((uint8_t *)dst + i * TB_PAGE_SIZE,
		       f->ram + pfns[i] * TB_PAGE_SIZE, TB_PAGE_SIZE);
	}
	return 0;
}

/* Ascending, all < nr_pages. */
static bool fake_ascending(struct tb_fake *f, const uint64_t *pfns, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pfns[i] >= f->nr_pages || (i && pfns[i] <= pfns[i - 1]))
			return false;
	return true;
}

/* The contract of cow_arm's list (backend.h): ascending, or the head
 * given to cow_prepare then ascending pages none of which is in it. */
static bool fake_cow_list_ok(struct tb_fake *f, const uint64_t *pfns, size_t n,
			     const void *dst)
{
	struct fake_priv *p = f->priv;
	size_t head = p->cow_prepared, i, lo, hi;

	if (!head || pfns != p->cow_pfns || dst != p->cow_dst || n < head)
		return fake_ascending(f, pfns, n);
	if (!fake_ascending(f, pfns + head, n - head))
		return false;
	for (i = head; i < n; i++) { /* not in the head: binary search */
		for (lo = 0, hi = head; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;

			if (pfns[mid] < pfns[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < head && pfns[lo] == pfns[i])
			return false;
	}
	return true;
}

static int fake_cow_prepare(struct tb_dom *d, const uint64_t *pfns, size_t n,
			    void *dst)
{
	struct tb_fake *f = (struct tb_fake *)d;
	struct fake_priv *p = f->priv;

	pthread_mutex_lock(&p->lock);
	p->cow_prepared = 0;
	if (p->armed || !fake_ascending(f, pfns, n)) {
		pthread_mutex_unlock(&p->lock);
		tb_backend_set_reason("fake: cow_prepare %s",
				      p->armed ? "while armed" : "bad list");
		return -EINVAL;
	}
	p->cow_pfns = pfns;
	p->cow_dst = dst;
	p->cow_prepared = n;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int fake_cow_arm(struct tb_dom *d, const uint64_t *pfns, size_t n,
			void *dst)
{
	struct tb_fake *f = (struct tb_fake *)d;
	struct fake_priv *p = f->priv;
	int rc = injected(f, TB_FAKE_COPY);
	size_t i;

	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	if (!f->suspended || p->armed) {
		pthread_mutex_unlock(&p->lock);
		tb_backend_set_reason("fake: cow_arm %s",
				      p->armed ? "twice" : "while running");
		return -EINVAL;
	}
	if (!fake_cow_list_ok(f, pfns, n, dst)) {
		p->cow_prepared = 0;
		pthread_mutex_unlock(&p->lock);
		tb_backend_set_reason("fake: cow_arm: bad pfn list");
		return -EINVAL;
	}
	p->cow_prepared = 0;
	for (i = 0; i < n; i++)
		p->cow[pfns[i]] = (uint32_t)i + 1;
	p->cow_pfns = pfns;
	p->cow_n = n;
	p->cow_dst = dst;
	p->armed = true;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* Copies what is still due even when it fails (a failed copy is an
 * epoch lost, never a staging buffer written later). */
static int fake_cow_finish(struct tb_dom *d)
{
	struct tb_fake *f = (struct tb_fake *)d;
	struct fake_priv *p = f->priv;
	int rc = injected(f, TB_FAKE_COW_FINISH);
	size_t i;

	pthread_mutex_lock(&p->lock);
	if (!p->armed) {
		pthread_mutex_unlock(&p->lock);
		tb_backend_set_reason("fake: cow_finish while not armed");
		return -EINVAL;
	}
	for (i = 0; i < p->cow_n; i++)
		cow_copy(p, f, p->cow_pfns[i]);
	p->armed = false;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int fake_save_cpu(struct tb_dom *d, struct tb_buf *out)
{
	struct tb_fake *f = (struct tb_fake *)d;
	int rc = injected(f, TB_FAKE_CPU);

	return rc ? rc : tb_buf_append(out, &f->writes, sizeof(f->writes));
}

static int fake_save_dev(struct tb_dom *d, struct tb_buf *out)
{
	int rc = injected((struct tb_fake *)d, TB_FAKE_DEV);

	return rc ? rc : tb_buf_append(out, "fake-dev", 8);
}

static int fake_boundary(struct tb_dom *d, uint64_t epoch)
{
	int rc = injected((struct tb_fake *)d, TB_FAKE_BOUNDARY);

	if (!rc)
		((struct tb_fake *)d)->boundary_epoch = epoch;
	return rc;
}

static int fake_release(struct tb_dom *d, uint64_t epoch)
{
	__atomic_store_n(&((struct tb_fake *)d)->released_epoch, epoch,
			 __ATOMIC_RELEASE);
	return 0;
}

static int fake_gated(struct tb_dom *d, bool gated)
{
	((struct tb_fake *)d)->gated = gated;
	return 0;
}

static int fake_resume(struct tb_dom *d, bool fast)
{
	struct tb_fake *f = (struct tb_fake *)d;
	struct fake_priv *p = f->priv;

	int rc;

	if (!f->suspended)
		return -EINVAL;
	rc = injected(f, TB_FAKE_RESUME);
	if (rc)
		return rc;
	f->suspended = false;
	if (fast)
		f->fast_resumes++;
	else
		f->slow_resumes++;
	pthread_rwlock_unlock(&p->guest);
	return 0;
}

static int fake_health(struct tb_dom *d)
{
	return ((struct tb_fake *)d)->dead ? -ESRCH : 0;
}

static void fake_stats(struct tb_dom *d, struct tb_dom_stats *st)
{
	struct tb_fake *f = (struct tb_fake *)d;

	memset(st, 0, sizeof(*st));
	st->suspends = f->suspends;
	st->suspend_timeouts = f->timeouts;
	st->fast_resumes = f->fast_resumes;
	st->slow_resumes = f->slow_resumes;
}

static int fake_destroy(struct tb_dom *d)
{
	struct tb_fake *f = (struct tb_fake *)d;

	f->destroyed = true;
	f->dead = true;
	f->suspended = false;
	return 0;
}

static void fake_detach(struct tb_dom *d)
{
	struct tb_fake *f = (struct tb_fake *)d;

	if (f->suspended)
		fake_resume(d, true);
	if (!f->destroyed)
		f->gated = false; /* a destroyed guest's output never goes */
	f->attached = false;
}

static int fake_restore(const struct tb_restore_req *req,
			struct tb_restore_res *res)
{
	tb_backend_set_reason("the fake backend cannot restore");
	return -ENOTSUP;
}

const struct tb_backend_ops tb_backend_fake_ops = {
	.name = "fake",
	.attach = fake_attach,
	.get_info = fake_get_info,
	.request_suspend = fake_request_suspend,
	.await_suspended = fake_await,
	.harvest_dirty = fake_harvest,
	.copy_pages = fake_copy,
	.cow_prepare = fake_cow_prepare,
	.cow_arm = fake_cow_arm,
	.cow_finish = fake_cow_finish,
	.save_cpu_state = fake_save_cpu,
	.save_device_state = fake_save_dev,
	.output_boundary = fake_boundary,
	.output_release = fake_release,
	.output_set_gated = fake_gated,
	.resume = fake_resume,
	.check_health = fake_health,
	.get_stats = fake_stats,
	.destroy = fake_destroy,
	.detach = fake_detach,
	.restore = fake_restore,
};
