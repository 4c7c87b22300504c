#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make tidy: clang-tidy (.clang-tidy, warnings are errors) on every .c
# file given, with the compile flags in $TIDY_FLAGS (the Makefile passes
# the build's own), two files at a time.  Each file's report is printed
# in one piece; exit 1 if any file has a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --one ]; then
	# shellcheck disable=SC2086 # TIDY_FLAGS is a list of words
	if out=$(clang-tidy --quiet "$2" -- $TIDY_FLAGS 2>&1); then
		exit 0
	fi
	printf '%s\n' "$out"
	echo "tidy: $2: findings"
	exit 1
fi
: "${TIDY_FLAGS:?set TIDY_FLAGS to the compile flags}"
export TIDY_FLAGS
jobs=${TIDY_JOBS:-2}
if printf '%s\n' "$@" | xargs -r -n1 -P"$jobs" "$0" --one; then
	echo "tidy: $# files clean"
	exit 0
fi
echo "tidy: findings (see above)"
exit 1
