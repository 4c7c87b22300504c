// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the control-socket commands: what a client's
 * bytes become (tb_ctl_reply(), lib/ctlsock.c) when tiber-replicator
 * answers them (repl_control(), replicator/failover.c: status, promote
 * NAME, reprotect NAME) or tiberd does (tb_engine_control(),
 * lib/epoch_status.c: status, release, switchover).
 *
 * Input: byte 0 bit 0 picks the daemon; for the replicator bits 1..3
 * are the state of its fifth domain and bit 4 makes a restore fail, for
 * tiberd bits 1..4 are the engine's state.  Bytes 1..32 are the name of
 * that domain (or of tiberd's guest) as a primary's HELLO carries it
 * (NUL-padded; one a HELLO could not carry is replaced by "guest0");
 * the rest is what the client sends.  The replicator also has four
 * fixed domains: web (protected), db (primary lost, committed epoch),
 * idle (no commit) and gone (failed over).
 *
 * Oracle: no crash, no sanitizer report.  The reply is one line: a JSON
 * object and '\n'.  A command is accepted ("ok":true) only if it is one
 * of the daemon's commands, exactly (one space, one NAME, nothing
 * after), and only then does anything change: the named guest (promote:
 * a committed guest not protected by a live primary, now failed over;
 * reprotect: a failed-over one) or the engine's request flag
 * (switchover only when protected).  A refused command changes nothing
 * but a failed restore's guest and its "error" says what was wrong: the
 * NAME it could not act on, or the commands there are.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tiber/ctlsock.h"
#include "tiber/fence.h"
#include "tiber/log.h"
#include "tiber/tls.h"
#include "../../lib/epoch_priv.h"
#include "../../replicator/replicator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME_LEN    32 /* a HELLO's name field */
#define NR_FIXED    4
#define REPL_STATUS "{\"daemon\":\"replicator\","

/* ------------------------------------------- what failover.c links to */

struct repl_opts opt;
pthread_mutex_t doms_lock = PTHREAD_MUTEX_INITIALIZER;
struct rdom doms[MAX_DOMS];
atomic_bool stopping;
atomic_int failovers;
atomic_uint_fast64_t refused_handshakes, refused_unauthorized, refused_limits;

void repl_release(struct rdom *d, enum dom_state st)
{
	pthread_mutex_lock(&doms_lock);
	d->state = st;
	pthread_mutex_unlock(&doms_lock);
}

void repl_stop(void)
{
}

/* Not reached from a control command (no disks, no fencing, no TLS). */
void tb_rdisks_path(const struct tb_rdisks *s, unsigned disk, char *buf,
		    size_t len)
{
	abort();
}

int tb_fence_run(const char *what, const char *cmd, const char *guest,
		 const char *peer, int64_t timeout_ns)
{
	abort();
}

const char *tb_tls_ctx_mode(const struct tb_tls_ctx *x)
{
	abort();
}

/* epoch_policy.c's: no epoch in flight in this engine */
int64_t tb_eng_oldest_unacked_age_locked(struct tb_engine *e, int64_t now)
{
	return 0;
}

/* ------------------------------------------------------ the backend */

static bool restore_fails;

static int fake_restore(const struct tb_restore_req *req,
			struct tb_restore_res *res)
{
	if (restore_fails) {
		tb_backend_set_reason("guest %s: no room here", req->name);
		return -ENOSPC;
	}
	res->pid = 4242;
	snprintf(res->where, sizeof(res->where), "/run/tiber/%s.sock",
		 req->name);
	return 0;
}

static void fake_stats(struct tb_dom *d, struct tb_dom_stats *st)
{
	memset(st, 0, sizeof(*st));
}

static const struct tb_backend_ops fake_ops = {
	.name = "fuzz",
	.get_stats = fake_stats,
	.restore = fake_restore,
};

/* ---------------------------------------------------- a JSON checker */

struct json {
	const char *p;
	char error[TB_CTL_RESP_MAX]; /* top-level "error", decoded */
	bool has_error, ok;
};

static void ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

/* A string at j->p, decoded into @out (may be NULL). */
static int hexval(char c)
{
	static const char hex[] = "0123456789abcdef";
	const char *q = c ? strchr(hex, tolower((unsigned char)c)) : NULL;

	return q ? (int)(q - hex) : -1;
}

static bool jstring(struct json *j, char *out, size_t cap)
{
	unsigned u;
	size_t n = 0;
	int i;

	if (*j->p++ != '"')
		return false;
	for (;;) {
		unsigned char c = (unsigned char)*j->p++;

		if (c == '"')
			break;
		if (c < 0x20)
			return false; /* control characters must be escaped */
		if (c == '\\') {
			c = (unsigned char)*j->p++;
			switch (c) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u':
				for (u = 0, i = 0; i < 4; i++) {
					int x = hexval(*j->p++);

					if (x < 0)
						return false;
					u = u << 4 | (unsigned)x;
				}
				c = (unsigned char)u; /* (enough to compare) */
				break;
			default:
				return false;
			}
		}
		if (out && n + 1 < cap)
			out[n++] = (char)c;
	}
	if (out)
		out[n] = 0;
	return true;
}

static bool jvalue(struct json *j, int depth, bool top);

static bool literal(struct json *j, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(j->p, word, n))
		return false;
	j->p += n;
	return true;
}

static bool jnumber(struct json *j)
{
	const char *s = j->p;

	if (*j->p == '-')
		j->p++;
	if (*j->p < '0' || *j->p > '9')
		return false;
	while (*j->p >= '0' && *j->p <= '9')
		j->p++;
	if (*j->p == '.') {
		j->p++;
		if (*j->p < '0' || *j->p > '9')
			return false;
		while (*j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (*j->p == 'e' || *j->p == 'E') {
		j->p++;
		if (*j->p == '+' || *j->p == '-')
			j->p++;
		if (*j->p < '0' || *j->p > '9')
			return false;
		while (*j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > s;
}

static bool jobject(struct json *j, int depth, bool top)
{
	static char key[TB_CTL_RESP_MAX];

	j->p++;
	ws(j);
	if (*j->p == '}') {
		j->p++;
		return true;
	}
	for (;;) {
		ws(j);
		if (!jstring(j, key, sizeof(key)))
			return false;
		ws(j);
		if (*j->p++ != ':')
			return false;
		ws(j);
		if (top && !strcmp(key, "error")) {
			j->has_error = true;
			if (!jstring(j, j->error, sizeof(j->error)))
				return false;
		} else if (top && !strcmp(key, "ok")) {
			if (!literal(j, "true"))
				return false;
			j->ok = true;
		} else if (!jvalue(j, depth + 1, false)) {
			return false;
		}
		ws(j);
		if (*j->p == '}') {
			j->p++;
			return true;
		}
		if (*j->p++ != ',')
			return false;
	}
}

static bool jvalue(struct json *j, int depth, bool top)
{
	if (depth > 16)
		return false;
	ws(j);
	switch (*j->p) {
	case '{':
		return jobject(j, depth, top);
	case '[':
		j->p++;
		ws(j);
		if (*j->p == ']') {
			j->p++;
			return true;
		}
		for (;;) {
			if (!jvalue(j, depth + 1, false))
				return false;
			ws(j);
			if (*j->p == ']') {
				j->p++;
				return true;
			}
			if (*j->p++ != ',')
				return false;
		}
	case '"':
		return jstring(j, NULL, 0);
	case 't':
		return literal(j, "true");
	case 'f':
		return literal(j, "false");
	case 'n':
		return literal(j, "null");
	default:
		return jnumber(j);
	}
}

/* ------------------------------------------------------- the oracle */

static char resp[TB_CTL_RESP_MAX];
static struct json js;

static void fail(const char *why, const char *cmd)
{
	fprintf(stderr,
		"fuzz_ctl: oracle violation: %s\ncommand: '%s'\nreply: %s", why,
		cmd, resp);
	abort();
}

/* The reply is one JSON object line; its "error" and "ok" in js. */
static void check_reply(size_t n, const char *cmd)
{
	memset(&js, 0, sizeof(js));
	if (n != strlen(resp) || !n || resp[n - 1] != '\n' ||
	    strchr(resp, '\n') != resp + n - 1)
		fail("the reply is not one line", cmd);
	js.p = resp;
	ws(&js);
	if (*js.p != '{' || !jvalue(&js, 0, true))
		fail("the reply is not a JSON object", cmd);
	ws(&js);
	if (*js.p)
		fail("text after the reply's JSON object", cmd);
	if (strcmp(cmd, "status") ? js.ok == js.has_error : js.ok)
		fail("a reply neither ok nor an error (or both)", cmd);
}

/* The command line as tb_ctl_reply() hands it on. */
static void command_of(const uint8_t *p, size_t n, char *cmd)
{
	n = TB_MIN(n, (size_t)TB_CTL_REQ_MAX - 1);
	memcpy(cmd, p, n);
	cmd[n] = 0;
	cmd[strcspn(cmd, "\r\n")] = 0;
}

/* "VERB NAME" exactly: *@name points at NAME. */
static bool verb_name(const char *cmd, const char *verb, const char **name)
{
	size_t n = strlen(verb);

	if (strncmp(cmd, verb, n) || cmd[n] != ' ')
		return false;
	*name = cmd + n + 1;
	return **name && !strpbrk(*name, " \t\v\f");
}

/* A guest name as a HELLO carries it (NUL-padded, no control bytes). */
static void hello_name(const uint8_t *p, char *name)
{
	size_t n = strnlen((const char *)p, NAME_LEN), i;
	bool ok = n > 0;

	for (i = 0; i < n; i++)
		ok &= (p[i] >= 0x20 || p[i] == '\t') && p[i] != 0x7f;
	for (i = n; i < NAME_LEN; i++)
		ok &= !p[i];
	if (ok) {
		memcpy(name, p, n);
		name[n] = 0;
	} else {
		strcpy(name, "guest0");
	}
}

static void set_dom(struct rdom *d, enum dom_state st, const char *name,
		    bool commit)
{
	memset(d, 0, sizeof(*d));
	d->state = st;
	d->domid = (uint32_t)(d - doms) + 1;
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->peer, sizeof(d->peer), "192.0.2.%u:7000", d->domid);
	snprintf(d->peer_id, sizeof(d->peer_id), "primary-%s", name);
	snprintf(d->cause, sizeof(d->cause), "%s", "heartbeat timeout");
	d->have_rep = true;
	d->rep.have_commit = commit;
	d->rep.committed_epoch = commit ? 42 : 0;
	d->rep.nr_pages = 256;
	d->rep.mem_fd = -1;
	if (st == DOM_FAILED_OVER)
		snprintf(d->restored.where, sizeof(d->restored.where),
			 "/run/tiber/%s.sock", name);
}

static void replicator(const char *cmd_bytes, size_t n, unsigned st,
		       const char *name)
{
	static const struct {
		enum dom_state st;
		const char *name;
		bool commit;
	} fixed[NR_FIXED] = {
		{ DOM_ACTIVE, "web", true },
		{ DOM_LOST, "db", true },
		{ DOM_IDLE, "idle", false },
		{ DOM_FAILED_OVER, "gone", true },
	};
	enum dom_state before[NR_FIXED + 1];
	char cmd[TB_CTL_REQ_MAX];
	const char *arg = NULL;
	struct rdom *d = NULL;
	unsigned i, changed = 0;
	bool promote, reprotect;

	for (i = 0; i < NR_FIXED; i++)
		set_dom(&doms[i], fixed[i].st, fixed[i].name, fixed[i].commit);
	set_dom(&doms[NR_FIXED], (enum dom_state)(st % (DOM_FAILED_OVER + 1)),
		name, st & 1);
	for (i = 0; i <= NR_FIXED; i++)
		before[i] = doms[i].state;
	command_of((const uint8_t *)cmd_bytes, n, cmd);

	check_reply(tb_ctl_reply(repl_control, NULL, cmd_bytes, n, resp), cmd);

	promote = verb_name(cmd, "promote", &arg);
	reprotect = !promote && verb_name(cmd, "reprotect", &arg);
	for (i = 0; (promote || reprotect) && i <= NR_FIXED; i++)
		if (before[i] != DOM_FREE && !strcmp(doms[i].name, arg)) {
			d = &doms[i];
			break;
		}
	for (i = 0; i <= NR_FIXED; i++)
		changed += doms[i].state != before[i];
	if (!strcmp(cmd, "status")) {
		if (js.has_error || changed ||
		    strncmp(resp, REPL_STATUS, strlen(REPL_STATUS)))
			fail("a status that is not the replicator's", cmd);
		return;
	}
	if (js.ok) {
		if (!d)
			fail("a command accepted that is not 'status', 'promote NAME' or 'reprotect NAME' of a guest here",
			     cmd);
		i = (unsigned)(d - doms);
		if (promote &&
		    ((before[i] != DOM_LOST && before[i] != DOM_IDLE) ||
		     !d->rep.have_commit || d->state != DOM_FAILED_OVER ||
		     changed != 1))
			fail("a promote of a guest that may not fail over",
			     cmd);
		if (reprotect &&
		    (before[i] != DOM_FAILED_OVER || changed || !d->reprotects))
			fail("a reprotect of a guest that has not failed over",
			     cmd);
		return;
	}
	/* refused: nothing changed, but a restore that failed */
	if (changed > 1 ||
	    (changed && (!promote || !d || d->state == DOM_FAILED_OVER ||
			 !strstr(js.error, "restore failed"))))
		fail("a refused command changed a guest", cmd);
	if ((promote || reprotect) ? !strstr(js.error, arg) :
				     !strstr(js.error, "unknown command"))
		fail("a refusal that does not say what was wrong", cmd);
}

static struct tb_engine eng;

static void tiberd(const char *cmd_bytes, size_t n, unsigned st,
		   const char *name)
{
	char cmd[TB_CTL_REQ_MAX];
	bool protected;

	eng.state = (enum tb_engine_state)(st % (TB_ENG_SWITCHED + 1));
	protected = eng.state == TB_ENG_PROTECTED;
	snprintf(eng.info.name, sizeof(eng.info.name), "%s", name);
	atomic_store(&eng.switchover_req, false);
	atomic_store(&eng.release_req, false);
	command_of((const uint8_t *)cmd_bytes, n, cmd);

	check_reply(tb_ctl_reply(tb_eng_control_cb, &eng, cmd_bytes, n, resp),
		    cmd);

	if (js.ok && strcmp(cmd, "release") &&
	    (strcmp(cmd, "switchover") || !protected))
		fail("a command accepted that tiberd does not have (or a switchover when not protected)",
		     cmd);
	if (atomic_load(&eng.switchover_req) !=
	    (js.ok && !strcmp(cmd, "switchover")))
		fail("a switchover requested by another command", cmd);
	if (atomic_load(&eng.release_req) != (js.ok && !strcmp(cmd, "release")))
		fail("a release requested by another command", cmd);
	if (js.has_error && strcmp(cmd, "status") &&
	    !strstr(js.error, strcmp(cmd, "switchover") ?
				      "unknown command" :
				      tb_engine_state_name(eng.state)))
		fail("a refusal that does not say what was wrong", cmd);
	if (!strcmp(cmd, "status") &&
	    (js.has_error || !strstr(resp, "\"state\":\"")))
		fail("a status without the state", cmd);
}

static void setup(void)
{
	tb_log_level = -1; /* the promotes' error lines */
	opt.ops = &fake_ops;
	opt.backend_name = "fuzz";
	opt.failover = FAILOVER_MANUAL;
	pthread_mutex_init(&eng.lock, NULL);
	eng.cfg.ops = &fake_ops;
	eng.cfg.rate_hz = 50;
	eng.info.domid = 7;
	snprintf(eng.info.dirty_mech, sizeof(eng.info.dirty_mech), "bitmap");
	eng.pause_count = 3;
	eng.pause_ring[0] = 1000;
	eng.pause_ring[1] = 3000;
	eng.pause_ring[2] = 2000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	char name[NAME_LEN + 1];

	if (size < 1 + NAME_LEN)
		return 0;
	if (!ready) {
		setup();
		ready = true;
	}
	restore_fails = data[0] & 0x10;
	hello_name(data + 1, name);
	if (data[0] & 1)
		tiberd((const char *)data + 1 + NAME_LEN, size - 1 - NAME_LEN,
		       data[0] >> 1 & 15, name);
	else
		replicator((const char *)data + 1 + NAME_LEN,
			   size - 1 - NAME_LEN, data[0] >> 1 & 7, name);
	return 0;
}
