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
		char x = (char)(*a == '-' ? '_' : *a);
		char y = (char)(*b == '-' ? '_' : *b);

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
		/* a max of UINT64_MAX or so is no limit worth naming */
		if (opt->max >= 0x1p53)
			snprintf(
				o->err, sizeof(o->err),
				"%s: key '%s': value '%s' out of range (at least %.15g)",
				where, opt->key, value, opt->min);
		else
			snprintf(
				o->err, sizeof(o->err),
				"%s: key '%s': value '%s' out of range [%.15g, %.15g]",
				where, opt->key, value, opt->min, opt->max);
		return -EINVAL;
	}
	return 0;
}

/* A parsed value, typed as the key's dst (all members at offset 0). */
union opt_val {
	uint64_t u64;
	uint32_t u32;
	int i;
	double d;
	bool b;
	int64_t ns;
};

static size_t val_size(enum tb_opt_type t)
{
	switch (t) {
	case TB_OPT_U64:
	case TB_OPT_SIZE:
		return sizeof(uint64_t);
	case TB_OPT_U32:
		return sizeof(uint32_t);
	case TB_OPT_INT:
	case TB_OPT_CHOICE:
		return sizeof(int);
	case TB_OPT_DOUBLE:
		return sizeof(double);
	case TB_OPT_BOOL:
		return sizeof(bool);
	case TB_OPT_DURATION:
		return sizeof(int64_t);
	case TB_OPT_STR:
		break;
	}
	return sizeof(const char *);
}

/* One of the key's words: its value in the key's type. */
static bool parse_word(const struct tb_opt *opt, const char *value,
		       union opt_val *v)
{
	const struct tb_opt_word *w;

	for (w = opt->words; w && w->word; w++) {
		if (strcmp(w->word, value) != 0)
			continue;
		switch (opt->type) {
		case TB_OPT_U32:
			v->u32 = (uint32_t)w->value;
			return true;
		case TB_OPT_INT:
			v->i = (int)w->value;
			return true;
		case TB_OPT_DOUBLE:
			v->d = (double)w->value;
			return true;
		case TB_OPT_DURATION:
			v->ns = (int64_t)w->value;
			return true;
		case TB_OPT_U64:
		case TB_OPT_SIZE:
			v->u64 = w->value;
			return true;
		default:
			return false;
		}
	}
	return false;
}

const char *tb_opt_check_pow2(const void *value)
{
	uint64_t u = *(const uint64_t *)value;

	return u && !(u & (u - 1)) ? NULL : "not a power of two";
}

/* The error for a bad @value, listing the choices or words. */
static int bad_value(struct tb_opts *o, const struct tb_opt *opt,
		     const char *where, const char *why, const char *value)
{
	const struct tb_opt_word *w;
	size_t n, cap = sizeof(o->err);
	int i;

	snprintf(o->err, cap, "%s: key '%s': %s: '%s'", where, opt->key, why,
		 value);
	n = strlen(o->err);
	if (opt->type == TB_OPT_CHOICE) {
		for (i = 0; opt->choices[i] && n < cap; i++) {
			snprintf(o->err + n, cap - n, "%s%s", i ? "|" : " (",
				 opt->choices[i]);
			n = strlen(o->err);
		}
		if (n < cap)
			snprintf(o->err + n, cap - n, ")");
	} else if (opt->words && opt->type != TB_OPT_STR &&
		   opt->type != TB_OPT_BOOL) {
		for (w = opt->words; w->word && n < cap; w++) {
			snprintf(o->err + n, cap - n, "%s%s",
				 w == opt->words ? " (or " : "|", w->word);
			n = strlen(o->err);
		}
		if (n < cap && w != opt->words)
			snprintf(o->err + n, cap - n, ")");
	}
	return -EINVAL;
}

int tb_opts_set(struct tb_opts *o, const char *key, const char *value,
		const char *where)
{
	const struct tb_opt *opt = find_opt(o, key);
	const char *what = NULL;
	union opt_val v;
	uint64_t u;
	char **strs, *copy;
	int rc = 0, i;

	if (!opt) {
		snprintf(o->err, sizeof(o->err), "%s: unknown key '%s'", where,
			 key);
		return -ENOENT;
	}
	memset(&v, 0, sizeof(v));
	if (opt->type == TB_OPT_STR) {
		what = opt->check ? opt->check(&value) : NULL;
		if (what)
			return bad_value(o, opt, where, what, value);
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
	}
	if (parse_word(opt, value, &v))
		goto store;
	switch (opt->type) {
	case TB_OPT_STR:
		break;
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
			v.u64 = u;
		else if (opt->type == TB_OPT_U32)
			v.u32 = (uint32_t)u;
		else
			v.i = (int)u;
		break;
	case TB_OPT_DOUBLE:
		rc = tb_parse_double(value, &v.d);
		what = "not a number";
		if (rc)
			break;
		rc = check_bounds(o, opt, v.d, where, value);
		if (rc)
			return rc;
		break;
	case TB_OPT_BOOL:
		rc = parse_bool(value, &v.b);
		what = "not a boolean (yes/no)";
		break;
	case TB_OPT_SIZE:
		rc = tb_parse_size(value, &v.u64);
		what = "not a size (e.g. 4096, 64M, 4G)";
		if (rc)
			break;
		rc = check_bounds(o, opt, (double)v.u64, where, value);
		if (rc)
			return rc;
		break;
	case TB_OPT_DURATION:
		rc = tb_parse_duration(value, &v.ns);
		what = "not a duration (e.g. 500us, 20ms, 2s)";
		if (rc)
			break;
		rc = check_bounds(o, opt, (double)v.ns / 1e6, where, value);
		if (rc)
			return rc;
		break;
	case TB_OPT_CHOICE:
		rc = -EINVAL;
		what = "not one of the allowed values";
		for (i = 0; opt->choices[i]; i++) {
			if (!strcmp(opt->choices[i], value)) {
				v.i = i;
				rc = 0;
				break;
			}
		}
		break;
	}
	if (rc)
		return bad_value(o, opt, where,
				 rc == -ERANGE ? "out of range" : what, value);
	what = opt->check ? opt->check(&v) : NULL;
	if (what)
		return bad_value(o, opt, where, what, value);
store:
	memcpy(opt->dst, &v, val_size(opt->type));
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
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(o->err, sizeof(o->err), "config %s: %s", path,
			 strerror(errno));
		return rc;
	}
	rc = tb_opts_load_fp(o, f, path);
	fclose(f);
	return rc;
}

int tb_opts_load_fp(struct tb_opts *o, FILE *f, const char *path)
{
	char line[1024], where[512], *key, *val, *eq, *hash;
	const struct tb_opt *opt;
	int lineno = 0, rc = 0;
	size_t len;

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
	return rc;
}

/* -x, -xVALUE, -x VALUE, -qx VALUE at argv[*i]; -h is --help. */
static int short_flags(struct tb_opts *o, int argc, char **argv, int *i,
		       bool *help)
{
	const struct tb_opt *opt;
	const char *p, *val;
	char where[16];
	size_t j;
	int rc;

	for (p = argv[*i] + 1; *p; p++) {
		if (*p == 'h') {
			*help = true;
			continue;
		}
		for (opt = NULL, j = 0; j < o->n && !opt; j++)
			if (o->table[j].short_flag == *p)
				opt = &o->table[j];
		if (!opt) {
			snprintf(o->err, sizeof(o->err),
				 "unknown flag '-%c' (see --help)", *p);
			return -EINVAL;
		}
		snprintf(where, sizeof(where), "flag -%c", *p);
		if (opt->type == TB_OPT_BOOL) {
			rc = tb_opts_set(o, opt->key, "yes", where);
			if (rc)
				return rc;
			continue;
		}
		if (p[1]) {
			val = p + 1;
		} else if (*i + 1 < argc) {
			val = argv[++*i];
		} else {
			snprintf(o->err, sizeof(o->err),
				 "flag -%c: missing value", *p);
			return -EINVAL;
		}
		return tb_opts_set(o, opt->key, val, where);
	}
	return 0;
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
		if (arg[0] != '-' || !arg[1]) {
			argv[n++] = argv[i];
			continue;
		}
		if (arg[1] != '-') {
			rc = short_flags(o, argc, argv, &i, help);
			if (rc)
				return rc;
			continue;
		}
		if (!strcmp(arg, "--help")) {
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

int tb_opts_parse_cli_rest(struct tb_opts *o, int argc, char **argv,
			   const char *usage, char ***rest, int *nrest)
{
	bool help;
	int rc;

	*rest = NULL;
	*nrest = 0;
	for (rc = 1; rc < argc && strcmp(argv[rc], "--") != 0; rc++) {
		if (!strcmp(argv[rc], "--version")) {
			const char *slash = strrchr(argv[0], '/');

			printf("%s %s\n", slash ? slash + 1 : argv[0],
			       TB_VERSION);
			return 1;
		}
	}
	rc = tb_opts_parse_argv(o, argc, argv, rest, nrest, &help);
	if (help) {
		fputs(usage, stdout);
		tb_opts_usage(o, stdout);
		return 1;
	}
	return rc;
}

int tb_opts_parse_cli(struct tb_opts *o, int argc, char **argv,
		      const char *usage)
{
	char **rest;
	int rc, nrest;

	rc = tb_opts_parse_cli_rest(o, argc, argv, usage, &rest, &nrest);
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

		snprintf(flag, sizeof(flag), "--%s%s%s", opt->key,
			 opt->arg && !*opt->arg ? "" : " ",
			 opt->arg ? opt->arg : tn[opt->type]);
		for (j = 2; flag[j] && flag[j] != ' '; j++)
			if (flag[j] == '_')
				flag[j] = '-';
		/* two spaces at least: scripts/man.py splits there */
		fprintf(f, "  %-30s%s%s", flag, strlen(flag) < 30 ? " " : "  ",
			opt->help);
		if (opt->type == TB_OPT_CHOICE) {
			fputs(" (", f);
			for (j = 0; opt->choices[j]; j++)
				fprintf(f, "%s%s", j ? "|" : "",
					opt->choices[j]);
			fputc(')', f);
		}
		if (opt->short_flag)
			fprintf(f, " (also -%c)", opt->short_flag);
		fputc('\n', f);
	}
	fputs("  --config FILE                  KEY = VALUE settings (flags override)\n"
	      "  --help                         this text\n"
	      "  --version                      the version\n",
	      f);
}
