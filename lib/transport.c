// SPDX-License-Identifier: MIT
/*
 * io_uring transport: a framed, bidirectional stream connection.
 *
 * Invariants:
 *  - Each connection has two rings: the send ring belongs to the (one)
 *    sending thread, the receive ring to the (one) receiving thread.  The
 *    only state shared between the two sides is the socket, the shutdown
 *    flag, the eventfd and the statistics (single writer per field,
 *    relaxed atomics).
 *  - Every ring has one POLL_ADD on the eventfd armed from creation on;
 *    tb_conn_shutdown() sets the flag, then writes the eventfd and shuts
 *    the socket down, so a waiter either sees the flag before it waits or
 *    gets the poll completion (or a socket error) while it waits.
 *  - Stream order: the SQEs of one send batch are linked (IOSQE_IO_LINK)
 *    and carry MSG_WAITALL, so a short send fails the chain; a new batch
 *    is submitted only after every CQE of the previous one was reaped.
 *  - No call returns while the kernel may still use the caller's buffers:
 *    on timeout, shutdown or error the in-flight SQEs are cancelled and
 *    reaped first, and SEND_ZC waits for its notification CQEs.  The one
 *    exception is documented at tb_send_batch().
 *  - Send errors after the first byte was handed to the kernel are sticky
 *    (a partial record on the wire makes the connection unusable).  A
 *    receive timeout is not: bytes that raced with the cancel are kept.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "tiber/common.h"
#include "tiber/stream.h"
#include "tiber/tls.h"
#include "tiber/transport.h"
#include "addr.h"
#include "pacing.h"
#include "ring.h"
#include "sock.h"

/* Kernel uapi values missing from the liburing 2.3 headers (6.2+). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define TB_SQ_DEPTH_DEFAULT 64u
#define TB_RECV_RING_DEPTH  8u
#define TB_SEND_CHUNK	    (256u << 10) /* bytes per send SQE, unpaced */
#define TB_BATCH_MAX	    8u
#define TB_TLS_SEAL_MAX	    ((size_t)1 << 20) /* plaintext sealed per send */
#define TB_RECV_WANT	    (256u << 10)
/* How long to wait for cancelled requests / late ZC notifications. */
#define TB_GRACE_NS	    (2 * TB_NSEC_PER_SEC)
#define TB_ZC_DISCONNECT_NS (50 * TB_NSEC_PER_MSEC)
#define TB_ZC_PROBE_NS	    (2 * TB_NSEC_PER_SEC)

struct tb_slot {
	const uint8_t *p;
	uint32_t len;
	int32_t res;
	bool zc;
};

struct tb_conn {
	int fd;
	int efd; /* eventfd: written once by tb_conn_shutdown */
	bool is_tcp;
	int shut; /* atomic */
	struct tb_conn_opts opts;
	struct io_uring sring; /* send side */
	struct io_uring rring; /* receive side */

	/* send side */
	int send_err;
	bool zc_ok;
	bool zc_report;
	unsigned batch_max;
	uint32_t chunk_max;
	struct tb_pacer pacer; /* if opts.rate_bps */
	struct tb_slot slots[TB_BATCH_MAX];
	unsigned zc_notifs; /* notifications still owed by the kernel */

	/* receive side */
	struct tb_dec dec;
	int recv_err;
	bool eof;

	struct tb_conn_stats st;
	char peer[TB_ADDR_TEXT_MAX];

	/* TLS (tb_conn_start_tls): sealed on the send side into tls_out,
	 * opened on the receive side */
	struct tb_tls *tls;
	struct tb_buf tls_out;
};

/* ---------------------------------------------------------------- helpers */

static void tb_stat_add(uint64_t *p, uint64_t v)
{
	/* single writer per field; readers use tb_conn_get_stats */
	__atomic_store_n(p, *p + v, __ATOMIC_RELAXED);
}

static bool tb_is_shut(const struct tb_conn *c)
{
	return __atomic_load_n(&c->shut, __ATOMIC_ACQUIRE) != 0;
}

/* ---------------------------------------------------------------- setup */

/* One real SEND_ZC of zero bytes: the only reliable test of support. */
static int tb_zc_try(struct tb_conn *c, unsigned zc_flags)
{
	static const uint8_t dummy;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int64_t deadline = tb_now_ns() + TB_ZC_PROBE_NS;
	unsigned owed = 1;
	int res = -EIO, rc;

	sqe = tb_ring_get_sqe(&c->sring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_send_zc(sqe, c->fd, &dummy, 0, MSG_NOSIGNAL, zc_flags);
	io_uring_sqe_set_data64(sqe, TB_UD_PROBE);
	rc = tb_ring_submit(&c->sring);
	if (rc)
		return rc;
	while (owed) {
		rc = tb_ring_wait(&c->sring, &cqe, deadline);
		if (rc == -ETIMEDOUT && owed) {
			/* a notification that never comes: give up on ZC */
			tb_ring_cancel_fd(&c->sring, c->fd);
			deadline = -1;
			res = -ETIMEDOUT;
			continue;
		}
		if (rc)
			return rc;
		if (cqe->user_data == TB_UD_PROBE) {
			if (!(cqe->flags & IORING_CQE_F_NOTIF) &&
			    res != -ETIMEDOUT)
				res = cqe->res;
			if (cqe->flags & IORING_CQE_F_MORE)
				owed++;
			owed--;
		}
		io_uring_cqe_seen(&c->sring, cqe);
	}
	return res < 0 ? res : 0;
}

static void tb_zc_probe(struct tb_conn *c)
{
	struct io_uring_probe *probe;
	bool have;

	probe = io_uring_get_probe_ring(&c->sring);
	if (!probe)
		return;
	have = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	io_uring_free_probe(probe);
	if (!have)
		return;
	if (!tb_zc_try(c, IORING_SEND_ZC_REPORT_USAGE)) {
		c->zc_ok = c->zc_report = true;
	} else if (!tb_zc_try(c, 0)) {
		/* before 6.2: no usage report, zc_copied stays 0 */
		c->zc_ok = true;
	}
}

static int tb_conn_new(struct tb_conn **out, int fd,
		       const struct tb_conn_opts *opts)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct tb_conn *c;
	int type = 0, rc;
	socklen_t tl = sizeof(type);

	*out = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0) {
		rc = -errno;
		goto out_fd;
	}
	memset(&ss, 0, sizeof(ss));
	if (type != SOCK_STREAM || getsockname(fd, (void *)&ss, &sl) < 0) {
		rc = -EINVAL;
		goto out_fd;
	}
	rc = tb_sock_set_nonblock(fd, false); /* io_uring honours O_NONBLOCK */
	if (rc)
		goto out_fd;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out_fd;
	}
	c->fd = fd;
	c->is_tcp = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
	if (opts)
		c->opts = *opts;
	if (!c->opts.sq_depth)
		c->opts.sq_depth = TB_SQ_DEPTH_DEFAULT;
	if (c->opts.sq_depth < 4)
		c->opts.sq_depth = 4;
	/* room for a batch, the cancel and the eventfd poll */
	c->batch_max = TB_MIN(TB_BATCH_MAX, c->opts.sq_depth - 2);
	c->chunk_max = TB_SEND_CHUNK;
	if (c->opts.rate_bps) {
		tb_pacer_init(&c->pacer, c->opts.rate_bps);
		c->chunk_max = tb_pacer_chunk(&c->pacer);
	}
	tb_sock_tune(fd, ss.ss_family);
	memset(&ss, 0, sizeof(ss));
	sl = sizeof(ss);
	if (getpeername(fd, (void *)&ss, &sl) == 0)
		tb_addr_fmt(&ss, sl, c->peer, sizeof(c->peer));
	else
		snprintf(c->peer, sizeof(c->peer), "?");
	tb_dec_init(&c->dec);

	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0) {
		rc = -errno;
		goto out_free;
	}
	rc = tb_ring_init(&c->sring, c->opts.sq_depth);
	if (rc)
		goto out_efd;
	rc = tb_ring_init(&c->rring, TB_RECV_RING_DEPTH);
	if (rc)
		goto out_sring;
	rc = tb_ring_arm_wake(&c->sring, c->efd);
	if (rc)
		goto out_rring;
	rc = tb_ring_arm_wake(&c->rring, c->efd);
	if (rc)
		goto out_rring;
	if (c->opts.zerocopy && c->is_tcp)
		tb_zc_probe(c);
	*out = c;
	return 0;

out_rring:
	io_uring_queue_exit(&c->rring);
out_sring:
	io_uring_queue_exit(&c->sring);
out_efd:
	close(c->efd);
out_free:
	tb_dec_free(&c->dec);
	free(c);
out_fd:
	close(fd);
	return rc;
}

int tb_conn_from_fd(struct tb_conn **out, int fd,
		    const struct tb_conn_opts *opts)
{
	if (!out || fd < 0)
		return -EINVAL;
	return tb_conn_new(out, fd, opts);
}

int tb_conn_connect(struct tb_conn **out, const char *addr,
		    const struct tb_conn_opts *opts, int64_t deadline_ns)
{
	struct tb_addr a[8];
	int nr, i, rc, fd = -1;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = tb_addr_parse(addr, false, a, (int)TB_ARRAY_SIZE(a), &nr);
	if (rc)
		return rc;
	rc = -EHOSTUNREACH;
	for (i = 0; i < nr; i++) {
		rc = tb_sock_connect(&a[i], deadline_ns, &fd);
		if (!rc || rc == -ETIMEDOUT)
			break;
	}
	if (rc)
		return rc;
	return tb_conn_new(out, fd, opts);
}

/* ---------------------------------------------------------------- send */

/* Account one send-ring CQE.  true if it is the shutdown wake-up. */
static bool tb_send_cqe(struct tb_conn *c, unsigned n,
			const struct io_uring_cqe *cqe, unsigned *owed)
{
	uint64_t ud = cqe->user_data;
	struct tb_slot *s;

	if (ud == TB_UD_WAKE)
		return true;
	if (ud < TB_UD_SEND || ud >= TB_UD_SEND + n)
		return false; /* cancel CQEs */
	s = &c->slots[ud - TB_UD_SEND];
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		if (c->zc_notifs)
			c->zc_notifs--;
		if (c->zc_report && (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED))
			tb_stat_add(&c->st.zc_copied, 1);
		return false;
	}
	(*owed)--;
	if (cqe->flags & IORING_CQE_F_MORE)
		c->zc_notifs++;
	s->res = cqe->res;
	if (cqe->res > 0)
		tb_stat_add(&c->st.bytes_sent, (uint64_t)cqe->res);
	if (cqe->res >= 0) {
		tb_stat_add(&c->st.sends, 1);
		if (s->zc)
			tb_stat_add(&c->st.zc_sends, 1);
	}
	return false;
}

/* Purge a TCP socket's write queue so the kernel drops its page refs. */
static void tb_zc_disconnect(struct tb_conn *c)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };

	if (c->is_tcp)
		connect(c->fd, &sa, sizeof(sa));
}

/*
 * Reap everything the last batch of @n slots owes, SEND_ZC notifications
 * included.  On timeout or shutdown, cancel and keep reaping: only then
 * may the caller's buffers be reused.  0 or the first of -ETIMEDOUT,
 * -ECANCELED or a ring error; per-slot results are left in c->slots.
 */
static int tb_send_reap(struct tb_conn *c, unsigned n, int64_t deadline_ns)
{
	struct io_uring_cqe *cqe;
	unsigned owed = n;
	int64_t wait_until = deadline_ns;
	bool cancelled = false, disconnected = false;
	int err = 0, rc;

	while (owed || c->zc_notifs) {
		rc = tb_ring_wait(&c->sring, &cqe, wait_until);
		if (!rc) {
			if (tb_send_cqe(c, n, cqe, &owed))
				rc = -ECANCELED;
			io_uring_cqe_seen(&c->sring, cqe);
			if (!rc)
				continue;
		}
		/* -ETIMEDOUT, -ECANCELED (shutdown) or a ring error */
		if (!cancelled) {
			err = rc;
			cancelled = true;
			if (owed)
				tb_ring_cancel_fd(&c->sring, c->fd);
			wait_until = tb_now_ns() + TB_ZC_DISCONNECT_NS;
			continue;
		}
		if (rc == -ECANCELED)
			continue;
		if (owed) {
			/* cancelled requests always complete: ask again */
			tb_ring_cancel_fd(&c->sring, c->fd);
			wait_until = tb_now_ns() + TB_GRACE_NS;
			continue;
		}
		/* only ZC notifications are missing: see tb_send_batch */
		if (disconnected)
			break;
		tb_zc_disconnect(c);
		disconnected = true;
		wait_until = tb_now_ns() + TB_GRACE_NS;
	}
	return err;
}

/*
 * Submit @n prepared slots as one linked chain and reap them.  *@done
 * gets the bytes that reached the socket in order.
 *
 * Late ZC notifications: a SEND_ZC notification comes when the kernel
 * frees the skb, i.e. after the peer acknowledged the data.  If the peer
 * stops reading, that may be never; after a timeout we disconnect the TCP
 * socket (connect(AF_UNSPEC) purges the write queue, the peer sees a
 * reset), which releases the pages.  Should a notification still be
 * missing after that, the caller's pages stay pinned by the kernel (still
 * memory-safe: they are reference-counted, never written).
 */
static int tb_send_batch(struct tb_conn *c, unsigned n, int64_t deadline_ns,
			 size_t *done)
{
	struct io_uring_sqe *sqe;
	unsigned i;
	bool short_seen = false, fell_back = false;
	int rc, err;

	*done = 0;
	for (i = 0; i < n; i++) {
		struct tb_slot *s = &c->slots[i];

		sqe = tb_ring_get_sqe(&c->sring);
		if (!sqe)
			return -EBUSY; /* cannot happen: depth >= batch + 2 */
		s->res = -ECANCELED;
		s->zc = c->zc_ok;
		if (s->zc)
			io_uring_prep_send_zc(
				sqe, c->fd, s->p, s->len,
				MSG_NOSIGNAL | MSG_WAITALL,
				c->zc_report ? IORING_SEND_ZC_REPORT_USAGE : 0);
		else
			io_uring_prep_send(sqe, c->fd, s->p, s->len,
					   MSG_NOSIGNAL | MSG_WAITALL);
		io_uring_sqe_set_data64(sqe, TB_UD_SEND + i);
		if (i + 1 < n)
			sqe->flags |= IOSQE_IO_LINK;
	}
	rc = tb_ring_submit(&c->sring);
	if (rc)
		return rc; /* nothing went out; the error is sticky */
	tb_stat_add(&c->st.batches, 1);
	err = tb_send_reap(c, n, deadline_ns);

	for (i = 0; i < n; i++) {
		struct tb_slot *s = &c->slots[i];
		int res = s->res;

		if (short_seen) {
			/* the chain must have stopped at the short send */
			if (res > 0)
				return err ? err : -EIO;
			continue;
		}
		if (s->zc && (res == -EOPNOTSUPP || res == -EINVAL) && !err &&
		    *done == 0 && i == 0) {
			/* kernel refused ZC after all: resend as SEND */
			c->zc_ok = false;
			short_seen = fell_back = true;
			continue;
		}
		if (res >= 0 && (uint32_t)res == s->len) {
			*done += s->len;
			continue;
		}
		if (res >= 0) {
			*done += (size_t)res;
			short_seen = true;
			continue;
		}
		if (!err)
			err = res;
		break;
	}
	if (!err && *done == 0 && !fell_back)
		err = -EIO; /* no progress without an error: do not spin */
	return err;
}

static int tb_sendv_raw(struct tb_conn *c, const struct iovec *iov, int iovcnt,
			int64_t deadline_ns)
{
	size_t off = 0, done, left, take;
	bool started = false;
	int64_t waited;
	int idx = 0, rc = 0;
	unsigned n;

	while (idx < iovcnt) {
		/* fill a batch from the cursor (idx, off) */
		int bidx = idx;
		size_t boff = off;

		for (n = 0; n < c->batch_max && bidx < iovcnt;) {
			left = iov[bidx].iov_len - boff;
			if (!left) {
				bidx++;
				boff = 0;
				continue;
			}
			take = TB_MIN(left, (size_t)c->chunk_max);
			c->slots[n].p =
				(const uint8_t *)iov[bidx].iov_base + boff;
			c->slots[n].len = (uint32_t)take;
			n++;
			boff += take;
			if (c->opts.rate_bps)
				break; /* paced: one chunk per wait */
		}
		if (!n)
			break;
		if (c->opts.rate_bps) {
			rc = tb_pacer_wait(&c->pacer, c->slots[0].len, c->efd,
					   &c->shut, deadline_ns, &waited);
			tb_stat_add((uint64_t *)&c->st.pacing_wait_ns,
				    (uint64_t)waited);
			if (rc)
				goto out;
		}
		started = true;
		rc = tb_send_batch(c, n, deadline_ns, &done);
		/* advance the cursor by what reached the socket */
		while (done) {
			left = iov[idx].iov_len - off;
			take = TB_MIN(left, done);
			off += take;
			done -= take;
			if (off == iov[idx].iov_len) {
				idx++;
				off = 0;
			}
		}
		if (rc)
			goto out;
		if (tb_is_shut(c)) {
			rc = -ECANCELED;
			goto out;
		}
		/* skip trailing empty iovecs */
		while (idx < iovcnt && iov[idx].iov_len == off) {
			idx++;
			off = 0;
		}
	}
out:
	if (rc && started)
		c->send_err = rc;
	return rc;
}

/* TLS: seal up to TB_TLS_SEAL_MAX of plaintext, send the records, again. */
static int tb_sendv_tls(struct tb_conn *c, const struct iovec *iov, int iovcnt,
			int64_t deadline_ns)
{
	struct iovec out;
	size_t off, take;
	int i, rc;

	for (i = 0; i < iovcnt; i++) {
		for (off = 0; off < iov[i].iov_len; off += take) {
			take = TB_MIN(iov[i].iov_len - off, TB_TLS_SEAL_MAX);
			rc = tb_tls_seal(c->tls,
					 (const uint8_t *)iov[i].iov_base + off,
					 take, &c->tls_out);
			if (rc) {
				c->send_err = rc;
				return rc;
			}
			out.iov_base = c->tls_out.data;
			out.iov_len = c->tls_out.len;
			rc = tb_sendv_raw(c, &out, 1, deadline_ns);
			if (rc) {
				/* records half sent: the stream is broken */
				c->send_err = rc;
				return rc;
			}
		}
	}
	return 0;
}

int tb_conn_sendv(struct tb_conn *c, const struct iovec *iov, int iovcnt,
		  int64_t deadline_ns)
{
	if (!c || iovcnt < 0 || (iovcnt && !iov))
		return -EINVAL;
	if (tb_is_shut(c))
		return -ECANCELED;
	if (c->send_err)
		return c->send_err;
	return c->tls ? tb_sendv_tls(c, iov, iovcnt, deadline_ns) :
			tb_sendv_raw(c, iov, iovcnt, deadline_ns);
}

int tb_conn_send(struct tb_conn *c, const void *buf, size_t len,
		 int64_t deadline_ns)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return tb_conn_sendv(c, &iov, 1, deadline_ns);
}

/* ---------------------------------------------------------------- receive */

/*
 * One RECV into @p.  *@n = bytes (0: EOF).  0, -ETIMEDOUT, -ECANCELED or
 * the socket's -errno.  Bytes that arrive while a timeout cancels the
 * RECV are returned in *@n along with -ETIMEDOUT.
 */
static int tb_recv_once(struct tb_conn *c, uint8_t *p, size_t room,
			int64_t deadline_ns, size_t *n)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int64_t wait_until = deadline_ns;
	bool owed = true, cancelled = false;
	int err = 0, res = -ECANCELED, rc;

	*n = 0;
	sqe = tb_ring_get_sqe(&c->rring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, c->fd, p, TB_MIN(room, (size_t)INT_MAX), 0);
	io_uring_sqe_set_data64(sqe, TB_UD_RECV);
	rc = tb_ring_submit(&c->rring);
	if (rc)
		return rc;
	while (owed) {
		rc = tb_ring_wait(&c->rring, &cqe, wait_until);
		if (rc) {
			if (!err)
				err = rc;
			/* cancel (again) and wait for the RECV to finish */
			cancelled = true;
			tb_ring_cancel_fd(&c->rring, c->fd);
			wait_until = tb_now_ns() + TB_GRACE_NS;
			continue;
		}
		uint64_t ud = cqe->user_data;
		int r = cqe->res;

		io_uring_cqe_seen(&c->rring, cqe);
		if (ud == TB_UD_RECV) {
			res = r;
			owed = false;
		} else if (ud == TB_UD_WAKE && !cancelled) {
			err = -ECANCELED;
			cancelled = true;
			tb_ring_cancel_fd(&c->rring, c->fd);
			wait_until = tb_now_ns() + TB_GRACE_NS;
		}
	}
	if (res > 0) {
		*n = (size_t)res;
		tb_stat_add(&c->st.bytes_recv, (uint64_t)res);
	}
	if (err)
		return err;
	if (tb_is_shut(c))
		return -ECANCELED;
	if (res == -ECANCELED || res == -EINTR)
		return -ECANCELED;
	return res < 0 ? res : 0;
}

/*
 * TLS: plaintext into @p (*@n bytes, 0 at the end of the stream),
 * reading ciphertext as needed.  Like tb_recv_once.
 */
static int tb_recv_tls(struct tb_conn *c, uint8_t *p, size_t room,
		       int64_t deadline_ns, size_t *n)
{
	uint8_t *fp;
	size_t froom, got;
	ssize_t r;
	int rc;

	*n = 0;
	for (;;) {
		r = tb_tls_open(c->tls, p, room);
		if (r >= 0) {
			*n = (size_t)r;
			return 0;
		}
		if (r != -EAGAIN)
			return (int)r; /* -EBADMSG: forged or damaged */
		rc = tb_tls_feed_space(c->tls, &fp, &froom);
		if (rc)
			return rc;
		rc = tb_recv_once(c, fp, froom, deadline_ns, &got);
		if (got || !rc)
			tb_tls_fed(c->tls, got); /* 0 without error: EOF */
		if (rc)
			return rc;
	}
}

int tb_conn_recv_rec(struct tb_conn *c, struct tb_rec *rec, int64_t deadline_ns)
{
	uint8_t *p;
	size_t room, n;
	int rc;

	if (!c || !rec)
		return -EINVAL;
	for (;;) {
		if (tb_is_shut(c))
			return -ECANCELED;
		rc = tb_dec_next(&c->dec, rec);
		if (rc)
			return rc;
		if (c->recv_err)
			return c->recv_err;
		if (c->eof)
			return tb_dec_eof(&c->dec);
		rc = tb_dec_space(&c->dec, TB_RECV_WANT, &p, &room);
		if (rc)
			return rc;
		if (c->tls)
			rc = tb_recv_tls(c, p, room, deadline_ns, &n);
		else
			rc = tb_recv_once(c, p, room, deadline_ns, &n);
		if (n)
			tb_dec_commit(&c->dec, n);
		if (rc == -ETIMEDOUT || rc == -ECANCELED)
			return rc;
		if (rc) {
			c->recv_err = rc;
			continue; /* records already buffered come first */
		}
		if (!n)
			c->eof = true;
	}
}

const struct tb_dec *tb_conn_decoder(const struct tb_conn *c)
{
	return &c->dec;
}

/* ---------------------------------------------------------------- misc */

void tb_conn_shutdown(struct tb_conn *c)
{
	if (!c)
		return;
	/* flag first: whoever is woken below must already see it */
	__atomic_store_n(&c->shut, 1, __ATOMIC_RELEASE);
	eventfd_write(c->efd, 1);
	shutdown(c->fd, SHUT_RDWR);
}

void tb_conn_close(struct tb_conn *c)
{
	if (!c)
		return;
	io_uring_queue_exit(&c->sring);
	io_uring_queue_exit(&c->rring);
	close(c->fd);
	close(c->efd);
	tb_dec_free(&c->dec);
	tb_tls_free(c->tls);
	tb_buf_free(&c->tls_out);
	free(c);
}

int tb_conn_start_tls(struct tb_conn *c, struct tb_tls_ctx *x,
		      int64_t deadline_ns, char *why, size_t whylen)
{
	if (!c || !x || c->tls)
		return -EINVAL;
	return tb_tls_handshake(&c->tls, x, c->fd, deadline_ns, why, whylen);
}

const char *tb_conn_peer_id(const struct tb_conn *c)
{
	return c->tls ? tb_tls_peer_id(c->tls) : NULL;
}

const char *tb_conn_tls_desc(const struct tb_conn *c)
{
	return c->tls ? tb_tls_desc(c->tls) : "plaintext";
}

int tb_conn_fd(const struct tb_conn *c)
{
	return c->fd;
}

const char *tb_conn_peer(const struct tb_conn *c)
{
	return c->peer;
}

void tb_conn_get_stats(const struct tb_conn *c, struct tb_conn_stats *st)
{
	st->bytes_sent = __atomic_load_n(&c->st.bytes_sent, __ATOMIC_RELAXED);
	st->bytes_recv = __atomic_load_n(&c->st.bytes_recv, __ATOMIC_RELAXED);
	st->sends = __atomic_load_n(&c->st.sends, __ATOMIC_RELAXED);
	st->zc_sends = __atomic_load_n(&c->st.zc_sends, __ATOMIC_RELAXED);
	st->zc_copied = __atomic_load_n(&c->st.zc_copied, __ATOMIC_RELAXED);
	st->batches = __atomic_load_n(&c->st.batches, __ATOMIC_RELAXED);
	st->pacing_wait_ns =
		__atomic_load_n(&c->st.pacing_wait_ns, __ATOMIC_RELAXED);
}

bool tb_conn_zc_supported(const struct tb_conn *c)
{
	return c->zc_ok;
}
