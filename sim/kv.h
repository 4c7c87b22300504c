/* SPDX-License-Identifier: MIT */
/*
 * The KV service of tiber-simguest (sim/kv.c), its client and checker.
 * The service runs inside a guest but knows it only through struct
 * tb_kv_host: what it needs of the guest, handed over at open (so kv.c
 * does not call back into guest.c).
 */
#ifndef TIBER_SIM_KV_H
#define TIBER_SIM_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_kv_host {
	uint8_t *ram; /* guest RAM: the table and the dedup records live in
			 it (layout: tiber/sim_uapi.h) */
	/* a page of ram was written (dirty tracking) */
	void (*mark)(uint64_t pfn, void *ctx);
	/* queue a reply through the guest's output gate (blocks for room) */
	int (*send)(void *ctx, uint32_t conn, const void *p, uint32_t len);
	/* the block device: write whole 512-byte sectors, 0 once complete
	 * or -errno; NULL: the guest has no disk (no durable log) */
	int (*disk_write)(void *ctx, uint64_t off, const void *p, uint32_t len);
	uint64_t disk_size;
	/* the guest is shutting down: stop waiting */
	bool (*exiting)(void *ctx);
	void *ctx;
};

/* The service, run by one workload thread.  @host is copied. */
struct tb_guest_kv;
int tb_guest_kv_open(const struct tb_kv_host *host, const char *addr,
		     struct tb_guest_kv **out);
/* One service step: poll sockets up to @timeout_ms, apply commands, queue
 * replies through the gate.  Returns 0 or -errno. */
int tb_guest_kv_step(struct tb_guest_kv *kv, int timeout_ms);
/* RESTORE hook: drop every connection, re-listen. */
int tb_guest_kv_relisten(struct tb_guest_kv *kv);
void tb_guest_kv_close(struct tb_guest_kv *kv);
/* Called by the netback thread: send to a connection, false if gone. */
bool tb_guest_kv_transmit(struct tb_guest_kv *kv, uint32_t conn, const void *p,
			  size_t len);

/* KV client (failover checker). */
int tb_kvclient_main(const char *addr, unsigned clients, uint64_t ops,
		     const char *log_path, uint64_t keys, int64_t retry_ns);
/* Every SET/INCR answered OK in the client log @replies is in the disk
 * log of @disk: exit status 0, else 1 (2: cannot read). */
int tb_kvcheck_main(const char *replies, const char *disk);

/* Parse "unix:/path" or "host:port" into a sockaddr; 0 or -EINVAL. */
struct sockaddr_storage;
int tb_guest_parse_addr(const char *s, struct sockaddr_storage *ss,
			unsigned *len);

#endif
