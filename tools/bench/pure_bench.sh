#!/bin/sh
# pure_bench.sh [BUILD] [JOBS] [KIND] - instructions per job in the pure
# modules (see pure_bench.c).
#
# Builds BUILD/libcancelq.a (default build-pure, so the shared build/ is left
# alone) and tools/bench/pure_bench.c, runs it under callgrind with only
# bench_jobs() collected (start-up excluded), and prints the total and the
# inclusive Ir per job of the functions on the per-job path.  KIND 0, 1, 2
# makes every job intronis, activeplatform or keliweb; without it the kinds
# alternate as in tools/bench.sh.  Counts are exact and repeat from run to
# run: compare them, not wall times.
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build-pure}
N=${2:-3000}
KIND=${3:--1}
PKGS="hiredis libuv libcurl libcjson inih libsystemd"
make --no-print-directory BUILD="$B" -j2 "$B/libcancelq.a" >/dev/null
# shellcheck disable=SC2046
cc -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude $(pkg-config --cflags $PKGS) \
    -o "$B/pure_bench" tools/bench/pure_bench.c "$B/libcancelq.a" $(pkg-config --libs $PKGS) -lm
OUT="$B/pure_bench.callgrind"
valgrind --tool=callgrind --toggle-collect='bench_jobs*' --callgrind-out-file="$OUT" \
    "$B/pure_bench" "$N" "$KIND" 2>/dev/null
# One line per function (callgrind_annotate may list a function under two
# file names when it was inlined); the largest figure is kept.
callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$OUT" 2>/dev/null |
    awk -v n="$N" '
        /PROGRAM TOTALS/ { gsub(",", "", $1); printf "%10.0f  TOTAL per job\n", $1 / n }
        /^ *[0-9,]+ .*:/ {
            ir = $1; gsub(",", "", ir)
            fn = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", fn); sub(/ \[.*$/, "", fn)
            sub(/^.*:/, "", fn)
            if (fn !~ /^(cq_|one_job|intronis_|ap_|kw_|check_|parse_|hash_|format_line|put_|build|validate|json_body|secret_at)/)
                next
            if (!(fn in best) || best[fn] < ir + 0) best[fn] = ir + 0
        }
        END { for (f in best) printf "%10.0f  %s\n", best[f] / n, f }' | sort -k1,1nr | head -50
