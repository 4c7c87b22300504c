// SPDX-License-Identifier: MIT
/*
 * tiber-simguest --check-replies LOG --disk IMG: after a failover, every
 * SET/INCR a KV client saw answered OK (its --log) must be in the disk
 * log of the guest's disk image: a durable write whose reply left the
 * primary can never be lost.  The image is hostile input.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tiber/simproto.h"
#include "kv.h"

struct op_id {
	uint64_t client, seq;
};

static int cmp_op(const void *a, const void *b)
{
	const struct op_id *x = a, *y = b;

	if (x->client != y->client)
		return x->client < y->client ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The log's records: lsn 0, 1, ... of the boot of record 0. */
static int load_log(int fd, uint64_t size, struct op_id **out, size_t *n)
{
	struct tb_sim_kvlog_rec r;
	uint64_t lsn, boot = 0;
	struct op_id *v = NULL;
	size_t cap = 0;

	*n = 0;
	for (lsn = 0; lsn < size / TB_SIM_KVLOG_REC; lsn++) {
		if (pread(fd, &r, sizeof(r), (off_t)(lsn * sizeof(r))) !=
		    (ssize_t)sizeof(r))
			break;
		if (!lsn)
			boot = r.boot_id;
		if (!tb_sim_kvlog_valid(&r, lsn, boot))
			break;
		if (*n == cap) {
			struct op_id *w;

			cap = cap ? 2 * cap : 1024;
			w = realloc(v, cap * sizeof(*v));
			if (!w) {
				free(v);
				return -ENOMEM;
			}
			v = w;
		}
		v[*n].client = r.client;
		v[(*n)++].seq = r.seq;
	}
	if (v)
		qsort(v, *n, sizeof(*v), cmp_op);
	*out = v;
	return 0;
}

int tb_kvcheck_main(const char *replies, const char *disk)
{
	uint64_t checked = 0, missing = 0;
	struct op_id *ops = NULL, want;
	char line[512], op[16];
	struct stat st;
	size_t n;
	FILE *f;
	int fd, rc;

	fd = open(disk, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "tiber-simguest: %s: %s\n", disk,
			strerror(errno));
		return 2;
	}
	rc = load_log(fd, (uint64_t)st.st_size, &ops, &n);
	close(fd);
	f = rc ? NULL : fopen(replies, "r");
	if (!f) {
		fprintf(stderr, "tiber-simguest: %s: %s\n", replies,
			strerror(rc ? -rc : errno));
		free(ops);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %15s", &want.client,
			   &want.seq, op) != 3 ||
		    (strcmp(op, "SET") != 0 && strcmp(op, "INCR") != 0) ||
		    !strstr(line, "| ") || !strstr(strstr(line, "| "), " OK "))
			continue;
		checked++;
		if (!bsearch(&want, ops, n, sizeof(*ops), cmp_op)) {
			if (!missing)
				fprintf(stderr,
					"check-replies: client %" PRIu64
					" seq %" PRIu64
					" was answered OK but is not in the disk log\n",
					want.client, want.seq);
			missing++;
		}
	}
	fclose(f);
	free(ops);
	printf("check-replies: %" PRIu64 " durable replies checked against %zu "
	       "disk log records: %" PRIu64 " missing\n",
	       checked, n, missing);
	return missing ? 1 : 0;
}
