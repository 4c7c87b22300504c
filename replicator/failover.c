// SPDX-License-Identifier: MIT
/*
 * tiber-replicator: failover.  Decides when a guest whose primary was
 * lost may run here, and restores it from the last committed epoch of
 * its replica; answers tiberctl (status, promote, reprotect).
 *
 * Invariants:
 * - No fencing, no failover: a guest is restored automatically only
 *   after fence_cmd reported its old primary stopped (exit 0).  Without
 *   fence_cmd the domain waits for an operator's `tiberctl promote`.
 * - Never without a committed epoch, never twice: FENCING and
 *   FAILED_OVER are taken under doms_lock by one thread only.
 * - A primary that comes back before fencing started gets its domain
 *   back (it is alive); once fencing started it is refused (BUSY), and
 *   after the failover told PROMOTED, so it stops its copy.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tiber/ctlsock.h"
#include "tiber/fence.h"
#include "tiber/log.h"
#include "tiber/tls.h"
#include "replicator.h"

/* Bytes for @n bytes of text escaped by tb_json_esc (at worst \u00XX). */
#define ESC_LEN(n) (6 * (n) + 1)

static const char *const state_names[] = {
	[DOM_FREE] = "free",
	[DOM_ACTIVE] = "protected",
	[DOM_IDLE] = "idle",
	[DOM_LOST] = "primary_lost",
	[DOM_FENCING] = "failing_over",
	[DOM_FAILED_OVER] = "failed_over",
};

const char *repl_state_name(enum dom_state st)
{
	return (unsigned)st < TB_ARRAY_SIZE(state_names) ? state_names[st] :
							   "?";
}

static void status_event(const struct rdom *d, const char *event,
			 const char *cause, int64_t t_last_rx, int64_t t_detect,
			 int64_t t_restored)
{
	char name[ESC_LEN(sizeof(d->name))], why[ESC_LEN(sizeof(d->cause))];
	char where[ESC_LEN(sizeof(d->restored.where))];
	FILE *f;

	if (!opt.status_file)
		return;
	f = fopen(opt.status_file, "a");
	if (!f) {
		tb_warn_rc(-errno, "status file %s", opt.status_file);
		return;
	}
	fprintf(f,
		"{\"event\":\"%s\",\"name\":\"%s\",\"domid\":%u,\"epoch\":%" PRIu64
		",\"cause\":\"%s\",\"detect_ms\":%.3f,\"restore_ms\":%.3f,\"pid\":%d,\"where\":\"%s\"}\n",
		event, tb_json_esc(name, sizeof(name), d->name), d->domid,
		d->rep.committed_epoch, tb_json_esc(why, sizeof(why), cause),
		(t_detect - t_last_rx) / 1e6, (t_restored - t_detect) / 1e6,
		(int)d->restored.pid,
		tb_json_esc(where, sizeof(where), d->restored.where));
	fclose(f);
}

/* Restore @d (state FENCING, owned by the caller) from its committed
 * epoch.  Sets FAILED_OVER, or LOST/IDLE again on error. */
static int restore(struct rdom *d, const char *cause, int64_t t_last_rx,
		   int64_t t_detect)
{
	struct tb_restore_req req = { 0 };
	struct tb_replica *r = &d->rep;
	char disk_path[TB_DISKS_MAX][300];
	int64_t t_restored;
	unsigned i;
	int rc;

	if (r->disks.broken) {
		tb_err("dom=%u failover refused: %s", d->domid, r->disks.err);
		repl_release(d, DOM_IDLE);
		return -EIO;
	}
	for (i = 0; i < TB_DISKS_MAX; i++) {
		if (!r->disks.size[i])
			break;
		tb_rdisks_path(&r->disks, i, disk_path[i],
			       sizeof(disk_path[i]));
		req.disk_path[i] = disk_path[i];
		req.nr_disks = i + 1;
	}

	req.name = d->name;
	req.domid = d->domid;
	memcpy(req.uuid, d->uuid, sizeof(req.uuid));
	req.nr_pages = r->nr_pages;
	req.mem_fd = r->mem_fd;
	req.cpu_state = r->cpu_state.data;
	req.cpu_state_len = r->cpu_state.len;
	req.dev_state = r->dev_state.data;
	req.dev_state_len = r->dev_state.len;
	req.state_tag = r->state_tag;
	req.epoch = r->committed_epoch;
	req.args = opt.restore_args;
	rc = opt.ops->restore(&req, &d->restored);
	t_restored = tb_now_ns();
	if (rc) {
		tb_err_rc(rc, "dom=%u failover restore: %s", d->domid,
			  tb_backend_reason());
		repl_release(d, DOM_IDLE);
		return rc;
	}
	tb_info("dom=%u FAILOVER DONE epoch=%" PRIu64
		" detect_ms=%.1f restore_ms=%.1f pid=%d domid=%u where=%s",
		d->domid, r->committed_epoch, (t_detect - t_last_rx) / 1e6,
		(t_restored - t_detect) / 1e6, (int)d->restored.pid,
		d->restored.domid, d->restored.where);
	status_event(d, "failover", cause, t_last_rx, t_detect, t_restored);
	repl_release(d, DOM_FAILED_OVER);
	atomic_fetch_add(&failovers, 1);
	if (opt.exit_after_failover)
		repl_stop();
	return 0;
}

/* Take @d from @from to FENCING if it is still there.  true: it is ours. */
static bool take(struct rdom *d, enum dom_state from)
{
	bool ok;

	pthread_mutex_lock(&doms_lock);
	ok = d->state == from;
	if (ok)
		d->state = DOM_FENCING;
	pthread_mutex_unlock(&doms_lock);
	return ok;
}

void repl_primary_lost(struct rdom *d, const char *cause, int64_t t_last_rx,
		       int64_t wait_ns)
{
	int64_t t_detect = tb_now_ns();
	bool have_commit = d->have_rep && d->rep.have_commit;
	int rc;

	if (opt.failover == FAILOVER_OFF || !have_commit) {
		tb_err("dom=%u primary lost (%s); %s", d->domid, cause,
		       have_commit ? "failover off" :
				     "no committed epoch to restore");
		repl_release(d, DOM_IDLE);
		return;
	}
	pthread_mutex_lock(&doms_lock);
	snprintf(d->cause, sizeof(d->cause), "%s", cause);
	d->t_last_rx = t_last_rx;
	d->t_due = t_detect + wait_ns;
	d->state = DOM_LOST;
	pthread_mutex_unlock(&doms_lock);
	if (opt.failover == FAILOVER_MANUAL ||
	    (opt.failover == FAILOVER_AUTO && !opt.fence_cmd)) {
		tb_err("dom=%u PRIMARY LOST (%s, last record %.1f ms ago): committed epoch %" PRIu64
		       " kept; NOT failing over without fencing: once the old primary is stopped, run `tiberctl promote %s`",
		       d->domid, cause, (t_detect - t_last_rx) / 1e6,
		       d->rep.committed_epoch, d->name);
		return;
	}
	tb_err("dom=%u PRIMARY LOST (%s, last record %.1f ms ago): %s in %.1f s, then failover from epoch %" PRIu64,
	       d->domid, cause, (t_detect - t_last_rx) / 1e6,
	       opt.failover == FAILOVER_UNSAFE_AUTO ?
		       "failover WITHOUT FENCING (unsafe-auto)" :
		       "fencing it",
	       wait_ns / 1e9, d->rep.committed_epoch);
	while (!atomic_load(&stopping)) {
		int64_t due;

		pthread_mutex_lock(&doms_lock);
		due = d->t_due;
		pthread_mutex_unlock(&doms_lock);
		if (tb_now_ns() < due) {
			tb_sleep_until(TB_MIN(
				due, tb_now_ns() + 50 * TB_NSEC_PER_MSEC));
			continue;
		}
		if (!take(d, DOM_LOST)) {
			tb_info("dom=%u primary is back: failover cancelled",
				d->domid);
			return;
		}
		if (opt.failover == FAILOVER_UNSAFE_AUTO) {
			restore(d, cause, t_last_rx, t_detect);
			return;
		}
		pthread_mutex_lock(&doms_lock);
		d->fence_attempts++;
		pthread_mutex_unlock(&doms_lock);
		rc = tb_fence_run("fence primary", opt.fence_cmd, d->name,
				  d->peer, opt.fence_timeout_ns);
		if (!rc) {
			restore(d, cause, t_last_rx, t_detect);
			return;
		}
		/* Not fenced: the old primary may live.  Stay LOST (it may
		 * come back and resync) and try again later. */
		pthread_mutex_lock(&doms_lock);
		d->fence_failures++;
		d->t_due = tb_now_ns() + opt.fence_retry_ns;
		d->state = DOM_LOST;
		pthread_mutex_unlock(&doms_lock);
		tb_err("dom=%u fencing failed: guest NOT restored; retrying in %.1f s (or `tiberctl promote %s` once the old primary is stopped)",
		       d->domid, opt.fence_retry_ns / 1e9, d->name);
	}
}

void repl_handover(struct rdom *d)
{
	int64_t now = tb_now_ns();

	tb_info("dom=%u SWITCHOVER: the primary stopped the guest after epoch %" PRIu64
		"; starting it here",
		d->domid, d->rep.committed_epoch);
	pthread_mutex_lock(&doms_lock);
	d->state = DOM_FENCING;
	pthread_mutex_unlock(&doms_lock);
	restore(d, "switchover", now, now);
}

/* ------------------------------------------------------------ tiberctl */

static struct rdom *find_locked(const char *name)
{
	int i;

	for (i = 0; i < MAX_DOMS; i++)
		if (doms[i].state != DOM_FREE && !strcmp(doms[i].name, name))
			return &doms[i];
	return NULL;
}

static void ctl_status(char *buf, size_t len)
{
	char name[ESC_LEN(sizeof(doms[0].name))];
	char peer[ESC_LEN(sizeof(doms[0].peer))];
	char peer_id[ESC_LEN(sizeof(doms[0].peer_id))];
	char cause[ESC_LEN(sizeof(doms[0].cause))];
	char where[ESC_LEN(sizeof(doms[0].restored.where))];
	char uuid[TB_UUID_TEXT];
	int64_t now = tb_now_ns();
	size_t off;
	int i, n;

	n = snprintf(
		buf, len,
		"{\"daemon\":\"replicator\",\"link\":\"%s\",\"refused_handshakes\":%" PRIu64
		",\"refused_unauthorized\":%" PRIu64
		",\"refused_limits\":%" PRIu64
		",\"failover\":\"%s\",\"fencing\":%s,\"guests\":[",
		opt.tls ? tb_tls_ctx_mode(opt.tls) : "insecure",
		(uint64_t)atomic_load(&refused_handshakes),
		(uint64_t)atomic_load(&refused_unauthorized),
		(uint64_t)atomic_load(&refused_limits),
		opt.failover == FAILOVER_AUTO ?
			(opt.fence_cmd ? "auto" : "manual (no fence_cmd)") :
		opt.failover == FAILOVER_MANUAL ? "manual" :
		opt.failover == FAILOVER_OFF	? "off" :
						  "unsafe-auto",
		opt.fence_cmd ? "true" : "false");
	off = n > 0 ? (size_t)n : 0;
	pthread_mutex_lock(&doms_lock);
	for (i = 0; i < MAX_DOMS && off < len; i++) {
		const struct rdom *d = &doms[i];
		bool commit = d->have_rep && d->rep.have_commit;

		if (d->state == DOM_FREE)
			continue;
		tb_uuid_fmt(d->uuid, uuid);
		n = snprintf(
			buf + off, len - off,
			"%s{\"name\":\"%s\",\"domid\":%u,\"state\":\"%s\",\"committed_epoch\":%" PRIu64
			",\"commit_age_ms\":%.1f,\"pages\":%" PRIu64
			",\"peer\":\"%s\",\"peer_id\":\"%s\",\"cause\":\"%s\",\"fence_attempts\":%" PRIu64
			",\"fence_failures\":%" PRIu64
			",\"restored\":\"%s\",\"reprotects\":%u,\"uuid\":\"%s\"}",
			off > 0 && buf[off - 1] == '}' ? "," : "",
			tb_json_esc(name, sizeof(name), d->name), d->domid,
			repl_state_name(d->state),
			commit ? d->rep.committed_epoch : 0,
			commit && d->t_commit ? (now - d->t_commit) / 1e6 :
						-1.0,
			d->have_rep ? d->rep.nr_pages : 0,
			tb_json_esc(peer, sizeof(peer), d->peer),
			tb_json_esc(peer_id, sizeof(peer_id), d->peer_id),
			tb_json_esc(cause, sizeof(cause),
				    d->state == DOM_LOST ? d->cause : ""),
			d->fence_attempts, d->fence_failures,
			tb_json_esc(where, sizeof(where),
				    d->state == DOM_FAILED_OVER ?
					    d->restored.where :
					    ""),
			d->reprotects, uuid);
		if (n > 0)
			off += (size_t)n;
	}
	pthread_mutex_unlock(&doms_lock);
	if (off + 3 < len)
		memcpy(buf + off, "]}", 3);
	else
		snprintf(buf, len, "{\"error\":\"status too long\"}");
}

static void ctl_promote(const char *name, char *buf, size_t len)
{
	char ename[ESC_LEN(TB_CTL_REQ_MAX)], why[ESC_LEN(256)];
	char where[ESC_LEN(sizeof(doms[0].restored.where))];
	struct rdom *d;
	enum dom_state st = DOM_FREE;
	bool ok = false;
	int64_t now = tb_now_ns(), t_last;

	pthread_mutex_lock(&doms_lock);
	d = find_locked(name);
	if (d) {
		st = d->state;
		ok = (st == DOM_LOST || st == DOM_IDLE) && d->have_rep &&
		     d->rep.have_commit;
		if (ok)
			d->state = DOM_FENCING;
	}
	pthread_mutex_unlock(&doms_lock);
	tb_json_esc(ename, sizeof(ename), name);
	if (!ok) {
		snprintf(
			buf, len, "{\"error\":\"cannot promote %s: %s\"}",
			ename,
			!d ? "no such guest" :
			st == DOM_ACTIVE ?
			     "a live primary protects it (tiberctl switchover on the primary)" :
			st == DOM_FENCING     ? "a failover is under way" :
			st == DOM_FAILED_OVER ? "it already runs here" :
						"no committed epoch");
		return;
	}
	tb_err("dom=%u PROMOTE by operator (tiberctl): the operator vouches that the old primary is stopped",
	       d->domid);
	t_last = d->t_last_rx ? d->t_last_rx : now;
	if (restore(d, "promoted by operator", t_last, now))
		snprintf(buf, len, "{\"error\":\"restore failed: %s\"}",
			 tb_json_esc(why, sizeof(why), tb_backend_reason()));
	else
		snprintf(buf, len,
			 "{\"ok\":true,\"name\":\"%s\",\"epoch\":%" PRIu64
			 ",\"where\":\"%s\"}",
			 ename, d->rep.committed_epoch,
			 tb_json_esc(where, sizeof(where), d->restored.where));
}

/* Where the guest that failed over to this host runs, for the tiberd
 * that protects it again (tiberctl reprotect).  The domain stays
 * FAILED_OVER here: its old primary is still refused (PROMOTED). */
static void ctl_reprotect(const char *name, char *buf, size_t len)
{
	char ename[ESC_LEN(TB_CTL_REQ_MAX)], backend[ESC_LEN(32)];
	char where[ESC_LEN(sizeof(doms[0].restored.where))];
	struct rdom *d;
	enum dom_state st = DOM_FREE;

	tb_json_esc(ename, sizeof(ename), name);
	pthread_mutex_lock(&doms_lock);
	d = find_locked(name);
	if (d && (st = d->state) == DOM_FAILED_OVER) {
		d->reprotects++;
		snprintf(
			buf, len,
			"{\"ok\":true,\"name\":\"%s\",\"backend\":\"%s\",\"domid\":%u,\"guest\":\"%s\",\"epoch\":%" PRIu64
			"}",
			ename,
			tb_json_esc(backend, sizeof(backend), opt.backend_name),
			d->restored.domid,
			tb_json_esc(where, sizeof(where), d->restored.where),
			d->rep.committed_epoch);
	}
	pthread_mutex_unlock(&doms_lock);
	if (d && st == DOM_FAILED_OVER) {
		tb_info("dom=%u REPROTECT: a tiberd protects the restored guest (%s) towards a new backup",
			d->domid, d->restored.where);
		return;
	}
	snprintf(buf, len, "{\"error\":\"cannot reprotect %s: %s\"}", ename,
		 !d ? "no such guest" : "it has not failed over to this host");
}

/* NAME of the command "VERB NAME" (one space, one word), else NULL.
 * (sscanf's "VERB %s" also took "VERBNAME" and "VERB NAME junk".) */
static const char *arg_of(const char *cmd, const char *verb)
{
	size_t n = strlen(verb);

	if (strncmp(cmd, verb, n) != 0 || cmd[n] != ' ' || !cmd[n + 1] ||
	    strpbrk(cmd + n + 1, " \t\v\f"))
		return NULL;
	return cmd + n + 1;
}

void repl_control(void *arg, const char *cmd, char *buf, size_t len)
{
	const char *name;

	if (!strcmp(cmd, "status"))
		ctl_status(buf, len);
	else if ((name = arg_of(cmd, "promote")))
		ctl_promote(name, buf, len);
	else if ((name = arg_of(cmd, "reprotect")))
		ctl_reprotect(name, buf, len);
	else
		snprintf(
			buf, len,
			"{\"error\":\"unknown command (status, promote NAME, reprotect NAME)\"}");
}
