// SPDX-License-Identifier: MIT
/* tiber-simguest --selftest-bench: measurements of the simulated backend. */
#include <stdio.h>

#include "guest.h"

int tb_simbench_main(int argc, char **argv)
{
	fprintf(stderr, "simbench: not built yet\n");
	return 1;
}
