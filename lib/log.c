// SPDX-License-Identifier: MIT
/*
 * Log lines: time, program, level, function, message[: strerror].
 * Under journald (stderr is the stream $JOURNAL_STREAM names) a line
 * starts with its syslog priority ("<3>" ... "<7>") instead of the time,
 * which the journal adds.  Errors and warnings are rate-limited per call
 * site: a burst of them, then one line per window saying how many were
 * left out.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tiber/common.h"
#include "tiber/log.h"

int tb_log_level = TB_LOG_INFO;
static const char *log_ident = "tiber";
static const char *const level_names[] = { "err", "warn", "info", "debug" };
static const int syslog_prio[] = { 3, 4, 6, 7 };
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool journal;

/* rate limit of errors and warnings, per call site (format string) */
#define SITES 64
static unsigned rl_burst = 10;
static int64_t rl_window_ns = 10 * TB_NSEC_PER_SEC;
static struct {
	const char *fmt;
	int64_t start;
	unsigned lines;
	uint64_t quiet;
} sites[SITES];

void tb_log_init(const char *ident, int level)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	log_ident = ident;
	tb_log_level = level;
	journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
		  !fstat(2, &st) && st.st_dev == dev && st.st_ino == ino;
}

void tb_log_set_ratelimit(unsigned burst, int64_t window_ns)
{
	pthread_mutex_lock(&log_lock);
	rl_burst = burst;
	rl_window_ns = window_ns;
	memset(sites, 0, sizeof(sites));
	pthread_mutex_unlock(&log_lock);
}

/* Under log_lock: may this error/warning of @fmt be written?  *@quiet:
 * how many of it were left out before (to say so). */
static bool rate_ok(const char *fmt, int64_t now, uint64_t *quiet)
{
	unsigned i, slot = 0;

	*quiet = 0;
	for (i = 0; i < SITES; i++) {
		if (sites[i].fmt == fmt)
			break;
		if (sites[i].start < sites[slot].start)
			slot = i; /* else the oldest window */
	}
	if (i == SITES) {
		i = slot;
		sites[i].fmt = fmt;
		sites[i].start = now;
		sites[i].lines = 0;
		sites[i].quiet = 0;
	}
	if (now - sites[i].start >= rl_window_ns) {
		*quiet = sites[i].quiet;
		sites[i].start = now;
		sites[i].lines = 0;
		sites[i].quiet = 0;
	}
	if (sites[i].lines >= rl_burst) {
		sites[i].quiet++;
		return false;
	}
	sites[i].lines++;
	return true;
}

int tb_log_parse_level(const char *s)
{
	int i;

	for (i = 0; i < 4; i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -EINVAL;
}

void tb_log_emit(int level, const char *func, int rc, const char *fmt, ...)
{
	char msg[1024], when[40], more[64] = "";
	struct timespec ts;
	struct tm tm;
	uint64_t quiet = 0;
	va_list ap;

	if (level < 0)
		level = 0;
	if (level > 3)
		level = 3;
	pthread_mutex_lock(&log_lock);
	if (level <= TB_LOG_WARN && !rate_ok(fmt, tb_now_ns(), &quiet)) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	pthread_mutex_unlock(&log_lock);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (quiet)
		snprintf(more, sizeof(more),
			 " (%" PRIu64 " more like this not logged)", quiet);
	if (journal) {
		snprintf(when, sizeof(when), "<%d>", syslog_prio[level]);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + strlen(when), sizeof(when) - strlen(when),
			 ".%03ldZ ", ts.tv_nsec / 1000000);
	}
	pthread_mutex_lock(&log_lock);
	if (rc)
		fprintf(stderr, "%s%s %s: %s: %s: %s%s\n", when, log_ident,
			level_names[level], func, msg, tb_strerror(rc), more);
	else
		fprintf(stderr, "%s%s %s: %s: %s%s\n", when, log_ident,
			level_names[level], func, msg, more);
	pthread_mutex_unlock(&log_lock);
}
