// SPDX-License-Identifier: MIT
/* The Xen backend's logic that needs no hypervisor: ELF notes, bzImage
 * payloads, log-dirty bitmaps, PV page-table normalisation, suspend mode
 * and suspend-cancel resolution. */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "tiber/backend.h"
#include "tiber/common.h"
#include "tiber/xen.h"
#include "../../lib/backend/xen_priv.h"
#include "../../lib/backend/xen_util.h"
#include "tiber/simproto.h"

/* Append one note (name "Xen" or other) to @p; returns bytes written. */
static size_t put_note(uint8_t *p, const char *name, uint32_t type,
		       uint32_t value, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	size_t off = 12;

	tb_put_le32(p, namesz);
	tb_put_le32(p + 4, descsz);
	tb_put_le32(p + 8, type);
	memcpy(p + off, name, namesz);
	off += TB_ALIGN_UP(namesz, 4);
	if (descsz >= 4)
		tb_put_le32(p + off, value);
	off += TB_ALIGN_UP(descsz, 4);
	return off;
}

/*
 * A minimal ELF64 image: header, one PT_NOTE program header and a note
 * area with a GNU note, then (if @with_cancel) Xen SUSPEND_CANCEL = @val.
 */
static size_t make_elf64(uint8_t *img, size_t cap, bool with_cancel,
			 uint32_t val)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*eh));
	size_t notes = sizeof(*eh) + sizeof(*ph), n = 0;

	memset(img, 0, cap);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	eh->e_ehsize = sizeof(*eh);
	n += put_note(img + notes + n, "GNU", 3, 0x1234, 8);
	n += put_note(img + notes + n, "Xen", 6, 0, 4); /* LOADER, not ours */
	if (with_cancel)
		n += put_note(img + notes + n, "Xen",
			      TB_XEN_ELFNOTE_SUSPEND_CANCEL, val, 4);
	ph->p_type = PT_NOTE;
	ph->p_offset = notes;
	ph->p_filesz = n;
	return notes + n;
}

/* ELF32 with the note in a SHT_NOTE section only (no program headers). */
static size_t make_elf32_section(uint8_t *img, size_t cap)
{
	Elf32_Ehdr *eh = (Elf32_Ehdr *)img;
	Elf32_Shdr *sh = (Elf32_Shdr *)(img + sizeof(*eh));
	size_t notes = sizeof(*eh) + 2 * sizeof(*sh), n;

	memset(img, 0, cap);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_shoff = sizeof(*eh);
	eh->e_shentsize = sizeof(*sh);
	eh->e_shnum = 2;
	n = put_note(img + notes, "Xen", TB_XEN_ELFNOTE_SUSPEND_CANCEL, 1, 4);
	sh[1].sh_type = SHT_NOTE;
	sh[1].sh_offset = notes;
	sh[1].sh_size = n;
	return notes + n;
}

START_TEST(elf64_with_suspend_cancel_note_is_detected)
{
	uint8_t img[512];
	size_t len = make_elf64(img, sizeof(img), true, 1);
	bool yes = false;

	ck_assert_int_eq(tb_xen_elf_suspend_cancel(img, len, &yes), 0);
	ck_assert(yes);
}
END_TEST

START_TEST(elf64_without_the_note_says_no)
{
	uint8_t img[512];
	size_t len = make_elf64(img, sizeof(img), false, 0);
	bool yes = true;

	ck_assert_int_eq(tb_xen_elf_suspend_cancel(img, len, &yes), 0);
	ck_assert(!yes);
}
END_TEST

START_TEST(note_value_zero_means_no)
{
	uint8_t img[512];
	size_t len = make_elf64(img, sizeof(img), true, 0);
	bool yes = true;

	ck_assert_int_eq(tb_xen_elf_suspend_cancel(img, len, &yes), 0);
	ck_assert(!yes);
}
END_TEST

START_TEST(elf32_note_in_section_headers_is_found)
{
	uint8_t img[512];
	size_t len = make_elf32_section(img, sizeof(img));
	bool yes = false;

	ck_assert_int_eq(tb_xen_elf_suspend_cancel(img, len, &yes), 0);
	ck_assert(yes);
}
END_TEST

START_TEST(truncated_or_hostile_images_are_rejected_not_read_past)
{
	uint8_t img[512];
	size_t len = make_elf64(img, sizeof(img), true, 1), cut;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));
	const void *desc;
	size_t dl;
	bool yes;

	/* every truncation: never a crash, never a false "found" past the end */
	for (cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		int rc;

		memcpy(copy, img, cut);
		rc = tb_xen_elf_suspend_cancel(copy, cut, &yes);
		ck_assert(rc == -ENOEXEC || (rc == 0 && !yes));
		free(copy);
	}
	ph->p_offset = 1u << 30; /* note area outside the file */
	ck_assert_int_eq(tb_xen_elf_find_note(img, len, "Xen", 14, &desc, &dl),
			 -ENOEXEC);
	memcpy(img, "\177ELG", 4);
	ck_assert_int_eq(tb_xen_elf_suspend_cancel(img, len, &yes), -ENOEXEC);
}
END_TEST

START_TEST(bzimage_payload_is_located_and_compression_named)
{
	static uint8_t img[8192];
	size_t off, plen;
	const char *fmt;

	memset(img, 0, sizeof(img));
	ck_assert_int_eq(tb_xen_bzimage_payload(img, sizeof(img), &off, &plen,
						&fmt),
			 -ENOEXEC);
	img[0x1f1] = 3; /* setup_sects: payload base at 4 * 512 */
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = 0x0f; /* version 2.15 */
	img[0x207] = 0x02;
	tb_put_le32(img + 0x248, 100);
	tb_put_le32(img + 0x24c, 1000);
	memcpy(img + 2048 + 100, "\3757zXZ\0", 6);
	ck_assert_int_eq(
		tb_xen_bzimage_payload(img, sizeof(img), &off, &plen, &fmt), 0);
	ck_assert_uint_eq(off, 2148);
	ck_assert_uint_eq(plen, 1000);
	ck_assert_str_eq(fmt, "xz");
	tb_put_le32(img + 0x24c, 8000); /* past the end */
	ck_assert_int_eq(tb_xen_bzimage_payload(img, sizeof(img), &off, &plen,
						&fmt),
			 -ENOEXEC);
}
END_TEST

START_TEST(kernel_file_plain_elf_is_read_without_xen)
{
	uint8_t img[512];
	size_t len = make_elf64(img, sizeof(img), true, 1);
	char path[PATH_MAX];
	int fd;
	bool yes = false;
	int rc;

	snprintf(path, sizeof(path), "%s/tiber-elfXXXXXX", tb_test_tmp());
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, img, len), (ssize_t)len);
	close(fd);
	rc = tb_xen_kernel_suspend_cancel(path, &yes);
	unlink(path);
	ck_assert_msg(rc == 0, "rc=%d %s", rc, tb_backend_reason());
	ck_assert(yes);
	ck_assert_int_eq(tb_xen_kernel_suspend_cancel("/nonexistent/vmlinuz",
						      &yes),
			 -ENOENT);
}
END_TEST

START_TEST(bitmap_merge_ors_and_clips)
{
	uint64_t dst[3] = { 1, 0, 0 }, src[4] = { 6, ~0ull, ~0ull, ~0ull };

	/* dst has 130 bits: words 0,1 full, 2 bits of word 2 */
	ck_assert_uint_eq(tb_xen_bitmap_merge(dst, 130, src, 256), 2 + 64 + 2);
	ck_assert_uint_eq(dst[0], 7);
	ck_assert_uint_eq(dst[1], ~0ull);
	ck_assert_uint_eq(dst[2], 3);
	/* a shorter source leaves the rest alone */
	dst[2] = 0;
	ck_assert_uint_eq(tb_xen_bitmap_merge(dst, 130, src, 65), 2 + 1);
	ck_assert_uint_eq(dst[2], 0);
}
END_TEST

/* m2p/p2m of a tiny "host": pfn i lives at mfn 100 + 3 i. */
#define NPFN 16
#define NMFN 200

static void make_maps(uint64_t *p2m, uint64_t *m2p)
{
	unsigned i;

	for (i = 0; i < NMFN; i++)
		m2p[i] = ~0ull;
	for (i = 0; i < NPFN; i++) {
		p2m[i] = 100 + 3 * i;
		m2p[100 + 3 * i] = i;
	}
}

START_TEST(pt_normalise_turns_mfns_into_pfns_and_keeps_flags)
{
	uint64_t p2m[NPFN], m2p[NMFN], pt[512] = { 0 };
	unsigned bad = 0;

	make_maps(p2m, m2p);
	pt[0] = (103ull << 12) | 0x67;			/* pfn 1, flags */
	pt[1] = (145ull << 12) | 0x8000000000000003ull; /* NX, pfn 15 */
	pt[2] = 0x12345000ull;				/* not present */
	ck_assert_int_eq(tb_xen_pt_normalise(pt, 1, m2p, NMFN, p2m, NPFN, &bad),
			 0);
	ck_assert_uint_eq(pt[0], (1ull << 12) | 0x67);
	ck_assert_uint_eq(pt[1], (15ull << 12) | 0x8000000000000003ull);
	ck_assert_uint_eq(pt[2], 0x12345000ull);
}
END_TEST

START_TEST(pt_normalise_clears_xen_slots_of_l4_only)
{
	uint64_t p2m[NPFN], m2p[NMFN], pt[512] = { 0 }, l3[512] = { 0 };
	unsigned bad = 0;

	make_maps(p2m, m2p);
	pt[256] = (100ull << 12) | 1;
	pt[272] = 0xdeadbeef001ull; /* Xen's: not checked, cleared */
	pt[273] = (106ull << 12) | 1;
	ck_assert_int_eq(tb_xen_pt_normalise(pt, 4, m2p, NMFN, p2m, NPFN, &bad),
			 0);
	ck_assert_uint_eq(pt[256], 0);
	ck_assert_uint_eq(pt[272], 0);
	ck_assert_uint_eq(pt[273], (2ull << 12) | 1);
	l3[256] = (100ull << 12) | 1;
	ck_assert_int_eq(tb_xen_pt_normalise(l3, 3, m2p, NMFN, p2m, NPFN, &bad),
			 0);
	ck_assert_uint_eq(l3[256], 1);
}
END_TEST

START_TEST(pt_normalise_rejects_foreign_mfns_and_superpages)
{
	uint64_t p2m[NPFN], m2p[NMFN], pt[512] = { 0 };
	unsigned bad = 0;

	make_maps(p2m, m2p);
	pt[7] = (101ull << 12) | 1; /* mfn with no guest pfn */
	ck_assert_int_eq(tb_xen_pt_normalise(pt, 1, m2p, NMFN, p2m, NPFN, &bad),
			 -ERANGE);
	ck_assert_uint_eq(bad, 7);
	memset(pt, 0, sizeof(pt));
	pt[9] = (5000ull << 12) | 1; /* beyond the m2p */
	ck_assert_int_eq(tb_xen_pt_normalise(pt, 1, m2p, NMFN, p2m, NPFN, &bad),
			 -ERANGE);
	memset(pt, 0, sizeof(pt));
	m2p[150] = 3; /* m2p says pfn 3 but p2m[3] != 150: stale */
	pt[4] = (150ull << 12) | 1;
	ck_assert_int_eq(tb_xen_pt_normalise(pt, 1, m2p, NMFN, p2m, NPFN, &bad),
			 -ERANGE);
	memset(pt, 0, sizeof(pt));
	pt[5] = (103ull << 12) | 0x81; /* PSE in an L2 */
	ck_assert_int_eq(tb_xen_pt_normalise(pt, 2, m2p, NMFN, p2m, NPFN, &bad),
			 -ENOTSUP);
	ck_assert_uint_eq(bad, 5);
	pt[5] = (103ull << 12) | 0x81; /* bit 7 in an L1 is PAT: fine */
	ck_assert_int_eq(tb_xen_pt_normalise(pt, 1, m2p, NMFN, p2m, NPFN, &bad),
			 0);
}
END_TEST

START_TEST(mode_resolution_prefers_evtchn_then_xenstore)
{
	enum tb_suspend_mode m;

	ck_assert_int_eq(
		tb_xen_resolve_mode(TB_SUSPEND_AUTO, true, -1, true, &m), 0);
	ck_assert_int_eq(m, TB_SUSPEND_EVTCHN);
	ck_assert_int_eq(tb_xen_resolve_mode(TB_SUSPEND_AUTO, false, 5, false,
					     &m),
			 0); /* dom0less static port */
	ck_assert_int_eq(m, TB_SUSPEND_EVTCHN);
	ck_assert_int_eq(
		tb_xen_resolve_mode(TB_SUSPEND_AUTO, false, -1, true, &m), 0);
	ck_assert_int_eq(m, TB_SUSPEND_XENSTORE);
	/* no cooperation possible: pause only when asked for */
	ck_assert_int_eq(tb_xen_resolve_mode(TB_SUSPEND_AUTO, false, -1, false,
					     &m),
			 -ENOTSUP);
	ck_assert_int_eq(tb_xen_resolve_mode(TB_SUSPEND_EVTCHN, false, -1, true,
					     &m),
			 -ENOTSUP);
	ck_assert_int_eq(tb_xen_resolve_mode(TB_SUSPEND_XENSTORE, true, -1,
					     true, &m),
			 0); /* override: xenstore although a port exists */
	ck_assert_int_eq(m, TB_SUSPEND_XENSTORE);
	ck_assert_int_eq(
		tb_xen_resolve_mode(TB_SUSPEND_PAUSE, false, -1, false, &m), 0);
	ck_assert_int_eq(m, TB_SUSPEND_PAUSE);
}
END_TEST

START_TEST(suspend_cancel_config_overrides_detection)
{
	ck_assert(tb_xen_suspend_cancel(-1, 1));
	ck_assert(!tb_xen_suspend_cancel(-1, 0));
	ck_assert(!tb_xen_suspend_cancel(-1, -1)); /* unknown: no */
	ck_assert(tb_xen_suspend_cancel(1, 0));
	ck_assert(!tb_xen_suspend_cancel(0, 1));
}
END_TEST

START_TEST(plug_limit_per_policy)
{
	ck_assert_uint_eq(tb_xen_plug_limit(0, false), 8u << 20);
	ck_assert_uint_eq(tb_xen_plug_limit(65536, false), 65536);
	ck_assert_uint_eq(tb_xen_plug_limit(65536, true), 131072);
	ck_assert_uint_eq(tb_xen_plug_limit(0, true), 16u << 20);
	ck_assert_uint_eq(tb_xen_plug_limit(1ull << 31, true), INT32_MAX);
	ck_assert_uint_eq(tb_xen_plug_limit(1ull << 40, false), INT32_MAX);
}
END_TEST

/* The disk hooks take the filter's journal and the image, both or
 * neither, and check the journal describes a disk. */
START_TEST(disk_attach_needs_journal_and_image_that_match)
{
	char dir[PATH_MAX], img[PATH_MAX + 16], jr[PATH_MAX + 16],
		cmd[PATH_MAX + 32];
	struct tb_dom_cfg cfg = { 0 };
	struct tb_dom d = { 0 };
	struct tb_dom_info info = { 0 };
	struct tb_sim_disk hdr = { 0 };
	uint64_t ring = 1 << 20, len;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/tiber-test-xdisk.XXXXXX", tb_test_tmp());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(jr, sizeof(jr), "%s/journal", dir);
	ck_assert_int_eq(tb_xen_disk_attach(&d, &cfg), 0); /* no disk */
	ck_assert_ptr_null(d.disk);
	cfg.disk_image = img;
	ck_assert_int_eq(tb_xen_disk_attach(&d, &cfg), -EINVAL);
	ck_assert(strstr(tb_backend_reason(), "go together"));
	cfg.disk_journal = jr;
	ck_assert_int_eq(tb_xen_disk_attach(&d, &cfg), -ENOENT);
	ck_assert(strstr(tb_backend_reason(), "nbdkit-tiber-filter"));
	/* a journal as the filter lays it out, for an 8 MiB image */
	f = fopen(img, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ftruncate(fileno(f), 8 << 20), 0);
	fclose(f);
	len = tb_sim_disk_map_len(8 << 20, ring);
	hdr.magic = TB_SIM_DISK_MAGIC;
	hdr.disk_size = 8 << 20;
	hdr.ring_size = ring;
	hdr.bitmap_off = TB_SIM_DISK_HDR + ring;
	hdr.bitmap_len = len - hdr.bitmap_off;
	f = fopen(jr, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ftruncate(fileno(f), (off_t)len), 0);
	ck_assert_uint_eq(fwrite(&hdr, sizeof(hdr), 1, f), 1);
	fclose(f);
	ck_assert_int_eq(tb_xen_disk_attach(&d, &cfg), 0);
	ck_assert_ptr_nonnull(d.disk);
	tb_xen_disk_info(&d, &info);
	ck_assert_uint_eq(info.nr_disks, 1);
	ck_assert_uint_eq(info.disk_size[0], 8 << 20);
	tb_xen_disk_detach(&d);
	ck_assert_ptr_null(d.disk);
	/* a journal for another image size: refused */
	ck_assert_int_eq(truncate(img, 4 << 20), 0);
	ck_assert_int_eq(tb_xen_disk_attach(&d, &cfg), -EPROTO);
	ck_assert_ptr_null(d.disk);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *xen_offline_suite(void)
{
	Suite *s = suite_create("xen_offline");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, elf64_with_suspend_cancel_note_is_detected);
	tcase_add_test(tc, elf64_without_the_note_says_no);
	tcase_add_test(tc, note_value_zero_means_no);
	tcase_add_test(tc, elf32_note_in_section_headers_is_found);
	tcase_add_test(tc,
		       truncated_or_hostile_images_are_rejected_not_read_past);
	tcase_add_test(tc, bzimage_payload_is_located_and_compression_named);
	tcase_add_test(tc, kernel_file_plain_elf_is_read_without_xen);
	tcase_add_test(tc, bitmap_merge_ors_and_clips);
	tcase_add_test(tc, pt_normalise_turns_mfns_into_pfns_and_keeps_flags);
	tcase_add_test(tc, pt_normalise_clears_xen_slots_of_l4_only);
	tcase_add_test(tc, pt_normalise_rejects_foreign_mfns_and_superpages);
	tcase_add_test(tc, mode_resolution_prefers_evtchn_then_xenstore);
	tcase_add_test(tc, suspend_cancel_config_overrides_detection);
	tcase_add_test(tc, plug_limit_per_policy);
	tcase_add_test(tc, disk_attach_needs_journal_and_image_that_match);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(xen_offline_suite)
