// SPDX-License-Identifier: MIT
/* lib/common.c's I/O and futex helpers: short transfers, errors, EOF. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check_main.h"
#include "tiber/common.h"

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + i / 251);
	return p;
}

static int tmp_file(char *path, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, len, "%s/tiber-common.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/*
 * Past RLIMIT_FSIZE, write returns the bytes up to the limit (a short
 * write), then fails with EFBIG: the loop must go on after the short
 * write and return the error of the next one.  In a child, as the limit
 * would also stop Check's own result file.  -1 if @off < 0: tb_write_all.
 */
static int write_limited(int fd, const void *p, size_t n, off_t off,
			 rlim_t limit)
{
	struct rlimit rl;
	pid_t pid = fork();
	int status, rc;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGXFSZ, SIG_IGN);
		if (getrlimit(RLIMIT_FSIZE, &rl))
			_exit(100);
		rl.rlim_cur = limit;
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(101);
		rc = off < 0 ? tb_write_all(fd, p, n) :
			       tb_pwrite_all(fd, p, n, (uint64_t)off);
		_exit(rc > 0 || rc < -99 ? 102 : -rc);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return -WEXITSTATUS(status);
}

START_TEST(write_all_goes_on_after_a_short_write)
{
	char path[256];
	int fd = tmp_file(path, sizeof(path));
	uint8_t *p = pattern(20000);
	struct tb_buf b = { 0 };

	ck_assert_int_eq(write_limited(fd, p, 20000, -1, 10000), -EFBIG);
	ck_assert_int_eq(tb_read_file(path, &b), 0);
	ck_assert_uint_eq(b.len, 10000);
	ck_assert_mem_eq(b.data, p, 10000);
	tb_buf_free(&b);
	close(fd);
	unlink(path);
	free(p);
}
END_TEST

START_TEST(pwrite_all_goes_on_after_a_short_write_at_its_offset)
{
	char path[256];
	int fd = tmp_file(path, sizeof(path));
	uint8_t *p = pattern(20000);
	struct tb_buf b = { 0 };

	ck_assert_int_eq(write_limited(fd, p, 20000, 4096, 10000), -EFBIG);
	ck_assert_int_eq(tb_read_file(path, &b), 0);
	ck_assert_uint_eq(b.len, 10000);
	for (size_t i = 0; i < 4096; i++)
		ck_assert_uint_eq(b.data[i], 0);
	ck_assert_mem_eq(b.data + 4096, p, 10000 - 4096);
	/* the fd's own offset is not moved */
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
	tb_buf_free(&b);
	close(fd);
	unlink(path);
	free(p);
}
END_TEST

START_TEST(pwrite_all_writes_at_its_offset)
{
	char path[256];
	int fd = tmp_file(path, sizeof(path));
	uint8_t *p = pattern(300000);
	struct tb_buf b = { 0 };

	ck_assert_int_eq(tb_pwrite_all(fd, p, 300000, 1 << 20), 0);
	ck_assert_int_eq(tb_pwrite_all(fd, p, 10, 0), 0);
	ck_assert_int_eq(tb_read_fd(fd, &b), 0); /* offset still 0 */
	ck_assert_uint_eq(b.len, (1 << 20) + 300000);
	ck_assert_mem_eq(b.data, p, 10);
	ck_assert_mem_eq(b.data + (1 << 20), p, 300000);
	tb_buf_free(&b);
	close(fd);
	unlink(path);
	free(p);
}
END_TEST

struct pipe_job {
	int fd;
	size_t len;
	size_t chunk;
	const uint8_t *data;
	struct tb_buf got;
	int rc;
};

/* Drains a pipe in small reads, so the writer fills it again and again. */
static void *slow_reader(void *arg)
{
	struct pipe_job *j = arg;
	uint8_t tmp[1000];
	ssize_t n;

	while (!j->rc && (n = read(j->fd, tmp, sizeof(tmp))) > 0)
		j->rc = tb_buf_append(&j->got, tmp, (size_t)n);
	return NULL;
}

START_TEST(write_all_sends_everything_through_a_small_pipe)
{
	struct pipe_job j = { .len = 3u << 20 };
	uint8_t *p = pattern(j.len);
	pthread_t t;
	int fds[2];

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	fcntl(fds[1], F_SETPIPE_SZ, 4096); /* best effort */
	j.fd = fds[0];
	ck_assert_int_eq(pthread_create(&t, NULL, slow_reader, &j), 0);
	ck_assert_int_eq(tb_write_all(fds[1], p, j.len), 0);
	close(fds[1]);
	pthread_join(t, NULL);
	ck_assert_int_eq(j.rc, 0);
	ck_assert_uint_eq(j.got.len, j.len);
	ck_assert_mem_eq(j.got.data, p, j.len);
	tb_buf_free(&j.got);
	close(fds[0]);
	free(p);
}
END_TEST

START_TEST(write_all_to_a_closed_pipe_is_epipe)
{
	int fds[2];
	uint8_t c = 1;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	close(fds[0]);
	ck_assert_int_eq(tb_write_all(fds[1], &c, 1), -EPIPE);
	ck_assert_int_eq(tb_write_all(-1, &c, 1), -EBADF);
	ck_assert_int_eq(tb_write_all(fds[1], &c, 0), 0);
	close(fds[1]);
}
END_TEST

/* Writes in small pieces with pauses, so each read returns a few bytes. */
static void *slow_writer(void *arg)
{
	struct pipe_job *j = arg;

	for (size_t off = 0; off < j->len; off += j->chunk) {
		size_t k = TB_MIN(j->chunk, j->len - off);

		j->rc = tb_write_all(j->fd, j->data + off, k);
		if (j->rc)
			break;
		if (off % (j->chunk * 64) == 0)
			usleep(100);
	}
	close(j->fd);
	return NULL;
}

START_TEST(read_fd_collects_short_reads_until_eof)
{
	struct pipe_job j = { .len = 200000, .chunk = 333 };
	uint8_t *p = pattern(j.len);
	struct tb_buf b = { 0 };
	pthread_t t;
	int fds[2];

	ck_assert_int_eq(tb_buf_append(&b, "head", 4), 0);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	j.fd = fds[1];
	j.data = p;
	ck_assert_int_eq(pthread_create(&t, NULL, slow_writer, &j), 0);
	ck_assert_int_eq(tb_read_fd(fds[0], &b), 0); /* appends */
	pthread_join(t, NULL);
	ck_assert_int_eq(j.rc, 0);
	ck_assert_uint_eq(b.len, 4 + j.len);
	ck_assert_mem_eq(b.data, "head", 4);
	ck_assert_mem_eq(b.data + 4, p, j.len);
	tb_buf_free(&b);
	close(fds[0]);
	free(p);
}
END_TEST

START_TEST(read_file_reads_a_whole_file_into_a_buffer)
{
	char path[256];
	int fd = tmp_file(path, sizeof(path));
	uint8_t *p = pattern(150000); /* more than one 64 KiB read */
	struct tb_buf b = { 0 };

	ck_assert_int_eq(tb_write_all(fd, p, 150000), 0);
	ck_assert_int_eq(tb_read_file(path, &b), 0);
	ck_assert_uint_eq(b.len, 150000);
	ck_assert_mem_eq(b.data, p, 150000);
	tb_buf_reset(&b);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(tb_read_file(path, &b), 0);
	ck_assert_uint_eq(b.len, 0);
	unlink(path);
	ck_assert_int_eq(tb_read_file(path, &b), -ENOENT);
	ck_assert_int_eq(tb_read_fd(-1, &b), -EBADF);
	tb_buf_free(&b);
	close(fd);
	free(p);
}
END_TEST

static int word;

static void *waker(void *arg)
{
	usleep(20000);
	__atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
	tb_futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	return NULL;
}

START_TEST(futex_returns_zero_or_minus_errno)
{
	struct timespec ts = { .tv_nsec = 1000000 };
	pthread_t t;

	word = 0;
	ck_assert_int_eq(tb_futex(&word, FUTEX_WAIT_PRIVATE, 1, NULL), -EAGAIN);
	ck_assert_int_eq(tb_futex(&word, FUTEX_WAIT_PRIVATE, 0, &ts),
			 -ETIMEDOUT);
	ck_assert_int_eq(tb_futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, waker, NULL), 0);
	while (!__atomic_load_n(&word, __ATOMIC_SEQ_CST)) {
		int rc = tb_futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL);

		ck_assert(rc == 0 || rc == -EAGAIN || rc == -EINTR);
	}
	pthread_join(t, NULL);
}
END_TEST

/* Names a guest or a client chose, inside a JSON reply (found by
 * tests/fuzz/fuzz_ctl.c: a quote or a control byte broke the reply). */
START_TEST(json_esc_escapes_quotes_backslashes_and_control_bytes)
{
	char out[32];

	ck_assert_str_eq(tb_json_esc(out, sizeof(out), "web-1 \xc3\xa9"),
			 "web-1 \xc3\xa9");
	ck_assert_str_eq(tb_json_esc(out, sizeof(out), "a\"b\\c"),
			 "a\\\"b\\\\c");
	ck_assert_str_eq(tb_json_esc(out, sizeof(out), "t\tb\x08\x7f\x1f"),
			 "t\\u0009b\\u0008\\u007f\\u001f");
	/* cut before an escape that does not fit, never inside one */
	ck_assert_str_eq(tb_json_esc(out, 5, "abc\"d"), "abc");
	ck_assert_str_eq(tb_json_esc(out, 8, "ab\x01"), "ab");
	ck_assert_str_eq(tb_json_esc(out, 9, "ab\x01"), "ab\\u0001");
	ck_assert_str_eq(tb_json_esc(out, 1, "abc"), "");
}
END_TEST

START_TEST(uuid_text_round_trip_and_bad_forms)
{
	uint8_t u[16], v[16];
	char t[TB_UUID_TEXT];

	ck_assert_int_eq(tb_uuid_new(u), 0);
	ck_assert(!tb_uuid_nil(u));
	ck_assert_uint_eq(u[6] >> 4, 4); /* version 4 */
	tb_uuid_fmt(u, t);
	ck_assert_uint_eq(strlen(t), 36);
	ck_assert_int_eq(tb_uuid_parse(t, v), 0);
	ck_assert_mem_eq(u, v, 16);
	ck_assert_int_eq(
		tb_uuid_parse("00112233-4455-6677-8899-AABBCCDDEEFF", v), 0);
	ck_assert_uint_eq(v[0], 0x00);
	ck_assert_uint_eq(v[10], 0xaa);
	ck_assert_uint_eq(v[15], 0xff);
	tb_uuid_fmt(v, t);
	ck_assert_str_eq(t, "00112233-4455-6677-8899-aabbccddeeff");
	ck_assert_int_eq(tb_uuid_parse("00112233-4455-6677-8899-aabbccddeef",
				       v),
			 -EINVAL); /* short */
	ck_assert_int_eq(tb_uuid_parse("00112233-4455-6677-8899-aabbccddeeff0",
				       v),
			 -EINVAL); /* long */
	ck_assert_int_eq(tb_uuid_parse("001122334-455-6677-8899-aabbccddeeff",
				       v),
			 -EINVAL); /* dash misplaced */
	ck_assert_int_eq(tb_uuid_parse("00112233-4455-6677-8899-aabbccddeegf",
				       v),
			 -EINVAL); /* not hex */
	memset(v, 0, sizeof(v));
	ck_assert(tb_uuid_nil(v));
}
END_TEST

static Suite *common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("io");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, write_all_goes_on_after_a_short_write);
	tcase_add_test(tc,
		       pwrite_all_goes_on_after_a_short_write_at_its_offset);
	tcase_add_test(tc, pwrite_all_writes_at_its_offset);
	tcase_add_test(tc, write_all_sends_everything_through_a_small_pipe);
	tcase_add_test(tc, write_all_to_a_closed_pipe_is_epipe);
	tcase_add_test(tc, read_fd_collects_short_reads_until_eof);
	tcase_add_test(tc, read_file_reads_a_whole_file_into_a_buffer);
	tcase_add_test(tc, futex_returns_zero_or_minus_errno);
	tcase_add_test(tc,
		       json_esc_escapes_quotes_backslashes_and_control_bytes);
	tcase_add_test(tc, uuid_text_round_trip_and_bad_forms);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(common_suite)
