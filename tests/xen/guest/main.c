// SPDX-License-Identifier: MIT
/*
 * tiber-testguest: a minimal 64-bit PV guest that speaks the suspend
 * event channel protocol (xenstore device/suspend/event-channel) and
 * dirties memory at a configured rate, so tiber can checkpoint it.
 *
 * Invariants:
 *  - One vCPU, one thread of control, event upcalls stay masked: every
 *    wait is SCHEDOP_poll on explicit ports with an absolute timeout.
 *  - The suspend hypercall is only issued from the top of the main loop,
 *    never inside a page write, so every snapshot is consistent:
 *    ledger.sum_gen == sum of page gens and ledger.writes == dirtied.
 *  - Before SHUTDOWN_suspend, start_info's store and console frames are
 *    canonicalised to PFNs and shared_info is unmapped (what the PV save
 *    code expects, as Linux's xen_pre_suspend does).  The hypercall
 *    returns 1 after a suspend-cancel (checkpoint, same domain: undo the
 *    canonicalisation, keep everything) and 0 after a restore into a new
 *    domain (new frames, ports and xenstore connection: redo it all).
 *  - Nothing is printed between the request and the hypercall.
 */
#include "tg.h"

start_info_t *tg_start_info;

#define TG_WSS_MAX   8192 /* pages in .bss: 32 MiB */
#define TG_PAGE_MAGIC   0x5447504147453031ULL /* "TGPAGE01" */
#define TG_LEDGER_MAGIC 0x54474c4544474552ULL /* "TGLEDGER" */
#define TG_NS_PER_MS 1000000ULL

struct tg_page {
	uint64_t magic;
	uint64_t index;
	uint64_t gen;
	uint64_t csum; /* sum of body[] */
	uint64_t body[508];
};
_Static_assert(sizeof(struct tg_page) == TG_PAGE_SIZE, "one page");

struct tg_ledger {
	uint64_t magic;
	uint64_t sum_gen; /* sum of every page's gen */
	uint64_t writes;  /* page writes so far (== dirtied) */
	uint64_t cursor;  /* next page to write */
	uint8_t pad[TG_PAGE_SIZE - 32];
};

static struct tg_page wss[TG_WSS_MAX] __attribute__((aligned(4096)));
static struct tg_ledger ledger __attribute__((aligned(4096)));
/* The virtual page shared_info is mapped over (its own frame is lost). */
static uint8_t shinfo_va[TG_PAGE_SIZE] __attribute__((aligned(4096)));
/* P2M frame list (one page covers 512 P2M pages = 1 GiB) and its list. */
#ifndef TG_PVH
static unsigned long p2m_fl[512] __attribute__((aligned(4096)));
static unsigned long p2m_fll[512] __attribute__((aligned(4096)));
#endif

static shared_info_t *shi;
static struct xencons_interface *cons;
static evtchn_port_t cons_port;
static struct xenstore_domain_interface *xsi;
static evtchn_port_t xs_port;
static evtchn_port_t susp_port;
static uint32_t xs_req_id;
static bool xs_shutdown_fired;
static bool clock_restarted; /* set by a restore: new host, new time base */

static struct {
	uint64_t dirty_pages_per_ms;
	uint64_t wss_pages;
	uint64_t tick_ms;
	uint64_t verify_every;
} cfg = { 4, 4096, 1000, 0 };

static struct {
	uint64_t ticks;
	uint64_t cancels;  /* suspend returned 1 */
	uint64_t restores; /* suspend returned 0 */
	uint64_t errors;   /* suspend returned < 0 */
	uint64_t evtchn_requests;
	uint64_t xs_requests;
	uint64_t cons_drops;
	uint64_t last_pause_us;
	uint64_t max_pause_us;
	uint64_t verify_fail;
} st;

/* ------------------------------------------------------------ low level */

#ifndef TG_PVH
static unsigned long *p2m(void)
{
	return (unsigned long *)tg_start_info->mfn_list;
}

static unsigned long virt_to_mfn(const void *va)
{
	return p2m()[(unsigned long)va >> TG_PAGE_SHIFT];
}

static void *mfn_to_virt(unsigned long mfn)
{
	unsigned long pfn = machine_to_phys_mapping[mfn];

	return (void *)(pfn << TG_PAGE_SHIFT);
}

static const char *boot_cmdline(void)
{
	return (const char *)tg_start_info->cmd_line;
}

static unsigned long boot_nr_pages(void)
{
	return tg_start_info->nr_pages;
}
#else
/* PVH: guest-physical addresses, identity-mapped (head.S). */
static const struct hvm_start_info *hsi(void)
{
	return (const struct hvm_start_info *)(unsigned long)tg_pvh_start_info;
}

static const char *boot_cmdline(void)
{
	return hsi()->cmdline_paddr ?
		       (const char *)(unsigned long)hsi()->cmdline_paddr :
		       "";
}

/* RAM pages in the memory map (version 1 of hvm_start_info). */
static unsigned long boot_nr_pages(void)
{
	const struct hvm_memmap_table_entry *m;
	unsigned long n = 0;

	if (hsi()->version < 1)
		return 0;
	m = (const void *)(unsigned long)hsi()->memmap_paddr;
	for (uint32_t i = 0; i < hsi()->memmap_entries; i++)
		if (m[i].type == XEN_HVM_MEMMAP_TYPE_RAM)
			n += m[i].size >> TG_PAGE_SHIFT;
	return n;
}

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c,
		  uint32_t *d)
{
	__asm__ volatile("cpuid"
			 : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
			 : "a"(leaf), "c"(0));
}

/* HVM/PVH: Xen writes the hypercall stubs into the page whose physical
 * address we give its MSR (CPUID leaf base + 2; base found by the
 * "XenVMMXenVMM" signature).  Dies (triple fault) if not on Xen. */
static void hypercall_init(void)
{
	extern char hypercall_page[];
	uint32_t base, a, b, c, d;

	for (base = 0x40000000; base < 0x40010000; base += 0x100) {
		cpuid(base, &a, &b, &c, &d);
		if (b == 0x566e6558 && c == 0x65584d4d && d == 0x4d4d566e)
			break; /* "XenVMMXenVMM" */
	}
	cpuid(base + 2, &a, &b, &c, &d);
	__asm__ volatile("wrmsr"
			 :
			 : "c"(b), "a"((uint32_t)(unsigned long)hypercall_page),
			   "d"((uint32_t)((unsigned long)hypercall_page >> 32)));
}

/*
 * A callback vector, never taken (interrupts stay off; upcalls masked):
 * libxc's fast resume sets the suspend hypercall's return value 1 in an
 * HVM guest's saved rax only if HVM_PARAM_CALLBACK_IRQ is set ("no PV
 * drivers, no return code"); without it the guest would see 0.
 */
#define TG_CALLBACK_VECTOR 0xf3

static void callback_init(void)
{
	struct xen_hvm_param p = {
		.domid = DOMID_SELF,
		.index = HVM_PARAM_CALLBACK_IRQ,
		.value = (uint64_t)HVM_PARAM_CALLBACK_TYPE_VECTOR << 56 |
			 TG_CALLBACK_VECTOR,
	};

	shi->vcpu_info[0].evtchn_upcall_mask = 1;
	tg_hypercall(__HYPERVISOR_hvm_op, HVMOP_set_param, (unsigned long)&p,
		     0, 0, 0);
}

static uint64_t hvm_param(uint32_t index)
{
	struct xen_hvm_param p = { .domid = DOMID_SELF, .index = index };

	if (tg_hypercall(__HYPERVISOR_hvm_op, HVMOP_get_param,
			 (unsigned long)&p, 0, 0, 0))
		return 0;
	return p.value;
}
#endif

static void hv_write(const char *s, size_t n)
{
	tg_hypercall(__HYPERVISOR_console_io, CONSOLEIO_write, n,
		     (unsigned long)s, 0, 0);
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Xen system time in ns (vcpu 0's pvclock).  Needs shared_info mapped. */
static uint64_t now_ns(void)
{
	const struct vcpu_time_info *t = &shi->vcpu_info[0].time;
	uint32_t ver;
	uint64_t ns, delta;

	do {
		ver = TG_READ_ONCE(t->version);
		tg_rmb();
		delta = rdtsc() - t->tsc_timestamp;
		if (t->tsc_shift < 0)
			delta >>= -t->tsc_shift;
		else
			delta <<= t->tsc_shift;
		ns = t->system_time +
		     (uint64_t)(((unsigned __int128)delta *
				 t->tsc_to_system_mul) >> 32);
		tg_rmb();
	} while ((ver & 1) || ver != TG_READ_ONCE(t->version));
	return ns;
}

static void evtchn_send(evtchn_port_t port)
{
	struct evtchn_send op = { .port = port };

	tg_evtchn_op(EVTCHNOP_send, &op);
}

static bool evtchn_test_and_clear(evtchn_port_t port)
{
	xen_ulong_t bit = (xen_ulong_t)1 << (port % 64);
	xen_ulong_t old;

	old = __atomic_fetch_and(&shi->evtchn_pending[port / 64], ~bit,
				 __ATOMIC_SEQ_CST);
	return old & bit;
}

/* Block until one of @ports is pending or Xen system time @deadline_ns. */
static void poll_ports(evtchn_port_t *ports, unsigned int n,
		       uint64_t deadline_ns)
{
	struct sched_poll p = { .nr_ports = n, .timeout = deadline_ns };

	set_xen_guest_handle(p.ports, ports);
	tg_sched_op(SCHEDOP_poll, &p, 0);
}

#ifndef TG_PVH
static void map_shared_info(void)
{
	uint64_t pte = tg_start_info->shared_info | 0x63; /* P RW A D */

	tg_hypercall(__HYPERVISOR_update_va_mapping, (unsigned long)shinfo_va,
		     pte, UVMF_INVLPG, 0, 0);
	shi = (shared_info_t *)shinfo_va;
}

static void unmap_shared_info(void)
{
	tg_hypercall(__HYPERVISOR_update_va_mapping, (unsigned long)shinfo_va,
		     0, UVMF_INVLPG, 0, 0);
}
#else
/* PVH: Xen places the shared info frame at a gpfn of ours (that RAM
 * page is given up); it stays there across a checkpoint. */
static void map_shared_info(void)
{
	struct xen_add_to_physmap xatp = {
		.domid = DOMID_SELF,
		.space = XENMAPSPACE_shared_info,
		.idx = 0,
		.gpfn = (unsigned long)shinfo_va >> TG_PAGE_SHIFT,
	};

	tg_hypercall(__HYPERVISOR_memory_op, XENMEM_add_to_physmap,
		     (unsigned long)&xatp, 0, 0, 0);
	shi = (shared_info_t *)shinfo_va;
}
#endif

/*
 * The PV save code finds the guest's P2M through this 3-level list in
 * shared_info; the P2M itself is start_info->mfn_list, which a restore
 * rewrites, so the lists are rebuilt after every restore.
 */
static int p2m_publish(void)
{
#ifdef TG_PVH
	return 0; /* translated guest: no P2M of its own */
#else
	unsigned long nr = tg_start_info->nr_pages;
	unsigned long nr_p2m_pages = (nr + 511) / 512;
	unsigned long i;

	if (nr_p2m_pages > 512)
		return -TG_E2BIG;
	for (i = 0; i < nr_p2m_pages; i++)
		p2m_fl[i] = virt_to_mfn(&p2m()[i * 512]);
	p2m_fll[0] = virt_to_mfn(p2m_fl);
	shi->arch.max_pfn = nr;
	shi->arch.pfn_to_mfn_frame_list_list = virt_to_mfn(p2m_fll);
	return 0;
#endif
}

/* -------------------------------------------------------------- console */

static void cons_write(const char *s, size_t n)
{
	uint64_t give_up = now_ns() + 200 * TG_NS_PER_MS;

	while (n) {
		XENCONS_RING_IDX c = TG_READ_ONCE(cons->out_cons);
		XENCONS_RING_IDX p = cons->out_prod;
		size_t space, k;

		tg_mb();
		space = sizeof(cons->out) - (p - c);
		if (!space) {
			/* xenconsoled is not draining: wait, then drop. */
			evtchn_send(cons_port);
			if (now_ns() > give_up) {
				st.cons_drops++;
				return;
			}
			poll_ports(&cons_port, 1, now_ns() + TG_NS_PER_MS);
			evtchn_test_and_clear(cons_port);
			continue;
		}
		for (k = 0; k < n && k < space; k++)
			cons->out[MASK_XENCONS_IDX(p + k, cons->out)] = s[k];
		tg_wmb();
		TG_WRITE_ONCE(cons->out_prod, p + (XENCONS_RING_IDX)k);
		s += k;
		n -= k;
	}
	evtchn_send(cons_port);
}

/* Print to the PV console ring; @hv also to Xen's console (guest_loglvl). */
static void __attribute__((format(printf, 2, 3)))
tg_print(bool hv, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = tg_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	cons_write(buf, (size_t)n);
	if (hv)
		hv_write(buf, (size_t)n);
}

#define tg_log(...) tg_print(true, __VA_ARGS__)

static void __attribute__((noreturn)) tg_die(const char *what, long rc)
{
	struct sched_shutdown sd = { .reason = SHUTDOWN_crash };

	tg_log("FATAL %s rc=%d\n", what, (int)rc);
	for (;;)
		tg_sched_op(SCHEDOP_shutdown, &sd, 0);
}

/* ------------------------------------------------------------- xenstore */

static bool xs_rsp_avail(size_t n)
{
	return TG_READ_ONCE(xsi->rsp_prod) - xsi->rsp_cons >= n;
}

static int xs_ring_write(const void *data, size_t n)
{
	const char *s = data;
	uint64_t deadline = now_ns() + 5000 * TG_NS_PER_MS;

	while (n) {
		XENSTORE_RING_IDX c = TG_READ_ONCE(xsi->req_cons);
		XENSTORE_RING_IDX p = xsi->req_prod;
		size_t space, k;

		tg_mb();
		space = XENSTORE_RING_SIZE - (p - c);
		if (!space) {
			evtchn_send(xs_port);
			if (now_ns() > deadline)
				return -TG_ETIMEDOUT;
			poll_ports(&xs_port, 1, now_ns() + TG_NS_PER_MS);
			evtchn_test_and_clear(xs_port);
			continue;
		}
		for (k = 0; k < n && k < space; k++)
			xsi->req[MASK_XENSTORE_IDX(p + k)] = s[k];
		tg_wmb();
		TG_WRITE_ONCE(xsi->req_prod, p + (XENSTORE_RING_IDX)k);
		s += k;
		n -= k;
	}
	evtchn_send(xs_port);
	return 0;
}

static int xs_ring_read(void *data, size_t n)
{
	char *d = data;
	uint64_t deadline = now_ns() + 5000 * TG_NS_PER_MS;

	while (n) {
		XENSTORE_RING_IDX c = xsi->rsp_cons;
		XENSTORE_RING_IDX p = TG_READ_ONCE(xsi->rsp_prod);
		size_t avail, k;

		tg_rmb();
		avail = p - c;
		if (!avail) {
			if (now_ns() > deadline)
				return -TG_ETIMEDOUT;
			poll_ports(&xs_port, 1, now_ns() + 10 * TG_NS_PER_MS);
			evtchn_test_and_clear(xs_port);
			continue;
		}
		for (k = 0; k < n && k < avail; k++)
			d[k] = xsi->rsp[MASK_XENSTORE_IDX(c + k)];
		tg_mb();
		TG_WRITE_ONCE(xsi->rsp_cons, c + (XENSTORE_RING_IDX)k);
		evtchn_send(xs_port);
		d += k;
		n -= k;
	}
	return 0;
}

static char xs_body[XENSTORE_PAYLOAD_MAX + 1];

/*
 * Read one message into xs_body (NUL-terminated).  Watch events are
 * consumed here: they only set xs_shutdown_fired (our only watch).
 * Returns the message type, or -errno.
 */
static int xs_read_msg(struct xsd_sockmsg *hdr)
{
	int rc;

	rc = xs_ring_read(hdr, sizeof(*hdr));
	if (rc)
		return rc;
	if (hdr->len > XENSTORE_PAYLOAD_MAX)
		return -TG_EPROTO;
	rc = xs_ring_read(xs_body, hdr->len);
	if (rc)
		return rc;
	xs_body[hdr->len] = '\0';
	if (hdr->type == XS_WATCH_EVENT)
		xs_shutdown_fired = true;
	return (int)hdr->type;
}

/* Handle asynchronous watch events already in the ring. */
static void xs_drain_events(void)
{
	struct xsd_sockmsg hdr;

	while (xs_rsp_avail(sizeof(hdr)))
		if (xs_read_msg(&hdr) < 0)
			break;
}

/* One request, synchronously.  Reply payload in xs_body. */
static int xs_request(uint32_t type, const char *a, size_t alen,
		      const char *b, size_t blen)
{
	struct xsd_sockmsg hdr = {
		.type = type,
		.req_id = ++xs_req_id,
		.tx_id = 0,
		.len = (uint32_t)(alen + blen),
	};
	int rc;

	if (hdr.len > XENSTORE_PAYLOAD_MAX)
		return -TG_E2BIG;
	rc = xs_ring_write(&hdr, sizeof(hdr));
	if (!rc)
		rc = xs_ring_write(a, alen);
	if (!rc && blen)
		rc = xs_ring_write(b, blen);
	if (rc)
		return rc;
	for (;;) {
		rc = xs_read_msg(&hdr);
		if (rc < 0)
			return rc;
		if (rc == XS_WATCH_EVENT)
			continue;
		if (hdr.req_id != xs_req_id)
			continue; /* stale reply, e.g. from before a restore */
		if (rc == XS_ERROR)
			return strcmp(xs_body, "ENOENT") ? -TG_EIO : -TG_ENOENT;
		return rc == (int)type ? 0 : -TG_EPROTO;
	}
}

static int xs_read(const char *path, const char **val)
{
	int rc = xs_request(XS_READ, path, strlen(path) + 1, NULL, 0);

	*val = rc ? "" : xs_body;
	return rc;
}

static int xs_write(const char *path, const char *val)
{
	return xs_request(XS_WRITE, path, strlen(path) + 1, val, strlen(val));
}

static int xs_watch(const char *path, const char *token)
{
	return xs_request(XS_WATCH, path, strlen(path) + 1, token,
			  strlen(token) + 1);
}

/* ---------------------------------------------------------- connections */

static void rings_connect(void)
{
#ifndef TG_PVH
	cons = mfn_to_virt(tg_start_info->console.domU.mfn);
	cons_port = tg_start_info->console.domU.evtchn;
	xsi = mfn_to_virt(tg_start_info->store_mfn);
	xs_port = tg_start_info->store_evtchn;
#else
	cons = (void *)(hvm_param(HVM_PARAM_CONSOLE_PFN) << TG_PAGE_SHIFT);
	cons_port = (evtchn_port_t)hvm_param(HVM_PARAM_CONSOLE_EVTCHN);
	xsi = (void *)(hvm_param(HVM_PARAM_STORE_PFN) << TG_PAGE_SHIFT);
	xs_port = (evtchn_port_t)hvm_param(HVM_PARAM_STORE_EVTCHN);
#endif
}

/*
 * Seed 000: allocate an unbound port for dom0 and advertise it in
 * device/suspend/event-channel (the toolstack created it empty).
 */
static int suspend_channel_publish(void)
{
	struct evtchn_alloc_unbound op = { .dom = DOMID_SELF, .remote_dom = 0 };
	const char *old;
	char num[16];
	long rc;

	rc = tg_evtchn_op(EVTCHNOP_alloc_unbound, &op);
	if (rc)
		return (int)rc;
	susp_port = op.port;
	evtchn_test_and_clear(susp_port);
	rc = xs_read("device/suspend/event-channel", &old);
	if (rc)
		tg_log("NOTE device/suspend/event-channel missing rc=%d\n",
		       (int)rc);
	tg_snprintf(num, sizeof(num), "%u", susp_port);
	return xs_write("device/suspend/event-channel", num);
}

static void xenstore_setup(void)
{
	const char *v;
	int rc;

	xs_shutdown_fired = false;
	rc = xs_read("domid", &v);
	tg_log("XENSTORE domid=%s rc=%d", v, rc);
	rc = xs_read("name", &v);
	tg_log(" name=%s rc=%d\n", v, rc);
	rc = suspend_channel_publish();
	if (rc)
		tg_die("suspend event channel", rc);
	rc = xs_watch("control/shutdown", "tg-shutdown");
	if (rc)
		tg_die("watch control/shutdown", rc);
	tg_log("SUSPEND-CHANNEL port=%u published\n", susp_port);
}

/* ------------------------------------------------------------- workload */

static uint64_t page_base(uint64_t index, uint64_t gen)
{
	return (index + 1) * 0x9e3779b97f4a7c15ULL ^
	       gen * 0xc2b2ae3d27d4eb4fULL;
}

/* Rewrite one page to its next generation, then account it. */
static void page_write(uint64_t index)
{
	struct tg_page *pg = &wss[index];
	uint64_t gen = pg->gen + 1, base = page_base(index, gen), sum = 0;
	unsigned int k;

	for (k = 0; k < 508; k++) {
		pg->body[k] = base ^ k;
		sum += base ^ k;
	}
	pg->magic = TG_PAGE_MAGIC;
	pg->index = index;
	pg->csum = sum;
	pg->gen = gen;
	ledger.sum_gen++;
	ledger.writes++;
}

static bool evtchn_pending(evtchn_port_t port)
{
	return TG_READ_ONCE(shi->evtchn_pending[port / 64]) &
	       ((xen_ulong_t)1 << (port % 64));
}

/*
 * Write up to @npages pages; stop early when a suspend is requested so
 * that the request waits for one page write at most, not for a backlog.
 * Returns the number of pages written.
 */
static uint64_t workload_run(uint64_t npages)
{
	uint64_t done;

	for (done = 0; done < npages; done++) {
		if (evtchn_pending(susp_port))
			break;
		page_write(ledger.cursor);
		ledger.cursor = (ledger.cursor + 1) % cfg.wss_pages;
	}
	return done;
}

/* Check every page and the ledger; print one VERIFY line.  0 = ok. */
static int workload_verify(const char *why)
{
	uint64_t i, sum = 0, bad = 0, first_bad = 0;

	for (i = 0; i < TG_WSS_MAX; i++) {
		const struct tg_page *pg = &wss[i];
		uint64_t base, csum = 0;
		unsigned int k;
		bool ok = true;

		if (pg->gen == 0) {
			ok = pg->magic == 0;
		} else {
			base = page_base(i, pg->gen);
			for (k = 0; k < 508; k++) {
				if (pg->body[k] != (base ^ k))
					ok = false;
				csum += pg->body[k];
			}
			ok = ok && pg->magic == TG_PAGE_MAGIC &&
			     pg->index == i && pg->csum == csum &&
			     i < cfg.wss_pages;
		}
		if (!ok && !bad++)
			first_bad = i;
		sum += pg->gen;
	}
	if (!bad && sum == ledger.sum_gen && ledger.magic == TG_LEDGER_MAGIC) {
		tg_log("VERIFY ok why=%s pages=%u sum_gen=%u writes=%u\n", why,
		       (unsigned int)cfg.wss_pages, (unsigned int)sum,
		       (unsigned int)ledger.writes);
		return 0;
	}
	st.verify_fail++;
	tg_log("VERIFY FAIL why=%s bad_pages=%u first_bad=%u sum_gen=%u ledger_sum_gen=%u\n",
	       why, (unsigned int)bad, (unsigned int)first_bad,
	       (unsigned int)sum, (unsigned int)ledger.sum_gen);
	return -TG_EIO;
}

/* -------------------------------------------------------------- suspend */

enum tg_req { TG_REQ_EVTCHN, TG_REQ_XENSTORE };

/* Called only from the main loop, i.e. between page writes. */
static void do_suspend(enum tg_req why)
{
	struct sched_shutdown sd = { .reason = SHUTDOWN_suspend };
#ifndef TG_PVH
	unsigned long store_mfn = tg_start_info->store_mfn;
	unsigned long cons_mfn = tg_start_info->console.domU.mfn;
	unsigned long si_mfn = virt_to_mfn(tg_start_info);
#else
	unsigned long si_mfn = 0; /* PVH: no start_info argument */
#endif
	uint64_t t0 = now_ns(), us;
	long rc;

	if (why == TG_REQ_EVTCHN)
		st.evtchn_requests++;
	else
		st.xs_requests++;
	/* A watch event racing in now would be lost on restore: take it. */
	xs_drain_events();
#ifndef TG_PVH
	tg_start_info->store_mfn = machine_to_phys_mapping[store_mfn];
	tg_start_info->console.domU.mfn = machine_to_phys_mapping[cons_mfn];
	unmap_shared_info();
#endif

	/* PV: start_info's MFN goes in the third argument (rdx). */
	rc = tg_sched_op(SCHEDOP_shutdown, &sd, si_mfn);

	if (rc != 0) {
		/* 1: suspend cancelled (checkpoint); <0: it failed.  Same domain. */
#ifndef TG_PVH
		tg_start_info->store_mfn = store_mfn;
		tg_start_info->console.domU.mfn = cons_mfn;
		map_shared_info();
#endif
		if (rc > 0)
			st.cancels++;
		else
			st.errors++;
		us = (now_ns() - t0) / 1000;
		st.last_pause_us = us;
		if (us > st.max_pause_us)
			st.max_pause_us = us;
		if (rc > 0 && cfg.verify_every &&
		    st.cancels % cfg.verify_every == 0)
			workload_verify("cancel");
		if (rc < 0)
			tg_log("SUSPEND-ERROR rc=%d\n", (int)rc);
		return;
	}

	/*
	 * 0: restored into a new domain (seed 004, RESTORE).  start_info now
	 * holds the new host's frames and ports; our old ports are gone.
	 * System time restarted too, so the pause can't be measured.
	 */
	st.restores++;
	clock_restarted = true;
	map_shared_info();
#ifdef TG_PVH
	callback_init(); /* a new domain: HVM params start over */
#endif
	rings_connect();
	/* Discard whatever the snapshot's rings still held for the old peer. */
	xsi->rsp_cons = TG_READ_ONCE(xsi->rsp_prod);
	p2m_publish();
	tg_log("RESTORED restores=%u domain has new store_evtchn=%u console_evtchn=%u\n",
	       (unsigned int)st.restores, xs_port, cons_port);
	xenstore_setup();
	workload_verify("restore");
}

/* ----------------------------------------------------------------- main */

static void parse_cmdline(const char *s)
{
	static const struct {
		const char *key;
		uint64_t *val;
	} keys[] = {
		{ "dirty_pages_per_ms=", &cfg.dirty_pages_per_ms },
		{ "wss_pages=", &cfg.wss_pages },
		{ "tick_ms=", &cfg.tick_ms },
		{ "verify_every=", &cfg.verify_every },
	};
	unsigned int i;

	while (*s) {
		while (*s == ' ')
			s++;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t n = strlen(keys[i].key);

			if (!strncmp(s, keys[i].key, n)) {
				*keys[i].val = tg_strtou64(s + n, NULL);
				break;
			}
		}
		while (*s && *s != ' ')
			s++;
	}
	if (cfg.wss_pages < 1 || cfg.wss_pages > TG_WSS_MAX)
		cfg.wss_pages = TG_WSS_MAX;
	if (cfg.tick_ms < 10)
		cfg.tick_ms = 10;
}

static void tick(void)
{
	tg_print(false, "TICK %u gen=%u suspends_cancelled=%u restores=%u dirtied=%u evtchn_req=%u xs_req=%u errors=%u pause_us=%u max_pause_us=%u\n",
		 (unsigned int)++st.ticks,
		 (unsigned int)(st.cancels + st.restores),
		 (unsigned int)st.cancels, (unsigned int)st.restores,
		 (unsigned int)ledger.writes,
		 (unsigned int)st.evtchn_requests,
		 (unsigned int)st.xs_requests, (unsigned int)st.errors,
		 (unsigned int)st.last_pause_us,
		 (unsigned int)st.max_pause_us);
}

/* control/shutdown fallback: "suspend" -> clear the node and suspend. */
static void handle_shutdown_watch(void)
{
	struct sched_shutdown sd = { .reason = SHUTDOWN_poweroff };
	const char *v;

	xs_shutdown_fired = false;
	if (xs_read("control/shutdown", &v) || !*v)
		return;
	if (!strcmp(v, "suspend")) {
		xs_write("control/shutdown", "");
		do_suspend(TG_REQ_XENSTORE);
		return;
	}
	tg_log("SHUTDOWN request=%s\n", v);
	if (!strcmp(v, "reboot"))
		sd.reason = SHUTDOWN_reboot;
	xs_write("control/shutdown", "");
	tg_sched_op(SCHEDOP_shutdown, &sd, 0);
}

void tg_main(void)
{
	uint64_t now, next_tick, work_t0, work_done;
	evtchn_port_t ports[2];
	long rc;

#ifdef TG_PVH
	hypercall_init();
#endif
	map_shared_info();
#ifdef TG_PVH
	callback_init();
#endif
	rings_connect();
	tg_log("tiber-testguest: boot nr_pages=%u store_evtchn=%u console_evtchn=%u cmdline='%s'\n",
	       (unsigned int)boot_nr_pages(), xs_port, cons_port,
	       boot_cmdline());
	parse_cmdline(boot_cmdline());
	tg_log("CONFIG dirty_pages_per_ms=%u wss_pages=%u tick_ms=%u verify_every=%u suspend_cancel_note=%s\n",
	       (unsigned int)cfg.dirty_pages_per_ms,
	       (unsigned int)cfg.wss_pages, (unsigned int)cfg.tick_ms,
	       (unsigned int)cfg.verify_every,
#ifdef TG_NO_SUSPEND_CANCEL
	       "no"
#else
	       "yes"
#endif
	);
	rc = p2m_publish();
	if (rc)
		tg_die("p2m frame list", rc);
	ledger.magic = TG_LEDGER_MAGIC;
	xenstore_setup();
	workload_verify("boot");

	now = now_ns();
	next_tick = now + cfg.tick_ms * TG_NS_PER_MS;
	work_t0 = now;
	work_done = 0;
	for (;;) {
		uint64_t due, deadline;

		/* Safe point: no page write is in progress here. */
		if (evtchn_test_and_clear(susp_port))
			do_suspend(TG_REQ_EVTCHN);
		evtchn_test_and_clear(xs_port);
		xs_drain_events();
		if (xs_shutdown_fired)
			handle_shutdown_watch();
		if (clock_restarted) {
			clock_restarted = false;
			work_t0 = now_ns();
			work_done = 0;
			next_tick = work_t0 + cfg.tick_ms * TG_NS_PER_MS;
		}

		now = now_ns();
		due = (now - work_t0) / TG_NS_PER_MS * cfg.dirty_pages_per_ms;
		/* After a long pause don't burst: drop the backlog. */
		if (due > work_done + 50 * cfg.dirty_pages_per_ms)
			work_done = due - cfg.dirty_pages_per_ms;
		if (due > work_done)
			work_done += workload_run(due - work_done);
		if (now >= next_tick) {
			tick();
			next_tick += cfg.tick_ms * TG_NS_PER_MS;
			if (next_tick <= now)
				next_tick = now + cfg.tick_ms * TG_NS_PER_MS;
		}

		deadline = next_tick;
		if (cfg.dirty_pages_per_ms) {
			uint64_t next_ms = work_t0 + ((now - work_t0) /
						      TG_NS_PER_MS + 1) *
							     TG_NS_PER_MS;
			if (next_ms < deadline)
				deadline = next_ms;
		}
		ports[0] = susp_port;
		ports[1] = xs_port;
		poll_ports(ports, 2, deadline);
	}
}
