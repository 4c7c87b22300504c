// SPDX-License-Identifier: MIT
/*
 * TLS on the replication link (lib/tls.c through lib/transport.c):
 * mutual X.509 and PSK handshakes, records both ways at once (one
 * sender and one receiver thread per side), and every way the
 * handshake must fail: a peer from another CA, a client without a
 * certificate, a wrong PSK, a plaintext peer, a silent peer; and a
 * record altered on the wire.  Records in user space (GnuTLS) and in
 * the kernel (kTLS, where the kernel has the tls module), both ways and
 * mixed.  Credentials come from scripts/tls-keys.sh.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/common.h"
#include "tiber/stream.h"
#include "tiber/tls.h"
#include "tiber/transport.h"

#define SEC    TB_NSEC_PER_SEC
#define BLOB   60000u
#define NBLOBS 600u /* 36 MB each way */

static char dir[80];

static void keys(void)
{
	char cmd[512];

	snprintf(dir, sizeof(dir), "%s/tiber-tls.XXXXXX", tb_test_tmp());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "set -e; k=scripts/tls-keys.sh; d=%s;"
		 "$k ca $d/ca; $k cert $d/ca primary; $k cert $d/ca backup;"
		 "$k ca $d/rogue; $k cert $d/rogue primary;"
		 "$k psk $d/psk tiberd-1; $k psk $d/psk-other tiberd-1;"
		 "cp $d/psk $d/psk-open; chmod 0644 $d/psk-open",
		 dir);
	ck_assert_msg(system(cmd) == 0, "scripts/tls-keys.sh failed");
}

static void rmkeys(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static char *f(const char *sub)
{
	static char bufs[8][128];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, sub);
	return b;
}

static struct tb_tls_ctx *ctx(const struct tb_tls_cfg *cfg, bool server)
{
	struct tb_tls_ctx *x;
	char why[256];
	int rc = tb_tls_ctx_new(&x, cfg, server, why, sizeof(why));

	ck_assert_msg(rc == 0, "tls ctx: %s", why);
	return x;
}

static struct tb_tls_cfg x509(const char *cadir, const char *name)
{
	static char c[4][128], k[4][128], a[4][128];
	static int i;
	int j = i++ % 4;

	snprintf(c[j], sizeof(c[j]), "%s/%s/%s.pem", dir, cadir, name);
	snprintf(k[j], sizeof(k[j]), "%s/%s/%s.key", dir, cadir, name);
	snprintf(a[j], sizeof(a[j]), "%s/ca/ca.pem", dir);
	return (struct tb_tls_cfg){ .cert = c[j], .key = k[j], .ca = a[j] };
}

struct side {
	struct tb_listener *l;
	struct tb_tls_ctx *x;
	struct tb_conn *c;
	int rc;
	char why[256];
};

static void *accept_main(void *arg)
{
	struct side *s = arg;

	s->rc = tb_listener_accept(s->l, &s->c, NULL, tb_now_ns() + 5 * SEC);
	if (!s->rc)
		s->rc = tb_conn_start_tls(s->c, s->x, tb_now_ns() + 2 * SEC,
					  s->why, sizeof(s->why));
	return NULL;
}

/* Handshake a client with @cx against a server with @sx: the two rcs,
 * and the connected pair if both are 0. */
static void pair(struct tb_tls_ctx *cx, struct tb_tls_ctx *sx, int *crc,
		 int *src, struct tb_conn **cc, struct tb_conn **sc)
{
	struct side s = { .x = sx };
	char why[256] = "";
	pthread_t t;

	ck_assert_int_eq(tb_listener_open(&s.l, "127.0.0.1:0"), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, accept_main, &s), 0);
	ck_assert_int_eq(tb_conn_connect(cc, tb_listener_addr(s.l), NULL,
					 tb_now_ns() + 5 * SEC),
			 0);
	*crc = tb_conn_start_tls(*cc, cx, tb_now_ns() + 2 * SEC, why,
				 sizeof(why));
	if (*crc) {
		printf("client: %s\n", why);
		tb_conn_close(*cc); /* the server sees the hang-up */
		*cc = NULL;
	}
	pthread_join(t, NULL);
	*src = s.rc;
	if (s.rc)
		printf("server: %s\n", s.why);
	*sc = s.rc ? NULL : s.c;
	if (s.rc)
		tb_conn_close(s.c);
	tb_listener_close(s.l);
}

/* ---------------------------------------------------------------- records */

static void fill(uint8_t *b, unsigned i, unsigned dirn)
{
	for (unsigned k = 0; k < BLOB; k++)
		b[k] = (uint8_t)(k * 31 + i * 7 + dirn);
}

struct xfer {
	struct tb_conn *c;
	unsigned dirn;
	int rc;
};

static void *send_main(void *arg)
{
	struct xfer *x = arg;
	struct tb_buf b = { 0 };
	uint8_t *blob = malloc(BLOB);

	for (unsigned i = 0; i < NBLOBS && !x->rc; i++) {
		fill(blob, i, x->dirn);
		tb_buf_reset(&b);
		x->rc = tb_enc_state(&b, TB_REC_CPU_STATE, 1, i, blob, BLOB) ?:
				tb_conn_send(x->c, b.data, b.len,
					     tb_now_ns() + 10 * SEC);
	}
	free(blob);
	tb_buf_free(&b);
	return NULL;
}

static void *recv_main(void *arg)
{
	struct xfer *x = arg;
	uint8_t *blob = malloc(BLOB);
	struct tb_rec r;

	for (unsigned i = 0; i < NBLOBS && !x->rc; i++) {
		int rc = tb_conn_recv_rec(x->c, &r, tb_now_ns() + 10 * SEC);

		if (rc != 1) {
			x->rc = rc ? rc : -EPIPE;
			break;
		}
		fill(blob, i, x->dirn);
		if (r.type != TB_REC_CPU_STATE || r.u.state.index != i ||
		    r.u.state.len != BLOB || memcmp(r.u.state.data, blob, BLOB))
			x->rc = -EBADMSG;
	}
	free(blob);
	return NULL;
}

/* Both directions at once: each side one sender and one receiver. */
static void exchange(struct tb_conn *a, struct tb_conn *b)
{
	struct xfer sa = { a, 1, 0 }, ra = { a, 2, 0 };
	struct xfer sb = { b, 2, 0 }, rb = { b, 1, 0 };
	pthread_t t[4];

	pthread_create(&t[0], NULL, send_main, &sa);
	pthread_create(&t[1], NULL, recv_main, &ra);
	pthread_create(&t[2], NULL, send_main, &sb);
	pthread_create(&t[3], NULL, recv_main, &rb);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(sa.rc, 0);
	ck_assert_int_eq(sb.rc, 0);
	ck_assert_int_eq(ra.rc, 0);
	ck_assert_int_eq(rb.rc, 0);
}

START_TEST(x509_mutual_both_ways)
{
	struct tb_tls_cfg cc = x509("ca", "primary"), sc = x509("ca", "backup");
	struct tb_tls_ctx *cx, *sx;
	struct tb_conn_stats st;
	struct tb_conn *a, *b;
	int crc, src;

	cc.peer_name = "backup";
	cc.kernel = sc.kernel = TB_TLS_KERNEL_NO; /* GnuTLS seals */
	cx = ctx(&cc, false);
	sx = ctx(&sc, true);
	pair(cx, sx, &crc, &src, &a, &b);
	ck_assert_int_eq(crc, 0);
	ck_assert_int_eq(src, 0);
	ck_assert_str_eq(tb_conn_peer_id(b), "primary");
	ck_assert_str_eq(tb_conn_peer_id(a), "backup");
	ck_assert_ptr_nonnull(strstr(tb_conn_tls_desc(a), "TLS1.3"));
	ck_assert_ptr_nonnull(strstr(tb_conn_tls_desc(a), "user-space"));
	exchange(a, b);
	tb_conn_get_stats(a, &st);
	/* what crossed the socket is the ciphertext: a little more */
	ck_assert_uint_gt(st.bytes_sent, (uint64_t)NBLOBS * BLOB);
	printf("x509: %s, %llu bytes sent for %u of records\n",
	       tb_conn_tls_desc(a), (unsigned long long)st.bytes_sent,
	       NBLOBS * BLOB);
	tb_conn_close(a);
	tb_conn_close(b);
	tb_tls_ctx_free(cx);
	tb_tls_ctx_free(sx);
}
END_TEST

START_TEST(psk_both_ways)
{
	struct tb_tls_cfg c = { .psk_file = f("psk"),
				.kernel = TB_TLS_KERNEL_NO };
	struct tb_tls_ctx *cx = ctx(&c, false), *sx = ctx(&c, true);
	struct tb_conn *a, *b;
	int crc, src;

	pair(cx, sx, &crc, &src, &a, &b);
	ck_assert_int_eq(crc, 0);
	ck_assert_int_eq(src, 0);
	ck_assert_str_eq(tb_conn_peer_id(b), "tiberd-1");
	exchange(a, b);
	tb_conn_close(a);
	tb_conn_close(b);
	tb_tls_ctx_free(cx);
	tb_tls_ctx_free(sx);
}
END_TEST

/*
 * Each refused handshake fails in time, saying why, and no record gets
 * through.  The side that refuses sends an alert: the other side never
 * waits for its deadline.  In TLS 1.3 the client finishes before the
 * server checked the client's certificate: then the client's first
 * receive fails (the alert, or the reset of the closed socket).
 */
static void refused(struct tb_tls_ctx *cx, struct tb_tls_ctx *sx)
{
	struct tb_conn *a, *b;
	int64_t t0 = tb_now_ns();
	struct tb_rec rec;
	int crc, src;

	pair(cx, sx, &crc, &src, &a, &b);
	ck_assert_int_ne(src, 0);
	ck_assert_int_ne(src, -ETIMEDOUT);
	ck_assert_int_ne(crc, -ETIMEDOUT);
	if (!crc) {
		crc = tb_conn_recv_rec(a, &rec, tb_now_ns() + 2 * SEC);
		printf("client: first receive: %d\n", crc);
		ck_assert_int_lt(crc, 0);
		tb_conn_close(a);
	}
	ck_assert_int_lt(tb_now_ns() - t0, 4 * SEC);
	tb_tls_ctx_free(cx);
	tb_tls_ctx_free(sx);
}

START_TEST(server_from_another_ca_refused)
{
	struct tb_tls_cfg cc = x509("ca", "primary"),
			  sc = x509("rogue", "primary");

	refused(ctx(&cc, false), ctx(&sc, true));
}
END_TEST

START_TEST(client_from_another_ca_refused)
{
	struct tb_tls_cfg cc = x509("rogue", "primary"),
			  sc = x509("ca", "backup");

	refused(ctx(&cc, false), ctx(&sc, true));
}
END_TEST

START_TEST(server_with_wrong_name_refused)
{
	struct tb_tls_cfg cc = x509("ca", "primary"), sc = x509("ca", "backup");

	cc.peer_name = "some-other-backup";
	refused(ctx(&cc, false), ctx(&sc, true));
}
END_TEST

START_TEST(client_without_certificate_refused)
{
	/* a PSK client meets a certificate server: no certificate to show */
	struct tb_tls_cfg cc = { .psk_file = f("psk") },
			  sc = x509("ca", "backup");

	refused(ctx(&cc, false), ctx(&sc, true));
}
END_TEST

START_TEST(wrong_psk_refused)
{
	struct tb_tls_cfg cc = { .psk_file = f("psk-other") },
			  sc = { .psk_file = f("psk") };

	refused(ctx(&cc, false), ctx(&sc, true));
}
END_TEST

START_TEST(plaintext_and_silent_peers_refused)
{
	struct tb_tls_cfg sc = { .psk_file = f("psk") };
	struct tb_tls_ctx *sx = ctx(&sc, true);
	struct side s = { .x = sx };
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION };
	struct tb_buf b = { 0 };
	struct tb_conn *c;
	pthread_t t;
	int64_t t0;

	/* a plaintext HELLO */
	ck_assert_int_eq(tb_listener_open(&s.l, "127.0.0.1:0"), 0);
	pthread_create(&t, NULL, accept_main, &s);
	ck_assert_int_eq(tb_conn_connect(&c, tb_listener_addr(s.l), NULL,
					 tb_now_ns() + 5 * SEC),
			 0);
	tb_enc_hello(&b, &h);
	ck_assert_int_eq(tb_conn_send(c, b.data, b.len, tb_now_ns() + SEC), 0);
	pthread_join(t, NULL);
	/* refused at once, or at the deadline if the bytes looked like the
	 * start of a record */
	ck_assert(s.rc == -EPROTO || s.rc == -ETIMEDOUT);
	printf("plaintext peer: %s\n", s.why);
	tb_conn_close(s.c);
	tb_conn_close(c);

	/* a peer that connects and says nothing: the deadline */
	t0 = tb_now_ns();
	pthread_create(&t, NULL, accept_main, &s);
	ck_assert_int_eq(tb_conn_connect(&c, tb_listener_addr(s.l), NULL,
					 tb_now_ns() + 5 * SEC),
			 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(s.rc, -ETIMEDOUT);
	ck_assert_int_lt(tb_now_ns() - t0, 4 * SEC);
	tb_conn_close(s.c);
	tb_conn_close(c);
	tb_listener_close(s.l);
	tb_buf_free(&b);
	tb_tls_ctx_free(sx);
}
END_TEST

/* A relay between two socket pairs that can flip one bit of the next
 * chunk of application data going from the client to the server. */
struct relay {
	int c, s;	 /* its ends towards the client and the server */
	atomic_int flip; /* 1: alter the next data chunk */
};

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	uint8_t raw[65536];
	ssize_t n;

	for (;;) {
		struct pollfd p[2] = { { r->c, POLLIN, 0 },
				       { r->s, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0)
			return NULL;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			n = read(p[i].fd, raw, sizeof(raw));
			if (n <= 0)
				return NULL;
			/* a TLS record of application data (type 23) */
			if (i == 0 && n > 30 && raw[0] == 23 &&
			    atomic_exchange(&r->flip, 0))
				raw[12] ^= 0x10; /* inside the sealed payload */
			if (write(p[!i].fd, raw, (size_t)n) != n)
				return NULL;
		}
	}
}

struct hs {
	struct tb_conn *c;
	struct tb_tls_ctx *x;
	int rc;
	char why[256];
};

static void *hs_main(void *arg)
{
	struct hs *h = arg;

	h->rc = tb_conn_start_tls(h->c, h->x, tb_now_ns() + 2 * SEC, h->why,
				  sizeof(h->why));
	return NULL;
}

START_TEST(altered_record_is_rejected)
{
	struct tb_tls_cfg c = { .psk_file = f("psk") };
	struct relay r = { 0 };
	struct hs cl = { 0 }, sv = { 0 };
	struct tb_heartbeat hb = { .seq = 1 };
	struct tb_buf b = { 0 };
	struct tb_rec rec;
	pthread_t t, rt;
	int p1[2], p2[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p1),
			 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p2),
			 0);
	r.c = p1[1];
	r.s = p2[1];
	ck_assert_int_eq(tb_conn_from_fd(&cl.c, p1[0], NULL), 0);
	ck_assert_int_eq(tb_conn_from_fd(&sv.c, p2[0], NULL), 0);
	cl.x = ctx(&c, false);
	sv.x = ctx(&c, true);
	pthread_create(&rt, NULL, relay_main, &r);
	pthread_create(&t, NULL, hs_main, &cl);
	hs_main(&sv);
	pthread_join(t, NULL);
	ck_assert_msg(cl.rc == 0 && sv.rc == 0, "%s / %s", cl.why, sv.why);

	/* an unaltered record arrives */
	tb_enc_heartbeat(&b, &hb);
	ck_assert_int_eq(tb_conn_send(cl.c, b.data, b.len, tb_now_ns() + SEC),
			 0);
	ck_assert_int_eq(tb_conn_recv_rec(sv.c, &rec, tb_now_ns() + 2 * SEC),
			 1);
	ck_assert_uint_eq(rec.u.hb.seq, 1);
	/* one bit flipped in the next: refused, not delivered */
	tb_buf_reset(&b);
	hb.seq = 2;
	tb_enc_heartbeat(&b, &hb);
	atomic_store(&r.flip, 1);
	ck_assert_int_eq(tb_conn_send(cl.c, b.data, b.len, tb_now_ns() + SEC),
			 0);
	ck_assert_int_eq(tb_conn_recv_rec(sv.c, &rec, tb_now_ns() + 2 * SEC),
			 -EBADMSG);
	ck_assert_int_eq(atomic_load(&r.flip), 0); /* the relay did flip */

	tb_conn_close(cl.c);
	tb_conn_close(sv.c);
	close(r.s);
	pthread_join(rt, NULL);
	close(r.c);
	tb_buf_free(&b);
	tb_tls_ctx_free(cl.x);
	tb_tls_ctx_free(sv.x);
}
END_TEST

/* ------------------------------------------------------------ kernel TLS */

/* NULL if a TCP socket takes the tls ULP here, else why not. */
static const char *no_kernel_tls(void)
{
	static char why[160];
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	const char *r = why;

	ck_assert(l >= 0 && c >= 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	if (setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0)
		r = NULL;
	else
		snprintf(
			why, sizeof(why),
			"this kernel has no tls ULP (%s): modprobe tls; make check-xen's HA job runs kTLS",
			strerror(errno));
	close(c);
	close(l);
	return r;
}

/* @ck and @sk: the client's and the server's tls_kernel; the records
 * cross both ways at once and arrive intact. */
static void kernel_pair(int ck, int sk, const char *cdesc, const char *sdesc)
{
	struct tb_tls_cfg cc = { .psk_file = f("psk"), .kernel = ck };
	struct tb_tls_cfg sc = { .psk_file = f("psk"), .kernel = sk };
	struct tb_tls_ctx *cx = ctx(&cc, false), *sx = ctx(&sc, true);
	struct tb_conn_stats st;
	struct tb_conn *a, *b;
	int crc, src;

	pair(cx, sx, &crc, &src, &a, &b);
	ck_assert_int_eq(crc, 0);
	ck_assert_int_eq(src, 0);
	ck_assert_msg(strstr(tb_conn_tls_desc(a), cdesc), "client: %s",
		      tb_conn_tls_desc(a));
	ck_assert_msg(strstr(tb_conn_tls_desc(b), sdesc), "server: %s",
		      tb_conn_tls_desc(b));
	exchange(a, b);
	tb_conn_get_stats(a, &st);
	printf("%s -> %s: %llu bytes sent for %u of records\n",
	       tb_conn_tls_desc(a), tb_conn_tls_desc(b),
	       (unsigned long long)st.bytes_sent, NBLOBS * BLOB);
	tb_conn_close(a);
	tb_conn_close(b);
	tb_tls_ctx_free(cx);
	tb_tls_ctx_free(sx);
}

START_TEST(kernel_tls_both_ways)
{
	const char *why = no_kernel_tls();

	if (why) {
		tb_skip("kernel_tls_both_ways", "%s", why);
		return;
	}
	kernel_pair(TB_TLS_KERNEL_YES, TB_TLS_KERNEL_YES, "kTLS", "kTLS");
	/* auto takes the kernel's where there is one */
	kernel_pair(TB_TLS_KERNEL_AUTO, TB_TLS_KERNEL_AUTO, "kTLS", "kTLS");
}
END_TEST

/* The wire is TLS 1.3 either way: a kTLS side talks to a GnuTLS side. */
START_TEST(kernel_and_user_space_peers_interoperate)
{
	const char *why = no_kernel_tls();

	if (why) {
		tb_skip("kernel_and_user_space_peers_interoperate", "%s", why);
		return;
	}
	kernel_pair(TB_TLS_KERNEL_YES, TB_TLS_KERNEL_NO, "kTLS", "user-space");
	kernel_pair(TB_TLS_KERNEL_NO, TB_TLS_KERNEL_YES, "user-space", "kTLS");
}
END_TEST

/* tls_kernel = yes where the kernel cannot (a Unix socket never takes
 * the tls ULP): refused, saying so, on this side; auto falls back. */
START_TEST(tls_kernel_yes_without_kernel_tls_refused)
{
	struct tb_tls_cfg cy = { .psk_file = f("psk"),
				 .kernel = TB_TLS_KERNEL_YES };
	struct tb_tls_cfg sa = { .psk_file = f("psk") };
	struct hs cl = { 0 }, sv = { 0 };
	pthread_t t;
	int p[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p),
			 0);
	ck_assert_int_eq(tb_conn_from_fd(&cl.c, p[0], NULL), 0);
	ck_assert_int_eq(tb_conn_from_fd(&sv.c, p[1], NULL), 0);
	cl.x = ctx(&cy, false);
	sv.x = ctx(&sa, true);
	pthread_create(&t, NULL, hs_main, &cl);
	hs_main(&sv);
	pthread_join(t, NULL);
	ck_assert_msg(cl.rc == -ENOTSUP, "client rc %d: %s", cl.rc, cl.why);
	ck_assert_msg(strstr(cl.why, "tls_kernel = yes"), "%s", cl.why);
	ck_assert_msg(sv.rc == 0, "server: %s", sv.why);
	ck_assert_ptr_nonnull(strstr(tb_conn_tls_desc(sv.c), "user-space"));
	tb_conn_close(cl.c);
	tb_conn_close(sv.c);
	tb_tls_ctx_free(cl.x);
	tb_tls_ctx_free(sv.x);
}
END_TEST

START_TEST(secrets_readable_by_others_refused)
{
	struct tb_tls_cfg c = { .psk_file = f("psk-open") };
	struct tb_tls_ctx *x = NULL;
	char why[256];

	ck_assert_int_eq(tb_tls_ctx_new(&x, &c, true, why, sizeof(why)),
			 -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "readable by other users"));
	ck_assert_ptr_null(x);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, keys, rmkeys);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, x509_mutual_both_ways);
	tcase_add_test(tc, psk_both_ways);
	tcase_add_test(tc, server_from_another_ca_refused);
	tcase_add_test(tc, client_from_another_ca_refused);
	tcase_add_test(tc, server_with_wrong_name_refused);
	tcase_add_test(tc, client_without_certificate_refused);
	tcase_add_test(tc, wrong_psk_refused);
	tcase_add_test(tc, plaintext_and_silent_peers_refused);
	tcase_add_test(tc, altered_record_is_rejected);
	tcase_add_test(tc, secrets_readable_by_others_refused);
	tcase_add_test(tc, kernel_tls_both_ways);
	tcase_add_test(tc, kernel_and_user_space_peers_interoperate);
	tcase_add_test(tc, tls_kernel_yes_without_kernel_tls_refused);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(tls_suite)
