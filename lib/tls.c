// SPDX-License-Identifier: MIT
/*
 * TLS 1.3 sessions of the replication link (see include/tiber/tls.h).
 * The handshake uses GnuTLS's own socket I/O (non-blocking, polled until
 * the deadline); afterwards its transport functions are ours: sealed
 * records go to a queue the send side takes, and the receive side feeds
 * ciphertext into a buffer GnuTLS pulls from.  No I/O happens here then.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tiber/tls.h"

#define TB_TLS_IN_SIZE (512u << 10) /* ciphertext read ahead */
#define TB_TLS_ID_MAX  128

/* AES-GCM first: the CPUs of dom0s have AES instructions */
#define TB_TLS_PRIO                                                     \
	"NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:" \
	"+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"
static const char prio_x509[] = TB_TLS_PRIO;
/* psk_dhe_ke only: a stolen PSK does not open recorded sessions */
static const char prio_psk[] = TB_TLS_PRIO ":-KX-ALL:+ECDHE-PSK:+DHE-PSK";

const char *const tb_tls_kernel_modes[] = { "auto", "no", "yes", NULL };

struct tb_tls_ctx {
	bool server, psk;
	int kernel; /* enum tb_tls_kernel */
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t psk_srv;
	gnutls_psk_client_credentials_t psk_cli;
	gnutls_priority_t prio;
	char *peer_name;
	char psk_id[TB_TLS_ID_MAX]; /* client: the identity we use */
};

struct tb_tls {
	gnutls_session_t s;
	/* send side: sealed records (also an alert the receive side sent) */
	pthread_mutex_t out_lock;
	struct tb_buf out;
	/* receive side: ciphertext fed, not yet pulled */
	uint8_t *in;
	size_t in_pos, in_len;
	bool in_eof;
	bool ktls_tx, ktls_rx; /* the kernel seals / opens the records */
	char peer[TB_TLS_ID_MAX];
	char desc[80];
};

bool tb_tls_cfg_set(const struct tb_tls_cfg *cfg)
{
	return cfg && (cfg->psk_file || cfg->cert || cfg->key || cfg->ca);
}

int tb_tls_setup(struct tb_tls_ctx **out, const struct tb_tls_cfg *cfg,
		 bool insecure, bool server, char *why, size_t whylen)
{
	*out = NULL;
	why[0] = 0;
	if (insecure && tb_tls_cfg_set(cfg)) {
		snprintf(
			why, whylen,
			"insecure = yes and TLS credentials (tls_*): choose one");
		return -EINVAL;
	}
	if (insecure)
		return 0;
	if (!tb_tls_cfg_set(cfg)) {
		snprintf(
			why, whylen,
			"no TLS credentials: set tls_cert, tls_key and tls_ca, or tls_psk_file (scripts/tls-keys.sh makes them), or insecure = yes for a plaintext link");
		return -EINVAL;
	}
	return tb_tls_ctx_new(out, cfg, server, why, whylen);
}

/* ------------------------------------------------------------ credentials */

/* A secret must not be readable by everyone (like ssh's keys). */
static int check_secret(const char *what, const char *path, char *why,
			size_t len)
{
	struct stat st;

	if (stat(path, &st)) {
		snprintf(why, len, "%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	if (st.st_mode & 0007) {
		snprintf(
			why, len,
			"%s %s: readable by other users (mode %04o): chmod o-rwx it",
			what, path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* The client's PSK: the line of @path for @identity (or the first). */
static int load_client_psk(struct tb_tls_ctx *x, const char *path,
			   const char *identity, char *why, size_t len)
{
	char line[1024], *colon, *nl;
	gnutls_datum_t key;
	FILE *f = fopen(path, "re");
	int rc = -ENOENT;

	if (!f) {
		snprintf(why, len, "tls_psk_file %s: %s", path,
			 strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		colon = strchr(line, ':');
		if (!colon || colon == line || !colon[1])
			continue;
		*colon = 0;
		if (identity && strcmp(line, identity) != 0)
			continue;
		if (strlen(line) >= sizeof(x->psk_id))
			continue; /* longer than any identity we log */
		memcpy(x->psk_id, line, strlen(line) + 1);
		key.data = (unsigned char *)colon + 1;
		key.size = (unsigned)strlen(colon + 1);
		rc = gnutls_psk_set_client_credentials(x->psk_cli, line, &key,
						       GNUTLS_PSK_KEY_HEX);
		if (rc < 0) {
			snprintf(why, len, "tls_psk_file %s: key of '%s': %s",
				 path, line, gnutls_strerror(rc));
			rc = -EINVAL;
		}
		break;
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (rc == -ENOENT)
		snprintf(why, len,
			 "tls_psk_file %s: no 'identity:hexkey' line%s%s", path,
			 identity ? " for " : "", identity ? identity : "");
	return rc;
}

static int load_x509(struct tb_tls_ctx *x, const struct tb_tls_cfg *cfg,
		     char *why, size_t len)
{
	int rc;

	if (!cfg->cert || !cfg->key || !cfg->ca) {
		snprintf(
			why, len,
			"TLS with certificates needs tls_cert, tls_key and tls_ca");
		return -EINVAL;
	}
	rc = check_secret("tls_key", cfg->key, why, len);
	if (rc)
		return rc;
	rc = gnutls_certificate_allocate_credentials(&x->x509);
	if (rc < 0)
		return -ENOMEM;
	rc = gnutls_certificate_set_x509_trust_file(x->x509, cfg->ca,
						    GNUTLS_X509_FMT_PEM);
	if (rc <= 0) {
		snprintf(why, len, "tls_ca %s: %s", cfg->ca,
			 rc ? gnutls_strerror(rc) : "no certificate in it");
		return -EINVAL;
	}
	rc = gnutls_certificate_set_x509_key_file(x->x509, cfg->cert, cfg->key,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		snprintf(why, len, "tls_cert %s / tls_key %s: %s", cfg->cert,
			 cfg->key, gnutls_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static int load_psk(struct tb_tls_ctx *x, const struct tb_tls_cfg *cfg,
		    char *why, size_t len)
{
	int rc = check_secret("tls_psk_file", cfg->psk_file, why, len);

	if (rc)
		return rc;
	if (x->server) {
		if (gnutls_psk_allocate_server_credentials(&x->psk_srv) < 0)
			return -ENOMEM;
		rc = gnutls_psk_set_server_credentials_file(x->psk_srv,
							    cfg->psk_file);
		if (rc < 0) {
			snprintf(why, len, "tls_psk_file %s: %s", cfg->psk_file,
				 gnutls_strerror(rc));
			return -EINVAL;
		}
		return 0;
	}
	if (gnutls_psk_allocate_client_credentials(&x->psk_cli) < 0)
		return -ENOMEM;
	return load_client_psk(x, cfg->psk_file, cfg->psk_identity, why, len);
}

int tb_tls_ctx_new(struct tb_tls_ctx **out, const struct tb_tls_cfg *cfg,
		   bool server, char *why, size_t whylen)
{
	struct tb_tls_ctx *x;
	int rc;

	*out = NULL;
	why[0] = 0;
	if (!tb_tls_cfg_set(cfg)) {
		snprintf(why, whylen, "no TLS credentials configured");
		return -EINVAL;
	}
	if (cfg->psk_file && (cfg->cert || cfg->key || cfg->ca)) {
		snprintf(
			why, whylen,
			"tls_psk_file and tls_cert/tls_key/tls_ca: choose one");
		return -EINVAL;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->server = server;
	x->psk = cfg->psk_file != NULL;
	x->kernel = cfg->kernel;
	rc = x->psk ? load_psk(x, cfg, why, whylen) :
		      load_x509(x, cfg, why, whylen);
	if (!rc && cfg->peer_name) {
		x->peer_name = strdup(cfg->peer_name);
		if (!x->peer_name)
			rc = -ENOMEM;
	}
	if (!rc && gnutls_priority_init(&x->prio, x->psk ? prio_psk : prio_x509,
					NULL) < 0) {
		snprintf(why, whylen, "GnuTLS has no TLS 1.3 here");
		rc = -ENOTSUP;
	}
	if (rc) {
		tb_tls_ctx_free(x);
		return rc;
	}
	*out = x;
	return 0;
}

void tb_tls_ctx_free(struct tb_tls_ctx *x)
{
	if (!x)
		return;
	if (x->x509)
		gnutls_certificate_free_credentials(x->x509);
	if (x->psk_srv)
		gnutls_psk_free_server_credentials(x->psk_srv);
	if (x->psk_cli)
		gnutls_psk_free_client_credentials(x->psk_cli);
	if (x->prio)
		gnutls_priority_deinit(x->prio);
	free(x->peer_name);
	free(x);
}

const char *tb_tls_ctx_mode(const struct tb_tls_ctx *x)
{
	return x->psk ? "psk" : "x509";
}

/* ------------------------------------------------------------ handshake */

static int session_new(struct tb_tls *t, struct tb_tls_ctx *x)
{
	unsigned flags = (x->server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
			 GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS;

	if (gnutls_init(&t->s, flags) < 0)
		return -ENOMEM;
	if (gnutls_priority_set(t->s, x->prio) < 0)
		return -EINVAL;
	if (x->psk)
		return gnutls_credentials_set(t->s, GNUTLS_CRD_PSK,
					      x->server ?
						      (void *)x->psk_srv :
						      (void *)x->psk_cli) < 0 ?
			       -EINVAL :
			       0;
	if (gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, x->x509) < 0)
		return -EINVAL;
	if (x->server)
		gnutls_certificate_server_set_request(t->s,
						      GNUTLS_CERT_REQUIRE);
	/* the peer's chain must lead to our CA (and carry peer_name) */
	gnutls_session_set_verify_cert(t->s, x->server ? NULL : x->peer_name,
				       0);
	if (!x->server && x->peer_name)
		gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, x->peer_name,
				       strlen(x->peer_name));
	return 0;
}

/* CN of the peer's certificate (x509) or its PSK identity. */
static void peer_identity(struct tb_tls *t, struct tb_tls_ctx *x)
{
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	size_t len = sizeof(t->peer);
	unsigned n = 0;

	snprintf(t->peer, sizeof(t->peer), "?");
	if (x->psk) {
		/* the client's identity; to the client, the server is
		 * whoever holds the same key */
		const char *u = x->server ?
					gnutls_psk_server_get_username(t->s) :
					x->psk_id;

		snprintf(t->peer, sizeof(t->peer), "%s", u && *u ? u : "?");
		return;
	}
	certs = gnutls_certificate_get_peers(t->s, &n);
	if (!certs || !n || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
					  0, t->peer, &len) < 0)
		snprintf(t->peer, sizeof(t->peer), "?");
	gnutls_x509_crt_deinit(crt);
}

static int handshake_error(struct tb_tls *t, int rc, char *why, size_t len)
{
	gnutls_datum_t st = { 0 };
	unsigned vs;

	switch (rc) {
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
		vs = gnutls_session_get_verify_cert_status(t->s);
		gnutls_certificate_verification_status_print(
			vs, GNUTLS_CRT_X509, &st, 0);
		snprintf(why, len, "peer certificate rejected: %s",
			 st.data ? (char *)st.data : "?");
		gnutls_free(st.data);
		return -EACCES;
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
	case GNUTLS_E_CERTIFICATE_ERROR:
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_KEYFILE_ERROR:
	case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
		snprintf(why, len, "peer failed authentication: %s",
			 gnutls_strerror(rc));
		return -EACCES;
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		snprintf(
			why, len,
			"peer hung up during the TLS handshake (did it refuse our credentials?)");
		return -EACCES;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		snprintf(why, len, "peer refused us: alert '%s'",
			 gnutls_alert_get_name(gnutls_alert_get(t->s)));
		return -EACCES;
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_PREMATURE_TERMINATION:
		snprintf(why, len, "not a TLS 1.3 peer (or it hung up): %s",
			 gnutls_strerror(rc));
		return -EPROTO;
	default:
		snprintf(why, len, "TLS handshake: %s", gnutls_strerror(rc));
		return -EPROTO;
	}
}

/*
 * After the handshake: GnuTLS talks to our buffers, never the socket.
 * Both functions report failure through errno, which is per thread: the
 * session's own errno slot (gnutls_transport_set_errno) is shared by the
 * sending and the receiving thread, and the sender clears it before each
 * push, so an EAGAIN left there by the receiver could be lost and read
 * as a fatal pull error that invalidates the session.
 */
static ssize_t push_vec(gnutls_transport_ptr_t p, const giovec_t *iov, int n)
{
	struct tb_tls *t = p;
	ssize_t total = 0;
	int i;

	pthread_mutex_lock(&t->out_lock);
	for (i = 0; i < n; i++) {
		if (tb_buf_append(&t->out, iov[i].iov_base, iov[i].iov_len)) {
			pthread_mutex_unlock(&t->out_lock);
			errno = ENOMEM;
			return -1;
		}
		total += (ssize_t)iov[i].iov_len;
	}
	pthread_mutex_unlock(&t->out_lock);
	return total;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tb_tls *t = p;
	size_t n = TB_MIN(len, t->in_len - t->in_pos);

	if (!n) {
		if (t->in_eof)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	memcpy(buf, t->in + t->in_pos, n);
	t->in_pos += n;
	return (ssize_t)n;
}

/* ------------------------------------------------------------ kernel TLS */

/* The kernel's crypto_info for one direction of the session's cipher:
 * the key, the static IV (split into salt and iv for AES-GCM), the next
 * record's sequence number.  Its size, or 0 for a cipher kTLS lacks. */
union ktls_info {
	struct tls12_crypto_info_aes_gcm_128 g128;
	struct tls12_crypto_info_aes_gcm_256 g256;
	struct tls12_crypto_info_chacha20_poly1305 cc;
};

static size_t ktls_info(struct tb_tls *t, unsigned read, union ktls_info *u)
{
	gnutls_datum_t iv, key;
	unsigned char seq[8];
	unsigned char *u_iv, *u_key, *u_salt, *u_seq;
	size_t ivn, keyn, saltn, size;

	if (gnutls_record_get_state(t->s, read, NULL, &iv, &key, seq) < 0)
		return 0;
	memset(u, 0, sizeof(*u));
	switch (gnutls_cipher_get(t->s)) {
	case GNUTLS_CIPHER_AES_128_GCM:
		u->g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		u_iv = u->g128.iv, u_key = u->g128.key;
		u_salt = u->g128.salt, u_seq = u->g128.rec_seq;
		ivn = sizeof(u->g128.iv), keyn = sizeof(u->g128.key);
		saltn = sizeof(u->g128.salt), size = sizeof(u->g128);
		break;
	case GNUTLS_CIPHER_AES_256_GCM:
		u->g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		u_iv = u->g256.iv, u_key = u->g256.key;
		u_salt = u->g256.salt, u_seq = u->g256.rec_seq;
		ivn = sizeof(u->g256.iv), keyn = sizeof(u->g256.key);
		saltn = sizeof(u->g256.salt), size = sizeof(u->g256);
		break;
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		u->cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		u_iv = u->cc.iv, u_key = u->cc.key;
		u_salt = u->cc.salt, u_seq = u->cc.rec_seq;
		ivn = sizeof(u->cc.iv), keyn = sizeof(u->cc.key);
		saltn = 0, size = sizeof(u->cc);
		break;
	default:
		return 0;
	}
	if (iv.size != saltn + ivn || key.size != keyn)
		return 0;
	u->g128.info.version = TLS_1_3_VERSION;
	/* TLS 1.3's per-record nonce is the whole static IV XOR the
	 * sequence number; the kernel wants its first bytes as the salt */
	memcpy(u_salt, iv.data, saltn);
	memcpy(u_iv, iv.data + saltn, ivn);
	memcpy(u_key, key.data, keyn);
	memcpy(u_seq, seq, sizeof(seq));
	return size;
}

/*
 * Hand record protection to the kernel (the tls ULP), each direction on
 * its own: then io_uring moves plaintext and the kernel seals and opens.
 * Safe only because nothing is left in GnuTLS's buffers: it reads a
 * record's header, then exactly its length, and we ask for no session
 * tickets, so no record follows the handshake unread.  A direction the
 * kernel refuses stays with GnuTLS; why says why when neither went.
 */
static void ktls_enable(struct tb_tls *t, int fd, char *why, size_t whylen)
{
	union ktls_info info;
	size_t n;

	if (gnutls_record_check_pending(t->s)) {
		snprintf(why, whylen, "records pending after the handshake");
		return;
	}
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		if (errno == ENOENT)
			snprintf(why, whylen,
				 "no tls ULP in this kernel (modprobe tls)");
		else
			snprintf(why, whylen, "TCP_ULP tls: %s",
				 strerror(errno));
		return;
	}
	n = ktls_info(t, 0, &info);
	t->ktls_tx = n && !setsockopt(fd, SOL_TLS, TLS_TX, &info, (socklen_t)n);
	n = ktls_info(t, 1, &info);
	t->ktls_rx = n && !setsockopt(fd, SOL_TLS, TLS_RX, &info, (socklen_t)n);
	explicit_bzero(&info, sizeof(info));
	if (!t->ktls_tx && !t->ktls_rx)
		snprintf(why, whylen, "the kernel refused the %s keys (%s)",
			 gnutls_cipher_get_name(gnutls_cipher_get(t->s)),
			 n ? strerror(errno) : "cipher not offered");
}

bool tb_tls_kernel_tx(const struct tb_tls *t)
{
	return t->ktls_tx;
}

bool tb_tls_kernel_rx(const struct tb_tls *t)
{
	return t->ktls_rx;
}

int tb_tls_handshake(struct tb_tls **out, struct tb_tls_ctx *x, int fd,
		     int64_t deadline_ns, char *why, size_t whylen)
{
	struct tb_tls *t;
	int fl, rc, prc;

	*out = NULL;
	why[0] = 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->out_lock, NULL);
	t->in = malloc(TB_TLS_IN_SIZE);
	rc = t->in ? session_new(t, x) : -ENOMEM;
	if (rc) {
		snprintf(why, whylen, "TLS session: %s", strerror(-rc));
		goto fail;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	gnutls_transport_set_int(t->s, fd);
	for (;;) {
		struct pollfd p = { .fd = fd };
		int64_t left = deadline_ns - tb_now_ns();

		rc = gnutls_handshake(t->s);
		if (rc == GNUTLS_E_SUCCESS)
			break;
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED) {
			/* tell the peer why, so that it fails at once with
			 * a reason rather than at its deadline, or (a TLS
			 * 1.3 client whose certificate we refuse after it
			 * finished) on a bare hang-up that reads as a clean
			 * end of stream; one try, the socket is
			 * non-blocking */
			if (rc != GNUTLS_E_PULL_ERROR &&
			    rc != GNUTLS_E_PUSH_ERROR &&
			    rc != GNUTLS_E_FATAL_ALERT_RECEIVED)
				gnutls_alert_send_appropriate(t->s, rc);
			rc = handshake_error(t, rc, why, whylen);
			break;
		}
		if (left <= 0) {
			snprintf(why, whylen,
				 "TLS handshake: no answer in time");
			rc = -ETIMEDOUT;
			break;
		}
		p.events = gnutls_record_get_direction(t->s) ? POLLOUT : POLLIN;
		prc = poll(&p, 1, (int)(left / TB_NSEC_PER_MSEC) + 1);
		if (prc < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	if (fcntl(fd, F_SETFL, fl) < 0 && !rc)
		rc = -errno;
	if (rc)
		goto fail;
	peer_identity(t, x);
	if (x->kernel != TB_TLS_KERNEL_NO) {
		char kwhy[128] = "";

		ktls_enable(t, fd, kwhy, sizeof(kwhy));
		if (x->kernel == TB_TLS_KERNEL_YES &&
		    !(t->ktls_tx && t->ktls_rx)) {
			snprintf(
				why, whylen,
				"tls_kernel = yes, but kernel TLS is not available: %s",
				kwhy[0] ? kwhy : "one direction refused");
			rc = -ENOTSUP;
			goto fail;
		}
	}
	snprintf(t->desc, sizeof(t->desc), "%s/%s %s",
		 gnutls_protocol_get_name(gnutls_protocol_get_version(t->s)),
		 gnutls_cipher_get_name(gnutls_cipher_get(t->s)),
		 t->ktls_tx && t->ktls_rx ? "kTLS" :
		 t->ktls_tx		  ? "kTLS send, user-space receive" :
		 t->ktls_rx		  ? "user-space send, kTLS receive" :
					    "user-space");
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_vec_push_function(t->s, push_vec);
	gnutls_transport_set_pull_function(t->s, pull);
	*out = t;
	return 0;
fail:
	tb_tls_free(t);
	return rc;
}

void tb_tls_free(struct tb_tls *t)
{
	if (!t)
		return;
	if (t->s)
		gnutls_deinit(t->s);
	tb_buf_free(&t->out);
	pthread_mutex_destroy(&t->out_lock);
	free(t->in);
	free(t);
}

const char *tb_tls_peer_id(const struct tb_tls *t)
{
	return t->peer;
}

const char *tb_tls_desc(const struct tb_tls *t)
{
	return t->desc;
}

/* ------------------------------------------------------------ records */

int tb_tls_seal(struct tb_tls *t, const void *p, size_t n, struct tb_buf *out)
{
	const uint8_t *b = p;
	ssize_t w;
	int rc = 0;

	while (n) {
		w = gnutls_record_send(t->s, b, n);
		if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
			continue; /* our push never blocks: cannot loop */
		if (w < 0) {
			rc = w == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
			break;
		}
		b += w;
		n -= (size_t)w;
	}
	pthread_mutex_lock(&t->out_lock);
	if (!rc) {
		/* hand the records over by swapping buffers, no copy; the
		 * caller's old buffer takes the next records */
		struct tb_buf sealed = t->out;

		t->out = *out;
		*out = sealed;
	}
	tb_buf_reset(&t->out);
	pthread_mutex_unlock(&t->out_lock);
	return rc;
}

int tb_tls_feed_space(struct tb_tls *t, uint8_t **p, size_t *room)
{
	if (t->in_pos == t->in_len) {
		t->in_pos = t->in_len = 0;
	} else if (t->in_pos) {
		memmove(t->in, t->in + t->in_pos, t->in_len - t->in_pos);
		t->in_len -= t->in_pos;
		t->in_pos = 0;
	}
	if (t->in_len == TB_TLS_IN_SIZE)
		return -ENOBUFS; /* cannot happen: open() drains whole records */
	*p = t->in + t->in_len;
	*room = TB_TLS_IN_SIZE - t->in_len;
	return 0;
}

void tb_tls_fed(struct tb_tls *t, size_t n)
{
	if (!n)
		t->in_eof = true;
	t->in_len += n;
}

ssize_t tb_tls_open(struct tb_tls *t, void *p, size_t room)
{
	ssize_t r;

	for (;;) {
		r = gnutls_record_recv(t->s, p, room);
		if (r >= 0)
			return r;
		if (r == GNUTLS_E_AGAIN)
			return -EAGAIN;
		if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_REHANDSHAKE)
			continue;
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0; /* closed without close_notify: the stream
				     decoder tells a cut inside a record */
		if (r == GNUTLS_E_DECRYPTION_FAILED ||
		    r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH)
			return -EBADMSG;
		return -EPROTO;
	}
}
