#!/bin/sh
# Run every tests/integration/test_*.sh; print one summary line.
cd "$(dirname "$0")" || exit 1
passed=0; failed=0; bad=""
# every script dumps what its redis-server holds here at exit (lib.sh
# schema_dump); tools/schema_check.py validates it all against schemas/
CQ_SCHEMA_DUMP=$(mktemp -d "${TMPDIR:-/tmp}/cancelq-schemas.XXXXXX") && export CQ_SCHEMA_DUMP
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
echo "== schemas (tools/schema_check.py)"
/usr/bin/python3 ../../tools/schema_check.py "$CQ_SCHEMA_DUMP"; rc=$?
if [ $rc -eq 0 ]; then rm -rf "$CQ_SCHEMA_DUMP"; else bad="$bad schemas"; failed=$((failed + 1)); echo "   (dumps kept in $CQ_SCHEMA_DUMP)"; fi
echo "integration: $passed passed, $failed failed"
[ -z "$bad" ]
