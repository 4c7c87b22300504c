// SPDX-License-Identifier: MIT
/*
 * The Xen backend's disk hooks: the guest's disk is served by nbdkit
 * through nbdkit-tiber-filter (nbdkit/tiber-filter.c), which journals
 * every write in a shared file; this file maps that journal and reads
 * the image, with the sim backend's journal consumer (sim_disk.c).
 *
 * Invariants: tiberd never writes the image; it sets the journal's
 * epoch boundary only while the guest is suspended (disk_boundary); the
 * journal's header must describe the image it was given (size), else
 * attach fails with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "sim_disk.h"
#include "xen_priv.h"

int tb_xen_disk_attach(struct tb_dom *d, const struct tb_dom_cfg *cfg)
{
	struct tb_sim_disk hdr;
	int jfd, ifd;
	ssize_t n;

	if (!cfg->disk_journal && !cfg->disk_image)
		return 0;
	if (!cfg->disk_journal || !cfg->disk_image) {
		tb_backend_set_reason(
			"xen: disk_image and disk_journal go together (the image nbdkit-tiber-filter serves and its journal=)");
		return -EINVAL;
	}
	jfd = open(cfg->disk_journal, O_RDWR | O_CLOEXEC);
	if (jfd < 0) {
		tb_backend_set_reason(
			"xen: disk journal %s: %s (is nbdkit-tiber-filter serving the guest's disk, and has the guest opened it?)",
			cfg->disk_journal, strerror(errno));
		return -errno;
	}
	/* while we mirror: the filter knows we are alive (a waiting
	 * writer stops the mirroring if no one holds this) */
	if (flock(jfd, LOCK_EX | LOCK_NB)) {
		tb_backend_set_reason(
			"xen: disk journal %s is in use by another tiberd",
			cfg->disk_journal);
		close(jfd);
		return -EBUSY;
	}
	n = pread(jfd, &hdr, sizeof(hdr), 0);
	ifd = open(cfg->disk_image, O_RDONLY | O_CLOEXEC);
	if (n != (ssize_t)sizeof(hdr) || hdr.magic != TB_SIM_DISK_MAGIC ||
	    ifd < 0) {
		tb_backend_set_reason("xen: %s",
				      ifd < 0 ? "disk image not readable" :
						"disk journal has no header");
		close(jfd);
		if (ifd >= 0)
			close(ifd);
		return -EINVAL;
	}
	/* no event channel to the filter: it polls for room */
	return tb_sim_ddisk_open(&d->disk, jfd, ifd, hdr.disk_size,
				 hdr.ring_size, NULL, NULL);
}

void tb_xen_disk_detach(struct tb_dom *d)
{
	if (!d->disk)
		return;
	tb_sim_ddisk_mirror(d->disk, false, 0);
	tb_sim_ddisk_close(d->disk);
	d->disk = NULL;
}

void tb_xen_disk_info(struct tb_dom *d, struct tb_dom_info *info)
{
	info->nr_disks = d->disk ? 1 : 0;
	info->disk_size[0] = d->disk ? tb_sim_ddisk_size(d->disk) : 0;
}

int tb_xen_disk_mirror(struct tb_dom *d, bool on, uint64_t epoch)
{
	return d->disk ? tb_sim_ddisk_mirror(d->disk, on, epoch) : -ENODEV;
}

int tb_xen_disk_boundary(struct tb_dom *d, uint64_t epoch)
{
	return d->disk ? tb_sim_ddisk_boundary(d->disk, epoch) : -ENODEV;
}

int tb_xen_disk_peek(struct tb_dom *d, uint64_t upto, struct tb_disk_jrec *w)
{
	return d->disk ? tb_sim_ddisk_peek(d->disk, upto, w) : -ENODEV;
}

void tb_xen_disk_pop(struct tb_dom *d, const struct tb_disk_jrec *w)
{
	if (d->disk)
		tb_sim_ddisk_pop(d->disk, w);
}

int tb_xen_disk_harvest(struct tb_dom *d, unsigned disk, struct tb_bitmap *out)
{
	return d->disk && !disk ? tb_sim_ddisk_harvest(d->disk, out) : -ENODEV;
}

int tb_xen_disk_read(struct tb_dom *d, unsigned disk, uint64_t off, void *buf,
		     size_t len)
{
	return d->disk && !disk ? tb_sim_ddisk_read(d->disk, off, buf, len) :
				  -ENODEV;
}

int tb_xen_disk_next_data(struct tb_dom *d, unsigned disk, uint64_t off,
			  uint64_t *data)
{
	return d->disk && !disk ? tb_sim_ddisk_next_data(d->disk, off, data) :
				  -ENODEV;
}
