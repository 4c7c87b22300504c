// SPDX-License-Identifier: MIT
/*
 * The real Xen backend (Xen 4.17 libraries: xenctrl, xenguest, xenevtchn,
 * xenforeignmemory, xenstore): attach and detach of a domain, its info,
 * health and stats, and the ops table.  Blob formats and operator notes:
 * docs/xen-backend.md.  The other concerns live beside it, sharing
 * struct tb_dom through xen_priv.h: suspend and resume (xen_suspend.c),
 * guest memory (xen_mem.c), vCPU and device state (xen_state.c, in the
 * blobs of xen_blob.c), output commit (xen_output.c), failover
 * (xen_restore.c).
 *
 * Invariants:
 *  - Every libxc/libxs call that fails becomes -errno on the line that
 *    made it; the library's own error text is caught by our xentoollog
 *    logger and ends up in tb_backend_reason(), never on stderr.
 *  - Attach either succeeds whole or is undone by detach, which copes
 *    with any partly attached handle.  Detach resumes or unpauses a
 *    guest we suspended or paused, turns log-dirty off and hands the
 *    suspend notification back to VIRQ_DOM_EXC (xen_suspend.c has the
 *    rest of the suspend invariants).
 *  - Destroy (self-fencing) drops held output; detach releases it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/backend.h"
#include "tiber/stream.h"
#include "xen_priv.h"

/* ------------------------------------------------------------ logging */

__attribute__((format(printf, 5, 0))) static void
xlog_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval,
	      const char *context, const char *fmt, va_list ap)
{
	struct xen_logger *xl = (struct xen_logger *)l;
	int n;

	if (level < XTL_ERROR)
		return;
	n = vsnprintf(xl->last, sizeof(xl->last), fmt, ap);
	if (n > 0 && errnoval >= 0 && (size_t)n < sizeof(xl->last))
		snprintf(xl->last + n, sizeof(xl->last) - n, ": %s",
			 strerror(errnoval));
}

static void xlog_progress(xentoollog_logger *l, const char *context,
			  const char *doing_what, int percent,
			  unsigned long done, unsigned long total)
{
}

static void xlog_destroy(xentoollog_logger *l)
{
}

void tb_xen_log_init(struct xen_logger *xl)
{
	xl->vtable.vmessage = xlog_vmessage;
	xl->vtable.progress = xlog_progress;
	xl->vtable.destroy = xlog_destroy;
	xl->last[0] = '\0';
}

/* ------------------------------------------------------------ helpers */

static const char *reason_name(unsigned r)
{
	switch (r) {
	case SHUTDOWN_poweroff:
		return "poweroff";
	case SHUTDOWN_reboot:
		return "reboot";
	case SHUTDOWN_suspend:
		return "suspend";
	case SHUTDOWN_crash:
		return "crash";
	case SHUTDOWN_watchdog:
		return "watchdog";
	case SHUTDOWN_soft_reset:
		return "soft_reset";
	}
	return "?";
}

/* ------------------------------------------------------------ attach */

static void xen_detach(struct tb_dom *d);

/*
 * Attach, step 1: the domain exists and can be protected (not dom0, not
 * dying, no shutdown pending, not paused by someone else).
 */
static int attach_domain(struct tb_dom *d, xc_domaininfo_t *info)
{
	int rc;

	d->xch = xc_interface_open(&d->log.vtable, &d->log.vtable, 0);
	if (!d->xch) {
		rc = -errno;
		tb_backend_set_reason(
			"xc_interface_open: %s (root? /dev/xen/privcmd?)",
			strerror(-rc));
		return rc;
	}
	rc = dom_getinfo(d->xch, d->domid, info);
	if (rc) {
		tb_backend_set_reason("dom%u: no such domain (%s)", d->domid,
				      strerror(-rc));
		return rc;
	}
	if (d->domid == 0) {
		rc = -EINVAL;
		tb_backend_set_reason("dom0 cannot be protected");
		return rc;
	}
	_Static_assert(sizeof(d->uuid) == sizeof(info->handle), "handle");
	memcpy(d->uuid, info->handle, sizeof(d->uuid));
	if (info->flags & XEN_DOMINF_dying) {
		rc = -EINVAL;
		tb_backend_set_reason("dom%u is dying", d->domid);
		return rc;
	}
	if (info->flags & XEN_DOMINF_shutdown) {
		rc = -EINVAL;
		tb_backend_set_reason(
			"dom%u has a shutdown pending (reason %s); run `tiberctl recover %u` if tiber left it suspended",
			d->domid, reason_name(shutdown_reason(info)), d->domid);
		return rc;
	}
	if (info->flags & XEN_DOMINF_paused) {
		rc = -EBUSY;
		tb_backend_set_reason(
			"dom%u is paused by someone else; unpause it first",
			d->domid);
		return rc;
	}
	return 0;
}

/* Attach, step 2: the guest's kind (PV, PVH, HVM), vCPUs and pfn space. */
static int attach_kind(struct tb_dom *d, const xc_domaininfo_t *info)
{
	xen_pfn_t gpfns;
	int rc;

	d->nr_vcpus = info->max_vcpu_id + 1;
	d->shared_info_frame = (unsigned long)info->shared_info_frame;
	if (info->flags & XEN_DOMINF_hvm_guest) {
		/* PVH: HVM container with no emulated platform but the LAPIC. */
		d->kind = (info->arch_config.emulation_flags &
			   XEN_X86_EMU_IOAPIC) ?
				  KIND_HVM :
				  KIND_PVH;
		d->guest_width = 8;
	} else {
		d->kind = KIND_PV;
		if (xc_domain_get_guest_width(d->xch, d->domid,
					      &d->guest_width)) {
			rc = -errno;
			tb_backend_set_reason("dom%u: guest width: %s",
					      d->domid, xc_last(d));
			return rc;
		}
		if (d->guest_width != 8) {
			rc = -ENOTSUP;
			tb_backend_set_reason(
				"dom%u: 32-bit PV guests are not supported (only x86_64 PV, PVH, HVM)",
				d->domid);
			return rc;
		}
	}
	if (xc_domain_nr_gpfns(d->xch, d->domid, &gpfns)) {
		rc = -errno;
		tb_backend_set_reason("dom%u: xc_domain_nr_gpfns: %s", d->domid,
				      xc_last(d));
		return rc;
	}
	d->nr_gpfns = gpfns;
	return 0;
}

/* Attach, step 3: xenstore, the domain's path in it (*@dompath, freed by
 * the caller) and its name. */
static int attach_xenstore(struct tb_dom *d, char **dompath)
{
	char path[256], *s;
	int rc;

	d->xsh = xs_open(0);
	if (!d->xsh) {
		rc = -errno;
		tb_backend_set_reason("xs_open: %s (xenstored running?)",
				      strerror(-rc));
		return rc;
	}
	*dompath = xs_get_domain_path(d->xsh, d->domid);
	if (!*dompath) {
		rc = -errno ? -errno : -ENOMEM;
		tb_backend_set_reason("dom%u: xs_get_domain_path failed",
				      d->domid);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/name", *dompath);
	s = xs_read_str(d->xsh, path);
	snprintf(d->name, sizeof(d->name), "%s", s ? s : "");
	free(s);
	return 0;
}

static int xen_attach(struct tb_dom **out, const struct tb_dom_cfg *cfg)
{
	struct tb_dom *d;
	xc_domaininfo_t info = { 0 };
	char *dompath = NULL;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	tb_xen_log_init(&d->log);
	d->domid = cfg->domid;
	d->guest_port = d->local_port = d->lockfd = -1;
	d->allow_slow = cfg->allow_slow_resume;

	rc = attach_domain(d, &info);
	if (rc)
		goto fail;
	rc = attach_kind(d, &info);
	if (rc)
		goto fail;
	rc = attach_xenstore(d, &dompath);
	if (rc)
		goto fail;
	rc = tb_xen_suspend_attach(d, cfg, dompath);
	if (rc)
		goto fail;
	rc = tb_xen_mem_attach(d, cfg->copy_threads);
	if (rc)
		goto fail;
	rc = tb_xen_output_attach(d, cfg);
	if (rc)
		goto fail;
	rc = tb_xen_disk_attach(d, cfg);
	if (rc)
		goto fail;
	free(dompath);
	*out = d;
	return 0;

fail:
	free(dompath);
	xen_detach(d);
	return rc;
}

static void xen_get_info(struct tb_dom *d, struct tb_dom_info *info)
{
	static const char *const kinds[] = { "pv", "pvh", "hvm" };

	memset(info, 0, sizeof(*info));
	info->domid = d->domid;
	snprintf(info->name, sizeof(info->name), "%s", d->name);
	memcpy(info->uuid, d->uuid, sizeof(info->uuid));
	snprintf(info->kind, sizeof(info->kind), "%s", kinds[d->kind]);
	info->nr_pages = d->nr_gpfns;
	info->nr_vcpus = d->nr_vcpus;
	info->state_tag = d->kind == KIND_PV ? TB_STATE_XEN_PV :
					       TB_STATE_XEN_HVM;
	info->suspend_mode = d->mode;
	info->suspend_cancel = d->suspend_cancel;
	snprintf(info->dirty_mech, sizeof(info->dirty_mech), "%s",
		 d->kind == KIND_PV ? "xen-logdirty-shadow" :
				      "xen-logdirty-hap");
	tb_xen_disk_info(d, info);
}

static int xen_check_health(struct tb_dom *d)
{
	xc_domaininfo_t info;
	int rc;

	rc = dom_getinfo(d->xch, d->domid, &info);
	if (rc == -ESRCH) {
		tb_backend_set_reason("dom%u is gone", d->domid);
		return rc;
	}
	if (rc)
		return rc;
	if (info.flags & XEN_DOMINF_dying) {
		tb_backend_set_reason("dom%u is dying", d->domid);
		return -ESRCH;
	}
	if (info.flags & XEN_DOMINF_shutdown) {
		unsigned r = shutdown_reason(&info);

		if (r == SHUTDOWN_suspend && !d->suspended && d->requested) {
			/* A request we cancelled was taken late: undo it. */
			if (xc_domain_resume(d->xch, d->domid,
					     d->suspend_cancel ? 1 : 0))
				return -errno;
			d->requested = false;
			return 0;
		}
		if (r == SHUTDOWN_suspend)
			return 0;
		tb_backend_set_reason("dom%u shut down: reason %s", d->domid,
				      reason_name(r));
		return r == SHUTDOWN_crash || r == SHUTDOWN_watchdog ? -EFAULT :
								       -ESRCH;
	}
	return 0;
}

static void xen_get_stats(struct tb_dom *d, struct tb_dom_stats *st)
{
	*st = d->st;
	tb_xen_output_stats(d, st);
}

/* ------------------------------------------------------------ detach */

static int xen_destroy(struct tb_dom *d)
{
	int rc = 0;

	/* Paused first: nothing new leaves the guest; then the domain
	 * goes (and its vif); then the buffer with what it held, dropped,
	 * never released. */
	xc_domain_pause(d->xch, d->domid); /* destroy follows anyway */
	tb_xen_release_channel(d); /* its domctls only while the domain lives */
	if (xc_domain_destroy(d->xch, d->domid)) {
		rc = -errno;
		tb_backend_set_reason("xen: destroy domain %u: %s", d->domid,
				      strerror(errno));
	}
	tb_xen_output_discard(d);
	if (!rc)
		d->destroyed = true;
	d->suspended = d->requested = d->paused = false;
	d->logdirty = false; /* no domctl on a dead domain */
	return rc;
}

static void xen_detach(struct tb_dom *d)
{
	if (!d)
		return;
	tb_xen_output_teardown(d);
	tb_xen_disk_detach(d);
	tb_xen_suspend_detach(d);
	if (d->xch && d->logdirty)
		xc_shadow_control(d->xch, d->domid, XEN_DOMCTL_SHADOW_OP_OFF,
				  NULL, 0);
	if (d->xch)
		tb_xen_release_channel(d);
	tb_xen_mem_detach(d);
	free(d->types);
	tb_buf_free(&d->types_rec);
	free(d->p2m_frames);
	free(d->hvm_buf);
	if (d->xsh)
		xs_close(d->xsh);
	if (d->xch)
		xc_interface_close(d->xch);
	free(d);
}

const struct tb_backend_ops tb_backend_xen_ops = {
	.name = "xen",
	.attach = xen_attach,
	.get_info = xen_get_info,
	.request_suspend = tb_xen_request_suspend,
	.await_suspended = tb_xen_await_suspended,
	.harvest_dirty = tb_xen_harvest_dirty,
	.copy_pages = tb_xen_copy_pages,
	.save_cpu_state = tb_xen_save_cpu_state,
	.save_device_state = tb_xen_save_device_state,
	.output_boundary = tb_xen_output_boundary,
	.output_release = tb_xen_output_release,
	.output_set_gated = tb_xen_output_set_gated,
	.resume = tb_xen_resume,
	.check_health = xen_check_health,
	.get_stats = xen_get_stats,
	.destroy = xen_destroy,
	.disk_mirror = tb_xen_disk_mirror,
	.disk_boundary = tb_xen_disk_boundary,
	.disk_peek = tb_xen_disk_peek,
	.disk_pop = tb_xen_disk_pop,
	.disk_harvest = tb_xen_disk_harvest,
	.disk_read = tb_xen_disk_read,
	.disk_next_data = tb_xen_disk_next_data,
	.detach = xen_detach,
	.restore = tb_xen_restore,
};
