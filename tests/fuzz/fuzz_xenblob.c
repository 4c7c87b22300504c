// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the failover's Xen state-blob reader,
 * tb_xs_from_blobs() (lib/backend/xen_stream_img.c over the "TBXN"
 * reader of xen_blob.c): the primary's CPU and device blobs as a backup
 * holds them, hostile.
 *
 * Input: byte 0 picks nr_pages (1 + byte % 128), bytes 1..2 (LE) the
 * CPU blob's length (clipped), then the CPU blob, then the device blob.
 * Each blob gets a buffer of its own size, so ASan sees a read past it.
 *
 * Oracle: no crash, no sanitizer report, no leak; a refusal is -EINVAL,
 * -ENOTSUP or -ENOMEM with a reason.  An accepted blob set gives an
 * image of the CPU blob's kind whose borrowed pointers lie in the blobs
 * and whose pfns are below nr_pages, and that image is one the stream
 * writer takes: tb_xs_write_xl() succeeds (pages from a memfd) and the
 * stream it wrote passes tb_xs_parse() with every pfn not in a hole,
 * one VCPU_BASIC per online vCPU, and the HVM context or shared info
 * byte for byte.
 *
 * Seeds (tests/fuzz/seeds-xenblob/): HVM and PV blob sets as the
 * backend's save hooks write them, and some it refuses (no HOLES, no
 * P2M, cut short).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/backend/xen_blob.h"
#include "../../lib/backend/xen_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAGES 128u

static int mem_fd = -1, out_fd = -1;

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_xenblob: oracle violation: %s\n", why);
	abort();
}

/* Guest memory: every third page zero (sent as XALLOC), the rest data. */
static void setup(void)
{
	static uint8_t page[TB_PAGE_SIZE];

	mem_fd = memfd_create("fuzz-xenblob-mem", 0);
	out_fd = memfd_create("fuzz-xenblob-out", 0);
	if (mem_fd < 0 || out_fd < 0)
		abort();
	for (unsigned p = 0; p < MAX_PAGES; p++) {
		memset(page, p % 3 ? (int)(p * 7 + 1) : 0, sizeof(page));
		if (pwrite(mem_fd, page, sizeof(page),
			   (off_t)p * TB_PAGE_SIZE) != (ssize_t)sizeof(page))
			abort();
	}
}

static bool within(const void *p, size_t n, const uint8_t *blob, size_t len)
{
	const uint8_t *q = p;

	return q >= blob && n <= len && q - blob <= (ptrdiff_t)(len - n);
}

struct seen {
	const struct tb_xs_image *img;
	uint32_t vcpus;
};

/* Each record of the written stream against the image it came from. */
static int on_rec(void *arg, uint32_t type, const uint8_t *body, uint32_t len)
{
	struct seen *s = arg;
	const struct tb_xs_image *img = s->img;

	switch (type) {
	case TB_XS_REC_HVM_CONTEXT:
		if (len != img->hvm_ctx_len || memcmp(body, img->hvm_ctx, len))
			fail("HVM_CONTEXT differs from the CPU blob's");
		break;
	case TB_XS_REC_SHARED_INFO:
		if (len != TB_PAGE_SIZE || memcmp(body, img->shared_info, len))
			fail("SHARED_INFO differs from the device blob's");
		break;
	case TB_XS_REC_X86_PV_VCPU_BASIC:
		s->vcpus++;
		break;
	}
	return 0;
}

/* The image of an accepted blob set, written and parsed back. */
static void check_image(const struct tb_xs_image *img, const uint8_t *cpu,
			size_t cpu_len, const uint8_t *dev, size_t dev_len,
			uint64_t nr_pages)
{
	struct tb_xs_parsed p;
	struct seen s = { .img = img };
	uint64_t data_pfns = nr_pages, online = 0;
	const char *why;
	struct stat st;
	uint8_t *buf;
	size_t i;
	int rc;

	if (img->dom_type != (cpu[8] == TB_XEN_BLOB_CPU_PV ?
				      TB_XS_DHDR_TYPE_X86_PV :
				      TB_XS_DHDR_TYPE_X86_HVM))
		fail("domain type is not the CPU blob's kind");
	if (img->nr_pages != nr_pages)
		fail("image of another size");
	if (img->dom_type == TB_XS_DHDR_TYPE_X86_PV) {
		if (!img->nr_vcpus || img->vcpus[0].id || !img->pfn_types ||
		    !within(img->shared_info, TB_PAGE_SIZE, dev, dev_len))
			fail("PV image without vCPU 0, types or shared info");
		for (i = 0; i < img->nr_vcpus; i++) {
			if (!within(img->vcpus[i].basic,
				    img->vcpus[i].basic_len, cpu, cpu_len))
				fail("a vCPU context outside the CPU blob");
			online += img->vcpus[i].basic_len != 0;
		}
		for (i = 0; i < img->nr_p2m_frames; i++)
			if (img->p2m_frames[i] >= nr_pages)
				fail("a p2m frame beyond nr_pages");
	} else {
		if (!within(img->hvm_ctx, img->hvm_ctx_len, cpu, cpu_len) ||
		    !img->hvm_ctx_len)
			fail("HVM context outside the CPU blob");
		if (!img->holes || img->holes->nbits < nr_pages)
			fail("HVM image without its holes");
		data_pfns -= tb_bitmap_count(img->holes);
		for (i = 0; i < img->nr_params; i++)
			if (!tb_xs_hvm_param_wanted(
				    (uint32_t)img->params[i].index))
				fail("an HVM param restore does not want");
	}

	if (ftruncate(out_fd, 0) || lseek(out_fd, 0, SEEK_SET))
		abort();
	rc = tb_xs_write_xl(out_fd, "name=\"fuzz\"\n", 12, img, NULL);
	if (rc) {
		fprintf(stderr,
			"write: %s (type %u width %u levels %u p2m end %llu frames %zu vcpus %zu)\n",
			strerror(-rc), img->dom_type, img->guest_width,
			img->pt_levels, (unsigned long long)img->p2m_end_pfn,
			img->nr_p2m_frames, img->nr_vcpus);
		fail("the writer refuses an image tb_xs_from_blobs accepted");
	}
	if (fstat(out_fd, &st))
		abort();
	buf = malloc((size_t)st.st_size);
	if (!buf || pread(out_fd, buf, (size_t)st.st_size, 0) != st.st_size)
		abort();
	rc = tb_xs_parse(buf, (size_t)st.st_size, &p, on_rec, &s, &why);
	if (rc) {
		fprintf(stderr, "parse: %s\n", why);
		fail("the stream written from accepted blobs does not parse");
	}
	if (p.dom_type != img->dom_type || !p.xl_header || !p.libxl ||
	    p.xl_config_len != 12)
		fail("stream headers differ from the image");
	if (p.pfns != data_pfns || (p.pfns && p.max_pfn >= nr_pages))
		fail("stream pfns differ from the image's populated pfns");
	if (p.seen_tsc != img->have_tsc)
		fail("TSC_INFO written without TSC or lost");
	if (img->dom_type == TB_XS_DHDR_TYPE_X86_PV &&
	    (s.vcpus != online || p.vcpus_basic != online))
		fail("not one VCPU_BASIC per online vCPU");
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tb_xs_blobs *ps;
	struct tb_xs_image img;
	size_t cpu_len, dev_len;
	uint8_t *cpu, *dev;
	uint64_t nr_pages;
	int rc;

	if (size < 3)
		return 0;
	if (mem_fd < 0)
		setup();
	nr_pages = 1 + data[0] % MAX_PAGES;
	cpu_len = (size_t)(data[1] | data[2] << 8);
	data += 3;
	size -= 3;
	if (cpu_len > size)
		cpu_len = size;
	dev_len = size - cpu_len;
	/* malloc(0) may return NULL: keep a byte so "empty" is not "none" */
	cpu = malloc(cpu_len ? cpu_len : 1);
	dev = malloc(dev_len ? dev_len : 1);
	ps = malloc(sizeof(*ps));
	if (!cpu || !dev || !ps)
		abort();
	memcpy(cpu, data, cpu_len);
	memcpy(dev, data + cpu_len, dev_len);

	rc = tb_xs_from_blobs(cpu, cpu_len, dev, dev_len, nr_pages, ps, &img);
	if (rc) {
		if (rc != -EINVAL && rc != -ENOTSUP && rc != -ENOMEM)
			fail("a refusal that is not -EINVAL/-ENOTSUP/-ENOMEM");
		if (!ps->reason[0])
			fail("a refusal without a reason");
		if (ps->pfn_types || ps->p2m_frames || ps->holes.words)
			fail("a refusal keeps its allocations");
	} else {
		img.mem_fd = mem_fd;
		check_image(&img, cpu, cpu_len, dev, dev_len, nr_pages);
		tb_xs_blobs_free(ps);
	}
	free(ps);
	free(cpu);
	free(dev);
	return 0;
}
