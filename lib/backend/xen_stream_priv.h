/* SPDX-License-Identifier: MIT */
/*
 * Private to lib/backend/xen_stream*.c: what the stream writer
 * (xen_stream.c) and the parser (xen_stream_parse.c) must agree on
 * beyond the wire constants of xen_stream.h.
 */
#ifndef TIBER_XEN_STREAM_PRIV_H
#define TIBER_XEN_STREAM_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "xen_stream.h"

/* "Xen saved domain, xl format\n \0 \r": the xl save file's magic. */
extern const char tb_xs_xl_magic[TB_XS_XL_MAGIC_LEN];

/* Whether @t (a PAGE_DATA entry's top nibble) is a XEN_DOMCTL_PFINFO_*
 * type: 5..8 are none (8 alone would be a pinned NOTAB). */
static inline bool tb_xs_type_known(uint8_t t)
{
	return t < 5 || t > 8;
}

/* Whether a PAGE_DATA entry of page type @t is followed by page data. */
static inline bool tb_xs_type_has_data(uint8_t t)
{
	return t != TB_XS_PF_BROKEN && t != TB_XS_PF_XALLOC &&
	       t != TB_XS_PF_XTAB;
}

#endif
