// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the replicator's authorize_file parser
 * (replicator/authz.c).  Oracle: no crash, no sanitizer report; a parse
 * that succeeds has at least one rule and grants nothing to an identity
 * that appears nowhere in the input.
 */
#include <stdlib.h>
#include <string.h>

#include "../../replicator/replicator.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t n)
{
	char *text = malloc(n + 1), why[256];
	uint64_t max;

	if (!text)
		return 0;
	memcpy(text, data, n);
	text[n] = 0;
	if (repl_authz_parse(text, "fuzz", why, sizeof(why)) == 0) {
		if (!repl_authz_rules())
			abort();
		if (!memmem(data, n, "\x01stranger", 9) &&
		    repl_authz_allows("\x01stranger", "web", NULL))
			abort();
		repl_authz_allows("a", "*", &max);
	}
	repl_authz_free();
	free(text);
	return 0;
}
