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

struct tb_fake {
	uint64_t nr_pages;
	uint8_t *ram;
	/* knobs (set before the call they affect) */
	int fail_copy;	     /* next copy_pages returns this, once */
	int fail_harvest;    /* next harvest_dirty returns this, once */
	bool ignore_suspend; /* never suspends: await times out */
	bool dead;	     /* check_health reports the guest gone */
	bool no_suspend_cancel;
	/* observations */
	uint64_t suspends, fast_resumes, slow_resumes, timeouts;
	uint64_t boundary_epoch, released_epoch;
	bool gated, suspended, attached;
	uint64_t writes;
	void *priv;
};

extern const struct tb_backend_ops tb_backend_fake_ops;

/* A fake guest of @nr_pages; attach() of the fake ops returns it
 * (cfg->guest is ignored).  0 or -ENOMEM. */
int tb_fake_create(struct tb_fake **out, uint64_t nr_pages);
void tb_fake_destroy(struct tb_fake *f);
/* The guest writes @val at @off of page @pfn (waits while suspended). */
void tb_fake_write(struct tb_fake *f, uint64_t pfn, uint32_t off, uint8_t val);
/* Run @fn while the guest is quiescent (as if suspended). */
void tb_fake_quiesce(struct tb_fake *f, void (*fn)(void *), void *arg);

#endif
