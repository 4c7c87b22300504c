// SPDX-License-Identifier: MIT
/*
 * The state of a suspended Xen guest other than its memory: vCPU
 * contexts (PV: made host-independent, as Xen's save does) and device
 * state (TSC, HVM params and context, PV shared info, page types and p2m
 * frames), written as Xen state blobs ("TBXN", docs/xen-backend.md) that
 * a failover turns into a migration stream (xen_stream.c).
 *
 * Invariant: called only while the guest is suspended by us (-EINVAL
 * otherwise), so what is read is the checkpoint's state.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "xen_blob.h"
#include "xen_priv.h"
#include "xen_util.h"

/* PV: the non-NOTAB page types as u64 (pfn | type nibble << 60), the
 * encoding of a PAGE_DATA pfn entry; re-encoded when a type changed. */
static int blob_pv_types(struct tb_dom *d, struct tb_buf *out)
{
	if (d->types_changed) {
		d->types_rec.len = 0;
		for (uint64_t pfn = 0; pfn < d->minfo.p2m_size; pfn++) {
			uint64_t t = d->minfo.pfn_type[pfn] >>
				     XEN_DOMCTL_PFINFO_LTAB_SHIFT;
			uint8_t e[8];
			int rc;

			if (!t)
				continue;
			tb_put_le64(e, pfn | t << 60);
			rc = tb_buf_append(&d->types_rec, e, sizeof(e));
			if (rc)
				return rc;
		}
		d->types_changed = false;
	}
	return tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_PV_TYPES, 0,
				   d->types_rec.data,
				   (uint32_t)d->types_rec.len);
}

static int blob_pv_p2m(struct tb_dom *d, struct tb_buf *out)
{
	uint8_t e[8];
	int rc;

	rc = tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_PV_P2M, 0, NULL,
				 (uint32_t)(d->nr_p2m_frames * 8));
	for (size_t i = 0; !rc && i < d->nr_p2m_frames; i++) {
		tb_put_le64(e, d->p2m_frames[i]);
		rc = tb_buf_append(out, e, sizeof(e));
	}
	return rc;
}

/* Replace machine frame *@f by the guest pfn (@what names it in errors). */
static int pv_frame_to_pfn(struct tb_dom *d, uint32_t v, const char *what,
			   uint64_t *f)
{
	if (!tb_xen_mfn_to_pfn(*f, d->m2p, d->m2p_size, d->minfo.p2m_table,
			       d->minfo.p2m_size, f))
		return 0;
	tb_backend_set_reason("dom%u vcpu%u: %s mfn %#" PRIx64
			      " is not the guest's",
			      d->domid, v, what, *f);
	return -ERANGE;
}

/*
 * A PV vCPU context as a restore on another host reads it (as Xen's own
 * save writes it): its machine frames become guest pfns: cr3, the user
 * page table in cr1 (bit 0 = present), the GDT frames and, for vCPU 0,
 * rdx = the start_info frame the guest passed to its suspend hypercall.
 */
static int pv_vcpu_canonical(struct tb_dom *d, uint32_t v,
			     vcpu_guest_context_x86_64_t *c)
{
	uint64_t f;
	int rc = 0;

	if (v == 0) {
		f = c->user_regs.rdx;
		rc = pv_frame_to_pfn(d, v, "start_info (rdx)", &f);
		c->user_regs.rdx = f;
	}
	if (c->gdt_ents > TB_ARRAY_SIZE(c->gdt_frames) * 512) {
		tb_backend_set_reason("dom%u vcpu%u: %lu GDT entries", d->domid,
				      v, c->gdt_ents);
		return -ERANGE;
	}
	for (unsigned i = 0; !rc && (size_t)i * 512 < c->gdt_ents; i++) {
		f = c->gdt_frames[i];
		rc = pv_frame_to_pfn(d, v, "GDT frame", &f);
		c->gdt_frames[i] = f;
	}
	if (!rc) {
		f = c->ctrlreg[3] >> TB_PAGE_SHIFT;
		rc = pv_frame_to_pfn(d, v, "cr3", &f);
		c->ctrlreg[3] = f << TB_PAGE_SHIFT;
	}
	if (!rc && c->ctrlreg[1]) {
		f = c->ctrlreg[1] >> TB_PAGE_SHIFT;
		rc = pv_frame_to_pfn(d, v, "user cr3 (cr1)", &f);
		c->ctrlreg[1] = 1 | f << TB_PAGE_SHIFT;
	}
	return rc;
}

int tb_xen_save_cpu_state(struct tb_dom *d, struct tb_buf *out)
{
	int rc = 0;

	if (!d->suspended)
		return -EINVAL;
	if (d->kind == KIND_PV) {
		uint32_t v;

		rc = tb_xen_blob_put_hdr(out, TB_XEN_BLOB_CPU_PV, d->nr_vcpus);
		for (v = 0; !rc && v < d->nr_vcpus; v++) {
			vcpu_guest_context_any_t ctx;
			xc_vcpuinfo_t vi;

			if (xc_vcpu_getinfo(d->xch, d->domid, v, &vi))
				return -errno;
			if (!vi.online) {
				rc = tb_xen_blob_put_rec(
					out, TB_XEN_BLOB_REC_PV_VCPU, v, NULL,
					0);
				continue;
			}
			if (xc_vcpu_getcontext(d->xch, d->domid, v, &ctx))
				return -errno;
			rc = pv_vcpu_canonical(d, v, &ctx.x64);
			if (rc)
				return rc;
			rc = tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_PV_VCPU,
						 v, &ctx.x64, sizeof(ctx.x64));
		}
		return rc;
	}
	/* One hypercall per epoch into a buffer kept from the last one; the
	 * size query only when it no longer fits (-ENOSPC). */
	for (int tries = 0; tries < 2; tries++) {
		int len = -1;

		if (d->hvm_buf)
			len = xc_domain_hvm_getcontext(d->xch, d->domid,
						       d->hvm_buf,
						       (uint32_t)d->hvm_cap);
		if (len >= 0) {
			rc = tb_xen_blob_put_hdr(out, TB_XEN_BLOB_CPU_HVM, 1);
			if (!rc)
				rc = tb_xen_blob_put_rec(
					out, TB_XEN_BLOB_REC_HVM_CTX, 0,
					d->hvm_buf, (uint32_t)len);
			return rc;
		}
		if (d->hvm_buf && errno != ENOSPC)
			return -errno;
		len = xc_domain_hvm_getcontext(d->xch, d->domid, NULL, 0);
		if (len < 0)
			return -errno;
		free(d->hvm_buf);
		d->hvm_cap = (size_t)len + 4096; /* room for growth */
		d->hvm_buf = malloc(d->hvm_cap);
		if (!d->hvm_buf)
			return -ENOMEM;
	}
	return -ENOSPC;
}

int tb_xen_save_device_state(struct tb_dom *d, struct tb_buf *out)
{
	static const uint32_t params[] = {
		HVM_PARAM_STORE_PFN,
		HVM_PARAM_STORE_EVTCHN,
		HVM_PARAM_CONSOLE_PFN,
		HVM_PARAM_CONSOLE_EVTCHN,
		HVM_PARAM_CALLBACK_IRQ,
		HVM_PARAM_IDENT_PT,
		HVM_PARAM_PAGING_RING_PFN,
		HVM_PARAM_MONITOR_RING_PFN,
		HVM_PARAM_SHARING_RING_PFN,
		HVM_PARAM_VM86_TSS_SIZED,
		HVM_PARAM_IOREQ_PFN,
		HVM_PARAM_BUFIOREQ_PFN,
		HVM_PARAM_NR_IOREQ_SERVER_PAGES,
		HVM_PARAM_PAE_ENABLED,
		HVM_PARAM_TIMER_MODE,
		HVM_PARAM_VIRIDIAN,
	};
	uint32_t mode, khz, inc;
	uint64_t ns;
	uint8_t tsc[24];
	int rc;

	if (!d->suspended)
		return -EINVAL;
	if (xc_domain_get_tsc_info(d->xch, d->domid, &mode, &ns, &khz, &inc))
		return -errno;
	rc = tb_xen_blob_put_hdr(out, TB_XEN_BLOB_DEV, 0);
	if (rc)
		return rc;
	tb_put_le32(tsc, mode);
	tb_put_le32(tsc + 4, khz);
	tb_put_le32(tsc + 8, inc);
	tb_put_le32(tsc + 12, 0);
	tb_put_le64(tsc + 16, ns);
	rc = tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_TSC, 0, tsc, sizeof(tsc));
	if (rc)
		return rc;
	if (d->kind == KIND_PV) {
		uint8_t info[16];
		void *sh;

		tb_put_le32(info, d->guest_width);
		tb_put_le32(info + 4, 4);
		tb_put_le64(info + 8, d->minfo.p2m_size);
		rc = tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_PV_INFO, 0, info,
					 sizeof(info));
		if (rc)
			return rc;
		xen_pfn_t f = d->shared_info_frame;

		sh = xenforeignmemory_map(d->fmem, d->domid, PROT_READ, 1, &f,
					  NULL);
		if (!sh)
			return -errno;
		rc = tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_SHINFO, 0, sh,
					 TB_PAGE_SIZE);
		xenforeignmemory_unmap(d->fmem, sh, 1);
		if (!rc)
			rc = blob_pv_types(d, out);
		if (!rc)
			rc = blob_pv_p2m(d, out);
		return rc;
	}
	for (size_t i = 0; i < TB_ARRAY_SIZE(params); i++) {
		uint64_t v = 0;
		uint8_t b[8];

		if (xc_hvm_param_get(d->xch, d->domid, params[i], &v))
			continue; /* not applicable to this guest */
		tb_put_le64(b, v);
		rc = tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_HVM_PARAM,
					 params[i], b, sizeof(b));
		if (rc)
			return rc;
	}
	return tb_xen_blob_put_holes(out, &d->holes, d->nr_gpfns);
}
