// SPDX-License-Identifier: MIT
/*
 * tiber-replicator's Prometheus metrics (metrics_listen): per guest its
 * state, committed epoch, the commit's age and the replica's size; the
 * failovers done and the peers refused.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tiber/metrics.h"
#include "replicator.h"

/* One guest, copied under doms_lock. */
struct row {
	char lab[160]; /* its labels */
	enum dom_state state;
	double epoch, age_s, bytes; /* age_s < 0: nothing committed */
};

void repl_metrics(struct tb_buf *out, void *arg)
{
	static const char *const refused_why[] = { "handshake", "unauthorized",
						   "limits" };
	atomic_uint_fast64_t *refused[] = { &refused_handshakes,
					    &refused_unauthorized,
					    &refused_limits };
	int64_t now = tb_now_ns();
	struct row *rows = calloc(MAX_DOMS, sizeof(*rows)), *r;
	char l2[200], name[80];
	enum dom_state s;
	unsigned k, n = 0;
	int i;

	tb_metric_head(out, "tiber_replicator_failovers_total", "counter",
		       "guests restored here after their primary was lost");
	tb_metric(out, "tiber_replicator_failovers_total", "",
		  atomic_load(&failovers));
	tb_metric_head(out, "tiber_replicator_refused_total", "counter",
		       "peers refused, by reason");
	for (k = 0; k < 3; k++) {
		snprintf(l2, sizeof(l2), "reason=\"%s\"", refused_why[k]);
		tb_metric(out, "tiber_replicator_refused_total", l2,
			  (double)atomic_load(refused[k]));
	}
	if (!rows)
		return;
	pthread_mutex_lock(&doms_lock);
	for (i = 0; i < MAX_DOMS; i++) {
		const struct rdom *d = &doms[i];
		bool commit = d->have_rep && d->rep.have_commit;

		if (d->state == DOM_FREE)
			continue;
		r = &rows[n++];
		tb_metric_label(name, sizeof(name), d->name);
		snprintf(r->lab, sizeof(r->lab), "guest=\"%s\",domid=\"%u\"",
			 name, d->domid);
		r->state = d->state;
		r->epoch = commit ? (double)d->rep.committed_epoch : 0;
		r->age_s = commit && d->t_commit ?
				   (double)(now - d->t_commit) / 1e9 :
				   -1;
		r->bytes = d->have_rep ?
				   (double)d->rep.nr_pages * TB_PAGE_SIZE :
				   0;
	}
	pthread_mutex_unlock(&doms_lock);
	/* a family's samples stand together: one pass per family */
	tb_metric_head(out, "tiber_replica_state", "gauge",
		       "1 for each guest's current state");
	for (r = rows; r < rows + n; r++)
		for (s = DOM_ACTIVE; s <= DOM_FAILED_OVER; s++) {
			snprintf(l2, sizeof(l2), "%s,state=\"%s\"", r->lab,
				 repl_state_name(s));
			tb_metric(out, "tiber_replica_state", l2,
				  r->state == s);
		}
	tb_metric_head(out, "tiber_replica_committed_epoch", "gauge",
		       "the last epoch committed (0: none yet)");
	for (r = rows; r < rows + n; r++)
		tb_metric(out, "tiber_replica_committed_epoch", r->lab,
			  r->epoch);
	tb_metric_head(out, "tiber_replica_commit_age_seconds", "gauge",
		       "time since the last commit");
	for (r = rows; r < rows + n; r++)
		if (r->age_s >= 0)
			tb_metric(out, "tiber_replica_commit_age_seconds",
				  r->lab, r->age_s);
	tb_metric_head(out, "tiber_replica_bytes", "gauge",
		       "size of the guest's replica");
	for (r = rows; r < rows + n; r++)
		tb_metric(out, "tiber_replica_bytes", r->lab, r->bytes);
	free(rows);
}
