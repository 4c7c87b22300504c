/* SPDX-License-Identifier: MIT */
/*
 * Logging.  One line per event, `key=value` with units, to stderr
 * (journald: a syslog priority prefix instead of the time; errors and
 * warnings rate-limited per call site).  The macros test the level before they
 * evaluate their arguments.  lib/ code returns codes and does not log,
 * except through these macros at debug level.
 *
 *   tb_err_rc(rc, "epoch=%" PRIu64 " dirty bitmap", epoch);
 *   -> 2026-11-23T20:41:02.123Z tiberd err: fn: epoch=812 dirty bitmap:
 *      Device or resource busy
 */
#ifndef TIBER_LOG_H
#define TIBER_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum tb_log_level {
	TB_LOG_ERR = 0,
	TB_LOG_WARN = 1,
	TB_LOG_INFO = 2,
	TB_LOG_DEBUG = 3,
};

extern int tb_log_level;

/* Program name shown on each line (e.g. "tiberd"). */
void tb_log_init(const char *ident, int level);
/* Errors and warnings of one call site: at most @burst lines per
 * @window_ns (default 10 per 10 s); the next line after a window says
 * how many were left out. */
void tb_log_set_ratelimit(unsigned burst, int64_t window_ns);
/* "err", "warn", "info", "debug" -> level, or -EINVAL. */
int tb_log_parse_level(const char *s);
void tb_log_emit(int level, const char *func, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define TB_LOG_(lvl, rc, ...)                                            \
	do {                                                             \
		if ((lvl) <= tb_log_level)                               \
			tb_log_emit((lvl), __func__, (rc), __VA_ARGS__); \
	} while (0)

#define tb_err(...)  TB_LOG_(TB_LOG_ERR, 0, __VA_ARGS__)
#define tb_warn(...) TB_LOG_(TB_LOG_WARN, 0, __VA_ARGS__)
#define tb_info(...) TB_LOG_(TB_LOG_INFO, 0, __VA_ARGS__)
#define tb_dbg(...)  TB_LOG_(TB_LOG_DEBUG, 0, __VA_ARGS__)
/* @rc is a -errno; its strerror is appended. */
#define tb_err_rc(rc, ...)  TB_LOG_(TB_LOG_ERR, (rc), __VA_ARGS__)
#define tb_warn_rc(rc, ...) TB_LOG_(TB_LOG_WARN, (rc), __VA_ARGS__)

#endif
