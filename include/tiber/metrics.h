/* SPDX-License-Identifier: MIT */
/*
 * A Prometheus scrape endpoint (text exposition format 0.0.4) served by
 * libmicrohttpd on its own thread: GET /metrics calls the daemon's
 * writer, anything else is 404.
 */
#ifndef TIBER_METRICS_H
#define TIBER_METRICS_H

#include "tiber/common.h"

/* Append the exposition text to @out (called on the server's thread). */
typedef void (*tb_metrics_fn)(struct tb_buf *out, void *arg);

struct tb_metrics;

/* Serve on @addr ("HOST:PORT" or "[V6]:PORT", numeric; port 0 = any).
 * 0 or -errno with the reason logged. */
int tb_metrics_start(struct tb_metrics **out, const char *addr,
		     tb_metrics_fn fn, void *arg);
/* The "HOST:PORT" actually bound. */
const char *tb_metrics_addr(const struct tb_metrics *m);
void tb_metrics_stop(struct tb_metrics *m);

/* Writers' helpers: "# HELP/# TYPE" once, then samples. */
void tb_metric_head(struct tb_buf *out, const char *name, const char *type,
		    const char *help);
/* One sample: @labels is "" or 'guest="web1"' (already escaped). */
void tb_metric(struct tb_buf *out, const char *name, const char *labels,
	       double value);
/* Escape @in for a label value into @out. */
void tb_metric_label(char *out, size_t len, const char *in);

#endif
