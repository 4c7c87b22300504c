// SPDX-License-Identifier: MIT
/*
 * io_uring transport: records in order over every address family, a
 * 256 MiB full-duplex stream, peer loss, timeouts, shutdown from another
 * thread, SEND_ZC and its fallback, pacing, address parsing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include "check_main.h"
#include "tiber/common.h"
#include "tiber/stream.h"
#include "tiber/transport.h"

#define SEC	 TB_NSEC_PER_SEC
#define MSEC	 TB_NSEC_PER_MSEC
#define POOL_LEN (8u << 20)

enum link_kind {
	LINK_SOCKETPAIR = 0,
	LINK_TCP4 = 1,
	LINK_TCP6 = 2,
	LINK_UNIX_PATH = 3,
	LINK_UNIX_ABSTRACT = 4,
	LINK_NR = 5,
};

static const char *const link_name[LINK_NR] = {
	"socketpair", "tcp4", "tcp6", "unix-path", "unix-abstract",
};

static uint8_t *pool; /* deterministic pseudo-random payload source */

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void pool_setup(void)
{
	uint64_t s = 42;
	size_t i;

	pool = malloc(POOL_LEN);
	ck_assert_ptr_nonnull(pool);
	for (i = 0; i < POOL_LEN; i += 8) {
		uint64_t v = rng_next(&s);

		memcpy(pool + i, &v, 8);
	}
}

static void pool_teardown(void)
{
	free(pool);
	pool = NULL;
}

static const uint8_t *payload_of(uint32_t seq, uint32_t len)
{
	return pool + ((uint64_t)seq * 4099u) % (POOL_LEN - len + 1);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * Connected pair over @kind: *a is the connecting (or first) side.
 * false if the kind is not available here (IPv6 without ::1).
 */
static bool make_pair(enum link_kind kind, const struct tb_conn_opts *oa,
		      const struct tb_conn_opts *ob, struct tb_conn **a,
		      struct tb_conn **b)
{
	struct tb_listener *l;
	char addr[128];
	int sv[2], rc;

	switch (kind) {
	case LINK_SOCKETPAIR:
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, sv),
				 0);
		ck_assert_int_eq(tb_conn_from_fd(a, sv[0], oa), 0);
		ck_assert_int_eq(tb_conn_from_fd(b, sv[1], ob), 0);
		return true;
	case LINK_TCP4:
		snprintf(addr, sizeof(addr), "127.0.0.1:0");
		break;
	case LINK_TCP6:
		snprintf(addr, sizeof(addr), "[::1]:0");
		break;
	case LINK_UNIX_PATH:
		snprintf(addr, sizeof(addr), "unix:%s/tiber-test-%d.sock",
			 tb_test_tmp(), (int)getpid());
		break;
	default:
		snprintf(addr, sizeof(addr), "unix:@tiber-test-%d",
			 (int)getpid());
		break;
	}
	rc = tb_listener_open(&l, addr);
	if (kind == LINK_TCP6 &&
	    (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)) {
		fprintf(stderr, "skip: ::1 not available (%s)\n",
			strerror(-rc));
		return false;
	}
	ck_assert_int_eq(rc, 0);
	if (kind == LINK_TCP4 || kind == LINK_TCP6) {
		ck_assert_str_ne(strrchr(tb_listener_addr(l), ':'), ":0");
		ck_assert(strncmp(tb_listener_addr(l),
				  kind == LINK_TCP4 ? "127.0.0.1:" : "[::1]:",
				  kind == LINK_TCP4 ? 10 : 6) == 0);
	} else {
		ck_assert_str_eq(tb_listener_addr(l), addr);
	}
	ck_assert_int_ge(tb_listener_fd(l), 0);
	ck_assert_int_eq(tb_conn_connect(a, tb_listener_addr(l), oa,
					 tb_now_ns() + 5 * SEC),
			 0);
	ck_assert_int_eq(tb_listener_accept(l, b, ob, tb_now_ns() + 5 * SEC),
			 0);
	ck_assert_ptr_nonnull(tb_conn_peer(*a));
	tb_listener_close(l);
	return true;
}

/* Append one DEVICE_STATE record carrying payload @seq of @len bytes. */
static void enc_blob(struct tb_buf *out, uint32_t seq, uint32_t len)
{
	ck_assert_int_eq(tb_enc_state(out, TB_REC_DEVICE_STATE, TB_STATE_SIM,
				      seq, payload_of(seq, len), len),
			 0);
}

static void check_blob(const struct tb_rec *rec, uint32_t seq, uint32_t len)
{
	ck_assert_uint_eq(rec->type, TB_REC_DEVICE_STATE);
	ck_assert_uint_eq(rec->u.state.tag, TB_STATE_SIM);
	ck_assert_uint_eq(rec->u.state.index, seq);
	ck_assert_uint_eq(rec->u.state.len, len);
	ck_assert(memcmp(rec->u.state.data, payload_of(seq, len), len) == 0);
}

/* Send @b in pieces cut at random points (empty pieces included). */
static int send_split(struct tb_conn *c, const struct tb_buf *b, uint64_t *rng,
		      int64_t deadline_ns)
{
	struct iovec iov[16];
	size_t off = 0;
	int n = 0;

	while (off < b->len && n < 15) {
		size_t piece = rng_next(rng) % (b->len / 4 + 2);

		if (piece > b->len - off)
			piece = b->len - off;
		iov[n].iov_base = b->data + off;
		iov[n].iov_len = piece;
		off += piece;
		n++;
	}
	iov[n].iov_base = b->data + off;
	iov[n].iov_len = b->len - off;
	n++;
	return tb_conn_sendv(c, iov, n, deadline_ns);
}

/* ------------------------------------------------------- ordering */

struct order_arg {
	struct tb_conn *c;
	uint32_t nr;
	int rc;
};

static uint32_t order_len(uint64_t *rng)
{
	uint64_t r = rng_next(rng);

	/* mostly small, some up to 1 MiB, a few empty */
	if (r % 50 == 0)
		return 0;
	if (r % 10 == 0)
		return (uint32_t)((r >> 16) % (1u << 20)) + 1;
	return (uint32_t)((r >> 16) % 5000) + 1;
}

static void *order_sender(void *p)
{
	struct order_arg *a = p;
	struct tb_buf b = { 0 };
	uint64_t rng = 7, srng = 99;
	uint32_t seq = 0;

	while (seq < a->nr && !a->rc) {
		tb_buf_reset(&b);
		/* 1..8 records per send call */
		for (unsigned k = rng_next(&srng) % 8 + 1; k && seq < a->nr;
		     k--, seq++)
			enc_blob(&b, seq, order_len(&rng));
		a->rc = send_split(a->c, &b, &srng, tb_now_ns() + 30 * SEC);
	}
	tb_buf_free(&b);
	return NULL;
}

START_TEST(records_arrive_in_order_over_every_family)
{
	struct tb_conn *s, *r;
	struct order_arg arg = { .nr = tb_check_scale(3000, 1000) };
	struct tb_rec rec;
	struct tb_conn_stats st;
	uint64_t rng = 7, bytes = 0;
	pthread_t t;
	uint32_t seq;
	int fds = count_fds();

	if (!make_pair((enum link_kind)_i, NULL, NULL, &s, &r))
		return;
	fprintf(stderr, "ordering over %s peer=%s\n", link_name[_i],
		tb_conn_peer(r));
	arg.c = s;
	ck_assert_int_eq(pthread_create(&t, NULL, order_sender, &arg), 0);
	for (seq = 0; seq < arg.nr; seq++) {
		uint32_t len = order_len(&rng);

		ck_assert_int_eq(
			tb_conn_recv_rec(r, &rec, tb_now_ns() + 30 * SEC), 1);
		check_blob(&rec, seq, len);
		bytes += len;
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(arg.rc, 0);
	tb_conn_get_stats(s, &st);
	ck_assert_uint_gt(st.bytes_sent, bytes);
	ck_assert_uint_ge(st.sends, st.batches);
	ck_assert_uint_eq(st.zc_sends, 0);
	tb_conn_get_stats(r, &st);
	ck_assert_uint_eq(st.bytes_recv, tb_conn_decoder(r)->bytes_in);
	/* orderly close between records */
	tb_conn_close(s);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 10 * SEC), 0);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 10 * SEC), 0);
	tb_conn_close(r);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* ------------------------------------------------------- big epoch */

struct big_arg {
	struct tb_conn *c;
	uint64_t total;
	uint32_t nr; /* records (set by the sender when done) */
	uint64_t hash;
	uint64_t acks;
	uint64_t last_ack;
	int rc;
};

static uint32_t big_len(uint64_t *rng)
{
	uint64_t r = rng_next(rng);

	return (uint32_t)(r % TB_STATE_LEN_MAX) + 1;
}

/* Primary: 256 MiB of records, several per sendv. */
static void *big_sender(void *p)
{
	struct big_arg *a = p;
	struct tb_buf b = { 0 };
	uint64_t rng = 11, sent = 0, h = 0;
	uint32_t seq = 0;

	while (sent < a->total && !a->rc) {
		tb_buf_reset(&b);
		while (b.len < (6u << 20) && sent < a->total) {
			uint32_t len = big_len(&rng);

			enc_blob(&b, seq, len);
			h = XXH3_64bits_withSeed(payload_of(seq, len), len, h);
			sent += len;
			seq++;
		}
		a->rc = tb_conn_send(a->c, b.data, b.len,
				     tb_now_ns() + 60 * SEC);
	}
	a->nr = seq;
	a->hash = h;
	tb_buf_free(&b);
	return NULL;
}

/* Primary: reads the ACKs that flow back while it is sending. */
static void *ack_reader(void *p)
{
	struct big_arg *a = p;
	struct tb_rec rec;
	uint64_t last = 0;
	int rc;

	for (;;) {
		rc = tb_conn_recv_rec(a->c, &rec, tb_now_ns() + 60 * SEC);
		if (rc != 1)
			break;
		if (rec.type != TB_REC_ACK || rec.u.ack.epoch <= last) {
			rc = -EPROTO;
			break;
		}
		last = rec.u.ack.epoch;
		a->acks++;
	}
	a->rc = rc;
	a->last_ack = last;
	return NULL;
}

START_TEST(large_epoch_streams_with_acks_flowing_back)
{
	struct tb_conn *pri, *bak;
	struct big_arg snd = { .total = 256ull << 20 };
	struct big_arg ackr = { 0 };
	struct tb_buf ab = { 0 };
	struct tb_rec rec;
	struct tb_conn_stats st;
	uint64_t rng = 11, h = 0, got = 0, acks_sent = 0;
	pthread_t ts, ta;
	uint32_t seq = 0;
	int rc, fds = count_fds();
	int64_t t0, t1;

	if (!make_pair((enum link_kind)_i, NULL, NULL, &pri, &bak))
		return;
	snd.c = pri;
	ackr.c = pri;
	t0 = tb_now_ns();
	ck_assert_int_eq(pthread_create(&ts, NULL, big_sender, &snd), 0);
	ck_assert_int_eq(pthread_create(&ta, NULL, ack_reader, &ackr), 0);
	/* backup: verify every record, ACK every 8th */
	while (got < snd.total) {
		uint32_t len = big_len(&rng);

		rc = tb_conn_recv_rec(bak, &rec, tb_now_ns() + 60 * SEC);
		ck_assert_int_eq(rc, 1);
		ck_assert_uint_eq(rec.type, TB_REC_DEVICE_STATE);
		ck_assert_uint_eq(rec.u.state.index, seq);
		ck_assert_uint_eq(rec.u.state.len, len);
		h = XXH3_64bits_withSeed(rec.u.state.data, len, h);
		got += len;
		seq++;
		if (seq % 8 == 0) {
			struct tb_ack ack = { .epoch = seq };

			tb_buf_reset(&ab);
			ck_assert_int_eq(tb_enc_ack(&ab, &ack), 0);
			ck_assert_int_eq(tb_conn_send(bak, ab.data, ab.len,
						      tb_now_ns() + 10 * SEC),
					 0);
			acks_sent++;
		}
	}
	ck_assert_int_eq(pthread_join(ts, NULL), 0);
	t1 = tb_now_ns();
	ck_assert_int_eq(snd.rc, 0);
	ck_assert_uint_eq(snd.nr, seq);
	ck_assert_uint_eq(snd.hash, h);
	/* half-close backup -> primary: the ACK reader sees an orderly 0 */
	ck_assert_int_eq(shutdown(tb_conn_fd(bak), SHUT_WR), 0);
	ck_assert_int_eq(pthread_join(ta, NULL), 0);
	ck_assert_int_eq(ackr.rc, 0);
	ck_assert_uint_eq(ackr.acks, acks_sent);
	ck_assert_uint_eq(ackr.last_ack, seq - seq % 8);
	tb_conn_get_stats(pri, &st);
	fprintf(stderr,
		"%s: %" PRIu64 " MiB in %.2f s (%.2f GB/s incl. encode), "
		"%" PRIu64 " sends, %" PRIu64 " batches, %" PRIu64 " acks\n",
		link_name[_i], got >> 20, (double)(t1 - t0) / SEC,
		(double)st.bytes_sent / (double)(t1 - t0), st.sends, st.batches,
		ackr.acks);
	ck_assert_uint_ge(st.bytes_sent, snd.total);
	tb_buf_free(&ab);
	tb_conn_close(pri);
	tb_conn_close(bak);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* ------------------------------------------------------- peer loss */

START_TEST(peer_closing_mid_record_gives_epipe)
{
	struct tb_conn *s, *r;
	struct tb_buf b = { 0 };
	struct tb_rec rec;
	int fds = count_fds();

	if (!make_pair((enum link_kind)_i, NULL, NULL, &s, &r))
		return;
	enc_blob(&b, 0, 1000);
	enc_blob(&b, 1, 70000);
	/* the first record whole, the second cut in the middle */
	ck_assert_int_eq(tb_conn_send(s, b.data, b.len - 30000,
				      tb_now_ns() + 5 * SEC),
			 0);
	tb_conn_close(s);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 5 * SEC), 1);
	check_blob(&rec, 0, 1000);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 5 * SEC),
			 -EPIPE);
	ck_assert_int_eq(tb_conn_decoder(r)->err, TB_SERR_TRUNCATED);
	/* sticky */
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 5 * SEC),
			 -EPIPE);
	tb_conn_close(r);
	tb_buf_free(&b);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

struct close_arg {
	struct tb_conn *c;
	int64_t delay_ns;
};

static void *close_later(void *p)
{
	struct close_arg *a = p;

	tb_sleep_until(tb_now_ns() + a->delay_ns);
	tb_conn_close(a->c);
	return NULL;
}

START_TEST(sender_gets_epipe_not_sigpipe_when_peer_goes)
{
	struct tb_conn *s, *r;
	struct tb_conn_opts zo = { .zerocopy = true };
	struct close_arg ca;
	size_t len = 64u << 20;
	uint8_t *buf;
	pthread_t t;
	int rc, fds = count_fds();

	/* default disposition: a SIGPIPE would kill this test */
	signal(SIGPIPE, SIG_DFL);
	if (!make_pair((enum link_kind)(_i % LINK_NR),
		       _i >= LINK_NR ? &zo : NULL, NULL, &s, &r))
		return;
	buf = calloc(1, len);
	ck_assert_ptr_nonnull(buf);
	ca.c = r;
	ca.delay_ns = 100 * MSEC;
	ck_assert_int_eq(pthread_create(&t, NULL, close_later, &ca), 0);
	rc = tb_conn_send(s, buf, len, tb_now_ns() + 20 * SEC);
	ck_assert_msg(rc == -EPIPE || rc == -ECONNRESET, "rc=%d", rc);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	/* the connection stays failed */
	rc = tb_conn_send(s, buf, 1, tb_now_ns() + SEC);
	ck_assert_msg(rc == -EPIPE || rc == -ECONNRESET, "rc=%d", rc);
	tb_conn_close(s);
	free(buf);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* ------------------------------------------------------- timeouts */

START_TEST(recv_without_data_times_out_and_stays_usable)
{
	struct tb_conn *s, *r;
	struct tb_buf b = { 0 };
	struct tb_rec rec;
	int64_t deadline;
	int fds = count_fds();

	if (!make_pair((enum link_kind)_i, NULL, NULL, &s, &r))
		return;
	deadline = tb_now_ns() + 150 * MSEC;
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, deadline), -ETIMEDOUT);
	ck_assert_int_ge(tb_now_ns(), deadline);
	/* a deadline already past: no wait at all, still -ETIMEDOUT */
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() - SEC),
			 -ETIMEDOUT);
	/* half a record, then time out inside it: nothing is lost */
	enc_blob(&b, 5, 20000);
	ck_assert_int_eq(tb_conn_send(s, b.data, 100, tb_now_ns() + SEC), 0);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 100 * MSEC),
			 -ETIMEDOUT);
	ck_assert_int_eq(tb_conn_send(s, b.data + 100, b.len - 100,
				      tb_now_ns() + SEC),
			 0);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 5 * SEC), 1);
	check_blob(&rec, 5, 20000);
	tb_buf_free(&b);
	tb_conn_close(s);
	tb_conn_close(r);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/*
 * Send into a peer that never reads: -ETIMEDOUT, and the kernel no longer
 * reads the buffer afterwards: once the peer drains, it receives exactly
 * bytes_sent bytes, none of them the marker written after the return.
 */
START_TEST(send_to_stalled_peer_times_out_and_releases_buffers)
{
	struct tb_conn *s, *r;
	struct tb_conn_opts zo = { .zerocopy = true };
	bool zc = _i >= LINK_NR;
	struct tb_conn_stats st;
	size_t len = 64u << 20, got = 0;
	uint8_t *buf, tmp[65536];
	int64_t deadline;
	int rc, fd, fds = count_fds();
	ssize_t k;

	if (!make_pair((enum link_kind)(_i % LINK_NR), zc ? &zo : NULL, NULL,
		       &s, &r))
		return;
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(buf != MAP_FAILED);
	memset(buf, 0x5a, len);
	deadline = tb_now_ns() + 300 * MSEC;
	rc = tb_conn_send(s, buf, len, deadline);
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_int_ge(tb_now_ns(), deadline);
	memset(buf, 0xee, len);
	tb_conn_get_stats(s, &st);
	ck_assert_uint_gt(st.bytes_sent, 0);
	ck_assert_uint_lt(st.bytes_sent, len);
	/* sticky: the stream has a partial record in it */
	ck_assert_int_eq(tb_conn_send(s, buf, 1, tb_now_ns() + SEC),
			 -ETIMEDOUT);
	if (!zc || !tb_conn_zc_supported(s)) {
		fd = tb_conn_fd(r);
		shutdown(tb_conn_fd(s), SHUT_WR);
		while ((k = recv(fd, tmp, sizeof(tmp), 0)) > 0) {
			ck_assert(memchr(tmp, 0xee, (size_t)k) == NULL);
			got += (size_t)k;
		}
		ck_assert_int_eq(k, 0);
		ck_assert_uint_eq(got, st.bytes_sent);
	} else {
		/* the stalled ZC socket was reset to release the pages */
		ck_assert_uint_eq(st.zc_sends, st.sends);
	}
	ck_assert_int_eq(munmap(buf, len), 0);
	tb_conn_close(s);
	tb_conn_close(r);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

START_TEST(accept_without_client_times_out)
{
	struct tb_listener *l;
	struct tb_conn *c = NULL;

	ck_assert_int_eq(tb_listener_open(&l, "127.0.0.1:0"), 0);
	ck_assert_int_eq(tb_listener_accept(l, &c, NULL,
					    tb_now_ns() + 100 * MSEC),
			 -ETIMEDOUT);
	ck_assert_ptr_null(c);
	tb_listener_close(l);
}
END_TEST

START_TEST(connect_to_closed_port_is_refused)
{
	struct tb_listener *l;
	struct tb_conn *c = NULL;
	char addr[128];

	ck_assert_int_eq(tb_listener_open(&l, "127.0.0.1:0"), 0);
	snprintf(addr, sizeof(addr), "%s", tb_listener_addr(l));
	tb_listener_close(l);
	ck_assert_int_eq(tb_conn_connect(&c, addr, NULL, tb_now_ns() + 5 * SEC),
			 -ECONNREFUSED);
	ck_assert_int_eq(tb_conn_connect(&c, "unix:/nonexistent/tiber.sock",
					 NULL, tb_now_ns() + 5 * SEC),
			 -ENOENT);
	/* RFC 6761: .invalid never resolves, with or without a resolver */
	ck_assert_int_eq(tb_conn_connect(&c, "tiber-test.invalid:7700", NULL,
					 tb_now_ns() + 5 * SEC),
			 -TB_ERESOLVE);
	ck_assert_str_eq(tb_strerror(-TB_ERESOLVE), "cannot resolve host name");
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(address_syntax_is_checked_without_resolving)
{
	static const char *const good[] = {
		"127.0.0.1:7700",	  "[::1]:7700",
		"backup.example:7700",	  "tiber-test.invalid:1",
		"unix:/run/tiber/r.sock", "unix:@tb",
	};
	static const char *const bad[] = {
		"garbage",  "host:",	 ":7700", "host:70000", "host:7x",
		"::1:7700", "[::1]7700", "unix:", "unix:@",	"",
	};
	size_t i;

	for (i = 0; i < TB_ARRAY_SIZE(good); i++)
		ck_assert_msg(!tb_addr_check(good[i]), "%s refused", good[i]);
	for (i = 0; i < TB_ARRAY_SIZE(bad); i++)
		ck_assert_msg(tb_addr_check(bad[i]) == -EINVAL, "%s accepted",
			      bad[i]);
	ck_assert_int_eq(tb_addr_check(NULL), -EINVAL);
}
END_TEST

/* A full unix backlog makes connect() fail with EAGAIN at once: the
 * transport retries until the deadline, and succeeds once there is room. */
START_TEST(unix_connect_waits_for_backlog_until_deadline)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct tb_listener *l;
	struct tb_conn *c = NULL, *a = NULL;
	char addr[128];
	int fill[300], nfill = 0, fd, fds = count_fds();
	int64_t deadline;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/tiber-test-bl-%d.sock",
		 tb_test_tmp(), (int)getpid());
	snprintf(addr, sizeof(addr), "unix:%s", sun.sun_path);
	ck_assert_int_eq(tb_listener_open(&l, addr), 0);
	for (;;) {
		ck_assert_int_lt(nfill, (int)TB_ARRAY_SIZE(fill));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0);
		ck_assert_int_ge(fd, 0);
		if (connect(fd, (void *)&sun, sizeof(sun)) < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			close(fd);
			break;
		}
		fill[nfill++] = fd;
	}
	deadline = tb_now_ns() + 100 * MSEC;
	ck_assert_int_eq(tb_conn_connect(&c, addr, NULL, deadline), -ETIMEDOUT);
	ck_assert_int_ge(tb_now_ns(), deadline);
	ck_assert_ptr_null(c);
	/* make room: accept one pending client */
	ck_assert_int_eq(tb_listener_accept(l, &a, NULL, tb_now_ns() + SEC), 0);
	ck_assert_int_eq(tb_conn_connect(&c, addr, NULL, tb_now_ns() + 5 * SEC),
			 0);
	tb_conn_close(c);
	tb_conn_close(a);
	while (nfill)
		close(fill[--nfill]);
	tb_listener_close(l);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

struct open_arg {
	const char *addr;
	struct tb_listener *l;
	int rc;
};

static void *open_main(void *p)
{
	struct open_arg *o = p;

	o->rc = tb_listener_open(&o->l, o->addr);
	return NULL;
}

/* A unix socket path exists only once it listens (a client that sees the
 * path is never refused), replaces a stale socket, never a regular file,
 * and leaves no temporary name behind. */
START_TEST(unix_socket_appears_listening)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct open_arg o = { 0 };
	char dir[80], addr[128];
	struct stat st;
	pthread_t t;
	int fd, i, fds = count_fds();

	snprintf(dir, sizeof(dir), "%s/tiber-test-ul.XXXXXX", tb_test_tmp());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/l.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", sun.sun_path);
	o.addr = addr;
	for (i = 0; i < 300; i++) {
		ck_assert_int_eq(pthread_create(&t, NULL, open_main, &o), 0);
		while (stat(sun.sun_path, &st) < 0)
			ck_assert_int_eq(errno, ENOENT);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_msg(connect(fd, (void *)&sun, sizeof(sun)) == 0,
			      "try %d: the path refused us: %s", i,
			      strerror(errno));
		close(fd);
		pthread_join(t, NULL);
		ck_assert_int_eq(o.rc, 0);
		tb_listener_close(o.l);
	}
	/* a stale socket (its listener gone without unlinking) is replaced */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (void *)&sun, sizeof(sun)), 0);
	close(fd);
	ck_assert_int_eq(tb_listener_open(&o.l, addr), 0);
	tb_listener_close(o.l);
	/* a regular file is not */
	fd = open(sun.sun_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(tb_listener_open(&o.l, addr), -EEXIST);
	ck_assert_int_eq(unlink(sun.sun_path), 0);
	ck_assert_int_eq(rmdir(dir), 0); /* empty: no temporary name left */
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* ------------------------------------------------------- shutdown */

struct shut_arg {
	struct tb_conn *c;
	int64_t delay_ns;
};

static void *shut_later(void *p)
{
	struct shut_arg *a = p;

	tb_sleep_until(tb_now_ns() + a->delay_ns);
	tb_conn_shutdown(a->c);
	return NULL;
}

START_TEST(shutdown_wakes_blocked_receiver_and_sender)
{
	struct tb_conn *s, *r;
	struct tb_conn_opts zo = { .zerocopy = true };
	struct shut_arg sa = { .delay_ns = 100 * MSEC };
	const struct tb_conn_opts *o = _i >= LINK_NR ? &zo : NULL;
	enum link_kind kind = (enum link_kind)(_i % LINK_NR);
	struct tb_rec rec;
	size_t len = 64u << 20;
	uint8_t *buf;
	pthread_t t;
	int fds = count_fds();

	if (!make_pair(kind, o, NULL, &s, &r))
		return;
	/* receiver blocked without a deadline */
	sa.c = r;
	ck_assert_int_eq(pthread_create(&t, NULL, shut_later, &sa), 0);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, -1), -ECANCELED);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, -1), -ECANCELED);
	ck_assert_int_eq(tb_conn_send(r, "x", 1, -1), -ECANCELED);
	tb_conn_close(s);
	tb_conn_close(r);

	/* sender blocked on a full socket without a deadline; the peer
	 * does not read */
	ck_assert(make_pair(kind, o, NULL, &s, &r));
	buf = calloc(1, len);
	ck_assert_ptr_nonnull(buf);
	sa.c = s;
	ck_assert_int_eq(pthread_create(&t, NULL, shut_later, &sa), 0);
	ck_assert_int_eq(tb_conn_send(s, buf, len, -1), -ECANCELED);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(tb_conn_send(s, buf, 1, -1), -ECANCELED);
	/* shutdown twice is harmless */
	tb_conn_shutdown(s);
	free(buf);
	tb_conn_close(s);
	tb_conn_close(r);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* Shutdown racing with calls that start at about the same time. */
START_TEST(shutdown_racing_with_calls_never_hangs)
{
	unsigned i, n = tb_check_scale(200, 50);

	for (i = 0; i < n; i++) {
		struct tb_conn *s, *r;
		struct shut_arg sa = { .delay_ns = (int64_t)(i % 7) * 20000 };
		struct tb_rec rec;
		pthread_t t;
		int rc;

		make_pair(LINK_SOCKETPAIR, NULL, NULL, &s, &r);
		sa.c = r;
		ck_assert_int_eq(pthread_create(&t, NULL, shut_later, &sa), 0);
		rc = tb_conn_recv_rec(r, &rec, -1);
		ck_assert_int_eq(rc, -ECANCELED);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		tb_conn_close(s);
		tb_conn_close(r);
	}
}
END_TEST

/* ------------------------------------------------------- SEND_ZC */

START_TEST(send_zc_works_on_tcp_or_falls_back)
{
	struct tb_conn *s, *r;
	struct tb_conn_opts zo = { .zerocopy = true };
	struct order_arg arg = { .nr = tb_check_scale(2000, 500) };
	struct tb_conn_stats st;
	struct tb_rec rec;
	uint64_t rng = 7;
	pthread_t t;
	uint32_t seq;

	if (!make_pair((enum link_kind)_i, &zo, NULL, &s, &r))
		return;
	arg.c = s;
	ck_assert_int_eq(pthread_create(&t, NULL, order_sender, &arg), 0);
	for (seq = 0; seq < arg.nr; seq++) {
		uint32_t len = order_len(&rng);

		ck_assert_int_eq(
			tb_conn_recv_rec(r, &rec, tb_now_ns() + 30 * SEC), 1);
		check_blob(&rec, seq, len);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(arg.rc, 0);
	tb_conn_get_stats(s, &st);
	fprintf(stderr,
		"zc over %s: supported=%d sends=%" PRIu64 " zc_sends=%" PRIu64
		" zc_copied=%" PRIu64 "\n",
		link_name[_i], tb_conn_zc_supported(s), st.sends, st.zc_sends,
		st.zc_copied);
	if (_i == LINK_TCP4 || _i == LINK_TCP6) {
		if (tb_conn_zc_supported(s))
			ck_assert_uint_eq(st.zc_sends, st.sends);
		else
			ck_assert_uint_eq(st.zc_sends, 0);
		ck_assert_uint_le(st.zc_copied, st.zc_sends);
	} else {
		/* AF_UNIX: never SEND_ZC (EOPNOTSUPP there) */
		ck_assert(!tb_conn_zc_supported(s));
		ck_assert_uint_eq(st.zc_sends, 0);
	}
	ck_assert(!tb_conn_zc_supported(r)); /* not asked for */
	tb_conn_close(s);
	ck_assert_int_eq(tb_conn_recv_rec(r, &rec, tb_now_ns() + 10 * SEC), 0);
	tb_conn_close(r);
}
END_TEST

/* ------------------------------------------------------- pacing */

struct drain_arg {
	int fd;
	uint64_t n;
};

static void *drain(void *p)
{
	struct drain_arg *a = p;
	static uint8_t tmp[1 << 16];
	ssize_t k;

	while ((k = recv(a->fd, tmp, sizeof(tmp), 0)) > 0)
		a->n += (uint64_t)k;
	return NULL;
}

START_TEST(pacing_limits_the_rate)
{
	/* 400 Mbit/s = 50 MB/s; 8 MiB should take ~170 ms */
	struct tb_conn_opts po = { .rate_bps = 400000000ull };
	struct tb_conn *s, *r;
	struct drain_arg da;
	struct tb_conn_stats st;
	size_t len = 8u << 20, off;
	uint8_t *buf;
	pthread_t t;
	int64_t t0, dt;
	double bps;

	ck_assert(make_pair(LINK_TCP4, &po, NULL, &s, &r));
	buf = calloc(1, len);
	ck_assert_ptr_nonnull(buf);
	da.fd = tb_conn_fd(r);
	da.n = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, drain, &da), 0);
	t0 = tb_now_ns();
	for (off = 0; off < len; off += 1u << 20)
		ck_assert_int_eq(tb_conn_send(s, buf + off, 1u << 20,
					      tb_now_ns() + 30 * SEC),
				 0);
	dt = tb_now_ns() - t0;
	shutdown(tb_conn_fd(s), SHUT_WR);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_uint_eq(da.n, len);
	tb_conn_get_stats(s, &st);
	bps = (double)len * 8 * SEC / (double)dt;
	fprintf(stderr,
		"paced: %.0f Mbit/s for 400 configured, waited %.1f ms\n",
		bps / 1e6, (double)st.pacing_wait_ns / MSEC);
	ck_assert_msg(bps < 2 * 400e6, "%.0f bit/s", bps);
	ck_assert_int_gt(st.pacing_wait_ns, 0);
	ck_assert_uint_eq(st.bytes_sent, len);

	tb_conn_close(s);
	tb_conn_close(r);

	/* a deadline shorter than the pacer's wait: -ETIMEDOUT */
	ck_assert(make_pair(LINK_TCP4, &po, NULL, &s, &r));
	ck_assert_int_eq(tb_conn_send(s, buf, len, tb_now_ns() + 20 * MSEC),
			 -ETIMEDOUT);
	tb_conn_get_stats(s, &st);
	ck_assert_uint_lt(st.bytes_sent, len);
	free(buf);
	tb_conn_close(s);
	tb_conn_close(r);
}
END_TEST

/* ------------------------------------------------------- addresses */

START_TEST(malformed_addresses_are_einval)
{
	static const char *const bad[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		":80",
		"127.0.0.1:99999",
		"127.0.0.1:8x",
		"127.0.0.1:-1",
		"::1:80",
		"[::1]",
		"[::1]80",
		"[::1:80",
		"[]:80",
		"[127.0.0.1]:80",
		"1.2.3.4.5:80",
		"300.1.1.1:80",
		"unix:",
		"unix:@",
	};
	struct tb_listener *l = NULL;
	struct tb_conn *c = NULL;
	char longpath[6 + 110];
	size_t i;

	for (i = 0; i < TB_ARRAY_SIZE(bad); i++) {
		ck_assert_msg(tb_conn_connect(&c, bad[i], NULL,
					      tb_now_ns() + SEC) == -EINVAL,
			      "connect %s", bad[i]);
		ck_assert_msg(tb_listener_open(&l, bad[i]) == -EINVAL,
			      "listen %s", bad[i]);
	}
	/* a path longer than sun_path */
	memset(longpath, 'a', sizeof(longpath) - 1);
	memcpy(longpath, "unix:/", 6);
	longpath[sizeof(longpath) - 1] = 0;
	ck_assert_int_eq(tb_conn_connect(&c, longpath, NULL, -1), -EINVAL);
	ck_assert_int_eq(tb_listener_open(&l, longpath), -EINVAL);
	ck_assert_int_eq(tb_conn_connect(&c, NULL, NULL, -1), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(tb_conn_from_fd(&c, -1, NULL), -EINVAL);
}
END_TEST

static Suite *transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc;

	tc = tcase_create("records");
	tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, records_arrive_in_order_over_every_family, 0,
			    LINK_NR);
	tcase_add_loop_test(tc, large_epoch_streams_with_acks_flowing_back,
			    LINK_SOCKETPAIR, LINK_TCP4 + 1);
	tcase_add_loop_test(tc, send_zc_works_on_tcp_or_falls_back, 0, LINK_NR);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, peer_closing_mid_record_gives_epipe, 0,
			    LINK_NR);
	tcase_add_loop_test(tc, sender_gets_epipe_not_sigpipe_when_peer_goes, 0,
			    2 * LINK_NR);
	tcase_add_loop_test(tc, recv_without_data_times_out_and_stays_usable, 0,
			    LINK_NR);
	tcase_add_loop_test(tc,
			    send_to_stalled_peer_times_out_and_releases_buffers,
			    0, 2 * LINK_NR);
	tcase_add_test(tc, accept_without_client_times_out);
	tcase_add_test(tc, connect_to_closed_port_is_refused);
	tcase_add_test(tc, address_syntax_is_checked_without_resolving);
	tcase_add_test(tc, unix_connect_waits_for_backlog_until_deadline);
	tcase_add_test(tc, unix_socket_appears_listening);
	tcase_add_loop_test(tc, shutdown_wakes_blocked_receiver_and_sender, 0,
			    2 * LINK_NR);
	tcase_add_test(tc, shutdown_racing_with_calls_never_hangs);
	suite_add_tcase(s, tc);

	tc = tcase_create("pacing_and_addresses");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pacing_limits_the_rate);
	tcase_add_test(tc, malformed_addresses_are_einval);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(transport_suite)
