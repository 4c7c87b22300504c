// SPDX-License-Identifier: MIT
/*
 * Replica staging and commit.
 *
 * Invariants:
 * - The committed state blobs and the pages of RAW, ZERO and LZ4
 *   encodings change only in commit(), after EPOCH_END verified counts
 *   and digest; before that they go to staging (st_* for incremental
 *   epochs, a fresh memfd for FULL ones).
 * - An incremental epoch's XOR pages (XOR_RLE, XOR_LZ4) are decoded in
 *   place in r->mem, each with a copy of its payload in the undo log
 *   (un, un_payload): XORing the same delta again takes it back out, so
 *   there is no copy of the page into staging and out again at commit.
 *   A decode that fails in place leaves its page as it was.
 * - Any error discards the staging whole and undoes the in-place pages
 *   (tb_replica_abort); the last committed epoch is then intact and is
 *   what a failover restores.  Nothing else reads r->mem during an
 *   epoch: every session path aborts the epoch before a failover, a
 *   handover or a dump.
 * - A pfn appears at most once in an incremental epoch (a duplicate is a
 *   protocol error); a FULL epoch may resend pages (pre-copy rounds), the
 *   latest copy wins.
 * - Disk records (lib/replica_disk.c) follow the same rule: staged,
 *   applied at the verified EPOCH_END, before the memory.
 * - XOR deltas decode against the receiver's current view of the page:
 *   the FULL image being built, else the committed replica.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tiber/codec.h"
#include "tiber/replica.h"

static const uint8_t zero_page[TB_PAGE_SIZE];

static int map_memfd(uint64_t nr_pages, int *fd_out, uint8_t **mem_out)
{
	size_t bytes = (size_t)nr_pages * TB_PAGE_SIZE;
	uint8_t *mem;
	int fd = memfd_create("tiber-replica", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	mem = mmap(NULL, bytes ? bytes : TB_PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	*fd_out = fd;
	*mem_out = mem;
	return 0;
}

static void unmap_memfd(uint64_t nr_pages, int *fd, uint8_t **mem)
{
	size_t bytes = (size_t)nr_pages * TB_PAGE_SIZE;

	if (*mem)
		munmap(*mem, bytes ? bytes : TB_PAGE_SIZE);
	if (*fd >= 0)
		close(*fd);
	*mem = NULL;
	*fd = -1;
}

int tb_replica_init(struct tb_replica *r, const struct tb_hello *hello)
{
	int rc;

	memset(r, 0, sizeof(*r));
	r->mem_fd = r->full_fd = -1;
	tb_rdisks_init(&r->disks, NULL, "", 0); /* no disks unless asked */
	if (hello->page_size != TB_PAGE_SIZE) {
		snprintf(r->err, sizeof(r->err),
			 "page size %u not supported (want %u)",
			 hello->page_size, TB_PAGE_SIZE);
		return -EINVAL;
	}
	/* 1 TiB of guest at most: beyond that the HELLO is nonsense. */
	if (!hello->nr_pages || hello->nr_pages > (1ull << 28)) {
		snprintf(r->err, sizeof(r->err),
			 "guest page count %" PRIu64 " out of range",
			 hello->nr_pages);
		return -EINVAL;
	}
	r->hello = *hello;
	r->nr_pages = hello->nr_pages;
	rc = map_memfd(r->nr_pages, &r->mem_fd, &r->mem);
	if (!rc)
		rc = tb_bitmap_init(&r->st_seen, r->nr_pages);
	if (!rc)
		rc = tb_digest_init(&r->digest);
	if (!rc) {
		r->st_pfns = calloc(r->nr_pages, sizeof(uint64_t));
		r->un = calloc(r->nr_pages, sizeof(*r->un));
		r->st_pages = mmap(NULL, r->nr_pages * TB_PAGE_SIZE,
				   PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				   -1, 0);
		if (r->st_pages == MAP_FAILED)
			r->st_pages = NULL;
		if (!r->st_pfns || !r->st_pages || !r->un)
			rc = -ENOMEM;
	}
	if (rc) {
		snprintf(r->err, sizeof(r->err),
			 "replica of %" PRIu64 " pages: %s", r->nr_pages,
			 strerror(-rc));
		tb_replica_free(r);
		return rc;
	}
	tb_replica_set_features(r, hello->features);
	return 0;
}

void tb_replica_set_features(struct tb_replica *r, uint64_t features)
{
	r->digest.page_crc = (features & TB_FEAT_PAGE_CRC) != 0;
}

int tb_replica_disks(struct tb_replica *r, const char *dir, uint64_t spool_max)
{
	char name[sizeof(r->hello.name) + 1];
	int rc;

	tb_rdisks_free(&r->disks);
	memcpy(name, r->hello.name, sizeof(r->hello.name));
	name[sizeof(r->hello.name)] = 0;
	rc = tb_rdisks_init(&r->disks, dir, name, spool_max);
	if (rc)
		snprintf(r->err, sizeof(r->err), "disks in %s: %s", dir,
			 strerror(-rc));
	return rc;
}

/* XOR the epoch's in-place pages out of @mem again (each decoded
 * before, so each decodes again), or forget them at a commit. */
static void undo_pages(struct tb_replica *r, bool commit)
{
	const struct tb_undo *u;
	uint8_t *page;
	uint64_t i;

	for (i = 0; i < r->un_n && !commit; i++) {
		u = &r->un[i];
		page = r->mem + u->pfn * TB_PAGE_SIZE;
		if (tb_codec_decode(u->enc, r->un_payload.data + u->off, u->len,
				    page, page))
			abort(); /* it decoded a moment ago: memory is bad */
	}
	r->un_n = 0;
	tb_buf_reset(&r->un_payload);
}

void tb_replica_abort(struct tb_replica *r)
{
	if (!r->in_epoch)
		return;
	undo_pages(r, false);
	tb_rdisks_abort(&r->disks);
	if (r->full)
		unmap_memfd(r->nr_pages, &r->full_fd, &r->full_mem);
	tb_bitmap_clear_all(&r->st_seen);
	r->st_n = 0;
	r->in_epoch = false;
	r->discarded++;
	tb_digest_final(&r->digest);
}

void tb_replica_free(struct tb_replica *r)
{
	tb_replica_abort(r);
	tb_rdisks_free(&r->disks);
	unmap_memfd(r->nr_pages, &r->mem_fd, &r->mem);
	if (r->st_pages)
		munmap(r->st_pages, r->nr_pages * TB_PAGE_SIZE);
	r->st_pages = NULL;
	free(r->st_pfns);
	r->st_pfns = NULL;
	free(r->un);
	r->un = NULL;
	tb_buf_free(&r->un_payload);
	tb_bitmap_free(&r->st_seen);
	tb_buf_free(&r->cpu_state);
	tb_buf_free(&r->dev_state);
	tb_buf_free(&r->st_cpu);
	tb_buf_free(&r->st_dev);
	if (r->digest.state)
		tb_digest_free(&r->digest);
}

static int fail(struct tb_replica *r, int *serr, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct tb_replica *r, int *serr, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	*serr = code;
	tb_replica_abort(r);
	return tb_stream_errno(code);
}

static int begin(struct tb_replica *r, const struct tb_epoch_begin *b,
		 int *serr)
{
	int rc;

	/* A FULL epoch replaces everything, so a new primary (whose epoch
	 * numbers start again) may send one; within a connection tb_sess
	 * keeps the numbers increasing. */
	if (r->have_commit && !(b->flags & TB_EPOCH_FULL) &&
	    b->epoch <= r->committed_epoch)
		return fail(r, serr, TB_SERR_BAD_ORDER,
			    "epoch %" PRIu64 " not after committed %" PRIu64,
			    b->epoch, r->committed_epoch);
	if (!(b->flags & TB_EPOCH_FULL) && !r->have_commit)
		return fail(r, serr, TB_SERR_BAD_ORDER,
			    "incremental epoch %" PRIu64
			    " without a full sync first",
			    b->epoch);
	r->in_epoch = true;
	r->epoch = b->epoch;
	r->full = b->flags & TB_EPOCH_FULL;
	r->st_n = 0;
	r->st_pages_count = r->st_bytes = 0;
	r->st_have_cpu = r->st_have_dev = false;
	tb_bitmap_clear_all(&r->st_seen);
	tb_digest_final(&r->digest); /* reset */
	tb_rdisks_begin(&r->disks, r->full);
	if (r->full) {
		rc = map_memfd(r->nr_pages, &r->full_fd, &r->full_mem);
		if (rc) {
			r->in_epoch = false;
			snprintf(r->err, sizeof(r->err), "full image: %s",
				 strerror(-rc));
			*serr = TB_SERR_BAD_FIELD;
			return rc;
		}
	}
	return 0;
}

static int pages(struct tb_replica *r, const struct tb_page_data *p, int *serr)
{
	const uint8_t *payload = p->payloads;
	struct tb_page_desc d;
	uint8_t *dst;
	const uint8_t *prev;
	uint64_t pfn;
	uint32_t i;
	bool in_place = false;

	for (i = 0; i < p->nr_pages; i++) {
		tb_page_desc_get(p, i, &d);
		pfn = tb_page_pfn_get(p, i);
		if (pfn >= r->nr_pages)
			return fail(r, serr, TB_SERR_BAD_FIELD,
				    "epoch %" PRIu64 ": pfn %" PRIu64
				    " beyond guest size %" PRIu64,
				    r->epoch, pfn, r->nr_pages);
		if (r->full) {
			dst = r->full_mem + pfn * TB_PAGE_SIZE;
			prev = dst;
			/* The fresh image is zero: a zero page not yet written
			 * in this epoch needs no write (and no memory). */
			if (d.enc == TB_ENC_ZERO &&
			    !tb_bitmap_test(&r->st_seen, pfn)) {
				tb_digest_page(&r->digest, pfn, zero_page);
				payload += d.len;
				r->st_pages_count++;
				r->st_bytes += TB_PAGE_SIZE;
				continue;
			}
			tb_bitmap_set(&r->st_seen, pfn);
		} else {
			if (tb_bitmap_test(&r->st_seen, pfn))
				return fail(r, serr, TB_SERR_BAD_FIELD,
					    "epoch %" PRIu64 ": pfn %" PRIu64
					    " sent twice",
					    r->epoch, pfn);
			tb_bitmap_set(&r->st_seen, pfn);
			prev = r->mem + pfn * TB_PAGE_SIZE;
			in_place = d.enc == TB_ENC_XOR_RLE ||
				   d.enc == TB_ENC_XOR_MASK ||
				   d.enc == TB_ENC_XOR_LZ4;
			dst = in_place ? r->mem + pfn * TB_PAGE_SIZE :
					 r->st_pages + r->st_n * TB_PAGE_SIZE;
		}
		/* the undo log holds the payload before the page changes */
		if (in_place && tb_buf_append(&r->un_payload, payload, d.len))
			return fail(r, serr, TB_SERR_OVERSIZE,
				    "epoch %" PRIu64
				    ": out of memory for the undo log",
				    r->epoch);
		/* in place, a payload that does not decode leaves the page */
		if (tb_codec_decode(d.enc, payload, d.len, prev, dst))
			return fail(
				r, serr, TB_SERR_CODEC,
				"epoch %" PRIu64 ": pfn %" PRIu64
				" payload (encoding %u, %u bytes) does not decode",
				r->epoch, pfn, d.enc, d.len);
		if (r->full) {
			/* the fresh image: nothing to take back */
		} else if (!in_place) {
			r->st_pfns[r->st_n++] = pfn;
		} else {
			r->un[r->un_n++] = (struct tb_undo){
				.pfn = pfn,
				.off = (uint32_t)(r->un_payload.len - d.len),
				.len = d.len,
				.enc = d.enc,
			};
		}
		tb_digest_page(&r->digest, pfn, dst);
		payload += d.len;
		r->st_pages_count++;
		r->st_bytes += TB_PAGE_SIZE;
	}
	return 0;
}

static int state(struct tb_replica *r, uint32_t type,
		 const struct tb_state_blob *s, int *serr)
{
	struct tb_buf *b = type == TB_REC_CPU_STATE ? &r->st_cpu : &r->st_dev;
	bool *have = type == TB_REC_CPU_STATE ? &r->st_have_cpu :
						&r->st_have_dev;

	if (*have)
		return fail(r, serr, TB_SERR_BAD_ORDER,
			    "epoch %" PRIu64 ": second %s record", r->epoch,
			    type == TB_REC_CPU_STATE ? "CPU_STATE" :
						       "DEVICE_STATE");
	tb_buf_reset(b);
	if (tb_buf_append(b, s->data, s->len))
		return fail(r, serr, TB_SERR_OVERSIZE, "state: out of memory");
	*have = true;
	r->state_tag = s->tag;
	tb_digest_state(&r->digest, s->tag, s->index, s->data, s->len);
	r->st_bytes += s->len;
	return 0;
}

static int disk_rec(struct tb_replica *r, const struct tb_rec *rec, int *serr)
{
	int code;

	if (rec->type == TB_REC_DISK_INFO) {
		code = tb_rdisks_info(&r->disks, &rec->u.disk_info,
				      r->have_commit ? r->committed_epoch : 0,
				      &r->digest);
	} else {
		code = tb_rdisks_write(&r->disks, &rec->u.disk_write,
				       &r->digest);
		r->st_bytes += rec->u.disk_write.len;
	}
	if (code)
		return fail(r, serr, code, "epoch %" PRIu64 ": %s", r->epoch,
			    r->disks.err);
	return 0;
}

static void swap_buf(struct tb_buf *a, struct tb_buf *b)
{
	struct tb_buf t = *a;

	*a = *b;
	*b = t;
}

static int commit(struct tb_replica *r, const struct tb_epoch_end *end,
		  int *serr)
{
	uint64_t digest = tb_digest_final(&r->digest), i;

	if (end->epoch != r->epoch)
		return fail(r, serr, TB_SERR_BAD_ORDER,
			    "EPOCH_END %" PRIu64 " closes epoch %" PRIu64,
			    end->epoch, r->epoch);
	if (!r->st_have_cpu || !r->st_have_dev)
		return fail(r, serr, TB_SERR_BAD_DIGEST,
			    "epoch %" PRIu64 ": CPU or device state missing",
			    r->epoch);
	if (end->nr_pages != r->st_pages_count || end->nr_bytes != r->st_bytes)
		return fail(r, serr, TB_SERR_BAD_DIGEST,
			    "epoch %" PRIu64 ": got %" PRIu64 " pages/%" PRIu64
			    " bytes, EPOCH_END says %" PRIu64 "/%" PRIu64,
			    r->epoch, r->st_pages_count, r->st_bytes,
			    end->nr_pages, end->nr_bytes);
	if (end->digest != digest)
		return fail(r, serr, TB_SERR_BAD_DIGEST,
			    "epoch %" PRIu64 ": digest %016" PRIx64
			    " != EPOCH_END %016" PRIx64,
			    r->epoch, digest, end->digest);
	/* Verified: apply, the disks first (local I/O can fail: then the
	 * memory stays at the last commit and the disks are marked
	 * broken, so no failover uses them).  Nothing after can fail. */
	if (tb_rdisks_commit(&r->disks))
		return fail(r, serr, TB_SERR_OVERSIZE, "epoch %" PRIu64 ": %s",
			    r->epoch, r->disks.err);
	if (r->full) {
		unmap_memfd(r->nr_pages, &r->mem_fd, &r->mem);
		r->mem_fd = r->full_fd;
		r->mem = r->full_mem;
		r->full_fd = -1;
		r->full_mem = NULL;
	} else {
		/* the XOR pages are in place already */
		undo_pages(r, true);
		for (i = 0; i < r->st_n; i++)
			memcpy(r->mem + r->st_pfns[i] * TB_PAGE_SIZE,
			       r->st_pages + i * TB_PAGE_SIZE, TB_PAGE_SIZE);
	}
	swap_buf(&r->cpu_state, &r->st_cpu);
	swap_buf(&r->dev_state, &r->st_dev);
	r->committed_epoch = r->epoch;
	r->have_commit = true;
	r->commits++;
	r->in_epoch = false;
	r->st_n = 0;
	return 1;
}

int tb_replica_rec(struct tb_replica *r, const struct tb_rec *rec, int *serr)
{
	*serr = TB_SERR_NONE;
	switch (rec->type) {
	case TB_REC_EPOCH_BEGIN:
		if (r->in_epoch)
			return fail(r, serr, TB_SERR_BAD_ORDER,
				    "EPOCH_BEGIN inside epoch %" PRIu64,
				    r->epoch);
		return begin(r, &rec->u.begin, serr);
	case TB_REC_PAGE_DATA:
	case TB_REC_CPU_STATE:
	case TB_REC_DEVICE_STATE:
	case TB_REC_DISK_INFO:
	case TB_REC_DISK_WRITE:
	case TB_REC_EPOCH_END:
		if (!r->in_epoch)
			return fail(r, serr, TB_SERR_BAD_ORDER,
				    "record type %u outside an epoch",
				    rec->type);
		if (rec->type == TB_REC_PAGE_DATA)
			return pages(r, &rec->u.pages, serr);
		if (rec->type == TB_REC_EPOCH_END)
			return commit(r, &rec->u.end, serr);
		if (rec->type == TB_REC_DISK_INFO ||
		    rec->type == TB_REC_DISK_WRITE)
			return disk_rec(r, rec, serr);
		return state(r, rec->type, &rec->u.state, serr);
	case TB_REC_HEARTBEAT:
	case TB_REC_ERROR:
		return 0;
	default:
		return fail(r, serr, TB_SERR_BAD_ORDER,
			    "record type %u not expected from a primary",
			    rec->type);
	}
}
