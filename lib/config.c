// SPDX-License-Identifier: MIT
/* Config files and flags through one table of keys (see config.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tiber/common.h"
#include "tiber/config.h"

void tb_opts_init(struct tb_opts *o, const struct tb_opt *table, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->table = table;
	o->n = n;
}

void tb_opts_free(struct tb_opts *o)
{
	size_t i;

	for (i = 0; i < o->nstrs; i++)
		free(o->strs[i]);
	free(o->strs);
	o->strs = NULL;
	o->nstrs = 0;
}

/* "rate-hz" and "rate_hz" name the same key. */
static bool key_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;

		if (x != y)
			return false;
	}
	return !*a && !*b;
}

static const struct tb_opt *find_opt(const struct tb_opts *o, const char *key)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (key_eq(o->table[i].key, key))
			return &o->table[i];
	return NULL;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };
	size_t i;

	for (i = 0; i < TB_ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int check_bounds(struct tb_opts *o, const struct tb_opt *opt, double v,
			const char *where, const char *value)
{
	if (opt->min < opt->max && (v < opt->min || v > opt->max)) {
		snprintf(o->err, sizeof(o->err),
			 "%s: key '%s': value '%s' out of range [%g, %g]",
			 where, opt->key, value, opt->min, opt->max);
		return -EINVAL;
	}
	return 0;
}

int tb_opts_set(struct tb_opts *o, const char *key, const char *value,
		const char *where)
{
	const struct tb_opt *opt = find_opt(o, key);
	const char *what = NULL;
	uint64_t u;
	int64_t ns;
	double d;
	char **strs, *copy;
	int rc = 0, i;

	if (!opt) {
		snprintf(o->err, sizeof(o->err), "%s: unknown key '%s'", where,
			 key);
		return -ENOENT;
	}
	switch (opt->type) {
	case TB_OPT_STR:
		copy = strdup(value);
		strs = realloc(o->strs, (o->nstrs + 1) * sizeof(*strs));
		if (!copy || !strs) {
			free(copy);
			if (strs)
				o->strs = strs;
			snprintf(o->err, sizeof(o->err), "out of memory");
			return -ENOMEM;
		}
		o->strs = strs;
		o->strs[o->nstrs++] = copy;
		*(const char **)opt->dst = copy;
		return 0;
	case TB_OPT_U64:
	case TB_OPT_U32:
	case TB_OPT_INT:
		rc = tb_parse_u64(value, &u);
		what = "not a non-negative integer";
		if (!rc && opt->type == TB_OPT_U32 && u > UINT32_MAX)
			rc = -ERANGE;
		if (!rc && opt->type == TB_OPT_INT && u > INT32_MAX)
			rc = -ERANGE;
		if (rc)
			break;
		rc = check_bounds(o, opt, (double)u, where, value);
		if (rc)
			return rc;
		if (opt->type == TB_OPT_U64)
			*(uint64_t *)opt->dst = u;
		else if (opt->type == TB_OPT_U32)
			*(uint32_t *)opt->dst = (uint32_t)u;
		else
			*(int *)opt->dst = (int)u;
		return 0;
	case TB_OPT_DOUBLE:
		rc = tb_parse_double(value, &d);
		what = "not a number";
		if (rc)
			break;
		rc = check_bounds(o, opt, d, where, value);
		if (rc)
			return rc;
		*(double *)opt->dst = d;
		return 0;
	case TB_OPT_BOOL:
		rc = parse_bool(value, (bool *)opt->dst);
		what = "not a boolean (yes/no)";
		break;
	case TB_OPT_SIZE:
		rc = tb_parse_size(value, &u);
		what = "not a size (e.g. 4096, 64M, 4G)";
		if (rc)
			break;
		rc = check_bounds(o, opt, (double)u, where, value);
		if (rc)
			return rc;
		*(uint64_t *)opt->dst = u;
		return 0;
	case TB_OPT_DURATION:
		rc = tb_parse_duration(value, &ns);
		what = "not a duration (e.g. 500us, 20ms, 2s)";
		if (rc)
			break;
		rc = check_bounds(o, opt, (double)ns / 1e6, where, value);
		if (rc)
			return rc;
		*(int64_t *)opt->dst = ns;
		return 0;
	case TB_OPT_CHOICE:
		for (i = 0; opt->choices[i]; i++) {
			if (!strcmp(opt->choices[i], value)) {
				*(int *)opt->dst = i;
				return 0;
			}
		}
		rc = -EINVAL;
		what = "not one of the allowed values";
		break;
	}
	if (rc) {
		int n = snprintf(o->err, sizeof(o->err),
				 "%s: key '%s': %s: '%s'", where, opt->key,
				 rc == -ERANGE ? "out of range" : what, value);

		for (i = 0; opt->type == TB_OPT_CHOICE && opt->choices[i] &&
			    n > 0 && (size_t)n < sizeof(o->err);
		     i++)
			n += snprintf(o->err + n, sizeof(o->err) - (size_t)n,
				      "%s%s", i ? "|" : " (", opt->choices[i]);
		if (opt->type == TB_OPT_CHOICE && n > 0 &&
		    (size_t)n < sizeof(o->err))
			snprintf(o->err + n, sizeof(o->err) - (size_t)n, ")");
		return -EINVAL;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int tb_opts_load_file(struct tb_opts *o, const char *path)
{
	char line[1024], where[512], *key, *val, *eq, *hash;
	const struct tb_opt *opt;
	FILE *f = fopen(path, "r");
	int lineno = 0, rc = 0;
	size_t len;

	if (!f) {
		rc = -errno;
		snprintf(o->err, sizeof(o->err), "config %s: %s", path,
			 strerror(errno));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		snprintf(where, sizeof(where), "config %s:%d", path, lineno);
		len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(o->err, sizeof(o->err),
				 "%.300s: line too long", where);
			rc = -EINVAL;
			break;
		}
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			snprintf(o->err, sizeof(o->err),
				 "%.300s: expected KEY = VALUE: '%.200s'",
				 where, key);
			rc = -EINVAL;
			break;
		}
		*eq = 0;
		val = trim(eq + 1);
		key = trim(key);
		if (*val == '"') {
			char *end = strchr(val + 1, '"');

			if (!end ||
			    (*trim(end + 1) != 0 && *trim(end + 1) != '#')) {
				snprintf(
					o->err, sizeof(o->err),
					"%.300s: key '%.100s': unterminated or trailing text after quoted value",
					where, key);
				rc = -EINVAL;
				break;
			}
			*end = 0;
			val++;
		} else if ((hash = strchr(val, '#'))) {
			*hash = 0;
			val = trim(val);
		}
		opt = find_opt(o, key);
		if (opt && opt->cli_only) {
			snprintf(
				o->err, sizeof(o->err),
				"%.300s: key '%.100s' is only allowed on the command line",
				where, key);
			rc = -EINVAL;
			break;
		}
		rc = tb_opts_set(o, key, val, where);
		if (rc)
			break;
	}
	fclose(f);
	return rc;
}

int tb_opts_parse_argv(struct tb_opts *o, int argc, char **argv, char ***rest,
		       int *nrest, bool *help)
{
	const struct tb_opt *opt;
	char key[128], where[160];
	const char *arg, *val, *eq;
	int i, rc, n = 0;

	*help = false;
	/* The file first, so that flags override it. */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc) {
				snprintf(o->err, sizeof(o->err),
					 "flag --config: missing value");
				return -EINVAL;
			}
			rc = tb_opts_load_file(o, argv[i + 1]);
			if (rc)
				return rc;
			i++;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			rc = tb_opts_load_file(o, argv[i] + 9);
			if (rc)
				return rc;
		}
	}
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (!strcmp(arg, "--")) {
			for (i++; i < argc; i++)
				argv[n++] = argv[i];
			break;
		}
		if (strncmp(arg, "--", 2) || !arg[2]) {
			argv[n++] = argv[i];
			continue;
		}
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			*help = true;
			continue;
		}
		arg += 2;
		eq = strchr(arg, '=');
		snprintf(key, sizeof(key), "%.*s",
			 (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
		if (!strcmp(key, "config")) {
			if (!eq)
				i++;
			continue;
		}
		opt = find_opt(o, key);
		if (!opt) {
			snprintf(o->err, sizeof(o->err),
				 "unknown flag '--%s' (see --help)", key);
			return -EINVAL;
		}
		if (eq) {
			val = eq + 1;
		} else if (opt->type == TB_OPT_BOOL &&
			   (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2) ||
			    parse_bool(argv[i + 1], &(bool){ false }))) {
			val = "yes";
		} else {
			if (i + 1 >= argc) {
				snprintf(o->err, sizeof(o->err),
					 "flag --%s: missing value", key);
				return -EINVAL;
			}
			val = argv[++i];
		}
		snprintf(where, sizeof(where), "flag --%s", key);
		rc = tb_opts_set(o, key, val, where);
		if (rc)
			return rc;
	}
	*rest = argv;
	*nrest = n;
	return 0;
}

int tb_opts_parse_cli(struct tb_opts *o, int argc, char **argv,
		      const char *usage)
{
	char **rest;
	int rc, nrest;
	bool help;

	for (rc = 1; rc < argc && strcmp(argv[rc], "--"); rc++) {
		if (!strcmp(argv[rc], "--version")) {
			const char *slash = strrchr(argv[0], '/');

			printf("%s %s\n", slash ? slash + 1 : argv[0],
			       TB_VERSION);
			return 1;
		}
	}
	rc = tb_opts_parse_argv(o, argc, argv, &rest, &nrest, &help);
	if (help) {
		fputs(usage, stdout);
		tb_opts_usage(o, stdout);
		return 1;
	}
	if (!rc && nrest) {
		snprintf(o->err, sizeof(o->err), "unexpected argument '%.200s'",
			 rest[0]);
		rc = -EINVAL;
	}
	return rc;
}

void tb_opts_usage(const struct tb_opts *o, FILE *f)
{
	static const char *const tn[] = { "STR",  "N",	  "N",
					  "N",	  "X",	  "[yes|no]",
					  "SIZE", "TIME", "CHOICE" };
	char flag[64];
	size_t i;
	int j;

	for (i = 0; i < o->n; i++) {
		const struct tb_opt *opt = &o->table[i];

		snprintf(flag, sizeof(flag), "--%s %s", opt->key,
			 tn[opt->type]);
		for (j = 2; flag[j] && flag[j] != ' '; j++)
			if (flag[j] == '_')
				flag[j] = '-';
		fprintf(f, "  %-30s %s", flag, opt->help);
		if (opt->type == TB_OPT_CHOICE) {
			fputs(" (", f);
			for (j = 0; opt->choices[j]; j++)
				fprintf(f, "%s%s", j ? "|" : "",
					opt->choices[j]);
			fputc(')', f);
		}
		fputc('\n', f);
	}
	fputs("  --config FILE                  KEY = VALUE settings (flags override)\n"
	      "  --help                         this text\n"
	      "  --version                      the version\n",
	      f);
}
