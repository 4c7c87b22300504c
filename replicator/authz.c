// SPDX-License-Identifier: MIT
/*
 * tiber-replicator: which authenticated primary may protect which guest
 * (the `authorize_file`).  One rule per line:
 *
 *     IDENTITY GRANT [GRANT...]     # GRANT: GUEST or GUEST:MAXMEM
 *
 * IDENTITY is the primary's TLS identity (its certificate's CN, or its
 * PSK identity); GUEST a guest name, or * for any; MAXMEM (64M, 4G) the
 * largest guest the grant admits: the backup never holds more for it,
 * whatever a HELLO declares.  '#' starts a comment.  A HELLO whose guest
 * no rule grants its peer is refused before any replica state is
 * touched; a grant naming the guest wins over a '*' one.  Without a
 * file every authenticated primary may protect every guest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replicator.h"

#define AUTHZ_MAX_RULES 1024
#define AUTHZ_FIELD_MAX 64

struct rule {
	char id[AUTHZ_FIELD_MAX];
	char guest[AUTHZ_FIELD_MAX]; /* "*" = any */
	uint64_t max_bytes;	     /* 0: no size in the grant */
};

static struct rule *rules;
static size_t nrules;
static bool loaded;

int repl_authz_parse(const char *text, const char *name, char *why, size_t len)
{
	struct rule *r = NULL, *nr;
	size_t n = 0, cap = 0, lineno = 0;
	const char *p = text, *nl;
	char line[1024], *tok, *save, *id;

	while (*p) {
		size_t l;

		nl = strchr(p, '\n');
		l = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (l >= sizeof(line)) {
			snprintf(why, len, "%s:%zu: line too long", name,
				 lineno);
			goto fail;
		}
		memcpy(line, p, l);
		line[l] = 0;
		p += l + (nl ? 1 : 0);
		if ((tok = strchr(line, '#')))
			*tok = 0;
		id = strtok_r(line, " \t\r", &save);
		if (!id)
			continue;
		if (strlen(id) >= AUTHZ_FIELD_MAX) {
			snprintf(why, len, "%s:%zu: identity longer than %d",
				 name, lineno, AUTHZ_FIELD_MAX - 1);
			goto fail;
		}
		tok = strtok_r(NULL, " \t\r", &save);
		if (!tok) {
			snprintf(why, len, "%s:%zu: '%s' grants no guest", name,
				 lineno, id);
			goto fail;
		}
		for (; tok; tok = strtok_r(NULL, " \t\r", &save)) {
			char *size = strchr(tok, ':');
			uint64_t max_bytes = 0;

			if (size) {
				*size++ = 0;
				if (tb_parse_size(size, &max_bytes) ||
				    max_bytes < TB_PAGE_SIZE) {
					snprintf(
						why, len,
						"%s:%zu: guest '%.40s': bad size '%.20s' (want e.g. 512M, 4G)",
						name, lineno, tok, size);
					goto fail;
				}
			}
			if (!*tok) {
				snprintf(why, len,
					 "%s:%zu: a grant without a guest name",
					 name, lineno);
				goto fail;
			}
			if (strlen(tok) >= AUTHZ_FIELD_MAX ||
			    strlen(tok) >
				    sizeof(((struct tb_hello *)0)->name)) {
				snprintf(why, len,
					 "%s:%zu: guest name '%.40s' too long",
					 name, lineno, tok);
				goto fail;
			}
			if (n == AUTHZ_MAX_RULES) {
				snprintf(why, len, "%s: more than %d grants",
					 name, AUTHZ_MAX_RULES);
				goto fail;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				nr = realloc(r, cap * sizeof(*r));
				if (!nr) {
					free(r);
					return -ENOMEM;
				}
				r = nr;
			}
			snprintf(r[n].id, sizeof(r[n].id), "%s", id);
			snprintf(r[n].guest, sizeof(r[n].guest), "%s", tok);
			r[n].max_bytes = max_bytes;
			n++;
		}
	}
	if (!n) {
		snprintf(why, len,
			 "%s: no rule (nobody could protect anything)", name);
		goto fail;
	}
	free(rules);
	rules = r;
	nrules = n;
	loaded = true;
	return 0;
fail:
	free(r);
	return -EINVAL;
}

int repl_authz_load(const char *path, char *why, size_t len)
{
	char *text;
	long sz;
	FILE *f = fopen(path, "re");
	int rc;

	if (!f) {
		snprintf(why, len, "authorize_file %s: %s", path,
			 strerror(errno));
		return -errno;
	}
	if (fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || sz > (1 << 20) ||
	    fseek(f, 0, SEEK_SET)) {
		snprintf(why, len,
			 "authorize_file %s: unreadable or over 1 MiB", path);
		fclose(f);
		return -EINVAL;
	}
	text = calloc(1, (size_t)sz + 1);
	if (!text) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(text, 1, (size_t)sz, f) != (size_t)sz) {
		snprintf(why, len, "authorize_file %s: short read", path);
		rc = -EIO;
	} else {
		rc = repl_authz_parse(text, path, why, len);
	}
	free(text);
	fclose(f);
	return rc;
}

bool repl_authz_allows(const char *id, const char *guest, uint64_t *max_bytes)
{
	const struct rule *any = NULL;
	size_t i;

	if (max_bytes)
		*max_bytes = 0;
	if (!loaded)
		return true;
	if (!id)
		return false;
	for (i = 0; i < nrules; i++) {
		if (strcmp(rules[i].id, id) != 0)
			continue;
		if (!strcmp(rules[i].guest, guest)) {
			any = &rules[i];
			break;
		}
		if (!any && !strcmp(rules[i].guest, "*"))
			any = &rules[i];
	}
	if (any && max_bytes)
		*max_bytes = any->max_bytes;
	return any;
}

size_t repl_authz_rules(void)
{
	return loaded ? nrules : 0;
}

void repl_authz_free(void)
{
	free(rules);
	rules = NULL;
	nrules = 0;
	loaded = false;
}
