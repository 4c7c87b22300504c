/* SPDX-License-Identifier: MIT */
/*
 * Small shared helpers: page size, clock, byte order, growable buffer,
 * write-all/read-all loops, futex.  Everything here is header-only or
 * lives in lib/common.c.
 */
#ifndef TIBER_COMMON_H
#define TIBER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <endian.h>

#define TB_PAGE_SHIFT	  12
#define TB_PAGE_SIZE	  (1u << TB_PAGE_SHIFT)
#define TB_VERSION	  "0.2.0" /* debian/changelog says the same (make deb) */
#define TB_ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define TB_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define TB_MIN(a, b)	  ((a) < (b) ? (a) : (b))
#define TB_MAX(a, b)	  ((a) > (b) ? (a) : (b))
#define TB_NSEC_PER_SEC	  ((int64_t)1000000000)
#define TB_NSEC_PER_MSEC  ((int64_t)1000000)
#define TB_NSEC_PER_USEC  ((int64_t)1000)

/* Sequentially consistent atomics on a word shared between threads, or
 * with the simulated guest's processes (control page, rings). */
#define TB_LD(p)    __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define TB_ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define TB_INC(p)   __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)

/* Not an errno: a host name that does not resolve (-TB_ERESOLVE). */
#define TB_ERESOLVE 4096
/* strerror of a -errno (or -TB_ERESOLVE): "cannot resolve host name". */
const char *tb_strerror(int rc);

/* @in as the inside of a JSON string: '"', '\\' and control characters
 * escaped, into @out (@len > 0), cut before an escape or byte that does
 * not fit.  Returns @out (for a printf argument).  Names a peer, a guest
 * or a client chose go through this before they go into a JSON reply. */
const char *tb_json_esc(char *out, size_t len, const char *in);

/* CLOCK_MONOTONIC in ns: the one clock of every timestamp tiber records. */
static inline int64_t tb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * TB_NSEC_PER_SEC + ts.tv_nsec;
}

/* Wall clock in ns, only for log lines and reports. */
static inline int64_t tb_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * TB_NSEC_PER_SEC + ts.tv_nsec;
}

/* Little-endian wire helpers: unaligned-safe loads and stores. */
static inline void tb_put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void tb_put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline uint32_t tb_get_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t tb_get_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/*
 * Growable byte buffer.  Zero-initialise, append, tb_buf_free.
 * @cap never shrinks; tb_buf_reset keeps the memory for reuse.
 */
struct tb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Make room for @extra more bytes.  0 or -ENOMEM. */
int tb_buf_reserve(struct tb_buf *b, size_t extra);
/* Append @n bytes.  0 or -ENOMEM. */
int tb_buf_append(struct tb_buf *b, const void *p, size_t n);
static inline void tb_buf_reset(struct tb_buf *b)
{
	b->len = 0;
}
void tb_buf_free(struct tb_buf *b);

/* Parse helpers: the whole string must be consumed.  0 or -EINVAL/-ERANGE. */
int tb_parse_u64(const char *s, uint64_t *out);
/* A guest UUID: 16 bytes, written 8-4-4-4-12 in lower-case hex. */
#define TB_UUID_TEXT 37 /* with the NUL */
void tb_uuid_fmt(const uint8_t u[16], char out[TB_UUID_TEXT]);
/* 0 or -EINVAL (not 36 characters of that form). */
int tb_uuid_parse(const char *s, uint8_t u[16]);
bool tb_uuid_nil(const uint8_t u[16]);
/* A random (version 4) UUID.  0 or -errno. */
int tb_uuid_new(uint8_t u[16]);
int tb_parse_i64(const char *s, int64_t *out);
int tb_parse_double(const char *s, double *out);
/* "64M", "4G", "4096", "1k": bytes.  0 or -EINVAL/-ERANGE. */
int tb_parse_size(const char *s, uint64_t *out);
/* "10ms", "2s", "500us", "100" (ms): ns.  0 or -EINVAL/-ERANGE. */
int tb_parse_duration(const char *s, int64_t *out_ns);

/* Sleep until absolute CLOCK_MONOTONIC @t_ns (restarts on EINTR). */
void tb_sleep_until(int64_t t_ns);

/*
 * Small I/O helpers: they restart on EINTR and go on after a short
 * transfer, so a signal or a full pipe never loses bytes.
 */
/* write(2) all @n bytes of @p.  0, or -errno (-EIO if write returns 0). */
int tb_write_all(int fd, const void *p, size_t n);
/* pwrite(2) all @n bytes of @p at offset @off.  Returns as tb_write_all. */
int tb_pwrite_all(int fd, const void *p, size_t n, uint64_t off);
/* Append what read(2) gives from @fd's current offset up to end of file
 * to @b.  0, -ENOMEM or -errno; on error @b holds what was read so far. */
int tb_read_fd(int fd, struct tb_buf *b);
/* Append the file at @path to @b (tb_read_fd).  0, -ENOMEM or -errno. */
int tb_read_file(const char *path, struct tb_buf *b);

/*
 * futex(2) on the private or shared word @uaddr (FUTEX_* from
 * <linux/futex.h>).  0 (FUTEX_WAKE: not how many woke), or -errno:
 * FUTEX_WAIT gives -EAGAIN when *@uaddr != @val, -ETIMEDOUT after the
 * relative @ts, -EINTR on a signal.
 */
int tb_futex(int *uaddr, int op, int val, const struct timespec *ts);

#endif
