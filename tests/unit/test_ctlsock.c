// SPDX-License-Identifier: MIT
/*
 * The control socket (lib/ctlsock.c): its mode whatever the umask, the
 * lock that keeps a second daemon off a live socket (and lets one take
 * over a dead daemon's), commands answered on the control thread, and a
 * silent client that is dropped at its deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/common.h"
#include "tiber/ctlsock.h"

static atomic_int calls;
static char dir[80], path[96]; /* path: a socket's, under 108 bytes */

static void echo_fn(void *arg, const char *cmd, char *resp, size_t len)
{
	atomic_fetch_add(&calls, 1);
	snprintf(resp, len, "{\"%s\":\"%s\"}", (const char *)arg, cmd);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/tiber-ctl.XXXXXX", tb_test_tmp());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.ctl", dir);
	atomic_store(&calls, 0);
}

static void teardown(void)
{
	char p[104];

	snprintf(p, sizeof(p), "%s.lock", path);
	unlink(path);
	unlink(p);
	rmdir(dir);
}

static int connect_to(const char *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send @cmd, read the reply until EOF or @ms. */
static void ask(const char *cmd, char *out, size_t len, int ms)
{
	int fd = connect_to(path);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	ck_assert_int_eq(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	while (got < len - 1 && poll(&p, 1, ms) == 1) {
		n = read(fd, out + got, len - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = 0;
	close(fd);
}

START_TEST(mode_is_0660_whatever_the_umask)
{
	struct tb_ctl *c;
	struct stat st;
	mode_t old = umask(0);

	ck_assert_int_eq(tb_ctl_open(&c, path, NULL, echo_fn, "a"), 0);
	umask(old);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0660);
	tb_ctl_close(c);
	ck_assert_int_eq(access(path, F_OK), -1); /* removed on close */
}
END_TEST

START_TEST(unknown_group_is_refused)
{
	struct tb_ctl *c = NULL;

	ck_assert_int_eq(tb_ctl_open(&c, path, "tiber-no-such-group", echo_fn,
				     "a"),
			 -ENOENT);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(second_daemon_is_refused_first_keeps_serving)
{
	struct tb_ctl *a, *b = NULL;
	char out[256];

	ck_assert_int_eq(tb_ctl_open(&a, path, NULL, echo_fn, "a"), 0);
	ck_assert_int_eq(tb_ctl_open(&b, path, NULL, echo_fn, "b"),
			 -EADDRINUSE);
	ck_assert_ptr_null(b);
	ask("status\n", out, sizeof(out), 2000);
	ck_assert_str_eq(out, "{\"a\":\"status\"}\n");
	tb_ctl_close(a);
}
END_TEST

START_TEST(dead_daemons_socket_is_taken_over)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct tb_ctl *c;
	char out[256];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	/* a socket file left by a killed daemon: nobody holds the lock */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(tb_ctl_open(&c, path, NULL, echo_fn, "new"), 0);
	ask("release simguest\n", out, sizeof(out), 2000);
	ck_assert_str_eq(out, "{\"new\":\"release simguest\"}\n");
	tb_ctl_close(c);
}
END_TEST

START_TEST(silent_client_is_dropped_at_its_deadline)
{
	struct pollfd p;
	struct tb_ctl *c;
	char out[256], b;
	int64_t t0;
	int silent;

	ck_assert_int_eq(tb_ctl_open(&c, path, NULL, echo_fn, "a"), 0);
	silent = connect_to(path);
	t0 = tb_now_ns();
	/* the next client is answered once the silent one is dropped */
	ask("status\n", out, sizeof(out), 5000);
	ck_assert_str_eq(out, "{\"a\":\"status\"}\n");
	ck_assert_int_lt(tb_now_ns() - t0, 4 * TB_NSEC_PER_SEC);
	p = (struct pollfd){ .fd = silent, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_eq(read(silent, &b, 1), 0); /* closed, no answer */
	ck_assert_int_eq(atomic_load(&calls), 1);
	close(silent);
	tb_ctl_close(c);
}
END_TEST

static Suite *ctlsock_suite(void)
{
	Suite *s = suite_create("ctlsock");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, mode_is_0660_whatever_the_umask);
	tcase_add_test(tc, unknown_group_is_refused);
	tcase_add_test(tc, second_daemon_is_refused_first_keeps_serving);
	tcase_add_test(tc, dead_daemons_socket_is_taken_over);
	tcase_add_test(tc, silent_client_is_dropped_at_its_deadline);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(ctlsock_suite)
