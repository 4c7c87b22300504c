// SPDX-License-Identifier: MIT
/*
 * The KV service inside tiber-simguest, and its client (failover checker).
 *
 * Protocol, one line each way:
 *   request  "<client> <seq> SET <key> <value>" | "... GET <key>" |
 *            "... INCR <key>"
 *   reply    "<client> <seq> OK <value>" | "<client> <seq> NF" (GET, no key)
 *            | "<client> <seq> ERR <why>"
 * Invariants:
 *   - the table and the per-client dedup record (last seq + last reply)
 *     live in guest RAM and change together in one step between two
 *     safepoints, so a checkpoint holds both or neither;
 *   - a retried seq (== last seq) gets the stored reply, never re-applies;
 *   - every reply leaves through the output gate (the host's send).
 * The guest is known only through struct tb_kv_host (kv.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tiber/common.h"
#include "tiber/simproto.h"
#include "kv.h"

#define KV_MAX_CONNS 64
#define KV_LINE	     256

struct kv_conn {
	int fd;
	uint32_t id;
	size_t inlen;
	char in[KV_LINE * 4];
};

struct tb_guest_kv {
	struct tb_kv_host h;
	char *addr;
	int listen_fd;
	uint32_t next_id;
	pthread_mutex_t lock; /* conns vs netback */
	struct kv_conn conn[KV_MAX_CONNS];
};

int tb_guest_parse_addr(const char *s, struct sockaddr_storage *ss,
			unsigned *len)
{
	memset(ss, 0, sizeof(*ss));
	if (!strncmp(s, "unix:", 5)) {
		struct sockaddr_un *su = (struct sockaddr_un *)ss;

		if (strlen(s + 5) >= sizeof(su->sun_path) || !s[5])
			return -EINVAL;
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, s + 5, strlen(s + 5) + 1);
		*len = sizeof(*su);
		return 0;
	} else {
		struct sockaddr_in *si = (struct sockaddr_in *)ss;
		char host[64];
		const char *colon = strrchr(s, ':');
		unsigned long port;
		char *end;

		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
		port = strtoul(colon + 1, &end, 10);
		if (*end || port > 65535)
			return -EINVAL;
		si->sin_family = AF_INET;
		si->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &si->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*si);
		return 0;
	}
}

static int kv_listen(struct tb_guest_kv *kv)
{
	struct sockaddr_storage ss;
	unsigned len;
	int s, one = 1;

	if (tb_guest_parse_addr(kv->addr, &ss, &len))
		return -EINVAL;
	s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	else
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&ss, len) || listen(s, 64)) {
		int e = -errno;

		close(s);
		return e;
	}
	kv->listen_fd = s;
	return 0;
}

int tb_guest_kv_open(const struct tb_kv_host *host, const char *addr,
		     struct tb_guest_kv **out)
{
	struct tb_guest_kv *kv;
	int rc, i;

	if (!addr)
		return -EINVAL;
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	kv->h = *host;
	kv->addr = strdup(addr);
	kv->listen_fd = -1;
	kv->next_id = 1;
	pthread_mutex_init(&kv->lock, NULL);
	for (i = 0; i < KV_MAX_CONNS; i++)
		kv->conn[i].fd = -1;
	rc = kv->addr ? kv_listen(kv) : -ENOMEM;
	if (rc) {
		free(kv->addr);
		free(kv);
		return rc;
	}
	*out = kv;
	return 0;
}

static void drop_all(struct tb_guest_kv *kv)
{
	int i;

	pthread_mutex_lock(&kv->lock);
	for (i = 0; i < KV_MAX_CONNS; i++) {
		if (kv->conn[i].fd >= 0)
			close(kv->conn[i].fd);
		kv->conn[i].fd = -1;
		kv->conn[i].inlen = 0;
	}
	pthread_mutex_unlock(&kv->lock);
}

int tb_guest_kv_relisten(struct tb_guest_kv *kv)
{
	drop_all(kv);
	if (kv->listen_fd >= 0)
		close(kv->listen_fd);
	kv->listen_fd = -1;
	return kv_listen(kv);
}

void tb_guest_kv_close(struct tb_guest_kv *kv)
{
	struct sockaddr_storage ss;
	unsigned len;

	drop_all(kv);
	if (kv->listen_fd >= 0)
		close(kv->listen_fd);
	if (!tb_guest_parse_addr(kv->addr, &ss, &len) &&
	    ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	pthread_mutex_destroy(&kv->lock);
	free(kv->addr);
	free(kv);
}

bool tb_guest_kv_transmit(struct tb_guest_kv *kv, uint32_t conn, const void *p,
			  size_t len)
{
	bool ok = false;
	int i;

	pthread_mutex_lock(&kv->lock);
	for (i = 0; i < KV_MAX_CONNS; i++) {
		if (kv->conn[i].fd >= 0 && kv->conn[i].id == conn) {
			ok = send(kv->conn[i].fd, p, len,
				  MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
			break;
		}
	}
	pthread_mutex_unlock(&kv->lock);
	return ok;
}

/* ---------------------------------------------------------- the table */

static void mark_range(const struct tb_kv_host *h, const void *p, size_t n)
{
	uintptr_t base = (uintptr_t)h->ram;
	uint64_t a = ((uintptr_t)p - base) / TB_PAGE_SIZE;
	uint64_t b = ((uintptr_t)p + n - 1 - base) / TB_PAGE_SIZE;

	for (; a <= b; a++)
		h->mark(a, h->ctx);
}

static struct tb_sim_kv_hdr *kv_hdr(const struct tb_kv_host *h)
{
	const struct tb_sim_ram_hdr *rh = (const void *)h->ram;

	return (struct tb_sim_kv_hdr *)(h->ram + rh->kv_first * TB_PAGE_SIZE);
}

static struct tb_sim_kv_client *kv_client(struct tb_sim_kv_hdr *kh, uint64_t id)
{
	struct tb_sim_kv_client *free_slot = NULL;
	uint64_t min_seq = UINT64_MAX;
	unsigned i;

	for (i = 0; i < TB_SIM_KV_CLIENTS; i++) {
		if (kh->client[i].client == id)
			return &kh->client[i];
		if (!kh->client[i].client && !free_slot)
			free_slot = &kh->client[i];
	}
	if (!free_slot) {
		/* evict the least advanced client */
		for (i = 0; i < TB_SIM_KV_CLIENTS; i++) {
			if (kh->client[i].last_seq < min_seq) {
				min_seq = kh->client[i].last_seq;
				free_slot = &kh->client[i];
			}
		}
	}
	return free_slot;
}

/*
 * Durable KV: the change goes to the disk log first; the caller applies
 * it to memory (table, log_head) only once the write completed, with no
 * safepoint in between, so every checkpoint has exactly log_head records
 * on disk.  Without a disk: nothing to do.
 */
static int log_append(const struct tb_kv_host *h, struct tb_sim_kv_hdr *kh,
		      uint64_t client, uint64_t seq, const char *key,
		      const char *val)
{
	const struct tb_sim_ram_hdr *rh = (const void *)h->ram;
	struct tb_sim_kvlog_rec r;
	int rc;

	if (!h->disk_write)
		return 0;
	if ((kh->log_head + 1) * TB_SIM_KVLOG_REC > h->disk_size)
		return -ENOSPC;
	tb_sim_kvlog_make(&r, kh->log_head, rh->boot_id, client, seq, key, val);
	rc = h->disk_write(h->ctx, kh->log_head * TB_SIM_KVLOG_REC, &r,
			   sizeof(r));
	if (!rc) {
		kh->log_head++;
		mark_range(h, &kh->log_head, sizeof(kh->log_head));
	}
	return rc;
}

static void apply(const struct tb_kv_host *h, uint64_t client, uint64_t seq,
		  const char *op, const char *key, const char *val, char *reply,
		  size_t rlen)
{
	struct tb_sim_kv_hdr *kh = kv_hdr(h);
	struct tb_sim_kv_client *cl = kv_client(kh, client);
	struct tb_sim_kv_ent *e;

	if (cl->client == client && seq == cl->last_seq) {
		/* a retry: the stored reply, not a second application */
		snprintf(reply, rlen, "%s", cl->last_reply);
		return;
	}
	if (cl->client == client && seq < cl->last_seq) {
		snprintf(reply, rlen, "%" PRIu64 " %" PRIu64 " ERR old seq\n",
			 client, seq);
		return;
	}
	/*
	 * Clients number their requests 1, 2, 3 ... and send the next only
	 * after the reply to the previous one.  A jump means this state
	 * lost requests whose replies the client already saw: output was
	 * released ahead of what the backup had (output commit broken).
	 * Say so, and do not apply.
	 */
	if (seq > (cl->client == client ? cl->last_seq : 0) + 1) {
		snprintf(reply, rlen,
			 "%" PRIu64 " %" PRIu64 " ERR gap last=%" PRIu64 "\n",
			 client, seq, cl->client == client ? cl->last_seq : 0);
		return;
	}
	if (!key || !*key || strlen(key) >= TB_SIM_KV_KEY ||
	    (val && strlen(val) >= TB_SIM_KV_VAL)) {
		snprintf(reply, rlen, "%" PRIu64 " %" PRIu64 " ERR bad key\n",
			 client, seq);
		goto record;
	}
	e = tb_sim_kv_find(kh, key);
	if (!strcmp(op, "GET")) {
		if (!e || !e->key[0])
			snprintf(reply, rlen, "%" PRIu64 " %" PRIu64 " NF\n",
				 client, seq);
		else
			snprintf(reply, rlen, "%" PRIu64 " %" PRIu64 " OK %s\n",
				 client, seq, e->val);
	} else if (!e) {
		snprintf(reply, rlen, "%" PRIu64 " %" PRIu64 " ERR full\n",
			 client, seq);
	} else if (!strcmp(op, "SET") || !strcmp(op, "INCR")) {
		char nv[TB_SIM_KV_VAL];

		if (!strcmp(op, "SET")) {
			if (!val) {
				snprintf(reply, rlen,
					 "%" PRIu64 " %" PRIu64
					 " ERR no value\n",
					 client, seq);
				goto record;
			}
			snprintf(nv, sizeof(nv), "%s", val);
		} else {
			long long cur = e->key[0] ? strtoll(e->val, NULL, 10) :
						    0;

			snprintf(nv, sizeof(nv), "%lld", cur + 1);
		}
		if (log_append(h, kh, client, seq, key, nv)) {
			snprintf(reply, rlen,
				 "%" PRIu64 " %" PRIu64 " ERR disk\n", client,
				 seq);
			goto record; /* not applied; the reply says so */
		}
		if (!e->key[0]) {
			memset(e->key, 0, sizeof(e->key));
			memcpy(e->key, key, strlen(key));
			kh->used++;
		}
		memset(e->val, 0, sizeof(e->val));
		memcpy(e->val, nv, strlen(nv));
		mark_range(h, e, sizeof(*e));
		snprintf(reply, rlen, "%" PRIu64 " %" PRIu64 " OK %s\n", client,
			 seq, nv);
	} else {
		snprintf(reply, rlen, "%" PRIu64 " %" PRIu64 " ERR bad op\n",
			 client, seq);
	}
record:
	kh->applied++;
	memset(cl, 0, sizeof(*cl));
	cl->client = client;
	cl->last_seq = seq;
	memcpy(cl->last_reply, reply,
	       TB_MIN(strlen(reply), sizeof(cl->last_reply) - 1));
	mark_range(h, cl, sizeof(*cl));
	mark_range(h, kh, sizeof(uint64_t) * 4);
}

static void handle_line(struct tb_guest_kv *kv, struct kv_conn *c, char *line)
{
	char reply[TB_SIM_KV_REPLY + 32];
	char *save = NULL, *cl, *sq, *op, *key, *val;
	uint64_t client, seq;

	cl = strtok_r(line, " ", &save);
	sq = strtok_r(NULL, " ", &save);
	op = strtok_r(NULL, " ", &save);
	key = strtok_r(NULL, " ", &save);
	val = strtok_r(NULL, " ", &save);
	if (!cl || !sq || !op || tb_parse_u64(cl, &client) ||
	    tb_parse_u64(sq, &seq) || !client) {
		snprintf(reply, sizeof(reply), "0 0 ERR parse\n");
	} else {
		apply(&kv->h, client, seq, op, key, val, reply,
		      TB_SIM_KV_REPLY);
	}
	kv->h.send(kv->h.ctx, c->id, reply, (uint32_t)strlen(reply));
}

static void conn_close(struct tb_guest_kv *kv, struct kv_conn *c)
{
	pthread_mutex_lock(&kv->lock);
	close(c->fd);
	c->fd = -1;
	c->inlen = 0;
	pthread_mutex_unlock(&kv->lock);
}

int tb_guest_kv_step(struct tb_guest_kv *kv, int timeout_ms)
{
	struct pollfd pfd[KV_MAX_CONNS + 1];
	int idx[KV_MAX_CONNS + 1];
	int i, n = 0, r, s, did = 0;

	if (kv->listen_fd >= 0) {
		pfd[n].fd = kv->listen_fd;
		pfd[n].events = POLLIN;
		idx[n++] = -1;
	}
	for (i = 0; i < KV_MAX_CONNS; i++) {
		if (kv->conn[i].fd < 0)
			continue;
		pfd[n].fd = kv->conn[i].fd;
		pfd[n].events = POLLIN;
		idx[n++] = i;
	}
	r = poll(pfd, (nfds_t)n, timeout_ms);
	if (r <= 0)
		return r < 0 ? -errno : -EAGAIN;
	for (i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (idx[i] < 0) {
			s = accept4(kv->listen_fd, NULL, NULL,
				    SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (s < 0)
				continue;
			for (r = 0; r < KV_MAX_CONNS; r++)
				if (kv->conn[r].fd < 0)
					break;
			if (r == KV_MAX_CONNS) {
				close(s);
				continue;
			}
			pthread_mutex_lock(&kv->lock);
			kv->conn[r].fd = s;
			kv->conn[r].id = kv->next_id++;
			kv->conn[r].inlen = 0;
			pthread_mutex_unlock(&kv->lock);
			continue;
		} else {
			struct kv_conn *c = &kv->conn[idx[i]];
			ssize_t got = recv(c->fd, c->in + c->inlen,
					   sizeof(c->in) - c->inlen - 1, 0);
			char *nl, *line;

			if (got <= 0) {
				if (got == 0 || errno != EAGAIN)
					conn_close(kv, c);
				continue;
			}
			c->inlen += (size_t)got;
			c->in[c->inlen] = 0;
			line = c->in;
			while ((nl = strchr(line, '\n'))) {
				*nl = 0;
				handle_line(kv, c, line);
				did++;
				line = nl + 1;
				if (kv->h.exiting(kv->h.ctx))
					break;
			}
			c->inlen -= (size_t)(line - c->in);
			memmove(c->in, line, c->inlen);
			if (c->inlen >= sizeof(c->in) - 1)
				conn_close(kv, c); /* line too long */
		}
	}
	return did ? 0 : -EAGAIN;
}

/* ---------------------------------------------------------- client */

struct kvc {
	const char *addr;
	unsigned id_base;
	unsigned i;
	uint64_t ops;
	uint64_t keys;
	int64_t retry_ns;
	FILE *log;
	pthread_mutex_t *log_lock;
	uint64_t reconnects;
	uint64_t retries;
	uint64_t violations;
	int rc;
};

static int kvc_connect(const char *addr, int64_t deadline)
{
	struct sockaddr_storage ss;
	unsigned len;
	int s;

	if (tb_guest_parse_addr(addr, &ss, &len))
		return -EINVAL;
	for (;;) {
		s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -errno;
		if (!connect(s, (struct sockaddr *)&ss, len))
			return s;
		close(s);
		if (tb_now_ns() > deadline)
			return -ETIMEDOUT;
		/* the service is down (failover in progress): back off */
		tb_sleep_until(tb_now_ns() + 10 * TB_NSEC_PER_MSEC);
	}
}

/* Read one line with a deadline.  >0 length, -ETIMEDOUT, -EPIPE. */
static int kvc_readline(int s, char *buf, size_t cap, size_t *have,
			int64_t deadline)
{
	char *nl;
	ssize_t n;
	int len;

	for (;;) {
		nl = memchr(buf, '\n', *have);
		if (nl) {
			len = (int)(nl - buf + 1);
			return len;
		}
		{
			struct pollfd p = { s, POLLIN, 0 };
			int64_t left = deadline - tb_now_ns();

			if (left <= 0)
				return -ETIMEDOUT;
			if (poll(&p, 1, (int)(left / TB_NSEC_PER_MSEC) + 1) <=
			    0)
				continue;
		}
		n = recv(s, buf + *have, cap - *have, 0);
		if (n <= 0)
			return -EPIPE;
		*have += (size_t)n;
		if (*have == cap)
			return -EPROTO;
	}
}

static void *kvc_main(void *arg)
{
	struct kvc *k = arg;
	uint64_t client = k->id_base + k->i + 1, seq, rng = client * 7919;
	char req[KV_LINE], buf[KV_LINE * 2], key[32], val[32];
	const char *op;
	size_t have = 0;
	int s = -1, len;
	int64_t give_up;

	for (seq = 1; seq <= k->ops; seq++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		snprintf(key, sizeof(key), "k%" PRIu64, (rng >> 33) % k->keys);
		switch ((rng >> 20) % 3) {
		case 0:
			op = "SET";
			snprintf(val, sizeof(val), "v%" PRIu64 "-%" PRIu64,
				 client, seq);
			snprintf(req, sizeof(req),
				 "%" PRIu64 " %" PRIu64 " SET %s %s\n", client,
				 seq, key, val);
			break;
		case 1:
			op = "INCR";
			snprintf(req, sizeof(req),
				 "%" PRIu64 " %" PRIu64 " INCR %s\n", client,
				 seq, key);
			break;
		default:
			op = "GET";
			snprintf(req, sizeof(req),
				 "%" PRIu64 " %" PRIu64 " GET %s\n", client,
				 seq, key);
			break;
		}
		give_up = tb_now_ns() + 60 * TB_NSEC_PER_SEC;
		for (;;) {
			if (s < 0) {
				s = kvc_connect(k->addr, give_up);
				if (s < 0) {
					k->rc = s;
					goto out;
				}
				have = 0;
				k->reconnects++;
			}
			if (send(s, req, strlen(req), MSG_NOSIGNAL) !=
			    (ssize_t)strlen(req))
				len = -EPIPE;
			else
				len = kvc_readline(s, buf, sizeof(buf), &have,
						   tb_now_ns() + k->retry_ns);
			if (len > 0)
				break;
			/* dropped or silent: reconnect, retry the same seq */
			k->retries++;
			close(s);
			s = -1;
			if (tb_now_ns() > give_up) {
				k->rc = -ETIMEDOUT;
				goto out;
			}
		}
		buf[len - 1] = 0;
		if (strstr(buf, " ERR gap")) {
			/* the service forgot requests we had replies to */
			fprintf(stderr,
				"kvclient: CONSISTENCY VIOLATION client=%" PRIu64
				" seq=%" PRIu64 ": %s\n",
				client, seq, buf);
			k->violations++;
			k->rc = -EPROTO;
			goto out;
		}
		if (k->log) {
			pthread_mutex_lock(k->log_lock);
			fprintf(k->log, "%" PRIu64 " %" PRIu64 " %s %s | %s\n",
				client, seq, op, key, buf);
			pthread_mutex_unlock(k->log_lock);
		}
		have -= (size_t)len;
		memmove(buf, buf + len, have);
	}
out:
	if (s >= 0)
		close(s);
	return NULL;
}

int tb_kvclient_main(const char *addr, unsigned clients, uint64_t ops,
		     const char *log_path, uint64_t keys, int64_t retry_ns)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct kvc *k;
	pthread_t *th;
	FILE *log = NULL;
	unsigned i, base = ((unsigned)getpid() & 0xffffff) * 256;
	uint64_t rec = 0, retr = 0, viol = 0;
	int rc = 0;

	if (!clients || clients > 256)
		return 2;
	if (log_path) {
		log = fopen(log_path, "w");
		if (!log) {
			perror(log_path);
			return 1;
		}
	}
	k = calloc(clients, sizeof(*k));
	th = calloc(clients, sizeof(*th));
	if (!k || !th) {
		rc = 1;
		goto out;
	}
	for (i = 0; i < clients; i++) {
		k[i] = (struct kvc){ .addr = addr,
				     .id_base = base,
				     .i = i,
				     .ops = ops,
				     .keys = keys ? keys : 16,
				     .retry_ns = retry_ns,
				     .log = log,
				     .log_lock = &lock };
		pthread_create(&th[i], NULL, kvc_main, &k[i]);
	}
	for (i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
		if (k[i].rc)
			rc = 1;
		rec += k[i].reconnects - 1;
		retr += k[i].retries;
		viol += k[i].violations;
	}
	fprintf(stderr,
		"kvclient: clients=%u ops=%" PRIu64 " reconnects=%" PRIu64
		" retries=%" PRIu64 " violations=%" PRIu64 " %s\n",
		clients, ops, rec, retr, viol, rc ? "FAILED" : "ok");
out:
	if (log)
		fclose(log);
	free(k);
	free(th);
	return rc;
}
