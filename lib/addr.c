// SPDX-License-Identifier: MIT
/*
 * Transport addresses (see addr.h): the text the operator writes parsed
 * into socket addresses, names resolved with getaddrinfo(), and socket
 * addresses formatted back into text for logs.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tiber/common.h"
#include "tiber/transport.h"
#include "addr.h"

static bool tb_all_numeric(const char *s)
{
	for (; *s; s++)
		if ((*s < '0' || *s > '9') && *s != '.')
			return false;
	return true;
}

static int tb_parse_port(const char *s, char *out, size_t outlen)
{
	unsigned long v;
	char *end;

	if (!*s || strlen(s) >= outlen || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	snprintf(out, outlen, "%lu", v);
	return 0;
}

static int tb_gai_errno(int e)
{
	switch (e) {
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	case EAI_AGAIN: /* the name server did not answer: same to the user */
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
		return -TB_ERESOLVE;
	default:
		return -EINVAL;
	}
}

/*
 * Split "host:port" / "[v6]:port" into @host and a numeric @port; a unix
 * address fills @un instead (when not NULL).  No name is resolved.
 * 0 or -EINVAL (malformed).
 */
static int tb_addr_split(const char *addr, struct tb_addr *un, char *host,
			 size_t hostlen, char *port, size_t portlen, bool *v6)
{
	const char *colon, *p;
	size_t hlen;

	*v6 = false;
	if (!addr)
		return -EINVAL;
	if (!strncmp(addr, "unix:", 5)) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		const char *path = addr + 5;
		size_t len = strlen(path);
		socklen_t sl;

		if (path[0] == '@') {
			/* abstract: leading NUL, length counts the name only */
			if (len < 2 || len > sizeof(sun.sun_path))
				return -EINVAL;
			memcpy(sun.sun_path + 1, path + 1, len - 1);
			sl = offsetof(struct sockaddr_un, sun_path) + len;
		} else {
			if (len < 1 || len >= sizeof(sun.sun_path))
				return -EINVAL;
			memcpy(sun.sun_path, path, len + 1);
			sl = sizeof(sun);
		}
		if (un) {
			memset(un, 0, sizeof(*un));
			memcpy(&un->ss, &sun, sizeof(sun));
			un->len = sl;
		}
		host[0] = 0;
		return 0;
	}
	if (addr[0] == '[') {
		p = strchr(addr, ']');
		if (!p || p[1] != ':')
			return -EINVAL;
		hlen = (size_t)(p - addr - 1);
		colon = p + 1;
		addr++;
		*v6 = true;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - addr);
		if (memchr(addr, ':', hlen))
			return -EINVAL; /* bare IPv6 must be bracketed */
	}
	if (hlen == 0 || hlen >= hostlen)
		return -EINVAL;
	memcpy(host, addr, hlen);
	host[hlen] = 0;
	return tb_parse_port(colon + 1, port, portlen);
}

int tb_addr_check(const char *addr)
{
	char host[256], port[8];
	bool v6;

	return tb_addr_split(addr, NULL, host, sizeof(host), port, sizeof(port),
			     &v6);
}

int tb_addr_parse(const char *addr, bool passive, struct tb_addr *out, int max,
		  int *nr)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[8];
	bool v6;
	int rc, n = 0;

	*nr = 0;
	rc = tb_addr_split(addr, &out[0], host, sizeof(host), port,
			   sizeof(port), &v6);
	if (rc)
		return rc;
	if (!host[0]) {
		*nr = 1; /* unix */
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
			 (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc && !v6 && !tb_all_numeric(host)) {
		/* not a literal: resolve the name */
		/* no AI_ADDRCONFIG: it hides localhost on loopback-only hosts */
		hints.ai_flags &= ~AI_NUMERICHOST;
		rc = getaddrinfo(host, port, &hints, &res);
		if (rc)
			return tb_gai_errno(rc);
	} else if (rc) {
		return -EINVAL;
	}
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[n].ss))
			continue;
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (!n)
		return -TB_ERESOLVE;
	*nr = n;
	return 0;
}

void tb_addr_fmt(const struct sockaddr_storage *ss, socklen_t len, char *out,
		 size_t outlen)
{
	char h[INET6_ADDRSTRLEN];

	switch (ss->ss_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, h, sizeof(h));
		snprintf(out, outlen, "%s:%u", h, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof(h));
		snprintf(out, outlen, "[%s]:%u", h, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const void *)ss;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t n = len > off ? len - off : 0;

		if (n == 0 || (sun->sun_path[0] == 0 && n == 1))
			snprintf(out, outlen, "unix");
		else if (sun->sun_path[0] == 0)
			snprintf(out, outlen, "unix:@%.*s", (int)(n - 1),
				 sun->sun_path + 1);
		else
			snprintf(out, outlen, "unix:%.*s",
				 (int)strnlen(sun->sun_path, n), sun->sun_path);
		break;
	}
	default:
		snprintf(out, outlen, "?");
	}
}
