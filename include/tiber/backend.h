/* SPDX-License-Identifier: MIT */
/*
 * The backend ops table: everything hypervisor-specific sits behind it
 * (compare Xen's struct xc_sr_save_ops).  The epoch engine never includes
 * a hypervisor header.
 *
 * Every hook returns 0 or -errno, does not log (it may leave a one-line
 * reason with tb_backend_set_reason() for the caller to log), and is
 * mandatory unless marked optional.  Hooks of one tb_dom are called
 * from one thread at a time, except output_release (the engine's
 * receiver thread, at an ACK), get_stats (any thread: status,
 * metrics) and the disk hooks marked "Sender thread" or "Any thread"
 * below, which may run while the epoch thread runs another hook
 * (backends make those thread-safe).
 *
 * The life of a protected domain:
 *
 *   attach -> { request_suspend -> await_suspended -> harvest_dirty ->
 *               copy_pages -> save_cpu_state -> save_device_state ->
 *               output_boundary -> resume } ... -> detach
 *
 * or, copy-on-write (where cow_arm is set): harvest_dirty (running) ->
 * [cow_prepare] -> request_suspend -> await_suspended -> harvest_dirty ->
 * cow_arm ->
 * save_cpu_state -> save_device_state -> output_boundary -> resume ->
 * cow_finish.
 *
 * plus copy_pages / harvest_dirty while the guest runs (pre-copy), and
 * output_release from the receiver thread when the backup acks.
 */
#ifndef TIBER_BACKEND_H
#define TIBER_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "tiber/bitmap.h"
#include "tiber/common.h"
#include "tiber/stream.h"

struct tb_dom; /* backend-private */

enum tb_suspend_mode {
	TB_SUSPEND_AUTO = 0,	 /* evtchn if published, else xenstore */
	TB_SUSPEND_EVTCHN = 1,	 /* guest's suspend event channel */
	TB_SUSPEND_XENSTORE = 2, /* control/shutdown = "suspend" */
	TB_SUSPEND_PAUSE = 3,	 /* no cooperation: pause the domain */
};
const char *tb_suspend_mode_name(enum tb_suspend_mode m);
int tb_suspend_mode_parse(const char *s, enum tb_suspend_mode *out);

struct tb_dom_cfg {
	const char *guest; /* sim: simguest control socket path */
	uint32_t domid;	   /* xen: domain id */
	enum tb_suspend_mode suspend_mode;
	int32_t static_port;	 /* >= 0: dom0less static suspend port */
	bool allow_slow_resume;	 /* guest without SUSPEND_CANCEL: resume slow
				   (guest sees 0) instead of refusing */
	const char *kernel_path; /* xen: kernel image for the ELF notes */
	int suspend_cancel;	 /* xen: -1 detect, 0 no, 1 yes (config) */
	const char *dirty_mech;	 /* sim: "auto", "uffd", "bitmap" */
	unsigned copy_threads;	 /* threads for copy_pages in the pause */
	/* xen: held guest output (sch_plug): byte limit (0: 8 MiB) and
	 * what happens at the limit */
	uint64_t output_limit;
	/* xen: the guest's disk, journaled by nbdkit-tiber-filter: the
	 * image the filter writes and its journal file (both or neither) */
	const char *disk_image;
	const char *disk_journal;
	enum tb_output_overflow {
		TB_OVERFLOW_DROP = 0,  /* the kernel drops, counted */
		TB_OVERFLOW_PAUSE = 1, /* the guest is paused until acks
					  bring it under the limit */
	} output_overflow;
};

struct tb_dom_info {
	uint32_t domid;
	char name[32];
	uint8_t uuid[16];  /* the guest's (Xen: its domain handle) */
	char kind[16];	   /* "sim", "pv", "pvh", "hvm" */
	uint64_t nr_pages; /* pfn space: bitmap size */
	uint32_t nr_vcpus;
	uint32_t state_tag; /* enum tb_state_tag of the state blobs */
	enum tb_suspend_mode suspend_mode; /* resolved, never AUTO */
	bool suspend_cancel;		   /* guest advertises SUSPEND_CANCEL */
	char dirty_mech[32];		   /* how dirty pages are found */
	bool can_cow;			   /* cow_arm works (--mode cow) */
	uint32_t nr_disks;		   /* replicated block devices */
	uint64_t disk_size[TB_DISKS_MAX];  /* bytes */
};

/* One journaled guest disk write (disk_peek). */
struct tb_disk_jrec {
	uint32_t disk;
	uint32_t len;	  /* bytes, whole 512-byte sectors */
	uint64_t offset;  /* bytes */
	uint64_t epoch;	  /* the epoch it belongs to */
	const void *data; /* valid until disk_pop; NULL: zeroes */
};

struct tb_dom_stats {
	uint64_t suspends;	   /* completed suspends */
	uint64_t suspend_timeouts; /* requests cancelled at the deadline */
	uint64_t fast_resumes;
	uint64_t slow_resumes;
	uint64_t dirty_harvests;
	uint64_t pages_copied;
	uint64_t wp_faults;	    /* sim uffd-wp sync: guest writes served */
	uint64_t cow_fault_copies;  /* of them, pages copied before the write */
	uint64_t output_held_bytes; /* currently held */
	uint64_t output_released_bytes;	   /* total released */
	uint64_t output_dropped_bytes;	   /* sim: lost with the connection */
	uint64_t output_dropped_packets;   /* xen: over the plug's limit */
	uint64_t output_overflow_pauses;   /* xen, policy "pause" */
	uint64_t output_overflow_pause_ns; /* total time paused for it */
	/* Last op's inner timestamps (CLOCK_MONOTONIC ns), 0 if n/a. */
	int64_t t_notify_ns; /* request_suspend signalled the guest */
	int64_t t_wake_ns;   /* await_suspended woke up */
};

/* Backup side: start a guest from a committed image. */
struct tb_restore_req {
	const char *name; /* guest name */
	uint32_t domid;	  /* original domain id */
	uint8_t uuid[16]; /* the guest's UUID, kept by the restored guest */
	uint64_t nr_pages;
	int mem_fd; /* memfd with nr_pages * 4096 bytes of RAM */
	const void *cpu_state;
	size_t cpu_state_len;
	const void *dev_state;
	size_t dev_state_len;
	uint32_t state_tag;
	uint64_t epoch; /* the committed epoch restored from */
	uint32_t nr_disks;
	const char *disk_path[TB_DISKS_MAX]; /* committed disk images */
	const char *args; /* backend-specific, e.g. sim: extra guest
				  flags; xen: domain config file */
};
struct tb_restore_res {
	pid_t pid;	 /* sim: restored guest process */
	uint32_t domid;	 /* xen: new domain id */
	char where[128]; /* sim: its control socket; xen: name */
};

struct tb_backend_ops {
	const char *name;
	/* Connect to the guest, check it can be protected, set up dirty
	 * tracking (all pages start clean) and output gating (open).
	 * -EPERM/-EINVAL/-ENOTSUP with a reason when it cannot. */
	int (*attach)(struct tb_dom **out, const struct tb_dom_cfg *cfg);
	void (*get_info)(struct tb_dom *d, struct tb_dom_info *info);
	/* Ask the guest to suspend; returns at once. */
	int (*request_suspend)(struct tb_dom *d);
	/*
	 * Block (no sleep loops) until the guest has suspended or
	 * @deadline_ns.  -ETIMEDOUT: the request was cancelled and the
	 * guest is running (never left suspended); -ESRCH: the guest is
	 * gone or crashed.
	 */
	int (*await_suspended)(struct tb_dom *d, int64_t deadline_ns);
	/* Set in @out the bit of every page written since the previous
	 * harvest (or attach) and re-arm tracking.  Bits already set in
	 * @out stay.  No false negatives, ever. */
	int (*harvest_dirty)(struct tb_dom *d, struct tb_bitmap *out);
	/* Copy @n pages (ascending pfns) into @dst (n x 4096 bytes).
	 * Suspended: exact.  Running (pre-copy): may be torn; the
	 * caller re-sends pages dirtied since the harvest. */
	int (*copy_pages)(struct tb_dom *d, const uint64_t *pfns, size_t n,
			  void *dst);
	/*
	 * Copy-on-write (optional: NULL where the backend cannot see a guest
	 * write before it happens).  cow_arm, suspended, after the harvest:
	 * from now on a guest write to one of the @n pages @pfns (ascending,
	 * or a cow_prepare'd head and then the rest ascending)
	 * first copies the page as it is now into @dst (page i at @dst + i *
	 * 4096).  cow_finish, guest running: copy the pages no write copied
	 * yet, wait for copies under way, disarm; @dst is then the image of
	 * the pages at cow_arm, exactly as copy_pages would have made it
	 * while suspended.  After cow_arm, cow_finish must be called (also
	 * on error paths) before @dst is freed or reused.
	 */
	int (*cow_arm)(struct tb_dom *d, const uint64_t *pfns, size_t n,
		       void *dst);
	/*
	 * Optional, before a cow epoch's suspend, guest running: @pfns[0..n)
	 * (ascending) will be the head of the list the next cow_arm gets
	 * (the same array, the same @dst), followed by the pages dirtied
	 * since (ascending, none of them in the head).  The backend may mark
	 * the head now, so that cow_arm's work in the pause is only the
	 * rest.  Nothing is armed; a cow_arm with another list, or another
	 * cow_prepare, drops it.
	 */
	int (*cow_prepare)(struct tb_dom *d, const uint64_t *pfns, size_t n,
			   void *dst);
	int (*cow_finish)(struct tb_dom *d);
	/* Append the vCPU state blob to @out (suspended only). */
	int (*save_cpu_state)(struct tb_dom *d, struct tb_buf *out);
	/* Append the device/platform state blob to @out (suspended only). */
	int (*save_device_state)(struct tb_dom *d, struct tb_buf *out);
	/* Suspended only: output produced so far belongs to @epoch. */
	int (*output_boundary)(struct tb_dom *d, uint64_t epoch);
	/* The backup has @epoch: let its output (and older) go. */
	int (*output_release)(struct tb_dom *d, uint64_t epoch);
	/* true: hold output until released; false: pass it through. */
	int (*output_set_gated)(struct tb_dom *d, bool gated);
	/* Resume.  fast: the suspend hypercall returns 1 (suspend-cancel,
	 * THAW); slow: returns 0 (the guest redoes its RESTORE path).
	 * -EINVAL if not suspended by us. */
	int (*resume)(struct tb_dom *d, bool fast);
	/* 0 if the guest is alive and running/runnable, -ESRCH if it
	 * is gone, -EFAULT if it crashed (e.g. after a resume). */
	int (*check_health)(struct tb_dom *d);
	void (*get_stats)(struct tb_dom *d, struct tb_dom_stats *st);
	/* Self-fencing: stop the guest for good, now (sim: SIGKILL; xen:
	 * destroy the domain).  The output it holds is discarded, never
	 * released.  Afterwards only detach may be called. */
	int (*destroy)(struct tb_dom *d);
	/*
	 * Disks.  Mandatory when get_info reports nr_disks > 0, else may be
	 * NULL.  A backend catches every guest write on its way to the
	 * disk: the write reaches the disk at local speed, then a journal
	 * tagged with the epoch it belongs to (writes the guest saw
	 * complete before the suspend of epoch N belong to N).
	 *
	 * disk_mirror (tick thread, guest running): on: from now on every
	 * write is journaled and kept until popped, tagged @epoch or later
	 * (older writes are in the disk already: a sync reads them); off:
	 * later writes are only marked in the backend's dirty-block bitmap
	 * (what is journaled stays for disk_peek).
	 */
	int (*disk_mirror)(struct tb_dom *d, bool on, uint64_t epoch);
	/* OR into @out (a bit per 4 KiB block of @disk) the blocks written
	 * while not mirrored, and clear them. */
	int (*disk_harvest)(struct tb_dom *d, unsigned disk,
			    struct tb_bitmap *out);
	/* Suspended only: writes made so far belong to @epoch. */
	int (*disk_boundary)(struct tb_dom *d, uint64_t epoch);
	/* Sender thread: the oldest journaled write if it belongs to an
	 * epoch <= @upto: 1 (fills @w), 0 if none, -errno. */
	int (*disk_peek)(struct tb_dom *d, uint64_t upto,
			 struct tb_disk_jrec *w);
	void (*disk_pop)(struct tb_dom *d, const struct tb_disk_jrec *w);
	/* Any thread: read @len bytes of disk @disk at @off (guest running:
	 * may race with writes, which the journal carries). */
	int (*disk_read)(struct tb_dom *d, unsigned disk, uint64_t off,
			 void *buf, size_t len);
	/* The first byte at or after @off that may hold data (holes read as
	 * zero and need no copy): *@data; -ENXIO if none. */
	int (*disk_next_data)(struct tb_dom *d, unsigned disk, uint64_t off,
			      uint64_t *data);
	/* Resume if we left it suspended, stop tracking, close. */
	void (*detach)(struct tb_dom *d);
	/* Backup side: start the guest from the image (its suspend
	 * hypercall returns 0: RESTORE).  The caller keeps @req->mem_fd. */
	int (*restore)(const struct tb_restore_req *req,
		       struct tb_restore_res *res);
};

extern const struct tb_backend_ops tb_backend_sim_ops;
extern const struct tb_backend_ops tb_backend_xen_ops;

/* "sim" / "xen" -> ops, or NULL. */
const struct tb_backend_ops *tb_backend_find(const char *name);

/* Last failure's reason for the calling thread ("" if none); a backend
 * sets it before returning an error so the caller can log one line. */
const char *tb_backend_reason(void);
void tb_backend_set_reason(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif
