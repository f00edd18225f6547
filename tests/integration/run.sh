#!/bin/sh
# Run every tests/integration/test_*.sh; print one summary line.
cd "$(dirname "$0")" || exit 1
passed=0; failed=0; bad=""
for t in test_*.sh; do
    [ -e "$t" ] || continue
    echo "== integration/$t"
    out=$(bash "$t" 2>&1); rc=$?
    echo "$out"
    p=$(echo "$out" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -1)
    f=$(echo "$out" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ $rc -ne 0 ]; then bad="$bad $t"; [ "${f:-0}" -eq 0 ] && failed=$((failed + 1)); fi
done
echo "integration: $passed passed, $failed failed"
[ -z "$bad" ]
