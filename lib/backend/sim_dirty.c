// SPDX-License-Identifier: MIT
/*
 * The sim backend's dirty tracking: which guest pages were written since
 * the last harvest.  Three mechanisms, picked at attach (dirty_mech):
 *   uffd-wp+pagemap      the guest registered its RAM with userfaultfd
 *                        write-protect (async); PAGEMAP_SCAN reports the
 *                        written pages and re-protects them in one call
 *   uffd-wp-sync         the guest's writes fault to our thread, which
 *                        marks them (sim_cow.c)
 *   bitmap(cooperative)  the guest marks a bitmap in the control page;
 *                        a harvest takes and clears it word by word
 *
 * Invariants:
 *  - uffd-wp + PAGEMAP_SCAN: a scan call that returned fewer regions than
 *    vec_len walked the whole range; only a full vec continues from
 *    walk_end (the 6.18 walk_end quirk, sim-host-facts 1a).
 *  - a bitmap word is taken with one atomic exchange, so a bit the guest
 *    sets during a harvest is reported now or next time, never lost.
 *  - setup ends with a discarded harvest: tracking starts clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tiber/sim_uapi.h"
#include "sim_priv.h"

#define SCAN_VEC_MAX 65536

/* One PAGEMAP_SCAN pass over RAM: written pages, re-protected.  Sets
 * their bits in @out (may be NULL: discard). */
static int scan_dirty(struct tb_dom *d, struct tb_bitmap *out)
{
	uint64_t start = d->ram_gva, end = d->ram_gva + d->ram_size;
	long r, i;

	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = start,
			.end = end,
			.vec = (uint64_t)(uintptr_t)d->vec,
			.vec_len = d->vec_len,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};

		r = ioctl(d->pagemap_fd, PAGEMAP_SCAN, &a);
		if (r < 0)
			return -errno;
		for (i = 0; out && i < r; i++) {
			uint64_t s = d->vec[i].start, e = d->vec[i].end;

			if (s < d->ram_gva || e > end || s >= e)
				return -EIO;
			tb_bitmap_set_range(out,
					    (s - d->ram_gva) / TB_PAGE_SIZE,
					    (e - s) / TB_PAGE_SIZE);
		}
		/* completion rule: see the invariants at the top */
		if ((uint64_t)r < d->vec_len)
			break;
		if (a.walk_end <= start || a.walk_end > end)
			return -EIO;
		start = a.walk_end;
	}
	return 0;
}

static void harvest_bitmap(struct tb_dom *d, struct tb_bitmap *out)
{
	uint64_t *bm = tb_sim_ctrl_bitmap(d->ctrl);
	size_t i, nw = (size_t)((d->nr_pages + 63) / 64);
	uint64_t v;

	for (i = 0; i < nw; i++) {
		if (!__atomic_load_n(&bm[i], __ATOMIC_RELAXED))
			continue;
		v = __atomic_exchange_n(&bm[i], 0, __ATOMIC_ACQ_REL);
		if (out)
			out->words[i] |= v;
	}
}

int tb_sim_dirty_setup(struct tb_dom *d, const char *want)
{
	char path[64];
	bool sync;
	int rc;

	if (!want || !*want)
		want = "auto";
	if (strcmp(want, "auto") != 0 && strcmp(want, "uffd") != 0 &&
	    strcmp(want, "uffd-sync") != 0 && strcmp(want, "bitmap") != 0) {
		tb_backend_set_reason("sim: unknown dirty_mech '%s'", want);
		return -EINVAL;
	}
	sync = d->uffd >= 0 && (d->ctrl->features & TB_SIM_FEAT_UFFD_SYNC);
	if (!strcmp(want, "uffd-sync") || (!strcmp(want, "auto") && sync)) {
		rc = sync ? tb_sim_sync_setup(d) : -ENOTSUP;
		if (!rc) {
			snprintf(d->mech, sizeof(d->mech), "uffd-wp-sync");
			harvest_bitmap(d, NULL);
			return 0;
		}
		tb_backend_set_reason(
			"sim: uffd-wp sync unavailable: %s",
			sync ? strerror(-rc) :
			       "the guest hands over none (tiber-simguest --dirty-mech uffd-sync)");
		return -ENOTSUP;
	}
	if (strcmp(want, "bitmap") != 0) {
		rc = -ENOTSUP;
		if (d->uffd >= 0 && (d->ctrl->features & TB_SIM_FEAT_UFFD_WP)) {
			snprintf(path, sizeof(path), "/proc/%d/pagemap",
				 (int)d->pid);
			d->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
			rc = d->pagemap_fd < 0 ? -errno : 0;
			d->vec_len = TB_MIN(d->nr_pages / 2 + 1,
					    (uint64_t)SCAN_VEC_MAX);
			d->vec = rc ? NULL :
				      calloc(d->vec_len, sizeof(*d->vec));
			if (!rc && !d->vec)
				rc = -ENOMEM;
			/* capability probe = the first, discarded scan:
			 * everything starts clean */
			if (!rc)
				rc = scan_dirty(d, NULL);
		}
		if (!rc) {
			d->use_uffd = true;
			snprintf(d->mech, sizeof(d->mech), "uffd-wp+pagemap");
			harvest_bitmap(d, NULL);
			return 0;
		}
		if (!strcmp(want, "uffd")) {
			tb_backend_set_reason(
				"sim: uffd-wp async + PAGEMAP_SCAN unavailable: %s",
				strerror(-rc));
			return -ENOTSUP;
		}
		close_fd(&d->pagemap_fd);
	}
	if (!(d->ctrl->features & TB_SIM_FEAT_DIRTY_BITMAP)) {
		tb_backend_set_reason("sim: guest marks no dirty bitmap");
		return -ENOTSUP;
	}
	d->use_uffd = false;
	snprintf(d->mech, sizeof(d->mech), "bitmap(cooperative)");
	harvest_bitmap(d, NULL);
	return 0;
}

int tb_sim_harvest_dirty(struct tb_dom *d, struct tb_bitmap *out)
{
	int rc = 0;

	if (out->nbits < d->nr_pages)
		return -EINVAL;
	if (d->sync)
		rc = tb_sim_sync_harvest(d, out); /* sets the reason */
	else if (d->use_uffd)
		rc = scan_dirty(d, out);
	else
		harvest_bitmap(d, out);
	if (rc && !d->sync)
		tb_backend_set_reason("sim: PAGEMAP_SCAN: %s", strerror(-rc));
	if (!rc)
		stat_inc(d, &d->st.dirty_harvests, 1);
	return rc;
}

int tb_sim_dom_harvest_oracle(struct tb_dom *d, struct tb_bitmap *out)
{
	if (out->nbits < d->nr_pages)
		return -EINVAL;
	harvest_bitmap(d, out);
	return 0;
}
