#!/bin/sh
# Run each cmocka unit test binary; fail if any fails.
fail=0
for t in "$@"; do
    echo "== $t"
    "$t" || fail=1
done
[ $fail -eq 0 ] || { echo "unit tests FAILED"; exit 1; }
