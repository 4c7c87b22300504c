// SPDX-License-Identifier: MIT
/*
 * The send side of the io_uring connection (transport.c states the
 * connection's invariants): the caller's iovecs cut into chunks and sent
 * as batches of linked SEND or SEND_ZC requests, their completions and
 * ZC notifications reaped, TLS records sealed first; and the SEND_ZC
 * probe at set-up.
 *
 * Invariant (stream order): the SQEs of one send batch are linked
 * (IOSQE_IO_LINK) and carry MSG_WAITALL, so a short send fails the chain
 * (kTLS refuses MSG_WAITALL: its batches have one SQE);
 * a new batch is submitted only after every CQE of the previous one was
 * reaped.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <liburing.h>

#include "tiber/common.h"
#include "tiber/tls.h"
#include "tiber/transport.h"
#include "conn.h"
#include "pacing.h"
#include "ring.h"

/* Kernel uapi values missing from the liburing 2.3 headers (6.2+). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define TB_TLS_SEAL_MAX	    ((size_t)1 << 20) /* plaintext sealed per send */
#define TB_ZC_DISCONNECT_NS (50 * TB_NSEC_PER_MSEC)
#define TB_ZC_PROBE_NS	    (2 * TB_NSEC_PER_SEC)

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

void tb_conn_zc_probe(struct tb_conn *c)
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

	/* best effort: on failure the queue drains with the socket */
	if (c->is_tcp)
		(void)connect(c->fd, &sa, sizeof(sa));
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
				sqe, c->fd, s->p, s->len, c->send_flags,
				c->zc_report ? IORING_SEND_ZC_REPORT_USAGE : 0);
		else
			io_uring_prep_send(sqe, c->fd, s->p, s->len,
					   c->send_flags);
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
		/* advance the cursor by what reached the socket (done never
		 * exceeds the batch, which ends within iov[]) */
		while (done && idx < iovcnt) {
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
	return c->tls && !tb_tls_kernel_tx(c->tls) ?
		       tb_sendv_tls(c, iov, iovcnt, deadline_ns) :
		       tb_sendv_raw(c, iov, iovcnt, deadline_ns);
}

int tb_conn_send(struct tb_conn *c, const void *buf, size_t len,
		 int64_t deadline_ns)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return tb_conn_sendv(c, &iov, 1, deadline_ns);
}
