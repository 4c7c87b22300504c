// SPDX-License-Identifier: MIT
/*
 * tiber-replicator: the backup.  Accepts one primary per protected
 * domain, keeps a replica of the guest that always equals the last
 * acked epoch, answers heartbeats, and fails over when the primary is
 * lost.
 *
 * Invariants:
 * - ACK(N) is sent only after epoch N was verified and applied.
 * - A partial, corrupt or out-of-order epoch is discarded whole; the
 *   committed replica is what a failover restores.
 * - Failover happens when the primary is lost (silent past the heartbeat
 *   timeout, or its connection broke); never after an orderly goodbye
 *   (ERROR code 0), never while another live primary holds the domain,
 *   never twice, and never without a committed epoch.
 * - A protocol violation closes the connection without failing over:
 *   the primary is alive (it is talking) and will re-sync.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tiber/backend.h"
#include "tiber/config.h"
#include "tiber/log.h"
#include "tiber/replica.h"
#include "tiber/transport.h"

#define MAX_DOMS 64

enum dom_state {
	DOM_FREE,
	DOM_ACTIVE,
	DOM_IDLE,
	DOM_FAILED_OVER
};

struct rdom {
	enum dom_state state;
	uint32_t domid;
	char name[33];
	struct tb_replica rep;
	bool have_rep;
	struct tb_restore_res restored;
};

struct conn_ctx {
	struct tb_conn *conn;
	pthread_t thread;
	struct conn_ctx *next;
	atomic_bool done;
};

static struct {
	int64_t hb_interval_ns, hb_timeout_ns;
	bool failover;
	const char *restore_args;
	const struct tb_backend_ops *ops;
	const char *status_file;
	const char *dump_dir;
	bool exit_after_failover;
} opt = {
	.hb_interval_ns = 100 * TB_NSEC_PER_MSEC,
	.hb_timeout_ns = 1000 * TB_NSEC_PER_MSEC,
	.failover = true,
};

static pthread_mutex_t doms_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rdom doms[MAX_DOMS];
static atomic_bool stopping;
static atomic_int failovers;
static int stop_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	char c = 1;

	atomic_store(&stopping, true);
	if (write(stop_pipe[1], &c, 1) < 0)
		return;
}

static int send_buf(struct tb_conn *c, struct tb_buf *b)
{
	int rc = tb_conn_send(c, b->data, b->len,
			      tb_now_ns() + opt.hb_timeout_ns);

	tb_buf_reset(b);
	return rc;
}

static void send_error(struct tb_conn *c, int code, const char *text)
{
	struct tb_buf b = { 0 };

	if (!tb_enc_error(&b, (uint32_t)code, text))
		send_buf(c, &b);
	tb_buf_free(&b);
}

/* Claim the domain for this connection (split-brain guard). */
static struct rdom *claim(const struct tb_hello *h, char *why, size_t len)
{
	struct rdom *d = NULL, *free_d = NULL;
	int i;

	pthread_mutex_lock(&doms_lock);
	for (i = 0; i < MAX_DOMS; i++) {
		if (doms[i].state != DOM_FREE && doms[i].domid == h->domid &&
		    !strncmp(doms[i].name, h->name, sizeof(h->name)))
			d = &doms[i];
		else if (doms[i].state == DOM_FREE && !free_d)
			free_d = &doms[i];
	}
	if (d && d->state == DOM_ACTIVE) {
		snprintf(
			why, len,
			"domain %u (%s) is already protected by a live primary",
			h->domid, d->name);
		d = NULL;
	} else if (d && d->state == DOM_FAILED_OVER) {
		snprintf(
			why, len,
			"domain %u (%s) failed over: the guest runs on this host now",
			h->domid, d->name);
		d = NULL;
	} else if (!d && !free_d) {
		snprintf(why, len, "too many domains (%d)", MAX_DOMS);
	} else {
		if (!d) {
			d = free_d;
			memset(d, 0, sizeof(*d));
			d->domid = h->domid;
			memcpy(d->name, h->name, sizeof(h->name));
		}
		d->state = DOM_ACTIVE;
	}
	pthread_mutex_unlock(&doms_lock);
	return d;
}

static void release(struct rdom *d, enum dom_state st)
{
	pthread_mutex_lock(&doms_lock);
	d->state = st;
	pthread_mutex_unlock(&doms_lock);
}

static void failover(struct rdom *d, const char *cause, int64_t t_last_rx)
{
	struct tb_restore_req req = { 0 };
	int64_t t_detect = tb_now_ns(), t_restored;
	struct tb_replica *r = &d->rep;
	int rc;

	if (!opt.failover || !d->have_rep || !r->have_commit) {
		tb_err("dom=%u primary lost (%s); %s", d->domid, cause,
		       !opt.failover ? "failover disabled" :
				       "no committed epoch to restore");
		release(d, DOM_IDLE);
		return;
	}
	tb_err("dom=%u PRIMARY LOST (%s, last record %.1f ms ago): failing over from epoch %" PRIu64,
	       d->domid, cause, (t_detect - t_last_rx) / 1e6,
	       r->committed_epoch);
	req.name = d->name;
	req.domid = d->domid;
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
		release(d, DOM_IDLE);
		return;
	}
	tb_info("dom=%u FAILOVER DONE epoch=%" PRIu64
		" detect_ms=%.1f restore_ms=%.1f pid=%d domid=%u where=%s",
		d->domid, r->committed_epoch, (t_detect - t_last_rx) / 1e6,
		(t_restored - t_detect) / 1e6, (int)d->restored.pid,
		d->restored.domid, d->restored.where);
	if (opt.status_file) {
		FILE *f = fopen(opt.status_file, "a");

		if (f) {
			fprintf(f,
				"{\"event\":\"failover\",\"domid\":%u,\"epoch\":%" PRIu64
				",\"cause\":\"%s\",\"detect_ms\":%.3f,\"restore_ms\":%.3f,\"pid\":%d,\"where\":\"%s\"}\n",
				d->domid, r->committed_epoch, cause,
				(t_detect - t_last_rx) / 1e6,
				(t_restored - t_detect) / 1e6,
				(int)d->restored.pid, d->restored.where);
			fclose(f);
		}
	}
	release(d, DOM_FAILED_OVER);
	atomic_fetch_add(&failovers, 1);
	if (opt.exit_after_failover)
		on_signal(0);
}

/* Write the committed image and its epoch for offline checks. */
static void dump_replica(const struct rdom *d)
{
	const struct tb_replica *r = &d->rep;
	char path[512];
	size_t len = r->nr_pages * TB_PAGE_SIZE, off = 0;
	ssize_t n;
	FILE *f;
	int fd;

	if (!opt.dump_dir || !r->have_commit)
		return;
	snprintf(path, sizeof(path), "%s/dom%u.img", opt.dump_dir, d->domid);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		tb_warn_rc(-errno, "dump %s", path);
		return;
	}
	while (off < len && (n = write(fd, r->mem + off, len - off)) > 0)
		off += (size_t)n;
	close(fd);
	snprintf(path, sizeof(path), "%s/dom%u.json", opt.dump_dir, d->domid);
	f = fopen(path, "w");
	if (f) {
		fprintf(f,
			"{\"domid\":%u,\"epoch\":%" PRIu64 ",\"pages\":%" PRIu64
			"}\n",
			d->domid, r->committed_epoch, r->nr_pages);
		fclose(f);
	}
	tb_info("dom=%u dumped committed epoch=%" PRIu64 " to %s", d->domid,
		r->committed_epoch, opt.dump_dir);
}

static void *conn_main(void *arg)
{
	struct conn_ctx *cx = arg;
	struct tb_conn *c = cx->conn;
	struct tb_hello h, mine;
	struct tb_buf out = { 0 };
	struct rdom *d = NULL;
	struct tb_sess sess;
	struct tb_rec rec;
	char why[200];
	int64_t now, t_last_rx, next_hb;
	const char *lost = NULL;
	uint64_t hb_seq = 0, rx_bytes = 0;
	int rc, serr;

	rc = tb_conn_recv_rec(c, &rec, tb_now_ns() + opt.hb_timeout_ns);
	if (rc <= 0 || rec.type != TB_REC_HELLO ||
	    rec.u.hello.role != TB_ROLE_PRIMARY) {
		tb_warn("peer=%s no valid HELLO (%s)", tb_conn_peer(c),
			rc < 0 ? strerror(-rc) : "wrong first record");
		if (rc > 0)
			send_error(c, TB_SERR_BAD_ORDER, "expected HELLO");
		goto out;
	}
	h = rec.u.hello;
	d = claim(&h, why, sizeof(why));
	if (!d) {
		tb_warn("peer=%s refused: %s", tb_conn_peer(c), why);
		send_error(c, TB_SERR_BAD_FIELD, why);
		goto out;
	}
	if (d->have_rep && d->rep.nr_pages != h.nr_pages) {
		tb_replica_free(&d->rep);
		d->have_rep = false;
	}
	if (!d->have_rep) {
		rc = tb_replica_init(&d->rep, &h);
		if (rc) {
			tb_err("dom=%u replica: %s", h.domid, d->rep.err);
			send_error(c, TB_SERR_BAD_FIELD, d->rep.err);
			release(d, DOM_IDLE);
			d = NULL;
			goto out;
		}
		d->have_rep = true;
	}
	mine = h;
	mine.role = TB_ROLE_BACKUP;
	mine.features = h.features & TB_FEAT_ALL;
	if (tb_enc_hello(&out, &mine) || send_buf(c, &out)) {
		release(d, DOM_IDLE);
		d = NULL;
		goto out;
	}
	tb_info("dom=%u name=%s primary=%s pages=%" PRIu64 " connected",
		h.domid, d->name, tb_conn_peer(c), h.nr_pages);
	tb_sess_init(&sess, TB_ROLE_PRIMARY);
	tb_sess_check(&sess, &rec, NULL); /* the HELLO */
	t_last_rx = tb_now_ns();
	next_hb = t_last_rx + opt.hb_interval_ns;
	while (!atomic_load(&stopping)) {
		int64_t deadline =
			TB_MIN(next_hb, t_last_rx + opt.hb_timeout_ns);

		rc = tb_conn_recv_rec(c, &rec, deadline);
		now = tb_now_ns();
		if (rc == -ETIMEDOUT) {
			struct tb_conn_stats st;

			/* A big record on a slow link: bytes still flowing
			 * mean the primary is alive. */
			tb_conn_get_stats(c, &st);
			if (st.bytes_recv != rx_bytes) {
				rx_bytes = st.bytes_recv;
				t_last_rx = now;
			}
			if (now - t_last_rx >= opt.hb_timeout_ns) {
				lost = "heartbeat timeout";
				break;
			}
		} else if (rc == 0) {
			lost = "connection closed";
			break;
		} else if (rc < 0) {
			const struct tb_dec *dec = tb_conn_decoder(c);

			if (rc == -ECANCELED)
				break;
			if (dec->err && dec->err != TB_SERR_TRUNCATED) {
				tb_err("dom=%u bad stream from primary: %s; epoch %" PRIu64
				       " discarded, replica stays at epoch %" PRIu64,
				       d->domid, dec->msg, d->rep.epoch,
				       d->rep.committed_epoch);
				send_error(c, dec->err, dec->msg);
				tb_replica_abort(&d->rep);
				break;
			}
			lost = rc == -EPIPE ? "connection closed mid-record" :
					      "connection error";
			break;
		} else {
			t_last_rx = now;
			if (tb_sess_check(&sess, &rec, NULL)) {
				snprintf(why, sizeof(why),
					 "record type %u not allowed here",
					 rec.type);
				tb_err("dom=%u %s; epoch discarded, replica stays at epoch %" PRIu64,
				       d->domid, why, d->rep.committed_epoch);
				tb_replica_abort(&d->rep);
				send_error(c, TB_SERR_BAD_ORDER, why);
				break;
			}
			if (rec.type == TB_REC_ERROR) {
				if (rec.u.error.code == TB_SERR_NONE) {
					tb_info("dom=%u primary detached: %.*s",
						d->domid,
						(int)rec.u.error.text_len,
						rec.u.error.text);
					tb_replica_abort(&d->rep);
					dump_replica(d);
					break;
				}
				tb_err("dom=%u primary error %u: %.*s",
				       d->domid, rec.u.error.code,
				       (int)rec.u.error.text_len,
				       rec.u.error.text);
				tb_replica_abort(&d->rep);
				break;
			}
			rc = tb_replica_rec(&d->rep, &rec, &serr);
			if (rc < 0) {
				tb_err("dom=%u epoch rejected: %s; replica stays at epoch %" PRIu64,
				       d->domid, d->rep.err,
				       d->rep.committed_epoch);
				send_error(c, serr, d->rep.err);
				break;
			}
			if (rc == 1) {
				struct tb_ack ack = {
					.epoch = d->rep.committed_epoch
				};

				if (tb_enc_ack(&out, &ack) ||
				    send_buf(c, &out)) {
					lost = "ACK send failed";
					break;
				}
				next_hb = now + opt.hb_interval_ns;
				tb_dbg("dom=%u committed epoch=%" PRIu64,
				       d->domid, ack.epoch);
			}
		}
		if (now >= next_hb) {
			struct tb_heartbeat hb = {
				.seq = ++hb_seq,
				.time_ns = now,
				.last_epoch = d->rep.committed_epoch
			};

			if (tb_enc_heartbeat(&out, &hb) || send_buf(c, &out)) {
				lost = "heartbeat send failed";
				break;
			}
			next_hb = now + opt.hb_interval_ns;
		}
	}
	if (lost && !atomic_load(&stopping)) {
		tb_replica_abort(&d->rep);
		failover(d, lost, t_last_rx);
	} else {
		release(d, DOM_IDLE);
	}
out:
	tb_buf_free(&out);
	tb_conn_close(c);
	atomic_store(&cx->done, true);
	return NULL;
}

static void reap(struct conn_ctx **list, bool all)
{
	struct conn_ctx **pp = list, *cx;

	/* cppcheck-suppress uninitvar ; *pp is the list head or a next */
	while ((cx = *pp)) {
		if (all && !atomic_load(&cx->done))
			tb_conn_shutdown(cx->conn);
		if (all || atomic_load(&cx->done)) {
			pthread_join(cx->thread, NULL);
			*pp = cx->next;
			free(cx);
		} else {
			pp = &cx->next;
		}
	}
}

static const char *const backends[] = { "sim", "xen", NULL };
static const char *const levels[] = { "err", "warn", "info", "debug", NULL };

int main(int argc, char **argv)
{
	const char *listen_addr = NULL;
	struct conn_ctx *conns = NULL, *cx;
	struct tb_listener *l;
	int backend = 0, level = TB_LOG_INFO, rc, i;
	struct tb_opts o;
	const struct tb_opt table[] = {
		{ .key = "listen",
		  .type = TB_OPT_STR,
		  .dst = &listen_addr,
		  .help = "address to listen on: HOST:PORT, [V6]:PORT or unix:/path" },
		{ .key = "backend",
		  .type = TB_OPT_CHOICE,
		  .dst = &backend,
		  .help = "backend used to restore guests on failover",
		  .choices = backends },
		{ .key = "heartbeat_interval",
		  .type = TB_OPT_DURATION,
		  .dst = &opt.hb_interval_ns,
		  .help = "heartbeat period (default 100ms)",
		  .min = 1,
		  .max = 60000 },
		{ .key = "heartbeat_timeout",
		  .type = TB_OPT_DURATION,
		  .dst = &opt.hb_timeout_ns,
		  .help = "primary silent this long: lost (default 1s)",
		  .min = 1,
		  .max = 600000 },
		{ .key = "failover",
		  .type = TB_OPT_BOOL,
		  .dst = &opt.failover,
		  .help = "restore the guest when its primary is lost (default yes)" },
		{ .key = "restore_args",
		  .type = TB_OPT_STR,
		  .dst = &opt.restore_args,
		  .help = "backend-specific arguments for the restored guest" },
		{ .key = "status_file",
		  .type = TB_OPT_STR,
		  .dst = &opt.status_file,
		  .help = "append a JSON line per failover to this file" },
		{ .key = "dump_dir",
		  .type = TB_OPT_STR,
		  .dst = &opt.dump_dir,
		  .help = "write the committed image here when a primary detaches" },
		{ .key = "exit_after_failover",
		  .type = TB_OPT_BOOL,
		  .dst = &opt.exit_after_failover,
		  .help = "exit once a guest has been failed over" },
		{ .key = "log_level",
		  .type = TB_OPT_CHOICE,
		  .dst = &level,
		  .help = "log level",
		  .choices = levels },
	};

	tb_log_init("tiber-replicator", TB_LOG_INFO);
	tb_opts_init(&o, table, TB_ARRAY_SIZE(table));
	rc = tb_opts_parse_cli(
		&o, argc, argv,
		"usage: tiber-replicator --listen HOST:PORT [--config FILE]\n\n"
		"Backup side: keep a replica of every protected guest and fail\n"
		"over when its primary is lost.  Flags and config keys:\n");
	if (rc == 1) {
		tb_opts_free(&o);
		return 0;
	}
	if (!rc && !listen_addr) {
		snprintf(o.err, sizeof(o.err),
			 "key 'listen': missing (HOST:PORT to listen on)");
		rc = -EINVAL;
	}
	if (rc) {
		fprintf(stderr, "tiber-replicator: %s\n", o.err);
		tb_opts_free(&o);
		return 2;
	}
	tb_log_level = level;
	opt.ops = tb_backend_find(backends[backend]);
	if (pipe(stop_pipe)) {
		tb_err_rc(-errno, "pipe");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	rc = tb_listener_open(&l, listen_addr);
	if (rc) {
		tb_err_rc(rc, "listen %s", listen_addr);
		tb_opts_free(&o);
		return 1;
	}
	tb_info("listening on %s backend=%s heartbeat=%" PRId64
		"ms timeout=%" PRId64 "ms failover=%s",
		tb_listener_addr(l), backends[backend],
		opt.hb_interval_ns / TB_NSEC_PER_MSEC,
		opt.hb_timeout_ns / TB_NSEC_PER_MSEC,
		opt.failover ? "yes" : "no");
	while (!atomic_load(&stopping)) {
		struct tb_conn *c;

		rc = tb_listener_accept(l, &c, NULL,
					tb_now_ns() + 200 * TB_NSEC_PER_MSEC);
		reap(&conns, false);
		if (rc == -ETIMEDOUT || rc == -EINTR || rc == -ECANCELED)
			continue;
		if (rc) {
			tb_warn_rc(rc, "accept");
			continue;
		}
		cx = calloc(1, sizeof(*cx));
		if (!cx) {
			tb_conn_close(c);
			continue;
		}
		cx->conn = c;
		if (pthread_create(&cx->thread, NULL, conn_main, cx)) {
			tb_conn_close(c);
			free(cx);
			continue;
		}
		cx->next = conns;
		conns = cx;
	}
	reap(&conns, true);
	tb_listener_close(l);
	for (i = 0; i < MAX_DOMS; i++)
		if (doms[i].have_rep)
			tb_replica_free(&doms[i].rep);
	tb_info("stopped; failovers=%d", atomic_load(&failovers));
	tb_opts_free(&o);
	return 0;
}
