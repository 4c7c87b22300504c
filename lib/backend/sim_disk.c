// SPDX-License-Identifier: MIT
/*
 * The sim backend's disk hooks (include/tiber/backend.h, "Disks"): the
 * daemon's end of tiber-simguest's disk journal ring and its image.
 *
 * Invariants: the daemon reads the image and the ring, never writes the
 * image; it reads the ring by the geometry it checked at open (struct
 * tb_sim_disk_view), never by the shared header again, and every index
 * read from the ring is bounds-checked (lib/simdisk.c); a writer waiting
 * for room is woken after each pop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "sim_disk.h"

struct tb_sim_ddisk {
	int ring_fd, img_fd;
	struct tb_sim_disk *k;
	struct tb_sim_disk_view v; /* what the daemon reads by */
	size_t map_len;
	uint64_t size;
	struct tb_sim_ctrl *ctrl;
	const int *evtfds;
};

int tb_sim_ddisk_open(struct tb_sim_ddisk **out, int ring_fd, int img_fd,
		      uint64_t size, uint64_t ring_size, struct tb_sim_ctrl *c,
		      const int *evtfds)
{
	struct tb_sim_ddisk *k = calloc(1, sizeof(*k));
	struct stat st;
	int rc;

	if (!k) {
		close(ring_fd);
		close(img_fd);
		return -ENOMEM;
	}
	k->ring_fd = ring_fd;
	k->img_fd = img_fd;
	k->ctrl = c;
	k->evtfds = evtfds;
	k->size = size;
	k->map_len = tb_sim_disk_map_len(size, ring_size);
	if (!size || size % TB_PAGE_SIZE || size > TB_DISK_SIZE_MAX ||
	    !ring_size || (ring_size & (ring_size - 1)) || fstat(img_fd, &st) ||
	    (uint64_t)st.st_size < size) {
		tb_backend_set_reason(
			"sim: the guest's disk (%llu bytes, ring %llu) does not "
			"match its image",
			(unsigned long long)size,
			(unsigned long long)ring_size);
		rc = -EPROTO;
		goto fail;
	}
	k->k = mmap(NULL, k->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		    ring_fd, 0);
	if (k->k == MAP_FAILED) {
		k->k = NULL;
		rc = -errno;
		tb_backend_set_reason("sim: map the disk journal: %s",
				      strerror(-rc));
		goto fail;
	}
	if (tb_sim_disk_view_init(&k->v, k->k, size, ring_size)) {
		tb_backend_set_reason(
			"sim: disk journal header does not match");
		rc = -EPROTO;
		goto fail;
	}
	*out = k;
	return 0;
fail:
	tb_sim_ddisk_close(k);
	return rc;
}

void tb_sim_ddisk_close(struct tb_sim_ddisk *k)
{
	if (!k)
		return;
	if (k->k)
		munmap(k->k, k->map_len);
	close(k->ring_fd);
	close(k->img_fd);
	free(k);
}

uint64_t tb_sim_ddisk_size(const struct tb_sim_ddisk *k)
{
	return k->size;
}

static void wake_writer(struct tb_sim_ddisk *k)
{
	if (k->ctrl && TB_LD(&k->k->waiting)) /* (no ctrl: the writer polls) */
		tb_sim_evtchn_notify(k->ctrl, k->evtfds, TB_SIM_PORT_DISK,
				     TB_SIM_END_GUEST);
}

int tb_sim_ddisk_mirror(struct tb_sim_ddisk *k, bool on, uint64_t epoch)
{
	if (on)
		TB_ST(&k->k->cur_epoch, epoch ? epoch - 1 : 0);
	tb_sim_disk_set_mirror(k->k, on);
	wake_writer(k);
	return 0;
}

int tb_sim_ddisk_boundary(struct tb_sim_ddisk *k, uint64_t epoch)
{
	TB_ST(&k->k->cur_epoch, epoch);
	return 0;
}

int tb_sim_ddisk_peek(struct tb_sim_ddisk *k, uint64_t upto,
		      struct tb_disk_jrec *w)
{
	struct tb_sim_disk_rec rec;
	const uint8_t *data;
	int r = tb_sim_disk_peek(&k->v, upto, &rec, &data);

	if (r <= 0) {
		if (r < 0)
			tb_backend_set_reason("sim: disk journal corrupt");
		return r;
	}
	if (rec.len % TB_DISK_SECTOR || rec.len > TB_DISK_WRITE_MAX ||
	    rec.offset % TB_DISK_SECTOR || rec.offset > k->size ||
	    rec.len > k->size - rec.offset) {
		tb_backend_set_reason("sim: disk journal record out of range");
		return -EPROTO;
	}
	w->disk = 0;
	w->len = rec.len;
	w->offset = rec.offset;
	w->epoch = rec.tag;
	w->data = data;
	return 1;
}

void tb_sim_ddisk_pop(struct tb_sim_ddisk *k, const struct tb_disk_jrec *w)
{
	struct tb_sim_disk_rec rec = {
		.len = w->len,
		.flags = w->data ? 0 : TB_SIM_DISK_REC_ZERO,
	};

	tb_sim_disk_pop(&k->v, &rec);
	wake_writer(k);
}

int tb_sim_ddisk_harvest(struct tb_sim_ddisk *k, struct tb_bitmap *out)
{
	if (out->nbits < (k->size + TB_PAGE_SIZE - 1) / TB_PAGE_SIZE)
		return -EINVAL;
	tb_sim_disk_harvest(&k->v, out->words, (out->nbits + 63) / 64);
	return 0;
}

int tb_sim_ddisk_read(struct tb_sim_ddisk *k, uint64_t off, void *buf,
		      size_t len)
{
	ssize_t n;

	if (off > k->size || len > k->size - off)
		return -EINVAL;
	n = pread(k->img_fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	if ((size_t)n < len) /* a short image reads as zeros */
		memset((uint8_t *)buf + n, 0, len - (size_t)n);
	return 0;
}

int tb_sim_ddisk_next_data(struct tb_sim_ddisk *k, uint64_t off, uint64_t *data)
{
	off_t o;

	if (off >= k->size)
		return -ENXIO;
	o = lseek(k->img_fd, (off_t)off, SEEK_DATA);
	if (o < 0)
		return errno == ENXIO ? -ENXIO : -errno;
	if ((uint64_t)o >= k->size)
		return -ENXIO;
	*data = (uint64_t)o;
	return 0;
}
