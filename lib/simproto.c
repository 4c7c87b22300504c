// SPDX-License-Identifier: MIT
/*
 * Simulated hypervisor protocol: event channels, store, output gate ring,
 * state blobs, fd passing.  Shared by tiber-simguest and lib/backend/sim*.c.
 *
 * Invariants:
 *  - An event channel end has one waiter.  notify() stores pending then
 *    loads sleeping; wait() stores sleeping then loads pending; all four
 *    are seq_cst, so at least one side sees the other: no lost wake-up.
 *  - An eventfd count without a pending bit is a spurious wake-up; wait()
 *    drains it and goes round again.
 *  - Store writers take store.lock; readers retry while seq is odd or
 *    changed (seqlock).
 *  - Gate ring: head only moves forward under the producers' own lock, tail
 *    only in the netback thread; a message never leaves before its tag is
 *    released (or the gate is open), and messages leave in order.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "tiber/simproto.h"

#define LDA(p)	  __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STR(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

size_t tb_sim_ctrl_size(uint64_t ram_size)
{
	uint64_t pages = ram_size / TB_PAGE_SIZE;
	uint64_t bm = TB_ALIGN_UP((pages + 7) / 8, (uint64_t)TB_PAGE_SIZE);

	return TB_SIM_CTRL_FIXED + bm;
}

/* ----------------------------------------------------------- evtchn */

void tb_sim_evtchn_notify(struct tb_sim_ctrl *c, const int *evtfds,
			  unsigned port, unsigned end)
{
	struct tb_sim_port_end *e;
	uint64_t one = 1;

	if (port >= TB_SIM_NR_PORTS || end > 1)
		return;
	e = &c->port[port].end[end];
	TB_ST(&e->pending, 1);
	if (TB_LD(&e->sleeping)) {
		/* EAGAIN (counter saturated) still leaves it readable. */
		if (write(evtfds[port * 2 + end], &one, sizeof(one)) < 0)
			(void)0;
	}
}

bool tb_sim_evtchn_consume(struct tb_sim_ctrl *c, unsigned port, unsigned end)
{
	if (port >= TB_SIM_NR_PORTS || end > 1)
		return false;
	if (!LDA(&c->port[port].end[end].pending))
		return false;
	return __atomic_exchange_n(&c->port[port].end[end].pending, 0,
				   __ATOMIC_SEQ_CST) != 0;
}

bool tb_sim_evtchn_retract(struct tb_sim_ctrl *c, unsigned port, unsigned end)
{
	return tb_sim_evtchn_consume(c, port, end);
}

static int ws_consume(struct tb_sim_ctrl *c, const struct tb_sim_waitset *ws)
{
	unsigned i;

	for (i = 0; i < ws->n; i++)
		if (tb_sim_evtchn_consume(c, ws->port[i], ws->end[i]))
			return (int)i;
	return -1;
}

static void ws_sleeping(struct tb_sim_ctrl *c, const struct tb_sim_waitset *ws,
			uint32_t v)
{
	unsigned i;

	for (i = 0; i < ws->n; i++)
		TB_ST(&c->port[ws->port[i]].end[ws->end[i]].sleeping, v);
}

int tb_sim_evtchn_wait(struct tb_sim_ctrl *c, const int *evtfds,
		       const struct tb_sim_waitset *ws, int64_t spin_ns,
		       int64_t deadline_ns)
{
	struct pollfd pfd[5];
	unsigned i, npfd;
	int64_t now, t_spin;
	int r;
	uint64_t v;

	if (ws->n == 0 || ws->n > 4)
		return -EINVAL;
	for (i = 0; i < ws->n; i++)
		if (ws->port[i] >= TB_SIM_NR_PORTS || ws->end[i] > 1)
			return -EINVAL;
	r = ws_consume(c, ws);
	if (r >= 0)
		return r;
	if (spin_ns > 0) {
		t_spin = tb_now_ns() + spin_ns;
		do {
			for (i = 0; i < 64; i++)
				cpu_relax();
			r = ws_consume(c, ws);
			if (r >= 0)
				return r;
		} while (tb_now_ns() < t_spin);
	}
	for (;;) {
		struct timespec ts, *tsp = NULL;

		ws_sleeping(c, ws, 1);
		r = ws_consume(c, ws);
		if (r >= 0)
			goto out;
		npfd = 0;
		for (i = 0; i < ws->n; i++) {
			pfd[npfd].fd = evtfds[ws->port[i] * 2 + ws->end[i]];
			pfd[npfd].events = POLLIN;
			npfd++;
		}
		if (ws->extra_fd >= 0) {
			pfd[npfd].fd = ws->extra_fd;
			pfd[npfd].events = POLLIN;
			npfd++;
		}
		if (deadline_ns > 0) {
			now = tb_now_ns();
			if (now >= deadline_ns) {
				r = -ETIMEDOUT;
				goto out;
			}
			ts.tv_sec = (deadline_ns - now) / TB_NSEC_PER_SEC;
			ts.tv_nsec = (deadline_ns - now) % TB_NSEC_PER_SEC;
			tsp = &ts;
		}
		r = ppoll(pfd, npfd, tsp, NULL);
		if (r < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		for (i = 0; i < ws->n; i++)
			if (r > 0 && (pfd[i].revents & POLLIN))
				(void)!read(pfd[i].fd, &v, sizeof(v));
		r = ws_consume(c, ws);
		if (r >= 0)
			goto out;
		if (ws->extra_fd >= 0 && pfd[npfd - 1].revents) {
			r = (int)ws->n;
			goto out;
		}
	}
out:
	ws_sleeping(c, ws, 0);
	return r;
}

int tb_sim_evtchn_alloc(struct tb_sim_ctrl *c, int want)
{
	uint32_t expect;
	unsigned p;

	if (want > 0) {
		if (want >= TB_SIM_NR_PORTS)
			return -EINVAL;
		expect = TB_SIM_PORT_FREE;
		if (!__atomic_compare_exchange_n(
			    &c->port[want].state, &expect, TB_SIM_PORT_UNBOUND,
			    false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return -EBUSY;
		return want;
	}
	for (p = TB_SIM_PORT_FIRST_DYN; p < TB_SIM_NR_PORTS; p++) {
		expect = TB_SIM_PORT_FREE;
		if (__atomic_compare_exchange_n(
			    &c->port[p].state, &expect, TB_SIM_PORT_UNBOUND,
			    false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return (int)p; /* pending bits kept: see alloc's doc */
	}
	return -ENOSPC;
}

void tb_sim_evtchn_free(struct tb_sim_ctrl *c, unsigned port)
{
	if (port >= TB_SIM_PORT_FIRST_DYN && port < TB_SIM_NR_PORTS)
		TB_ST(&c->port[port].state, TB_SIM_PORT_FREE);
}

/* ----------------------------------------------------------- store */

static void store_lock(struct tb_sim_store *s)
{
	tb_sim_spin_lock(&s->lock);
	/* seqlock: odd while writing */
	__atomic_add_fetch(&s->seq, 1, __ATOMIC_SEQ_CST);
}

static void store_unlock(struct tb_sim_store *s)
{
	__atomic_add_fetch(&s->watch_gen, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&s->seq, 1, __ATOMIC_SEQ_CST);
	tb_sim_spin_unlock(&s->lock);
}

static int store_find(struct tb_sim_store *s, const char *key)
{
	int i;

	for (i = 0; i < TB_SIM_STORE_SLOTS; i++)
		if (!strncmp(s->slot[i].key, key, TB_SIM_KEY_MAX))
			return i;
	return -1;
}

static int store_check(const char *key, const char *val)
{
	if (!*key || strlen(key) >= TB_SIM_KEY_MAX)
		return -ENAMETOOLONG;
	if (val && strlen(val) >= TB_SIM_VAL_MAX)
		return -E2BIG;
	return 0;
}

static int store_put_locked(struct tb_sim_store *s, const char *key,
			    const char *val)
{
	int i = store_find(s, key);

	if (i < 0)
		i = store_find(s, "");
	if (i < 0)
		return -ENOSPC;
	memset(&s->slot[i], 0, sizeof(s->slot[i]));
	memcpy(s->slot[i].key, key, strlen(key));
	memcpy(s->slot[i].val, val, strlen(val));
	return 0;
}

int tb_sim_store_write(struct tb_sim_store *s, const char *key, const char *val)
{
	int rc = store_check(key, val);

	if (rc)
		return rc;
	store_lock(s);
	rc = store_put_locked(s, key, val);
	store_unlock(s);
	return rc;
}

int tb_sim_store_read(struct tb_sim_store *s, const char *key, char *val,
		      size_t len)
{
	struct tb_sim_store_slot tmp;
	uint32_t s0, s1;
	int i, found;

	if (store_check(key, NULL) || !len)
		return -EINVAL;
	do {
		s0 = TB_LD(&s->seq);
		while (s0 & 1) {
			cpu_relax();
			s0 = TB_LD(&s->seq);
		}
		found = 0;
		for (i = 0; i < TB_SIM_STORE_SLOTS; i++) {
			/* racy copy, validated by the seq re-check */
			memcpy(&tmp, (const void *)&s->slot[i], sizeof(tmp));
			tmp.key[TB_SIM_KEY_MAX - 1] = 0;
			tmp.val[TB_SIM_VAL_MAX - 1] = 0;
			if (!strcmp(tmp.key, key)) {
				found = 1;
				break;
			}
		}
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		s1 = TB_LD(&s->seq);
	} while (s0 != s1);
	if (!found)
		return -ENOENT;
	snprintf(val, len, "%s", tmp.val);
	return 0;
}

int tb_sim_store_rm(struct tb_sim_store *s, const char *key)
{
	int i, rc = store_check(key, NULL);

	if (rc)
		return rc;
	store_lock(s);
	i = store_find(s, key);
	if (i < 0)
		rc = -ENOENT;
	else
		memset(&s->slot[i], 0, sizeof(s->slot[i]));
	store_unlock(s);
	return rc;
}

int tb_sim_store_cmpxchg(struct tb_sim_store *s, const char *key,
			 const char *expect, const char *val)
{
	int i, rc = store_check(key, val);
	const char *cur;

	if (rc)
		return rc;
	store_lock(s);
	i = store_find(s, key);
	cur = i < 0 ? "" : s->slot[i].val;
	if (strncmp(cur, expect, TB_SIM_VAL_MAX) != 0) {
		rc = -EAGAIN;
	} else if (!*val) {
		if (i >= 0)
			memset(&s->slot[i], 0, sizeof(s->slot[i]));
	} else {
		rc = store_put_locked(s, key, val);
	}
	store_unlock(s);
	return rc;
}

/* ----------------------------------------------------------- gate */

#define REC_SZ sizeof(struct tb_sim_gate_rec)

uint64_t tb_sim_gate_room(const struct tb_sim_gate *g)
{
	return g->ring_size - (LDA(&g->head) - LDA(&g->tail));
}

static void ring_put(uint8_t *ring, uint64_t size, uint64_t off, const void *p,
		     size_t n)
{
	uint64_t o = off & (size - 1);
	size_t first = TB_MIN(n, (size_t)(size - o));

	memcpy(ring + o, p, first);
	if (first < n)
		memcpy(ring, (const uint8_t *)p + first, n - first);
}

static void ring_get(const uint8_t *ring, uint64_t size, uint64_t off, void *p,
		     size_t n)
{
	uint64_t o = off & (size - 1);
	size_t first = TB_MIN(n, (size_t)(size - o));

	memcpy(p, ring + o, first);
	if (first < n)
		memcpy((uint8_t *)p + first, ring, n - first);
}

int tb_sim_gate_append(struct tb_sim_gate *g, uint8_t *ring, uint32_t conn,
		       const void *p, uint32_t len)
{
	struct tb_sim_gate_rec rec;
	uint64_t need = REC_SZ + TB_ALIGN_UP((uint64_t)len, 8);
	uint64_t head = g->head;

	if (need > g->ring_size)
		return -EMSGSIZE;
	if (tb_sim_gate_room(g) < need)
		return -EAGAIN;
	rec.len = len;
	rec.conn = conn;
	rec.tag = TB_LD(&g->cur_epoch) + 1;
	ring_put(ring, g->ring_size, head, &rec, REC_SZ);
	ring_put(ring, g->ring_size, head + REC_SZ, p, len);
	__atomic_add_fetch(&g->held_bytes, len, __ATOMIC_RELAXED);
	STR(&g->head, head + need);
	return 0;
}

int tb_sim_gate_peek(struct tb_sim_gate *g, const uint8_t *ring,
		     struct tb_sim_gate_rec *rec, uint8_t *scratch,
		     size_t scratch_len)
{
	uint64_t tail = g->tail;

	if (LDA(&g->head) == tail)
		return 0;
	ring_get(ring, g->ring_size, tail, rec, REC_SZ);
	if (TB_LD(&g->mode) != TB_SIM_GATE_OPEN &&
	    rec->tag > TB_LD(&g->released_epoch))
		return 0;
	if (rec->len > scratch_len)
		return -EMSGSIZE;
	ring_get(ring, g->ring_size, tail + REC_SZ, scratch, rec->len);
	return 1;
}

void tb_sim_gate_pop(struct tb_sim_gate *g, const struct tb_sim_gate_rec *rec,
		     bool sent)
{
	uint64_t need = REC_SZ + TB_ALIGN_UP((uint64_t)rec->len, 8);

	__atomic_sub_fetch(&g->held_bytes, rec->len, __ATOMIC_RELAXED);
	if (sent) {
		__atomic_add_fetch(&g->released_bytes, rec->len,
				   __ATOMIC_RELAXED);
		__atomic_add_fetch(&g->msgs_released, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&g->dropped_bytes, rec->len,
				   __ATOMIC_RELAXED);
	}
	STR(&g->tail, g->tail + need);
}

/* ----------------------------------------------------------- blobs */

static int put_hdr(struct tb_buf *out, uint32_t magic, uint32_t count,
		   uint32_t length)
{
	struct tb_sim_blob_hdr h;

	tb_put_le32(&h.magic, magic);
	tb_put_le32(&h.version, TB_SIM_VERSION);
	tb_put_le32(&h.count, count);
	tb_put_le32(&h.length, length);
	return tb_buf_append(out, &h, sizeof(h));
}

int tb_sim_blob_put_cpu(struct tb_buf *out, const struct tb_sim_vcpu *v,
			uint32_t nr)
{
	struct tb_sim_vcpu w;
	uint32_t i;
	int rc;

	if (nr > TB_SIM_MAX_VCPUS)
		return -EINVAL;
	rc = tb_buf_reserve(out,
			    sizeof(struct tb_sim_blob_hdr) + nr * sizeof(w));
	if (rc)
		return rc;
	rc = put_hdr(out, TB_SIM_BLOB_CPU, nr, nr * (uint32_t)sizeof(w));
	for (i = 0; !rc && i < nr; i++) {
		memset(&w, 0, sizeof(w));
		tb_put_le32(&w.id, v[i].id);
		tb_put_le32(&w.kind, v[i].kind);
		tb_put_le64(&w.rng, v[i].rng);
		tb_put_le64(&w.pos, v[i].pos);
		tb_put_le64(&w.ops, v[i].ops);
		tb_put_le64(&w.lane_seq, v[i].lane_seq);
		rc = tb_buf_append(out, &w, sizeof(w));
	}
	return rc;
}

static int get_hdr(const void *p, size_t len, uint32_t magic,
		   struct tb_sim_blob_hdr *h)
{
	if (len < sizeof(*h))
		return -EPROTO;
	h->magic = tb_get_le32(p);
	h->version = tb_get_le32((const uint8_t *)p + 4);
	h->count = tb_get_le32((const uint8_t *)p + 8);
	h->length = tb_get_le32((const uint8_t *)p + 12);
	if (h->magic != magic || h->version != TB_SIM_VERSION)
		return -EPROTO;
	if (h->length > len - sizeof(*h))
		return -EPROTO;
	return 0;
}

int tb_sim_blob_get_cpu(const void *p, size_t len, struct tb_sim_vcpu *v,
			uint32_t *nr, size_t *used)
{
	struct tb_sim_blob_hdr h;
	const uint8_t *b = (const uint8_t *)p + sizeof(h);
	uint32_t i;
	int rc = get_hdr(p, len, TB_SIM_BLOB_CPU, &h);

	if (rc)
		return rc;
	if (h.count > TB_SIM_MAX_VCPUS ||
	    h.length != h.count * sizeof(struct tb_sim_vcpu))
		return -EPROTO;
	for (i = 0; i < h.count; i++, b += sizeof(struct tb_sim_vcpu)) {
		memset(&v[i], 0, sizeof(v[i]));
		v[i].id = tb_get_le32(b);
		v[i].kind = tb_get_le32(b + 4);
		v[i].rng = tb_get_le64(b + 8);
		v[i].pos = tb_get_le64(b + 16);
		v[i].ops = tb_get_le64(b + 24);
		v[i].lane_seq = tb_get_le64(b + 32);
	}
	*nr = h.count;
	*used = sizeof(h) + h.length;
	return 0;
}

/* The device blob body is the struct with every integer little-endian;
 * the strings are NUL-padded byte arrays. */
int tb_sim_blob_put_dev(struct tb_buf *out, const struct tb_sim_dev_state *d)
{
	struct tb_sim_dev_state w;
	int rc;

	memcpy(&w, d, sizeof(w));
	tb_put_le32(&w.features, d->features);
	tb_put_le32(&w.static_port, d->static_port);
	tb_put_le64(&w.gate_cur_epoch, d->gate_cur_epoch);
	tb_put_le64(&w.gate_released_epoch, d->gate_released_epoch);
	tb_put_le32(&w.gate_mode, d->gate_mode);
	tb_put_le32(&w.nr_slots, TB_SIM_STORE_SLOTS);
	tb_put_le64(&w.suspends, d->suspends);
	tb_put_le64(&w.suspend_cancels, d->suspend_cancels);
	tb_put_le64(&w.restores, d->restores);
	rc = put_hdr(out, TB_SIM_BLOB_DEV, 1, sizeof(w));
	if (!rc)
		rc = tb_buf_append(out, &w, sizeof(w));
	return rc;
}

int tb_sim_blob_get_dev(const void *p, size_t len, struct tb_sim_dev_state *d,
			size_t *used)
{
	struct tb_sim_blob_hdr h;
	const uint8_t *b = (const uint8_t *)p + sizeof(h);
	unsigned i;
	int rc = get_hdr(p, len, TB_SIM_BLOB_DEV, &h);

	if (rc)
		return rc;
	if (h.count != 1 || h.length != sizeof(*d))
		return -EPROTO;
	memcpy(d, b, sizeof(*d));
	d->features = tb_get_le32(b);
	d->static_port = tb_get_le32(b + 4);
	d->gate_cur_epoch = tb_get_le64(b + 8);
	d->gate_released_epoch = tb_get_le64(b + 16);
	d->gate_mode = tb_get_le32(b + 24);
	d->nr_slots = tb_get_le32(b + 28);
	d->suspends = tb_get_le64(b + 32);
	d->suspend_cancels = tb_get_le64(b + 40);
	d->restores = tb_get_le64(b + 48);
	if (d->nr_slots != TB_SIM_STORE_SLOTS ||
	    d->static_port >= TB_SIM_NR_PORTS || d->gate_mode > 1)
		return -EPROTO;
	for (i = 0; i < TB_SIM_STORE_SLOTS; i++) {
		if (!memchr(d->slot[i].key, 0, TB_SIM_KEY_MAX) ||
		    !memchr(d->slot[i].val, 0, TB_SIM_VAL_MAX))
			return -EPROTO;
	}
	*used = sizeof(h) + h.length;
	return 0;
}

/* ----------------------------------------------------------- fds */

int tb_sim_send_fds(int sock, const void *buf, size_t len, const int *fds,
		    unsigned nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * TB_SIM_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds > TB_SIM_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf.b;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EPROTO;
}

int tb_sim_recv_fds(int sock, void *buf, size_t len, int *fds, unsigned *nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * TB_SIM_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf.b,
			    .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm;
	unsigned cap = *nfds, got = 0, i, k;
	ssize_t n;

	do {
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			if (got < cap)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	*nfds = got;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n != len || (m.msg_flags & MSG_CTRUNC)) {
		for (i = 0; i < got; i++)
			close(fds[i]);
		*nfds = 0;
		return -EPROTO;
	}
	return 0;
}
