/* SPDX-License-Identifier: MIT */
/*
 * Xen state blobs ("TBXN"): how the Xen backend carries a checkpoint's
 * vCPU and device state (tb_backend_ops save_cpu_state and
 * save_device_state, TB_STATE_XEN_PV / TB_STATE_XEN_HVM) to the backup,
 * where a failover turns them into a migration stream (xen_stream.c).
 * docs/xen-backend.md ("State blobs") describes the record bodies.  The
 * one definition of the format: writer (xen_state.c) and reader
 * (xen_stream.c) side by side.  No Xen header, so
 * tests/unit/test_xen_blob.c runs without Xen.  Internal to lib/backend/.
 *
 * Little-endian.  A blob is a 16-byte header and records:
 *
 *   header: u32 magic 0x4e584254 ("TBXN"), u32 version 1,
 *           u32 kind (enum tb_xen_blob_kind), u32 count (vCPUs or 0)
 *   record: u32 type (enum tb_xen_blob_type), u32 id, u32 length, u32 0,
 *           then length bytes (no padding)
 *
 * The blob ends with its last record: there is no record count, so a
 * blob cut at a record boundary reads as a shorter valid blob (readers
 * check that the records they need are there).
 */
#ifndef TIBER_XEN_BLOB_H
#define TIBER_XEN_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "tiber/bitmap.h"
#include "tiber/common.h"

#define TB_XEN_BLOB_MAGIC	 0x4e584254u /* "TBXN" */
#define TB_XEN_BLOB_VERSION	 1u
#define TB_XEN_BLOB_HDR_SIZE	 16u
#define TB_XEN_BLOB_REC_HDR_SIZE 16u

enum tb_xen_blob_kind {
	TB_XEN_BLOB_CPU_PV = 1,
	TB_XEN_BLOB_CPU_HVM = 2,
	TB_XEN_BLOB_DEV = 3
};

enum tb_xen_blob_type {
	/* CPU blobs */
	TB_XEN_BLOB_REC_PV_VCPU = 1, /* id vCPU: vcpu_guest_context_x86_64_t,
					pfn-canonical; length 0 = offline */
	TB_XEN_BLOB_REC_HVM_CTX = 2, /* xc_domain_hvm_getcontext() image */
	/* device blobs */
	TB_XEN_BLOB_REC_TSC = 3,       /* u32 mode, u32 khz, u32 incarnation,
					  u32 0, u64 ns */
	TB_XEN_BLOB_REC_SHINFO = 4,    /* PV shared info frame, 4096 bytes */
	TB_XEN_BLOB_REC_HVM_PARAM = 5, /* id = HVM_PARAM_*, u64 value */
	TB_XEN_BLOB_REC_PV_INFO = 6,   /* u32 guest width, u32 pt levels,
					  u64 p2m size */
	/* HVM/PVH: n x (u64 first pfn, u64 count) not populated */
	TB_XEN_BLOB_REC_HOLES = 7,
	/* PV: the pfns whose type is not NOTAB, each u64 (pfn | type nibble
	 * << 60) as in a PAGE_DATA pfn entry; all others are NOTAB */
	TB_XEN_BLOB_REC_PV_TYPES = 8,
	/* PV: u64 pfn of each frame of the guest's p2m, in order */
	TB_XEN_BLOB_REC_PV_P2M = 9,
};

/* ------------------------------------------------------------ writer */

/* Append a blob header to @out.  @return 0 or -ENOMEM. */
int tb_xen_blob_put_hdr(struct tb_buf *out, uint32_t kind, uint32_t count);
/* Append a record of @len bytes from @p (@p NULL: only the record
 * header; the caller appends the @len bytes).  @return 0 or -ENOMEM. */
int tb_xen_blob_put_rec(struct tb_buf *out, uint32_t type, uint32_t id,
			const void *p, uint32_t len);
/* Append a HOLES record: the runs of set bits among the first @nr_pages
 * of @holes.  @return 0 or -ENOMEM. */
int tb_xen_blob_put_holes(struct tb_buf *out, const struct tb_bitmap *holes,
			  uint64_t nr_pages);

/* ------------------------------------------------------------ reader */

/* A blob being read; the records point into the caller's buffer. */
struct tb_xen_blob {
	const uint8_t *p;
	size_t len, off;
	uint32_t kind, count;
};

/* Start reading the blob [@p, @p + @len) (hostile input): 0 with
 * @b->kind and @b->count set, or -EINVAL if it is not a TBXN v1 blob. */
int tb_xen_blob_open(struct tb_xen_blob *b, const void *p, size_t len);
/* The next record: 1 with *@body pointing into the blob, 0 at the end,
 * -EINVAL if a record header or body is cut short. */
int tb_xen_blob_next(struct tb_xen_blob *b, uint32_t *type, uint32_t *id,
		     const uint8_t **body, uint32_t *len);

#endif
