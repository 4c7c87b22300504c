// SPDX-License-Identifier: MIT
/*
 * Xen migration stream v2 parser (see xen_stream.h): checks a whole
 * stream in memory, as tests and a self-check before xl sees a stream
 * need.  Pure: no Xen header, no hypercall.
 *
 * Invariants: the input is untrusted; every length is checked against
 * what is left before anything is read (no read past @len), a malformed
 * stream is -EPROTO with a static reason and never an assert, and
 * nothing is allocated: what the caller gets points into its buffer.
 */
#include <errno.h>
#include <string.h>

#include "xen_stream.h"
#include "xen_stream_priv.h"

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

struct rd {
	const uint8_t *p;
	size_t len, off;
	const char *why;
};

static int fail(struct rd *r, const char *why)
{
	r->why = why;
	return -EPROTO;
}

/* Read one record header + body; checks padding. */
static int rd_rec(struct rd *r, uint32_t *type, const uint8_t **body,
		  uint32_t *blen)
{
	size_t padded;

	if (r->len - r->off < 8)
		return fail(r, "truncated record header");
	*type = tb_get_le32(r->p + r->off);
	*blen = tb_get_le32(r->p + r->off + 4);
	padded = TB_ALIGN_UP((size_t)*blen, 8);
	if (r->len - r->off - 8 < padded)
		return fail(r, "truncated record body");
	*body = r->p + r->off + 8;
	for (size_t i = *blen; i < padded; i++)
		if ((*body)[i])
			return fail(r, "non-zero record padding");
	r->off += 8 + padded;
	return 0;
}

static int parse_page_data(struct rd *r, struct tb_xs_parsed *o,
			   const uint8_t *b, uint32_t len)
{
	uint32_t count, ndata = 0;

	if (len < 8)
		return fail(r, "PAGE_DATA shorter than its header");
	count = tb_get_le32(b);
	if (!count)
		return fail(r, "PAGE_DATA with count 0");
	if (tb_get_le32(b + 4))
		return fail(r, "PAGE_DATA reserved field not zero");
	if ((len - 8) / 8 < count)
		return fail(r, "PAGE_DATA pfn array truncated");
	for (uint32_t i = 0; i < count; i++) {
		uint64_t e = tb_get_le64(b + 8 + 8 * (size_t)i);
		unsigned t = (unsigned)(e >> 60);
		uint64_t pfn = e & TB_XS_PFN_MASK;

		if ((e >> 52) & 0xff)
			return fail(r, "PAGE_DATA pfn reserved bits set");
		if (!tb_xs_type_known((uint8_t)t))
			return fail(r, "PAGE_DATA unknown page type");
		ndata += tb_xs_type_has_data((uint8_t)t);
		if (pfn > o->max_pfn || o->pfns == 0)
			o->max_pfn = pfn > o->max_pfn ? pfn : o->max_pfn;
		o->pfns++;
	}
	if ((uint64_t)len !=
	    8 + 8 * (uint64_t)count + (uint64_t)ndata * TB_PAGE_SIZE)
		return fail(r, "PAGE_DATA length does not match its pages");
	o->pages += ndata;
	return 0;
}

/* The image and domain headers: 0 or -EPROTO. */
static int parse_headers(struct rd *r, struct tb_xs_parsed *o)
{
	const uint8_t *h = r->p + r->off;

	if (r->len - r->off < TB_XS_IHDR_SIZE + TB_XS_DHDR_SIZE)
		return fail(r, "truncated image/domain header");
	if (get_be64(h) != TB_XS_IHDR_MARKER)
		return fail(r, "bad image header marker");
	if (get_be32(h + 8) != TB_XS_IHDR_ID)
		return fail(r, "bad image header id (not XENF)");
	if (get_be32(h + 12) != TB_XS_IHDR_VERSION)
		return fail(r, "image header version is not 3");
	if (h[16] || h[17] || get_be32(h + 20))
		return fail(r, "image options/reserved not zero (big-endian?)");
	h += TB_XS_IHDR_SIZE;
	o->dom_type = tb_get_le32(h);
	if (o->dom_type != TB_XS_DHDR_TYPE_X86_PV &&
	    o->dom_type != TB_XS_DHDR_TYPE_X86_HVM)
		return fail(r, "unknown domain type");
	if (h[4] != TB_XS_PAGE_SHIFT || h[5] || h[6] || h[7])
		return fail(r, "page shift not 12 or reserved not zero");
	o->xen_major = tb_get_le32(h + 8);
	o->xen_minor = tb_get_le32(h + 12);
	r->off += TB_XS_IHDR_SIZE + TB_XS_DHDR_SIZE;
	return 0;
}

/* One libxc record's length, contents and place in the stream: 0 or
 * -EPROTO (PAGE_DATA: parse_page_data's checks too). */
static int check_rec(struct rd *r, struct tb_xs_parsed *o, bool pv,
		     uint32_t type, const uint8_t *b, uint32_t len)
{
	switch (type) {
	case TB_XS_REC_END:
		if (len)
			return fail(r, "END with a body");
		o->seen_end = true;
		break;
	case TB_XS_REC_X86_PV_INFO:
		if (!pv || o->seen_pv_info || len != 8 ||
		    (b[0] != 4 && b[0] != 8) || (b[1] != 3 && b[1] != 4))
			return fail(r, "bad X86_PV_INFO");
		o->seen_pv_info = true;
		break;
	case TB_XS_REC_STATIC_DATA_END:
		if (len || o->seen_static_end)
			return fail(r, "bad STATIC_DATA_END");
		o->seen_static_end = true;
		break;
	case TB_XS_REC_X86_PV_P2M_FRAMES: {
		uint32_t s, e;

		if (!pv || !o->seen_static_end || len < 16)
			return fail(r, "misplaced X86_PV_P2M_FRAMES");
		s = tb_get_le32(b);
		e = tb_get_le32(b + 4);
		if (e < s || (uint64_t)len != 8 + 8 * ((uint64_t)(e >> 9) -
						       (s >> 9) + 1))
			return fail(r, "X86_PV_P2M_FRAMES length");
		o->seen_p2m = true;
		break;
	}
	case TB_XS_REC_PAGE_DATA:
		if (!o->seen_static_end)
			return fail(r, "PAGE_DATA before STATIC_DATA_END");
		if (pv && !o->seen_p2m)
			return fail(r, "PV PAGE_DATA before P2M_FRAMES");
		return parse_page_data(r, o, b, len);
	case TB_XS_REC_X86_TSC_INFO:
		if (len != 24 || tb_get_le32(b + 20))
			return fail(r, "bad X86_TSC_INFO");
		o->seen_tsc = true;
		break;
	case TB_XS_REC_SHARED_INFO:
		if (!pv || len != TB_PAGE_SIZE)
			return fail(r, "bad SHARED_INFO");
		o->seen_shinfo = true;
		break;
	case TB_XS_REC_X86_PV_VCPU_BASIC:
		if (!pv || len < 8 || tb_get_le32(b + 4))
			return fail(r, "bad X86_PV_VCPU_BASIC");
		o->vcpus_basic++;
		break;
	case TB_XS_REC_HVM_PARAMS: {
		uint32_t n;

		if (pv || len < 8 || tb_get_le32(b + 4))
			return fail(r, "bad HVM_PARAMS");
		n = tb_get_le32(b);
		if ((uint64_t)len != 8 + 16 * (uint64_t)n)
			return fail(r, "HVM_PARAMS length");
		if (o->seen_hvm_ctx)
			return fail(r, "HVM_PARAMS after HVM_CONTEXT");
		o->seen_hvm_params = true;
		break;
	}
	case TB_XS_REC_HVM_CONTEXT:
		if (pv || !len)
			return fail(r, "bad HVM_CONTEXT");
		o->seen_hvm_ctx = true;
		break;
	default:
		if (!(type & TB_XS_REC_OPTIONAL))
			return fail(r, "unknown mandatory record");
	}
	return 0;
}

static int parse_libxc(struct rd *r, struct tb_xs_parsed *o,
		       tb_xs_rec_fn on_rec, void *arg)
{
	bool pv;
	int rc;

	rc = parse_headers(r, o);
	if (rc)
		return rc;
	pv = o->dom_type == TB_XS_DHDR_TYPE_X86_PV;

	while (!o->seen_end) {
		const uint8_t *b;
		uint32_t type, len;

		rc = rd_rec(r, &type, &b, &len);
		if (rc)
			return rc;
		o->records++;
		if (pv && !o->seen_pv_info && type != TB_XS_REC_X86_PV_INFO)
			return fail(r, "PV stream must start with X86_PV_INFO");
		rc = check_rec(r, o, pv, type, b, len);
		if (rc)
			return rc;
		if (on_rec) {
			rc = on_rec(arg, type, b, len);
			if (rc)
				return rc;
		}
	}
	if (!o->seen_static_end)
		return fail(r, "no STATIC_DATA_END");
	if (pv && (!o->seen_p2m || !o->seen_shinfo || !o->vcpus_basic))
		return fail(r, "PV stream lacks P2M_FRAMES/SHARED_INFO/VCPU");
	if (!pv && !o->seen_hvm_ctx)
		return fail(r, "HVM stream lacks HVM_CONTEXT");
	return 0;
}

int tb_xs_parse(const void *buf, size_t len, struct tb_xs_parsed *out,
		tb_xs_rec_fn on_rec, void *arg, const char **why)
{
	struct rd r = { .p = buf, .len = len };
	int rc;

	memset(out, 0, sizeof(*out));
	if (len >= TB_XS_XL_HDR_SIZE &&
	    !memcmp(buf, tb_xs_xl_magic, TB_XS_XL_MAGIC_LEN)) {
		uint32_t opt;

		out->xl_header = true;
		if (tb_get_le32(r.p + 32) != TB_XS_XL_BYTEORDER) {
			rc = fail(&r, "xl header byte order");
			goto out;
		}
		if (tb_get_le32(r.p + 36) != TB_XS_XL_FLAG_STREAMV2 ||
		    tb_get_le32(r.p + 40)) {
			rc = fail(&r, "xl header flags we do not write");
			goto out;
		}
		opt = tb_get_le32(r.p + 44);
		r.off = TB_XS_XL_HDR_SIZE;
		if (opt > len - r.off) {
			rc = fail(&r, "xl optional data truncated");
			goto out;
		}
		if (opt) {
			if (opt < 4 || tb_get_le32(r.p + r.off) != opt - 4) {
				rc = fail(&r, "xl config length");
				goto out;
			}
			out->xl_config_len = opt - 4;
			out->xl_config = (const char *)r.p + r.off + 4;
		}
		r.off += opt;
	}
	if (len - r.off >= 16 && get_be64(r.p + r.off) == TB_XS_LIBXL_IDENT) {
		const uint8_t *b;
		uint32_t type, blen;

		out->libxl = true;
		if (get_be32(r.p + r.off + 8) != TB_XS_LIBXL_VERSION ||
		    get_be32(r.p + r.off + 12)) {
			rc = fail(&r, "libxl header version/options");
			goto out;
		}
		r.off += 16;
		rc = rd_rec(&r, &type, &b, &blen);
		if (rc)
			goto out;
		if (type != TB_XS_LIBXL_REC_LIBXC_CONTEXT || blen) {
			rc = fail(&r, "libxl: first record not LIBXC_CONTEXT");
			goto out;
		}
	} else if (out->xl_header) {
		rc = fail(&r, "xl header not followed by a libxl stream");
		goto out;
	}
	rc = parse_libxc(&r, out, on_rec, arg);
	if (rc)
		goto out;
	if (out->libxl) {
		const uint8_t *b;
		uint32_t type, blen;

		rc = rd_rec(&r, &type, &b, &blen);
		if (rc)
			goto out;
		if (type != TB_XS_LIBXL_REC_END || blen) {
			rc = fail(&r, "libxl: no END after the libxc stream");
			goto out;
		}
	}
	if (r.off != len)
		rc = fail(&r, "trailing bytes after END");
out:
	if (why)
		*why = rc ? r.why : NULL;
	return rc;
}
