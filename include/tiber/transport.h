/* SPDX-License-Identifier: MIT */
/*
 * Framed, bidirectional connection over TCP (IPv4/IPv6) and unix stream
 * sockets, driven by io_uring (liburing).
 *
 * Addresses: "host:port", "[v6addr]:port", "unix:/path".
 * Deadlines are absolute CLOCK_MONOTONIC ns; every wait has one
 * (-ETIMEDOUT), so a dead peer never hangs a caller.  A negative
 * deadline means "no deadline" and is only for tests.
 *
 * Threading: the send side and the receive side each have their own ring
 * and may be used at the same time from two threads (one sender, one
 * receiver).  Each side itself is single-threaded.
 */
#ifndef TIBER_TRANSPORT_H
#define TIBER_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/uio.h>

#include "tiber/stream.h"

struct tb_conn;
struct tb_listener;

struct tb_conn_opts {
	bool zerocopy;	   /* use IORING_OP_SEND_ZC if the kernel has it */
	uint64_t rate_bps; /* pace sends to this many bits/s; 0 = no limit */
	unsigned sq_depth; /* ring size; 0 = default (64) */
};

struct tb_conn_stats {
	uint64_t bytes_sent;
	uint64_t bytes_recv;
	uint64_t sends;		/* send SQEs completed */
	uint64_t zc_sends;	/* of which SEND_ZC */
	uint64_t zc_copied;	/* SEND_ZC that the kernel copied anyway */
	uint64_t batches;	/* submit calls on the send side */
	int64_t pacing_wait_ns; /* time spent waiting for the pacer */
};

/* 0 if @addr is well formed (no name is resolved), else -EINVAL. */
int tb_addr_check(const char *addr);
/* Connect to @addr.  0 or -errno (-ETIMEDOUT, -ECONNREFUSED, -EINVAL for
 * a malformed address). @opts may be NULL. */
int tb_conn_connect(struct tb_conn **out, const char *addr,
		    const struct tb_conn_opts *opts, int64_t deadline_ns);
/* Wrap a connected stream socket (takes ownership of @fd). */
int tb_conn_from_fd(struct tb_conn **out, int fd,
		    const struct tb_conn_opts *opts);

int tb_listener_open(struct tb_listener **out, const char *addr);
/* Bound address as "host:port" (useful after port 0). */
const char *tb_listener_addr(const struct tb_listener *l);
int tb_listener_fd(const struct tb_listener *l);
int tb_listener_accept(struct tb_listener *l, struct tb_conn **out,
		       const struct tb_conn_opts *opts, int64_t deadline_ns);
void tb_listener_close(struct tb_listener *l);

/*
 * Send all bytes of @iov, in order, batching submissions.  Returns when
 * everything is handed to the kernel (and, for SEND_ZC, the buffers may
 * be reused).  0 or -errno (-EPIPE/-ECONNRESET: peer gone; -ETIMEDOUT).
 * A partial send is an error: the connection is then unusable.
 */
int tb_conn_sendv(struct tb_conn *c, const struct iovec *iov, int iovcnt,
		  int64_t deadline_ns);
int tb_conn_send(struct tb_conn *c, const void *buf, size_t len,
		 int64_t deadline_ns);

/*
 * Receive the next record: 1 and *@rec filled (valid until the next
 * call on this side), 0 on orderly close between records, or -errno:
 * -ETIMEDOUT, -ECONNRESET, -EPIPE (closed inside a record:
 * TB_SERR_TRUNCATED), or the decoder's error (then tb_conn_decoder()
 * says which).  Records are not order-checked here (see tb_sess).
 */
int tb_conn_recv_rec(struct tb_conn *c, struct tb_rec *rec,
		     int64_t deadline_ns);
const struct tb_dec *tb_conn_decoder(const struct tb_conn *c);

struct tb_tls_ctx;
/*
 * TLS from here on (include/tiber/tls.h): the handshake, by
 * @deadline_ns, before any record was sent or received.  0 or -errno
 * (-EACCES: authentication failed either way; -EPROTO: not TLS;
 * -ETIMEDOUT) with @why saying what happened.
 */
int tb_conn_start_tls(struct tb_conn *c, struct tb_tls_ctx *x,
		      int64_t deadline_ns, char *why, size_t whylen);
/* The authenticated peer (certificate CN or PSK identity); NULL without
 * TLS. */
const char *tb_conn_peer_id(const struct tb_conn *c);
/* "TLS1.3/AES-256-GCM" or "plaintext". */
const char *tb_conn_tls_desc(const struct tb_conn *c);

/* Wake a thread blocked in tb_conn_recv_rec / sendv (returns -ECANCELED
 * there) and make further calls fail; safe from another thread. */
void tb_conn_shutdown(struct tb_conn *c);
void tb_conn_close(struct tb_conn *c);
int tb_conn_fd(const struct tb_conn *c);
/* Peer address text, for logs. */
const char *tb_conn_peer(const struct tb_conn *c);
void tb_conn_get_stats(const struct tb_conn *c, struct tb_conn_stats *st);
/* true if the kernel accepted a SEND_ZC probe on this connection. */
bool tb_conn_zc_supported(const struct tb_conn *c);

#endif
