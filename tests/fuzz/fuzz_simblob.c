// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of what the simulated hypervisor reads from its
 * guest (lib/simproto.c, lib/simram.c): the state blob getters
 * tb_sim_blob_get_cpu() and tb_sim_blob_get_dev(), as a restore reads a
 * state file (the CPU blob, then the device blob), and tb_sim_verify(),
 * the RAM image verifier (hostile input by contract).
 *
 * Input: byte 0 bit 0 picks the parser.
 *  0: the rest is a state file.
 *  1: byte 1 % 64 is a count of zero pages appended; the rest, padded
 *     with zeros to a page, is the start of a RAM image (so a seed needs
 *     only the image up to its last non-zero byte).
 * The parsers get buffers of the exact size, so ASan sees a read past.
 *
 * Oracle: no crash, no sanitizer report.  A blob that parses has sane
 * sizes (count <= TB_SIM_MAX_VCPUS, used within the input), every
 * string NUL-terminated and the documented field bounds, and encodes
 * back to the bytes it came from (a vCPU's reserved words excepted,
 * which the writer zeroes).  tb_sim_verify() returns 0 or -EINVAL
 * (-ENOMEM) with a message for anything but a consistent image, checks
 * each data page of the header's layout, and never calls a report ok
 * with a bad page or lane in it.
 *
 * Seeds (tests/fuzz/seeds-simblob/): state files as tb_sim_blob_put_*
 * write them; RAM images from tb_sim_ram_format() with some pages
 * written (zero, text and delta content; one with a KV table).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/simproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EXTRA_PAGES 64u

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_simblob: oracle violation: %s\n", why);
	abort();
}

/* @p (@len bytes) re-encoded by the writer must give @p back; the CPU
 * blob's reserved words are zero in the copy compared. */
static void same_bytes(const struct tb_buf *b, const uint8_t *p, size_t len,
		       bool cpu)
{
	uint8_t *want = malloc(len ? len : 1);
	size_t off;

	if (!want)
		abort();
	memcpy(want, p, len);
	for (off = sizeof(struct tb_sim_blob_hdr); cpu && off < len;
	     off += sizeof(struct tb_sim_vcpu))
		memset(want + off + offsetof(struct tb_sim_vcpu, reserved), 0,
		       sizeof(((struct tb_sim_vcpu *)0)->reserved));
	if (b->len != len || memcmp(b->data, want, len))
		fail(cpu ? "a CPU blob does not encode back to its bytes" :
			   "a device blob does not encode back to its bytes");
	free(want);
}

static void state_file(const uint8_t *p, size_t len)
{
	struct tb_sim_vcpu v[TB_SIM_MAX_VCPUS];
	struct tb_sim_dev_state d;
	struct tb_buf b = { 0 };
	size_t used, used2;
	uint32_t nr = UINT32_MAX;
	unsigned i;
	int rc;

	rc = tb_sim_blob_get_cpu(p, len, v, &nr, &used);
	if (rc) {
		if (rc != -EPROTO && rc != -EINVAL)
			fail("a CPU blob refused with another error");
		return;
	}
	if (nr > TB_SIM_MAX_VCPUS || used > len ||
	    used != sizeof(struct tb_sim_blob_hdr) + nr * sizeof(*v))
		fail("a CPU blob of impossible size");
	if (tb_sim_blob_put_cpu(&b, v, nr))
		abort();
	same_bytes(&b, p, used, true);

	rc = tb_sim_blob_get_dev(p + used, len - used, &d, &used2);
	if (rc) {
		if (rc != -EPROTO && rc != -EINVAL)
			fail("a device blob refused with another error");
		goto out;
	}
	if (used2 > len - used ||
	    used2 != sizeof(struct tb_sim_blob_hdr) + sizeof(d))
		fail("a device blob of impossible size");
	if (d.nr_slots != TB_SIM_STORE_SLOTS ||
	    d.static_port >= TB_SIM_NR_PORTS || d.gate_mode > 1)
		fail("a device blob field out of its bounds");
	for (i = 0; i < TB_SIM_STORE_SLOTS; i++)
		if (strnlen(d.slot[i].key, TB_SIM_KEY_MAX) == TB_SIM_KEY_MAX ||
		    strnlen(d.slot[i].val, TB_SIM_VAL_MAX) == TB_SIM_VAL_MAX)
			fail("a store slot without its NUL");
	tb_buf_reset(&b);
	if (tb_sim_blob_put_dev(&b, &d))
		abort();
	same_bytes(&b, p + used, used2, false);
out:
	tb_buf_free(&b);
}

static void ram_image(const uint8_t *p, size_t len, unsigned extra)
{
	struct tb_sim_verify_report rep;
	const struct tb_sim_ram_hdr *h;
	size_t size = TB_ALIGN_UP(len, (size_t)TB_PAGE_SIZE) +
		      (size_t)extra * TB_PAGE_SIZE;
	uint8_t *ram;
	int rc;

	if (!size)
		return;
	ram = calloc(1, size);
	if (!ram)
		abort();
	memcpy(ram, p, len);
	h = (const void *)ram;
	memset(&rep, 0x5a, sizeof(rep));
	rc = tb_sim_verify(ram, size, &rep);
	if (rc) {
		if (rc != -EINVAL && rc != -ENOMEM)
			fail("an image refused with another error");
		if (rc == -EINVAL && !rep.msg[0])
			fail("an image refused without a message");
	} else {
		if (rep.pages_checked != h->nr_data)
			fail("not every data page of the layout checked");
		if (rep.ok && (rep.bad_pages || rep.bad_lanes || rep.msg[0]))
			fail("an image called consistent with a fault in it");
		if (!rep.ok && !rep.msg[0])
			fail("an inconsistent image without a message");
		if (rep.bad_pages && (rep.first_bad_pfn < h->data_first ||
				      rep.first_bad_pfn >= h->nr_pages))
			fail("a bad page outside the data pages");
	}
	free(ram);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;

	if (size < 2)
		return 0;
	if (data[0] & 1) {
		ram_image(data + 2, size - 2, data[1] % MAX_EXTRA_PAGES);
		return 0;
	}
	p = malloc(size - 1);
	if (!p)
		abort();
	memcpy(p, data + 1, size - 1);
	state_file(p, size - 1);
	free(p);
	return 0;
}
