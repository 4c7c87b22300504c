// SPDX-License-Identifier: MIT
/*
 * Output commit of the Xen backend: glue to xen_netbuf.c (plug qdisc
 * behind an ifb that the guest's first vif is redirected to), the
 * overflow policy "pause" and the output hooks of the ops table.
 *
 * Invariants:
 *  - A guest without a vif (or with TIBER_XEN_VIF=none) has no netbuf;
 *    every hook then succeeds without holding anything.
 *  - netbuf and the overflow state are touched only under nb_lock:
 *    output_release runs on another thread than the epoch.
 *  - The overflow monitor never holds a guest paused from a suspend
 *    request to the resume (ovf_in_epoch), so the guest can reach its
 *    suspend point and the checkpoint that releases its output.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xen_netbuf.h"
#include "xen_priv.h"
#include "xen_util.h"

/*
 * Output commit on the guest's first vif: dom0's backend/vif/DOMID/0
 * (its "vifname" if set, else vifDOMID.0).  TIBER_XEN_VIF names another
 * interface; TIBER_XEN_VIF=none turns output commit off (tiberd then
 * runs without it, as before).  Only the first vif is buffered.
 */
/* The guest's first vif in dom0 (its backend's "vifname", else
 * vifDOMID.0); false if it has none. */
bool tb_xen_dom_vif(struct xs_handle *xsh, uint32_t domid, char *out,
		    size_t len)
{
	char path[128], *name, *state;

	snprintf(path, sizeof(path), "/local/domain/0/backend/vif/%u/0/state",
		 domid);
	state = xs_read_str(xsh, path);
	if (!state)
		return false;
	free(state);
	snprintf(path, sizeof(path), "/local/domain/0/backend/vif/%u/0/vifname",
		 domid);
	name = xs_read_str(xsh, path);
	if (name && *name)
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "vif%u.0", domid);
	free(name);
	return true;
}

static void *ovf_monitor(void *arg);

int tb_xen_output_attach(struct tb_dom *d, const struct tb_dom_cfg *dcfg)
{
	struct tb_netbuf_cfg cfg = { 0 };
	const char *env = getenv("TIBER_XEN_VIF");
	char why[256] = "";
	int rc;

	if (env && !strcmp(env, "none"))
		return 0;
	if (env && *env)
		snprintf(d->vif, sizeof(d->vif), "%s", env);
	else if (!tb_xen_dom_vif(d->xsh, d->domid, d->vif, sizeof(d->vif)))
		return 0; /* no vif: nothing to hold */
	cfg.vif = d->vif;
	d->ovf_pause = dcfg->output_overflow == TB_OVERFLOW_PAUSE;
	d->out_limit = dcfg->output_limit ? dcfg->output_limit : 8u << 20;
	cfg.limit_bytes = tb_xen_plug_limit(dcfg->output_limit, d->ovf_pause);
	rc = tb_netbuf_setup(&d->netbuf, &cfg, why, sizeof(why));
	if (rc) {
		tb_backend_set_reason(
			"dom%u: output commit on %s: %s (TIBER_XEN_VIF=none runs without)",
			d->domid, d->vif, why);
		return rc;
	}
	pthread_mutex_init(&d->nb_lock, NULL);
	if (d->ovf_pause) {
		rc = -pthread_create(&d->ovf_thread, NULL, ovf_monitor, d);
		if (rc) {
			tb_backend_set_reason("overflow monitor thread: %s",
					      strerror(-rc));
			return rc;
		}
		d->ovf_thread_started = true;
	}
	return 0;
}

/*
 * Overflow policy "pause".  The plug holds up to twice the limit.  The
 * kernel has no event for a qdisc's backlog, so a monitor thread samples
 * it (netlink qdisc stats) every OVF_SAMPLE_NS: at or over the limit
 * while the guest runs, the domain is paused (xc_domain_pause); under it,
 * unpaused.  A release unpauses at once when it brings the backlog under.
 * The next epoch's request unpauses the guest too, so it can reach its
 * suspend point: only a checkpoint of the state after the held output can
 * let that output go, so a guest held across epochs would hold its output
 * for ever; the monitor leaves it alone from the request to the resume.
 * Over the limit the guest thus runs only from a request to its suspend.
 * Callers hold nb_lock.
 */
#define OVF_SAMPLE_NS (10 * TB_NSEC_PER_MSEC)

static bool ovf_full(struct tb_dom *d)
{
	struct tb_netbuf_stats ns;

	return !tb_netbuf_get_stats(d->netbuf, &ns) &&
	       ns.held_bytes >= d->out_limit;
}

static void ovf_unpause(struct tb_dom *d)
{
	if (!d->ovf_paused)
		return;
	xc_domain_unpause(d->xch, d->domid);
	d->ovf_paused = false;
	d->st.output_overflow_pause_ns += (uint64_t)(tb_now_ns() - d->ovf_t0);
}

static void ovf_sample(struct tb_dom *d, bool full)
{
	if (d->ovf_in_epoch)
		return;
	if (!d->ovf_paused && full) {
		if (!xc_domain_pause(d->xch, d->domid)) {
			d->ovf_paused = true;
			d->ovf_t0 = tb_now_ns();
			d->st.output_overflow_pauses++;
		}
	} else if (d->ovf_paused && !full) {
		ovf_unpause(d);
	}
}

static void *ovf_monitor(void *arg)
{
	struct tb_dom *d = arg;
	struct timespec ts = { 0, OVF_SAMPLE_NS };

	for (;;) {
		uint64_t held = 0;
		/* the qdisc dump outside nb_lock: the epoch and sender
		 * threads must not wait for it */
		bool known = !tb_netbuf_backlog(d->netbuf, &held);

		pthread_mutex_lock(&d->nb_lock);
		if (d->ovf_stop) {
			ovf_unpause(d);
			pthread_mutex_unlock(&d->nb_lock);
			return NULL;
		}
		if (known)
			ovf_sample(d, held >= d->out_limit);
		pthread_mutex_unlock(&d->nb_lock);
		nanosleep(&ts, NULL);
	}
}

/* The epoch's hands-on phase: @on at the request, off at the resume. */
void tb_xen_output_epoch(struct tb_dom *d, bool on)
{
	if (!d->netbuf || !d->ovf_pause)
		return;
	pthread_mutex_lock(&d->nb_lock);
	d->ovf_in_epoch = on;
	if (on)
		ovf_unpause(d); /* let it reach its suspend point */
	pthread_mutex_unlock(&d->nb_lock);
}

/*
 * Output commit through xen_netbuf.c (plug qdisc behind an ifb that the
 * guest's vif ingress is redirected to).  Without a vif (or with
 * TIBER_XEN_VIF=none) these succeed without holding anything.
 */
int tb_xen_output_boundary(struct tb_dom *d, uint64_t epoch)
{
	int rc;

	if (!d->netbuf)
		return 0;
	pthread_mutex_lock(&d->nb_lock);
	rc = tb_netbuf_boundary(d->netbuf, epoch);
	pthread_mutex_unlock(&d->nb_lock);
	if (rc)
		tb_backend_set_reason("%s: plug buffer marker: %s", d->vif,
				      strerror(-rc));
	return rc;
}

int tb_xen_output_release(struct tb_dom *d, uint64_t epoch)
{
	int rc;

	if (!d->netbuf)
		return 0;
	pthread_mutex_lock(&d->nb_lock);
	rc = tb_netbuf_release(d->netbuf, epoch);
	pthread_mutex_unlock(&d->nb_lock);
	if (rc)
		tb_backend_set_reason("%s: plug release: %s", d->vif,
				      strerror(-rc));
	else if (d->ovf_pause) {
		pthread_mutex_lock(&d->nb_lock);
		if (d->ovf_paused && !ovf_full(d))
			ovf_unpause(d);
		pthread_mutex_unlock(&d->nb_lock);
	}
	return rc;
}

int tb_xen_output_set_gated(struct tb_dom *d, bool gated)
{
	int rc;

	if (!d->netbuf)
		return 0;
	pthread_mutex_lock(&d->nb_lock);
	rc = tb_netbuf_set_gated(d->netbuf, gated);
	if (!rc && !gated)
		ovf_unpause(d); /* nothing is held any more */
	pthread_mutex_unlock(&d->nb_lock);
	if (rc)
		tb_backend_set_reason("%s: plug %s: %s", d->vif,
				      gated ? "gate" : "release all",
				      strerror(-rc));
	return rc;
}

/* The output counters, over the backend's own in @st. */
void tb_xen_output_stats(struct tb_dom *d, struct tb_dom_stats *st)
{
	struct tb_netbuf_stats ns;

	if (!d->netbuf)
		return;
	pthread_mutex_lock(&d->nb_lock);
	if (!tb_netbuf_get_stats(d->netbuf, &ns)) {
		st->output_held_bytes = ns.held_bytes;
		st->output_released_bytes = ns.released_bytes;
		st->output_dropped_packets = ns.dropped_packets;
	}
	/* updated by the sender thread under nb_lock */
	st->output_overflow_pauses = d->st.output_overflow_pauses;
	st->output_overflow_pause_ns = d->st.output_overflow_pause_ns;
	pthread_mutex_unlock(&d->nb_lock);
}

/* Stop the overflow thread (it unpauses) before the buffering goes. */
static void stop_overflow(struct tb_dom *d)
{
	pthread_mutex_lock(&d->nb_lock);
	d->ovf_stop = true;
	pthread_mutex_unlock(&d->nb_lock);
	if (d->ovf_thread_started)
		pthread_join(d->ovf_thread, NULL);
}

/* Detach: the held output goes out (the guest runs on, unprotected). */
void tb_xen_output_teardown(struct tb_dom *d)
{
	if (!d->netbuf)
		return;
	stop_overflow(d);
	tb_netbuf_teardown(d->netbuf);
	d->netbuf = NULL;
	pthread_mutex_destroy(&d->nb_lock);
}

/* Destroy: the held output is dropped, never released. */
void tb_xen_output_discard(struct tb_dom *d)
{
	if (!d->netbuf)
		return;
	stop_overflow(d);
	tb_netbuf_discard(d->netbuf);
	d->netbuf = NULL;
	pthread_mutex_destroy(&d->nb_lock);
}
