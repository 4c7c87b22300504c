#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make format-check: clang-format (STYLE.md appendix A) would change
# nothing, and no line of C is longer than 80 columns (format strings,
# which the style never splits, excepted).  Lists offenders; exit 1 if any.
set -u
cd "$(dirname "$0")/.."
rc=0
files=$(git ls-files '*.c' '*.h' | grep -v '^tests/xen/guest/')
for f in $files; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "format: $f (run make format)"
		rc=1
	fi
done
awk 'length($0) > 80 && $0 !~ /"/ { print FILENAME ":" FNR ": longer than 80 columns"; bad = 1 }
     END { exit bad }' $files || rc=1
exit $rc
