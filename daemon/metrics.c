// SPDX-License-Identifier: MIT
/*
 * tiberd's Prometheus metrics (metrics_listen): the engine status of the
 * protected guest, every sample labelled with the guest and its domain
 * id.  Counters end in _total, times are seconds, sizes bytes.
 */
#include <stdio.h>

#include "tiber/epoch.h"
#include "tiber/metrics.h"
#include "metrics.h"

/* One gauge or counter: its HELP/TYPE and the guest's sample. */
static void one(struct tb_buf *out, const char *lab, const char *name,
		const char *type, const char *help, double v)
{
	tb_metric_head(out, name, type, help);
	tb_metric(out, name, lab, v);
}

void tiberd_metrics(struct tb_buf *out, void *engine)
{
	struct tb_engine_status st;
	char lab[160], name[80], l2[240];
	unsigned p, i;
	enum tb_engine_state s;

	tb_engine_get_status(engine, &st);
	tb_metric_label(name, sizeof(name), st.info.name);
	snprintf(lab, sizeof(lab), "guest=\"%s\",domid=\"%u\"", name,
		 st.info.domid);
	tb_metric_head(out, "tiber_engine_state", "gauge",
		       "1 for the engine's current state");
	for (s = TB_ENG_STARTING; s <= TB_ENG_SWITCHED; s++) {
		snprintf(l2, sizeof(l2), "%s,state=\"%s\"", lab,
			 tb_engine_state_name(s));
		tb_metric(out, "tiber_engine_state", l2, st.state == s);
	}
	one(out, lab, "tiber_protected", "gauge",
	    "1 while the backup acks epochs (state protected)",
	    st.state == TB_ENG_PROTECTED);
	one(out, lab, "tiber_rate_hz", "gauge", "configured checkpoint rate",
	    st.rate_hz);
	one(out, lab, "tiber_epochs_started_total", "counter", "epochs taken",
	    (double)st.epochs_started);
	one(out, lab, "tiber_epochs_acked_total", "counter",
	    "epochs committed by the backup", (double)st.epochs_acked);
	one(out, lab, "tiber_last_acked_epoch", "gauge",
	    "the last epoch the backup committed", (double)st.last_acked_epoch);
	one(out, lab, "tiber_epochs_inflight", "gauge",
	    "epochs taken, not yet acked", (double)st.inflight);
	one(out, lab, "tiber_skipped_ticks_total", "counter",
	    "ticks without an epoch (the previous one not done)",
	    (double)st.skipped_ticks);
	one(out, lab, "tiber_deferred_ticks_total", "counter",
	    "ticks whose epoch waited for an ACK to free a slot",
	    (double)st.deferred_ticks);
	one(out, lab, "tiber_missed_ticks_total", "counter", "timer overruns",
	    (double)st.missed_ticks);
	one(out, lab, "tiber_suspend_timeouts_total", "counter",
	    "suspend requests cancelled at the deadline",
	    (double)st.suspend_timeouts);
	one(out, lab, "tiber_backup_losses_total", "counter",
	    "times the backup was lost", (double)st.backup_losses);
	one(out, lab, "tiber_resyncs_total", "counter",
	    "full syncs after the first", (double)st.resyncs);
	one(out, lab, "tiber_backup_lag_seconds", "gauge",
	    "age of the oldest unacked epoch", (double)st.backup_lag_ns / 1e9);
	one(out, lab, "tiber_raw_bytes_total", "counter",
	    "page and state bytes before encoding", (double)st.bytes_raw);
	one(out, lab, "tiber_wire_bytes_total", "counter",
	    "record bytes sent to the backup", (double)st.bytes_wire);
	one(out, lab, "tiber_output_held_bytes", "gauge",
	    "guest output held until its epoch is acked",
	    (double)st.dom.output_held_bytes);
	one(out, lab, "tiber_output_released_bytes_total", "counter",
	    "guest output released", (double)st.dom.output_released_bytes);
	one(out, lab, "tiber_output_dropped_bytes_total", "counter",
	    "guest output dropped", (double)st.dom.output_dropped_bytes);
	one(out, lab, "tiber_output_dropped_packets_total", "counter",
	    "guest packets dropped over the output limit",
	    (double)st.dom.output_dropped_packets);
	one(out, lab, "tiber_wp_faults_total", "counter",
	    "guest writes served by the write-protect fault thread (sim, "
	    "uffd-wp sync)",
	    (double)st.dom.wp_faults);
	one(out, lab, "tiber_cow_fault_copies_total", "counter",
	    "of them, pages copied before the write (mode cow)",
	    (double)st.dom.cow_fault_copies);
	one(out, lab, "tiber_output_overflow_pauses_total", "counter",
	    "guest paused because its held output reached the limit",
	    (double)st.dom.output_overflow_pauses);
	for (p = 0; p < TB_PH_MAX; p++) {
		const struct tb_phase_hist *h = &st.phase[p];
		uint64_t cum = 0;

		char help[96];

		snprintf(name, sizeof(name), "tiber_%s_seconds",
			 tb_phase_name(p));
		snprintf(help, sizeof(help),
			 "checkpoint phase '%s' per acked epoch",
			 tb_phase_name(p));
		tb_metric_head(out, name, "histogram", help);
		snprintf(name, sizeof(name), "tiber_%s_seconds_bucket",
			 tb_phase_name(p));
		for (i = 0; i < TB_PHASE_BUCKETS; i++) {
			cum += h->bucket[i];
			if (i + 1 < TB_PHASE_BUCKETS)
				snprintf(l2, sizeof(l2), "%s,le=\"%g\"", lab,
					 tb_phase_le[i]);
			else
				snprintf(l2, sizeof(l2), "%s,le=\"+Inf\"", lab);
			tb_metric(out, name, l2, (double)cum);
		}
		snprintf(name, sizeof(name), "tiber_%s_seconds_sum",
			 tb_phase_name(p));
		tb_metric(out, name, lab, h->sum_s);
		snprintf(name, sizeof(name), "tiber_%s_seconds_count",
			 tb_phase_name(p));
		tb_metric(out, name, lab, (double)h->count);
	}
}
