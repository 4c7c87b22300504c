/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the Xen backend: no Xen header, no hypercall, so that
 * tests/unit/test_xen_offline.c can exercise them without Xen or root.
 * Internal to lib/backend/ (not a public contract).
 *
 * All parsers take untrusted input (a kernel image named by the operator,
 * a page the guest wrote) and never read outside [img, img + len).
 */
#ifndef TIBER_XEN_UTIL_H
#define TIBER_XEN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/backend.h"

/* From xen/include/public/elfnote.h (kept here so no Xen header is
 * needed): the guest kernel's "Xen" note of this type advertises that
 * its suspend hypercall may return 1 (suspend cancelled / checkpoint). */
#define TB_XEN_ELFNOTE_SUSPEND_CANCEL 14

/*
 * Find the first ELF note @name/@type in an ELF32 or ELF64 little-endian
 * image: program headers PT_NOTE first, then section headers SHT_NOTE.
 * On success *@desc / *@desc_len point into @img.
 * @return 0 found, -ENOENT no such note, -ENOEXEC not an ELF image or a
 * malformed one (offsets out of bounds).
 */
int tb_xen_elf_find_note(const void *img, size_t len, const char *name,
			 uint32_t type, const void **desc, size_t *desc_len);

/*
 * Does the (uncompressed ELF) kernel advertise SUSPEND_CANCEL?  The note's
 * value is a 32-bit integer; present and non-zero means yes (Linux emits
 * `.long 1`).  An empty descriptor also counts as yes (presence is the
 * advertisement).  @return 0 with *@yes set, or -ENOEXEC.
 */
int tb_xen_elf_suspend_cancel(const void *img, size_t len, bool *yes);

/*
 * Linux x86 bzImage: locate the compressed payload (boot protocol >= 2.08).
 * *@fmt names the compression ("gzip", "bzip2", "xz", "lzma", "lzo",
 * "lz4", "zstd", "unknown").  @return 0, or -ENOEXEC if @img is not a
 * bzImage or its header points out of bounds.
 */
int tb_xen_bzimage_payload(const void *img, size_t len, size_t *off,
			   size_t *plen, const char **fmt);

/*
 * OR a Xen log-dirty bitmap (@src_bits bits, 64-bit little-endian words as
 * Xen writes them on x86_64) into @dst (@dst_bits bits); bits past either
 * size are ignored.  Returns how many bits of @src were set (within
 * @dst_bits).
 */
uint64_t tb_xen_bitmap_merge(uint64_t *dst, uint64_t dst_bits,
			     const uint64_t *src, uint64_t src_bits);

/* The guest pfn of machine frame @mfn, if the frame is the guest's
 * (@m2p[mfn] < @p2m_size and @p2m[@m2p[mfn]] == mfn): 0, else -ERANGE. */
int tb_xen_mfn_to_pfn(uint64_t mfn, const uint64_t *m2p, uint64_t m2p_size,
		      const uint64_t *p2m, uint64_t p2m_size, uint64_t *pfn);

/*
 * PV page-table normalisation (x86_64 PV, 4 levels), as Xen's migration
 * save does: every present PTE's machine frame becomes the guest pfn so
 * the replica does not depend on this host's memory.  @level is 1..4; in
 * an L4 the Xen-owned slots (256..272) are cleared.  An mfn is valid only
 * if @m2p[mfn] < @p2m_size and @p2m[@m2p[mfn]] == mfn.
 * @return 0; -ERANGE for a present PTE whose mfn is not the guest's
 * (e.g. a grant or I/O mapping: the page cannot be made
 * host-independent); -ENOTSUP for a superpage entry (L2/L3 PSE).
 * On error @pt is partly rewritten and *@bad_index names the entry.
 */
int tb_xen_pt_normalise(uint64_t *pt, unsigned level, const uint64_t *m2p,
			uint64_t m2p_size, const uint64_t *p2m,
			uint64_t p2m_size, unsigned *bad_index);

/*
 * The plug qdisc's byte limit for a configured output limit @limit (0:
 * 8 MiB).  Policy drop: @limit itself.  Policy pause (@pause): twice it,
 * at most INT32_MAX, so that what the guest sends between the backend's
 * checks of the backlog is held, not dropped.
 */
uint32_t tb_xen_plug_limit(uint64_t limit, bool pause);

/*
 * Suspend mode resolution.  @want from config; @published: the guest
 * wrote a port to device/suspend/event-channel; @static_port >= 0: a
 * dom0less static port; @feature_suspend: control/feature-suspend=1 (or
 * xenstore reachable for the guest at all).
 * AUTO: evtchn if a port is known, else xenstore if the guest has a
 * xenstore control node, else -ENOTSUP (pause must be asked for
 * explicitly: the operator must know no fast resume is possible).
 * EVTCHN without a port: -ENOTSUP.  XENSTORE without control node:
 * -ENOTSUP.  PAUSE: always.  @return 0 with *@out set, or -ENOTSUP /
 * -EINVAL.
 */
int tb_xen_resolve_mode(enum tb_suspend_mode want, bool published,
			int32_t static_port, bool has_control,
			enum tb_suspend_mode *out);

/*
 * Whether to believe the guest handles suspend-cancel: @cfg is
 * tb_dom_cfg.suspend_cancel (-1 detect, 0 no, 1 yes), @detected the ELF
 * note verdict (-1 unknown: no kernel image available).  Config wins.
 */
bool tb_xen_suspend_cancel(int cfg, int detected);

#endif
