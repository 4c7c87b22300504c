// SPDX-License-Identifier: MIT
/*
 * A fake primary against the real tiber-replicator: corrupt, truncated,
 * reordered, replayed and oversized records, HELLOs declaring a guest
 * too big or of another size, and HELLOs that would fill the guest table
 * are rejected with a clear ERROR, no failover happens, and the replica
 * keeps its last committed epoch (proved by an incremental epoch that
 * decodes against it, and by the image the replicator dumps on an
 * orderly detach).
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
static char dir[80], addr[128], logpath[128];
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

	snprintf(dir, sizeof(dir), "%s/tiber-rp-XXXXXX", tb_test_tmp());
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
		/* max_guests 2: dom3 and one more; max_guest_mem 1M: a
		 * PRIM_NPAGES guest fits four times */
		execl(path, "tiber-replicator", "--listen", addr, "--failover",
		      "no", "--dump-dir", dump, "--heartbeat-timeout", "2s",
		      "--insecure", "yes", "--max-guests", "2",
		      "--max-guest-mem", "1M", (char *)NULL);
		_exit(127);
	}
	for (fd = 0; fd < 200 && access(sock, F_OK); fd++)
		usleep(10000);
	ck_assert_msg(!access(sock, F_OK), "replicator %s did not start", path);
}

/* Connect, send HELLO @h and return the connection with the answer in
 * @ans.  While the answer is an ERROR whose text holds @retry_on (say,
 * the replicator has not noticed yet that our previous connection
 * closed), try again for up to 2 s, as tiberd's reconnects do. */
static struct tb_conn *exchange(const struct tb_hello *h, struct tb_rec *ans,
				const char *retry_on)
{
	struct tb_buf b = { 0 };
	struct tb_conn *c;
	int tries;

	ck_assert_int_eq(tb_enc_hello(&b, h), 0);
	for (tries = 0;; tries++) {
		ck_assert_int_eq(tb_conn_connect(&c, addr, NULL, soon()), 0);
		ck_assert_int_eq(tb_conn_send(c, b.data, b.len, soon()), 0);
		ck_assert_int_eq(tb_conn_recv_rec(c, ans, soon()), 1);
		if (ans->type != TB_REC_ERROR || tries >= 250 || !retry_on ||
		    !memmem(ans->u.error.text, ans->u.error.text_len, retry_on,
			    strlen(retry_on)))
			break;
		tb_conn_close(c);
		usleep(20000);
	}
	tb_buf_free(&b);
	return c;
}

static struct tb_conn *hello_as(const struct tb_hello *h)
{
	struct tb_rec rec;
	struct tb_conn *c = exchange(h, &rec, "live primary");

	prim_new_link(pr); /* as the engine: no XOR delta on a new link */
	ck_assert_uint_eq(rec.type, TB_REC_HELLO);
	ck_assert_uint_eq(rec.u.hello.role, TB_ROLE_BACKUP);
	return c;
}

static struct tb_conn *hello(void)
{
	struct tb_hello h = prim_hello();

	return hello_as(&h);
}

/* A HELLO that must be refused: the ERROR's code, and its text holds
 * @want. */
static void assert_refused(const struct tb_hello *h, uint32_t code,
			   const char *want)
{
	struct tb_rec rec;
	/* the previous session may still be ending at the replicator (a
	 * busy machine): its "live primary" refusal is not the one wanted */
	struct tb_conn *c = exchange(
		h, &rec, strstr(want, "live primary") ? NULL : "live primary");

	ck_assert_uint_eq(rec.type, TB_REC_ERROR);
	ck_assert_uint_eq(rec.u.error.code, code);
	ck_assert_msg(memmem(rec.u.error.text, rec.u.error.text_len, want,
			     strlen(want)),
		      "refusal '%.*s' does not say '%s'",
		      (int)rec.u.error.text_len, rec.u.error.text, want);
	tb_conn_close(c);
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
	char path[256];
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
	struct tb_conn *c1 = hello();
	struct tb_hello h = prim_hello();

	assert_refused(&h, TB_SERR_BAD_FIELD, "live primary");
	tb_conn_close(c1);
}
END_TEST

static long vm_rss_kib(pid_t pid)
{
	char path[256], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Size amplification: a HELLO declaring a guest of 1 TiB is refused
 * before anything is allocated for it; the backup's memory and the
 * committed replica stay as they were. */
START_TEST(hello_larger_than_max_guest_mem_is_refused)
{
	struct tb_hello h = prim_hello();
	long before = vm_rss_kib(repl_pid);

	h.domid = 9;
	memcpy(h.name, "big", 3);
	h.nr_pages = 1ull << 28;
	assert_refused(&h, TB_ERROR_DENIED,
		       "larger than max_guest_mem (1 MiB)");
	h.nr_pages = (1u << 20) / TB_PAGE_SIZE + 1; /* one page too many */
	assert_refused(&h, TB_ERROR_DENIED, "larger than max_guest_mem");
	ck_assert(log_has("refused: guest 'big' of 1048576 MiB"));
	ck_assert_int_lt(vm_rss_kib(repl_pid) - before, 8192);
	assert_replica_intact(2);
}
END_TEST

/* Wipe by size: a HELLO for the same guest with another size must not
 * replace (or free) its committed replica. */
START_TEST(hello_with_other_size_keeps_committed_replica)
{
	struct tb_hello h = prim_hello();

	h.nr_pages = PRIM_NPAGES * 2;
	assert_refused(&h, TB_SERR_BAD_FIELD, "refused, the replica is kept");
	h.nr_pages = PRIM_NPAGES / 2;
	assert_refused(&h, TB_SERR_BAD_FIELD, "refused, the replica is kept");
	assert_replica_intact(2);
}
END_TEST

/* A different guest under the same name, domain id and size (a new VM
 * called the same): its HELLO carries another UUID and must not replace
 * the committed replica; a HELLO without a UUID is refused too. */
START_TEST(hello_of_another_guest_keeps_committed_replica)
{
	struct tb_hello h = prim_hello();

	h.uuid[15] ^= 1;
	assert_refused(&h, TB_ERROR_DENIED, "refused, the replica is kept");
	ck_assert(log_has(
		"the committed replica is of the guest with UUID 7b1be700-"));
	memset(h.uuid, 0, sizeof(h.uuid));
	assert_refused(&h, TB_SERR_BAD_FIELD, "HELLO without a UUID");
	assert_replica_intact(2);
}
END_TEST

/* Slot exhaustion: sessions that end before their first commit free
 * their slot, so HELLOs alone never fill the table; guests with a
 * committed replica keep theirs, up to max_guests (2 here). */
START_TEST(slots_freed_unless_committed)
{
	struct tb_hello h = prim_hello();
	struct prim *p2 = calloc(1, sizeof(*p2));
	struct tb_conn *c;
	uint64_t ep = 0;
	uint32_t code = 0;
	unsigned i;

	for (i = 0; i < 10; i++) { /* one free slot, ten passers-by */
		struct tb_rec rec;

		h.domid = 100 + i;
		snprintf(h.name, sizeof(h.name), "pass%u", i);
		c = exchange(&h, &rec, "too many guests");
		ck_assert_msg(rec.type == TB_REC_HELLO,
			      "passer-by %u refused: %.*s", i,
			      (int)rec.u.error.text_len, rec.u.error.text);
		tb_conn_close(c);
	}
	/* a second guest commits an epoch: it keeps the last slot */
	h.domid = 20;
	snprintf(h.name, sizeof(h.name), "keep");
	prim_init(p2);
	{
		struct prim *save = pr;
		struct tb_rec rec;

		c = exchange(&h, &rec, "too many guests");
		ck_assert_uint_eq(rec.type, TB_REC_HELLO);
		pr = p2;
		prim_encode_epoch(pr, 1, true, all, PRIM_NPAGES);
		ck_assert_uint_eq(send_epoch(c, 0, &ep, &code), TB_REC_ACK);
		pr = save;
	}
	tb_conn_close(c);
	prim_free(p2);
	free(p2);
	ck_assert_uint_eq(ep, 1);
	h.domid = 21;
	snprintf(h.name, sizeof(h.name), "third");
	assert_refused(&h, TB_SERR_BAD_FIELD, "too many guests (max_guests 2)");
	ck_assert(log_has("session ended with nothing committed"));
	assert_replica_intact(2);
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
	tcase_add_test(tc, hello_larger_than_max_guest_mem_is_refused);
	tcase_add_test(tc, hello_with_other_size_keeps_committed_replica);
	tcase_add_test(tc, hello_of_another_guest_keeps_committed_replica);
	tcase_add_test(tc, slots_freed_unless_committed);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(replicator_suite)
