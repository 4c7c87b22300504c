// SPDX-License-Identifier: MIT
/* Log lines: time, program, level, function, message[: strerror]. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tiber/common.h"
#include "tiber/log.h"

int tb_log_level = TB_LOG_INFO;
static const char *log_ident = "tiber";
static const char *const level_names[] = { "err", "warn", "info", "debug" };
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void tb_log_init(const char *ident, int level)
{
	log_ident = ident;
	tb_log_level = level;
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
	char msg[1024], when[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (level < 0)
		level = 0;
	if (level > 3)
		level = 3;
	pthread_mutex_lock(&log_lock);
	if (rc)
		fprintf(stderr, "%s.%03ldZ %s %s: %s: %s: %s\n", when,
			ts.tv_nsec / 1000000, log_ident, level_names[level],
			func, msg, tb_strerror(rc));
	else
		fprintf(stderr, "%s.%03ldZ %s %s: %s: %s\n", when,
			ts.tv_nsec / 1000000, log_ident, level_names[level],
			func, msg);
	pthread_mutex_unlock(&log_lock);
}
