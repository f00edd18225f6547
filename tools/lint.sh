#!/bin/sh
# lint.sh - cppcheck, clang-tidy (config in .clang-tidy) and a clang-format
# check (config in .clang-format) over the project's C sources.
set -eu
cd "$(dirname "$0")/.."
SRC="src/*.c tools/sandbox/*.c tools/cancelqctl/*.c"
# shellcheck disable=SC2086
FILES=$(ls $SRC 2>/dev/null)
CFLAGS="-std=c11 -D_GNU_SOURCE -DCQ_VERSION=\"lint\" -Iinclude -Ibuild/gen $(pkg-config --cflags hiredis libuv libcurl libcjson inih libsystemd)"
fail=0

echo "== cppcheck"
# varFuncNullUB: cq_log() ends its key/value list with NULL; on glibc NULL is
# (void *)0 and the function is declared __attribute__((sentinel)), so the
# compiler checks every call.
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
    --inline-suppr --suppress=missingIncludeSystem \
    --suppress=varFuncNullUB -Iinclude -D_GNU_SOURCE $FILES || fail=1

echo "== clang-tidy"
# shellcheck disable=SC2086
clang-tidy --quiet $FILES -- $CFLAGS 2>/dev/null | grep -E 'warning:|error:' && fail=1 || true

echo "== clang-format"
for f in $FILES include/cancelq/*.h tests/unit/*.c; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run make format)"; fail=1
    fi
done
[ $fail -eq 0 ] && echo "lint: clean" || { echo "lint: FAILED"; exit 1; }
