// SPDX-License-Identifier: MIT
/* Network output commit with libnl-route (see xen_netbuf.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/matchall.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/plug.h>
#include <netlink/route/tc.h>

#include "xen_netbuf.h"

#define DEFAULT_LIMIT  (8u << 20)
#define PLUG_HANDLE    0x00010000u /* 1: */
#define INGRESS_HANDLE 0xffff0000u /* ffff: */
#define FILTER_PRIO    1

struct tb_netbuf {
	struct nl_sock *sk;
	struct nl_sock *sk_mon; /* tb_netbuf_backlog's own */
	char vif[IFNAMSIZ];
	char ifb[IFNAMSIZ];
	int vif_idx, ifb_idx;
	uint32_t limit;
	bool gated;
	bool marker; /* a BUFFER marker awaits its release */
	uint64_t marker_epoch;
	const char *filter_kind;
	uint64_t boundaries, merged, releases;
};

static void why_set(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* libnl's -NLE_* -> -errno */
static int nl_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return 0;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_RANGE:
		return -ERANGE;
	default:
		return -EIO;
	}
}

static int link_index(struct nl_sock *sk, const char *name)
{
	struct rtnl_link *l = NULL;
	int err = rtnl_link_get_kernel(sk, 0, name, &l);
	int idx;

	if (err < 0)
		return err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV ?
			       -ENODEV :
			       nl_errno(err);
	idx = rtnl_link_get_ifindex(l);
	rtnl_link_put(l);
	return idx;
}

static int ifb_create(struct tb_netbuf *nb)
{
	struct rtnl_link *l = rtnl_link_alloc(), *orig = NULL, *chg = NULL;
	int err, rc;

	if (!l)
		return -ENOMEM;
	rtnl_link_set_name(l, nb->ifb);
	err = rtnl_link_set_type(l, "ifb");
	if (!err) {
		err = rtnl_link_add(nb->sk, l, NLM_F_CREATE);
		if (err == -NLE_EXIST)
			err = 0;
	}
	rtnl_link_put(l);
	if (err < 0)
		return nl_errno(err);
	rc = link_index(nb->sk, nb->ifb);
	if (rc < 0)
		return rc;
	nb->ifb_idx = rc;
	err = rtnl_link_get_kernel(nb->sk, nb->ifb_idx, NULL, &orig);
	if (err < 0)
		return nl_errno(err);
	chg = rtnl_link_alloc();
	if (!chg) {
		rtnl_link_put(orig);
		return -ENOMEM;
	}
	rtnl_link_set_flags(chg, IFF_UP);
	err = rtnl_link_change(nb->sk, orig, chg, 0);
	rtnl_link_put(chg);
	rtnl_link_put(orig);
	return nl_errno(err);
}

static struct rtnl_qdisc *qdisc_new(int ifindex, uint32_t parent,
				    uint32_t handle, const char *kind)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();

	if (!q)
		return NULL;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), parent);
	rtnl_tc_set_handle(TC_CAST(q), handle);
	if (rtnl_tc_set_kind(TC_CAST(q), kind) < 0) {
		rtnl_qdisc_put(q);
		return NULL;
	}
	return q;
}

static int ingress_create(struct tb_netbuf *nb)
{
	struct rtnl_qdisc *q =
		qdisc_new(nb->vif_idx, TC_H_INGRESS, INGRESS_HANDLE, "ingress");
	int err;

	if (!q)
		return -ENOMEM;
	/* idempotent: drop an old ingress qdisc (and its filters) first */
	rtnl_qdisc_delete(nb->sk, q);
	err = rtnl_qdisc_add(nb->sk, q, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_qdisc_put(q);
	return nl_errno(err);
}

static int filter_create(struct tb_netbuf *nb, bool matchall)
{
	struct rtnl_cls *c = rtnl_cls_alloc();
	struct rtnl_act *a = rtnl_act_alloc();
	int err = -NLE_NOMEM;

	if (!c || !a)
		goto out;
	rtnl_tc_set_ifindex(TC_CAST(c), nb->vif_idx);
	rtnl_tc_set_parent(TC_CAST(c), INGRESS_HANDLE);
	rtnl_cls_set_protocol(c, ETH_P_ALL); /* IPv4, IPv6, ARP, ... */
	rtnl_cls_set_prio(c, FILTER_PRIO);
	err = rtnl_tc_set_kind(TC_CAST(a), "mirred");
	if (err < 0)
		goto out;
	rtnl_mirred_set_action(a, TCA_EGRESS_REDIR);
	rtnl_mirred_set_policy(a, TC_ACT_STOLEN);
	rtnl_mirred_set_ifindex(a, (uint32_t)nb->ifb_idx);
	err = rtnl_tc_set_kind(TC_CAST(c), matchall ? "matchall" : "u32");
	if (err < 0)
		goto out;
	if (matchall) {
		err = rtnl_mall_append_action(c, a);
	} else {
		err = rtnl_u32_add_key_uint32(c, 0, 0, 0, 0); /* match all */
		if (!err)
			err = rtnl_u32_add_action(c, a);
	}
	if (err < 0)
		goto out;
	err = rtnl_cls_add(nb->sk, c, NLM_F_CREATE | NLM_F_EXCL);
out:
	if (a)
		rtnl_act_put(a);
	if (c)
		rtnl_cls_put(c);
	return nl_errno(err);
}

/* One plug command (or creation with @create) on the ifb root. */
static int plug_cmd(struct tb_netbuf *nb, int cmd, bool create)
{
	struct rtnl_qdisc *q =
		qdisc_new(nb->ifb_idx, TC_H_ROOT, PLUG_HANDLE, "plug");
	int err;

	if (!q)
		return -ENOMEM;
	if (create)
		err = rtnl_qdisc_plug_set_limit(q, (int)nb->limit);
	else if (cmd == TCQ_PLUG_BUFFER)
		err = rtnl_qdisc_plug_buffer(q);
	else if (cmd == TCQ_PLUG_RELEASE_ONE)
		err = rtnl_qdisc_plug_release_one(q);
	else
		err = rtnl_qdisc_plug_release_indefinite(q);
	if (!err)
		err = rtnl_qdisc_add(nb->sk, q,
				     create ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	rtnl_qdisc_put(q);
	return nl_errno(err);
}

static void undo_ingress(struct nl_sock *sk, int vif_idx)
{
	struct rtnl_qdisc *q;

	if (vif_idx <= 0)
		return;
	q = qdisc_new(vif_idx, TC_H_INGRESS, INGRESS_HANDLE, "ingress");
	if (q) {
		rtnl_qdisc_delete(sk, q);
		rtnl_qdisc_put(q);
	}
}

static void undo_ifb(struct nl_sock *sk, const char *ifb)
{
	struct rtnl_link *l = rtnl_link_alloc();

	if (l) {
		rtnl_link_set_name(l, ifb);
		rtnl_link_delete(sk, l);
		rtnl_link_put(l);
	}
}

static void undo(struct nl_sock *sk, int vif_idx, const char *ifb)
{
	undo_ingress(sk, vif_idx);
	undo_ifb(sk, ifb);
}

static void ifb_name(char *dst, const char *vif, const char *ifb)
{
	if (ifb)
		snprintf(dst, IFNAMSIZ, "%s", ifb);
	else
		snprintf(dst, IFNAMSIZ, "tb-%.12s", vif);
}

int tb_netbuf_setup(struct tb_netbuf **out, const struct tb_netbuf_cfg *cfg,
		    char *why, size_t why_len)
{
	struct tb_netbuf *nb;
	int rc;

	*out = NULL;
	if (!cfg->vif || !*cfg->vif || strlen(cfg->vif) >= IFNAMSIZ) {
		why_set(why, why_len, "netbuf: bad vif name");
		return -EINVAL;
	}
	nb = calloc(1, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	snprintf(nb->vif, sizeof(nb->vif), "%s", cfg->vif);
	ifb_name(nb->ifb, cfg->vif, cfg->ifb);
	nb->limit = cfg->limit_bytes ? cfg->limit_bytes : DEFAULT_LIMIT;
	nb->gated = true;
	nb->sk = nl_socket_alloc();
	if (!nb->sk) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = nl_errno(nl_connect(nb->sk, NETLINK_ROUTE));
	if (rc) {
		why_set(why, why_len, "netbuf: rtnetlink: %s", strerror(-rc));
		goto out_sock;
	}
	rc = link_index(nb->sk, nb->vif);
	if (rc < 0) {
		why_set(why, why_len, "netbuf: no interface %s", nb->vif);
		goto out_sock;
	}
	nb->vif_idx = rc;
	rc = ifb_create(nb);
	if (rc) {
		why_set(why, why_len,
			"netbuf: cannot create ifb device %s: %s (kernel module ifb loaded?)",
			nb->ifb, strerror(-rc));
		goto out_undo;
	}
	rc = plug_cmd(nb, 0, true);
	if (rc) {
		why_set(why, why_len,
			"netbuf: cannot add a plug qdisc on %s: %s (kernel module sch_plug missing?)",
			nb->ifb, strerror(-rc));
		goto out_undo;
	}
	rc = ingress_create(nb);
	if (rc) {
		why_set(why, why_len,
			"netbuf: cannot add an ingress qdisc on %s: %s (kernel module sch_ingress missing?)",
			nb->vif, strerror(-rc));
		goto out_undo;
	}
	nb->filter_kind = "matchall";
	rc = filter_create(nb, true);
	if (rc) {
		nb->filter_kind = "u32";
		rc = filter_create(nb, false);
	}
	if (rc) {
		why_set(why, why_len,
			"netbuf: cannot redirect %s to %s: %s (kernel modules cls_matchall or cls_u32, and act_mirred missing?)",
			nb->vif, nb->ifb, strerror(-rc));
		goto out_undo;
	}
	*out = nb;
	return 0;
out_undo:
	undo(nb->sk, nb->vif_idx, nb->ifb);
out_sock:
	nl_socket_free(nb->sk);
out_free:
	free(nb);
	return rc;
}

int tb_netbuf_boundary(struct tb_netbuf *nb, uint64_t epoch)
{
	int rc;

	if (!nb->gated)
		return 0;
	nb->boundaries++;
	if (nb->marker) {
		/* one marker in the kernel: this epoch's output joins the
		 * next marker (released later, never earlier) */
		nb->merged++;
		return 0;
	}
	rc = plug_cmd(nb, TCQ_PLUG_BUFFER, false);
	if (!rc) {
		nb->marker = true;
		nb->marker_epoch = epoch;
	}
	return rc;
}

int tb_netbuf_release(struct tb_netbuf *nb, uint64_t epoch)
{
	int rc;

	if (!nb->gated || !nb->marker || epoch < nb->marker_epoch)
		return 0;
	rc = plug_cmd(nb, TCQ_PLUG_RELEASE_ONE, false);
	if (!rc) {
		nb->marker = false;
		nb->releases++;
	}
	return rc;
}

int tb_netbuf_set_gated(struct tb_netbuf *nb, bool gated)
{
	int rc;

	if (gated == nb->gated)
		return 0;
	/* BUFFER ends indefinite release: later packets are held */
	rc = plug_cmd(nb, gated ? TCQ_PLUG_BUFFER : TCQ_PLUG_RELEASE_INDEFINITE,
		      false);
	if (!rc) {
		nb->gated = gated;
		nb->marker = false;
	}
	return rc;
}

unsigned tb_netbuf_pending(const struct tb_netbuf *nb)
{
	return nb->marker ? 1 : 0;
}

/* The plug's counters, by a qdisc dump on @sk. */
static int read_plug(struct nl_sock *sk, int ifb_idx,
		     struct tb_netbuf_stats *st)
{
	struct nl_cache *cache = NULL;
	struct rtnl_qdisc *q;
	int err;

	err = rtnl_qdisc_alloc_cache(sk, &cache);
	if (err < 0)
		return nl_errno(err);
	q = rtnl_qdisc_get(cache, ifb_idx, PLUG_HANDLE);
	if (!q) {
		nl_cache_free(cache);
		return -ENOENT;
	}
	st->held_bytes = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_BACKLOG);
	st->held_packets = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_QLEN);
	st->released_bytes = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_BYTES);
	st->released_packets = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_PACKETS);
	st->dropped_packets = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_DROPS);
	rtnl_qdisc_put(q);
	nl_cache_free(cache);
	return 0;
}

int tb_netbuf_get_stats(struct tb_netbuf *nb, struct tb_netbuf_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->boundaries = nb->boundaries;
	st->merged = nb->merged;
	st->releases = nb->releases;
	st->filter_kind = nb->filter_kind;
	return read_plug(nb->sk, nb->ifb_idx, st);
}

int tb_netbuf_backlog(struct tb_netbuf *nb, uint64_t *bytes)
{
	struct tb_netbuf_stats st = { 0 };
	int rc;

	if (!nb->sk_mon) {
		nb->sk_mon = nl_socket_alloc();
		if (!nb->sk_mon)
			return -ENOMEM;
		rc = nl_errno(nl_connect(nb->sk_mon, NETLINK_ROUTE));
		if (rc) {
			nl_socket_free(nb->sk_mon);
			nb->sk_mon = NULL;
			return rc;
		}
	}
	rc = read_plug(nb->sk_mon, nb->ifb_idx, &st);
	*bytes = st.held_bytes;
	return rc;
}

void tb_netbuf_teardown(struct tb_netbuf *nb)
{
	if (!nb)
		return;
	/* redirect off first, then let the held packets go, then remove */
	undo_ingress(nb->sk, nb->vif_idx);
	plug_cmd(nb, TCQ_PLUG_RELEASE_INDEFINITE, false);
	undo_ifb(nb->sk, nb->ifb);
	nl_socket_free(nb->sk);
	if (nb->sk_mon)
		nl_socket_free(nb->sk_mon);
	free(nb);
}

void tb_netbuf_discard(struct tb_netbuf *nb)
{
	if (!nb)
		return;
	undo_ingress(nb->sk, nb->vif_idx);
	undo_ifb(nb->sk, nb->ifb);
	nl_socket_free(nb->sk);
	if (nb->sk_mon)
		nl_socket_free(nb->sk_mon);
	free(nb);
}

bool tb_netbuf_cleanup(const char *vif, const char *ifb)
{
	struct nl_sock *sk = nl_socket_alloc();
	char name[IFNAMSIZ];
	bool found = false;
	int idx;

	if (!sk)
		return false;
	if (!nl_connect(sk, NETLINK_ROUTE)) {
		idx = link_index(sk, vif);
		ifb_name(name, vif, ifb);
		found = link_index(sk, name) > 0;
		undo(sk, idx > 0 ? idx : 0, name);
	}
	nl_socket_free(sk);
	return found;
}
