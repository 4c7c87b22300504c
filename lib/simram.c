// SPDX-License-Identifier: MIT
/*
 * tiber-simguest RAM image: layout, deterministic page content, write
 * transactions and the consistency verifier.
 *
 * Invariants of a consistent image (what tb_sim_verify checks):
 *  - every data page equals tb_sim_page_expect(pfn, gen[pfn], content);
 *  - for every lane L: xor over L's data pages of h(p, gen[p]) equals
 *    lane[L].xor_ledger, and the sum of their gens equals lane[L].seq;
 *  - the KV table's used count equals its occupied entries.
 * A transaction writes content, then the gen, then the ledger; the guest
 * only stops at safepoints between transactions, so a checkpoint taken
 * while suspended satisfies all three.  An image mixing pages of two
 * checkpoints breaks at least one unless the mixed pages are identical.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/simproto.h"

#define WORDS	(TB_PAGE_SIZE / 8)
#define DELTA_K 8

static const char *const content_names[] = { "zero", "text", "random",
					     "delta" };

const char *tb_sim_content_name(unsigned c)
{
	return c < TB_ARRAY_SIZE(content_names) ? content_names[c] : "?";
}

int tb_sim_content_parse(const char *s, unsigned *out)
{
	unsigned i;

	for (i = 0; i < TB_ARRAY_SIZE(content_names); i++) {
		if (!strcmp(s, content_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t tb_sim_hash(uint64_t p, uint64_t g)
{
	if (!g)
		return 0;
	return mix64(p * 0x100000001b3ull ^ mix64(g));
}

static inline uint64_t base_word(uint64_t p, unsigned i)
{
	return mix64((p << 12) ^ i ^ 0x5a5a000000000000ull);
}

static inline unsigned delta_pos(uint64_t p, uint32_t g, unsigned k)
{
	return 1 + (unsigned)(mix64(tb_sim_hash(p, g) + k) % (WORDS - 1));
}

static inline uint64_t delta_val(uint64_t p, uint32_t g, unsigned k)
{
	return mix64(tb_sim_hash(p, g) ^ (0x1000u + k));
}

static const char *const dict[] = {
	"the ",	   "guest ",  "page ",	 "epoch ",  "checkpoint ", "replica ",
	"dirty ",  "write ",  "xen ",	 "domain ", "event ",	   "channel ",
	"store ",  "commit ", "output ", "backup ", "primary ",	   "resume ",
	"cancel ", "\n",      "of ",	 "and ",    "to ",	   "a ",
};

static void text_fill(uint64_t p, uint32_t g, uint8_t *dst)
{
	uint64_t s = tb_sim_hash(p, g);
	size_t o = 0, n;
	const char *w;
	int hl;

	hl = snprintf((char *)dst, TB_PAGE_SIZE, "pfn %llu gen %u\n",
		      (unsigned long long)p, g);
	o = (size_t)hl;
	while (o < TB_PAGE_SIZE) {
		s = mix64(s);
		w = dict[s % TB_ARRAY_SIZE(dict)];
		n = TB_MIN(strlen(w), TB_PAGE_SIZE - o);
		memcpy(dst + o, w, n);
		o += n;
	}
}

void tb_sim_page_expect(uint64_t pfn, uint32_t gen, unsigned content, void *dst)
{
	uint64_t *w = dst;
	uint64_t s;
	unsigned i, k;

	if (gen == 0 || content == TB_SIM_CONTENT_ZERO) {
		memset(dst, 0, TB_PAGE_SIZE);
		return;
	}
	switch (content) {
	case TB_SIM_CONTENT_TEXT:
		text_fill(pfn, gen, dst);
		break;
	case TB_SIM_CONTENT_RANDOM:
		s = tb_sim_hash(pfn, gen);
		for (i = 0; i < WORDS; i++)
			w[i] = mix64(s + i);
		break;
	default: /* delta */
		for (i = 0; i < WORDS; i++)
			w[i] = base_word(pfn, i);
		w[0] = (pfn << 32) | gen;
		for (k = 0; k < DELTA_K; k++)
			w[delta_pos(pfn, gen, k)] = delta_val(pfn, gen, k);
		break;
	}
}

static inline const struct tb_sim_ram_hdr *hdr_of(const void *ram)
{
	return ram;
}

void tb_sim_page_write(void *ram, uint64_t pfn, unsigned lane,
		       void (*mark)(uint64_t pfn, void *arg), void *arg)
{
	struct tb_sim_ram_hdr *h = ram;
	uint8_t *page = (uint8_t *)ram + pfn * TB_PAGE_SIZE;
	uint64_t *w = (uint64_t *)page;
	uint64_t di = pfn - h->data_first;
	uint32_t *gens =
		(uint32_t *)((uint8_t *)ram + h->gen_first * TB_PAGE_SIZE);
	uint32_t old = gens[di], g = old + 1;
	unsigned k;

	switch (h->content) {
	case TB_SIM_CONTENT_ZERO:
		/* a real store, so the page is dirtied, content stays zero */
		__atomic_store_n(&w[(g * 61) % WORDS], 0, __ATOMIC_RELAXED);
		break;
	case TB_SIM_CONTENT_DELTA:
		if (old == 0) {
			tb_sim_page_expect(pfn, g, h->content, page);
			break;
		}
		for (k = 0; k < DELTA_K; k++) {
			unsigned pos = delta_pos(pfn, old, k);

			w[pos] = base_word(pfn, pos);
		}
		w[0] = (pfn << 32) | g;
		for (k = 0; k < DELTA_K; k++)
			w[delta_pos(pfn, g, k)] = delta_val(pfn, g, k);
		break;
	default:
		tb_sim_page_expect(pfn, g, h->content, page);
		break;
	}
	if (mark)
		mark(pfn, arg);
	gens[di] = g;
	if (mark)
		mark(h->gen_first + di * 4 / TB_PAGE_SIZE, arg);
	h->lane[lane].xor_ledger ^= tb_sim_hash(pfn, old) ^ tb_sim_hash(pfn, g);
	h->lane[lane].seq++;
	if (mark)
		mark(0, arg);
}

int tb_sim_ram_format(void *ram, uint64_t nr_pages, unsigned content,
		      unsigned nr_lanes, uint64_t kv_pages)
{
	struct tb_sim_ram_hdr *h = ram;
	struct tb_sim_kv_hdr *kv;
	uint64_t gen_pages = (nr_pages * 4 + TB_PAGE_SIZE - 1) / TB_PAGE_SIZE;
	uint64_t kvhdr_pages =
		(sizeof(struct tb_sim_kv_hdr) + TB_PAGE_SIZE - 1) /
		TB_PAGE_SIZE;

	if (nr_lanes == 0 || nr_lanes > TB_SIM_MAX_LANES ||
	    content > TB_SIM_CONTENT_DELTA)
		return -EINVAL;
	if (kv_pages && kv_pages <= kvhdr_pages)
		return -EINVAL;
	if (nr_pages < 1 + gen_pages + kv_pages + 16)
		return -EINVAL;
	memset(h, 0, sizeof(*h));
	h->magic = TB_SIM_RAM_MAGIC;
	h->version = TB_SIM_VERSION;
	h->content = content;
	h->nr_pages = nr_pages;
	h->gen_first = 1;
	h->gen_pages = gen_pages;
	h->kv_first = 1 + gen_pages;
	h->kv_pages = kv_pages;
	h->data_first = h->kv_first + kv_pages;
	h->nr_data = nr_pages - h->data_first;
	h->nr_lanes = nr_lanes;
	if (kv_pages) {
		kv = (struct tb_sim_kv_hdr *)((uint8_t *)ram +
					      h->kv_first * TB_PAGE_SIZE);
		memset(kv, 0, sizeof(*kv));
		kv->nr_ents = (kv_pages - kvhdr_pages) * TB_PAGE_SIZE /
			      sizeof(struct tb_sim_kv_ent);
	}
	return 0;
}

static void fail(struct tb_sim_verify_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct tb_sim_verify_report *rep, const char *fmt, ...)
{
	va_list ap;

	rep->ok = false;
	if (rep->msg[0])
		return;
	va_start(ap, fmt);
	vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
	va_end(ap);
}

static void verify_kv(const uint8_t *ram, const struct tb_sim_ram_hdr *h,
		      struct tb_sim_verify_report *rep)
{
	const struct tb_sim_kv_hdr *kv =
		(const void *)(ram + h->kv_first * TB_PAGE_SIZE);
	const struct tb_sim_kv_ent *e = (const void *)(kv + 1);
	uint64_t kvhdr_pages =
		(sizeof(struct tb_sim_kv_hdr) + TB_PAGE_SIZE - 1) /
		TB_PAGE_SIZE;
	uint64_t i, used = 0, max;

	if (h->kv_pages <= kvhdr_pages) {
		fail(rep, "kv region of %llu pages too small",
		     (unsigned long long)h->kv_pages);
		return;
	}
	max = (h->kv_pages * TB_PAGE_SIZE - sizeof(*kv)) / sizeof(*e);
	if (kv->nr_ents > max) {
		fail(rep, "kv nr_ents %llu > %llu",
		     (unsigned long long)kv->nr_ents, (unsigned long long)max);
		return;
	}
	for (i = 0; i < kv->nr_ents; i++)
		if (e[i].key[0])
			used++;
	if (used != kv->used)
		fail(rep, "kv table has %llu entries, header says %llu",
		     (unsigned long long)used, (unsigned long long)kv->used);
}

int tb_sim_verify(const void *ram, uint64_t size,
		  struct tb_sim_verify_report *rep)
{
	const uint8_t *b = ram;
	const struct tb_sim_ram_hdr *h = hdr_of(ram);
	const uint32_t *gens;
	uint64_t xl[TB_SIM_MAX_LANES] = { 0 }, sl[TB_SIM_MAX_LANES] = { 0 };
	uint64_t i, pfn;
	uint8_t *exp;
	unsigned l;

	memset(rep, 0, sizeof(*rep));
	if (size < TB_PAGE_SIZE || h->magic != TB_SIM_RAM_MAGIC ||
	    h->version != TB_SIM_VERSION) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "not a tiber-simguest RAM image (magic)");
		return -EINVAL;
	}
	if (h->nr_pages == 0 || h->nr_pages > size / TB_PAGE_SIZE ||
	    h->nr_lanes == 0 || h->nr_lanes > TB_SIM_MAX_LANES ||
	    h->content > TB_SIM_CONTENT_DELTA || h->gen_first != 1 ||
	    h->gen_pages !=
		    (h->nr_pages * 4 + TB_PAGE_SIZE - 1) / TB_PAGE_SIZE ||
	    h->kv_first != 1 + h->gen_pages || h->kv_pages >= h->nr_pages ||
	    h->data_first != h->kv_first + h->kv_pages ||
	    h->data_first >= h->nr_pages ||
	    h->nr_data != h->nr_pages - h->data_first) {
		snprintf(rep->msg, sizeof(rep->msg),
			 "RAM header layout is inconsistent");
		return -EINVAL;
	}
	exp = aligned_alloc(64, TB_PAGE_SIZE);
	if (!exp)
		return -ENOMEM;
	rep->ok = true;
	gens = (const uint32_t *)(b + h->gen_first * TB_PAGE_SIZE);
	for (i = 0; i < h->nr_data; i++) {
		pfn = h->data_first + i;
		l = (unsigned)(i % h->nr_lanes);
		xl[l] ^= tb_sim_hash(pfn, gens[i]);
		sl[l] += gens[i];
		rep->total_writes += gens[i];
		tb_sim_page_expect(pfn, gens[i], h->content, exp);
		rep->pages_checked++;
		if (memcmp(exp, b + pfn * TB_PAGE_SIZE, TB_PAGE_SIZE) != 0) {
			if (!rep->bad_pages) {
				rep->first_bad_pfn = pfn;
				rep->first_bad_gen = gens[i];
			}
			rep->bad_pages++;
			fail(rep,
			     "pfn %llu content does not match its generation %u (%s)",
			     (unsigned long long)pfn, gens[i],
			     tb_sim_content_name(h->content));
		}
	}
	for (l = 0; l < h->nr_lanes; l++) {
		if (xl[l] != h->lane[l].xor_ledger || sl[l] != h->lane[l].seq) {
			rep->bad_lanes++;
			fail(rep,
			     "lane %u: ledger %s, seq %llu vs sum of gens %llu",
			     l,
			     xl[l] == h->lane[l].xor_ledger ? "ok" : "MISMATCH",
			     (unsigned long long)h->lane[l].seq,
			     (unsigned long long)sl[l]);
		}
	}
	if (h->kv_pages)
		verify_kv(b, h, rep);
	free(exp);
	return 0;
}
