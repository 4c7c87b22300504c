/* SPDX-License-Identifier: MIT */
/*
 * Settings from a config file of `KEY = VALUE` lines (xl.cfg style:
 * `#` comments, values optionally in double quotes) and from command-line
 * flags `--key value` / `--key=value` (dashes and underscores are the
 * same).  One table per program names every key, its type and help; the
 * file is applied first, then the flags, so flags override.  Every error
 * is one line naming the source, the key and the problem.
 */
#ifndef TIBER_CONFIG_H
#define TIBER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tb_opt_type {
	TB_OPT_STR,    /* const char * (points into tb_opts storage) */
	TB_OPT_U64,    /* uint64_t */
	TB_OPT_U32,    /* uint32_t */
	TB_OPT_INT,    /* int */
	TB_OPT_DOUBLE, /* double */
	TB_OPT_BOOL, /* bool: yes/no/true/false/1/0/on/off; a flag alone = yes */
	TB_OPT_SIZE,	 /* uint64_t bytes: 64M, 4G */
	TB_OPT_DURATION, /* int64_t ns: 10ms, 2s, 500us; bare number = ms */
	TB_OPT_CHOICE,	 /* int: index into a NULL-terminated choices[] */
};

/* A named value of a numeric key: { "max", UINT64_MAX }. */
struct tb_opt_word {
	const char *word;
	uint64_t value;
};

struct tb_opt {
	const char *key; /* config key, underscores */
	enum tb_opt_type type;
	void *dst;
	const char *help;
	const char *const *choices; /* TB_OPT_CHOICE */
	double min, max;	    /* numeric bounds when min < max */
	bool cli_only;		    /* not allowed in a config file */
	/* -C on the command line too: a boolean -C takes no value (and
	 * -Cq bundles), any other -C VALUE or -CVALUE.  'h' is --help. */
	char short_flag;
	/* The value's name in --help ("N|max"; "" for a switch such as
	 * a boolean --quick); default from the type. */
	const char *arg;
	/* Numeric keys: words accepted as well as numbers, stored as
	 * their value (converted to the key's type; no bounds applied).
	 * Terminated by { NULL }. */
	const struct tb_opt_word *words;
	/*
	 * A further check of a parsed value before it is stored: @value
	 * points to it, typed as dst is (const char * for TB_OPT_STR).
	 * NULL if fine, else why not ("not a power of two").
	 */
	const char *(*check)(const void *value);
};

/* A check for TB_OPT_SIZE / TB_OPT_U64 keys: a power of two. */
const char *tb_opt_check_pow2(const void *value);

/* Owns copies of string values. */
struct tb_opts {
	const struct tb_opt *table;
	size_t n;
	char **strs;
	size_t nstrs;
	char err[1024];
};

void tb_opts_init(struct tb_opts *o, const struct tb_opt *table, size_t n);
void tb_opts_free(struct tb_opts *o);
/* Set @key from @value; @where names the source ("flag", "file:12").
 * 0 or -EINVAL/-ENOENT with o->err set. */
int tb_opts_set(struct tb_opts *o, const char *key, const char *value,
		const char *where);
/* Apply a config file.  0 or -errno with o->err set. */
int tb_opts_load_file(struct tb_opts *o, const char *path);
/* The same for the text read from @f (hostile; @path names it in the
 * messages, "config PATH:LINE"); @f stays open.  0 or -EINVAL/-ENOENT
 * (-ENOMEM) with o->err set. */
int tb_opts_load_fp(struct tb_opts *o, FILE *f, const char *path);
/*
 * Parse argv: --config FILE is applied first wherever it stands, then
 * the flags in order.  Non-flag arguments ("-" is one, and everything
 * after "--") are returned in @rest (argv order, *nrest).  --help or -h
 * sets *help.  0 or -EINVAL with o->err.
 */
int tb_opts_parse_argv(struct tb_opts *o, int argc, char **argv, char ***rest,
		       int *nrest, bool *help);
/*
 * A program's whole command line: parse (no positional arguments
 * allowed); on --help print @usage and the key table to stdout.
 * 0: go on; 1: help was printed (exit 0); -EINVAL: o->err says why.
 */
int tb_opts_parse_cli(struct tb_opts *o, int argc, char **argv,
		      const char *usage);
/* The same for a program that takes positional arguments (FILE...):
 * they are returned in @rest (argv order, *nrest of them). */
int tb_opts_parse_cli_rest(struct tb_opts *o, int argc, char **argv,
			   const char *usage, char ***rest, int *nrest);
/* Print "  --key VALUE   help (default)" lines. */
void tb_opts_usage(const struct tb_opts *o, FILE *f);

#endif
