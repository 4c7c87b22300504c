/* SPDX-License-Identifier: MIT */
/*
 * uapi definitions newer than Debian 12's 6.1 headers: userfaultfd
 * write-protect async (6.7) and the PAGEMAP_SCAN ioctl (6.7).  Values as
 * in the kernel's include/uapi/linux/{userfaultfd,fs}.h, checked against
 * the measured probe (notes/probes/probe.h).  Used by the simulated guest
 * and lib/backend/sim_dirty.c only.
 */
#ifndef TIBER_SIM_UAPI_H
#define TIBER_SIM_UAPI_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/userfaultfd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start;
	uint64_t end;
	uint64_t categories;
};

struct pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end;
	uint64_t vec;
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};
_Static_assert(sizeof(struct pm_scan_arg) == 96, "uapi pm_scan_arg");

#define PAGEMAP_SCAN	      _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WPALLOWED     (1 << 0)
#define PAGE_IS_WRITTEN	      (1 << 1)
#define PAGE_IS_FILE	      (1 << 2)
#define PAGE_IS_PRESENT	      (1 << 3)
#define PAGE_IS_SWAPPED	      (1 << 4)
#define PAGE_IS_PFNZERO	      (1 << 5)
#define PAGE_IS_HUGE	      (1 << 6)
#define PAGE_IS_SOFT_DIRTY    (1 << 7)
#define PM_SCAN_WP_MATCHING   (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#endif
