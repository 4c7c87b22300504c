// SPDX-License-Identifier: MIT
/*
 * tiber-replicator: one primary's connection.  HELLO and the claim of
 * its domain, then epochs staged into the replica and ACKed once
 * applied, heartbeats both ways, and the decision that the primary is
 * lost.
 *
 * Invariants:
 * - ACK(N) is sent only after epoch N was verified and applied.
 * - A partial, corrupt or out-of-order epoch is discarded whole; the
 *   committed replica is what a failover restores.
 * - One live primary per domain (split-brain guard).
 * - A protocol violation closes the connection without failing over:
 *   the primary is alive (it is talking) and will re-sync.  So does an
 *   orderly goodbye (ERROR code 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>

#include "tiber/log.h"
#include "tiber/stream.h"
#include "replicator.h"

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

atomic_uint_fast64_t refused_handshakes, refused_unauthorized, refused_limits;
static atomic_uint handshaking;

/* Refusals logged per peer host and kind (counter): the first at once,
 * then at most one every REFUSAL_LOG_NS, with how many were not logged
 * in between. */
#define REFUSAL_HOSTS  64
#define REFUSAL_LOG_NS (10 * TB_NSEC_PER_SEC)
static struct {
	char host[64];
	const atomic_uint_fast64_t *kind;
	int64_t last;
	uint64_t quiet;
} refused_by[REFUSAL_HOSTS];
static pthread_mutex_t refusal_lock = PTHREAD_MUTEX_INITIALIZER;

/* A refusal: counted always, logged once per peer host with a rate
 * limit (a flood must not flood the log, nor hide another peer). */
static void refusal(atomic_uint_fast64_t *counter, const char *peer,
		    const char *why)
{
	int64_t now = tb_now_ns();
	size_t hl = strcspn(peer, ":"), i, slot = 0;
	uint64_t quiet;

	atomic_fetch_add(counter, 1);
	if (peer[0] == '[') /* [v6]:port */
		hl = strcspn(peer, "]") + 1;
	hl = TB_MIN(hl, sizeof(refused_by[0].host) - 1);
	pthread_mutex_lock(&refusal_lock);
	for (i = 0; i < REFUSAL_HOSTS; i++) {
		if (refused_by[i].kind == counter &&
		    !strncmp(refused_by[i].host, peer, hl) &&
		    !refused_by[i].host[hl]) {
			slot = i;
			break;
		}
		if (refused_by[i].last < refused_by[slot].last)
			slot = i; /* else the least recently logged */
	}
	if (i == REFUSAL_HOSTS) {
		memcpy(refused_by[slot].host, peer, hl);
		refused_by[slot].host[hl] = 0;
		refused_by[slot].kind = counter;
		refused_by[slot].last = 0;
		refused_by[slot].quiet = 0;
	}
	if (refused_by[slot].last &&
	    now - refused_by[slot].last < REFUSAL_LOG_NS) {
		refused_by[slot].quiet++;
		pthread_mutex_unlock(&refusal_lock);
		return;
	}
	quiet = refused_by[slot].quiet;
	refused_by[slot].quiet = 0;
	refused_by[slot].last = now;
	pthread_mutex_unlock(&refusal_lock);
	tb_warn("peer=%s refused: %s (%" PRIu64
		" more from it not logged; so far: %" PRIu64
		" handshakes, %" PRIu64 " unauthorized, %" PRIu64 " limits)",
		peer, why, quiet, (uint64_t)atomic_load(&refused_handshakes),
		(uint64_t)atomic_load(&refused_unauthorized),
		(uint64_t)atomic_load(&refused_limits));
}

/* TLS before anything else; at most max_handshakes strangers at once,
 * each for at most handshake_timeout.  false: refused (logged). */
static bool authenticate(struct tb_conn *c)
{
	char why[256];
	int rc;

	if (!opt.tls)
		return true;
	if (atomic_fetch_add(&handshaking, 1) >= opt.max_handshakes) {
		atomic_fetch_sub(&handshaking, 1);
		refusal(&refused_handshakes, tb_conn_peer(c),
			"too many connections still in the TLS handshake");
		return false;
	}
	rc = tb_conn_start_tls(c, opt.tls,
			       tb_now_ns() + opt.handshake_timeout_ns, why,
			       sizeof(why));
	atomic_fetch_sub(&handshaking, 1);
	if (rc) {
		refusal(&refused_handshakes, tb_conn_peer(c), why);
		return false;
	}
	tb_info("peer=%s authenticated as '%s' (%s)", tb_conn_peer(c),
		tb_conn_peer_id(c), tb_conn_tls_desc(c));
	return true;
}

/* May this peer protect the guest of HELLO @h, of the size it declares?
 * The backup's memory for a guest is bounded by the grant's MAXMEM and
 * max_guest_mem, never by what a peer declares.  false: refused (the
 * ERROR sent, counted, logged); nothing was touched. */
static bool admit(struct tb_conn *c, const struct tb_hello *h)
{
	char name[sizeof(h->name) + 1] = { 0 }, why[200];
	uint64_t grant, max;

	memcpy(name, h->name, sizeof(h->name));
	if (!repl_authz_allows(tb_conn_peer_id(c), name, &grant)) {
		snprintf(why, sizeof(why),
			 "'%s' may not protect guest '%s' (authorize_file)",
			 tb_conn_peer_id(c), name);
		refusal(&refused_unauthorized, tb_conn_peer(c), why);
		send_error(c, TB_ERROR_DENIED, why);
		return false;
	}
	if (tb_uuid_nil(h->uuid)) {
		snprintf(why, sizeof(why), "guest '%s': HELLO without a UUID",
			 name);
		tb_warn("peer=%s refused: %s", tb_conn_peer(c), why);
		send_error(c, TB_SERR_BAD_FIELD, why);
		return false;
	}
	max = grant && grant < opt.max_guest_mem ? grant : opt.max_guest_mem;
	if (h->nr_pages > max / TB_PAGE_SIZE) {
		snprintf(why, sizeof(why),
			 "guest '%s' of %" PRIu64
			 " MiB is larger than %s (%" PRIu64 " MiB)",
			 name, h->nr_pages / ((1u << 20) / TB_PAGE_SIZE),
			 max == grant ? "its grant in authorize_file" :
					"max_guest_mem",
			 max >> 20);
		refusal(&refused_limits, tb_conn_peer(c), why);
		send_error(c, TB_ERROR_DENIED, why);
		return false;
	}
	return true;
}

/* What a domain was before a session claimed it. */
struct prior {
	enum dom_state state;
	char cause[96];
	int64_t t_last_rx, t_due;
};

/* Claim the domain for this connection (split-brain guard).  NULL with
 * the ERROR code to refuse with in @code and the reason in @why. */
static struct rdom *claim(const struct tb_hello *h, const char *peer,
			  const char *peer_id, uint32_t *code, char *why,
			  size_t len, struct prior *prev)
{
	struct rdom *d = NULL, *free_d = NULL, *owned = NULL, *other = NULL;
	unsigned used = 0;
	int i;

	pthread_mutex_lock(&doms_lock);
	for (i = 0; i < MAX_DOMS; i++) {
		struct rdom *o = &doms[i];

		used += o->state != DOM_FREE;
		if (o->state != DOM_FREE && o->domid == h->domid &&
		    !strncmp(o->name, h->name, sizeof(h->name)))
			d = o;
		else if (o->state == DOM_FREE && !free_d)
			free_d = o;
		/* a guest's committed replica is bound to the primary that
		 * committed it: no other identity may take it over */
		if (o->state != DOM_FREE && o->have_rep && o->rep.have_commit &&
		    !strncmp(o->name, h->name, sizeof(h->name)) &&
		    o->peer_id[0] && peer_id &&
		    strcmp(o->peer_id, peer_id) != 0)
			owned = o;
		/* and to the guest: another guest under its name (a new VM
		 * called the same) must not replace it */
		if (o->state != DOM_FREE && o->have_rep && o->rep.have_commit &&
		    !strncmp(o->name, h->name, sizeof(h->name)) &&
		    memcmp(o->uuid, h->uuid, sizeof(o->uuid)) != 0)
			other = o;
	}
	*code = TB_SERR_BAD_FIELD;
	if (owned) {
		*code = TB_ERROR_DENIED;
		snprintf(
			why, len,
			"guest '%s': its committed replica belongs to primary '%s'",
			owned->name, owned->peer_id);
		d = NULL;
	} else if (other) {
		char have[TB_UUID_TEXT], got[TB_UUID_TEXT];

		*code = TB_ERROR_DENIED;
		tb_uuid_fmt(other->uuid, have);
		tb_uuid_fmt(h->uuid, got);
		snprintf(
			why, len,
			"guest '%s': the committed replica is of the guest with UUID %s, this HELLO's is %s; refused, the replica is kept",
			other->name, have, got);
		d = NULL;
	} else if (d && d->state == DOM_ACTIVE) {
		snprintf(
			why, len,
			"domain %u (%s) is already protected by a live primary",
			h->domid, d->name);
		d = NULL;
	} else if (d && d->state == DOM_FENCING) {
		*code = TB_ERROR_BUSY;
		snprintf(
			why, len,
			"domain %u (%s): failover under way (fencing its primary)",
			h->domid, d->name);
		d = NULL;
	} else if (d && d->state == DOM_FAILED_OVER) {
		*code = TB_ERROR_PROMOTED;
		snprintf(
			why, len,
			"domain %u (%s) failed over: the guest runs on this host now",
			h->domid, d->name);
		d = NULL;
	} else if (d && d->have_rep && d->rep.have_commit &&
		   d->rep.nr_pages != h->nr_pages) {
		/* a full sync of another size would replace the committed
		 * replica: a wipe, or a different guest under this name */
		snprintf(why, len,
			 "domain %u (%s): the committed replica has %" PRIu64
			 " pages, the HELLO declares %" PRIu64
			 "; refused, the replica is kept",
			 h->domid, d->name, d->rep.nr_pages, h->nr_pages);
		d = NULL;
	} else if (!d && (!free_d || used >= opt.max_guests)) {
		snprintf(why, len, "too many guests (max_guests %u)",
			 opt.max_guests);
	} else {
		if (!d) {
			d = free_d;
			memset(d, 0, sizeof(*d));
			d->domid = h->domid;
			memcpy(d->name, h->name, sizeof(h->name));
		}
		/* bound at the first commit: until then, whoever's */
		if (!(d->have_rep && d->rep.have_commit))
			memcpy(d->uuid, h->uuid, sizeof(d->uuid));
		/* for a session that dies before its first epoch */
		prev->state = d->state;
		memcpy(prev->cause, d->cause, sizeof(prev->cause));
		prev->t_last_rx = d->t_last_rx;
		prev->t_due = d->t_due;
		if (d->state == DOM_LOST)
			tb_info("dom=%u primary %s is back: failover cancelled",
				d->domid, peer);
		snprintf(d->peer, sizeof(d->peer), "%s", peer);
		snprintf(d->peer_id, sizeof(d->peer_id), "%.*s",
			 (int)sizeof(d->peer_id) - 1, peer_id ? peer_id : "");
		d->cause[0] = 0;
		d->state = DOM_ACTIVE;
	}
	pthread_mutex_unlock(&doms_lock);
	return d;
}

void repl_release(struct rdom *d, enum dom_state st)
{
	pthread_mutex_lock(&doms_lock);
	d->state = st;
	pthread_mutex_unlock(&doms_lock);
}

/* The session ended with nothing committed for its domain: nothing to
 * fail over to or keep, so its slot is freed (a peer cannot hold slots
 * by saying HELLO).  false: the domain has a committed replica. */
static bool free_if_empty(struct rdom *d, const char *why)
{
	if (d->have_rep && d->rep.have_commit)
		return false;
	if (d->have_rep)
		tb_replica_free(&d->rep);
	d->have_rep = false;
	tb_info("dom=%u session ended with nothing committed (%s): slot freed",
		d->domid, why);
	repl_release(d, DOM_FREE);
	return true;
}

/* Write the committed image and its epoch for offline checks. */
static void dump_replica(const struct rdom *d)
{
	const struct tb_replica *r = &d->rep;
	char path[512];
	size_t len = r->nr_pages * TB_PAGE_SIZE;
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
	/* best effort: a failed write leaves a short dump, unreported */
	(void)tb_write_all(fd, r->mem, len);
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

/*
 * Our send failed (the primary closed): records it sent before closing
 * may still be queued.  A goodbye among them means it is alive: then
 * the domain is idle (orderly close) or waits for it to reconnect.
 * Returns the new @lost (NULL: orderly close).
 */
static const char *drain_goodbye(struct tb_conn *c, const char *lost,
				 int64_t *wait_ns)
{
	int64_t deadline = tb_now_ns() + 200 * TB_NSEC_PER_MSEC;
	struct tb_rec rec;

	while (tb_conn_recv_rec(c, &rec, deadline) > 0) {
		if (rec.type != TB_REC_ERROR)
			continue;
		if (rec.u.error.code == TB_SERR_NONE)
			return NULL;
		if (rec.u.error.code == TB_ERROR_RECONNECTING) {
			*wait_ns = opt.reconnect_grace_ns;
			return "primary lost the backup and did not come back";
		}
		break;
	}
	return lost;
}

/* One primary's session: what the steps of repl_conn_main() share. */
struct session {
	struct tb_conn *c;
	struct rdom *d;	     /* its domain, once claimed */
	struct tb_buf out;   /* the record being sent */
	struct tb_sess sess; /* which record may come next */
	struct prior prev;   /* the domain before the claim */
	int64_t t_last_rx;   /* the primary's last record (or bytes of one) */
	int64_t next_hb;     /* our next heartbeat is due */
	int64_t lost_wait;   /* lost: wait this long, then fence */
	uint64_t hb_seq;     /* heartbeats sent */
	uint64_t rx_bytes;   /* bytes received when last looked at */
	const char *lost;    /* why the primary is lost, or NULL */
	bool handover, got_epoch;
};

/* Make the domain's replica for the size @h declares, unless it has
 * one of that size.  false: it could not be made (logged, the ERROR
 * sent, an empty slot freed). */
static bool prepare_replica(struct tb_conn *c, struct rdom *d,
			    const struct tb_hello *h)
{
	int rc;

	if (d->have_rep && d->rep.nr_pages != h->nr_pages) {
		tb_replica_free(&d->rep);
		d->have_rep = false;
	}
	if (d->have_rep) {
		tb_replica_set_features(&d->rep, h->features & TB_FEAT_ALL);
		return true;
	}
	rc = tb_replica_init(&d->rep, h);
	if (!rc && opt.disk_dir && *opt.disk_dir)
		rc = tb_replica_disks(&d->rep, opt.disk_dir,
				      opt.disk_spool_max);
	d->rep.disks.max_size = opt.max_disk_size;
	if (rc) {
		tb_err("dom=%u replica: %s", h->domid, d->rep.err);
		send_error(c, TB_SERR_BAD_FIELD, d->rep.err);
		free_if_empty(d, "no replica");
		return false;
	}
	d->have_rep = true;
	return true;
}

/*
 * TLS, the primary's HELLO, its admission and the claim of its domain,
 * the replica, our HELLO.  false: refused or failed (logged, the
 * domain released); true: s->d is this session's.
 */
static bool handshake(struct session *s)
{
	struct tb_conn *c = s->c;
	struct tb_hello h, mine;
	struct tb_rec rec;
	char why[320];
	uint32_t code;
	int rc;

	if (!authenticate(c))
		return false;
	rc = tb_conn_recv_rec(c, &rec, tb_now_ns() + opt.hb_timeout_ns);
	if (rc <= 0 || rec.type != TB_REC_HELLO ||
	    rec.u.hello.role != TB_ROLE_PRIMARY) {
		tb_warn("peer=%s no valid HELLO (%s)", tb_conn_peer(c),
			rc < 0 ? strerror(-rc) : "wrong first record");
		if (rc > 0)
			send_error(c, TB_SERR_BAD_ORDER, "expected HELLO");
		return false;
	}
	h = rec.u.hello;
	if (!admit(c, &h))
		return false;
	s->d = claim(&h, tb_conn_peer(c), tb_conn_peer_id(c), &code, why,
		     sizeof(why), &s->prev);
	if (!s->d) {
		if (code == TB_ERROR_DENIED)
			refusal(&refused_unauthorized, tb_conn_peer(c), why);
		else
			tb_warn("peer=%s refused: %s", tb_conn_peer(c), why);
		send_error(c, (int)code, why);
		return false;
	}
	if (!prepare_replica(c, s->d, &h))
		return false;
	mine = h;
	mine.role = TB_ROLE_BACKUP;
	mine.features = h.features & TB_FEAT_ALL;
	if (!opt.disk_dir || !*opt.disk_dir)
		mine.features &= ~TB_FEAT_DISK;
	if (tb_enc_hello(&s->out, &mine) || send_buf(c, &s->out)) {
		if (!free_if_empty(s->d, "HELLO not answered"))
			repl_release(s->d, DOM_IDLE);
		return false;
	}
	tb_info("dom=%u name=%s primary=%s pages=%" PRIu64 " connected",
		h.domid, s->d->name, tb_conn_peer(c), h.nr_pages);
	tb_sess_init(&s->sess, TB_ROLE_PRIMARY);
	tb_sess_check(&s->sess, &rec, NULL); /* the HELLO */
	s->t_last_rx = tb_now_ns();
	s->next_hb = s->t_last_rx + opt.hb_interval_ns;
	return true;
}

/* Send s->out (@rc: its encoder's result) and put the next heartbeat
 * off.  false: not sent; s->lost is @fail, or what the primary said
 * before it closed (drain_goodbye). */
static bool send_out(struct session *s, int rc, const char *fail, int64_t now)
{
	if (rc || send_buf(s->c, &s->out)) {
		s->lost = drain_goodbye(s->c, fail, &s->lost_wait);
		return false;
	}
	s->next_hb = now + opt.hb_interval_ns;
	return true;
}

/* Receiving failed (@rc < 0, not a timeout): a bad stream discards
 * the epoch (the primary is alive and will re-sync), a broken link
 * loses the primary, a cancelled receive (we stop) neither. */
static void recv_failed(struct session *s, int rc)
{
	const struct tb_dec *dec = tb_conn_decoder(s->c);
	struct rdom *d = s->d;

	if (rc == -ECANCELED)
		return;
	if (dec->err && dec->err != TB_SERR_TRUNCATED) {
		tb_err("dom=%u bad stream from primary: %s; epoch %" PRIu64
		       " discarded, replica stays at epoch %" PRIu64,
		       d->domid, dec->msg, d->rep.epoch,
		       d->rep.committed_epoch);
		send_error(s->c, dec->err, dec->msg);
		tb_replica_abort(&d->rep);
		return;
	}
	s->lost = rc == -EPIPE ? "connection closed mid-record" :
				 "connection error";
}

/* The primary's ERROR ends the session; its code says how: lost (it
 * will reconnect), handed over, detached (orderly), or failed. */
static void on_error(struct session *s, const struct tb_error *e)
{
	struct rdom *d = s->d;

	if (e->code == TB_ERROR_RECONNECTING) {
		/* Alive, but it may die before it is back: a longer wait,
		 * then the usual fencing. */
		tb_warn("dom=%u primary lost us and will reconnect: %.*s",
			d->domid, (int)e->text_len, e->text);
		tb_replica_abort(&d->rep);
		s->lost = "primary lost the backup and did not come back";
		s->lost_wait = opt.reconnect_grace_ns;
		return;
	}
	if (e->code == TB_ERROR_SWITCHOVER) {
		tb_replica_abort(&d->rep);
		s->handover = true;
		return;
	}
	if (e->code == TB_SERR_NONE) {
		tb_info("dom=%u primary detached: %.*s", d->domid,
			(int)e->text_len, e->text);
		tb_replica_abort(&d->rep);
		dump_replica(d);
		return;
	}
	tb_err("dom=%u primary error %u: %.*s", d->domid, e->code,
	       (int)e->text_len, e->text);
	tb_replica_abort(&d->rep);
}

/* A record from the primary, received at @now: staged into the replica;
 * a commit is applied and ACKed.  false: the session ends (logged). */
static bool on_record(struct session *s, const struct tb_rec *rec, int64_t now)
{
	struct rdom *d = s->d;
	char why[200];
	int rc, serr;

	s->t_last_rx = now;
	if (tb_sess_check(&s->sess, rec, NULL)) {
		snprintf(why, sizeof(why), "record type %u not allowed here",
			 rec->type);
		tb_err("dom=%u %s; epoch discarded, replica stays at epoch %" PRIu64,
		       d->domid, why, d->rep.committed_epoch);
		tb_replica_abort(&d->rep);
		send_error(s->c, TB_SERR_BAD_ORDER, why);
		return false;
	}
	if (rec->type == TB_REC_ERROR) {
		on_error(s, &rec->u.error);
		return false;
	}
	s->got_epoch = true;
	rc = tb_replica_rec(&d->rep, rec, &serr);
	if (rc < 0) {
		tb_err("dom=%u epoch rejected: %s; replica stays at epoch %" PRIu64,
		       d->domid, d->rep.err, d->rep.committed_epoch);
		send_error(s->c, serr, d->rep.err);
		return false;
	}
	if (rc == 1) {
		struct tb_ack ack = { .epoch = d->rep.committed_epoch };

		pthread_mutex_lock(&doms_lock);
		d->t_commit = now;
		pthread_mutex_unlock(&doms_lock);
		if (!send_out(s, tb_enc_ack(&s->out, &ack), "ACK send failed",
			      now))
			return false;
		tb_dbg("dom=%u committed epoch=%" PRIu64, d->domid, ack.epoch);
	}
	return true;
}

/* Records in, ACKs and heartbeats out, until the session ends: then
 * s->lost says why the primary is lost (NULL: it is not). */
static void serve(struct session *s)
{
	struct tb_rec rec;
	int64_t now;
	int rc;

	while (!atomic_load(&stopping)) {
		int64_t deadline =
			TB_MIN(s->next_hb, s->t_last_rx + opt.hb_timeout_ns);

		rc = tb_conn_recv_rec(s->c, &rec, deadline);
		now = tb_now_ns();
		if (rc == -ETIMEDOUT) {
			struct tb_conn_stats st;

			/* A big record on a slow link: bytes still flowing
			 * mean the primary is alive. */
			tb_conn_get_stats(s->c, &st);
			if (st.bytes_recv != s->rx_bytes) {
				s->rx_bytes = st.bytes_recv;
				s->t_last_rx = now;
			}
			if (now - s->t_last_rx >= opt.hb_timeout_ns) {
				s->lost = "heartbeat timeout";
				break;
			}
		} else if (rc == 0) {
			s->lost = "connection closed";
			break;
		} else if (rc < 0) {
			recv_failed(s, rc);
			break;
		} else if (!on_record(s, &rec, now)) {
			break;
		}
		if (now >= s->next_hb) {
			struct tb_heartbeat hb = {
				.seq = ++s->hb_seq,
				.time_ns = now,
				.last_epoch = s->d->rep.committed_epoch
			};

			if (!send_out(s, tb_enc_heartbeat(&s->out, &hb),
				      "heartbeat send failed", now))
				break;
		}
	}
}

/* The session is over: hand the guest over, free an empty slot, or act
 * on the loss of the primary; else the domain is idle. */
static void end_session(struct session *s)
{
	struct rdom *d = s->d;
	const char *lost = s->lost;

	if (s->handover && d->rep.have_commit) {
		repl_handover(d);
	} else if (free_if_empty(d, lost ? lost : "detached")) {
		/* nothing committed: nothing to fail over to */
	} else if (lost && !s->got_epoch && s->prev.state == DOM_LOST &&
		   !atomic_load(&stopping)) {
		/* A connection the primary had already given up (say, one
		 * queued while we were stalled): it changes nothing; the
		 * earlier loss goes on where it was. */
		tb_warn("dom=%u session ended before its first epoch (%s); primary still lost (%s)",
			d->domid, lost, s->prev.cause);
		tb_replica_abort(&d->rep);
		repl_primary_lost(d, s->prev.cause, s->prev.t_last_rx,
				  TB_MAX(s->prev.t_due - tb_now_ns(),
					 (int64_t)0));
	} else if (lost && !atomic_load(&stopping)) {
		tb_replica_abort(&d->rep);
		repl_primary_lost(d, lost, s->t_last_rx, s->lost_wait);
	} else {
		tb_replica_abort(&d->rep);
		repl_release(d, DOM_IDLE);
	}
}

void *repl_conn_main(void *arg)
{
	struct conn_ctx *cx = arg;
	struct session s = {
		.c = cx->conn,
		.prev = { .state = DOM_FREE },
		.lost_wait = opt.fence_delay_ns,
	};

	if (handshake(&s)) {
		serve(&s);
		end_session(&s);
	}
	tb_buf_free(&s.out);
	tb_conn_close(s.c);
	atomic_store(&cx->done, true);
	return NULL;
}
