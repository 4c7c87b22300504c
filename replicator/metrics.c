// SPDX-License-Identifier: MIT
/*
 * tiber-replicator's Prometheus metrics (metrics_listen): per guest its
 * state, committed epoch, the commit's age and the replica's size; the
 * failovers done and the peers refused.
 */
#include <inttypes.h>
#include <stdio.h>

#include "tiber/metrics.h"
#include "replicator.h"

void repl_metrics(struct tb_buf *out, void *arg)
{
	static const char *const refused_why[] = { "handshake", "unauthorized",
						   "limits" };
	atomic_uint_fast64_t *refused[] = { &refused_handshakes,
					    &refused_unauthorized,
					    &refused_limits };
	int64_t now = tb_now_ns();
	char lab[160], l2[200], name[80];
	enum dom_state s;
	unsigned k;
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
	/* a family's samples stand together: one pass per family */
	for (k = 0; k < 4; k++) {
		static const char *const fam[][3] = {
			{ "tiber_replica_state", "gauge",
			  "1 for each guest's current state" },
			{ "tiber_replica_committed_epoch", "gauge",
			  "the last epoch committed (0: none yet)" },
			{ "tiber_replica_commit_age_seconds", "gauge",
			  "time since the last commit" },
			{ "tiber_replica_bytes", "gauge",
			  "size of the guest's replica" },
		};

		tb_metric_head(out, fam[k][0], fam[k][1], fam[k][2]);
		pthread_mutex_lock(&doms_lock);
		for (i = 0; i < MAX_DOMS; i++) {
			const struct rdom *d = &doms[i];
			bool commit = d->have_rep && d->rep.have_commit;

			if (d->state == DOM_FREE)
				continue;
			tb_metric_label(name, sizeof(name), d->name);
			snprintf(lab, sizeof(lab), "guest=\"%s\",domid=\"%u\"",
				 name, d->domid);
			if (k == 0) {
				for (s = DOM_ACTIVE; s <= DOM_FAILED_OVER;
				     s++) {
					snprintf(l2, sizeof(l2),
						 "%s,state=\"%s\"", lab,
						 repl_state_name(s));
					tb_metric(out, fam[k][0], l2,
						  d->state == s);
				}
			} else if (k == 1) {
				tb_metric(
					out, fam[k][0], lab,
					commit ?
						(double)d->rep.committed_epoch :
						0);
			} else if (k == 2 && commit && d->t_commit) {
				tb_metric(out, fam[k][0], lab,
					  (now - d->t_commit) / 1e9);
			} else if (k == 3) {
				tb_metric(out, fam[k][0], lab,
					  d->have_rep ?
						  (double)d->rep.nr_pages *
							  TB_PAGE_SIZE :
						  0);
			}
		}
		pthread_mutex_unlock(&doms_lock);
	}
}
