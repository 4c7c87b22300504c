// SPDX-License-Identifier: MIT
/* Backend registry (its own file: linking it pulls in every backend). */
#include <string.h>

#include "tiber/backend.h"

const struct tb_backend_ops *tb_backend_find(const char *name)
{
	if (!strcmp(name, "sim"))
		return &tb_backend_sim_ops;
	if (!strcmp(name, "xen"))
		return &tb_backend_xen_ops;
	return NULL;
}
