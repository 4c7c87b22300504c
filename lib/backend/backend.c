// SPDX-License-Identifier: MIT
/* Suspend-mode names, per-thread failure reasons. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tiber/backend.h"

static const char *const mode_names[] = {
	[TB_SUSPEND_AUTO] = "auto",
	[TB_SUSPEND_EVTCHN] = "evtchn",
	[TB_SUSPEND_XENSTORE] = "xenstore",
	[TB_SUSPEND_PAUSE] = "pause",
};

const char *tb_suspend_mode_name(enum tb_suspend_mode m)
{
	if ((unsigned)m >= TB_ARRAY_SIZE(mode_names))
		return "?";
	return mode_names[m];
}

int tb_suspend_mode_parse(const char *s, enum tb_suspend_mode *out)
{
	unsigned i;

	for (i = 0; i < TB_ARRAY_SIZE(mode_names); i++) {
		if (!strcmp(s, mode_names[i])) {
			*out = (enum tb_suspend_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

static __thread char reason[256];

const char *tb_backend_reason(void)
{
	return reason;
}

void tb_backend_set_reason(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
}
