// SPDX-License-Identifier: MIT
/*
 * Growable buffers, number/size/duration parsing, absolute sleeps, and the
 * small I/O and futex wrappers every module would otherwise write again.
 * Invariant: each action returns 0 or -errno, never sets errno as output.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include "tiber/common.h"

int tb_buf_reserve(struct tb_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int tb_buf_append(struct tb_buf *b, const void *p, size_t n)
{
	int rc = tb_buf_reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void tb_buf_free(struct tb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int tb_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	/* strtoull() would skip spaces and negate a '-' after them */
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int tb_parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int tb_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Split "12.5ms" into number and unit; the unit is matched by the caller. */
static int split_unit(const char *s, double *num, const char **unit)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*num = strtod(s, &end);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s || !isfinite(*num) || *num < 0)
		return -EINVAL;
	*unit = end;
	return 0;
}

int tb_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *u;
		double mul;
	} units[] = {
		{ "", 1 },
		{ "b", 1 },
		{ "k", 1024.0 },
		{ "kib", 1024.0 },
		{ "m", 1048576.0 },
		{ "mib", 1048576.0 },
		{ "g", 1073741824.0 },
		{ "gib", 1073741824.0 },
	};
	const char *unit;
	double num, v;
	size_t i;
	int rc = split_unit(s, &num, &unit);

	if (rc)
		return rc;
	for (i = 0; i < TB_ARRAY_SIZE(units); i++) {
		if (strcasecmp(unit, units[i].u) != 0)
			continue;
		v = num * units[i].mul;
		if (v >= 18446744073709551615.0)
			return -ERANGE;
		if (v != floor(v))
			return -EINVAL;
		*out = (uint64_t)v;
		return 0;
	}
	return -EINVAL;
}

int tb_parse_duration(const char *s, int64_t *out_ns)
{
	static const struct {
		const char *u;
		double mul;
	} units[] = {
		{ "", 1e6 },   { "ms", 1e6 }, { "s", 1e9 },
		{ "us", 1e3 }, { "ns", 1 },   { "m", 60e9 },
	};
	const char *unit;
	double num, v;
	size_t i;
	int rc = split_unit(s, &num, &unit);

	if (rc)
		return rc;
	for (i = 0; i < TB_ARRAY_SIZE(units); i++) {
		if (strcmp(unit, units[i].u) != 0)
			continue;
		v = num * units[i].mul;
		if (v >= 9.2e18)
			return -ERANGE;
		*out_ns = (int64_t)v;
		return 0;
	}
	return -EINVAL;
}

const char *tb_strerror(int rc)
{
	if (rc < 0)
		rc = -rc;
	return rc == TB_ERESOLVE ? "cannot resolve host name" : strerror(rc);
}

const char *tb_json_esc(char *out, size_t len, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, n;
	char e[6];

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;

		e[0] = '\\';
		if (c == '"' || c == '\\') {
			e[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			e[1] = 'u';
			e[2] = e[3] = '0';
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			n = 6;
		} else {
			e[0] = (char)c;
			n = 1;
		}
		if (n >= len - o)
			break;
		memcpy(out + o, e, n);
		o += n;
	}
	out[o] = 0;
	return out;
}

void tb_sleep_until(int64_t t_ns)
{
	struct timespec ts = { .tv_sec = t_ns / TB_NSEC_PER_SEC,
			       .tv_nsec = t_ns % TB_NSEC_PER_SEC };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

int tb_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t k;

	while (n) {
		k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

int tb_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;
	ssize_t k;

	while (n) {
		k = pwrite(fd, b, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

int tb_read_fd(int fd, struct tb_buf *b)
{
	char tmp[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (tb_buf_append(b, tmp, (size_t)n))
			return -ENOMEM;
	}
}

int tb_read_file(const char *path, struct tb_buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = tb_read_fd(fd, b);
	close(fd);
	return rc;
}

int tb_futex(int *uaddr, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0) < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------- UUIDs */

void tb_uuid_fmt(const uint8_t u[16], char out[TB_UUID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (unsigned i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int tb_uuid_parse(const char *s, uint8_t u[16])
{
	unsigned i = 0, k = 0;
	int hi, lo;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	while (i < 16) {
		if (k == 8 || k == 13 || k == 18 || k == 23) {
			if (s[k++] != '-')
				return -EINVAL;
			continue;
		}
		hi = hexval(s[k]);
		lo = hexval(s[k + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u[i++] = (uint8_t)(hi << 4 | lo);
		k += 2;
	}
	return 0;
}

bool tb_uuid_nil(const uint8_t u[16])
{
	for (unsigned i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

int tb_uuid_new(uint8_t u[16])
{
	if (getrandom(u, 16, 0) != 16)
		return -EIO;
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}
