// SPDX-License-Identifier: MIT
/*
 * Failover's input side: turn tiber's Xen state blobs (xen_blob.h, "TBXN"
 * CPU and device blobs) into the tb_xs_image the stream writer
 * (xen_stream.c) takes.  Pure: no Xen header, no hypercall.
 *
 * Invariants: the blobs come from the peer, so every record is checked
 * before use (lengths, pfns below nr_pages) and a malformed one is
 * -EINVAL, never an assert; a blob set too old to describe the guest is
 * -ENOTSUP with ps->reason naming what is missing.  The image only
 * borrows: its pointers point into the blobs or into @ps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen_blob.h"
#include "xen_stream.h"
#include "xen_stream_priv.h"

static const uint32_t wanted_params[] = {
	1,  /* STORE_PFN */
	5,  /* IOREQ_PFN */
	6,  /* BUFIOREQ_PFN */
	27, /* PAGING_RING_PFN */
	28, /* MONITOR_RING_PFN */
	29, /* SHARING_RING_PFN */
	37, /* VM86_TSS_SIZED */
	17, /* CONSOLE_PFN */
	19, /* ACPI_IOPORTS_LOCATION */
	9,  /* VIRIDIAN */
	12, /* IDENT_PT */
	34, /* VM_GENERATION_ID_ADDR */
	32, /* IOREQ_SERVER_PFN */
	33, /* NR_IOREQ_SERVER_PAGES */
	36, /* X87_FIP_WIDTH */
	38, /* MCA_CAP */
};

bool tb_xs_hvm_param_wanted(uint32_t index)
{
	for (size_t i = 0; i < TB_ARRAY_SIZE(wanted_params); i++)
		if (wanted_params[i] == index)
			return true;
	return false;
}

/* PV CPU blob: one context per vCPU (length 0: offline). */
static int pv_cpu(struct tb_xen_blob *c, struct tb_xs_blobs *ps,
		  struct tb_xs_image *img)
{
	const uint8_t *body;
	uint32_t type, id, len;
	int rc;

	while ((rc = tb_xen_blob_next(c, &type, &id, &body, &len)) == 1) {
		if (type != TB_XEN_BLOB_REC_PV_VCPU)
			continue;
		if (img->nr_vcpus == TB_ARRAY_SIZE(ps->vcpus))
			return -EINVAL;
		ps->vcpus[img->nr_vcpus].id = id;
		ps->vcpus[img->nr_vcpus].basic = body;
		ps->vcpus[img->nr_vcpus].basic_len = len;
		img->nr_vcpus++;
	}
	if (rc < 0 || !img->nr_vcpus || ps->vcpus[0].id != 0 ||
	    !ps->vcpus[0].basic_len)
		return -EINVAL;
	img->vcpus = ps->vcpus;
	return 0;
}

/* A PV device blob record; 0, or -EINVAL if malformed. */
static int pv_dev_rec(uint32_t type, const uint8_t *body, uint32_t len,
		      uint64_t nr_pages, struct tb_xs_blobs *ps,
		      struct tb_xs_image *img)
{
	switch (type) {
	case TB_XEN_BLOB_REC_PV_INFO:
		/* what the primary writes (x86_64 PV only) and the stream
		 * can carry (X86_PV_P2M_FRAMES: a u32 end pfn) */
		if (len != 16 || tb_get_le32(body) != 8 ||
		    tb_get_le32(body + 4) != 4 || !tb_get_le64(body + 8) ||
		    tb_get_le64(body + 8) > 1ull << 32)
			return -EINVAL;
		img->guest_width = 8;
		img->pt_levels = 4;
		img->p2m_end_pfn = tb_get_le64(body + 8) - 1;
		return 0;
	case TB_XEN_BLOB_REC_SHINFO:
		if (len != TB_PAGE_SIZE)
			return -EINVAL;
		img->shared_info = body;
		return 0;
	case TB_XEN_BLOB_REC_PV_TYPES:
		if (len % 8 || ps->pfn_types)
			return -EINVAL;
		ps->pfn_types = calloc(nr_pages, 1);
		if (!ps->pfn_types)
			return -ENOMEM;
		for (uint32_t i = 0; i < len; i += 8) {
			uint64_t e = tb_get_le64(body + i);
			uint64_t pfn = e & TB_XS_PFN_MASK;
			uint8_t t = (uint8_t)(e >> 60);

			if (pfn >= nr_pages || (e >> 52 & 0xff) ||
			    !tb_xs_type_known(t))
				return -EINVAL;
			ps->pfn_types[pfn] = t;
		}
		img->pfn_types = ps->pfn_types;
		return 0;
	case TB_XEN_BLOB_REC_PV_P2M:
		if (len % 8 || !len || ps->p2m_frames)
			return -EINVAL;
		ps->p2m_frames = malloc(len);
		if (!ps->p2m_frames)
			return -ENOMEM;
		for (uint32_t i = 0; i < len; i += 8) {
			ps->p2m_frames[i / 8] = tb_get_le64(body + i);
			if (ps->p2m_frames[i / 8] >= nr_pages)
				return -EINVAL;
		}
		img->p2m_frames = ps->p2m_frames;
		img->nr_p2m_frames = len / 8;
		return 0;
	}
	return 0;
}

/* An HVM/PVH device blob record; 0, or -EINVAL if malformed. */
static int hvm_dev_rec(uint32_t type, uint32_t id, const uint8_t *body,
		       uint32_t len, uint64_t nr_pages, struct tb_xs_blobs *ps,
		       struct tb_xs_image *img)
{
	switch (type) {
	case TB_XEN_BLOB_REC_HVM_PARAM:
		if (len != 8)
			return -EINVAL;
		if (!tb_xs_hvm_param_wanted(id) ||
		    img->nr_params == TB_ARRAY_SIZE(ps->params))
			return 0;
		ps->params[img->nr_params].index = id;
		ps->params[img->nr_params].value = tb_get_le64(body);
		img->nr_params++;
		return 0;
	case TB_XEN_BLOB_REC_HOLES:
		if (len % 16)
			return -EINVAL;
		for (uint32_t i = 0; i < len; i += 16) {
			uint64_t first = tb_get_le64(body + i);
			uint64_t n = tb_get_le64(body + i + 8);

			if (first >= nr_pages || n > nr_pages - first)
				return -EINVAL;
			tb_bitmap_set_range(&ps->holes, first, n);
		}
		img->holes = &ps->holes;
		return 0;
	}
	return 0;
}

/* What a PV image still lacks, or NULL if complete. */
static const char *pv_missing(const struct tb_xs_image *img)
{
	if (!img->guest_width)
		return "PV_INFO";
	if (!img->shared_info)
		return "SHINFO";
	if (!img->pfn_types)
		return "PV_TYPES (page-table types)";
	if (!img->p2m_frames)
		return "PV_P2M (p2m frame list)";
	if ((img->p2m_end_pfn >> 9) + 1 != img->nr_p2m_frames)
		return "a p2m frame list matching the p2m size";
	return NULL;
}

int tb_xs_from_blobs(const void *cpu, size_t cpu_len, const void *dev,
		     size_t dev_len, uint64_t nr_pages, struct tb_xs_blobs *ps,
		     struct tb_xs_image *img)
{
	struct tb_xen_blob c, d;
	const uint8_t *body;
	uint32_t type, id, len;
	const char *missing = NULL;
	bool pv;
	int rc;

	memset(ps, 0, sizeof(*ps));
	memset(img, 0, sizeof(*img));
	img->xen_major = 4;
	img->xen_minor = 17;
	img->nr_pages = nr_pages;
	img->mem_fd = -1;
	if (tb_xen_blob_open(&c, cpu, cpu_len) ||
	    tb_xen_blob_open(&d, dev, dev_len) || d.kind != TB_XEN_BLOB_DEV) {
		snprintf(ps->reason, sizeof(ps->reason),
			 "state blobs are not tiber Xen blobs (TBXN v1)");
		return -EINVAL;
	}
	if (c.kind != TB_XEN_BLOB_CPU_PV && c.kind != TB_XEN_BLOB_CPU_HVM) {
		snprintf(ps->reason, sizeof(ps->reason),
			 "unknown CPU blob kind %u", c.kind);
		return -EINVAL;
	}
	pv = c.kind == TB_XEN_BLOB_CPU_PV;
	if (pv) {
		img->dom_type = TB_XS_DHDR_TYPE_X86_PV;
		if (pv_cpu(&c, ps, img)) {
			snprintf(ps->reason, sizeof(ps->reason),
				 "CPU blob malformed or without vCPU 0");
			return -EINVAL;
		}
	} else {
		img->dom_type = TB_XS_DHDR_TYPE_X86_HVM;
		while ((rc = tb_xen_blob_next(&c, &type, &id, &body, &len)) ==
		       1)
			if (type == TB_XEN_BLOB_REC_HVM_CTX) {
				img->hvm_ctx = body;
				img->hvm_ctx_len = len;
			}
		if (rc < 0 || !img->hvm_ctx_len) {
			snprintf(ps->reason, sizeof(ps->reason),
				 "CPU blob malformed or without HVM context");
			return -EINVAL;
		}
		rc = tb_bitmap_init(&ps->holes, nr_pages);
		if (rc)
			return rc;
	}
	while ((rc = tb_xen_blob_next(&d, &type, &id, &body, &len)) == 1) {
		if (type == TB_XEN_BLOB_REC_TSC) {
			if (len < 24)
				goto bad;
			img->have_tsc = true;
			img->tsc_mode = tb_get_le32(body);
			img->tsc_khz = tb_get_le32(body + 4);
			img->tsc_incarnation = tb_get_le32(body + 8);
			img->tsc_nsec = tb_get_le64(body + 16);
			continue;
		}
		rc = pv ? pv_dev_rec(type, body, len, nr_pages, ps, img) :
			  hvm_dev_rec(type, id, body, len, nr_pages, ps, img);
		if (rc)
			goto bad;
	}
	if (rc < 0)
		goto bad;
	if (pv)
		missing = pv_missing(img);
	else if (!img->holes)
		missing =
			"HOLES (without it the whole pfn space would be populated)";
	if (missing) {
		snprintf(
			ps->reason, sizeof(ps->reason),
			"%s failover: the device blob lacks %s (primary's tiber too old?)",
			pv ? "PV" : "HVM/PVH", missing);
		tb_xs_blobs_free(ps);
		return -ENOTSUP;
	}
	if (!pv)
		img->params = ps->params;
	return 0;
bad:
	snprintf(ps->reason, sizeof(ps->reason), "device blob malformed%s",
		 rc == -ENOMEM ? " (out of memory)" : "");
	tb_xs_blobs_free(ps);
	return rc == -ENOMEM ? rc : -EINVAL;
}

void tb_xs_blobs_free(struct tb_xs_blobs *ps)
{
	tb_bitmap_free(&ps->holes);
	free(ps->pfn_types);
	free(ps->p2m_frames);
	ps->pfn_types = NULL;
	ps->p2m_frames = NULL;
}
