/* SPDX-License-Identifier: MIT */
/*
 * tiberd under systemd (Type=notify): see sdnotify.c.
 */
#ifndef TIBER_SDNOTIFY_H
#define TIBER_SDNOTIFY_H

#include "tiber/epoch.h"

/* Start telling systemd about @e (a no-op without $NOTIFY_SOCKET). */
int tb_sd_start(struct tb_engine *e);
/* STOPPING=1, and the notifier thread joined. */
void tb_sd_stop(void);

#endif
