/* SPDX-License-Identifier: MIT */
/* tiberd's Prometheus metrics: see metrics.c. */
#ifndef TIBERD_METRICS_H
#define TIBERD_METRICS_H

#include "tiber/common.h"

/* tb_metrics_fn for a struct tb_engine *. */
void tiberd_metrics(struct tb_buf *out, void *engine);

#endif
