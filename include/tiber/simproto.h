/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypervisor's shared protocol: what tiber-simguest (the
 * guest) and lib/backend/sim*.c (the daemon) both map.
 *
 *   control page  = shared info + the hypervisor's domain struct: state,
 *                   shutdown reason, the suspend hypercall's return value,
 *                   counters, the simulated xenstore, the event channel
 *                   ports, the output gate words, the saved vCPU area and
 *                   the cooperative dirty bitmap (after the fixed part)
 *   features      = the ELF note (TB_SIM_FEAT_SUSPEND_CANCEL)
 *   ports         = event channels: a pending bit + "sleeping" flag per
 *                   end, an eventfd per end to wake a sleeper
 *   RAM           = a memfd laid out by tb_sim_ram_* (header page,
 *                   generation table, KV table, data pages) so that
 *                   tb_sim_verify() can prove an image is one consistent
 *                   state
 *
 * Both sides are trusted to be tiber code, but the daemon never trusts an
 * index it reads from the control page without a bounds check, and the
 * verifier treats its image as hostile input.
 */
#ifndef TIBER_SIMPROTO_H
#define TIBER_SIMPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tiber/common.h"

#define TB_SIM_MAGIC	  0x4d495354u /* "TSIM" */
#define TB_SIM_VERSION	  2u
#define TB_SIM_CTRL_FIXED 65536u /* 64 KiB: fixed part of the control memfd */

/* Domain state (the hypervisor's view). */
enum tb_sim_state {
	TB_SIM_BOOTING = 0,
	TB_SIM_RUNNING = 1,
	TB_SIM_SUSPENDED = 2, /* SCHEDOP_shutdown(SHUTDOWN_suspend) made */
	TB_SIM_PAUSED = 3,    /* stopped by the daemon (SIGSTOP) */
	TB_SIM_CRASHED = 4,
	TB_SIM_DEAD = 5,
};

/* Xen's SHUTDOWN_* codes. */
#define TB_SIM_SHUTDOWN_POWEROFF 0u
#define TB_SIM_SHUTDOWN_SUSPEND	 2u
#define TB_SIM_SHUTDOWN_CRASH	 3u
#define TB_SIM_SHUTDOWN_NONE	 0xffu

/* features word (the ELF notes) */
#define TB_SIM_FEAT_SUSPEND_CANCEL (1u << 0)
#define TB_SIM_FEAT_UFFD_WP	   (1u << 1) /* guest registered uffd-wp async */
#define TB_SIM_FEAT_DIRTY_BITMAP   (1u << 2) /* guest marks its writes */
/* each attach hands over a fresh uffd registered for sync write-protect
 * (nothing protected yet); the guest keeps no reference */
#define TB_SIM_FEAT_UFFD_SYNC (1u << 3)

/* suspend_req word: the one truth about a pending request (CAS). */
#define TB_SIM_REQ_NONE	   0u
#define TB_SIM_REQ_PENDING 1u /* daemon asked */
#define TB_SIM_REQ_TAKEN   2u /* guest claimed it: it will suspend */

/* Event channel ports. */
#define TB_SIM_NR_PORTS	      16
#define TB_SIM_PORT_DOM_EXC   1 /* VIRQ_DOM_EXC: guest -> daemon */
#define TB_SIM_PORT_RESUME    2 /* hypervisor resume: daemon -> guest */
#define TB_SIM_PORT_STORE     3 /* xenstore watch fired: -> guest */
#define TB_SIM_PORT_GATE      4 /* output gate: -> guest's netback */
#define TB_SIM_PORT_DISK      5 /* disk journal room: daemon -> guest */
#define TB_SIM_PORT_FIRST_DYN 8 /* EVTCHNOP_alloc_unbound hands these */
#define TB_SIM_END_GUEST      0 /* delivered to the guest */
#define TB_SIM_END_TOOL	      1 /* delivered to the toolstack (daemon) */
#define TB_SIM_NR_EVTFDS      (TB_SIM_NR_PORTS * 2)
#define TB_SIM_PORT_FREE      0u
#define TB_SIM_PORT_RESERVED  1u
#define TB_SIM_PORT_UNBOUND   2u /* allocated by the guest */

struct tb_sim_port_end {
	uint32_t pending;  /* set by notify, consumed by the waiter */
	uint32_t sleeping; /* waiter is (about to be) in poll() */
};

struct tb_sim_port {
	uint32_t state;
	uint32_t pad;
	struct tb_sim_port_end end[2];
};

/* Simulated xenstore: a fixed table, seqlock for readers, a lock word for
 * writers (both processes write). */
#define TB_SIM_STORE_SLOTS	16
#define TB_SIM_KEY_MAX		48
#define TB_SIM_VAL_MAX		80
#define TB_SIM_KEY_SUSPEND_PORT "device/suspend/event-channel"
#define TB_SIM_KEY_SHUTDOWN	"control/shutdown"
#define TB_SIM_KEY_NAME		"name"
#define TB_SIM_KEY_DOMID	"domid"
/* the guest's UUID (8-4-4-4-12 hex): given at its start, or made by the
 * first tiberd that protects it; a restored guest keeps it */
#define TB_SIM_KEY_UUID "vm/uuid"

struct tb_sim_store_slot {
	char key[TB_SIM_KEY_MAX]; /* "" = free */
	char val[TB_SIM_VAL_MAX];
};

struct tb_sim_store {
	uint32_t lock;	    /* writers */
	uint32_t seq;	    /* odd while a write is in progress */
	uint64_t watch_gen; /* bumped by every write */
	struct tb_sim_store_slot slot[TB_SIM_STORE_SLOTS];
};

/* Output gate words (the ring itself is its own memfd). */
#define TB_SIM_GATE_OPEN  0u
#define TB_SIM_GATE_GATED 1u

struct tb_sim_gate {
	uint32_t mode; /* TB_SIM_GATE_* (daemon writes) */
	uint32_t pad;
	uint64_t cur_epoch;	 /* boundary: new output gets cur_epoch+1 */
	uint64_t released_epoch; /* tags <= this may leave */
	uint64_t ring_size;	 /* bytes, power of two */
	uint64_t head;		 /* producer offset (monotonic) */
	uint64_t tail;		 /* netback offset (monotonic) */
	uint64_t held_bytes;	 /* payload bytes in the ring */
	uint64_t released_bytes; /* total payload bytes transmitted */
	uint64_t dropped_bytes;	 /* connection gone before release */
	uint64_t backpressure;	 /* sends that had to wait for room */
	uint64_t msgs_released;
};

/* One message in the gate ring: header + payload padded to 8 bytes. */
struct tb_sim_gate_rec {
	uint32_t len;  /* payload bytes; 0 + conn 0 = wrap filler */
	uint32_t conn; /* guest-side connection id */
	uint64_t tag;  /* epoch the output belongs to */
};
_Static_assert(sizeof(struct tb_sim_gate_rec) == 16, "gate ABI");

/* Simulated vCPU registers: one per workload thread. */
#define TB_SIM_MAX_VCPUS 16
struct tb_sim_vcpu {
	uint32_t id;
	uint32_t kind;	   /* workload kind */
	uint64_t rng;	   /* PRNG state */
	uint64_t pos;	   /* loop position (sequential pattern) */
	uint64_t ops;	   /* operations done */
	uint64_t lane_seq; /* this vCPU's ledger sequence number */
	uint64_t reserved[3];
};
_Static_assert(sizeof(struct tb_sim_vcpu) == 64, "vcpu ABI");

struct tb_sim_ctrl {
	uint32_t magic;
	uint32_t version;
	int32_t guest_pid;
	uint32_t page_size;
	uint64_t ram_size;
	uint64_t ram_gva;  /* guest's address of RAM (for pagemap) */
	uint32_t features; /* ELF notes */
	uint32_t state;	   /* enum tb_sim_state */
	uint32_t shutdown_reason;
	int32_t hypercall_ret;	  /* written by the daemon before resuming */
	uint32_t suspend_req;	  /* TB_SIM_REQ_* */
	uint32_t subscribed_port; /* XEN_DOMCTL_subscribe; 0 = none */
	uint32_t static_port;	  /* dom0less port; 0 = none */
	uint32_t attached;	  /* a daemon holds the control socket */
	uint64_t resume_gen;	  /* bumped by every resume */
	/* counters */
	uint64_t suspends;
	uint64_t suspend_cancels; /* THAW */
	uint64_t restores;	  /* RESTORE */
	uint64_t ignored_requests;
	uint64_t progress;	 /* workload ops, any thread */
	uint64_t last_verify_ok; /* restore-hook verifier: 1 ok, 2 bad */
	/* dirty bitmap (cooperative): offset in this memfd, bytes */
	uint64_t bitmap_off;
	uint64_t bitmap_len;
	struct tb_sim_port port[TB_SIM_NR_PORTS];
	struct tb_sim_store store;
	struct tb_sim_gate gate;
	uint32_t nr_vcpus;
	uint32_t pad2;
	struct tb_sim_vcpu vcpu[TB_SIM_MAX_VCPUS];
};
_Static_assert(sizeof(struct tb_sim_ctrl) <= TB_SIM_CTRL_FIXED, "ctrl fits");

/* Control memfd size for @ram_size bytes of RAM (fixed part + bitmap). */
size_t tb_sim_ctrl_size(uint64_t ram_size);
/* The cooperative dirty bitmap in the control area. */
static inline uint64_t *tb_sim_ctrl_bitmap(struct tb_sim_ctrl *c)
{
	return (uint64_t *)((char *)c + c->bitmap_off);
}

/* ----------------------------------------------------------- evtchn */
/*
 * notify: set pending (seq_cst), then write the end's eventfd if the
 * waiter announced it may sleep.  wait: spin up to @spin_ns on the pending
 * bits, announce sleeping, re-check, ppoll() the eventfds until
 * @deadline_ns (0 = none).  The store/load pairs are seq_cst on both
 * sides, so a notify either sees "sleeping" or the waiter sees "pending":
 * no lost wake-up.  @evtfds is indexed port * 2 + end.
 */
void tb_sim_evtchn_notify(struct tb_sim_ctrl *c, const int *evtfds,
			  unsigned port, unsigned end);
/* Consume a pending event without waiting: true if there was one. */
bool tb_sim_evtchn_consume(struct tb_sim_ctrl *c, unsigned port, unsigned end);
/* Retract a notification not yet consumed (true if it was pending). */
bool tb_sim_evtchn_retract(struct tb_sim_ctrl *c, unsigned port, unsigned end);

struct tb_sim_waitset {
	unsigned n;
	unsigned port[4];
	unsigned end[4];
	int extra_fd; /* also poll this fd for POLLIN (-1 = none) */
};
/*
 * Wait for any of @ws.  Returns the index (0..n-1) of the event consumed,
 * ws->n if @extra_fd became readable, -ETIMEDOUT at @deadline_ns,
 * -errno on failure.
 */
int tb_sim_evtchn_wait(struct tb_sim_ctrl *c, const int *evtfds,
		       const struct tb_sim_waitset *ws, int64_t spin_ns,
		       int64_t deadline_ns);
/* EVTCHNOP_alloc_unbound: a free dynamic port (or @want if > 0 and free).
 * Returns the port or -ENOSPC/-EBUSY.  Pending bits are not cleared: a
 * notification racing with a re-allocation must not be lost, and a stale
 * one is harmless (the suspend_req word decides). */
int tb_sim_evtchn_alloc(struct tb_sim_ctrl *c, int want);
void tb_sim_evtchn_free(struct tb_sim_ctrl *c, unsigned port);

/* ----------------------------------------------------------- store */
/* 0, -ENOSPC (table full), -ENAMETOOLONG, -E2BIG. */
int tb_sim_store_write(struct tb_sim_store *s, const char *key,
		       const char *val);
/* 0 or -ENOENT; @val gets at most @len - 1 bytes + NUL. */
int tb_sim_store_read(struct tb_sim_store *s, const char *key, char *val,
		      size_t len);
int tb_sim_store_rm(struct tb_sim_store *s, const char *key);
/* Write @val only if the key currently holds @expect ("" = absent).
 * 0, -EAGAIN (value differs), or a store_write error. */
int tb_sim_store_cmpxchg(struct tb_sim_store *s, const char *key,
			 const char *expect, const char *val);

/* ----------------------------------------------------------- gate */
/*
 * The ring lives in its own shared memfd of gate->ring_size bytes.
 * Producers (guest) serialise among themselves; the netback thread is the
 * only consumer.  Messages stay in order; a message may leave when the gate
 * is open or its tag <= released_epoch.
 */
/* Append one message.  -EAGAIN: not enough room now (caller waits),
 * -EMSGSIZE: can never fit. */
int tb_sim_gate_append(struct tb_sim_gate *g, uint8_t *ring, uint32_t conn,
		       const void *p, uint32_t len);
/* Next message at the tail if it may leave now: 1 (fills @rec and
 * @payload pointer to a contiguous copy in @scratch of >= len bytes),
 * 0 if none may leave. */
int tb_sim_gate_peek(struct tb_sim_gate *g, const uint8_t *ring,
		     struct tb_sim_gate_rec *rec, uint8_t *scratch,
		     size_t scratch_len);
/* Drop the message returned by peek; @sent false counts it dropped. */
void tb_sim_gate_pop(struct tb_sim_gate *g, const struct tb_sim_gate_rec *rec,
		     bool sent);
/* Bytes free in the ring. */
uint64_t tb_sim_gate_room(const struct tb_sim_gate *g);

/* ----------------------------------------------------------- disk */
/*
 * The guest's block device: an image file the guest's block backend
 * writes at local speed, and a journal ring (its own memfd: this header
 * page, then ring_size bytes, then the dirty-block bitmap) where, while
 * a daemon mirrors (@mirror = 1), every write is appended after it
 * reached the image, tagged with the epoch it belongs to (cur_epoch + 1,
 * cur_epoch being the last boundary, set while the guest is suspended).
 * While nobody mirrors, a write sets its 4 KiB blocks' bits in the
 * bitmap instead (what a re-sync must send; the daemon harvests it).
 *
 * Producers (the guest's writers) serialise on @lock and wait for room
 * (DISK port) when the ring is full; only the daemon moves @tail.  The
 * daemon flips @mirror under @lock, so no write that saw the old value
 * is in flight after the flip.
 */
#define TB_SIM_DISK_MAGIC 0x4b534944u /* "DISK" */
#define TB_SIM_DISK_HDR	  4096u
struct tb_sim_disk {
	uint32_t magic;
	uint32_t version;
	uint64_t disk_size; /* bytes of the image */
	uint64_t ring_size; /* bytes after the header, power of two */
	uint32_t lock;	    /* producers and mirror flips */
	uint32_t mirror;    /* 1: the daemon consumes the journal */
	uint32_t waiting;   /* a producer waits for room */
	uint32_t pad;
	uint64_t cur_epoch; /* boundary (daemon, guest suspended) */
	uint64_t head;	    /* producer offset (monotonic) */
	uint64_t tail;	    /* consumer offset (monotonic) */
	uint64_t writes;    /* counters (guest) */
	uint64_t bytes;
	uint64_t marked;       /* writes recorded in the bitmap only */
	uint64_t backpressure; /* writes that waited for room */
	uint64_t bitmap_off;   /* bytes from the header: after the ring */
	uint64_t bitmap_len;   /* bytes: a bit per 4 KiB block */
};

/* Bytes of the disk memfd for a disk of @disk_size and a ring of @ring. */
uint64_t tb_sim_disk_map_len(uint64_t disk_size, uint64_t ring);

/* One journal record: header + data padded to 8 bytes; len 0 = filler up
 * to the end of the ring. */
#define TB_SIM_DISK_REC_ZERO 1u /* zeroes (a trim, write-zeroes): no data */
struct tb_sim_disk_rec {
	uint32_t len;
	uint32_t flags; /* TB_SIM_DISK_REC_ZERO */
	uint64_t offset;
	uint64_t tag; /* the epoch the write belongs to */
};
_Static_assert(sizeof(struct tb_sim_disk_rec) == 24, "disk ABI");

/* The lock word both processes take (the store's writers, the disk
 * journal's producers): spins, then yields. */
void tb_sim_spin_lock(uint32_t *w);
void tb_sim_spin_unlock(uint32_t *w);
void tb_sim_disk_lock(struct tb_sim_disk *k);
void tb_sim_disk_unlock(struct tb_sim_disk *k);
/* Under the lock: would a record of @len bytes fit now? */
bool tb_sim_disk_fits(const struct tb_sim_disk *k, uint32_t len);
/* Under the lock: append one record (mirrored), or mark its blocks in
 * the bitmap (not mirrored).  -EAGAIN: no room now, -EMSGSIZE: can
 * never fit. */
int tb_sim_disk_append(struct tb_sim_disk *k, uint8_t *ring, uint64_t off,
		       const void *data, uint32_t len);
/* The same for @len bytes of zeroes (@data NULL in the record). */
int tb_sim_disk_append_zero(struct tb_sim_disk *k, uint8_t *ring, uint64_t off,
			    uint32_t len);
/*
 * The daemon's view of a journal: the geometry it reads by, checked and
 * copied from the header once.  The guest can rewrite the shared header
 * at any time; the daemon never reads by it again.
 */
struct tb_sim_disk_view {
	struct tb_sim_disk *k; /* shared: head, tail, flags, bitmap words */
	const uint8_t *ring;
	uint64_t ring_size; /* a power of two */
	uint64_t *bm;
	size_t bm_words;
};
/* Check the header of @k, a mapping of tb_sim_disk_map_len(@disk_size,
 * @ring_size) bytes, and fill @v.  0 or -EPROTO. */
int tb_sim_disk_view_init(struct tb_sim_disk_view *v, struct tb_sim_disk *k,
			  uint64_t disk_size, uint64_t ring_size);
/* Daemon: the record at the tail if its tag <= @upto: 1 and *@data
 * points into the ring (valid until pop; NULL for zeroes), else 0;
 * -EPROTO if the shared indices or the record make no sense. */
int tb_sim_disk_peek(const struct tb_sim_disk_view *v, uint64_t upto,
		     struct tb_sim_disk_rec *rec, const uint8_t **data);
void tb_sim_disk_pop(const struct tb_sim_disk_view *v,
		     const struct tb_sim_disk_rec *rec);
/* Daemon: start mirroring (records older than now are dropped: the
 * image has them) or stop (records still in the ring stay for the
 * daemon to read; later writes mark the bitmap). */
void tb_sim_disk_set_mirror(struct tb_sim_disk *k, bool on);
/* Daemon: OR the bitmap's words into @out (a bit per 4 KiB block) and
 * clear them. */
void tb_sim_disk_harvest(const struct tb_sim_disk_view *v, uint64_t *out,
			 size_t nwords);

/* ----------------------------------------------------------- blobs */
/*
 * State blobs, little-endian, 8-byte aligned:
 *   CPU blob:    tb_sim_blob_hdr(TB_SIM_BLOB_CPU) + nr x tb_sim_vcpu
 *   device blob: tb_sim_blob_hdr(TB_SIM_BLOB_DEV) + tb_sim_dev_state
 *   state file (what `tiber-simguest --restore --state` reads):
 *                the CPU blob followed by the device blob
 */
#define TB_SIM_BLOB_CPU 0x55504354u /* "TCPU" */
#define TB_SIM_BLOB_DEV 0x56454454u /* "TDEV" */
#define TB_SIM_STATE_TAG \
	1u /* = TB_STATE_SIM of stream.h: tb_dom_info.state_tag */

struct tb_sim_blob_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t count;	 /* CPU: nr of vcpus; DEV: 1 */
	uint32_t length; /* body bytes after this header */
};
_Static_assert(sizeof(struct tb_sim_blob_hdr) == 16, "blob ABI");

struct tb_sim_dev_state {
	uint32_t features;
	uint32_t static_port;
	uint64_t gate_cur_epoch;
	uint64_t gate_released_epoch;
	uint32_t gate_mode;
	uint32_t nr_slots;
	uint64_t suspends;
	uint64_t suspend_cancels;
	uint64_t restores;
	struct tb_sim_store_slot slot[TB_SIM_STORE_SLOTS];
};
_Static_assert(sizeof(struct tb_sim_dev_state) ==
		       56 + TB_SIM_STORE_SLOTS *
				       sizeof(struct tb_sim_store_slot),
	       "dev ABI");

int tb_sim_blob_put_cpu(struct tb_buf *out, const struct tb_sim_vcpu *v,
			uint32_t nr);
int tb_sim_blob_put_dev(struct tb_buf *out, const struct tb_sim_dev_state *d);
/* Parse a CPU blob at @p (hostile): fills up to TB_SIM_MAX_VCPUS; *used =
 * bytes consumed.  0 or -EPROTO/-EINVAL. */
int tb_sim_blob_get_cpu(const void *p, size_t len, struct tb_sim_vcpu *v,
			uint32_t *nr, size_t *used);
int tb_sim_blob_get_dev(const void *p, size_t len, struct tb_sim_dev_state *d,
			size_t *used);

/* ----------------------------------------------------------- attach */
/* The hello message the guest sends on its control socket, with
 * SCM_RIGHTS: ram, ctrl, gate ring, [uffd], then the NR_EVTFDS eventfds. */
#define TB_SIM_HELLO_MAGIC 0x4f4c4548u /* "HELO" */
struct tb_sim_hello {
	uint32_t magic;
	uint32_t version;
	int32_t status; /* 0, or -EBUSY (another daemon attached) */
	int32_t pid;
	uint64_t ram_size;
	uint64_t ram_gva;
	uint64_t ctrl_size;
	uint64_t ring_size;
	uint32_t page_size;
	uint32_t features;
	uint32_t nr_fds;
	uint32_t has_uffd;
	uint32_t hugepages;
	uint32_t has_disk; /* then fds: disk journal memfd, image */
	uint64_t disk_size;
	uint64_t disk_ring_size;
};
#define TB_SIM_MAX_FDS (6 + TB_SIM_NR_EVTFDS)

/* sendmsg/recvmsg with fds.  0 or -errno (-EPIPE on EOF for recv). */
int tb_sim_send_fds(int sock, const void *buf, size_t len, const int *fds,
		    unsigned nfds);
/* *nfds in: capacity, out: received (extra fds are closed). */
int tb_sim_recv_fds(int sock, void *buf, size_t len, int *fds, unsigned *nfds);

/* ----------------------------------------------------------- RAM image */
/*
 * RAM layout (page numbers):
 *   0                      header (struct tb_sim_ram_hdr)
 *   1 .. gen_pages         uint32 generation per data page
 *   kv_first .. +kv_pages  KV table (struct tb_sim_kv_*)
 *   data_first .. end      data pages
 * A data page's content is a function of (pfn, gen, content kind): gen 0
 * is all zero.  Every write is a transaction between two safepoints:
 * content, then gen[p]++, then the writer lane's ledger (xor of h(p, gen)
 * and a sequence number).  tb_sim_verify() recomputes all of it.
 */
enum tb_sim_content {
	TB_SIM_CONTENT_ZERO = 0,
	TB_SIM_CONTENT_TEXT = 1,
	TB_SIM_CONTENT_RANDOM = 2,
	TB_SIM_CONTENT_DELTA = 3,
};
const char *tb_sim_content_name(unsigned c);
int tb_sim_content_parse(const char *s, unsigned *out);

#define TB_SIM_RAM_MAGIC 0x4d41524d49534254ull /* "TBSIMRAM" */
#define TB_SIM_MAX_LANES 64
struct tb_sim_lane {
	uint64_t xor_ledger; /* xor of h(p, gen[p]) over the lane's pages */
	uint64_t seq;	     /* writes done by this lane = sum of gens */
};
struct tb_sim_ram_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t content;
	uint64_t nr_pages;
	uint64_t gen_first, gen_pages;
	uint64_t kv_first, kv_pages;
	uint64_t data_first, nr_data;
	uint32_t nr_lanes; /* data page p belongs to lane p % nr_lanes */
	uint32_t kv_lane;  /* the lane KV writes count in */
	uint64_t boot_id;
	/* workload parameters (the "guest kernel's" config survives restore) */
	uint32_t workload; /* 0 synthetic, 1 kv */
	uint32_t pattern;
	uint64_t wss_pages;
	uint64_t dirty_rate; /* pages/s, 0 = as fast as possible */
	uint32_t nr_threads;
	uint32_t pad;
	uint64_t disk_writes; /* disk writer vCPU: writes/s (0: none) */
	struct tb_sim_lane lane[TB_SIM_MAX_LANES];
};

/* KV table in RAM: open addressing; a dedup table per client. */
#define TB_SIM_KV_KEY	  32
#define TB_SIM_KV_VAL	  64
#define TB_SIM_KV_CLIENTS 256
#define TB_SIM_KV_REPLY	  96
struct tb_sim_kv_ent {
	char key[TB_SIM_KV_KEY];
	char val[TB_SIM_KV_VAL];
};
struct tb_sim_kv_client {
	uint64_t client; /* 0 = free */
	uint64_t last_seq;
	char last_reply[TB_SIM_KV_REPLY];
};
struct tb_sim_kv_hdr {
	uint64_t nr_ents;
	uint64_t used;
	uint64_t applied;  /* commands applied (not dedup hits) */
	uint64_t log_head; /* durable KV: records in the disk log */
	struct tb_sim_kv_client client[TB_SIM_KV_CLIENTS];
	/* entries follow */
};

/* Lay out a fresh (zero) RAM of @nr_pages.  0 or -EINVAL (too small). */
int tb_sim_ram_format(void *ram, uint64_t nr_pages, unsigned content,
		      unsigned nr_lanes, uint64_t kv_pages);
/* Mix for ledgers and content. */
uint64_t tb_sim_hash(uint64_t p, uint64_t g);
/* Expected content of data page @pfn at generation @gen into @dst (4 KiB). */
void tb_sim_page_expect(uint64_t pfn, uint32_t gen, unsigned content,
			void *dst);
/*
 * One write transaction on data page @pfn by @lane.  @mark(pfn, arg) is
 * called for every RAM page written (cooperative dirty bitmap), after the
 * write.  Not thread-safe per lane: one writer per lane.
 */
void tb_sim_page_write(void *ram, uint64_t pfn, unsigned lane,
		       void (*mark)(uint64_t pfn, void *arg), void *arg);
/* The KV region is checked structurally (entry count), not per page. */

struct tb_sim_verify_report {
	bool ok;
	uint64_t pages_checked;
	uint64_t bad_pages; /* content != f(p, gen[p]) */
	uint64_t first_bad_pfn;
	uint32_t first_bad_gen;
	uint64_t bad_lanes;    /* ledger or seq mismatch */
	uint64_t total_writes; /* sum of gens */
	char msg[256];	       /* first problem, human-readable */
};
/* Check that @ram (@size bytes, hostile) is one consistent state.
 * 0 (see report->ok) or -EINVAL if it is not a tiber-simguest image. */
int tb_sim_verify(const void *ram, uint64_t size,
		  struct tb_sim_verify_report *rep);

/* Find @key's entry in the KV table, or the free slot it would go in;
 * NULL if the table is full (open addressing). */
struct tb_sim_kv_ent *tb_sim_kv_find(struct tb_sim_kv_hdr *kh, const char *key);

/*
 * Durable KV (a guest with --disk): every SET/INCR first appends one
 * 512-byte record to the log at disk offset lsn * 512, and only once
 * that write completed changes the table, log_head and the reply, all
 * between two safepoints.  So in every checkpoint the disk log holds
 * exactly log_head records of this boot, and replaying them gives the
 * table.
 */
#define TB_SIM_KVLOG_MAGIC 0x474f4c564b424954ull /* "TIBKVLOG" */
#define TB_SIM_KVLOG_REC   512u
struct tb_sim_kvlog_rec {
	uint64_t magic;
	uint64_t lsn;
	uint64_t boot_id; /* the RAM header's: records of another boot end
			     the log */
	uint64_t client;
	uint64_t seq;
	char key[TB_SIM_KV_KEY];
	char val[TB_SIM_KV_VAL];
	uint64_t check; /* hash of the fields above */
	uint8_t pad[TB_SIM_KVLOG_REC - 144];
};
_Static_assert(sizeof(struct tb_sim_kvlog_rec) == TB_SIM_KVLOG_REC, "kvlog");

void tb_sim_kvlog_make(struct tb_sim_kvlog_rec *r, uint64_t lsn,
		       uint64_t boot_id, uint64_t client, uint64_t seq,
		       const char *key, const char *val);
/* true if @r is record @lsn of boot @boot_id, intact. */
bool tb_sim_kvlog_valid(const struct tb_sim_kvlog_rec *r, uint64_t lsn,
			uint64_t boot_id);
/* Check that the disk @disk_fd (@disk_size bytes) and the RAM image agree:
 * log records 0 .. log_head - 1 are there and replay to the table, and
 * there is no record beyond.  0 (see rep->ok; rep->msg says what is
 * wrong) or -EINVAL (not a KV image) / -errno (I/O). */
int tb_sim_verify_disk(const void *ram, uint64_t size, int disk_fd,
		       uint64_t disk_size, struct tb_sim_verify_report *rep);

/* ----------------------------------------------------------- daemon extras */
/* For tests and tools that hold a sim tb_dom (lib/backend/sim*.c). */
struct tb_dom;
struct tb_bitmap;
struct tb_sim_ctrl *tb_sim_dom_ctrl(struct tb_dom *d);
pid_t tb_sim_dom_pid(struct tb_dom *d);
/* Harvest (read + clear) the guest's cooperative bitmap into @out: the
 * oracle the uffd-wp harvest is checked against.  0 or -EINVAL. */
int tb_sim_dom_harvest_oracle(struct tb_dom *d, struct tb_bitmap *out);

#endif
