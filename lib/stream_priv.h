/* SPDX-License-Identifier: MIT */
/*
 * What lib/stream.c shares with the record files beside it
 * (lib/stream_disk.c): the record builder and the body parsers of the
 * types those files own.  Not installed; not for other modules.
 */
#ifndef TIBER_STREAM_PRIV_H
#define TIBER_STREAM_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "tiber/stream.h"

#define TB_DISK_INFO_LEN      32u
#define TB_DISK_WRITE_HDR_LEN 24u

/* Reserve a whole record of body @len at the end of @out (header and
 * padding written): the caller fills the body, then tb_rec_check_close
 * validates it with the decoder's own checks and commits it. */
uint8_t *tb_rec_open(struct tb_buf *out, uint32_t type, uint32_t len);
int tb_rec_check_close(struct tb_buf *out, uint32_t type, uint32_t len);

/* Body checks (the header check already bounded @len).  0 or a stream
 * error code with the reason in @why. */
int tb_parse_disk_info(const uint8_t *b, struct tb_disk_info *i, char *why,
		       size_t whylen);
int tb_parse_disk_write(const uint8_t *b, uint32_t len, struct tb_disk_write *w,
			char *why, size_t whylen);

#endif
