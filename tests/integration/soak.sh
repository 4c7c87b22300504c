#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make soak`: the fault-injection test with many runs (default 1000).
TIBER_FAILOVER_RUNS=${TIBER_SOAK_RUNS:-1000} exec "$(dirname "$0")/test_failover.sh"
