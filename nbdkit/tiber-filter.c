// SPDX-License-Identifier: MIT
/*
 * nbdkit-tiber-filter: catches a Xen guest's disk writes in dom0 for
 * tiberd.  Stack it in front of the guest's image and export it to the
 * kernel's NBD client, which blkback serves to the guest:
 *
 *   nbdkit --filter=nbdkit-tiber-filter.so file IMAGE journal=PATH [ring=8M]
 *   nbd-client -unix SOCKET /dev/nbd0      # disk = ['phy:/dev/nbd0,xvdb,w']
 *
 * and give tiberd the same IMAGE and PATH (disk_image, disk_journal).
 * PATH is the journal: a shared file laid out like a simulated guest's
 * disk journal (include/tiber/simproto.h, "disk": header, ring, dirty
 * bitmap), which tiberd maps and consumes exactly as the sim backend
 * does (lib/backend/sim_disk.c).
 *
 * Invariants:
 * - A write reaches the image (the next layer) before its journal record
 *   exists, and the reply to the guest is sent after both: a write the
 *   guest saw complete before a suspend carries a tag <= that epoch
 *   (tiberd sets cur_epoch while the guest is suspended).
 * - Requests are serialised (thread model and the journal lock), so the
 *   journal's order is the image's order.
 * - While tiberd does not mirror, a write only marks its blocks in the
 *   bitmap (what a re-sync must send).
 * - A full ring delays the reply (backpressure), never loses a write.
 * - tiberd holds an exclusive flock on the journal while it mirrors; a
 *   writer waiting for room that finds no holder (tiberd died without
 *   stopping) stops the mirroring itself: its writes go to the bitmap,
 *   and the guest's disk never hangs on a dead tiberd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-filter.h>

#include "tiber/simproto.h"
#include "tiber/stream.h"

static char *journal_path;
static uint64_t ring_size = 8u << 20;
static struct tb_sim_disk *jk; /* the mapped journal */
static int jfd = -1;	       /* kept open: probes tiberd's flock */
static uint8_t *jring;
static size_t jlen;

static int tiber_config(nbdkit_next_config *next, nbdkit_backend *nxdata,
			const char *key, const char *value)
{
	if (!strcmp(key, "journal")) {
		free(journal_path);
		journal_path = strdup(value);
		return journal_path ? 0 : -1;
	}
	if (!strcmp(key, "ring")) {
		int64_t r = nbdkit_parse_size(value);

		if (r < 65536 || (r & (r - 1))) {
			nbdkit_error("ring=%s: a power of two >= 64K", value);
			return -1;
		}
		ring_size = (uint64_t)r;
		return 0;
	}
	return next(nxdata, key, value);
}

static int tiber_config_complete(nbdkit_next_config_complete *next,
				 nbdkit_backend *nxdata)
{
	if (!journal_path) {
		nbdkit_error("journal=PATH is required (the file tiberd maps)");
		return -1;
	}
	return next(nxdata);
}

static int tiber_thread_model(void)
{
	return NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;
}

static void tiber_unload(void)
{
	if (jk)
		munmap(jk, jlen);
	if (jfd >= 0)
		close(jfd);
	free(journal_path);
}

/* Create (or reuse, if it matches) the journal for a disk of @size. */
static int journal_open(uint64_t size)
{
	uint64_t len = tb_sim_disk_map_len(size, ring_size);
	struct stat st;
	bool fresh;
	int fd;

	if (jk)
		return jk->disk_size == size ? 0 : -1;
	if (size % TB_PAGE_SIZE || size > TB_DISK_SIZE_MAX) {
		nbdkit_error("disk size %llu is not a multiple of 4096",
			     (unsigned long long)size);
		return -1;
	}
	fd = open(journal_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fstat(fd, &st)) {
		nbdkit_error("journal %s: %m", journal_path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fresh = (uint64_t)st.st_size != len;
	if (fresh && (ftruncate(fd, 0) || ftruncate(fd, (off_t)len))) {
		nbdkit_error("journal %s: %m", journal_path);
		close(fd);
		return -1;
	}
	jk = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (jk == MAP_FAILED) {
		jk = NULL;
		close(fd);
		nbdkit_error("journal %s: mmap: %m", journal_path);
		return -1;
	}
	jfd = fd;
	jlen = len;
	jring = (uint8_t *)jk + TB_SIM_DISK_HDR;
	if (fresh || jk->magic != TB_SIM_DISK_MAGIC || jk->disk_size != size ||
	    jk->ring_size != ring_size) {
		memset(jk, 0, TB_SIM_DISK_HDR);
		jk->version = TB_SIM_VERSION;
		jk->disk_size = size;
		jk->ring_size = ring_size;
		jk->bitmap_off = TB_SIM_DISK_HDR + ring_size;
		jk->bitmap_len = len - jk->bitmap_off;
		__atomic_store_n(&jk->magic, TB_SIM_DISK_MAGIC,
				 __ATOMIC_RELEASE);
	}
	nbdkit_debug("tiber: journal %s for %llu bytes, ring %llu",
		     journal_path, (unsigned long long)size,
		     (unsigned long long)ring_size);
	return 0;
}

static int tiber_prepare(nbdkit_next *next, void *handle, int readonly)
{
	int64_t size = next->get_size(next);

	if (size < 0)
		return -1;
	return readonly ? 0 : journal_open((uint64_t)size);
}

/* Is a tiberd mirroring?  It holds an exclusive flock on the journal. */
static bool tiberd_alive(void)
{
	if (flock(jfd, LOCK_SH | LOCK_NB))
		return true; /* held */
	flock(jfd, LOCK_UN);
	return false;
}

/* Under the journal lock: wait until @len bytes fit or nobody mirrors. */
static void wait_room(uint32_t len)
{
	const struct timespec ts = { 0, 200L * 1000 };
	bool waited = false;

	while (!tb_sim_disk_fits(jk, len) &&
	       __atomic_load_n(&jk->mirror, __ATOMIC_SEQ_CST)) {
		if (!tiberd_alive()) {
			/* under the journal lock: no write in flight */
			__atomic_store_n(&jk->mirror, 0, __ATOMIC_SEQ_CST);
			nbdkit_error("tiber: the journal's tiberd is gone; "
				     "writes are only marked until one "
				     "mirrors again");
			break;
		}
		if (!waited) {
			jk->backpressure++;
			waited = true;
		}
		__atomic_store_n(&jk->waiting, 1, __ATOMIC_SEQ_CST);
		tb_sim_disk_unlock(jk);
		nanosleep(&ts, NULL);
		tb_sim_disk_lock(jk);
	}
	__atomic_store_n(&jk->waiting, 0, __ATOMIC_SEQ_CST);
}

/* Journal @count bytes at @offset (data, or zeroes if @buf is NULL) in
 * records of at most TB_DISK_WRITE_MAX; then count the write. */
static int journal(const uint8_t *buf, uint32_t count, uint64_t offset)
{
	uint32_t n;
	int rc = 0;

	for (; !rc && count; count -= n, offset += n) {
		n = count < TB_DISK_WRITE_MAX ? count : TB_DISK_WRITE_MAX;
		if (buf) {
			wait_room(n);
			rc = tb_sim_disk_append(jk, jring, offset, buf, n);
			buf += n;
		} else {
			rc = tb_sim_disk_append_zero(jk, jring, offset, n);
		}
	}
	return rc;
}

/* The write (@buf, or zeroes) through the next layer, then its record. */
static int write_through(nbdkit_next *next, const void *buf, uint32_t count,
			 uint64_t offset, uint32_t flags, int *err)
{
	int rc;

	if (offset % TB_DISK_SECTOR || count % TB_DISK_SECTOR) {
		nbdkit_error("tiber: %s of %u bytes at %llu is not in whole "
			     "512-byte sectors",
			     buf ? "write" : "zero", count,
			     (unsigned long long)offset);
		*err = EINVAL;
		return -1;
	}
	tb_sim_disk_lock(jk);
	if (buf)
		rc = next->pwrite(next, buf, count, offset, flags, err);
	else
		rc = next->zero(next, count, offset, flags, err);
	if (!rc && journal(buf, count, offset)) {
		*err = EIO;
		rc = -1;
	}
	if (!rc) {
		jk->writes++;
		jk->bytes += count;
	}
	tb_sim_disk_unlock(jk);
	return rc;
}

static int tiber_pwrite(nbdkit_next *next, void *handle, const void *buf,
			uint32_t count, uint64_t offset, uint32_t flags,
			int *err)
{
	return write_through(next, buf, count, offset, flags, err);
}

static int tiber_zero(nbdkit_next *next, void *handle, uint32_t count,
		      uint64_t offset, uint32_t flags, int *err)
{
	return write_through(next, NULL, count, offset, flags, err);
}

/* No trims: a trimmed range may read back as anything, and the copies
 * must not differ (write-zeroes, which do read back as zeroes, stay). */
static int tiber_can_trim(nbdkit_next *next, void *handle)
{
	return 0;
}

static struct nbdkit_filter filter = {
	.name = "tiber",
	.longname = "tiber: journal every write for tiberd's disk replication",
	.config = tiber_config,
	.config_complete = tiber_config_complete,
	.config_help = "journal=PATH   (required) the journal tiberd maps\n"
		       "ring=SIZE      journal ring bytes (default 8M)",
	.thread_model = tiber_thread_model,
	.unload = tiber_unload,
	.prepare = tiber_prepare,
	.pwrite = tiber_pwrite,
	.zero = tiber_zero,
	.can_trim = tiber_can_trim,
};

/* nbdkit looks this up by name (the macro defines it) */
struct nbdkit_filter *filter_init(void);
NBDKIT_REGISTER_FILTER(filter)
