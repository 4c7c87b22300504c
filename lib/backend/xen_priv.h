/* SPDX-License-Identifier: MIT */
/*
 * The Xen backend's private header: the domain handle (struct tb_dom)
 * that lib/backend/xen*.c share, and the functions by which those files
 * call each other.  Internal to lib/backend/ (not a public contract);
 * only lib/backend/xen*.c include it.
 *
 *   xen.c          attach, detach, info, health, stats, the ops table
 *   xen_suspend.c  suspend channels, request/await, resume, recover
 *   xen_mem.c      guest memory: mapping, p2m, log-dirty, copy
 *   xen_state.c    vCPU and device state into Xen state blobs
 *   xen_output.c   output commit (xen_netbuf.c glue), overflow policy
 *   xen_restore.c  failover: `xl restore` of a committed replica
 *
 * Unless said otherwise, a function here is called from the epoch
 * thread and returns 0 or -errno.
 */
#ifndef TIBER_XEN_PRIV_H
#define TIBER_XEN_PRIV_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xenguest.h>
#include <xenstore.h>
#include <xentoollog.h>
#include <xen/sched.h>

#include "tiber/backend.h"
#include "tiber/bitmap.h"
#include "tiber/common.h"
#include "copy_pool.h"

enum xen_kind {
	KIND_PV,
	KIND_PVH,
	KIND_HVM
};

struct xen_logger {
	xentoollog_logger vtable; /* first: libxc passes this pointer */
	char last[200];
};

struct tb_dom {
	struct xen_logger log;
	xc_interface *xch;
	xenevtchn_handle *xce;
	xenforeignmemory_handle *fmem;
	struct xs_handle *xsh;
	uint32_t domid;
	char name[32];
	uint8_t uuid[16]; /* the domain handle: its UUID */
	enum xen_kind kind;
	unsigned guest_width;
	uint64_t nr_gpfns;
	uint32_t nr_vcpus;
	unsigned long shared_info_frame;

	enum tb_suspend_mode mode;
	bool suspend_cancel;
	bool allow_slow;
	char shutdown_path[80];
	int guest_port;	     /* guest side of the subscribed channel, or -1 */
	int local_port;	     /* our side, or -1 */
	bool port_allocated; /* we allocated guest_port (xenstore mode) */
	int lockfd;
	bool watching; /* @releaseDomain watch instead of a port */

	bool requested; /* suspend asked, not yet seen */
	bool suspended; /* shut down for suspend, by our request */
	bool paused;	/* paused by us (pause mode) */
	bool destroyed; /* self-fenced: the domain is gone */
	bool logdirty;

	xc_hypercall_buffer_t dirty_hbuf;
	uint64_t *dirty_bm;
	unsigned dirty_bm_pages;

	uint8_t **chunks; /* chunk i maps pfns [i * CHUNK_PAGES, ...) */
	size_t nr_chunks;
	uint64_t *mapped_mfn;	  /* PV: mfn each pfn is mapped with */
	struct tb_bitmap holes;	  /* pfns not mapped (no page there) */
	struct tb_copy_pool pool; /* copy_pages' threads */

	/* PV only */
	struct xc_domain_meminfo minfo; /* live p2m */
	xen_pfn_t *m2p;
	unsigned long m2p_size;
	xen_pfn_t *types; /* scratch for xc_get_pfn_type_batch */
	size_t types_cap;
	/* minfo.pfn_type is kept current for every copied page; the
	 * device blob carries its non-NOTAB entries (TB_XEN_BLOB_REC_PV_TYPES),
	 * re-encoded only when a type changed. */
	struct tb_buf types_rec;
	bool types_changed;
	uint64_t *p2m_frames; /* pfns of the guest's p2m frames */
	size_t nr_p2m_frames;

	/* HVM/PVH */
	uint8_t *hvm_buf; /* xc_domain_hvm_getcontext, reused */
	size_t hvm_cap;

	struct tb_dom_stats st;

	/* the disk (xen_disk.c): NULL without disk_journal */
	struct tb_sim_ddisk *disk;
	/* output commit (xen_netbuf.c): NULL when the guest has no vif */
	struct tb_netbuf *netbuf;
	pthread_mutex_t nb_lock; /* output_release runs on another thread */
	/* overflow policy "pause", under nb_lock (see ovf_monitor) */
	bool ovf_pause;
	uint64_t out_limit;
	bool ovf_paused;   /* paused by us for a full buffer */
	bool ovf_in_epoch; /* from a request to the resume: hands off */
	int64_t ovf_t0;
	bool ovf_stop;
	pthread_t ovf_thread;
	bool ovf_thread_started;
	char vif[16];
};

/* ------------------------------------------------------------ helpers */

static inline int dom_getinfo(xc_interface *xch, uint32_t domid,
			      xc_domaininfo_t *i)
{
	int rc = xc_domain_getinfolist(xch, domid, 1, i);

	if (rc < 0)
		return -errno;
	if (rc != 1 || i->domain != domid)
		return -ESRCH;
	return 0;
}

static inline unsigned shutdown_reason(const xc_domaininfo_t *i)
{
	return (i->flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
}

static inline bool is_suspended(const xc_domaininfo_t *i)
{
	return (i->flags & XEN_DOMINF_shutdown) &&
	       shutdown_reason(i) == SHUTDOWN_suspend;
}

/* "" or the text of the last libxc error, for reasons. */
static inline const char *xc_last(struct tb_dom *d)
{
	return d->log.last;
}

static inline char *xs_read_str(struct xs_handle *xsh, const char *path)
{
	unsigned int len;

	return xs_read(xsh, XBT_NULL, path, &len);
}

/* ------------------------------------------------------------ xen.c */

/* A logger that keeps libxc's last error text in @xl->last. */
void tb_xen_log_init(struct xen_logger *xl);

/* ------------------------------------------------------------ xen_suspend.c */

/*
 * Attach: the suspend mode (config and what the guest publishes under
 * @dompath), whether it may resume fast, and the wake-up source (a
 * subscribed event channel, else a @releaseDomain watch).  Needs d->xch,
 * d->xsh.  Reason set on error.
 */
int tb_xen_suspend_attach(struct tb_dom *d, const struct tb_dom_cfg *cfg,
			  const char *dompath);
/* Unsubscribe, release the channel and the watch (attach undone). */
void tb_xen_release_channel(struct tb_dom *d);
/* The suspend hooks of the ops table (see tiber/backend.h). */
int tb_xen_request_suspend(struct tb_dom *d);
int tb_xen_await_suspended(struct tb_dom *d, int64_t deadline_ns);
int tb_xen_resume(struct tb_dom *d, bool fast);
/* Detach: withdraw a pending request; resume or unpause a guest we
 * suspended or paused. */
void tb_xen_suspend_detach(struct tb_dom *d);

/* ------------------------------------------------------------ xen_mem.c */

/*
 * Attach: log-dirty on, the p2m and m2p (PV), guest memory mapped, the
 * p2m frames read (PV), the copy threads started, every page clean.
 * Needs d->xch, d->kind, d->nr_gpfns.  Reason set on error.
 */
int tb_xen_mem_attach(struct tb_dom *d, unsigned copy_threads);
/* The memory hooks of the ops table (see tiber/backend.h). */
int tb_xen_harvest_dirty(struct tb_dom *d, struct tb_bitmap *out);
int tb_xen_copy_pages(struct tb_dom *d, const uint64_t *pfns, size_t n,
		      void *dst);
/* Detach: unmap guest memory, the p2m and m2p; free the dirty bitmap. */
void tb_xen_mem_detach(struct tb_dom *d);

/* ------------------------------------------------------------ xen_state.c */

/* The state hooks of the ops table (see tiber/backend.h): append the
 * CPU / device state blob to @out.  Only while suspended. */
int tb_xen_save_cpu_state(struct tb_dom *d, struct tb_buf *out);
int tb_xen_save_device_state(struct tb_dom *d, struct tb_buf *out);

/* ------------------------------------------------------------ xen_output.c */

/* The guest's first vif in dom0 (its backend's "vifname", else
 * vifDOMID.0) into @out; false if it has none. */
bool tb_xen_dom_vif(struct xs_handle *xsh, uint32_t domid, char *out,
		    size_t len);
/* Attach: output commit on the guest's first vif (TIBER_XEN_VIF names
 * another, "none" turns it off), the overflow monitor if the policy is
 * pause.  Reason set on error. */
int tb_xen_output_attach(struct tb_dom *d, const struct tb_dom_cfg *dcfg);
/* The epoch's hands-on phase for the overflow policy: @on at the suspend
 * request (unpauses the guest), off at the resume or a failed await. */
void tb_xen_output_epoch(struct tb_dom *d, bool on);
/* The output hooks of the ops table (see tiber/backend.h); reason set
 * on error.  output_release runs on the sender thread. */
int tb_xen_output_boundary(struct tb_dom *d, uint64_t epoch);
int tb_xen_output_release(struct tb_dom *d, uint64_t epoch);
int tb_xen_output_set_gated(struct tb_dom *d, bool gated);
/* Add the output counters to @st (a copy of d->st). */
void tb_xen_output_stats(struct tb_dom *d, struct tb_dom_stats *st);
/* Detach: stop the monitor, release what is held, undo the buffering. */
void tb_xen_output_teardown(struct tb_dom *d);
/* Destroy: stop the monitor, drop what is held, undo the buffering. */
void tb_xen_output_discard(struct tb_dom *d);

/* ------------------------------------------------------------ xen_restore.c */

/* The restore hook of the ops table (see tiber/backend.h): `xl restore`
 * of the replica in @req.  Reason set on error. */
int tb_xen_restore(const struct tb_restore_req *req,
		   struct tb_restore_res *res);

/* xen_disk.c: the guest's disk through nbdkit-tiber-filter's journal
 * (the sim backend's journal consumer, lib/backend/sim_disk.c) */
struct tb_sim_ddisk;
int tb_xen_disk_attach(struct tb_dom *d, const struct tb_dom_cfg *cfg);
void tb_xen_disk_detach(struct tb_dom *d);
void tb_xen_disk_info(struct tb_dom *d, struct tb_dom_info *info);
int tb_xen_disk_mirror(struct tb_dom *d, bool on, uint64_t epoch);
int tb_xen_disk_boundary(struct tb_dom *d, uint64_t epoch);
int tb_xen_disk_peek(struct tb_dom *d, uint64_t upto, struct tb_disk_jrec *w);
void tb_xen_disk_pop(struct tb_dom *d, const struct tb_disk_jrec *w);
int tb_xen_disk_harvest(struct tb_dom *d, unsigned disk, struct tb_bitmap *out);
int tb_xen_disk_read(struct tb_dom *d, unsigned disk, uint64_t off, void *buf,
		     size_t len);
int tb_xen_disk_next_data(struct tb_dom *d, unsigned disk, uint64_t off,
			  uint64_t *data);

#endif
