// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the backup's apply path: a primary's stream
 * (after a fixed HELLO of 64 pages) through the decoder and the session
 * checker into a replica with disks (lib/replica.c, lib/replica_disk.c).
 * Oracle: no crash, no sanitizer report; a record the replica refuses
 * leaves no epoch open, the committed epoch as it was, and no partial
 * image of a FULL epoch (<disk>.new) behind; an epoch commits only at
 * its EPOCH_END.  Built and run by scripts/fuzz.sh; seeds: the stream
 * harness's valid primary streams.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream_mutator.h"
#include "tiber/replica.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static char dir[64];

/* Any <disk>.new file left in the disk directory? */
static int partial_images(void)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (de = readdir(d)))
		n += strstr(de->d_name, ".new") != NULL;
	if (d)
		closedir(d);
	return n;
}

static void clean_dir(void)
{
	struct dirent *de;
	char p[400];
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
}

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_replica: oracle violation: %s\n", why);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tb_hello h = { .magic = TB_STREAM_MAGIC,
			      .version = TB_STREAM_VERSION,
			      .role = TB_ROLE_PRIMARY,
			      .page_size = TB_PAGE_SIZE,
			      .nr_pages = 64,
			      .name = "fuzz" };
	struct tb_rec rec = { .type = TB_REC_HELLO };
	struct tb_replica r;
	struct tb_sess s;
	struct tb_dec d;
	uint64_t committed;
	int rc, serr;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/tiber-fuzz-replica.XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	if (tb_replica_init(&r, &h) || tb_replica_disks(&r, dir, 1 << 20))
		abort();
	tb_sess_init(&s, TB_ROLE_PRIMARY);
	rec.u.hello = h;
	tb_sess_check(&s, &rec, NULL);
	tb_dec_init(&d);
	tb_dec_feed(&d, data, size);
	while ((rc = tb_dec_next(&d, &rec)) == 1) {
		if (rec.type == TB_REC_HELLO) /* the harness sent it */
			continue;
		if (tb_sess_check(&s, &rec, &d))
			break;
		committed = r.have_commit ? r.committed_epoch : 0;
		rc = tb_replica_rec(&r, &rec, &serr);
		if (rc < 0) {
			if (r.in_epoch)
				fail("an epoch stays open after an error");
			if ((r.have_commit ? r.committed_epoch : 0) !=
			    committed)
				fail("a refused record changed the commit");
			if (partial_images())
				fail("a refused FULL epoch left its image");
			if (!r.err[0] || serr <= 0 || serr > TB_SERR_MAX)
				fail("an error without a reason or code");
			break;
		}
		if (rc == 1 && rec.type != TB_REC_EPOCH_END)
			fail("a commit before EPOCH_END");
	}
	tb_dec_free(&d);
	tb_replica_free(&r);
	clean_dir();
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	struct sm_rng r = { seed };
	static struct tb_buf b;

	if (!size || sm_below(&r, 2))
		size = LLVMFuzzerMutate(data, size, max_size);
	if (size && sm_below(&r, 2)) {
		tb_buf_reset(&b);
		if (!tb_buf_append(&b, data, size)) {
			sm_mutate(&r, &b, NULL, 0);
			if (b.len <= max_size) {
				memcpy(data, b.data, b.len);
				size = b.len;
			}
		}
	}
	if (size && sm_below(&r, 4))
		sm_fix_crcs(data, size);
	return size;
}
