// SPDX-License-Identifier: MIT
/*
 * io_uring transport: a framed, bidirectional stream connection.  This
 * file sets a connection up and holds its receive side, shutdown and
 * close; the send side is in transport_send.c, struct tb_conn in conn.h.
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
 *  - No call returns while the kernel may still use the caller's buffers:
 *    on timeout, shutdown or error the in-flight SQEs are cancelled and
 *    reaped first, and SEND_ZC waits for its notification CQEs.  The one
 *    exception is documented at tb_send_batch() (transport_send.c).
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
#include "conn.h"
#include "pacing.h"
#include "ring.h"
#include "sock.h"

#define TB_SQ_DEPTH_DEFAULT 64u
#define TB_RECV_RING_DEPTH  8u
#define TB_SEND_CHUNK	    (256u << 10) /* bytes per send SQE, unpaced */
#define TB_RECV_WANT	    (256u << 10)

/* ---------------------------------------------------------------- setup */

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
	c->send_flags = MSG_NOSIGNAL | MSG_WAITALL;
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
		tb_conn_zc_probe(c);
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
		if (c->tls && !tb_tls_kernel_rx(c->tls))
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
	int rc;

	if (!c || !x || c->tls)
		return -EINVAL;
	rc = tb_tls_handshake(&c->tls, x, c->fd, deadline_ns, why, whylen);
	/*
	 * The kernel's TLS refuses MSG_ZEROCOPY (it copies into its records
	 * anyway) and MSG_WAITALL.  Without MSG_WAITALL a short send would
	 * not break a linked chain, so its sends go one at a time: a short
	 * one is resumed from where it stopped.
	 */
	if (!rc && tb_tls_kernel_tx(c->tls)) {
		c->zc_ok = c->zc_report = false;
		c->send_flags = MSG_NOSIGNAL;
		c->batch_max = 1;
	}
	return rc;
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
