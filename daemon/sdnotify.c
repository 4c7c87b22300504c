// SPDX-License-Identifier: MIT
/*
 * tiberd's side of systemd's notification protocol (sd_notify, for
 * Type=notify units such as tiberd@.service), on a thread of its own:
 *   READY=1      once the guest is protected (its first sync committed on
 *                the backup), never before: `systemctl start` returns when
 *                the guest is safe;
 *   STATUS=      the engine state, acked epochs and backup lag;
 *   WATCHDOG=1   only while the epoch loop makes progress (ticks handled,
 *                or bytes sent during a first sync), so a stuck engine
 *                is restarted by WatchdogSec=.
 * Without $NOTIFY_SOCKET (not under systemd) nothing runs.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "tiber/log.h"
#include "sdnotify.h"

static pthread_t thread;
static bool running;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool stop;
static struct tb_engine *engine;
static int64_t period_ns;

static void *notifier(void *arg)
{
	struct tb_engine_status st;
	uint64_t ticks = 0, bytes = 0;
	bool ready = false, first = true, progress;
	struct timespec until;
	char msg[256];

	pthread_mutex_lock(&lock);
	while (!stop) {
		pthread_mutex_unlock(&lock);
		tb_engine_get_status(engine, &st);
		progress = first || st.loop_ticks != ticks ||
			   (st.state == TB_ENG_SYNCING &&
			    st.bytes_wire != bytes) ||
			   st.state == TB_ENG_STARTING;
		snprintf(msg, sizeof(msg),
			 "%s%sSTATUS=%s: %" PRIu64
			 " epochs acked, backup lag %.0f ms",
			 !ready && st.state == TB_ENG_PROTECTED ? "READY=1\n" :
								  "",
			 progress ? "WATCHDOG=1\n" : "",
			 tb_engine_state_name(st.state), st.epochs_acked,
			 st.backup_lag_ns / 1e6);
		if (!ready && st.state == TB_ENG_PROTECTED)
			ready = true;
		if (!progress)
			tb_warn("the epoch loop made no progress in %.1f s: not feeding systemd's watchdog",
				period_ns / 1e9);
		sd_notify(0, msg);
		ticks = st.loop_ticks;
		bytes = st.bytes_wire;
		first = false;
		pthread_mutex_lock(&lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += period_ns / TB_NSEC_PER_SEC;
		until.tv_nsec += period_ns % TB_NSEC_PER_SEC;
		if (until.tv_nsec >= TB_NSEC_PER_SEC) {
			until.tv_sec++;
			until.tv_nsec -= TB_NSEC_PER_SEC;
		}
		while (!stop && pthread_cond_timedwait(&cond, &lock, &until) !=
					ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&lock);
	return arg;
}

int tb_sd_start(struct tb_engine *e)
{
	pthread_condattr_t ca;
	uint64_t wd_usec = 0;
	int rc;

	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	/* feed the watchdog three times per WatchdogSec= (else: 1 s) */
	period_ns = TB_NSEC_PER_SEC;
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec)
		period_ns = (int64_t)wd_usec * 1000 / 3;
	engine = e;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&thread, NULL, notifier, NULL);
	if (rc) {
		tb_err_rc(rc, "systemd notifier thread");
		return rc;
	}
	running = true;
	return 0;
}

void tb_sd_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&lock);
	stop = true;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	running = false;
	sd_notify(0, "STOPPING=1");
}
