// SPDX-License-Identifier: MIT
/*
 * Pure helpers of the Xen backend (see xen_util.h): ELF notes, bzImage
 * payloads, log-dirty bitmaps, PV page-table normalisation, suspend mode
 * resolution.  No Xen header here: everything is unit-testable offline.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "tiber/common.h"
#include "xen_util.h"

static unsigned get_le16(const uint8_t *p)
{
	return p[0] | (unsigned)p[1] << 8;
}

static bool in_bounds(size_t len, uint64_t off, uint64_t n)
{
	return off <= len && n <= len - off;
}

/* Walk one note area [p, p + n); 0 found, -ENOENT not there. */
static int scan_notes(const uint8_t *p, uint64_t n, const char *name,
		      uint32_t type, const void **desc, size_t *desc_len)
{
	size_t name_len = strlen(name) + 1;
	uint64_t off = 0;

	while (n - off >= 12) {
		uint32_t namesz = tb_get_le32(p + off);
		uint32_t descsz = tb_get_le32(p + off + 4);
		uint32_t ntype = tb_get_le32(p + off + 8);
		uint64_t name_off = off + 12;
		uint64_t desc_off = name_off + TB_ALIGN_UP((uint64_t)namesz, 4);
		uint64_t next = desc_off + TB_ALIGN_UP((uint64_t)descsz, 4);

		if (desc_off > n || descsz > n - desc_off)
			return -ENOENT; /* truncated: stop, do not guess */
		if (ntype == type && namesz == name_len &&
		    !memcmp(p + name_off, name, name_len)) {
			*desc = p + desc_off;
			*desc_len = descsz;
			return 0;
		}
		if (next > n)
			break;
		off = next;
	}
	return -ENOENT;
}

int tb_xen_elf_find_note(const void *img, size_t len, const char *name,
			 uint32_t type, const void **desc, size_t *desc_len)
{
	const uint8_t *b = img;
	bool is64;
	uint64_t phoff, shoff;
	unsigned phnum, shnum, phentsize, shentsize, i;

	if (len < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG) != 0)
		return -ENOEXEC;
	if (b[EI_DATA] != ELFDATA2LSB)
		return -ENOEXEC;
	if (b[EI_CLASS] == ELFCLASS64) {
		is64 = true;
		if (len < sizeof(Elf64_Ehdr))
			return -ENOEXEC;
		phoff = tb_get_le64(b + offsetof(Elf64_Ehdr, e_phoff));
		shoff = tb_get_le64(b + offsetof(Elf64_Ehdr, e_shoff));
		phentsize = get_le16(b + offsetof(Elf64_Ehdr, e_phentsize));
		phnum = get_le16(b + offsetof(Elf64_Ehdr, e_phnum));
		shentsize = get_le16(b + offsetof(Elf64_Ehdr, e_shentsize));
		shnum = get_le16(b + offsetof(Elf64_Ehdr, e_shnum));
		if (phnum && phentsize < sizeof(Elf64_Phdr))
			return -ENOEXEC;
		if (shnum && shentsize < sizeof(Elf64_Shdr))
			return -ENOEXEC;
	} else if (b[EI_CLASS] == ELFCLASS32) {
		is64 = false;
		if (len < sizeof(Elf32_Ehdr))
			return -ENOEXEC;
		phoff = tb_get_le32(b + offsetof(Elf32_Ehdr, e_phoff));
		shoff = tb_get_le32(b + offsetof(Elf32_Ehdr, e_shoff));
		phentsize = get_le16(b + offsetof(Elf32_Ehdr, e_phentsize));
		phnum = get_le16(b + offsetof(Elf32_Ehdr, e_phnum));
		shentsize = get_le16(b + offsetof(Elf32_Ehdr, e_shentsize));
		shnum = get_le16(b + offsetof(Elf32_Ehdr, e_shnum));
		if (phnum && phentsize < sizeof(Elf32_Phdr))
			return -ENOEXEC;
		if (shnum && shentsize < sizeof(Elf32_Shdr))
			return -ENOEXEC;
	} else {
		return -ENOEXEC;
	}
	if (phnum && !in_bounds(len, phoff, (uint64_t)phnum * phentsize))
		return -ENOEXEC;
	if (shnum && !in_bounds(len, shoff, (uint64_t)shnum * shentsize))
		return -ENOEXEC;

	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = b + phoff + (uint64_t)i * phentsize;
		uint32_t ptype = tb_get_le32(ph);
		uint64_t off, sz;

		if (ptype != PT_NOTE)
			continue;
		if (is64) {
			off = tb_get_le64(ph + offsetof(Elf64_Phdr, p_offset));
			sz = tb_get_le64(ph + offsetof(Elf64_Phdr, p_filesz));
		} else {
			off = tb_get_le32(ph + offsetof(Elf32_Phdr, p_offset));
			sz = tb_get_le32(ph + offsetof(Elf32_Phdr, p_filesz));
		}
		if (!in_bounds(len, off, sz))
			return -ENOEXEC;
		if (!scan_notes(b + off, sz, name, type, desc, desc_len))
			return 0;
	}
	for (i = 0; i < shnum; i++) {
		const uint8_t *sh = b + shoff + (uint64_t)i * shentsize;
		uint32_t stype = tb_get_le32(sh + 4);
		uint64_t off, sz;

		if (stype != SHT_NOTE)
			continue;
		if (is64) {
			off = tb_get_le64(sh + offsetof(Elf64_Shdr, sh_offset));
			sz = tb_get_le64(sh + offsetof(Elf64_Shdr, sh_size));
		} else {
			off = tb_get_le32(sh + offsetof(Elf32_Shdr, sh_offset));
			sz = tb_get_le32(sh + offsetof(Elf32_Shdr, sh_size));
		}
		if (!in_bounds(len, off, sz))
			return -ENOEXEC;
		if (!scan_notes(b + off, sz, name, type, desc, desc_len))
			return 0;
	}
	return -ENOENT;
}

int tb_xen_elf_suspend_cancel(const void *img, size_t len, bool *yes)
{
	const void *desc;
	size_t dlen;
	int rc;

	rc = tb_xen_elf_find_note(img, len, "Xen",
				  TB_XEN_ELFNOTE_SUSPEND_CANCEL, &desc, &dlen);
	if (rc == -ENOENT) {
		*yes = false;
		return 0;
	}
	if (rc)
		return rc;
	if (dlen >= 4)
		*yes = tb_get_le32(desc) != 0;
	else if (dlen == 0)
		*yes = true;
	else
		*yes = ((const uint8_t *)desc)[0] != 0;
	return 0;
}

/* Linux boot protocol, Documentation/x86/boot.rst. */
#define BZ_SETUP_SECTS	  0x1f1
#define BZ_HDRS		  0x202
#define BZ_VERSION	  0x206
#define BZ_PAYLOAD_OFFSET 0x248
#define BZ_PAYLOAD_LENGTH 0x24c

int tb_xen_bzimage_payload(const void *img, size_t len, size_t *off,
			   size_t *plen, const char **fmt)
{
	static const struct {
		const char *name;
		size_t n;
		const char *magic;
	} magics[] = {
		{ "gzip", 2, "\037\213" },	     { "bzip2", 3, "BZh" },
		{ "xz", 6, "\3757zXZ\0" },	     { "lzma", 3, "\135\0\0" },
		{ "lzo", 9, "\211LZO\0\r\n\032\n" }, { "lz4", 4, "\002!L\030" },
		{ "zstd", 4, "(\265/\375" },
	};
	const uint8_t *b = img;
	unsigned setup_sects, version, i;
	uint64_t o, n;

	if (len < BZ_PAYLOAD_LENGTH + 4 || memcmp(b + BZ_HDRS, "HdrS", 4) != 0)
		return -ENOEXEC;
	version = b[BZ_VERSION] | b[BZ_VERSION + 1] << 8;
	if (version < 0x208)
		return -ENOEXEC;
	setup_sects = b[BZ_SETUP_SECTS];
	if (!setup_sects)
		setup_sects = 4;
	o = (uint64_t)(setup_sects + 1) * 512 +
	    tb_get_le32(b + BZ_PAYLOAD_OFFSET);
	n = tb_get_le32(b + BZ_PAYLOAD_LENGTH);
	if (!n || !in_bounds(len, o, n))
		return -ENOEXEC;
	*off = o;
	*plen = n;
	*fmt = "unknown";
	for (i = 0; i < TB_ARRAY_SIZE(magics); i++) {
		if (n >= magics[i].n &&
		    !memcmp(b + o, magics[i].magic, magics[i].n)) {
			*fmt = magics[i].name;
			break;
		}
	}
	return 0;
}

uint64_t tb_xen_bitmap_merge(uint64_t *dst, uint64_t dst_bits,
			     const uint64_t *src, uint64_t src_bits)
{
	uint64_t bits = TB_MIN(dst_bits, src_bits);
	uint64_t words = bits / 64, i, count = 0;

	for (i = 0; i < words; i++) {
		if (!src[i])
			continue;
		dst[i] |= src[i];
		count += (uint64_t)__builtin_popcountll(src[i]);
	}
	if (bits & 63) {
		uint64_t w = src[words] & ((1ull << (bits & 63)) - 1);

		dst[words] |= w;
		count += (uint64_t)__builtin_popcountll(w);
	}
	return count;
}

#define PTE_PRESENT    0x1ull
#define PTE_PSE	       0x80ull
#define PTE_FRAME_MASK 0x000ffffffffff000ull
/* HYPERVISOR_VIRT_START/END of x86_64 PV (0xffff800000000000 and
 * 0xffff880000000000) as L4 slots, inclusive as in Xen's save code. */
#define L4_XEN_FIRST 256u
#define L4_XEN_LAST  272u

int tb_xen_mfn_to_pfn(uint64_t mfn, const uint64_t *m2p, uint64_t m2p_size,
		      const uint64_t *p2m, uint64_t p2m_size, uint64_t *pfn)
{
	if (mfn >= m2p_size || m2p[mfn] >= p2m_size || p2m[m2p[mfn]] != mfn)
		return -ERANGE;
	*pfn = m2p[mfn];
	return 0;
}

int tb_xen_pt_normalise(uint64_t *pt, unsigned level, const uint64_t *m2p,
			uint64_t m2p_size, const uint64_t *p2m,
			uint64_t p2m_size, unsigned *bad_index)
{
	unsigned i;

	for (i = 0; i < TB_PAGE_SIZE / 8; i++) {
		uint64_t pte = pt[i], mfn, pfn;

		if (level == 4 && i >= L4_XEN_FIRST && i <= L4_XEN_LAST) {
			pt[i] = 0;
			continue;
		}
		if (!(pte & PTE_PRESENT))
			continue;
		if (level > 1 && (pte & PTE_PSE)) {
			*bad_index = i;
			return -ENOTSUP;
		}
		mfn = (pte & PTE_FRAME_MASK) >> TB_PAGE_SHIFT;
		if (tb_xen_mfn_to_pfn(mfn, m2p, m2p_size, p2m, p2m_size,
				      &pfn)) {
			*bad_index = i;
			return -ERANGE;
		}
		pt[i] = (pte & ~PTE_FRAME_MASK) | (pfn << TB_PAGE_SHIFT);
	}
	return 0;
}

uint32_t tb_xen_plug_limit(uint64_t limit, bool pause)
{
	if (!limit)
		limit = 8u << 20;
	if (pause)
		limit *= 2;
	return (uint32_t)TB_MIN(limit, (uint64_t)INT32_MAX);
}

int tb_xen_resolve_mode(enum tb_suspend_mode want, bool published,
			int32_t static_port, bool has_control,
			enum tb_suspend_mode *out)
{
	bool port = published || static_port >= 0;

	switch (want) {
	case TB_SUSPEND_AUTO:
		if (port)
			*out = TB_SUSPEND_EVTCHN;
		else if (has_control)
			*out = TB_SUSPEND_XENSTORE;
		else
			return -ENOTSUP;
		return 0;
	case TB_SUSPEND_EVTCHN:
		if (!port)
			return -ENOTSUP;
		*out = want;
		return 0;
	case TB_SUSPEND_XENSTORE:
		if (!has_control)
			return -ENOTSUP;
		*out = want;
		return 0;
	case TB_SUSPEND_PAUSE:
		*out = want;
		return 0;
	}
	return -EINVAL;
}

bool tb_xen_suspend_cancel(int cfg, int detected)
{
	if (cfg >= 0)
		return cfg > 0;
	return detected > 0;
}
