// SPDX-License-Identifier: MIT
/*
 * Xen migration stream v2 writer (see xen_stream.h): a tb_xs_image, its
 * pages read from mem_fd, out as the libxc stream or a whole xl save
 * file.  Pure: no Xen header, no hypercall.
 *
 * Invariants: the image is checked (check_image) before a byte is
 * written; every record body is padded with zeros to 8 bytes; the first
 * write error sticks (later puts write nothing) and is what the writer
 * returns; pages are read before their PAGE_DATA header is written, so
 * a record's length always matches its pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xen_stream.h"
#include "xen_stream_priv.h"

const char tb_xs_xl_magic[TB_XS_XL_MAGIC_LEN] =
	"Xen saved domain, xl format\n \0 \r";

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

#define WBUF_SIZE (1u << 20)

struct wr {
	int fd;
	uint8_t *buf;
	size_t len;
	int err;
	struct tb_xs_stats *st;
	uint8_t *pages; /* one batch of pages, read before it is written */
};

static int wr_flush(struct wr *w)
{
	if (!w->err)
		w->err = tb_write_all(w->fd, w->buf, w->len);
	w->len = 0;
	return w->err;
}

static void wr_put(struct wr *w, const void *p, size_t n)
{
	const uint8_t *s = p;

	w->st->bytes += n;
	while (!w->err && n) {
		size_t k = WBUF_SIZE - w->len;

		if (k > n)
			k = n;
		if (s)
			memcpy(w->buf + w->len, s, k);
		else
			memset(w->buf + w->len, 0, k);
		w->len += k;
		n -= k;
		if (s)
			s += k;
		if (w->len == WBUF_SIZE)
			wr_flush(w);
	}
}

/* Record header for a body of @len bytes; the caller writes the body and
 * then wr_pad(). */
static void wr_rhdr(struct wr *w, uint32_t type, uint32_t len)
{
	uint8_t h[8];

	tb_put_le32(h, type);
	tb_put_le32(h + 4, len);
	wr_put(w, h, sizeof(h));
	w->st->records++;
}

static void wr_pad(struct wr *w, uint32_t len)
{
	size_t pad = TB_ALIGN_UP((size_t)len, 8) - len;

	if (pad)
		wr_put(w, NULL, pad);
}

static void wr_rec(struct wr *w, uint32_t type, const void *body, uint32_t len)
{
	wr_rhdr(w, type, len);
	if (len)
		wr_put(w, body, len);
	wr_pad(w, len);
}

static int check_image(const struct tb_xs_image *img)
{
	if (img->nr_pages == 0 || img->nr_pages > TB_XS_PFN_MASK)
		return -EINVAL;
	if (img->holes && img->holes->nbits < img->nr_pages)
		return -EINVAL;
	if (img->dom_type == TB_XS_DHDR_TYPE_X86_PV) {
		if (img->guest_width != 8 || img->pt_levels != 4 ||
		    !img->shared_info || !img->p2m_frames ||
		    !img->nr_p2m_frames || !img->nr_vcpus)
			return -EINVAL;
		/* 512 p2m entries (8 bytes) per frame */
		if ((img->p2m_end_pfn >> 9) + 1 != img->nr_p2m_frames)
			return -EINVAL;
		return 0;
	}
	if (img->dom_type == TB_XS_DHDR_TYPE_X86_HVM)
		return img->hvm_ctx && img->hvm_ctx_len ? 0 : -EINVAL;
	return -EINVAL;
}

static uint8_t pfn_type(const struct tb_xs_image *img, uint64_t pfn)
{
	return img->pfn_types ? img->pfn_types[pfn] & 0xf : TB_XS_PF_NOTAB;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < TB_PAGE_SIZE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/*
 * One PAGE_DATA record for @n pfns.  The pages are read first (a pread
 * per run of consecutive pfns into w->pages): an all-zero page of a NOTAB
 * pfn goes as XALLOC, populated without data (Xen gives a guest scrubbed
 * frames), so a mostly empty guest's stream stays small.
 */
static void wr_batch(struct wr *w, const struct tb_xs_image *img,
		     const uint64_t *pfns, size_t n)
{
	uint8_t types[TB_XS_BATCH];
	size_t ndata = 0, i, j;
	uint8_t h[8];

	for (i = 0; i < n; i++)
		types[i] = pfn_type(img, pfns[i]);
	for (i = 0; i < n && !w->err; i = j) {
		size_t len;
		ssize_t r;

		for (j = i + 1; j < n && pfns[j] == pfns[j - 1] + 1 &&
				tb_xs_type_has_data(types[j]) ==
					tb_xs_type_has_data(types[i]);
		     j++)
			;
		if (!tb_xs_type_has_data(types[i]))
			continue;
		len = (j - i) * TB_PAGE_SIZE;
		r = pread(img->mem_fd, w->pages + i * TB_PAGE_SIZE, len,
			  (off_t)(pfns[i] * TB_PAGE_SIZE));
		if (r != (ssize_t)len)
			w->err = r < 0 ? -errno : -EIO;
	}
	if (w->err)
		return;
	for (i = 0; i < n; i++) {
		if (types[i] == TB_XS_PF_NOTAB &&
		    page_is_zero(w->pages + i * TB_PAGE_SIZE)) {
			types[i] = TB_XS_PF_XALLOC;
			w->st->pages_zero++;
		}
		ndata += tb_xs_type_has_data(types[i]);
	}
	wr_rhdr(w, TB_XS_REC_PAGE_DATA,
		(uint32_t)(8 + 8 * n + ndata * TB_PAGE_SIZE));
	tb_put_le32(h, (uint32_t)n);
	tb_put_le32(h + 4, 0);
	wr_put(w, h, sizeof(h));
	for (i = 0; i < n; i++) {
		tb_put_le64(h, pfns[i] | (uint64_t)types[i] << 60);
		wr_put(w, h, sizeof(h));
	}
	for (i = 0; i < n; i++) {
		if (!tb_xs_type_has_data(types[i]))
			continue;
		wr_put(w, w->pages + i * TB_PAGE_SIZE, TB_PAGE_SIZE);
		w->st->pages++;
	}
	/* body is 8-aligned: 8 + 8n + 4096k */
}

static void wr_pages(struct wr *w, const struct tb_xs_image *img)
{
	uint64_t pfns[TB_XS_BATCH];
	size_t n = 0;

	for (uint64_t pfn = 0; pfn < img->nr_pages && !w->err; pfn++) {
		if (img->holes && tb_bitmap_test(img->holes, pfn)) {
			w->st->pages_skipped++;
			continue;
		}
		pfns[n++] = pfn;
		if (n == TB_XS_BATCH) {
			wr_batch(w, img, pfns, n);
			n = 0;
		}
	}
	if (n)
		wr_batch(w, img, pfns, n);
}

static void wr_libxc(struct wr *w, const struct tb_xs_image *img)
{
	uint8_t b[32];
	size_t i;

	/* image header, big-endian */
	memset(b, 0, sizeof(b));
	put_be64(b, TB_XS_IHDR_MARKER);
	put_be32(b + 8, TB_XS_IHDR_ID);
	put_be32(b + 12, TB_XS_IHDR_VERSION);
	/* options 0: little-endian; reserved zero */
	wr_put(w, b, TB_XS_IHDR_SIZE);
	/* domain header */
	memset(b, 0, sizeof(b));
	tb_put_le32(b, img->dom_type);
	b[4] = TB_XS_PAGE_SHIFT;
	tb_put_le32(b + 8, img->xen_major);
	tb_put_le32(b + 12, img->xen_minor);
	wr_put(w, b, TB_XS_DHDR_SIZE);

	if (img->dom_type == TB_XS_DHDR_TYPE_X86_PV) {
		memset(b, 0, 8);
		b[0] = (uint8_t)img->guest_width;
		b[1] = (uint8_t)img->pt_levels;
		wr_rec(w, TB_XS_REC_X86_PV_INFO, b, 8);
	}
	wr_rec(w, TB_XS_REC_STATIC_DATA_END, NULL, 0);
	if (img->dom_type == TB_XS_DHDR_TYPE_X86_PV) {
		uint32_t len = (uint32_t)(8 + 8 * img->nr_p2m_frames);

		wr_rhdr(w, TB_XS_REC_X86_PV_P2M_FRAMES, len);
		tb_put_le32(b, 0);
		tb_put_le32(b + 4, (uint32_t)img->p2m_end_pfn);
		wr_put(w, b, 8);
		for (i = 0; i < img->nr_p2m_frames; i++) {
			tb_put_le64(b, img->p2m_frames[i]);
			wr_put(w, b, 8);
		}
	}
	wr_pages(w, img);
	if (img->have_tsc) {
		memset(b, 0, 24);
		tb_put_le32(b, img->tsc_mode);
		tb_put_le32(b + 4, img->tsc_khz);
		tb_put_le64(b + 8, img->tsc_nsec);
		tb_put_le32(b + 16, img->tsc_incarnation);
		wr_rec(w, TB_XS_REC_X86_TSC_INFO, b, 24);
	}
	if (img->dom_type == TB_XS_DHDR_TYPE_X86_PV) {
		wr_rec(w, TB_XS_REC_SHARED_INFO, img->shared_info,
		       TB_PAGE_SIZE);
		for (i = 0; i < img->nr_vcpus; i++) {
			const struct tb_xs_vcpu *v = &img->vcpus[i];
			uint32_t len = (uint32_t)(8 + v->basic_len);

			if (!v->basic_len)
				continue;
			wr_rhdr(w, TB_XS_REC_X86_PV_VCPU_BASIC, len);
			memset(b, 0, 8);
			tb_put_le32(b, v->id);
			wr_put(w, b, 8);
			wr_put(w, v->basic, v->basic_len);
			wr_pad(w, len);
		}
	} else {
		size_t n = 0;

		for (i = 0; i < img->nr_params; i++)
			n += img->params[i].value != 0;
		if (n) {
			wr_rhdr(w, TB_XS_REC_HVM_PARAMS,
				(uint32_t)(8 + 16 * n));
			memset(b, 0, 8);
			tb_put_le32(b, (uint32_t)n);
			wr_put(w, b, 8);
			for (i = 0; i < img->nr_params; i++) {
				if (!img->params[i].value)
					continue;
				tb_put_le64(b, img->params[i].index);
				tb_put_le64(b + 8, img->params[i].value);
				wr_put(w, b, 16);
			}
		}
		wr_rec(w, TB_XS_REC_HVM_CONTEXT, img->hvm_ctx,
		       (uint32_t)img->hvm_ctx_len);
	}
	wr_rec(w, TB_XS_REC_END, NULL, 0);
}

static int wr_run(int fd, const char *config, size_t config_len, bool xl,
		  const struct tb_xs_image *img, struct tb_xs_stats *st)
{
	struct tb_xs_stats dummy;
	struct wr w = { .fd = fd };
	int rc = check_image(img);

	if (rc)
		return rc;
	if (config_len > UINT32_MAX - 8)
		return -EINVAL;
	w.st = st ? st : &dummy;
	memset(w.st, 0, sizeof(*w.st));
	w.buf = malloc(WBUF_SIZE);
	w.pages = malloc((size_t)TB_XS_BATCH * TB_PAGE_SIZE);
	if (!w.buf || !w.pages) {
		free(w.buf);
		free(w.pages);
		return -ENOMEM;
	}
	if (xl) {
		uint8_t h[TB_XS_XL_HDR_SIZE + 4];
		uint32_t opt = config ? (uint32_t)(4 + config_len) : 0;

		memset(h, 0, sizeof(h));
		/* a fixed 32-byte field, not a C string: no NUL to copy */
		// NOLINTNEXTLINE(bugprone-not-null-terminated-result)
		memcpy(h, tb_xs_xl_magic, TB_XS_XL_MAGIC_LEN);
		/* "domain's byte order": native = little-endian */
		tb_put_le32(h + 32, TB_XS_XL_BYTEORDER);
		/* mandatory flags: STREAMv2, config as xl text (no JSON) */
		tb_put_le32(h + 36, TB_XS_XL_FLAG_STREAMV2);
		tb_put_le32(h + 40, 0);
		tb_put_le32(h + 44, opt);
		tb_put_le32(h + 48, (uint32_t)config_len);
		wr_put(&w, h, TB_XS_XL_HDR_SIZE + (config ? 4 : 0));
		if (config)
			wr_put(&w, config, config_len);
		put_be64(h, TB_XS_LIBXL_IDENT);
		put_be32(h + 8, TB_XS_LIBXL_VERSION);
		put_be32(h + 12, 0);
		wr_put(&w, h, 16);
		wr_rec(&w, TB_XS_LIBXL_REC_LIBXC_CONTEXT, NULL, 0);
	}
	wr_libxc(&w, img);
	if (xl)
		wr_rec(&w, TB_XS_LIBXL_REC_END, NULL, 0);
	rc = wr_flush(&w);
	free(w.buf);
	free(w.pages);
	return rc;
}

int tb_xs_write_libxc(int fd, const struct tb_xs_image *img,
		      struct tb_xs_stats *st)
{
	return wr_run(fd, NULL, 0, false, img, st);
}

int tb_xs_write_xl(int fd, const char *config, size_t config_len,
		   const struct tb_xs_image *img, struct tb_xs_stats *st)
{
	return wr_run(fd, config, config_len, true, img, st);
}
