// SPDX-License-Identifier: MIT
/*
 * A fake primary against the real tiber-replicator: corrupt, truncated,
 * reordered, replayed and oversized records are rejected with a clear
 * ERROR, no failover happens, and the replica keeps its last committed
 * epoch (proved by an incremental epoch that decodes against it, and by
 * the image the replicator dumps on an orderly detach).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "prim.h"
#include "tiber/transport.h"

static pid_t repl_pid;
static char dir[64], addr[128], logpath[128];
static struct prim *pr;
static uint64_t all[PRIM_NPAGES];

static int64_t soon(void)
{
	return tb_now_ns() + 3 * TB_NSEC_PER_SEC;
}

static void start_replicator(void)
{
	char sock[96], dump[96];
	const char *bin = getenv("TIBER_BIN");
	char path[256];
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/tiber-rp-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/r.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	snprintf(dump, sizeof(dump), "%s", dir);
	snprintf(logpath, sizeof(logpath), "%s/r.log", dir);
	snprintf(path, sizeof(path), "%s/tiber-replicator",
		 bin ? bin : "build/bin");
	repl_pid = fork();
	ck_assert_int_ge(repl_pid, 0);
	if (!repl_pid) {
		fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		/* plaintext: these tests speak the protocol themselves */
		execl(path, "tiber-replicator", "--listen", addr, "--failover",
		      "no", "--dump-dir", dump, "--heartbeat-timeout", "2s",
		      "--insecure", "yes", (char *)NULL);
		_exit(127);
	}
	for (fd = 0; fd < 200 && access(sock, F_OK); fd++)
		usleep(10000);
	ck_assert_msg(!access(sock, F_OK), "replicator %s did not start", path);
}

/* Connect and exchange HELLOs.  The replicator may not have noticed yet
 * that our previous connection closed (it then refuses us as a second
 * live primary): retry for a while, as tiberd's reconnects do. */
static struct tb_conn *hello(void)
{
	struct tb_hello h = prim_hello();
	struct tb_buf b = { 0 };
	struct tb_conn *c;
	struct tb_rec rec;
	int tries;

	ck_assert_int_eq(tb_enc_hello(&b, &h), 0);
	for (tries = 0;; tries++) {
		ck_assert_int_eq(tb_conn_connect(&c, addr, NULL, soon()), 0);
		ck_assert_int_eq(tb_conn_send(c, b.data, b.len, soon()), 0);
		ck_assert_int_eq(tb_conn_recv_rec(c, &rec, soon()), 1);
		if (rec.type != TB_REC_ERROR || tries >= 100 ||
		    !memmem(rec.u.error.text, rec.u.error.text_len,
			    "live primary", 12))
			break;
		tb_conn_close(c);
		usleep(20000);
	}
	tb_buf_free(&b);
	ck_assert_uint_eq(rec.type, TB_REC_HELLO);
	ck_assert_uint_eq(rec.u.hello.role, TB_ROLE_BACKUP);
	return c;
}

/* Send pr->out (optionally only @cut bytes) and return the answer's type
 * (ACK: *epoch set; ERROR: *code set), or 0 when the link closed. */
static uint32_t send_epoch(struct tb_conn *c, size_t cut, uint64_t *epoch,
			   uint32_t *code)
{
	struct tb_rec rec;
	int rc;

	ck_assert_int_eq(tb_conn_send(c, pr->out.data, cut ? cut : pr->out.len,
				      soon()),
			 0);
	tb_buf_reset(&pr->out);
	do {
		rc = tb_conn_recv_rec(c, &rec, soon());
	} while (rc == 1 && rec.type == TB_REC_HEARTBEAT);
	if (rc != 1)
		return 0;
	if (rec.type == TB_REC_ACK)
		*epoch = rec.u.ack.epoch;
	if (rec.type == TB_REC_ERROR)
		*code = rec.u.error.code;
	return rec.type;
}

static void setup(void)
{
	struct tb_conn *c;
	uint64_t ep = 0;
	uint32_t code = 0;
	unsigned i;

	for (i = 0; i < PRIM_NPAGES; i++)
		all[i] = i;
	pr = calloc(1, sizeof(*pr));
	prim_init(pr);
	start_replicator();
	c = hello();
	prim_encode_epoch(pr, 1, true, all, PRIM_NPAGES);
	ck_assert_uint_eq(send_epoch(c, 0, &ep, &code), TB_REC_ACK);
	ck_assert_uint_eq(ep, 1);
	tb_conn_close(c);
}

static void teardown(void)
{
	char cmd[128];

	kill(repl_pid, SIGTERM);
	waitpid(repl_pid, NULL, 0);
	prim_free(pr);
	free(pr);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* After an attack: a fresh connection's incremental epoch on top of the
 * committed state must be accepted, and the dumped image must equal the
 * model. */
static void assert_replica_intact(uint64_t next_epoch)
{
	uint64_t pfns[] = { 5, 6 }, ep = 0;
	uint8_t *img = malloc(PRIM_NPAGES * TB_PAGE_SIZE);
	char path[128];
	struct tb_buf b = { 0 };
	struct tb_conn *c;
	uint32_t code = 0;
	unsigned i;
	FILE *f;

	/* The model's shadow is what was committed: roll back pages the
	 * rejected epoch touched. */
	c = hello();
	pr->mem[5][7] ^= 0x11;
	pr->mem[6][9] ^= 0x22;
	prim_encode_epoch(pr, next_epoch, false, pfns, 2);
	ck_assert_uint_eq(send_epoch(c, 0, &ep, &code), TB_REC_ACK);
	ck_assert_uint_eq(ep, next_epoch);
	ck_assert_int_eq(tb_enc_error(&b, TB_SERR_NONE, "bye"), 0);
	ck_assert_int_eq(tb_conn_send(c, b.data, b.len, soon()), 0);
	tb_buf_free(&b);
	tb_conn_close(c);
	snprintf(path, sizeof(path), "%s/dom3.img", dir);
	for (i = 0; i < 300 && access(path, F_OK); i++)
		usleep(10000);
	usleep(50000);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(img, TB_PAGE_SIZE, PRIM_NPAGES, f),
			  PRIM_NPAGES);
	fclose(f);
	for (i = 0; i < PRIM_NPAGES; i++)
		ck_assert_msg(!memcmp(img + (size_t)i * TB_PAGE_SIZE,
				      pr->mem[i], TB_PAGE_SIZE),
			      "dumped page %u differs", i);
	free(img);
}

/* Build epoch 2 touching pages 5 and 6, but restore the model afterwards
 * (the backup must not keep it). */
static void bad_epoch2(void)
{
	uint64_t pfns[] = { 5, 6 };
	uint8_t save[2][TB_PAGE_SIZE];

	memcpy(save[0], pr->mem[5], TB_PAGE_SIZE);
	memcpy(save[1], pr->mem[6], TB_PAGE_SIZE);
	prim_fill(pr->mem[5], 77);
	prim_fill(pr->mem[6], 78);
	prim_encode_epoch(pr, 2, false, pfns, 2);
	memcpy(pr->mem[5], save[0], TB_PAGE_SIZE);
	memcpy(pr->mem[6], save[1], TB_PAGE_SIZE);
	memcpy(pr->shadow[5], save[0], TB_PAGE_SIZE);
	memcpy(pr->shadow[6], save[1], TB_PAGE_SIZE);
}

static bool log_has(const char *needle)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(logpath, "r");

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return strstr(buf, needle);
}

START_TEST(corrupt_record_is_rejected_replica_kept)
{
	struct tb_conn *c = hello();
	uint64_t ep = 0;
	uint32_t code = 0;

	bad_epoch2();
	pr->out.data[pr->out.len / 2] ^= 0x40; /* inside PAGE_DATA */
	ck_assert_uint_eq(send_epoch(c, 0, &ep, &code), TB_REC_ERROR);
	ck_assert_uint_eq(code, TB_SERR_BAD_CRC);
	tb_conn_close(c);
	ck_assert(log_has("replica stays at epoch 1"));
	assert_replica_intact(3);
	ck_assert(!log_has("FAILOVER"));
}
END_TEST

START_TEST(truncated_epoch_then_disconnect_keeps_replica)
{
	struct tb_conn *c = hello();
	uint64_t ep = 0;
	uint32_t code = 0;

	bad_epoch2();
	ck_assert_uint_eq(send_epoch(c, pr->out.len - 20, &ep, &code), 0);
	tb_conn_close(c); /* primary dies mid-record */
	usleep(100000);
	ck_assert(log_has("primary lost"));
	assert_replica_intact(3);
}
END_TEST

START_TEST(reordered_records_are_rejected)
{
	struct tb_conn *c = hello();
	struct tb_buf keep = { 0 };
	uint64_t ep = 0;
	uint32_t code = 0;
	size_t begin_len = 8 + 40 + 8; /* EPOCH_BEGIN record */

	bad_epoch2();
	/* Drop EPOCH_BEGIN: PAGE_DATA arrives outside an epoch. */
	tb_buf_append(&keep, pr->out.data + begin_len, pr->out.len - begin_len);
	tb_buf_reset(&pr->out);
	tb_buf_append(&pr->out, keep.data, keep.len);
	tb_buf_free(&keep);
	ck_assert_uint_eq(send_epoch(c, 0, &ep, &code), TB_REC_ERROR);
	ck_assert_uint_eq(code, TB_SERR_BAD_ORDER);
	tb_conn_close(c);
	assert_replica_intact(3);
}
END_TEST

START_TEST(replayed_epoch_is_rejected)
{
	struct tb_conn *c = hello();
	uint64_t ep = 0, pfn = 5;
	uint32_t code = 0;

	pr->mem[5][1] ^= 1;
	prim_encode_epoch(pr, 1, false, &pfn, 1); /* epoch 1 again */
	pr->mem[5][1] ^= 1;
	memcpy(pr->shadow[5], pr->mem[5], TB_PAGE_SIZE);
	ck_assert_uint_eq(send_epoch(c, 0, &ep, &code), TB_REC_ERROR);
	ck_assert_uint_eq(code, TB_SERR_BAD_ORDER);
	tb_conn_close(c);
	assert_replica_intact(2);
}
END_TEST

START_TEST(oversized_record_is_rejected_before_allocation)
{
	struct tb_conn *c = hello();
	uint8_t hdr[8];
	struct tb_rec rec;
	int rc;

	tb_put_le32(hdr, TB_REC_PAGE_DATA);
	tb_put_le32(hdr + 4, 0x7fffff00u);
	ck_assert_int_eq(tb_conn_send(c, hdr, sizeof(hdr), soon()), 0);
	do {
		rc = tb_conn_recv_rec(c, &rec, soon());
	} while (rc == 1 && rec.type == TB_REC_HEARTBEAT);
	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(rec.type, TB_REC_ERROR);
	ck_assert_uint_eq(rec.u.error.code, TB_SERR_OVERSIZE);
	tb_conn_close(c);
	assert_replica_intact(2);
}
END_TEST

START_TEST(second_live_primary_is_refused)
{
	struct tb_conn *c1 = hello(), *c2;
	struct tb_hello h = prim_hello();
	struct tb_buf b = { 0 };
	struct tb_rec rec;

	ck_assert_int_eq(tb_conn_connect(&c2, addr, NULL, soon()), 0);
	ck_assert_int_eq(tb_enc_hello(&b, &h), 0);
	ck_assert_int_eq(tb_conn_send(c2, b.data, b.len, soon()), 0);
	tb_buf_free(&b);
	ck_assert_int_eq(tb_conn_recv_rec(c2, &rec, soon()), 1);
	ck_assert_uint_eq(rec.type, TB_REC_ERROR);
	ck_assert_ptr_nonnull(memmem(rec.u.error.text, rec.u.error.text_len,
				     "live primary", 12));
	tb_conn_close(c2);
	tb_conn_close(c1);
}
END_TEST

static Suite *replicator_suite(void)
{
	Suite *s = suite_create("replicator-protocol");
	TCase *tc = tcase_create("fake-primary");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, corrupt_record_is_rejected_replica_kept);
	tcase_add_test(tc, truncated_epoch_then_disconnect_keeps_replica);
	tcase_add_test(tc, reordered_records_are_rejected);
	tcase_add_test(tc, replayed_epoch_is_rejected);
	tcase_add_test(tc, oversized_record_is_rejected_before_allocation);
	tcase_add_test(tc, second_live_primary_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(replicator_suite)
