// SPDX-License-Identifier: MIT
/*
 * The session order checker (tb_sess_*): which record a peer may send in
 * which state of the session, per direction (docs/stream-format.md,
 * section 7), as one table of (sender, state, type) -> action.
 *
 * Invariants: fail closed: anything the table does not list is a
 * violation, and a violation or an ERROR record closes the session for
 * good (TB_SESS_CLOSED allows nothing).  Epochs (BEGIN from the primary,
 * ACK from the backup) strictly increase; an EPOCH_END ends the epoch in
 * progress.  A violation is reported through the decoder's sticky error
 * (d->err, d->msg) when the record came from @d.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stream_priv.h"

/*
 * What each record type does in each state, per direction (the role of
 * the sender).  A zero entry is a violation: anything not listed here is
 * refused (fail closed).
 */
enum sess_act {
	SA_DENY = 0,
	SA_STAY,  /* allowed, state unchanged */
	SA_HELLO, /* -> IDLE, role must match the direction */
	SA_BEGIN, /* epoch > last -> IN_EPOCH */
	SA_END,	  /* epoch == current -> IDLE */
	SA_ACK,	  /* epoch > last acked, stay IDLE */
	SA_ERROR, /* -> CLOSED */
};

#define NSTATES (TB_SESS_CLOSED + 1)
#define NTYPES	(TB_REC_DISK_WRITE + 1)

static const uint8_t sess_table[2][NSTATES][NTYPES] = {
	[0] = { /* primary -> backup */
		[TB_SESS_WANT_HELLO] = {
			[TB_REC_HELLO] = SA_HELLO,
			[TB_REC_ERROR] = SA_ERROR,
		},
		[TB_SESS_IDLE] = {
			[TB_REC_EPOCH_BEGIN] = SA_BEGIN,
			[TB_REC_HEARTBEAT] = SA_STAY,
			[TB_REC_ERROR] = SA_ERROR,
		},
		[TB_SESS_IN_EPOCH] = {
			[TB_REC_PAGE_DATA] = SA_STAY,
			[TB_REC_CPU_STATE] = SA_STAY,
			[TB_REC_DEVICE_STATE] = SA_STAY,
			[TB_REC_DISK_INFO] = SA_STAY,
			[TB_REC_DISK_WRITE] = SA_STAY,
			[TB_REC_EPOCH_END] = SA_END,
			[TB_REC_HEARTBEAT] = SA_STAY,
			[TB_REC_ERROR] = SA_ERROR,
		},
		/* TB_SESS_CLOSED: nothing */
	},
	[1] = { /* backup -> primary */
		[TB_SESS_WANT_HELLO] = {
			[TB_REC_HELLO] = SA_HELLO,
			[TB_REC_ERROR] = SA_ERROR,
		},
		[TB_SESS_IDLE] = {
			[TB_REC_ACK] = SA_ACK,
			[TB_REC_HEARTBEAT] = SA_STAY,
			[TB_REC_ERROR] = SA_ERROR,
		},
		/* TB_SESS_IN_EPOCH, TB_SESS_CLOSED: nothing */
	},
};

static const char *const sess_state_names[NSTATES] = {
	[TB_SESS_WANT_HELLO] = "before HELLO",
	[TB_SESS_IDLE] = "between epochs",
	[TB_SESS_IN_EPOCH] = "inside an epoch",
	[TB_SESS_CLOSED] = "after ERROR or a violation",
};

void tb_sess_init(struct tb_sess *s, enum tb_role sender)
{
	memset(s, 0, sizeof(*s));
	s->dir_role = sender;
	s->state = TB_SESS_WANT_HELLO;
}

__attribute__((format(printf, 5, 6))) static int
sess_fail(struct tb_sess *s, struct tb_dec *d, const struct tb_rec *rec,
	  int code, const char *fmt, ...)
{
	char why[128];
	va_list ap;
	uint64_t rec_no = 0, pos = 0;
	bool have_pos = false;

	s->state = TB_SESS_CLOSED;
	if (d && !d->err) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		/* position of @rec if it came from @d's buffer */
		uintptr_t body = (uintptr_t)rec->body, base = (uintptr_t)d->buf;

		if (d->buf && body >= base + TB_REC_HDR_LEN &&
		    body < base + d->len && d->records) {
			size_t at = (size_t)(body - base) - TB_REC_HDR_LEN;

			rec_no = d->records - 1;
			pos = d->bytes_in - (d->len - at);
			have_pos = true;
		}
		d->err = code;
		tb_dec_set_msg(d, have_pos, rec_no, rec->type, pos, why);
	}
	return tb_stream_errno(code);
}

int tb_sess_check(struct tb_sess *s, const struct tb_rec *rec, struct tb_dec *d)
{
	unsigned dir, act = SA_DENY;
	const char *sender;

	if (s->dir_role == TB_ROLE_PRIMARY)
		dir = 0, sender = "primary";
	else if (s->dir_role == TB_ROLE_BACKUP)
		dir = 1, sender = "backup";
	else
		return sess_fail(s, d, rec, TB_SERR_BAD_ORDER,
				 "session of unknown role %" PRIu32,
				 s->dir_role);
	if ((unsigned)s->state < NSTATES && rec->type < NTYPES)
		act = sess_table[dir][s->state][rec->type];
	switch (act) {
	case SA_STAY:
		return 0;
	case SA_HELLO:
		if (rec->u.hello.role != s->dir_role)
			return sess_fail(s, d, rec, TB_SERR_VERSION,
					 "HELLO of role %" PRIu32
					 " from the %s side",
					 rec->u.hello.role, sender);
		s->state = TB_SESS_IDLE;
		return 0;
	case SA_BEGIN:
		if (s->have_epoch && rec->u.begin.epoch <= s->last_epoch)
			return sess_fail(s, d, rec, TB_SERR_BAD_ORDER,
					 "epoch %" PRIu64
					 " not above last epoch %" PRIu64
					 " (replayed or reordered)",
					 rec->u.begin.epoch, s->last_epoch);
		s->last_epoch = rec->u.begin.epoch;
		s->have_epoch = true;
		s->state = TB_SESS_IN_EPOCH;
		return 0;
	case SA_END:
		if (rec->u.end.epoch != s->last_epoch)
			return sess_fail(s, d, rec, TB_SERR_BAD_ORDER,
					 "EPOCH_END %" PRIu64
					 " inside epoch %" PRIu64,
					 rec->u.end.epoch, s->last_epoch);
		s->state = TB_SESS_IDLE;
		return 0;
	case SA_ACK:
		if (s->have_epoch && rec->u.ack.epoch <= s->last_epoch)
			return sess_fail(s, d, rec, TB_SERR_BAD_ORDER,
					 "ACK of epoch %" PRIu64
					 " not above last ACK %" PRIu64
					 " (replayed or reordered)",
					 rec->u.ack.epoch, s->last_epoch);
		s->last_epoch = rec->u.ack.epoch;
		s->have_epoch = true;
		return 0;
	case SA_ERROR:
		s->state = TB_SESS_CLOSED;
		return 0;
	default:
		return sess_fail(s, d, rec, TB_SERR_BAD_ORDER,
				 "%s from the %s side not allowed %s",
				 tb_rec_type_name(rec->type), sender,
				 (unsigned)s->state < NSTATES ?
					 sess_state_names[s->state] :
					 "in a bad state");
	}
}
