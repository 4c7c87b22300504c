// SPDX-License-Identifier: MIT
/*
 * The epoch engine's disk records (sender side): a FULL epoch's DISK_INFO
 * and the disk contents read while the guest runs, then every epoch's
 * journaled writes, in the order the guest made them.
 *
 * Invariants: writes are sent in journal order and popped only once
 * encoded into the send buffer (a broken link ends the session: the next
 * one starts with a full sync, which re-reads the disk); a write is in
 * the epoch its backend tagged it with, or the first later one sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "epoch_disk.h"

#define FLUSH_AT (4u << 20)

int tb_edisk_init(struct tb_edisk *k, const struct tb_backend_ops *ops,
		  struct tb_dom *dom, const struct tb_dom_info *info)
{
	unsigned i;

	memset(k, 0, sizeof(*k));
	k->ops = ops;
	k->dom = dom;
	k->nr_disks = TB_MIN(info->nr_disks, TB_DISKS_MAX);
	for (i = 0; i < k->nr_disks; i++)
		k->size[i] = info->disk_size[i];
	if (!k->nr_disks)
		return 0;
	if (!ops->disk_mirror || !ops->disk_boundary || !ops->disk_peek ||
	    !ops->disk_pop || !ops->disk_read || !ops->disk_next_data)
		return -ENOTSUP;
	k->scratch = malloc(TB_DISK_LZ4_MAX);
	return k->scratch ? 0 : -ENOMEM;
}

void tb_edisk_free(struct tb_edisk *k)
{
	free(k->scratch);
	k->scratch = NULL;
}

int tb_edisk_infos(struct tb_edisk *k, struct tb_buf *out, struct tb_digest *dg)
{
	unsigned i;
	int rc;

	for (i = 0; i < k->nr_disks; i++) {
		rc = tb_enc_disk_info(out, i, k->size[i]);
		if (rc)
			return rc;
		tb_digest_disk_info(dg, i, k->size[i]);
	}
	return 0;
}

static bool zero(const uint8_t *p, size_t n)
{
	return !n || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

int tb_edisk_encode(struct tb_edisk *k, struct tb_buf *out,
		    struct tb_digest *dg, unsigned disk, uint64_t off,
		    const uint8_t *data, uint64_t len, bool skip_zero,
		    uint64_t *bytes)
{
	uint64_t done;
	uint32_t n;
	bool z;
	int rc;

	for (done = 0; done < len; done += n) {
		n = (uint32_t)TB_MIN(len - done, (uint64_t)TB_DISK_WRITE_MAX);
		z = zero(data + done, n);
		if (z && skip_zero)
			continue;
		rc = tb_enc_disk_write(out, disk, off + done,
				       z ? NULL : data + done, n, k->scratch);
		if (rc)
			return rc;
		tb_digest_disk_write(dg, disk, off + done,
				     z ? NULL : data + done, n);
		*bytes += n;
	}
	return 0;
}

int tb_edisk_drain(struct tb_edisk *k, struct tb_buf *out, struct tb_digest *dg,
		   uint64_t epoch, int (*flush)(void *ctx), void *ctx,
		   uint64_t *writes, uint64_t *bytes)
{
	struct tb_disk_jrec w;
	int rc;

	if (!k->nr_disks)
		return 0;
	for (;;) {
		rc = k->ops->disk_peek(k->dom, epoch, &w);
		if (rc <= 0)
			return rc;
		if (w.disk >= k->nr_disks)
			return -EPROTO;
		rc = tb_edisk_encode(k, out, dg, w.disk, w.offset, w.data,
				     w.len, false, bytes);
		if (rc)
			return rc;
		k->ops->disk_pop(k->dom, &w);
		(*writes)++;
		if (out->len >= FLUSH_AT) {
			rc = flush(ctx);
			if (rc)
				return rc;
		}
	}
}
