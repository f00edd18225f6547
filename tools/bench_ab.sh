#!/usr/bin/env bash
# bench_ab.sh - A/B benchmark of two builds of cancelqd, alternated in one
# session (these machines are shared: only figures measured side by side
# compare), with the medians and their ratios B/A.
#
#   tools/bench_ab.sh A_DIR B_DIR [ROUNDS]
#
# A_DIR and B_DIR hold a cancelqd each (e.g. a worktree's build/ of an older
# commit, and build/).  Both runs use B_DIR's cancelq-sandbox and cancelqctl
# and this checkout's tools/bench.sh, so only the daemon differs.  ROUNDS
# (default 3) rounds of A then B; every bench.sh knob applies
# (BENCH_JOBS, default 30000 here; BENCH_SCENARIOS; BENCH_REPLICA; ...);
# the wrk reference is skipped (BENCH_NO_WRK=1) unless BENCH_NO_WRK= is set
# empty.  Raw figures: $AB_OUT (default /tmp/bench-ab), one JSON per run.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 A_DIR B_DIR [ROUNDS]" >&2; exit 2; }
A=$(cd "$1" && pwd) B=$(cd "$2" && pwd) ROUNDS=${3:-3}
OUT=${AB_OUT:-/tmp/bench-ab}
for d in "$A" "$B"; do [ -x "$d/cancelqd" ] || { echo "$0: no cancelqd in $d" >&2; exit 2; }; done
command -v jq > /dev/null || { echo "$0: jq not found" >&2; exit 2; }
mkdir -p "$OUT"
rm -f "$OUT"/run-*.json
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for side in A B; do
    mkdir -p "$W/$side"
    src=$A; [ "$side" = B ] && src=$B
    cp "$src/cancelqd" "$W/$side/"
    cp "$B/cancelq-sandbox" "$B/cancelqctl" "$W/$side/"
done

export BENCH_JOBS=${BENCH_JOBS:-30000}
export BENCH_NO_WRK=${BENCH_NO_WRK-1}
for r in $(seq 1 "$ROUNDS"); do
    for side in A B; do
        echo "== round $r: $side"
        BENCH_JSON="$OUT/run-$side-$r.json" BUILD="$W/$side" bash "$ROOT/tools/bench.sh" \
            > "$OUT/run-$side-$r.log" 2>&1 || echo "   (bench.sh failed: $OUT/run-$side-$r.log)"
    done
done

# median FIELD SIDE SCENARIO
median() {
    jq -s --arg sc "$3" "[.[] | .scenarios[] | select(.scenario == \$sc) | .$1] | sort | .[(length - 1) / 2 | floor]" \
        "$OUT"/run-"$2"-*.json
}
printf '\n%-12s %-24s %12s %12s %7s\n' scenario figure "A (median)" "B (median)" "B/A"
for sc in $(jq -r '.scenarios[].scenario' "$OUT/run-B-1.json"); do
    for f in jobs_per_s cpu_s_per_1000_jobs redis_cpu_s_per_1000_jobs peak_rss_mib redis_cmds_per_job; do
        a=$(median "$f" A "$sc") b=$(median "$f" B "$sc")
        printf '%-12s %-24s %12s %12s %7s\n' "$sc" "$f" "$a" "$b" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')"
    done
done
echo "(cpu_s_per_1000_jobs = ms of CPU per job = us per job / 1000; raw runs in $OUT)"
