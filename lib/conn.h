/* SPDX-License-Identifier: MIT */
/*
 * struct tb_conn, shared by the two halves of the io_uring connection:
 * transport.c (set-up, receive side, shutdown, close; it states the
 * invariants) and transport_send.c (send side).  Internal to lib/.
 */
#ifndef TIBER_CONN_H
#define TIBER_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

#include "tiber/common.h"
#include "tiber/stream.h"
#include "tiber/tls.h"
#include "tiber/transport.h"
#include "addr.h"
#include "pacing.h"

#define TB_BATCH_MAX 8u
/* How long to wait for cancelled requests / late ZC notifications. */
#define TB_GRACE_NS (2 * TB_NSEC_PER_SEC)

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
	int send_flags; /* MSG_NOSIGNAL | MSG_WAITALL; kTLS: MSG_NOSIGNAL */
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

/* *p is written, by __atomic_store_n(), which clang-tidy does not see */
// NOLINTNEXTLINE(readability-non-const-parameter)
static inline void tb_stat_add(uint64_t *p, uint64_t v)
{
	/* single writer per field; readers use tb_conn_get_stats */
	__atomic_store_n(p, *p + v, __ATOMIC_RELAXED);
}

static inline bool tb_is_shut(const struct tb_conn *c)
{
	return __atomic_load_n(&c->shut, __ATOMIC_ACQUIRE) != 0;
}

/*
 * At set-up, before the connection is shared: probe SEND_ZC on the send
 * ring with real zero-byte sends and set zc_ok (and zc_report, if the
 * kernel reports copies) when the kernel takes them.
 */
void tb_conn_zc_probe(struct tb_conn *c);

#endif
