// SPDX-License-Identifier: MIT
/*
 * nbdkit-tiber-filter end to end: the real nbdkit serves an image through
 * the filter, nbdcopy writes it over NBD; the journal the filter keeps is
 * read the way tiberd reads it (lib/simdisk.c).  Not mirrored: writes
 * only mark the bitmap; mirrored: every write (data and zeroes) is a
 * record, in order, tagged with the current epoch, and replaying them
 * gives the image.  (The ring holds the whole test: nothing consumes
 * it while nbdcopy runs.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check_main.h"
#include "tiber/simproto.h"
#include "tiber/stream.h"

#define IMG_SIZE (4u << 20)

static char dir[80], img[128], jpath[128], sock[128], src[128];
static pid_t nbdkit = -1;
static const char *ring_arg = "ring=16M";

static const char *filter_so(void)
{
	static char p[512];
	const char *b = getenv("TIBER_BIN_DIR");

	snprintf(p, sizeof(p), "%s/nbdkit-tiber-filter.so",
		 b && *b ? b : "build/bin");
	return p;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
}

static void read_file(const char *path, uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "rb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(p, 1, n, f), n);
	fclose(f);
}

/* nbdcopy @data to the export, through the filter. */
static void nbd_write(const uint8_t *data)
{
	char cmd[512];

	write_file(src, data, IMG_SIZE);
	snprintf(cmd, sizeof(cmd),
		 "nbdcopy --synchronous '%s' 'nbd+unix:///?socket=%s' "
		 ">/dev/null 2>&1",
		 src, sock);
	ck_assert_msg(system(cmd) == 0, "nbdcopy failed");
}

static void setup(void)
{
	uint8_t *zero = calloc(1, IMG_SIZE);
	int i;

	snprintf(dir, sizeof(dir), "%s/tiber-test-nbd.XXXXXX", tb_test_tmp());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(jpath, sizeof(jpath), "%s/journal", dir);
	snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
	snprintf(src, sizeof(src), "%s/src", dir);
	write_file(img, zero, IMG_SIZE);
	free(zero);
	ck_assert_msg(access(filter_so(), R_OK) == 0, "no %s", filter_so());
	nbdkit = fork();
	ck_assert_int_ge(nbdkit, 0);
	if (nbdkit == 0) {
		char f[600], j[200];

		snprintf(f, sizeof(f), "--filter=%s", filter_so());
		snprintf(j, sizeof(j), "journal=%s", jpath);
		execlp("nbdkit", "nbdkit", "-f", "-U", sock, f, "file", img, j,
		       ring_arg, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500 && access(sock, F_OK); i++)
		usleep(10000);
	ck_assert_msg(!access(sock, F_OK), "nbdkit did not start");
}

static void teardown(void)
{
	char cmd[128];

	if (nbdkit > 0) {
		kill(nbdkit, SIGTERM);
		waitpid(nbdkit, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(writes_are_journaled_in_order_or_marked)
{
	uint8_t *a = malloc(IMG_SIZE), *b = malloc(IMG_SIZE);
	uint8_t *replay = malloc(IMG_SIZE), *disk = malloc(IMG_SIZE);
	struct tb_sim_disk_rec rec;
	struct tb_sim_disk *k;
	struct tb_sim_disk_view v;
	const uint8_t *data;
	uint64_t bm[IMG_SIZE / 4096 / 64] = { 0 }, n = 0, i;
	struct stat st;
	int fd, r;

	ck_assert(a && b && replay && disk);
	/* blocks 16..31 and 100 hold data, the rest zero */
	memset(a, 0, IMG_SIZE);
	memset(a + 16 * 4096, 'a', 16 * 4096);
	memset(a + 100 * 4096, 'x', 4096);
	nbd_write(a);
	fd = open(jpath, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size,
			  tb_sim_disk_map_len(IMG_SIZE, 16 << 20));
	k = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	close(fd);
	ck_assert_ptr_ne(k, MAP_FAILED);
	ck_assert_uint_eq(k->magic, TB_SIM_DISK_MAGIC);
	ck_assert_uint_eq(k->disk_size, IMG_SIZE);
	ck_assert_int_eq(tb_sim_disk_view_init(&v, k, IMG_SIZE, k->ring_size),
			 0);
	/* not mirrored: no records; the data blocks are marked */
	ck_assert_uint_eq(k->head, 0);
	tb_sim_disk_harvest(&v, bm, TB_ARRAY_SIZE(bm));
	for (i = 16; i < 32; i++)
		ck_assert_msg(bm[i / 64] & (1ull << (i % 64)), "block %lu",
			      (unsigned long)i);
	ck_assert(bm[100 / 64] & (1ull << (100 % 64)));

	/* mirrored from epoch 7 on: records in order; replaying them on
	 * the image as it was gives the image as it is */
	read_file(img, replay, IMG_SIZE);
	k->cur_epoch = 6;
	tb_sim_disk_set_mirror(k, true);
	memcpy(b, a, IMG_SIZE);
	memset(b + 16 * 4096, 0, 8 * 4096); /* zeroes where data was */
	memset(b + 200 * 4096, 'b', 3 * 4096);
	memset(b + IMG_SIZE - 512, 'z', 512);
	nbd_write(b);
	while ((r = tb_sim_disk_peek(&v, 7, &rec, &data)) == 1) {
		ck_assert_uint_eq(rec.tag, 7);
		ck_assert_uint_le(rec.offset + rec.len, IMG_SIZE);
		if (data)
			memcpy(replay + rec.offset, data, rec.len);
		else
			memset(replay + rec.offset, 0, rec.len);
		tb_sim_disk_pop(&v, &rec);
		n++;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(k->head, k->tail);
	read_file(img, disk, IMG_SIZE);
	ck_assert(!memcmp(disk, b, IMG_SIZE));
	ck_assert_msg(!memcmp(replay, disk, IMG_SIZE),
		      "replaying the journal does not give the image");
	munmap(k, (size_t)st.st_size);
	free(a);
	free(b);
	free(replay);
	free(disk);
}
END_TEST

/* Map the journal nbdkit created (after a first write). */
static struct tb_sim_disk *map_journal(uint8_t **ring, size_t *len, int *fd)
{
	struct tb_sim_disk *k;
	struct stat st;

	*fd = open(jpath, O_RDWR);
	ck_assert_int_ge(*fd, 0);
	ck_assert_int_eq(fstat(*fd, &st), 0);
	*len = (size_t)st.st_size;
	k = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	ck_assert_ptr_ne(k, MAP_FAILED);
	*ring = (uint8_t *)k + TB_SIM_DISK_HDR;
	return k;
}

static void setup_small_ring(void)
{
	ring_arg = "ring=1M";
	setup();
}

/*
 * A full ring: while tiberd (the holder of the journal's flock) lives,
 * the write waits; once it is gone, the filter stops the mirroring
 * itself and the write completes, marked in the bitmap.
 */
START_TEST(a_dead_tiberd_never_hangs_the_guests_disk)
{
	uint8_t *a = calloc(1, IMG_SIZE), *ring;
	struct tb_sim_disk *k;
	struct tb_sim_disk_view v;
	uint64_t bm[IMG_SIZE / 4096 / 64] = { 0 };
	char cmd[512];
	size_t len;
	pid_t cp;
	int fd, st, i;

	ck_assert_ptr_nonnull(a);
	memset(a, 'q', 4096);
	nbd_write(a); /* creates the journal */
	k = map_journal(&ring, &len, &fd);
	ck_assert_int_eq(tb_sim_disk_view_init(&v, k, IMG_SIZE, k->ring_size),
			 0);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0); /* "tiberd" */
	tb_sim_disk_set_mirror(k, true);
	memset(a, 'r', IMG_SIZE); /* 4 MiB: more than the 1 MiB ring */
	write_file(src, a, IMG_SIZE);
	snprintf(cmd, sizeof(cmd), "nbd+unix:///?socket=%s", sock);
	cp = fork();
	ck_assert_int_ge(cp, 0);
	if (cp == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execlp("nbdcopy", "nbdcopy", "--synchronous", src, cmd,
		       (char *)NULL);
		_exit(127);
	}
	usleep(500 * 1000);
	ck_assert_int_eq(waitpid(cp, &st, WNOHANG), 0); /* waits for room */
	ck_assert_uint_gt(k->backpressure, 0);
	ck_assert_uint_eq(k->mirror, 1);
	flock(fd, LOCK_UN); /* "tiberd" dies */
	for (i = 0; i < 500 && waitpid(cp, &st, WNOHANG) == 0; i++)
		usleep(10000);
	ck_assert_msg(i < 500, "the write still hangs without tiberd");
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_uint_eq(k->mirror, 0);
	tb_sim_disk_harvest(&v, bm, TB_ARRAY_SIZE(bm));
	ck_assert_uint_ne(bm[TB_ARRAY_SIZE(bm) - 1], 0); /* the tail: marked */
	munmap(k, len);
	close(fd);
	free(a);
}
END_TEST

static Suite *nbdfilter_suite(void)
{
	Suite *s = suite_create("nbdfilter");
	TCase *tc = tcase_create("filter");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, writes_are_journaled_in_order_or_marked);
	suite_add_tcase(s, tc);
	tc = tcase_create("small ring");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup_small_ring, teardown);
	tcase_add_test(tc, a_dead_tiberd_never_hangs_the_guests_disk);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(nbdfilter_suite)
