// SPDX-License-Identifier: MIT
/*
 * The backup's copy of a guest's disks: staging of an epoch's disk
 * records and their commit, in the same step as the memory's.
 *
 * Invariants:
 * - A committed image changes only in tb_rdisks_commit(), called after
 *   EPOCH_END verified; an aborted epoch leaves every image as it was.
 * - FULL epoch: DISK_INFO names each disk, its size and generation; its
 *   writes go to a fresh sparse image (<img>.new: blocks not written are
 *   zero), renamed over the committed one at commit.  With KEEP (a
 *   re-sync after a lost link) they go to the spool instead, applied to
 *   the committed copy, which must be of that generation and at least
 *   the base epoch.  Disks a FULL epoch does not name are removed at
 *   its commit.
 * - Incremental epoch: writes go to an unnamed spool file and an index;
 *   at commit they are applied in stream order, so the last write of a
 *   block wins, as on the primary.
 * - Memory: the index (24 bytes per write) and one write's buffer; the
 *   spool is bounded by spool_max bytes per epoch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tiber/replica.h"

#define NO_SPOOL UINT64_MAX

__attribute__((format(printf, 3, 4))) static int
dfail(struct tb_rdisks *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return code;
}

int tb_rdisks_init(struct tb_rdisks *s, const char *dir, const char *guest,
		   uint64_t spool_max)
{
	unsigned i;
	size_t k;

	memset(s, 0, sizeof(*s));
	s->spool_fd = -1;
	for (i = 0; i < TB_DISKS_MAX; i++)
		s->fd[i] = s->st_fd[i] = -1;
	if (!dir || !*dir)
		return 0;
	if (strlen(dir) >= sizeof(s->dir))
		return -ENAMETOOLONG;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	/* The guest name is the peer's: only [A-Za-z0-9._-] reach a path. */
	for (k = 0; guest[k] && k < sizeof(s->base) - 1; k++) {
		char c = guest[k];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (c == '.' && k)))
			c = '_';
		s->base[k] = c;
	}
	if (!k)
		s->base[k++] = '_';
	s->base[k] = 0;
	s->spool_max = spool_max ? spool_max : (1ull << 30);
	s->buf = malloc(TB_DISK_WRITE_MAX);
	return s->buf ? 0 : -ENOMEM;
}

void tb_rdisks_path(const struct tb_rdisks *s, unsigned disk, char *buf,
		    size_t len)
{
	snprintf(buf, len, "%s/%s.disk%u.img", s->dir, s->base, disk);
}

/* The image a FULL epoch builds for @disk: its committed path + ".new". */
static void new_path(const struct tb_rdisks *s, unsigned disk, char *buf,
		     size_t len)
{
	char path[300];

	tb_rdisks_path(s, disk, path, sizeof(path));
	snprintf(buf, len, "%s.new", path);
}

void tb_rdisks_abort(struct tb_rdisks *s)
{
	char tmp[310];
	unsigned i;

	for (i = 0; i < TB_DISKS_MAX; i++) {
		if (s->st_fd[i] < 0)
			continue;
		close(s->st_fd[i]);
		s->st_fd[i] = -1;
		new_path(s, i, tmp, sizeof(tmp));
		unlink(tmp);
	}
	memset(s->st_size, 0, sizeof(s->st_size));
	memset(s->st_gen, 0, sizeof(s->st_gen));
	memset(s->st_keep, 0, sizeof(s->st_keep));
	s->n = 0;
	s->spool_len = 0;
	s->writes = s->bytes = 0;
	if (s->spool_fd >= 0 && ftruncate(s->spool_fd, 0)) {
		close(s->spool_fd); /* a new one next time */
		s->spool_fd = -1;
	}
}

void tb_rdisks_free(struct tb_rdisks *s)
{
	unsigned i;

	tb_rdisks_abort(s);
	for (i = 0; i < TB_DISKS_MAX; i++)
		if (s->fd[i] >= 0)
			close(s->fd[i]);
	if (s->spool_fd >= 0)
		close(s->spool_fd);
	free(s->ents);
	free(s->buf);
	memset(s, 0, sizeof(*s));
	s->spool_fd = -1;
	for (i = 0; i < TB_DISKS_MAX; i++)
		s->fd[i] = s->st_fd[i] = -1;
}

int tb_rdisks_begin(struct tb_rdisks *s, bool full)
{
	tb_rdisks_abort(s);
	s->full = full;
	return 0;
}

/* KEEP: the committed copy of @i->disk is the one the primary means. */
static int keep_ok(struct tb_rdisks *s, const struct tb_disk_info *i,
		   uint64_t committed_epoch)
{
	if (!s->size[i->disk] || s->size[i->disk] != i->size ||
	    s->gen[i->disk] != i->gen || s->broken)
		return dfail(s, TB_SERR_BAD_ORDER,
			     "re-sync of disk %u (generation %016" PRIx64
			     ", %" PRIu64 " bytes), but this backup's copy "
			     "is %s",
			     i->disk, i->gen, i->size,
			     !s->size[i->disk] ? "missing" :
			     s->broken	       ? "broken" :
						 "another one");
	if (committed_epoch < i->base_epoch)
		return dfail(s, TB_SERR_BAD_ORDER,
			     "re-sync of disk %u from epoch %" PRIu64
			     ", but this backup committed %" PRIu64 " only",
			     i->disk, i->base_epoch, committed_epoch);
	return 0;
}

int tb_rdisks_info(struct tb_rdisks *s, const struct tb_disk_info *i,
		   uint64_t committed_epoch, struct tb_digest *dg)
{
	char tmp[310];
	int fd, code;

	if (!s->dir[0])
		return dfail(s, TB_SERR_BAD_ORDER,
			     "DISK_INFO, but this backup has no disk_dir");
	if (!s->full)
		return dfail(s, TB_SERR_BAD_ORDER,
			     "DISK_INFO outside a FULL epoch");
	if (s->st_size[i->disk])
		return dfail(s, TB_SERR_BAD_ORDER,
			     "second DISK_INFO of disk %u", i->disk);
	if (s->max_size && i->size > s->max_size)
		return dfail(
			s, TB_SERR_OVERSIZE,
			"disk %u of %" PRIu64
			" bytes is larger than this backup's max_disk_size "
			"(%" PRIu64 ")",
			i->disk, i->size, s->max_size);
	if (i->flags & TB_DISK_KEEP) {
		code = keep_ok(s, i, committed_epoch);
		if (code)
			return code;
		s->st_keep[i->disk] = true; /* its writes go to the spool */
	} else {
		new_path(s, i->disk, tmp, sizeof(tmp));
		fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)i->size)) {
			int e = errno;

			if (fd >= 0) {
				close(fd);
				unlink(tmp);
			}
			return dfail(s, TB_SERR_OVERSIZE,
				     "disk %u image %s: %s", i->disk, tmp,
				     strerror(e));
		}
		s->st_fd[i->disk] = fd;
	}
	s->st_size[i->disk] = i->size;
	s->st_gen[i->disk] = i->gen;
	tb_digest_disk_info(dg, i);
	return 0;
}

static int spool_open(struct tb_rdisks *s)
{
	char tmpl[260];
	int fd;

	if (s->spool_fd >= 0)
		return 0;
	fd = open(s->dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (fd < 0) { /* no O_TMPFILE on this filesystem */
		snprintf(tmpl, sizeof(tmpl), "%s/.spool.XXXXXX", s->dir);
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd < 0)
			return -errno;
		unlink(tmpl);
	}
	s->spool_fd = fd;
	return 0;
}

/* Zeroes over [off, off + len): a hole where the filesystem can. */
static int zero_range(int fd, uint64_t off, uint32_t len, const uint8_t *zeros)
{
	if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)off, len))
		return 0;
	return tb_pwrite_all(fd, zeros, len, off);
}

static int stage_incremental(struct tb_rdisks *s, const struct tb_disk_write *w)
{
	struct tb_rdisk_ent *e;
	int rc;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;

		e = realloc(s->ents, cap * sizeof(*e));
		if (!e)
			return dfail(s, TB_SERR_OVERSIZE,
				     "disk write index: out of memory");
		s->ents = e;
		s->cap = cap;
	}
	e = &s->ents[s->n];
	e->disk = w->disk;
	e->len = w->len;
	e->offset = w->offset;
	e->spool_off = NO_SPOOL;
	if (w->enc != TB_ENC_ZERO) {
		if (s->spool_len + w->len > s->spool_max)
			return dfail(s, TB_SERR_OVERSIZE,
				     "disk writes of one epoch exceed %" PRIu64
				     " bytes",
				     s->spool_max);
		rc = spool_open(s);
		if (!rc)
			rc = tb_pwrite_all(s->spool_fd, s->buf, w->len,
					   s->spool_len);
		if (rc)
			return dfail(s, TB_SERR_OVERSIZE, "disk spool: %s",
				     strerror(-rc));
		e->spool_off = s->spool_len;
		s->spool_len += w->len;
	}
	s->n++;
	return 0;
}

int tb_rdisks_write(struct tb_rdisks *s, const struct tb_disk_write *w,
		    struct tb_digest *dg)
{
	uint64_t size = s->full ? s->st_size[w->disk] : s->size[w->disk];
	int rc;

	if (!s->dir[0])
		return dfail(s, TB_SERR_BAD_ORDER,
			     "DISK_WRITE, but this backup has no disk_dir");
	if (!size)
		return dfail(s, TB_SERR_BAD_ORDER, "DISK_WRITE to disk %u %s",
			     w->disk,
			     s->full ? "before its DISK_INFO" :
				       "that has no full sync");
	if (w->offset + w->len > size)
		return dfail(s, TB_SERR_BAD_FIELD,
			     "DISK_WRITE of %u bytes at %" PRIu64
			     " beyond disk %u of %" PRIu64 " bytes",
			     w->len, w->offset, w->disk, size);
	if (tb_disk_write_decode(w, s->buf))
		return dfail(s, TB_SERR_CODEC,
			     "DISK_WRITE payload (%u bytes, encoding %u) does "
			     "not decode to %u bytes",
			     w->payload_len, w->enc, w->len);
	tb_digest_disk_write(dg, w->disk, w->offset,
			     w->enc == TB_ENC_ZERO ? NULL : s->buf, w->len);
	if (!s->full || s->st_keep[w->disk]) {
		rc = stage_incremental(s, w);
		if (rc)
			return rc;
	} else {
		rc = w->enc == TB_ENC_ZERO ?
			     zero_range(s->st_fd[w->disk], w->offset, w->len,
					s->buf) :
			     tb_pwrite_all(s->st_fd[w->disk], s->buf, w->len,
					   w->offset);
		if (rc)
			return dfail(s, TB_SERR_OVERSIZE, "disk %u image: %s",
				     w->disk, strerror(-rc));
	}
	s->writes++;
	s->bytes += w->len;
	return 0;
}

/* Apply the spool in order to the committed images. */
static int apply_spool(struct tb_rdisks *s)
{
	const struct tb_rdisk_ent *e;
	size_t i;
	ssize_t k;
	int rc = 0;

	for (i = 0; !rc && i < s->n; i++) {
		e = &s->ents[i];
		if (e->spool_off == NO_SPOOL) {
			memset(s->buf, 0, e->len);
			rc = zero_range(s->fd[e->disk], e->offset, e->len,
					s->buf);
			continue;
		}
		k = pread(s->spool_fd, s->buf, e->len, (off_t)e->spool_off);
		rc = k == (ssize_t)e->len ? 0 : k < 0 ? -errno : -EIO;
		if (!rc)
			rc = tb_pwrite_all(s->fd[e->disk], s->buf, e->len,
					   e->offset);
	}
	return rc;
}

/* FULL: the new images replace the committed ones (renames); a re-sync
 * keeps its copy (its spool is applied after); a disk not named is
 * gone. */
static int swap_full(struct tb_rdisks *s)
{
	char path[300], tmp[310];
	unsigned i;

	for (i = 0; i < TB_DISKS_MAX; i++) {
		tb_rdisks_path(s, i, path, sizeof(path));
		if (s->st_keep[i]) {
			continue;
		} else if (s->st_fd[i] < 0) {
			if (s->fd[i] >= 0) {
				close(s->fd[i]);
				s->fd[i] = -1;
				unlink(path);
			}
			s->size[i] = s->gen[i] = 0;
			continue;
		}
		new_path(s, i, tmp, sizeof(tmp));
		if (rename(tmp, path))
			return -errno;
		if (s->fd[i] >= 0)
			close(s->fd[i]);
		s->fd[i] = s->st_fd[i];
		s->size[i] = s->st_size[i];
		s->gen[i] = s->st_gen[i];
		s->st_fd[i] = -1;
	}
	return 0;
}

int tb_rdisks_commit(struct tb_rdisks *s)
{
	int rc;

	if (!s->dir[0])
		return 0;
	rc = s->full ? swap_full(s) : 0;
	if (!rc)
		rc = apply_spool(s);
	if (rc) {
		s->broken = true;
		snprintf(s->err, sizeof(s->err),
			 "applying the epoch's disk writes failed half way "
			 "(%s): the backup's disk images are unusable until "
			 "the next full sync",
			 strerror(-rc));
	} else {
		s->broken = false;
	}
	tb_rdisks_abort(s);
	return rc;
}
