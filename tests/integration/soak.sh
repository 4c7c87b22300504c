#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make soak`: the long versions of two fault tests.
#   1. the kill -9 failover test, TIBER_SOAK_RUNS runs (default 1000);
#   2. the split-brain fault campaign, TIBER_SOAK_TRIALS randomized
#      trials (default 200; every fault kind 25 times), stalls up to 5 s.
set -u
dir=$(dirname "$0")
rc=0
TIBER_FAILOVER_RUNS=${TIBER_SOAK_RUNS:-1000} "$dir/test_failover.sh" || rc=1
TIBER_CAMPAIGN_TRIALS=${TIBER_SOAK_TRIALS:-200} TIBER_CAMPAIGN_MAX_S=5 \
	"$dir/test_split_brain.sh" || rc=1
exit $rc
