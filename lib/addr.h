/* SPDX-License-Identifier: MIT */
/*
 * Transport addresses: "host:port", "[v6addr]:port", "unix:/path" and
 * "unix:@abstract" parsed into socket addresses (names resolved) and
 * socket addresses formatted back into text.  Internal to lib/ (the
 * public tb_addr_check() is declared in include/tiber/transport.h).
 *
 * The address text comes from the operator (config file, flags); it is
 * checked, never trusted.
 */
#ifndef TIBER_ADDR_H
#define TIBER_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define TB_ADDR_TEXT_MAX 128 /* "unix:" + sun_path, or "[v6]:port" */

/* A parsed endpoint: its socket address and that address's length. */
struct tb_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/*
 * Parse @addr into a list of socket addresses (at most @max).  Unix
 * addresses give one.  0 or -EINVAL (malformed), -TB_ERESOLVE (name does
 * not resolve to an IP address), -ENOMEM.
 */
int tb_addr_parse(const char *addr, bool passive, struct tb_addr *out, int max,
		  int *nr);
/* Text of a socket address: "a.b.c.d:port", "[v6]:port", "unix:/p". */
void tb_addr_fmt(const struct sockaddr_storage *ss, socklen_t len, char *out,
		 size_t outlen);

#endif
