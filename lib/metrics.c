// SPDX-License-Identifier: MIT
/*
 * The Prometheus scrape endpoint of both daemons (metrics_listen): HTTP
 * by libmicrohttpd (its own polling thread), the text format written by
 * the daemon's callback on each GET /metrics.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "tiber/log.h"
#include "tiber/metrics.h"

struct tb_metrics {
	struct MHD_Daemon *d;
	tb_metrics_fn fn;
	void *arg;
	char addr[80];
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *data,
			      size_t *data_len, void **state)
{
	struct tb_metrics *m = cls;
	struct MHD_Response *r;
	struct tb_buf b = { 0 };
	enum MHD_Result ret;
	unsigned code = MHD_HTTP_OK;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	else if (strcmp(url, "/metrics") != 0)
		code = MHD_HTTP_NOT_FOUND;
	if (code == MHD_HTTP_OK) {
		m->fn(&b, m->arg);
	} else {
		const char *text = code == MHD_HTTP_NOT_FOUND ?
					   "not found: try /metrics\n" :
					   "GET /metrics\n";

		tb_buf_append(&b, text, strlen(text));
	}
	r = MHD_create_response_from_buffer(b.len, b.data ? b.data : (void *)"",
					    MHD_RESPMEM_MUST_COPY);
	tb_buf_free(&b);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* "HOST:PORT" / "[V6]:PORT", numeric only, into @ss. */
static int parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
					      AI_PASSIVE };
	struct addrinfo *res;
	char host[64];
	const char *colon = strrchr(addr, ':'), *h = addr;
	size_t hl;

	if (!colon || !colon[1])
		return -EINVAL;
	hl = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hl < 2 || addr[hl - 1] != ']')
			return -EINVAL;
		h = addr + 1;
		hl -= 2;
	}
	if (!hl || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	if (getaddrinfo(host, colon + 1, &hints, &res))
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int tb_metrics_start(struct tb_metrics **out, const char *addr,
		     tb_metrics_fn fn, void *arg)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	struct tb_metrics *m;
	socklen_t len;
	char h[INET6_ADDRSTRLEN] = "?";

	*out = NULL;
	if (parse(addr, &ss, &len)) {
		tb_err("metrics_listen '%s': not a numeric HOST:PORT or [V6]:PORT",
		       addr);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	m->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, &ss,
		MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT,
		5u, MHD_OPTION_END);
	if (!m->d) {
		tb_err("metrics_listen %s: cannot serve (address in use?)",
		       addr);
		free(m);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
	if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h,
			  sizeof(h));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, h,
			  sizeof(h));
	snprintf(m->addr, sizeof(m->addr),
		 ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h,
		 info ? info->port : 0);
	tb_info("metrics on http://%s/metrics", m->addr);
	*out = m;
	return 0;
}

const char *tb_metrics_addr(const struct tb_metrics *m)
{
	return m->addr;
}

void tb_metrics_stop(struct tb_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}

static void appendf(struct tb_buf *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void appendf(struct tb_buf *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		tb_buf_append(out, line, TB_MIN((size_t)n, sizeof(line) - 1));
}

void tb_metric_head(struct tb_buf *out, const char *name, const char *type,
		    const char *help)
{
	appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void tb_metric(struct tb_buf *out, const char *name, const char *labels,
	       double value)
{
	if (isinf(value))
		appendf(out, "%s%s%s%s %s\n", name, *labels ? "{" : "", labels,
			*labels ? "}" : "", value > 0 ? "+Inf" : "-Inf");
	else
		appendf(out, "%s%s%s%s %.17g\n", name, *labels ? "{" : "",
			labels, *labels ? "}" : "", value);
}

void tb_metric_label(char *out, size_t len, const char *in)
{
	size_t o = 0;

	for (; *in && o + 2 < len; in++) {
		if (*in == '"' || *in == '\\' || *in == '\n') {
			out[o++] = '\\';
			out[o++] = (char)(*in == '\n' ? 'n' : *in);
		} else {
			out[o++] = *in;
		}
	}
	out[o] = 0;
}
