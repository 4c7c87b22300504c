/* SPDX-License-Identifier: MIT */
/*
 * TLS 1.3 for the replication link (GnuTLS), in user space on memory
 * buffers: the handshake runs on the socket, then the transport moves
 * ciphertext with io_uring and this module only seals and opens records.
 *
 * Authentication is mutual, either by X.509 certificates from the
 * operator's CA (each side presents its certificate and verifies the
 * peer's chain; the peer's identity is its certificate's CN) or by a
 * pre-shared key (psktool's "identity:hexkey" file; the identity is the
 * PSK's name), with (EC)DHE for forward secrecy either way.
 *
 * Threading: after the handshake one thread may seal (send side) while
 * another opens (receive side), as GnuTLS allows.  Records the receive
 * side must answer (alerts) are queued and leave with the next seal.
 */
#ifndef TIBER_TLS_H
#define TIBER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tiber/common.h"

struct tb_tls_cfg {
	const char *cert;     /* PEM certificate (chain) of this host */
	const char *key;      /* its PEM private key */
	const char *ca;	      /* PEM CA certificate(s) the peer must chain to */
	const char *psk_file; /* instead of certificates: identity:hexkey lines */
	const char *psk_identity; /* client: the line to use (default: first) */
	const char *peer_name;	  /* client: name the server's certificate must
				  carry (default: any from the CA) */
	int kernel;		  /* enum tb_tls_kernel */
};

/* Record encryption in the kernel (kTLS) after the handshake: where the
 * kernel offers it (auto), never (no), or required (yes). */
enum tb_tls_kernel {
	TB_TLS_KERNEL_AUTO,
	TB_TLS_KERNEL_NO,
	TB_TLS_KERNEL_YES
};
extern const char *const tb_tls_kernel_modes[];

struct tb_tls_ctx;

/* true if @cfg names credentials (certificates or a PSK file). */
bool tb_tls_cfg_set(const struct tb_tls_cfg *cfg);

/* The link's option table entries (struct tb_opt, tiber/config.h) of
 * both daemons: @cfg is a struct tb_tls_cfg, @insecure a bool. */
/* the help strings are longer than a line: */
/* clang-format off */
#define TB_TLS_OPTS(cfg, insecure)                                            \
	{ .key = "tls_cert",                                                   \
	  .type = TB_OPT_STR,                                                  \
	  .dst = &(cfg).cert,                                                  \
	  .help = "this host's PEM certificate (TLS with certificates)" },      \
	{ .key = "tls_key",                                                    \
	  .type = TB_OPT_STR,                                                  \
	  .dst = &(cfg).key,                                                   \
	  .help = "its PEM private key (not readable by others)" },            \
	{ .key = "tls_ca",                                                     \
	  .type = TB_OPT_STR,                                                  \
	  .dst = &(cfg).ca,                                                    \
	  .help = "PEM CA certificate the peer's certificate must chain to" }, \
	{ .key = "tls_psk_file",                                               \
	  .type = TB_OPT_STR,                                                  \
	  .dst = &(cfg).psk_file,                                              \
	  .help = "TLS with a pre-shared key instead: psktool's identity:hexkey file" }, \
	{ .key = "tls_psk_identity",                                           \
	  .type = TB_OPT_STR,                                                  \
	  .dst = &(cfg).psk_identity,                                          \
	  .help = "primary: the identity of tls_psk_file to use (default: its first)" }, \
	{ .key = "tls_peer_name",                                              \
	  .type = TB_OPT_STR,                                                  \
	  .dst = &(cfg).peer_name,                                             \
	  .help = "primary: name the backup's certificate must carry" },       \
	{ .key = "tls_kernel",                                                 \
	  .type = TB_OPT_CHOICE,                                               \
	  .dst = &(cfg).kernel,                                                \
	  .choices = tb_tls_kernel_modes,                                      \
	  .help = "records encrypted by the kernel (kTLS) so io_uring sends plaintext: auto = where the kernel has the tls module" }, \
	{ .key = "insecure",                                                   \
	  .type = TB_OPT_BOOL,                                                 \
	  .dst = &(insecure),                                                  \
	  .help = "plaintext link, no authentication: anyone who reaches the port can read guest memory and replace the replica (default no)" }
/* clang-format on */

/*
 * The daemons' start-up rule: TLS unless insecure = yes, never both.
 * *@out is NULL for insecure.  0 or -errno with @why for the operator.
 */
int tb_tls_setup(struct tb_tls_ctx **out, const struct tb_tls_cfg *cfg,
		 bool insecure, bool server, char *why, size_t whylen);

/* Load credentials once per daemon.  0 or -errno, with @why set
 * ("tls_key /etc/tiber/host.key: ..."). */
int tb_tls_ctx_new(struct tb_tls_ctx **out, const struct tb_tls_cfg *cfg,
		   bool server, char *why, size_t whylen);
void tb_tls_ctx_free(struct tb_tls_ctx *x);
/* "x509" or "psk". */
const char *tb_tls_ctx_mode(const struct tb_tls_ctx *x);

struct tb_tls;

/*
 * Handshake on the connected stream socket @fd (its blocking mode is
 * restored) by @deadline_ns, then kTLS as the context's tls_kernel
 * says.  0 or -ETIMEDOUT, -EACCES (the peer failed authentication, or
 * refused ours), -EPROTO (not TLS), -ENOTSUP (tls_kernel = yes and no
 * kTLS), -errno; @why says what happened.
 */
int tb_tls_handshake(struct tb_tls **out, struct tb_tls_ctx *x, int fd,
		     int64_t deadline_ns, char *why, size_t whylen);
void tb_tls_free(struct tb_tls *t);
/* The authenticated peer: its certificate's CN, or its PSK identity. */
const char *tb_tls_peer_id(const struct tb_tls *t);
/* Protocol, cipher and who encrypts, for logs ("TLS1.3/AES-256-GCM
 * kTLS"). */
const char *tb_tls_desc(const struct tb_tls *t);
/* The kernel seals the records we send / opens those we receive: the
 * socket carries plaintext for io_uring, tb_tls_seal/open are not used
 * in that direction. */
bool tb_tls_kernel_tx(const struct tb_tls *t);
bool tb_tls_kernel_rx(const struct tb_tls *t);

/* Send side: the records that carry @p[0..n) replace what @out held
 * (its memory is swapped in, not copied).  0 or -errno (@out as it
 * was). */
int tb_tls_seal(struct tb_tls *t, const void *p, size_t n, struct tb_buf *out);

/* Receive side: where to put ciphertext read from the socket (@room
 * bytes at *@p), then tb_tls_fed(n); n == 0 means end of stream. */
int tb_tls_feed_space(struct tb_tls *t, uint8_t **p, size_t *room);
void tb_tls_fed(struct tb_tls *t, size_t n);
/* Plaintext into @p: >0 bytes, 0 at the end of the stream, -EAGAIN
 * (feed more), -EBADMSG (a record failed authentication), -errno. */
ssize_t tb_tls_open(struct tb_tls *t, void *p, size_t room);

#endif
