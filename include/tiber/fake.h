/* SPDX-License-Identifier: MIT */
/*
 * The in-process fake backend (tb_backend_fake_ops), for unit tests of
 * the epoch engine's error paths.  Its "guest" is memory the test writes
 * with tb_fake_write(); a write waits while the fake is suspended, so a
 * checkpoint sees a quiescent image, and marks the page dirty like a
 * hypervisor's log-dirty bitmap would.  Knobs inject failures.
 */
#ifndef TIBER_FAKE_H
#define TIBER_FAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "tiber/backend.h"

/* A step of the paused path (harvest .. resume) a test can make fail. */
enum tb_fake_phase {
	TB_FAKE_NONE = 0,
	TB_FAKE_HARVEST,
	TB_FAKE_COPY,
	TB_FAKE_CPU,
	TB_FAKE_DEV,
	TB_FAKE_BOUNDARY,
	TB_FAKE_RESUME,	    /* the guest stays suspended */
	TB_FAKE_COW_FINISH, /* mode cow: the copy after the resume */
	TB_FAKE_NR_PHASES
};

struct tb_fake {
	uint64_t nr_pages;
	uint8_t *ram;
	/* knobs: tb_fake_fail_at(); */
	bool ignore_suspend; /* never suspends: await times out */
	bool dead;	     /* check_health reports the guest gone */
	bool no_suspend_cancel;
	/* > 0: as each suspend is requested the guest writes one of the
	 * last late_write_pages pages, in turn (after the engine's running
	 * harvest: mode cow must still take it) */
	uint64_t late_write_pages;
	/* observations */
	uint64_t suspends, fast_resumes, slow_resumes, timeouts;
	uint64_t boundary_epoch, released_epoch;
	bool gated, suspended, attached;
	bool destroyed; /* destroy (self-fencing) was called */
	uint64_t writes;
	uint64_t faults; /* injected failures that fired */
	void *priv;
};

extern const struct tb_backend_ops tb_backend_fake_ops;

/* A fake guest of @nr_pages; attach() of the fake ops returns it
 * (cfg->guest is ignored).  0 or -ENOMEM. */
int tb_fake_create(struct tb_fake **out, uint64_t nr_pages);
void tb_fake_destroy(struct tb_fake *f);
/* The guest writes @val at @off of page @pfn (waits while suspended). */
void tb_fake_write(struct tb_fake *f, uint64_t pfn, uint32_t off, uint8_t val);
/* Make @phase return @rc once, in the first pause that starts after the
 * guest made @min_writes writes in all (only while suspended: the
 * pre-copy of a first sync runs the guest and is never hit). */
void tb_fake_fail_at(struct tb_fake *f, enum tb_fake_phase phase, int rc,
		     uint64_t min_writes);
/* Run @fn while the guest is quiescent (as if suspended). */
void tb_fake_quiesce(struct tb_fake *f, void (*fn)(void *), void *arg);

#endif
