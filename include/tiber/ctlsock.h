/* SPDX-License-Identifier: MIT */
/*
 * The control socket of a daemon (tiberd, tiber-replicator): a unix
 * stream socket that tiberctl writes one command line to and reads one
 * reply line from.
 *
 * - Served by its own thread, so no client can delay a checkpoint; each
 *   client gets a deadline to send its command (a silent one is dropped).
 * - Mode 0660 (group: @group if given, else the daemon's), whatever the
 *   daemon's umask.
 * - A lock file (PATH.lock, flock) makes a second daemon given the same
 *   path fail to start instead of taking the socket over.
 */
#ifndef TIBER_CTLSOCK_H
#define TIBER_CTLSOCK_H

#include <stddef.h>

#define TB_CTL_REQ_MAX	512   /* bytes read from a client, NUL included */
#define TB_CTL_RESP_MAX 16384 /* bytes of a reply, '\n' and NUL included */

/* Answer @cmd (one line, no newline) into @resp (NUL-terminated, no
 * newline needed).  Called from the control thread. */
typedef void (*tb_ctl_fn)(void *arg, const char *cmd, char *resp, size_t len);

/*
 * What the control thread does with the @len bytes a client sent
 * (hostile; at most TB_CTL_REQ_MAX - 1 are looked at): the command is
 * the text before the first CR, LF or NUL; @fn answers it into @resp
 * (TB_CTL_RESP_MAX bytes), which ends with one '\n'.  Returns the
 * reply's length.
 */
size_t tb_ctl_reply(tb_ctl_fn fn, void *arg, const char *req, size_t len,
		    char *resp);

struct tb_ctl;

/* Bind @path and start serving.  -EADDRINUSE: another live daemon holds
 * it; -ENOENT: unknown @group; other -errno from the socket calls. */
int tb_ctl_open(struct tb_ctl **out, const char *path, const char *group,
		tb_ctl_fn fn, void *arg);
/* Stop the thread, remove the socket and the lock file.  NULL is ok. */
void tb_ctl_close(struct tb_ctl *c);

#endif
