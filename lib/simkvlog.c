// SPDX-License-Identifier: MIT
/*
 * The durable KV service's disk log (include/tiber/simproto.h, "Durable
 * KV"): the record format, the table lookup both the guest and the
 * checker use, and the check that a RAM image and a disk agree.
 *
 * The RAM image and the disk are hostile input: every index is bounded
 * before use.
 */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tiber/simproto.h"

static uint64_t str_hash(const char *s, size_t max)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < max && s[i]; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

struct tb_sim_kv_ent *tb_sim_kv_find(struct tb_sim_kv_hdr *kh, const char *key)
{
	struct tb_sim_kv_ent *e = (struct tb_sim_kv_ent *)(kh + 1);
	uint64_t i, n = kh->nr_ents, start;

	if (!n)
		return NULL;
	start = str_hash(key, TB_SIM_KV_KEY) % n;
	for (i = 0; i < n; i++) {
		struct tb_sim_kv_ent *x = &e[(start + i) % n];

		if (!x->key[0] || !strncmp(x->key, key, TB_SIM_KV_KEY))
			return x;
	}
	return NULL;
}

/* FNV-1a over every byte before the check field: a flipped byte
 * anywhere in the record is caught. */
static uint64_t rec_check(const struct tb_sim_kvlog_rec *r)
{
	const uint8_t *p = (const uint8_t *)r;
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < offsetof(struct tb_sim_kvlog_rec, check); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

void tb_sim_kvlog_make(struct tb_sim_kvlog_rec *r, uint64_t lsn,
		       uint64_t boot_id, uint64_t client, uint64_t seq,
		       const char *key, const char *val)
{
	memset(r, 0, sizeof(*r));
	r->magic = TB_SIM_KVLOG_MAGIC;
	r->lsn = lsn;
	r->boot_id = boot_id;
	r->client = client;
	r->seq = seq;
	strncpy(r->key, key, sizeof(r->key) - 1);
	strncpy(r->val, val, sizeof(r->val) - 1);
	r->check = rec_check(r);
}

bool tb_sim_kvlog_valid(const struct tb_sim_kvlog_rec *r, uint64_t lsn,
			uint64_t boot_id)
{
	return r->magic == TB_SIM_KVLOG_MAGIC && r->lsn == lsn &&
	       r->boot_id == boot_id && r->check == rec_check(r) &&
	       memchr(r->key, 0, sizeof(r->key)) &&
	       memchr(r->val, 0, sizeof(r->val));
}

static int read_rec(int fd, uint64_t disk_size, uint64_t lsn,
		    struct tb_sim_kvlog_rec *r)
{
	ssize_t k;

	if (lsn >= disk_size / TB_SIM_KVLOG_REC)
		return 0;
	k = pread(fd, r, sizeof(*r), (off_t)(lsn * TB_SIM_KVLOG_REC));
	if (k < 0)
		return -errno;
	return k == (ssize_t)sizeof(*r) ? 1 : 0;
}

static void say(struct tb_sim_verify_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct tb_sim_verify_report *rep, const char *fmt, ...)
{
	va_list ap;

	rep->ok = false;
	va_start(ap, fmt);
	vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
	va_end(ap);
}

/* Replay the log over a copy of the table's keys: per entry the lsn and
 * value hash of its last record. */
static int replay(struct tb_sim_kv_hdr *kh, int fd, uint64_t disk_size,
		  uint64_t boot_id, uint64_t *last, uint64_t *vhash,
		  struct tb_sim_verify_report *rep)
{
	struct tb_sim_kv_ent *base = (struct tb_sim_kv_ent *)(kh + 1), *e;
	struct tb_sim_kvlog_rec r;
	uint64_t lsn;
	int rc;

	for (lsn = 0; lsn < kh->log_head; lsn++) {
		rc = read_rec(fd, disk_size, lsn, &r);
		if (rc < 0)
			return rc;
		if (!rc || !tb_sim_kvlog_valid(&r, lsn, boot_id)) {
			say(rep,
			    "disk log record %" PRIu64 " of %" PRIu64
			    " is missing or corrupt: the disk is behind memory",
			    lsn, kh->log_head);
			return 0;
		}
		e = tb_sim_kv_find(kh, r.key);
		if (!e || strncmp(e->key, r.key, TB_SIM_KV_KEY) != 0) {
			say(rep,
			    "disk log record %" PRIu64
			    " sets key '%s', which memory does not have",
			    lsn, r.key);
			return 0;
		}
		last[e - base] = lsn;
		vhash[e - base] = str_hash(r.val, sizeof(r.val));
	}
	rc = read_rec(fd, disk_size, lsn, &r);
	if (rc < 0)
		return rc;
	if (rc && tb_sim_kvlog_valid(&r, lsn, boot_id))
		say(rep,
		    "disk log holds record %" PRIu64 " beyond memory's %" PRIu64
		    ": the disk is ahead of memory",
		    lsn, kh->log_head);
	return 0;
}

int tb_sim_verify_disk(const void *ram, uint64_t size, int disk_fd,
		       uint64_t disk_size, struct tb_sim_verify_report *rep)
{
	const struct tb_sim_ram_hdr *h = ram;
	struct tb_sim_kv_hdr *kh;
	struct tb_sim_kv_ent *e;
	uint64_t *last, *vhash, i, max;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rep->ok = true;
	if (size < TB_PAGE_SIZE || h->magic != TB_SIM_RAM_MAGIC ||
	    !h->kv_pages || h->kv_first >= size / TB_PAGE_SIZE ||
	    h->kv_pages > size / TB_PAGE_SIZE - h->kv_first ||
	    h->kv_pages * TB_PAGE_SIZE < sizeof(*kh)) {
		say(rep, "not a tiber-simguest KV image");
		return -EINVAL;
	}
	kh = (struct tb_sim_kv_hdr *)((uint8_t *)ram +
				      h->kv_first * TB_PAGE_SIZE);
	max = (h->kv_pages * TB_PAGE_SIZE - sizeof(*kh)) / sizeof(*e);
	if (!kh->nr_ents || kh->nr_ents > max) {
		say(rep, "kv nr_ents %" PRIu64 " out of range", kh->nr_ents);
		return -EINVAL;
	}
	last = malloc(kh->nr_ents * sizeof(*last));
	vhash = calloc(kh->nr_ents, sizeof(*vhash));
	if (!last || !vhash) {
		free(last);
		free(vhash);
		return -ENOMEM;
	}
	memset(last, 0xff, kh->nr_ents * sizeof(*last));
	rc = replay(kh, disk_fd, disk_size, h->boot_id, last, vhash, rep);
	e = (struct tb_sim_kv_ent *)(kh + 1);
	for (i = 0; !rc && rep->ok && i < kh->nr_ents; i++) {
		if (!e[i].key[0])
			continue;
		if (last[i] == UINT64_MAX)
			say(rep, "key '%.32s' in memory has no disk log record",
			    e[i].key);
		else if (vhash[i] != str_hash(e[i].val, sizeof(e[i].val)))
			say(rep,
			    "key '%.32s' = '%.64s' in memory, but its last disk "
			    "log record (%" PRIu64 ") has another value",
			    e[i].key, e[i].val, last[i]);
	}
	rep->total_writes = kh->log_head;
	free(last);
	free(vhash);
	return rc;
}
