// SPDX-License-Identifier: MIT
/*
 * Guest memory of the Xen backend: the mapping of the guest's pages, the
 * PV p2m/m2p, log-dirty, harvesting dirty pages, copying them and the
 * normalisation of copied PV page tables.
 *
 * Invariants:
 *  - Guest memory is mapped once at attach (in chunks, by mfn for PV, by
 *    gfn for HVM/PVH); a PV page whose p2m entry changed since is
 *    remapped alone.  copy_pages is a memcpy from that mapping, split
 *    over the copy threads (copy_pool.c).
 *  - Log-dirty is on from attach to detach; one CLEAN at attach makes
 *    "all pages start clean" true.
 *  - d->minfo.pfn_type is kept current for every copied PV page
 *    (xen_state.c writes it into the device blob).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "xen_priv.h"
#include "xen_util.h"

/*
 * Exported by libxenctrl 4.17 (symbol version VERS_4.17.0) but declared
 * only in its private xc_private.h: the page types of a batch of mfns
 * (XEN_DOMCTL_getpageframeinfo3).  Xen's own save code uses it per batch;
 * we need it to find the PV page-table pages among the dirty ones.
 */
int xc_get_pfn_type_batch(xc_interface *xch, uint32_t dom, unsigned int num,
			  xen_pfn_t *arr);

#define CHUNK_PAGES 16384u /* 64 MiB of guest memory per mapping */
#define TYPE_BATCH  1024u
#define INVALID_PFN (~(uint64_t)0)

/* ------------------------------------------------------------ memory map */

static int map_chunk(struct tb_dom *d, size_t c)
{
	uint64_t first = (uint64_t)c * CHUNK_PAGES;
	size_t n = (size_t)TB_MIN((uint64_t)CHUNK_PAGES, d->nr_gpfns - first);
	xen_pfn_t *arr;
	int *err;
	size_t i;
	void *p;
	int rc = 0;

	arr = malloc(n * sizeof(*arr));
	err = calloc(n, sizeof(*err));
	if (!arr || !err) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		uint64_t pfn = first + i;

		if (d->kind == KIND_PV) {
			uint64_t mfn = pfn < d->minfo.p2m_size ?
					       d->minfo.p2m_table[pfn] :
					       INVALID_PFN;
			/* An unmappable entry: the mmap batch reports it. */
			arr[i] = mfn;
			d->mapped_mfn[pfn] = mfn;
		} else {
			arr[i] = pfn;
		}
	}
	p = xenforeignmemory_map(d->fmem, d->domid, PROT_READ, n, arr, err);
	if (!p) {
		rc = -errno;
		goto out;
	}
	d->chunks[c] = p;
	for (i = 0; i < n; i++) {
		if (err[i]) {
			tb_bitmap_set(&d->holes, first + i);
			if (d->kind == KIND_PV)
				d->mapped_mfn[first + i] = INVALID_PFN;
		}
	}
out:
	free(arr);
	free(err);
	return rc;
}

static int map_memory(struct tb_dom *d)
{
	size_t c;
	int rc;

	d->nr_chunks = (size_t)((d->nr_gpfns + CHUNK_PAGES - 1) / CHUNK_PAGES);
	d->chunks = calloc(d->nr_chunks, sizeof(*d->chunks));
	if (!d->chunks)
		return -ENOMEM;
	rc = tb_bitmap_init(&d->holes, d->nr_gpfns);
	if (rc)
		return rc;
	if (d->kind == KIND_PV) {
		d->mapped_mfn = calloc(d->nr_gpfns, sizeof(*d->mapped_mfn));
		if (!d->mapped_mfn)
			return -ENOMEM;
	}
	for (c = 0; c < d->nr_chunks; c++) {
		rc = map_chunk(d, c);
		if (rc) {
			tb_backend_set_reason(
				"dom%u: map guest memory chunk %zu: %s",
				d->domid, c, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void unmap_memory(struct tb_dom *d)
{
	size_t c;

	for (c = 0; d->chunks && c < d->nr_chunks; c++) {
		uint64_t first = (uint64_t)c * CHUNK_PAGES;
		size_t n = (size_t)TB_MIN((uint64_t)CHUNK_PAGES,
					  d->nr_gpfns - first);

		if (d->chunks[c])
			xenforeignmemory_unmap(d->fmem, d->chunks[c], n);
	}
	free(d->chunks);
	d->chunks = NULL;
	free(d->mapped_mfn);
	d->mapped_mfn = NULL;
	tb_bitmap_free(&d->holes);
}

/* Map @pfn (as @frame) alone over its slot of the chunk (MAP_FIXED). */
static void remap_one(struct tb_dom *d, uint64_t pfn, xen_pfn_t frame)
{
	size_t c = (size_t)(pfn / CHUNK_PAGES);
	uint8_t *p = d->chunks[c] + (pfn % CHUNK_PAGES) * TB_PAGE_SIZE;
	int err = 0;

	if (!xenforeignmemory_map2(d->fmem, d->domid, p, PROT_READ, MAP_FIXED,
				   1, &frame, &err) ||
	    err)
		tb_bitmap_set(&d->holes, pfn);
	else
		tb_bitmap_clear(&d->holes, pfn);
}

/*
 * Address of @pfn in our mapping, or NULL if there is no page there (it
 * reads as zeros).  Only reads: the copy threads call it at once.  For
 * HVM/PVH a hole is retried only when log-dirty reports a write to it
 * (harvest_dirty): a gfn populated but never written is zero, and
 * retrying the ~980 000 holes of a PVH gfn space on every full copy would
 * cost a syscall each.
 */
static const uint8_t *mapped_page(void *ctx, uint64_t pfn)
{
	const struct tb_dom *d = ctx;

	if (tb_bitmap_test(&d->holes, pfn))
		return NULL;
	return d->chunks[pfn / CHUNK_PAGES] +
	       (pfn % CHUNK_PAGES) * TB_PAGE_SIZE;
}

/* PV: a p2m entry that changed since the mapping was made (ballooning,
 * page exchange) is remapped alone, before the copy. */
static void pv_follow_p2m(struct tb_dom *d, uint64_t pfn)
{
	uint64_t mfn = pfn < d->minfo.p2m_size ? d->minfo.p2m_table[pfn] :
						 INVALID_PFN;

	if (mfn != d->mapped_mfn[pfn]) {
		d->mapped_mfn[pfn] = mfn;
		remap_one(d, pfn, mfn);
	}
}

/* HVM/PVH: holes the guest wrote to are mapped now (see page_ptr). */
static void remap_dirty_holes(struct tb_dom *d, const uint64_t *bm)
{
	uint64_t w, nw = (d->nr_gpfns + 63) / 64;

	for (w = 0; w < nw; w++) {
		uint64_t hit = bm[w] & d->holes.words[w];

		while (hit) {
			unsigned b = (unsigned)__builtin_ctzll(hit);
			uint64_t pfn = w * 64 + b;

			hit &= hit - 1;
			if (pfn < d->nr_gpfns)
				remap_one(d, pfn, pfn);
		}
	}
}

/*
 * PV: the pfns of the frames holding the guest's p2m, from the list the
 * guest publishes in shared_info (arch.pfn_to_mfn_frame_list_list -> up to
 * 512 frame-list frames -> the p2m frames), as a PV restore needs them
 * (X86_PV_P2M_FRAMES: it rewrites them with the new host's frames).
 * Read once at attach: guests move their p2m only across a restore.
 */
static int pv_read_p2m_frames(struct tb_dom *d)
{
	const size_t fpp = TB_PAGE_SIZE / sizeof(xen_pfn_t);
	size_t n = (d->minfo.p2m_size + fpp - 1) / fpp;
	size_t nfl = (n + fpp - 1) / fpp;
	xen_pfn_t f = d->shared_info_frame, fll_mfn, fl_mfns[TB_PAGE_SIZE / 8];
	const shared_info_t *sh;
	const xen_pfn_t *fl = NULL;
	int rc = 0;

	if (!n || nfl > fpp)
		return -EINVAL;
	sh = xenforeignmemory_map(d->fmem, d->domid, PROT_READ, 1, &f, NULL);
	if (!sh)
		return -errno;
	fll_mfn = sh->arch.pfn_to_mfn_frame_list_list;
	xenforeignmemory_unmap(d->fmem, (void *)sh, 1);
	if (!fll_mfn || fll_mfn >= d->m2p_size) {
		tb_backend_set_reason(
			"dom%u: the guest publishes no p2m frame list (shared_info arch.pfn_to_mfn_frame_list_list = %#lx): a PV restore could not rebuild its p2m",
			d->domid, fll_mfn);
		return -ENOTSUP;
	}
	f = fll_mfn;
	fl = xenforeignmemory_map(d->fmem, d->domid, PROT_READ, 1, &f, NULL);
	if (!fl)
		return -errno;
	memcpy(fl_mfns, fl, nfl * sizeof(*fl));
	xenforeignmemory_unmap(d->fmem, (void *)fl, 1);
	fl = xenforeignmemory_map(d->fmem, d->domid, PROT_READ, nfl, fl_mfns,
				  NULL);
	if (!fl)
		return -errno;
	d->p2m_frames = calloc(n, sizeof(*d->p2m_frames));
	if (!d->p2m_frames) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (tb_xen_mfn_to_pfn(fl[i], d->m2p, d->m2p_size,
				      d->minfo.p2m_table, d->minfo.p2m_size,
				      &d->p2m_frames[i])) {
			tb_backend_set_reason(
				"dom%u: p2m frame %zu (mfn %#lx) is not the guest's",
				d->domid, i, fl[i]);
			rc = -ERANGE;
			goto out;
		}
	d->nr_p2m_frames = n;
out:
	xenforeignmemory_unmap(d->fmem, (void *)fl, nfl);
	return rc;
}

/* ------------------------------------------------------------ attach */

/* Attach, memory side: log-dirty on; the bitmap is sized from the gpfn
 * space, not RAM. */
static int logdirty_enable(struct tb_dom *d)
{
	int rc;

	d->dirty_bm_pages = (unsigned)((TB_ALIGN_UP(d->nr_gpfns, 64) / 8 +
					TB_PAGE_SIZE - 1) /
				       TB_PAGE_SIZE);
	d->dirty_bm = xc__hypercall_buffer_alloc_pages(d->xch, &d->dirty_hbuf,
						       (int)d->dirty_bm_pages);
	if (!d->dirty_bm) {
		rc = -ENOMEM;
		tb_backend_set_reason("dom%u: hypercall buffer of %u pages",
				      d->domid, d->dirty_bm_pages);
		return rc;
	}
	if (xc_shadow_control(d->xch, d->domid,
			      XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0)) {
		rc = -errno;
		tb_backend_set_reason(
			"dom%u: enable log-dirty: %s%s", d->domid,
			strerror(-rc),
			d->kind == KIND_PV && rc == -EOPNOTSUPP ?
				" (PV log-dirty needs a hypervisor with CONFIG_SHADOW_PAGING)" :
			rc == -EBUSY || rc == -EEXIST || rc == -EINVAL ?
				" (already on? another tool such as xl remus or migration, or a tiberd killed by SIGKILL: tiberctl recover)" :
				"");
		return rc;
	}
	d->logdirty = true;
	return 0;
}

/* Attach, memory side, PV: the live p2m and the host's m2p. */
static int pv_map_p2m(struct tb_dom *d)
{
	unsigned long max_mfn;
	int rc;

	if (xc_map_domain_meminfo(d->xch, d->domid, &d->minfo)) {
		rc = -errno;
		tb_backend_set_reason("dom%u: map p2m: %s", d->domid,
				      xc_last(d));
		return rc;
	}
	if (xc_maximum_ram_page(d->xch, &max_mfn)) {
		rc = -errno;
		tb_backend_set_reason("xc_maximum_ram_page: %s", xc_last(d));
		return rc;
	}
	d->m2p = xc_map_m2p(d->xch, max_mfn, PROT_READ, NULL);
	if (!d->m2p) {
		rc = errno ? -errno : -ENOMEM;
		tb_backend_set_reason("map m2p: %s", xc_last(d));
		return rc;
	}
	d->m2p_size = max_mfn; /* entries mapped: see detach */
	return 0;
}

/* Attach, memory side: start with every page clean (contract of attach). */
static int logdirty_first_clean(struct tb_dom *d)
{
	DECLARE_HYPERCALL_BUFFER_SHADOW(uint64_t, bm, &d->dirty_hbuf);
	xc_shadow_op_stats_t ss;
	int rc;

	if (xc_logdirty_control(d->xch, d->domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
				HYPERCALL_BUFFER(bm), d->nr_gpfns, 0,
				&ss) < 0) {
		rc = -errno;
		tb_backend_set_reason("dom%u: first log-dirty clean: %s",
				      d->domid, xc_last(d));
		return rc;
	}
	/* Holes written while we were mapping. */
	if (d->kind != KIND_PV)
		remap_dirty_holes(d, bm);
	return 0;
}

/*
 * Attach, step 5: log-dirty on, the p2m and m2p (PV), guest memory
 * mapped, the p2m frames read (PV), every page clean.
 */
int tb_xen_mem_attach(struct tb_dom *d, unsigned copy_threads)
{
	int rc;

	rc = logdirty_enable(d);
	if (rc)
		return rc;
	if (d->kind == KIND_PV) {
		rc = pv_map_p2m(d);
		if (rc)
			return rc;
	}
	d->fmem = xenforeignmemory_open(NULL, 0);
	if (!d->fmem) {
		rc = -errno;
		tb_backend_set_reason("xenforeignmemory_open: %s",
				      strerror(-rc));
		return rc;
	}
	rc = map_memory(d);
	if (rc)
		return rc;
	if (d->kind == KIND_PV) {
		rc = pv_read_p2m_frames(d);
		if (rc)
			return rc;
		d->types_changed = true;
	}
	rc = tb_copy_pool_start_paged(
		&d->pool, copy_threads ? copy_threads - 1 : 1, mapped_page, d);
	if (rc) {
		tb_backend_set_reason("copy threads: %s", strerror(-rc));
		return rc;
	}
	return logdirty_first_clean(d);
}

/* ------------------------------------------------------------ the epoch */

int tb_xen_harvest_dirty(struct tb_dom *d, struct tb_bitmap *out)
{
	DECLARE_HYPERCALL_BUFFER_SHADOW(uint64_t, bm, &d->dirty_hbuf);
	xc_shadow_op_stats_t ss;

	if (out->nbits < d->nr_gpfns)
		return -EINVAL; /* pages past the end would be lost */
	if (xc_logdirty_control(d->xch, d->domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
				HYPERCALL_BUFFER(bm), d->nr_gpfns, 0, &ss) < 0)
		return -errno;
	tb_xen_bitmap_merge(out->words, out->nbits, bm, d->nr_gpfns);
	if (d->kind != KIND_PV)
		remap_dirty_holes(d, bm);
	d->st.dirty_harvests++;
	return 0;
}

/* Normalise the page-table pages among @n copied PV pages in @dst. */
static int pv_normalise(struct tb_dom *d, const uint64_t *pfns, size_t n,
			uint8_t *dst)
{
	size_t i, j;
	int rc;

	if (d->types_cap < TYPE_BATCH) {
		d->types = calloc(TYPE_BATCH, sizeof(*d->types));
		if (!d->types)
			return -ENOMEM;
		d->types_cap = TYPE_BATCH;
	}
	for (i = 0; i < n; i += TYPE_BATCH) {
		size_t m = TB_MIN((size_t)TYPE_BATCH, n - i);

		for (j = 0; j < m; j++)
			d->types[j] = d->mapped_mfn[pfns[i + j]];
		if (xc_get_pfn_type_batch(d->xch, d->domid, (unsigned)m,
					  d->types))
			return -errno;
		for (j = 0; j < m; j++) {
			uint64_t pfn = pfns[i + j];
			unsigned long t = d->types[j] &
					  XEN_DOMCTL_PFINFO_LTABTYPE_MASK;
			unsigned level = t >> XEN_DOMCTL_PFINFO_LTAB_SHIFT;
			unsigned bad = 0;

			if (pfn < d->minfo.p2m_size &&
			    d->minfo.pfn_type[pfn] !=
				    (d->types[j] &
				     XEN_DOMCTL_PFINFO_LTAB_MASK)) {
				d->minfo.pfn_type[pfn] =
					d->types[j] &
					XEN_DOMCTL_PFINFO_LTAB_MASK;
				d->types_changed = true;
			}
			if (d->mapped_mfn[pfns[i + j]] == INVALID_PFN ||
			    level < 1 || level > 4)
				continue;
			rc = tb_xen_pt_normalise(
				(uint64_t *)(dst + (i + j) * TB_PAGE_SIZE),
				level, d->m2p, d->m2p_size, d->minfo.p2m_table,
				d->minfo.p2m_size, &bad);
			if (rc && d->suspended) {
				tb_backend_set_reason(
					"dom%u: pfn %#" PRIx64 " L%u[%u]: %s",
					d->domid, pfns[i + j], level, bad,
					rc == -ERANGE ?
						"mfn not the guest's (grant/I/O mapping)" :
						"superpage");
				return rc;
			}
			/* Running (pre-copy): torn tables are re-sent. */
		}
	}
	return 0;
}

int tb_xen_copy_pages(struct tb_dom *d, const uint64_t *pfns, size_t n,
		      void *dst)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (pfns[i] >= d->nr_gpfns)
			return -EINVAL;
		if (d->kind == KIND_PV)
			pv_follow_p2m(d, pfns[i]);
	}
	tb_copy_pool_copy(&d->pool, pfns, n, dst);
	d->st.pages_copied += n;
	if (d->kind == KIND_PV)
		return pv_normalise(d, pfns, n, dst);
	return 0;
}

/* ------------------------------------------------------------ detach */

/* Detach: guest memory unmapped, the p2m, m2p and dirty bitmap freed. */
void tb_xen_mem_detach(struct tb_dom *d)
{
	tb_copy_pool_stop(&d->pool);
	if (d->fmem) {
		unmap_memory(d);
		xenforeignmemory_close(d->fmem);
	}
	/*
	 * libxenguest maps max_mfn entries (its M2P_SIZE() means to round
	 * up to 2 MiB but its shift-by-size makes that a no-op): unmap no
	 * more than that, or the next mapping (libraries, TLS) goes too.
	 */
	if (d->m2p)
		munmap(d->m2p, TB_ALIGN_UP(d->m2p_size * sizeof(xen_pfn_t),
					   (size_t)TB_PAGE_SIZE));
	if (d->minfo.p2m_table)
		xc_unmap_domain_meminfo(d->xch, &d->minfo);
	if (d->dirty_bm)
		xc__hypercall_buffer_free_pages(d->xch, &d->dirty_hbuf,
						(int)d->dirty_bm_pages);
}
