/* SPDX-License-Identifier: MIT */
/*
 * Xen migration stream v2 (libxc format version 3, libxl format version 2)
 * writer and parser, for failover: the backup turns a committed replica
 * into what `xl restore` reads.  Written from Xen's specs
 * docs/specs/libxc-migration-stream.pandoc and libxl-migration-stream.pandoc
 * and tools/xl/xl.h (the xl save-file header); no Xen header is needed,
 * so tests/unit/test_xen_stream.c runs without Xen.  Internal to
 * lib/backend/.
 *
 * Layout written by tb_xs_write_xl():
 *
 *   xl header  "Xen saved domain, xl format\n \0 \r", byteorder 0x01020304,
 *              mandatory flags STREAMv2, optional data = u32 length +
 *              the xl config text
 *   libxl      "LibxlFmt" v2 (big-endian), record LIBXC_CONTEXT (empty)
 *   libxc      image header (big-endian, XENF v3), domain header,
 *              [X86_PV_INFO] STATIC_DATA_END [X86_PV_P2M_FRAMES]
 *              PAGE_DATA... X86_TSC_INFO
 *              PV:  SHARED_INFO, X86_PV_VCPU_BASIC (per online vCPU)
 *              HVM: HVM_PARAMS, HVM_CONTEXT
 *              END
 *   libxl      record END
 *
 * Every record is u32 type, u32 body length, body, zero padding to 8.
 */
#ifndef TIBER_XEN_STREAM_H
#define TIBER_XEN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/bitmap.h"
#include "tiber/common.h"

#define TB_XS_IHDR_MARKER	0xffffffffffffffffull
#define TB_XS_IHDR_ID		0x58454e46u /* "XENF" */
#define TB_XS_IHDR_VERSION	3u
#define TB_XS_IHDR_SIZE		24u
#define TB_XS_DHDR_SIZE		16u
#define TB_XS_DHDR_TYPE_X86_PV	1u
#define TB_XS_DHDR_TYPE_X86_HVM 2u
#define TB_XS_PAGE_SHIFT	12u

enum tb_xs_rec {
	TB_XS_REC_END = 0x00,
	TB_XS_REC_PAGE_DATA = 0x01,
	TB_XS_REC_X86_PV_INFO = 0x02,
	TB_XS_REC_X86_PV_P2M_FRAMES = 0x03,
	TB_XS_REC_X86_PV_VCPU_BASIC = 0x04,
	TB_XS_REC_X86_PV_VCPU_EXTENDED = 0x05,
	TB_XS_REC_X86_PV_VCPU_XSAVE = 0x06,
	TB_XS_REC_SHARED_INFO = 0x07,
	TB_XS_REC_X86_TSC_INFO = 0x08,
	TB_XS_REC_HVM_CONTEXT = 0x09,
	TB_XS_REC_HVM_PARAMS = 0x0a,
	TB_XS_REC_X86_PV_VCPU_MSRS = 0x0c,
	TB_XS_REC_STATIC_DATA_END = 0x10,
};
#define TB_XS_REC_OPTIONAL 0x80000000u

/* XEN_DOMCTL_PFINFO_* >> 28: the top nibble of a PAGE_DATA pfn entry. */
enum tb_xs_pfinfo {
	TB_XS_PF_NOTAB = 0x0,
	TB_XS_PF_L1TAB = 0x1,
	TB_XS_PF_L4TAB = 0x4,
	TB_XS_PF_LPINTAB = 0x8, /* or-ed in: pinned */
	TB_XS_PF_BROKEN = 0xd,
	TB_XS_PF_XALLOC = 0xe,
	TB_XS_PF_XTAB = 0xf,
};
#define TB_XS_PFN_MASK ((1ull << 52) - 1)
#define TB_XS_BATCH    1024u /* pfns per PAGE_DATA record (as Xen) */

/* libxl layer */
#define TB_XS_LIBXL_IDENT	      0x4c6962786c466d74ull /* "LibxlFmt" */
#define TB_XS_LIBXL_VERSION	      2u
#define TB_XS_LIBXL_REC_END	      0u
#define TB_XS_LIBXL_REC_LIBXC_CONTEXT 1u
/* xl save-file header (tools/xl/xl.h) */
#define TB_XS_XL_MAGIC_LEN     32u
#define TB_XS_XL_HDR_SIZE      48u
#define TB_XS_XL_BYTEORDER     0x01020304u
#define TB_XS_XL_FLAG_STREAMV2 (1u << 1) /* else xl assumes a legacy stream */

/* HVM params a restore wants (Xen's save list); others are dropped. */
bool tb_xs_hvm_param_wanted(uint32_t index);

struct tb_xs_hvm_param {
	uint64_t index;
	uint64_t value;
};

struct tb_xs_vcpu {
	uint32_t id;
	const void *basic; /* vcpu_guest_context_x86_64, pfn-canonical cr3 */
	size_t basic_len;  /* 0: vCPU offline, nothing written */
};

/* Everything the writer needs; pointers are borrowed. */
struct tb_xs_image {
	uint32_t dom_type; /* TB_XS_DHDR_TYPE_X86_PV / _HVM */
	uint32_t xen_major;
	uint32_t xen_minor;
	uint64_t nr_pages;	       /* pfn space */
	int mem_fd;		       /* pfn p at offset p * 4096 */
	const struct tb_bitmap *holes; /* pfns not populated (not sent);
					  NULL: none */
	const uint8_t *pfn_types;      /* PV: TB_XS_PF_* per pfn; NULL: NOTAB */
	/* TSC */
	bool have_tsc;
	uint32_t tsc_mode, tsc_khz, tsc_incarnation;
	uint64_t tsc_nsec;
	/* PV */
	uint32_t guest_width;	    /* 8 */
	uint32_t pt_levels;	    /* 4 */
	uint64_t p2m_end_pfn;	    /* highest pfn the p2m covers */
	const uint64_t *p2m_frames; /* pfns of the p2m frames */
	size_t nr_p2m_frames;
	const void *shared_info; /* 4096 bytes */
	const struct tb_xs_vcpu *vcpus;
	size_t nr_vcpus;
	/* HVM/PVH */
	const void *hvm_ctx;
	size_t hvm_ctx_len;
	const struct tb_xs_hvm_param *params;
	size_t nr_params;
};

struct tb_xs_stats {
	uint64_t bytes;
	uint64_t records;
	uint64_t pages;		/* with data */
	uint64_t pages_skipped; /* holes */
	uint64_t pages_zero;	/* all-zero NOTAB pages sent as XALLOC */
};

/* Write the libxc stream alone (image header .. END) to @fd.
 * -EINVAL: inconsistent image; -EIO/-errno from the fd. */
int tb_xs_write_libxc(int fd, const struct tb_xs_image *img,
		      struct tb_xs_stats *st);
/* Write the whole xl save file: xl header with @config (xl config text,
 * may be NULL), libxl header, LIBXC_CONTEXT, the libxc stream, END. */
int tb_xs_write_xl(int fd, const char *config, size_t config_len,
		   const struct tb_xs_image *img, struct tb_xs_stats *st);

/*
 * Parser (tests, and a self-check before xl sees a stream).  Checks the
 * headers, every record's padding (zero) and length against the spec,
 * the ordering rules (STATIC_DATA_END before PAGE_DATA / P2M_FRAMES,
 * X86_PV_INFO first for PV, HVM_PARAMS before HVM_CONTEXT, END last) and
 * PAGE_DATA contents (count > 0, known types, data for each page with
 * a data-carrying type).  @on_rec, if set, sees each libxc record (body
 * without padding); a non-zero return stops the walk with that value.
 * Returns 0 or -EPROTO (with *@why set to a static reason) / -EINVAL.
 */
struct tb_xs_parsed {
	uint32_t dom_type;
	uint32_t xen_major, xen_minor;
	bool xl_header, libxl;
	uint32_t xl_config_len;
	const char *xl_config; /* points into the buffer */
	uint64_t records, pages, pfns;
	uint64_t max_pfn;
	bool seen_end, seen_static_end, seen_tsc, seen_hvm_ctx, seen_hvm_params,
		seen_pv_info, seen_p2m, seen_shinfo;
	uint32_t vcpus_basic;
};
typedef int (*tb_xs_rec_fn)(void *arg, uint32_t type, const uint8_t *body,
			    uint32_t len);
int tb_xs_parse(const void *buf, size_t len, struct tb_xs_parsed *out,
		tb_xs_rec_fn on_rec, void *arg, const char **why);

/*
 * Build a tb_xs_image from tiber's Xen state blobs (xen_blob.h:
 * "TBXN" CPU and device blobs).  Pointers in @img point into the blobs or
 * into @ps (owned, freed by tb_xs_blobs_free).  HVM/PVH: needs the
 * device blob's HOLES record (else -ENOTSUP: the whole pfn space would be
 * populated).  PV: needs the PV_INFO, SHINFO, PV_TYPES and PV_P2M
 * records and a context for vCPU 0 (else -ENOTSUP naming what is
 * missing); the vCPU contexts must already be pfn-canonical.
 */
struct tb_xs_blobs {
	struct tb_bitmap holes;
	uint8_t *pfn_types;   /* PV: nr_pages entries */
	uint64_t *p2m_frames; /* PV */
	struct tb_xs_hvm_param params[32];
	struct tb_xs_vcpu vcpus[64];
	char reason[160];
};
int tb_xs_from_blobs(const void *cpu, size_t cpu_len, const void *dev,
		     size_t dev_len, uint64_t nr_pages, struct tb_xs_blobs *ps,
		     struct tb_xs_image *img);
void tb_xs_blobs_free(struct tb_xs_blobs *ps);

#endif
