// SPDX-License-Identifier: MIT
/*
 * tiber-replicator internals shared by its files: the table of protected
 * domains, the options, and the entry points of each file.
 *
 * main.c      options, listener, accept loop, shutdown
 * session.c   one primary's connection: HELLO, epochs, ACKs, heartbeats
 * failover.c  restoring a guest whose primary was lost; tiberctl
 * authz.c     the authorize_file
 * metrics.c   the Prometheus metrics
 */
#ifndef TIBER_REPLICATOR_H
#define TIBER_REPLICATOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiber/backend.h"
#include "tiber/replica.h"
#include "tiber/transport.h"

#define MAX_DOMS 1024 /* the most max_guests can be */

/*
 * A domain's life on the backup (changes under doms_lock):
 *   FREE -> ACTIVE (a primary's HELLO) -> IDLE (orderly goodbye)
 *   ACTIVE -> LOST (silence, broken link; or the primary said it lost
 *     us and did not come back) -> ACTIVE again if it returns, or
 *     FENCING (fence_cmd, then restore) -> FAILED_OVER
 *   LOST/IDLE -> FENCING -> FAILED_OVER by `tiberctl promote`
 *   FAILED_OVER stays (the old primary is refused: PROMOTED);
 *     `tiberctl reprotect` runs a tiberd that protects the restored
 *     guest towards a new backup
 * A session that ends before its first commit leaves its domain FREE.
 */
enum dom_state {
	DOM_FREE,
	DOM_ACTIVE,
	DOM_IDLE,
	DOM_LOST,
	DOM_FENCING,
	DOM_FAILED_OVER
};

enum failover_mode {
	FAILOVER_AUTO,	      /* after fence_cmd succeeded (else manual) */
	FAILOVER_MANUAL,      /* wait for tiberctl promote */
	FAILOVER_OFF,	      /* never */
	FAILOVER_UNSAFE_AUTO, /* without fencing: tests' negative control */
};

/* One protected domain; state changes under doms_lock. */
struct rdom {
	enum dom_state state;
	uint32_t domid;
	char name[33];
	uint8_t uuid[16];  /* the guest's, bound at its first protection */
	char peer[64];	   /* the primary's address */
	char peer_id[64];  /* its TLS identity ("" without TLS) */
	char cause[96];	   /* why it is LOST */
	int64_t t_commit;  /* when the committed epoch was applied */
	int64_t t_last_rx; /* LOST: the primary's last record */
	int64_t t_due;	   /* LOST: fence (auto) from then on */
	uint64_t fence_attempts, fence_failures;
	struct tb_replica rep;
	bool have_rep;
	struct tb_restore_res restored;
	unsigned reprotects; /* tiberctl reprotect answered */
};

struct conn_ctx {
	struct tb_conn *conn;
	pthread_t thread;
	struct conn_ctx *next;
	atomic_bool done;
};

struct repl_opts {
	int64_t hb_interval_ns, hb_timeout_ns;
	enum failover_mode failover;
	const char *fence_cmd;
	int64_t fence_timeout_ns, fence_delay_ns, fence_retry_ns;
	int64_t reconnect_grace_ns;
	const char *backend_name;
	const char *restore_args;
	const struct tb_backend_ops *ops;
	const char *status_file;
	const char *dump_dir;
	bool exit_after_failover;
	struct tb_tls_ctx *tls;	      /* NULL: insecure (plaintext) */
	int64_t handshake_timeout_ns; /* a peer must be authenticated by then */
	unsigned max_handshakes;      /* unauthenticated connections at once */
	uint64_t max_guest_mem;	      /* bytes: no replica larger */
	unsigned max_guests;	      /* domains not FREE at once */
	const char *disk_dir;	      /* disk replicas; NULL: no disks */
	uint64_t disk_spool_max;      /* disk bytes per epoch */
	uint64_t max_disk_size;	      /* bytes of one disk; 0: any */
};

extern struct repl_opts opt;
extern pthread_mutex_t doms_lock;
extern struct rdom doms[MAX_DOMS];
extern atomic_bool stopping;
extern atomic_int failovers;
/* session.c: peers refused (TLS handshake; authorize_file; a guest over
 * max_guest_mem or its grant) */
extern atomic_uint_fast64_t refused_handshakes, refused_unauthorized,
	refused_limits;

/* authz.c: the authorize_file (see there).  Parse @text (@name for
 * messages) or load @path; 0 or -errno with @why naming file:line. */
int repl_authz_parse(const char *text, const char *name, char *why, size_t len);
int repl_authz_load(const char *path, char *why, size_t len);
/* May the primary @id (NULL: unauthenticated) protect @guest?  If so,
 * *@max_bytes (may be NULL) = its grant's MAXMEM, 0 if none. */
bool repl_authz_allows(const char *id, const char *guest, uint64_t *max_bytes);
size_t repl_authz_rules(void);
void repl_authz_free(void);

/* main.c: ask the accept loop to stop (signal-safe). */
void repl_stop(void);

/* session.c: thread body serving one accepted connection (a conn_ctx). */
void *repl_conn_main(void *arg);
/* session.c: set a domain's state under doms_lock. */
void repl_release(struct rdom *d, enum dom_state st);

/* failover.c: the primary of @d was lost (@cause; @t_last_rx: its last
 * record).  Waits @wait_ns for it to come back, then fences and
 * restores (failover auto), or leaves the domain LOST for an operator
 * (manual).  Returns when the domain is no longer this thread's. */
void repl_primary_lost(struct rdom *d, const char *cause, int64_t t_last_rx,
		       int64_t wait_ns);
/* failover.c: the primary handed the guest over (switchover): it is
 * stopped for good after the committed epoch; restore it now. */
void repl_handover(struct rdom *d);
/* failover.c: tiberctl commands (status, promote NAME, reprotect NAME)
 * into @buf as one JSON object. */
void repl_control(void *arg, const char *cmd, char *buf, size_t len);
const char *repl_state_name(enum dom_state st);
/* metrics.c: the Prometheus metrics (a tb_metrics_fn). */
void repl_metrics(struct tb_buf *out, void *arg);

#endif
