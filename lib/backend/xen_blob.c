// SPDX-License-Identifier: MIT
/*
 * Xen state blobs ("TBXN", see xen_blob.h): the writer the backend's
 * save hooks use (xen_state.c) and the reader a failover uses
 * (xen_stream.c), side by side.  Pure: no Xen header, no hypercall.
 */
#include <errno.h>

#include "xen_blob.h"

/* ------------------------------------------------------------ writer */

int tb_xen_blob_put_hdr(struct tb_buf *out, uint32_t kind, uint32_t count)
{
	uint8_t h[TB_XEN_BLOB_HDR_SIZE];

	tb_put_le32(h, TB_XEN_BLOB_MAGIC);
	tb_put_le32(h + 4, TB_XEN_BLOB_VERSION);
	tb_put_le32(h + 8, kind);
	tb_put_le32(h + 12, count);
	return tb_buf_append(out, h, sizeof(h));
}

int tb_xen_blob_put_rec(struct tb_buf *out, uint32_t type, uint32_t id,
			const void *p, uint32_t len)
{
	uint8_t h[TB_XEN_BLOB_REC_HDR_SIZE] = { 0 };
	int rc;

	tb_put_le32(h, type);
	tb_put_le32(h + 4, id);
	tb_put_le32(h + 8, len);
	rc = tb_buf_append(out, h, sizeof(h));
	if (!rc && len && p)
		rc = tb_buf_append(out, p, len);
	return rc;
}

/* HVM/PVH: the unpopulated pfn ranges, so that a failover restore
 * populates only what the guest has. */
int tb_xen_blob_put_holes(struct tb_buf *out, const struct tb_bitmap *holes,
			  uint64_t nr_pages)
{
	struct tb_buf b = { 0 };
	uint64_t pfn = 0;
	int rc = 0;

	while (!rc && pfn < nr_pages) {
		uint64_t first = pfn;
		uint8_t e[16];

		if (!tb_bitmap_test(holes, pfn)) {
			pfn++;
			continue;
		}
		while (pfn < nr_pages && tb_bitmap_test(holes, pfn))
			pfn++;
		tb_put_le64(e, first);
		tb_put_le64(e + 8, pfn - first);
		rc = tb_buf_append(&b, e, sizeof(e));
	}
	if (!rc)
		rc = tb_xen_blob_put_rec(out, TB_XEN_BLOB_REC_HOLES, 0, b.data,
					 (uint32_t)b.len);
	tb_buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------ reader */

int tb_xen_blob_open(struct tb_xen_blob *b, const void *p, size_t len)
{
	b->p = p;
	b->len = len;
	b->off = TB_XEN_BLOB_HDR_SIZE;
	if (!p || len < TB_XEN_BLOB_HDR_SIZE ||
	    tb_get_le32(b->p) != TB_XEN_BLOB_MAGIC ||
	    tb_get_le32(b->p + 4) != TB_XEN_BLOB_VERSION)
		return -EINVAL;
	b->kind = tb_get_le32(b->p + 8);
	b->count = tb_get_le32(b->p + 12);
	return 0;
}

int tb_xen_blob_next(struct tb_xen_blob *b, uint32_t *type, uint32_t *id,
		     const uint8_t **body, uint32_t *len)
{
	if (b->off == b->len)
		return 0;
	if (b->len - b->off < TB_XEN_BLOB_REC_HDR_SIZE)
		return -EINVAL;
	*type = tb_get_le32(b->p + b->off);
	*id = tb_get_le32(b->p + b->off + 4);
	*len = tb_get_le32(b->p + b->off + 8);
	if (b->len - b->off - TB_XEN_BLOB_REC_HDR_SIZE < *len)
		return -EINVAL;
	*body = b->p + b->off + TB_XEN_BLOB_REC_HDR_SIZE;
	b->off += TB_XEN_BLOB_REC_HDR_SIZE + (size_t)*len;
	return 1;
}
