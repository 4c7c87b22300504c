// SPDX-License-Identifier: MIT
/*
 * Suspending a Xen guest for a checkpoint and letting it run again: the
 * suspend mode and suspend-cancel detection at attach, the wake-up
 * channel, request/await, resume, and tb_xen_recover() for a domain a
 * killed tiberd left behind.
 *
 * Invariants:
 *  - A domain is never left suspended or paused by us: await_suspended
 *    cancels (and, if the guest suspended anyway, resumes) on timeout,
 *    detach resumes/unpauses and hands the suspend notification back to
 *    VIRQ_DOM_EXC.  After SIGKILL, tb_xen_recover() does the same from a
 *    fresh process.
 *  - A fast resume (suspend-cancel) is used only if the guest's kernel
 *    advertises SUSPEND_CANCEL or the config says so; without it attach
 *    fails unless slow resumes are allowed.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tiber/xen.h"
#include "xen_netbuf.h"
#include "xen_priv.h"
#include "xen_util.h"

#define CANCEL_GRACE_NS	 (2 * TB_NSEC_PER_SEC)
#define SUSPEND_LOCK_FMT "/var/run/xen/suspend-evtchn-%u.lock"

/* Read a decimal port from xenstore: >= 0, or -1 if absent/empty/bad. */
static int xs_read_port(struct xs_handle *xsh, const char *path)
{
	char *s = xs_read_str(xsh, path);
	uint64_t v;
	int port = -1;

	if (s && *s && !tb_parse_u64(s, &v) && v > 0 && v < (1u << 17))
		port = (int)v;
	free(s);
	return port;
}

int tb_xen_kernel_suspend_cancel(const char *path, bool *yes)
{
	struct xen_logger xl;
	xc_interface *xch;
	struct xc_dom_image *dom = NULL;
	int rc;

	tb_xen_log_init(&xl);
	/* A dummy handle: reading a file needs no hypervisor (unit tests,
	 * a host without /dev/xen). */
	xch = xc_interface_open(&xl.vtable, &xl.vtable, XC_OPENFLAG_DUMMY);
	if (!xch) {
		rc = -errno;
		tb_backend_set_reason("xc_interface_open: %s", strerror(-rc));
		return rc;
	}
	dom = xc_dom_allocate(xch, NULL, NULL);
	if (!dom) {
		rc = -ENOMEM;
		goto out_close;
	}
	if (access(path, R_OK)) {
		rc = -errno;
		tb_backend_set_reason("kernel %s: %s", path, strerror(-rc));
		goto out_release;
	}
	if (xc_dom_kernel_file(dom, path)) {
		rc = -ENOEXEC;
		tb_backend_set_reason("kernel %s: cannot load: %s", path,
				      xl.last);
		goto out_release;
	}
	/*
	 * The loader probes decompress a bzImage payload (any of the
	 * compressions libxenguest knows) into dom->kernel_blob; whether
	 * the rest of the parse succeeds (it checks features against this
	 * toolstack) does not matter: we read the notes ourselves.
	 */
	(void)xc_dom_parse_image(dom);
	rc = tb_xen_elf_suspend_cancel(dom->kernel_blob, dom->kernel_size, yes);
	if (rc)
		tb_backend_set_reason(
			"kernel %s: not an ELF kernel after decompression (%s)",
			path, xl.last);
out_release:
	xc_dom_release(dom);
out_close:
	xc_interface_close(xch);
	return rc;
}

/* ------------------------------------------------------------ channels */

static int setup_channel(struct tb_dom *d, int published, int32_t static_port)
{
	int port = -1, lp;

	d->xce = xenevtchn_open(NULL, 0);
	if (!d->xce)
		return -errno;
	if (d->mode == TB_SUSPEND_EVTCHN) {
		port = published >= 0 ? published : static_port;
	} else {
		/*
		 * xenstore mode: the request goes through control/shutdown,
		 * but the wake-up need not.  A port we allocate in the guest
		 * (it never learns of it) and subscribe makes Xen signal us
		 * at SHUTDOWN_suspend instead of VIRQ_DOM_EXC, which
		 * xenstored owns.
		 */
		port = xc_evtchn_alloc_unbound(d->xch, d->domid, 0);
		if (port < 0)
			return -errno;
		d->port_allocated = true;
	}
	/* Binds interdomain, XEN_DOMCTL_subscribe, takes libxenguest's
	 * per-domain lock (another xl save/remus would collide). */
	lp = xc_suspend_evtchn_init_exclusive(d->xch, d->xce, d->domid, port,
					      &d->lockfd);
	if (lp < 0)
		return errno ? -errno : -EIO;
	d->guest_port = port;
	d->local_port = lp;
	return 0;
}

void tb_xen_release_channel(struct tb_dom *d)
{
	if (d->local_port >= 0) {
		/* Give suspend notification back to VIRQ_DOM_EXC (xenstored,
		 * xl save); port 0 is "no subscription". */
		xc_domain_subscribe_for_suspend(d->xch, d->domid, 0);
		xc_suspend_evtchn_release(d->xch, d->xce, d->domid,
					  d->local_port, &d->lockfd);
		d->local_port = -1;
	}
	if (d->watching) {
		xs_unwatch(d->xsh, "@releaseDomain", "tiber");
		d->watching = false;
	}
	if (d->xce) {
		xenevtchn_close(d->xce);
		d->xce = NULL;
	}
}

/* ------------------------------------------------------------ attach */

static int detect_suspend_cancel(struct tb_dom *d, const struct tb_dom_cfg *cfg,
				 const char *dompath, int *detected, char *src,
				 size_t srclen)
{
	char path[256];
	char *vm = NULL, *kernel = NULL;
	const char *k = cfg->kernel_path;
	bool yes = false;
	int rc;

	*detected = -1;
	if (!k) {
		/* libxl records a PV guest's kernel under /vm/UUID/image. */
		snprintf(path, sizeof(path), "%s/vm", dompath);
		vm = xs_read_str(d->xsh, path);
		if (vm) {
			snprintf(path, sizeof(path), "%s/image/kernel", vm);
			kernel = xs_read_str(d->xsh, path);
		}
		k = kernel;
	}
	if (!k || !*k) {
		snprintf(src, srclen, "no kernel image known");
		rc = 0;
		goto out;
	}
	rc = tb_xen_kernel_suspend_cancel(k, &yes);
	if (!rc) {
		*detected = yes;
		snprintf(src, srclen, "ELF note in %s", k);
	}
out:
	free(vm);
	free(kernel);
	return rc;
}

/*
 * Attach, suspend side: the suspend mode (from config and what the guest
 * publishes) and whether the guest may be resumed fast.  *@published:
 * the port the guest publishes, or -1.
 */
static int resolve_suspend(struct tb_dom *d, const struct tb_dom_cfg *cfg,
			   const char *dompath, int *published)
{
	char path[256], src[300], *s;
	int rc, detected;
	bool has_control;

	snprintf(d->shutdown_path, sizeof(d->shutdown_path),
		 "%s/control/shutdown", dompath);
	s = xs_read_str(d->xsh, d->shutdown_path);
	has_control = s != NULL;
	free(s);
	snprintf(path, sizeof(path), "%s/device/suspend/event-channel",
		 dompath);
	*published = xs_read_port(d->xsh, path);

	rc = tb_xen_resolve_mode(cfg->suspend_mode, *published >= 0,
				 cfg->static_port, has_control, &d->mode);
	if (rc) {
		tb_backend_set_reason(
			"dom%u: suspend mode %s impossible: device/suspend/event-channel %s, static port %d, control/shutdown %s",
			d->domid, tb_suspend_mode_name(cfg->suspend_mode),
			*published >= 0 ? "published" : "absent",
			cfg->static_port, has_control ? "present" : "absent");
		return rc;
	}

	rc = detect_suspend_cancel(d, cfg, dompath, &detected, src,
				   sizeof(src));
	if (rc && cfg->suspend_cancel < 0)
		return rc; /* reason set by the ELF reader */
	d->suspend_cancel =
		tb_xen_suspend_cancel(cfg->suspend_cancel, detected);
	if (d->mode == TB_SUSPEND_PAUSE) {
		d->suspend_cancel = false; /* unpause: nothing to cancel */
	} else if (!d->suspend_cancel && !d->allow_slow) {
		rc = -ENOTSUP;
		tb_backend_set_reason(
			"dom%u: guest does not advertise SUSPEND_CANCEL (%s%s): fast resume impossible; set suspend_cancel=yes if it does, allow_slow_resume=yes, or suspend_mode=pause",
			d->domid, src,
			cfg->suspend_cancel == 0 ? ", config says no" : "");
		return rc;
	}
	return 0;
}

/*
 * Attach, suspend side: how we learn that the guest suspended (a
 * subscribed event channel, else a @releaseDomain watch).  Nothing in
 * pause mode.
 */
static int setup_wakeup(struct tb_dom *d, const struct tb_dom_cfg *cfg,
			int published)
{
	int rc;

	if (d->mode == TB_SUSPEND_PAUSE)
		return 0;
	rc = setup_channel(d, published, cfg->static_port);
	if (rc && d->mode == TB_SUSPEND_EVTCHN) {
		tb_backend_set_reason(
			"dom%u: bind suspend event channel %d: %s (%s)",
			d->domid, published >= 0 ? published : cfg->static_port,
			strerror(-rc), xc_last(d));
		return rc;
	}
	if (rc) {
		/* xenstore mode without a subscribed port: wake on
		 * @releaseDomain, which xenstored fires when it sees
		 * VIRQ_DOM_EXC (any domain state change). */
		tb_xen_release_channel(d);
		d->log.last[0] = '\0';
		if (!xs_watch(d->xsh, "@releaseDomain", "tiber")) {
			rc = -errno;
			tb_backend_set_reason(
				"dom%u: xs_watch @releaseDomain: %s", d->domid,
				strerror(-rc));
			return rc;
		}
		d->watching = true;
	}
	return 0;
}

/* Attach, step 4: suspend mode, suspend-cancel, the wake-up source. */
int tb_xen_suspend_attach(struct tb_dom *d, const struct tb_dom_cfg *cfg,
			  const char *dompath)
{
	int published, rc;

	rc = resolve_suspend(d, cfg, dompath, &published);
	if (rc)
		return rc;
	return setup_wakeup(d, cfg, published);
}

/* ------------------------------------------------------------ the epoch */

static int send_request(struct tb_dom *d)
{
	switch (d->mode) {
	case TB_SUSPEND_EVTCHN:
		if (xenevtchn_notify(d->xce, (evtchn_port_t)d->local_port) < 0)
			return -errno;
		break;
	case TB_SUSPEND_XENSTORE:
		if (!xs_write(d->xsh, XBT_NULL, d->shutdown_path, "suspend", 7))
			return errno ? -errno : -EIO;
		break;
	case TB_SUSPEND_PAUSE:
		if (xc_domain_pause(d->xch, d->domid))
			return -errno;
		d->paused = true;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

int tb_xen_request_suspend(struct tb_dom *d)
{
	int rc;

	if (d->suspended || d->paused)
		return -EINVAL;
	d->st.t_notify_ns = tb_now_ns();
	rc = send_request(d);
	if (rc)
		return rc;
	d->requested = true;
	tb_xen_output_epoch(d, true);
	return 0;
}

/* Drain the wake-up source after poll said it is readable. */
static void drain_wakeup(struct tb_dom *d)
{
	if (d->xce) {
		xenevtchn_port_or_error_t p = xenevtchn_pending(d->xce);

		if (p >= 0)
			xenevtchn_unmask(d->xce, (evtchn_port_t)p);
	} else if (d->watching) {
		unsigned int n;
		char **w = xs_read_watch(d->xsh, &n);

		free(w);
	}
}

/*
 * Wait until the domain is shut down for suspend or @deadline_ns.
 * 0 suspended, -ETIMEDOUT, -ESRCH gone/crashed, other -errno.
 */
static int wait_suspended(struct tb_dom *d, int64_t deadline_ns)
{
	xc_domaininfo_t info;
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	int rc;

	if (d->xce)
		pfd.fd = xenevtchn_fd(d->xce);
	else if (d->watching)
		pfd.fd = xs_fileno(d->xsh);
	for (;;) {
		int64_t left;
		int ms;

		rc = dom_getinfo(d->xch, d->domid, &info);
		if (rc)
			return rc;
		if (is_suspended(&info))
			return 0;
		if ((info.flags & (XEN_DOMINF_dying | XEN_DOMINF_shutdown)) ||
		    shutdown_reason(&info) == SHUTDOWN_crash)
			return -ESRCH;
		left = deadline_ns - tb_now_ns();
		if (left <= 0)
			return -ETIMEDOUT;
		ms = (int)TB_MIN((left + TB_NSEC_PER_MSEC - 1) /
					 TB_NSEC_PER_MSEC,
				 (int64_t)60000);
		rc = poll(&pfd, 1, ms);
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc > 0)
			drain_wakeup(d);
	}
}

static int await_suspended(struct tb_dom *d, int64_t deadline_ns)
{
	int rc, rc2;

	if (d->mode == TB_SUSPEND_PAUSE) {
		if (!d->paused)
			return -EINVAL;
		d->st.t_wake_ns = tb_now_ns();
		d->suspended = true;
		tb_copy_pool_prewake(&d->pool);
		d->requested = false;
		d->st.suspends++;
		return 0;
	}
	if (!d->requested)
		return -EINVAL;
	rc = wait_suspended(d, deadline_ns);
	d->st.t_wake_ns = tb_now_ns();
	if (!rc) {
		d->requested = false;
		d->suspended = true;
		tb_copy_pool_prewake(&d->pool); /* the copy comes next */
		d->st.suspends++;
		return 0;
	}
	if (rc != -ETIMEDOUT) {
		d->requested = false;
		return rc;
	}
	/*
	 * Cancel.  A guest that already took the request (Linux clears
	 * control/shutdown when it reads it) suspends anyway: give it a grace
	 * period and resume it, so that it is never left suspended.
	 */
	d->st.suspend_timeouts++;
	if (d->mode == TB_SUSPEND_XENSTORE)
		xs_write(d->xsh, XBT_NULL, d->shutdown_path, "", 0);
	rc2 = wait_suspended(d, tb_now_ns() + CANCEL_GRACE_NS);
	if (!rc2) {
		d->requested = false;
		rc2 = xc_domain_resume(d->xch, d->domid,
				       d->suspend_cancel ? 1 : 0);
		if (rc2)
			return -errno;
		if (d->suspend_cancel)
			d->st.fast_resumes++;
		else
			d->st.slow_resumes++;
		return -ETIMEDOUT;
	}
	/* Still running.  A late suspend is caught by request_suspend /
	 * check_health (d->requested stays set). */
	return -ETIMEDOUT;
}

int tb_xen_await_suspended(struct tb_dom *d, int64_t deadline_ns)
{
	int rc = await_suspended(d, deadline_ns);

	if (rc) /* no checkpoint: the guest runs on */
		tb_xen_output_epoch(d, false);
	return rc;
}

/* ------------------------------------------------------------ resume */

int tb_xen_resume(struct tb_dom *d, bool fast)
{
	if (!d->suspended)
		return -EINVAL;
	if (d->mode == TB_SUSPEND_PAUSE) {
		if (xc_domain_unpause(d->xch, d->domid))
			return -errno;
		d->paused = false;
		d->suspended = false;
		d->st.slow_resumes++;
		tb_xen_output_epoch(d, false);
		return 0;
	}
	if (fast && !d->suspend_cancel) {
		if (!d->allow_slow) {
			tb_backend_set_reason(
				"dom%u: fast resume refused: guest does not advertise SUSPEND_CANCEL",
				d->domid);
			return -ENOTSUP;
		}
		fast = false;
	}
	if (xc_domain_resume(d->xch, d->domid, fast ? 1 : 0)) {
		int rc = -errno;

		tb_backend_set_reason("dom%u: xc_domain_resume(fast=%d): %s",
				      d->domid, fast, xc_last(d));
		return rc;
	}
	d->suspended = false;
	if (fast)
		d->st.fast_resumes++;
	else
		d->st.slow_resumes++;
	tb_xen_output_epoch(d, false);
	return 0;
}

/* ------------------------------------------------------------ detach */

/* Detach: a pending request is withdrawn and a guest we suspended or
 * paused runs again. */
void tb_xen_suspend_detach(struct tb_dom *d)
{
	if (d->xsh && d->requested && d->mode == TB_SUSPEND_XENSTORE)
		xs_write(d->xsh, XBT_NULL, d->shutdown_path, "", 0);
	if (d->xch && !d->destroyed && (d->suspended || d->requested) &&
	    d->mode != TB_SUSPEND_PAUSE) {
		xc_domaininfo_t info;

		/* A request may still land: wait briefly, then resume. */
		if (d->requested && d->local_port >= 0)
			wait_suspended(d, tb_now_ns() + CANCEL_GRACE_NS / 4);
		if (!dom_getinfo(d->xch, d->domid, &info) &&
		    is_suspended(&info))
			xc_domain_resume(d->xch, d->domid,
					 d->suspend_cancel ? 1 : 0);
	}
	if (d->xch && d->paused)
		xc_domain_unpause(d->xch, d->domid);
}

/* ------------------------------------------------------------ recover */

static void report_add(char *report, size_t len, const char *what)
{
	size_t used;

	if (!report || !len)
		return;
	used = strnlen(report, len);
	if (used + 1 >= len)
		return;
	snprintf(report + used, len - used, "%s%s", used ? "; " : "", what);
}

int tb_xen_recover(uint32_t domid, bool fast, bool unpause, char *report,
		   size_t report_len)
{
	struct xen_logger xl;
	xc_interface *xch;
	struct xs_handle *xsh;
	xc_domaininfo_t info;
	char path[300], vif[32], *dompath = NULL, *s;
	int rc, first = 0;

	if (report && report_len)
		report[0] = '\0';
	tb_xen_log_init(&xl);
	xch = xc_interface_open(&xl.vtable, &xl.vtable, 0);
	if (!xch)
		return -errno;
	rc = dom_getinfo(xch, domid, &info);
	if (rc)
		goto out;
	xsh = xs_open(0);
	if (xsh) {
		dompath = xs_get_domain_path(xsh, domid);
		if (dompath) {
			snprintf(path, sizeof(path), "%s/control/shutdown",
				 dompath);
			s = xs_read_str(xsh, path);
			if (s && !strcmp(s, "suspend")) {
				xs_write(xsh, XBT_NULL, path, "", 0);
				report_add(report, report_len,
					   "cleared control/shutdown=suspend");
			}
			free(s);
		}
		/* output buffering a killed tiberd left on the vif: the
		 * held output goes out */
		if (tb_xen_dom_vif(xsh, domid, vif, sizeof(vif)) &&
		    tb_netbuf_cleanup(vif, NULL))
			report_add(report, report_len,
				   "removed output buffering (ifb, redirect)");
		free(dompath);
		xs_close(xsh);
	}
	/* Back to VIRQ_DOM_EXC before the resume, so xenstored sees it. */
	if (xc_domain_subscribe_for_suspend(xch, domid, 0)) {
		if (!first)
			first = -errno;
	}
	snprintf(path, sizeof(path), SUSPEND_LOCK_FMT, domid);
	if (!unlink(path))
		report_add(report, report_len, "removed stale suspend lock");
	if (xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0)) {
		if (!first)
			first = -errno;
	} else {
		report_add(report, report_len, "log-dirty off");
	}
	if (is_suspended(&info)) {
		if (xc_domain_resume(xch, domid, fast ? 1 : 0)) {
			if (!first)
				first = -errno;
		} else {
			report_add(report, report_len,
				   fast ? "resumed (fast)" : "resumed (slow)");
		}
	}
	if (unpause && (info.flags & XEN_DOMINF_paused)) {
		if (xc_domain_unpause(xch, domid)) {
			if (!first)
				first = -errno;
		} else {
			report_add(report, report_len, "unpaused");
		}
	}
	rc = first;
	if (rc)
		tb_backend_set_reason("dom%u recover: %s", domid, xl.last);
out:
	xc_interface_close(xch);
	return rc;
}
