// SPDX-License-Identifier: MIT
/*
 * The simulated guest's disk journal ring (include/tiber/simproto.h,
 * "disk"): appended by the guest's block backend after each write
 * reached the image, consumed by the daemon that mirrors it.
 *
 * Invariants:
 * - head moves only under the lock (producers); tail only by the daemon.
 * - Not mirrored: no records, a write marks its blocks in the bitmap.
 * - A record never straddles the end of the ring (a filler pads it).
 * - Records are published (head store, release) after their data, so
 *   the consumer never reads a half-written record.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "tiber/simproto.h"

/* *w is written, by __atomic builtins, which clang-tidy does not see */
// NOLINTNEXTLINE(readability-non-const-parameter)
void tb_sim_spin_lock(uint32_t *w)
{
	unsigned spins = 0;
	uint32_t expect;

	for (;;) {
		expect = 0;
		if (__atomic_compare_exchange_n(w, &expect, 1, false,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		if (++spins > 100)
			sched_yield();
		else
			__builtin_ia32_pause();
	}
}

// NOLINTNEXTLINE(readability-non-const-parameter): as tb_sim_spin_lock()
void tb_sim_spin_unlock(uint32_t *w)
{
	__atomic_store_n(w, 0, __ATOMIC_RELEASE);
}

void tb_sim_disk_lock(struct tb_sim_disk *k)
{
	tb_sim_spin_lock(&k->lock);
}

void tb_sim_disk_unlock(struct tb_sim_disk *k)
{
	tb_sim_spin_unlock(&k->lock);
}

/* Ring bytes of a record (a zero record carries no data). */
static uint64_t rec_bytes(uint32_t len, uint32_t flags)
{
	return sizeof(struct tb_sim_disk_rec) +
	       (flags & TB_SIM_DISK_REC_ZERO ? 0 :
					       TB_ALIGN_UP((uint64_t)len, 8));
}

uint64_t tb_sim_disk_map_len(uint64_t disk_size, uint64_t ring)
{
	uint64_t blocks = (disk_size + TB_PAGE_SIZE - 1) / TB_PAGE_SIZE;

	return TB_SIM_DISK_HDR + ring + TB_ALIGN_UP((blocks + 7) / 8, 4096);
}

static void mark(struct tb_sim_disk *k, uint64_t off, uint32_t len)
{
	uint64_t *bm = (uint64_t *)((uint8_t *)k + k->bitmap_off);
	uint64_t b = off / TB_PAGE_SIZE, e = (off + len - 1) / TB_PAGE_SIZE;

	for (; b <= e && b / 64 < k->bitmap_len / 8; b++)
		__atomic_fetch_or(&bm[b / 64], 1ull << (b % 64),
				  __ATOMIC_RELAXED);
	k->marked++;
}

/* Room for @need ring bytes (a record does not wrap: it may need a
 * filler to the end of the ring first). */
static bool fits(const struct tb_sim_disk *k, uint64_t need)
{
	uint64_t head = k->head, at = head & (k->ring_size - 1);
	uint64_t room = k->ring_size - (head - TB_LD(&k->tail));

	if (k->ring_size - at < need)
		need += k->ring_size - at;
	return room >= need;
}

bool tb_sim_disk_fits(const struct tb_sim_disk *k, uint32_t len)
{
	return fits(k, rec_bytes(len, 0));
}

static int append(struct tb_sim_disk *k, uint8_t *ring, uint64_t off,
		  const void *data, uint32_t len, uint32_t flags)
{
	uint64_t need = rec_bytes(len, flags), head = k->head, at;
	struct tb_sim_disk_rec r = { .len = len,
				     .flags = flags,
				     .offset = off };

	if (!len || need > k->ring_size / 2)
		return -EMSGSIZE;
	if (!TB_LD(&k->mirror)) {
		mark(k, off, len);
		return 0;
	}
	if (!fits(k, need))
		return -EAGAIN;
	at = head & (k->ring_size - 1);
	if (k->ring_size - at < need) {
		struct tb_sim_disk_rec fill = { 0 };

		memcpy(ring + at, &fill, sizeof(fill));
		head += k->ring_size - at;
		at = 0;
	}
	r.tag = TB_LD(&k->cur_epoch) + 1;
	memcpy(ring + at, &r, sizeof(r));
	if (data)
		memcpy(ring + at + sizeof(r), data, len);
	__atomic_store_n(&k->head, head + need, __ATOMIC_RELEASE);
	return 0;
}

int tb_sim_disk_append(struct tb_sim_disk *k, uint8_t *ring, uint64_t off,
		       const void *data, uint32_t len)
{
	return append(k, ring, off, data, len, 0);
}

int tb_sim_disk_append_zero(struct tb_sim_disk *k, uint8_t *ring, uint64_t off,
			    uint32_t len)
{
	return append(k, ring, off, NULL, len, TB_SIM_DISK_REC_ZERO);
}

int tb_sim_disk_view_init(struct tb_sim_disk_view *v, struct tb_sim_disk *k,
			  uint64_t disk_size, uint64_t ring_size)
{
	uint64_t map_len = tb_sim_disk_map_len(disk_size, ring_size);

	if (!ring_size || (ring_size & (ring_size - 1)) ||
	    k->magic != TB_SIM_DISK_MAGIC || k->disk_size != disk_size ||
	    k->ring_size != ring_size ||
	    k->bitmap_off != TB_SIM_DISK_HDR + ring_size ||
	    k->bitmap_len != map_len - k->bitmap_off)
		return -EPROTO;
	v->k = k;
	v->ring = (const uint8_t *)k + TB_SIM_DISK_HDR;
	v->ring_size = ring_size;
	v->bm = (uint64_t *)((uint8_t *)k + TB_SIM_DISK_HDR + ring_size);
	v->bm_words = (size_t)((map_len - TB_SIM_DISK_HDR - ring_size) / 8);
	return 0;
}

int tb_sim_disk_peek(const struct tb_sim_disk_view *v, uint64_t upto,
		     struct tb_sim_disk_rec *rec, const uint8_t **data)
{
	struct tb_sim_disk *k = v->k;
	uint64_t head = __atomic_load_n(&k->head, __ATOMIC_ACQUIRE);
	uint64_t tail = TB_LD(&k->tail), at;

	/* the daemon trusts no index it reads: only its own ring size */
	if (head - tail > v->ring_size)
		return -EPROTO;
	for (;;) {
		if (tail == head)
			return 0;
		at = tail & (v->ring_size - 1);
		memcpy(rec, v->ring + at, sizeof(*rec));
		if (rec->len)
			break;
		tail += v->ring_size - at; /* filler */
		TB_ST(&k->tail, tail);
	}
	if ((rec->flags & ~TB_SIM_DISK_REC_ZERO) ||
	    (!(rec->flags & TB_SIM_DISK_REC_ZERO) &&
	     rec->len > v->ring_size / 2) ||
	    at + rec_bytes(rec->len, rec->flags) > v->ring_size)
		return -EPROTO;
	if (rec->tag > upto)
		return 0;
	*data = rec->flags & TB_SIM_DISK_REC_ZERO ? NULL :
						    v->ring + at + sizeof(*rec);
	return 1;
}

void tb_sim_disk_pop(const struct tb_sim_disk_view *v,
		     const struct tb_sim_disk_rec *rec)
{
	TB_ST(&v->k->tail,
	      TB_LD(&v->k->tail) + rec_bytes(rec->len, rec->flags));
}

void tb_sim_disk_set_mirror(struct tb_sim_disk *k, bool on)
{
	tb_sim_disk_lock(k);
	if (on)
		TB_ST(&k->tail,
		      TB_LD(&k->head)); /* older writes: in the image */
	TB_ST(&k->mirror, on ? 1u : 0u);
	tb_sim_disk_unlock(k);
}

void tb_sim_disk_harvest(const struct tb_sim_disk_view *v, uint64_t *out,
			 size_t nwords)
{
	size_t i, n = TB_MIN(nwords, v->bm_words);
	uint64_t w;

	for (i = 0; i < n; i++) {
		if (!__atomic_load_n(&v->bm[i], __ATOMIC_RELAXED))
			continue;
		w = __atomic_exchange_n(&v->bm[i], 0, __ATOMIC_ACQ_REL);
		out[i] |= w;
	}
}
