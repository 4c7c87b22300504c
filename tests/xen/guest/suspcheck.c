// SPDX-License-Identifier: MIT
/*
 * tg-suspcheck: dom0 checker for tiber-testguest's suspend event channel,
 * independent of tiberd.  Per cycle: notify the guest's advertised port,
 * wait for SHUTDOWN_suspend (Xen signals our bound port because it is
 * subscribed, then getdomaininfo confirms), optionally read and clear the
 * log-dirty bitmap, and fast-resume (xc_domain_resume(fast=1), so the
 * guest's suspend hypercall returns 1).
 *
 * usage: tg-suspcheck DOMID NCYCLES HZ [dirty|xs]
 *   dirty: also enable log-dirty and count dirty pages per cycle
 *   xs:    request by writing control/shutdown=suspend instead (fallback)
 * Prints one CYCLE line per cycle, SUMMARY lines (ms) and a RESULT line;
 * exits 0 only if every cycle suspended within 5 s and resumed.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenguest.h>
#include <xenstore.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void summary(const char *name, const double *v, int n)
{
	double *s, sum = 0;
	int i;

	if (n <= 0)
		return;
	s = malloc(n * sizeof(*s));
	if (!s)
		return;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	for (i = 0; i < n; i++)
		sum += s[i];
	printf("SUMMARY %-20s n=%d min=%.2f p50=%.2f p90=%.2f max=%.2f mean=%.2f ms\n",
	       name, n, s[0], s[n / 2], s[n * 9 / 10], s[n - 1], sum / n);
	free(s);
}

/* 1: shut down for suspend, 0: not, -errno: no such domain. */
static int dom_suspended(xc_interface *xch, uint32_t domid)
{
	xc_dominfo_t info;

	if (xc_domain_getinfo(xch, domid, 1, &info) != 1 ||
	    info.domid != domid)
		return -ESRCH;
	return info.shutdown && info.shutdown_reason == SHUTDOWN_suspend;
}

/* Wait for the guest's port number in device/suspend/event-channel. */
static int read_guest_port(struct xs_handle *xsh, uint32_t domid)
{
	char path[128];
	int i, port = -ENOENT;

	snprintf(path, sizeof(path),
		 "/local/domain/%u/device/suspend/event-channel", domid);
	for (i = 0; i < 100 && port < 0; i++) {
		unsigned int len;
		char *v = xs_read(xsh, XBT_NULL, path, &len);

		if (v && len)
			port = atoi(v);
		free(v);
		if (port < 0)
			usleep(100000);
	}
	printf("INFO %s = %d\n", path, port);
	return port;
}

int main(int argc, char **argv)
{
	xc_interface *xch = NULL;
	xenevtchn_handle *xce = NULL;
	struct xs_handle *xsh = NULL;
	double *t_req, *t_pause, *t_resume, period, next;
	uint32_t domid;
	int ncycles, gport, lport = -1, lockfd = -1, c, ok = 0, rc = 1;
	bool dirty, via_xs;
	char shutdown_path[128];
	xen_pfn_t nr_pfns = 0;
	size_t bm_bytes = 0;
	xc_shadow_op_stats_t stats;
	DECLARE_HYPERCALL_BUFFER(unsigned long, bitmap);

	if (argc < 4) {
		fprintf(stderr, "usage: %s DOMID NCYCLES HZ [dirty|xs]\n",
			argv[0]);
		return 2;
	}
	domid = strtoul(argv[1], NULL, 0);
	ncycles = atoi(argv[2]);
	period = 1000.0 / atof(argv[3]);
	dirty = argc > 4 && !strcmp(argv[4], "dirty");
	via_xs = argc > 4 && !strcmp(argv[4], "xs");
	snprintf(shutdown_path, sizeof(shutdown_path),
		 "/local/domain/%u/control/shutdown", domid);
	t_req = calloc(ncycles + 1, sizeof(double));
	t_pause = calloc(ncycles + 1, sizeof(double));
	t_resume = calloc(ncycles + 1, sizeof(double));

	xch = xc_interface_open(NULL, NULL, 0);
	xsh = xs_open(0);
	xce = xenevtchn_open(NULL, 0);
	if (!xch || !xsh || !xce || !t_req || !t_pause || !t_resume) {
		perror("open");
		goto out;
	}
	gport = read_guest_port(xsh, domid);
	if (gport < 0)
		goto out;
	lport = xc_suspend_evtchn_init_exclusive(xch, xce, domid, gport,
						 &lockfd);
	if (lport < 0) {
		printf("RESULT bind failed: %s\n", strerror(errno));
		goto out;
	}
	printf("INFO guest port %d bound to dom0 port %d, subscribed\n", gport,
	       lport);
	if (dirty) {
		if (xc_domain_nr_gpfns(xch, domid, &nr_pfns))
			goto out;
		bm_bytes = (nr_pfns + 63) / 64 * 8;
		bitmap = xc_hypercall_buffer_alloc_pages(
			xch, bitmap, (bm_bytes + 4095) / 4096);
		if (!bitmap || xc_shadow_control(
				       xch, domid,
				       XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
				       NULL, 0)) {
			printf("RESULT log-dirty failed: %s\n",
			       strerror(errno));
			goto out;
		}
		xc_logdirty_control(xch, domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
				    HYPERCALL_BUFFER(bitmap), nr_pfns, 0,
				    &stats);
	}

	next = now_ms();
	for (c = 0; c < ncycles; c++) {
		double t0, t1, t2, d = next - now_ms();
		long ndirty = 0;
		int s = 0;

		if (d > 0)
			usleep((useconds_t)(d * 1000));
		next = now_ms() + period;
		t0 = now_ms();
		if (via_xs) {
			if (!xs_write(xsh, XBT_NULL, shutdown_path, "suspend",
				      7)) {
				printf("CYCLE %d xs_write failed: %s\n", c,
				       strerror(errno));
				break;
			}
		} else if (xenevtchn_notify(xce, lport)) {
			printf("CYCLE %d notify failed: %s\n", c,
			       strerror(errno));
			break;
		}
		while (now_ms() < t0 + 5000) {
			struct pollfd pfd = { .fd = xenevtchn_fd(xce),
					      .events = POLLIN };

			if (poll(&pfd, 1, 50) > 0) {
				int p = xenevtchn_pending(xce);

				if (p >= 0)
					xenevtchn_unmask(xce, p);
			}
			s = dom_suspended(xch, domid);
			if (s)
				break;
		}
		t1 = now_ms();
		if (s != 1) {
			printf("CYCLE %d guest did not suspend within 5 s (state %d)\n",
			       c, s);
			break;
		}
		if (dirty) {
			size_t i;

			xc_logdirty_control(xch, domid,
					    XEN_DOMCTL_SHADOW_OP_CLEAN,
					    HYPERCALL_BUFFER(bitmap), nr_pfns,
					    0, &stats);
			for (i = 0; i < bm_bytes / 8; i++)
				ndirty += __builtin_popcountl(bitmap[i]);
		}
		t2 = now_ms();
		if (xc_domain_resume(xch, domid, 1)) {
			printf("CYCLE %d xc_domain_resume failed: %s\n", c,
			       strerror(errno));
			break;
		}
		t_req[ok] = t1 - t0;
		t_resume[ok] = now_ms() - t2;
		t_pause[ok] = now_ms() - t1;
		printf("CYCLE %d req->susp=%.2f resume=%.2f pause=%.2f ms dirty_pages=%ld\n",
		       c, t_req[ok], t_resume[ok], t_pause[ok], ndirty);
		ok++;
	}
	rc = ok == ncycles ? 0 : 1;
	printf("RESULT cycles_ok=%d of %d guest_state_after=%d\n", ok, ncycles,
	       dom_suspended(xch, domid));
	summary("request->suspended", t_req, ok);
	summary("xc_domain_resume", t_resume, ok);
	summary("pause", t_pause, ok);
out:
	if (dirty && xch)
		xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL,
				  0);
	if (bitmap)
		xc_hypercall_buffer_free_pages(xch, bitmap,
					       (bm_bytes + 4095) / 4096);
	if (lport >= 0)
		xc_suspend_evtchn_release(xch, xce, domid, lport, &lockfd);
	if (xce)
		xenevtchn_close(xce);
	if (xsh)
		xs_close(xsh);
	if (xch)
		xc_interface_close(xch);
	free(t_req);
	free(t_pause);
	free(t_resume);
	return rc;
}
