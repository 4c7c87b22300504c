// SPDX-License-Identifier: MIT
/* Simulated hypervisor protocol: store, event channels, gate, verifier,
 * state blobs. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "check_main.h"
#include "tiber/simproto.h"

static struct tb_sim_ctrl *new_ctrl(int *fds)
{
	struct tb_sim_ctrl *c = calloc(1, sizeof(*c));
	int i;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < TB_SIM_NR_EVTFDS; i++) {
		fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
	}
	return c;
}

static void free_ctrl(struct tb_sim_ctrl *c, int *fds)
{
	int i;

	for (i = 0; i < TB_SIM_NR_EVTFDS; i++)
		close(fds[i]);
	free(c);
}

START_TEST(store_write_read_cmpxchg)
{
	struct tb_sim_store s;
	char v[TB_SIM_VAL_MAX], key[16];
	int i;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(tb_sim_store_read(&s, "a", v, sizeof(v)), -ENOENT);
	ck_assert_int_eq(tb_sim_store_write(&s, "control/shutdown", "suspend"),
			 0);
	ck_assert_int_eq(
		tb_sim_store_read(&s, "control/shutdown", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "suspend");
	ck_assert_uint_eq(s.seq % 2, 0);
	ck_assert_uint_eq(s.watch_gen, 1);
	ck_assert_int_eq(tb_sim_store_cmpxchg(&s, "control/shutdown",
					      "poweroff", ""),
			 -EAGAIN);
	ck_assert_int_eq(
		tb_sim_store_cmpxchg(&s, "control/shutdown", "suspend", ""), 0);
	ck_assert_int_eq(tb_sim_store_read(&s, "control/shutdown", v,
					   sizeof(v)),
			 -ENOENT);
	ck_assert_int_eq(tb_sim_store_write(&s, "k", ""), 0);
	ck_assert_int_eq(tb_sim_store_rm(&s, "k"), 0);
	ck_assert_int_eq(tb_sim_store_rm(&s, "k"), -ENOENT);
	for (i = 0; i < TB_SIM_STORE_SLOTS; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		ck_assert_int_eq(tb_sim_store_write(&s, key, "x"), 0);
	}
	ck_assert_int_eq(tb_sim_store_write(&s, "onemore", "x"), -ENOSPC);
	ck_assert_int_eq(tb_sim_store_write(&s, "key3", "overwrite"), 0);
	ck_assert_int_eq(tb_sim_store_read(&s, "key3", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "overwrite");
	{
		char big[TB_SIM_VAL_MAX + 1];

		memset(big, 'x', sizeof(big));
		big[TB_SIM_VAL_MAX] = 0; /* one too long */
		ck_assert_int_eq(tb_sim_store_write(&s, "key4", big), -E2BIG);
		big[TB_SIM_VAL_MAX - 1] = 0; /* fits with its NUL */
		ck_assert_int_eq(tb_sim_store_write(&s, "key4", big), 0);
	}
}
END_TEST

START_TEST(evtchn_alloc_notify_wait)
{
	int fds[TB_SIM_NR_EVTFDS];
	struct tb_sim_ctrl *c = new_ctrl(fds);
	struct tb_sim_waitset ws = {
		.n = 2, .port = { 8, 9 }, .end = { 0, 0 }, .extra_fd = -1
	};
	int p;

	c->port[1].state = TB_SIM_PORT_RESERVED;
	p = tb_sim_evtchn_alloc(c, 0);
	ck_assert_int_eq(p, TB_SIM_PORT_FIRST_DYN);
	ck_assert_int_eq(tb_sim_evtchn_alloc(c, 0), p + 1);
	ck_assert_int_eq(tb_sim_evtchn_alloc(c, p), -EBUSY);
	ck_assert_int_eq(tb_sim_evtchn_alloc(c, 12), 12);
	ck_assert_int_eq(tb_sim_evtchn_wait(c, fds, &ws, 1000,
					    tb_now_ns() + 1000000),
			 -ETIMEDOUT);
	tb_sim_evtchn_notify(c, fds, 9, 0);
	ck_assert_int_eq(tb_sim_evtchn_wait(c, fds, &ws, 0, 0), 1);
	/* consumed: a second wait times out */
	ck_assert_int_eq(tb_sim_evtchn_wait(c, fds, &ws, 0,
					    tb_now_ns() + 1000000),
			 -ETIMEDOUT);
	tb_sim_evtchn_notify(c, fds, 8, 1); /* other end: not ours */
	ck_assert_int_eq(tb_sim_evtchn_wait(c, fds, &ws, 0,
					    tb_now_ns() + 1000000),
			 -ETIMEDOUT);
	ck_assert(tb_sim_evtchn_retract(c, 8, 1));
	ck_assert(!tb_sim_evtchn_retract(c, 8, 1));
	tb_sim_evtchn_free(c, 12);
	ck_assert_int_eq(tb_sim_evtchn_alloc(c, 12), 12);
	free_ctrl(c, fds);
}
END_TEST

/* Ping-pong between two threads through two ports, no spinning at all on
 * one side: any lost wake-up hangs (and the timeout fails the test). */
struct pp {
	struct tb_sim_ctrl *c;
	int *fds;
	unsigned n;
	int64_t spin;
};

static void *ponger(void *arg)
{
	struct pp *p = arg;
	struct tb_sim_waitset ws = {
		.n = 1, .port = { 8 }, .end = { 0 }, .extra_fd = -1
	};
	unsigned i;

	for (i = 0; i < p->n; i++) {
		if (tb_sim_evtchn_wait(p->c, p->fds, &ws, p->spin, 0) != 0)
			return (void *)1;
		tb_sim_evtchn_notify(p->c, p->fds, 8, 1);
	}
	return NULL;
}

START_TEST(evtchn_no_lost_wakeup_stress)
{
	int fds[TB_SIM_NR_EVTFDS];
	struct tb_sim_ctrl *c = new_ctrl(fds);
	struct tb_sim_waitset ws = {
		.n = 1, .port = { 8 }, .end = { 1 }, .extra_fd = -1
	};
	struct pp p = { c, fds, tb_check_scale(200000, 20000), 0 };
	pthread_t t;
	void *ret;
	unsigned i;
	int64_t spins[] = { 0, 2000 };
	unsigned k;

	for (k = 0; k < 2; k++) {
		p.spin = spins[k];
		pthread_create(&t, NULL, ponger, &p);
		for (i = 0; i < p.n; i++) {
			tb_sim_evtchn_notify(c, fds, 8, 0);
			ck_assert_int_eq(tb_sim_evtchn_wait(c, fds, &ws,
							    spins[1 - k], 0),
					 0);
		}
		pthread_join(t, &ret);
		ck_assert_ptr_null(ret);
	}
	free_ctrl(c, fds);
}
END_TEST

static uint8_t ring[4096];

START_TEST(gate_holds_until_released_in_order)
{
	struct tb_sim_gate g;
	struct tb_sim_gate_rec rec;
	uint8_t buf[4096];
	char msg[64];
	int i, n;

	memset(&g, 0, sizeof(g));
	g.ring_size = sizeof(ring);
	g.mode = TB_SIM_GATE_GATED;
	g.cur_epoch = 4; /* output now belongs to epoch 5 */
	ck_assert_int_eq(tb_sim_gate_append(&g, ring, 1, "a-5", 3), 0);
	g.cur_epoch = 5; /* boundary */
	ck_assert_int_eq(tb_sim_gate_append(&g, ring, 2, "b-6", 3), 0);
	ck_assert_uint_eq(g.held_bytes, 6);
	ck_assert_int_eq(tb_sim_gate_peek(&g, ring, &rec, buf, sizeof(buf)), 0);
	g.released_epoch = 4;
	ck_assert_int_eq(tb_sim_gate_peek(&g, ring, &rec, buf, sizeof(buf)), 0);
	g.released_epoch = 5;
	ck_assert_int_eq(tb_sim_gate_peek(&g, ring, &rec, buf, sizeof(buf)), 1);
	ck_assert_uint_eq(rec.tag, 5);
	ck_assert_uint_eq(rec.conn, 1);
	ck_assert(!memcmp(buf, "a-5", 3));
	tb_sim_gate_pop(&g, &rec, true);
	/* epoch 6 is still held */
	ck_assert_int_eq(tb_sim_gate_peek(&g, ring, &rec, buf, sizeof(buf)), 0);
	g.mode = TB_SIM_GATE_OPEN; /* open: everything flows */
	ck_assert_int_eq(tb_sim_gate_peek(&g, ring, &rec, buf, sizeof(buf)), 1);
	ck_assert_uint_eq(rec.tag, 6);
	tb_sim_gate_pop(&g, &rec, false);
	ck_assert_uint_eq(g.released_bytes, 3);
	ck_assert_uint_eq(g.dropped_bytes, 3);
	ck_assert_uint_eq(g.held_bytes, 0);

	/* fill to backpressure, wrapping around, then drain in order */
	g.mode = TB_SIM_GATE_GATED;
	for (n = 0;; n++) {
		snprintf(msg, sizeof(msg), "message %04d", n);
		if (tb_sim_gate_append(&g, ring, 3, msg, 12) == -EAGAIN)
			break;
	}
	ck_assert_int_gt(n, 100);
	ck_assert_int_eq(tb_sim_gate_append(&g, ring, 3, buf, 5000), -EMSGSIZE);
	g.released_epoch = 6;
	for (i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg), "message %04d", i);
		ck_assert_int_eq(
			tb_sim_gate_peek(&g, ring, &rec, buf, sizeof(buf)), 1);
		ck_assert(!memcmp(buf, msg, 12));
		tb_sim_gate_pop(&g, &rec, true);
	}
	ck_assert_int_eq(tb_sim_gate_peek(&g, ring, &rec, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(tb_sim_gate_room(&g), sizeof(ring));
}
END_TEST

#define NPAGES 512

static void *image(void)
{
	void *p = aligned_alloc(4096, NPAGES * 4096);

	ck_assert_ptr_nonnull(p);
	memset(p, 0, NPAGES * 4096);
	return p;
}

static void run_writes(uint8_t *ram, unsigned lanes, unsigned n, uint64_t seed)
{
	struct tb_sim_ram_hdr *h = (void *)ram;
	unsigned i;

	for (i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1;
		tb_sim_page_write(ram,
				  h->data_first + (seed >> 33) % h->nr_data, 0,
				  NULL, NULL);
	}
	(void)lanes;
}

START_TEST(verifier_accepts_consistent_rejects_torn)
{
	struct tb_sim_verify_report rep;
	struct tb_sim_ram_hdr *h;
	unsigned content;
	uint8_t *a, *b, *torn;
	uint64_t p, mixed;
	const uint32_t *ga, *gb;

	for (content = 0; content <= TB_SIM_CONTENT_DELTA; content++) {
		a = image();
		ck_assert_int_eq(tb_sim_ram_format(a, NPAGES, content, 1, 0),
				 0);
		h = (void *)a;
		ck_assert_int_eq(tb_sim_verify(a, NPAGES * 4096, &rep), 0);
		ck_assert_msg(rep.ok, "%s", rep.msg);
		run_writes(a, 1, 3000, content + 1);
		ck_assert_int_eq(tb_sim_verify(a, NPAGES * 4096, &rep), 0);
		ck_assert_msg(rep.ok, "%s", rep.msg);
		ck_assert_uint_eq(rep.total_writes, 3000);
		/* checkpoint A; run on; checkpoint B */
		b = image();
		memcpy(b, a, NPAGES * 4096);
		run_writes(b, 1, 500, content + 100);
		ck_assert_int_eq(tb_sim_verify(b, NPAGES * 4096, &rep), 0);
		ck_assert(rep.ok);
		/* torn: B, with A's version of every other changed data page */
		torn = image();
		memcpy(torn, b, NPAGES * 4096);
		ga = (const void *)(a + h->gen_first * 4096);
		gb = (const void *)(b + h->gen_first * 4096);
		mixed = 0;
		for (p = 0; p < h->nr_data; p++) {
			if (ga[p] != gb[p] && (mixed++ % 2 == 0))
				memcpy(torn + (h->data_first + p) * 4096,
				       a + (h->data_first + p) * 4096, 4096);
		}
		ck_assert_uint_gt(mixed, 1);
		ck_assert_int_eq(tb_sim_verify(torn, NPAGES * 4096, &rep), 0);
		if (content != TB_SIM_CONTENT_ZERO) {
			ck_assert(!rep.ok);
			ck_assert_uint_eq(rep.bad_pages, (mixed + 1) / 2);
		}
		/* torn the other way: A's data with B's gen table/ledger is
		 * caught for every content kind (zero pages too) */
		memcpy(torn, a, NPAGES * 4096);
		memcpy(torn + h->gen_first * 4096, b + h->gen_first * 4096,
		       h->gen_pages * 4096);
		ck_assert_int_eq(tb_sim_verify(torn, NPAGES * 4096, &rep), 0);
		ck_assert(!rep.ok);
		ck_assert_uint_gt(rep.bad_lanes, 0);
		/* header from A, everything else B */
		memcpy(torn, b, NPAGES * 4096);
		memcpy(torn, a, 4096);
		ck_assert_int_eq(tb_sim_verify(torn, NPAGES * 4096, &rep), 0);
		ck_assert(!rep.ok);
		ck_assert_ptr_nonnull(strstr(rep.msg, "lane 0"));
		/* one flipped byte in one data page */
		memcpy(torn, b, NPAGES * 4096);
		torn[(h->data_first + 17) * 4096 + 1234] ^= 0x40;
		ck_assert_int_eq(tb_sim_verify(torn, NPAGES * 4096, &rep), 0);
		ck_assert(!rep.ok);
		ck_assert_uint_eq(rep.bad_pages, 1);
		ck_assert_uint_eq(rep.first_bad_pfn, h->data_first + 17);
		free(a);
		free(b);
		free(torn);
	}
}
END_TEST

START_TEST(verifier_rejects_garbage)
{
	struct tb_sim_verify_report rep;
	uint8_t *a = image();
	struct tb_sim_ram_hdr *h = (void *)a;

	ck_assert_int_eq(tb_sim_verify(a, NPAGES * 4096, &rep), -EINVAL);
	ck_assert_int_eq(tb_sim_ram_format(a, NPAGES, 3, 2, 0), 0);
	ck_assert_int_eq(tb_sim_verify(a, 4096, &rep), -EINVAL); /* short */
	h->nr_lanes = 1000;
	ck_assert_int_eq(tb_sim_verify(a, NPAGES * 4096, &rep), -EINVAL);
	ck_assert_int_eq(tb_sim_ram_format(a, 8, 3, 2, 0), -EINVAL);
	free(a);
}
END_TEST

/* A KV region so large that kv_first + kv_pages wraps to a data_first
 * inside the image: the verifier read the KV table's nr_ents entries
 * far past the image (found with tests/fuzz/fuzz_simblob.c). */
START_TEST(verifier_rejects_a_layout_that_wraps)
{
	struct tb_sim_verify_report rep;
	uint8_t *a = image();
	struct tb_sim_ram_hdr *h = (void *)a;
	struct tb_sim_kv_hdr *kv;

	ck_assert_int_eq(tb_sim_ram_format(a, NPAGES, 0, 1, 9), 0);
	ck_assert_int_eq(tb_sim_verify(a, NPAGES * 4096, &rep), 0);
	ck_assert(rep.ok);
	kv = (void *)(a + h->kv_first * 4096);
	kv->nr_ents = 1000000000;
	h->kv_pages = UINT64_MAX; /* kv_first + kv_pages = kv_first - 1 */
	h->data_first = h->kv_first - 1;
	h->nr_data = h->nr_pages - h->data_first;
	ck_assert_int_eq(tb_sim_verify(a, NPAGES * 4096, &rep), -EINVAL);
	ck_assert_str_eq(rep.msg, "RAM header layout is inconsistent");
	free(a);
}
END_TEST

START_TEST(blobs_round_trip_and_reject_bad_input)
{
	struct tb_sim_vcpu v[3] = { { 0 } }, w[TB_SIM_MAX_VCPUS];
	struct tb_sim_dev_state d, e;
	struct tb_buf b = { 0 };
	uint32_t nr;
	size_t used, used2;
	unsigned i;

	for (i = 0; i < 3; i++) {
		v[i].id = i;
		v[i].kind = 1;
		v[i].rng = 0x1122334455667788ull + i;
		v[i].pos = 10 + i;
		v[i].ops = 1000 + i;
		v[i].lane_seq = 77 + i;
	}
	memset(&d, 0, sizeof(d));
	d.features = TB_SIM_FEAT_SUSPEND_CANCEL;
	d.gate_cur_epoch = 42;
	d.gate_released_epoch = 41;
	d.gate_mode = 1;
	d.suspends = 9;
	strcpy(d.slot[0].key, "name");
	strcpy(d.slot[0].val, "g1");
	ck_assert_int_eq(tb_sim_blob_put_cpu(&b, v, 3), 0);
	ck_assert_uint_eq(b.len, 16 + 3 * 64);
	/* little-endian on the wire: magic "TCPU" */
	ck_assert(!memcmp(b.data, "TCPU", 4));
	ck_assert_int_eq(tb_sim_blob_put_dev(&b, &d), 0);
	ck_assert_int_eq(tb_sim_blob_get_cpu(b.data, b.len, w, &nr, &used), 0);
	ck_assert_uint_eq(nr, 3);
	ck_assert_uint_eq(w[2].rng, v[2].rng);
	ck_assert_uint_eq(w[1].lane_seq, 78);
	ck_assert_int_eq(tb_sim_blob_get_dev(b.data + used, b.len - used, &e,
					     &used2),
			 0);
	ck_assert_uint_eq(used + used2, b.len);
	ck_assert_uint_eq(e.gate_cur_epoch, 42);
	ck_assert_uint_eq(e.nr_slots, TB_SIM_STORE_SLOTS);
	ck_assert_str_eq(e.slot[0].val, "g1");
	/* truncated, wrong magic, lying length, unterminated string */
	ck_assert_int_eq(tb_sim_blob_get_cpu(b.data, used - 1, w, &nr, &used2),
			 -EPROTO);
	ck_assert_int_eq(tb_sim_blob_get_dev(b.data, b.len, &e, &used2),
			 -EPROTO);
	b.data[12] = 0xff;
	ck_assert_int_eq(tb_sim_blob_get_cpu(b.data, b.len, w, &nr, &used2),
			 -EPROTO);
	b.data[12] = 3 * 64;
	memset(b.data + used + 16 + 56, 'x', TB_SIM_KEY_MAX);
	ck_assert_int_eq(tb_sim_blob_get_dev(b.data + used, b.len - used, &e,
					     &used2),
			 -EPROTO);
	tb_buf_free(&b);
}
END_TEST

/* A disk journal jr of @size bytes (header page + jr). */
static struct tb_sim_disk *disk_ring(uint64_t size, uint8_t **data)
{
	uint64_t len = tb_sim_disk_map_len(1 << 20, size);
	struct tb_sim_disk *k = calloc(1, len);

	ck_assert_ptr_nonnull(k);
	k->magic = TB_SIM_DISK_MAGIC;
	k->disk_size = 1 << 20;
	k->ring_size = size;
	k->bitmap_off = TB_SIM_DISK_HDR + size;
	k->bitmap_len = len - k->bitmap_off;
	*data = (uint8_t *)k + TB_SIM_DISK_HDR;
	return k;
}

START_TEST(disk_journal_keeps_order_tags_and_room)
{
	uint8_t *jr, buf[4096], seen = 0;
	struct tb_sim_disk *k = disk_ring(16384, &jr);
	struct tb_sim_disk_view v;
	struct tb_sim_disk_rec rec;
	const uint8_t *data;
	uint64_t bm[4] = { 0 };
	unsigned i, n;

	ck_assert_int_eq(tb_sim_disk_view_init(&v, k, 1 << 20, 16384), 0);
	/* not mirrored: no records, the written blocks are marked */
	for (i = 0; i < 10; i++) {
		memset(buf, (int)i, sizeof(buf));
		ck_assert_int_eq(tb_sim_disk_append(k, jr, i * 8192ull, buf,
						    sizeof(buf)),
				 0);
	}
	ck_assert_int_eq(tb_sim_disk_append(k, jr, 4096 * 63 - 512, buf, 1024),
			 0); /* straddles blocks 62 and 63 */
	ck_assert_uint_eq(k->head, 0);
	ck_assert_uint_eq(k->marked, 11);
	tb_sim_disk_harvest(&v, bm, 4);
	ck_assert_uint_eq(bm[0], 0x55555ull | (3ull << 62));
	memset(bm, 0, sizeof(bm));
	tb_sim_disk_harvest(&v, bm, 4); /* harvesting cleared them */
	ck_assert_uint_eq(bm[0], 0);
	/* mirroring starts */
	k->cur_epoch = 4;
	tb_sim_disk_set_mirror(k, true);
	ck_assert_int_eq(tb_sim_disk_peek(&v, 100, &rec, &data), 0);
	/* epochs: cur_epoch + 1 at append time */
	for (i = 0; i < 3; i++) {
		memset(buf, 'a' + (int)i, 512);
		ck_assert_int_eq(
			tb_sim_disk_append(k, jr, 512ull * i, buf, 512), 0);
		k->cur_epoch++; /* a boundary after each */
	}
	/* only epochs <= 5 now */
	ck_assert_int_eq(tb_sim_disk_peek(&v, 5, &rec, &data), 1);
	ck_assert_uint_eq(rec.tag, 5);
	ck_assert_uint_eq(rec.offset, 0);
	ck_assert_uint_eq(data[0], 'a');
	tb_sim_disk_pop(&v, &rec);
	ck_assert_int_eq(tb_sim_disk_peek(&v, 5, &rec, &data), 0);
	for (n = 0; tb_sim_disk_peek(&v, 7, &rec, &data) == 1; n++) {
		ck_assert_uint_eq(rec.tag, 6 + n);
		ck_assert_uint_eq(data[0], 'b' + n);
		tb_sim_disk_pop(&v, &rec);
	}
	ck_assert_uint_eq(n, 2);
	/* mirrored and full: the producer is told to wait, nothing lost */
	n = 0;
	while (tb_sim_disk_append(k, jr, 0, buf, 3000) == 0)
		n++;
	ck_assert_int_eq(tb_sim_disk_append(k, jr, 0, buf, 3000), -EAGAIN);
	ck_assert(!tb_sim_disk_fits(k, 3000));
	/* records wrap with a filler and come back in order */
	for (i = 0; i < 40; i++) {
		while (!tb_sim_disk_fits(k, 1000)) {
			ck_assert_int_eq(
				tb_sim_disk_peek(&v, ~0ull, &rec, &data), 1);
			ck_assert(rec.len == 1000 || rec.len == 3000);
			if (rec.len == 1000) {
				ck_assert_uint_eq(data[0], seen);
				seen++;
			}
			tb_sim_disk_pop(&v, &rec);
		}
		memset(buf, (int)i, 1000);
		ck_assert_int_eq(tb_sim_disk_append(k, jr, 0, buf, 1000), 0);
	}
	while (tb_sim_disk_peek(&v, ~0ull, &rec, &data) == 1) {
		if (rec.len == 1000)
			ck_assert_uint_eq(data[0], seen++);
		tb_sim_disk_pop(&v, &rec);
	}
	ck_assert_uint_eq(seen, 40);
	ck_assert_uint_eq(k->head, k->tail);
	/* zeroes: a record without data, of any length */
	k->cur_epoch = 20;
	ck_assert_int_eq(tb_sim_disk_append_zero(k, jr, 8192, 1 << 20), 0);
	ck_assert_int_eq(tb_sim_disk_append(k, jr, 0, buf, 512), 0);
	ck_assert_int_eq(tb_sim_disk_peek(&v, 21, &rec, &data), 1);
	ck_assert(rec.flags == TB_SIM_DISK_REC_ZERO && rec.len == 1 << 20 &&
		  rec.offset == 8192 && !data);
	tb_sim_disk_pop(&v, &rec);
	ck_assert_int_eq(tb_sim_disk_peek(&v, 21, &rec, &data), 1);
	ck_assert(rec.flags == 0 && rec.len == 512 && data);
	tb_sim_disk_pop(&v, &rec);
	ck_assert_uint_eq(k->head, k->tail);
	ck_assert_int_eq(tb_sim_disk_append(k, jr, 0, buf, 9000), -EMSGSIZE);
	free(k);
}
END_TEST

/* A guest that rewrites the journal's header after the daemon checked it
 * moves no read out of the mapping: the daemon reads by its own view. */
START_TEST(disk_journal_header_rewritten_by_the_guest)
{
	uint8_t *jr, buf[512] = { 0 };
	struct tb_sim_disk *k = disk_ring(16384, &jr);
	struct tb_sim_disk_view v;
	struct tb_sim_disk_rec rec;
	const uint8_t *data;
	uint64_t bm[4] = { 0 };

	ck_assert_int_eq(tb_sim_disk_view_init(&v, k, 1 << 20, 16384), 0);
	tb_sim_disk_set_mirror(k, true);
	ck_assert_int_eq(tb_sim_disk_append(k, jr, 0, buf, sizeof(buf)), 0);
	/* the guest grows the ring and moves the bitmap far away */
	k->ring_size = 1ull << 40;
	k->bitmap_off = 1ull << 40;
	k->bitmap_len = 1ull << 40;
	ck_assert_int_eq(tb_sim_disk_peek(&v, ~0ull, &rec, &data), 1);
	ck_assert(data >= jr && data + rec.len <= jr + 16384);
	tb_sim_disk_pop(&v, &rec);
	tb_sim_disk_harvest(&v, bm, 4); /* in the real bitmap: ASan checks */
	/* indices far apart: refused at once, not followed */
	k->head = k->tail + (1ull << 40);
	ck_assert_int_eq(tb_sim_disk_peek(&v, ~0ull, &rec, &data), -EPROTO);
	k->head = k->tail + 24;
	k->tail += 16384 * 1000 + 100; /* lands anywhere: masked */
	k->head = k->tail + 24;
	ck_assert_int_ge(tb_sim_disk_peek(&v, ~0ull, &rec, &data), -EPROTO);
	/* a view of a bad header is refused */
	k->ring_size = 16384;
	k->bitmap_off = TB_SIM_DISK_HDR + 16384;
	ck_assert_int_eq(tb_sim_disk_view_init(&v, k, 1 << 20, 8192), -EPROTO);
	free(k);
}
END_TEST

/* A KV RAM image with @n logged SETs, the log in a temp file. */
static uint8_t *kv_image(int fd, unsigned n, uint64_t *ram_len)
{
	const uint64_t pages = 256;
	uint8_t *ram = calloc(pages, 4096);
	struct tb_sim_ram_hdr *h = (void *)ram;
	struct tb_sim_kv_hdr *kh;
	struct tb_sim_kvlog_rec r;
	struct tb_sim_kv_ent *e;
	char key[16], val[16];
	unsigned i;

	ck_assert_int_eq(
		tb_sim_ram_format(ram, pages, TB_SIM_CONTENT_ZERO, 1, 64), 0);
	h->boot_id = 0xb007;
	kh = (void *)(ram + h->kv_first * 4096);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%u", i % 5);
		snprintf(val, sizeof(val), "v%u", i);
		tb_sim_kvlog_make(&r, i, h->boot_id, 9, i + 1, key, val);
		ck_assert_int_eq(pwrite(fd, &r, sizeof(r), i * sizeof(r)),
				 (ssize_t)sizeof(r));
		e = tb_sim_kv_find(kh, key);
		if (!e->key[0]) {
			strcpy(e->key, key);
			kh->used++;
		}
		memset(e->val, 0, sizeof(e->val));
		strcpy(e->val, val);
		kh->log_head++;
	}
	*ram_len = pages * 4096;
	return ram;
}

START_TEST(disk_verifier_proves_disk_and_memory_agree)
{
	char path[PATH_MAX];
	struct tb_sim_verify_report rep;
	struct tb_sim_kvlog_rec r;
	struct tb_sim_kv_hdr *kh;
	uint64_t len, dsize = 1 << 20;
	uint8_t *ram;
	int fd;

	snprintf(path, sizeof(path), "%s/tiber-test-kvlog.XXXXXX",
		 tb_test_tmp());
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(ftruncate(fd, (off_t)dsize), 0);
	ram = kv_image(fd, 12, &len);
	kh = (void *)(ram + ((struct tb_sim_ram_hdr *)ram)->kv_first * 4096);
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep), 0);
	ck_assert_msg(rep.ok, "%s", rep.msg);
	ck_assert_uint_eq(rep.total_writes, 12);
	/* the disk is behind memory: a record is missing */
	kh->log_head++;
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep), 0);
	ck_assert(!rep.ok && strstr(rep.msg, "behind"));
	kh->log_head--;
	/* ahead: a record beyond log_head */
	tb_sim_kvlog_make(&r, 12, 0xb007, 9, 13, "k1", "x");
	ck_assert_int_eq(pwrite(fd, &r, sizeof(r), 12 * sizeof(r)),
			 (ssize_t)sizeof(r));
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep), 0);
	ck_assert(!rep.ok && strstr(rep.msg, "ahead"));
	/* ... unless it is another boot's (a reused image) */
	tb_sim_kvlog_make(&r, 12, 0xdead, 9, 13, "k1", "x");
	ck_assert_int_eq(pwrite(fd, &r, sizeof(r), 12 * sizeof(r)),
			 (ssize_t)sizeof(r));
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep), 0);
	ck_assert_msg(rep.ok, "%s", rep.msg);
	/* memory's value differs from the log's last one */
	tb_sim_kv_find(kh, "k2")->val[1] = '9';
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep), 0);
	ck_assert(!rep.ok && strstr(rep.msg, "k2"));
	/* a torn record (one flipped byte) */
	tb_sim_kv_find(kh, "k2")->val[1] = '7';
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep), 0);
	ck_assert_msg(rep.ok, "%s", rep.msg);
	ck_assert_int_eq(pwrite(fd, "Z", 1, 3 * sizeof(r) + 50), 1);
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep), 0);
	ck_assert(!rep.ok && strstr(rep.msg, "record 3 "));
	/* not a KV image */
	memset(ram, 0, 4096);
	ck_assert_int_eq(tb_sim_verify_disk(ram, len, fd, dsize, &rep),
			 -EINVAL);
	free(ram);
	close(fd);
}
END_TEST

static Suite *simproto_suite(void)
{
	Suite *s = suite_create("simproto");
	TCase *tc = tcase_create("proto");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, store_write_read_cmpxchg);
	tcase_add_test(tc, evtchn_alloc_notify_wait);
	tcase_add_test(tc, evtchn_no_lost_wakeup_stress);
	tcase_add_test(tc, gate_holds_until_released_in_order);
	tcase_add_test(tc, verifier_accepts_consistent_rejects_torn);
	tcase_add_test(tc, verifier_rejects_garbage);
	tcase_add_test(tc, verifier_rejects_a_layout_that_wraps);
	tcase_add_test(tc, blobs_round_trip_and_reject_bad_input);
	tcase_add_test(tc, disk_journal_keeps_order_tags_and_room);
	tcase_add_test(tc, disk_journal_header_rewritten_by_the_guest);
	tcase_add_test(tc, disk_verifier_proves_disk_and_memory_agree);
	suite_add_tcase(s, tc);
	return s;
}

TB_CHECK_MAIN(simproto_suite)
