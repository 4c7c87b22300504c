// SPDX-License-Identifier: MIT
/*
 * tiber-simguest's block device: an image file and the journal ring the
 * daemon mirrors (include/tiber/simproto.h, "disk").
 *
 * The write path is the guest's block backend, run in the writing
 * vCPU's context (a synchronous blkback): wait for journal room (a
 * safepoint: nothing is written yet), write the image at local speed,
 * append the journal record tagged with the current epoch, complete.
 * The network never delays a write: the daemon sends the journal after
 * the epoch's pause, while the guest runs; only a full ring (the link
 * cannot keep up) makes a writer wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "tiber/stream.h"
#include "guest_priv.h"

struct tb_guest_disk {
	int fd;
	int ring_fd;
	struct tb_sim_disk *k;
	uint8_t *ring;
	size_t map_len;
};

bool tb_guest_has_disk(struct tb_guest *g)
{
	return g->disk != NULL;
}

uint64_t tb_guest_disk_size(struct tb_guest *g)
{
	return g->disk ? g->disk->k->disk_size : 0;
}

int tb_guest_disk_open(struct tb_guest *g)
{
	const struct tb_guest_cfg *cfg = &g->cfg;
	struct tb_guest_disk *d;
	struct stat st;
	uint64_t ring = cfg->disk_ring;

	if (!cfg->disk)
		return 0;
	if (!ring || (ring & (ring - 1)) || ring < (uint64_t)64 * 1024) {
		fprintf(stderr,
			"tiber-simguest: --disk-ring must be a power of two >= 64K\n");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ring_fd = -1;
	d->fd = open(cfg->disk, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->fd < 0 || fstat(d->fd, &st) ||
	    (cfg->disk_size && (uint64_t)st.st_size < cfg->disk_size &&
	     ftruncate(d->fd, (off_t)cfg->disk_size)) ||
	    fstat(d->fd, &st))
		goto fail_errno;
	if (!st.st_size || st.st_size % TB_PAGE_SIZE) {
		fprintf(stderr,
			"tiber-simguest: disk %s: size %lld is not a nonzero multiple of 4096 (use --disk-size)\n",
			cfg->disk, (long long)st.st_size);
		errno = EINVAL;
		goto fail_errno;
	}
	d->map_len = tb_sim_disk_map_len((uint64_t)st.st_size, ring);
	d->ring_fd = memfd_create("tiber-guest-disk", MFD_CLOEXEC);
	if (d->ring_fd < 0 || ftruncate(d->ring_fd, (off_t)d->map_len))
		goto fail_errno;
	d->k = mmap(NULL, d->map_len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, d->ring_fd, 0);
	if (d->k == MAP_FAILED) {
		d->k = NULL;
		goto fail_errno;
	}
	d->ring = (uint8_t *)d->k + TB_SIM_DISK_HDR;
	d->k->magic = TB_SIM_DISK_MAGIC;
	d->k->version = TB_SIM_VERSION;
	d->k->disk_size = (uint64_t)st.st_size;
	d->k->ring_size = ring;
	d->k->bitmap_off = TB_SIM_DISK_HDR + ring;
	d->k->bitmap_len = d->map_len - d->k->bitmap_off;
	g->disk = d;
	return 0;
fail_errno : {
	int rc = -errno;

	fprintf(stderr, "tiber-simguest: disk %s: %s\n", cfg->disk,
		strerror(errno));
	g->disk = d;
	tb_guest_disk_close(g);
	return rc;
}
}

void tb_guest_disk_close(struct tb_guest *g)
{
	struct tb_guest_disk *d = g->disk;

	if (!d)
		return;
	if (d->k)
		munmap(d->k, d->map_len);
	if (d->ring_fd >= 0)
		close(d->ring_fd);
	if (d->fd >= 0)
		close(d->fd);
	free(d);
	g->disk = NULL;
}

int tb_guest_disk_fds(struct tb_guest *g, int *fds, uint64_t *size,
		      uint64_t *ring_size)
{
	if (!g->disk)
		return 0;
	fds[0] = g->disk->ring_fd;
	fds[1] = g->disk->fd;
	*size = g->disk->k->disk_size;
	*ring_size = g->disk->k->ring_size;
	return 2;
}

void tb_guest_disk_detached(struct tb_guest *g)
{
	if (!g->disk)
		return;
	tb_sim_disk_set_mirror(g->disk->k, false);
	tb_sim_evtchn_notify(g->ctrl, g->evtfds, TB_SIM_PORT_DISK,
			     TB_SIM_END_GUEST);
}

void tb_guest_disk_wake(struct tb_guest *g)
{
	if (g->disk && TB_LD(&g->disk->k->waiting))
		tb_sim_evtchn_notify(g->ctrl, g->evtfds, TB_SIM_PORT_DISK,
				     TB_SIM_END_GUEST);
}

/* Under the lock: wait (unlocked) until the record fits or nobody
 * mirrors; parks vCPU @t if a suspend is requested meanwhile. */
static void wait_room(struct tb_guest *g, unsigned t, uint32_t len)
{
	struct tb_sim_disk *k = g->disk->k;
	struct tb_sim_waitset ws = { .n = 1,
				     .port = { TB_SIM_PORT_DISK },
				     .end = { TB_SIM_END_GUEST },
				     .extra_fd = -1 };
	bool waited = false;

	while (!tb_sim_disk_fits(k, len) && TB_LD(&k->mirror) &&
	       !tb_guest_exiting(g)) {
		if (!waited) {
			k->backpressure++;
			waited = true;
		}
		TB_ST(&k->waiting, 1);
		tb_sim_disk_unlock(k);
		if (TB_LD(&g->stop_req))
			tb_guest_park(g, t);
		else
			tb_sim_evtchn_wait(g->ctrl, g->evtfds, &ws, 0,
					   tb_now_ns() + 10 * TB_NSEC_PER_MSEC);
		tb_sim_disk_lock(k);
	}
	TB_ST(&k->waiting, 0);
}

int tb_guest_disk_write(struct tb_guest *g, unsigned t, uint64_t off,
			const void *p, uint32_t len)
{
	struct tb_guest_disk *d = g->disk;
	int rc;

	if (!d)
		return -ENODEV;
	if (!len || len % TB_DISK_SECTOR || off % TB_DISK_SECTOR ||
	    off + len > d->k->disk_size || len > TB_DISK_WRITE_MAX)
		return -EINVAL;
	tb_sim_disk_lock(d->k);
	wait_room(g, t, len);
	rc = tb_pwrite_all(d->fd, p, len, off);
	if (!rc)
		rc = tb_sim_disk_append(d->k, d->ring, off, p, len);
	if (!rc) {
		d->k->writes++;
		d->k->bytes += len;
	}
	tb_sim_disk_unlock(d->k);
	return rc;
}

void tb_guest_disk_stats(struct tb_guest *g, uint64_t *writes, uint64_t *bytes)
{
	*writes = g->disk ? TB_LD(&g->disk->k->writes) : 0;
	*bytes = g->disk ? TB_LD(&g->disk->k->bytes) : 0;
}

int tb_guest_disk_read(struct tb_guest *g, uint64_t off, void *p, uint32_t len)
{
	ssize_t k;

	if (!g->disk)
		return -ENODEV;
	k = pread(g->disk->fd, p, len, (off_t)off);
	return k == (ssize_t)len ? 0 : k < 0 ? -errno : -EIO;
}

int tb_guest_disk_verify(struct tb_guest *g, struct tb_sim_verify_report *rep)
{
	if (!g->disk)
		return -ENODEV;
	return tb_sim_verify_disk(g->ram, g->ram_size, g->disk->fd,
				  g->disk->k->disk_size, rep);
}
