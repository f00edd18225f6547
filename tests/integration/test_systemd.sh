#!/usr/bin/env bash
# test_systemd.sh - what a Debian admin gets from `make install`: the files
# and their modes, units that systemd-analyze verifies and rates at an
# exposure of 1.5 or less, man pages that render without warnings, and a
# sample config that loads with its tokens from $CREDENTIALS_DIRECTORY (as
# LoadCredential= provides them).
#
# The units are checked as installed (DESTDIR=$T/root, PREFIX=/usr), with
# one change: ExecStart= points at the installed binary inside $T/root,
# because `systemd-analyze verify` insists that the program exists.
source "$(dirname "$0")/lib.sh"

MAX_EXPOSURE=1.5

if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v man >/dev/null 2>&1; then
    sh "$ROOT/tools/bootstrap.sh" >/dev/null 2>&1
fi
have_tools() { command -v systemd-analyze >/dev/null && command -v man >/dev/null; }
check "systemd-analyze and man are installed" have_tools

# mode PATH: octal permission bits
mode() { stat -c %a "$1" 2>/dev/null; }

echo "-- make install (DESTDIR, PREFIX=/usr, UNITDIR=/lib/systemd/system)"
R=$T/root
make -C "$ROOT" --no-print-directory BUILD="$BUILD" install DESTDIR="$R" PREFIX=/usr \
    UNITDIR=/lib/systemd/system > "$T/install.log" 2>&1
rc=$?
check "make install exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || tail -20 "$T/install.log"
for f in usr/sbin/cancelqd usr/bin/cancelqctl usr/bin/cancelq-sandbox; do
    check_eq "$f is installed 0755" 755 "$(mode "$R/$f")"
done
for f in lib/systemd/system/cancelq.service lib/systemd/system/cancelq@.service \
         usr/share/man/man8/cancelqd.8.gz usr/share/man/man1/cancelqctl.1.gz \
         usr/share/man/man5/cancelq.conf.5.gz etc/cancelq/cancelq.conf.example; do
    check_eq "$f is installed 0644" 644 "$(mode "$R/$f")"
done
check_eq "etc/cancelq/credentials is root-only" 700 "$(mode "$R/etc/cancelq/credentials")"
check_eq "the unit runs the installed program" \
    "ExecStart=/usr/sbin/cancelqd -c /etc/cancelq/cancelq.conf" \
    "$(grep '^ExecStart=' "$R/lib/systemd/system/cancelq.service")"

echo "-- man pages"
for p in usr/share/man/man8/cancelqd.8.gz usr/share/man/man1/cancelqctl.1.gz \
         usr/share/man/man5/cancelq.conf.5.gz; do
    name=$(basename "$p" .gz)
    check "$name is gzip -9n (no name, no time stamp)" \
        sh -c "gzip -t '$R/$p' && [ \"\$(od -An -tu4 -j4 -N4 '$R/$p' | tr -d ' ')\" = 0 ]"
    MANWIDTH=80 man --warnings -l "$R/$p" > "$T/$name.txt" 2> "$T/$name.err"
    check "man -l $name renders" [ $? -eq 0 ]
    check_eq "man -l $name: no warnings" "" "$(cat "$T/$name.err")"
    check "man -l $name has NAME, SEE ALSO" \
        sh -c "grep -q '^NAME' '$T/$name.txt' && grep -q '^SEE ALSO' '$T/$name.txt'"
done
check "cancelqd(8) has FILES, SIGNALS, EXIT STATUS" \
    sh -c "grep -q '^FILES' '$T/cancelqd.8.txt' && grep -q '^SIGNALS' '$T/cancelqd.8.txt' &&
           grep -q '^EXIT STATUS' '$T/cancelqd.8.txt'"
# every key of the option table in src/config.c is documented in cancelq.conf(5)
missing=""
for k in $(sed -n 's/^ *{"\([a-z_]*\)", [RWP](.*/\1/p' "$ROOT/src/config.c" | sort -u); do
    grep -Eq "^       $k( |$)" "$T/cancelq.conf.5.txt" || missing="$missing $k"
done
check_eq "cancelq.conf(5) documents every config key" "" "$missing"

echo "-- units"
U=$T/units
mkdir -p "$U"
for u in cancelq.service cancelq@.service; do
    sed "s|^ExecStart=/usr/sbin/cancelqd|ExecStart=$R/usr/sbin/cancelqd|" \
        "$R/lib/systemd/system/$u" > "$U/$u"
done
cp "$U/cancelq@.service" "$U/cancelq@billing-eu.service"
for u in cancelq.service cancelq@billing-eu.service; do
    # Documentation=man:... is checked too: against the installed pages
    out=$(MANPATH="$R/usr/share/man" systemd-analyze verify "$U/$u" 2>&1)
    rc=$?
    check "systemd-analyze verify $u" [ $rc -eq 0 ]
    check_eq "systemd-analyze verify $u: no complaints" "" "$out"
    line=$(systemd-analyze security --offline=true "$U/$u" 2>&1 | grep 'Overall exposure level')
    echo "   $line"
    score=$(echo "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
    check "$u exposure ${score:-?} <= $MAX_EXPOSURE" \
        awk -v s="${score:-99}" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s + 0 <= m + 0) }'
done
unit=$R/lib/systemd/system/cancelq.service
for want in Type=notify NotifyAccess=main WatchdogSec=30s Restart=on-failure \
            'ExecReload=/bin/kill -HUP $MAINPID' DynamicUser=yes PrivateNetwork= \
            'LoadCredential=intronis.token:/etc/cancelq/credentials/intronis.token'; do
    if [ "$want" = PrivateNetwork= ]; then
        check "the unit keeps the network (no PrivateNetwork=yes)" \
            sh -c "! grep -q '^PrivateNetwork=yes' '$unit'"
    else
        check "cancelq.service sets $want" grep -qxF "$want" "$unit"
    fi
done
# the stop timeout must cover shutdown_grace (default 20s) plus time to
# write the last outcomes
for u in cancelq.service cancelq@.service; do
    check "$u sets LimitCORE=0 (no core dump holds a secret)" \
        grep -qx 'LimitCORE=0' "$R/lib/systemd/system/$u"
done
check_eq "TimeoutStopSec= leaves room above shutdown_grace" "TimeoutStopSec=60s" \
    "$(grep '^TimeoutStopSec=' "$unit")"
check "cancelq@.service reads /etc/cancelq/%i.conf with CQ_INSTANCE=%i" \
    sh -c "grep -qxF 'ExecStart=/usr/sbin/cancelqd -c /etc/cancelq/%i.conf' \
               '$R/lib/systemd/system/cancelq@.service' &&
           grep -qxF 'Environment=CQ_INSTANCE=%i' '$R/lib/systemd/system/cancelq@.service'"

echo "-- the sample config with credentials from \$CREDENTIALS_DIRECTORY"
mkdir -p "$T/creds"
for p in intronis activeplatform keliweb; do
    printf 'sandbox-%s-token\n' "$p" > "$T/creds/$p.token"
done
out=$(CREDENTIALS_DIRECTORY="$T/creds" "$R/usr/sbin/cancelqd" \
    -c "$R/etc/cancelq/cancelq.conf.example" --check-config 2>&1)
rc=$?
check "cancelqd --check-config loads the installed sample" [ $rc -eq 0 ]
[ $rc -eq 0 ] || echo "$out" | tail -3
check "the secrets resolve in \$CREDENTIALS_DIRECTORY" grep -qF "$T/creds/intronis.token" <<<"$out"
check "--check-config shows no token" sh -c '! grep -q sandbox-intronis-token' <<<"$out"
out=$("$R/usr/sbin/cancelqd" -c "$R/etc/cancelq/cancelq.conf.example" --check-config 2>&1)
rc=$?
check "without it, bare names are looked up next to the config (none there): error" \
    [ $rc -eq 1 ]
check "the error names the file it looked for" \
    grep -qF "$R/etc/cancelq/intronis.token" <<<"$out"

echo "-- the daemon's system calls under the unit's filters (strace of a real run)"
# No systemd PID 1 runs here, so the sandbox is checked from the other
# side: every system call, socket family and memory mapping of a run that
# takes jobs, reloads on SIGHUP and stops on SIGTERM must pass the unit's
# SystemCallFilter=, RestrictAddressFamilies= and MemoryDenyWriteExecute=.
# expand_group @NAME: the system calls of a group, nested groups expanded.
expand_group() {
    systemd-analyze syscall-filter "$1" | sed 's/^ *//' | grep -v -e '^#' -e '^$' -e "^$1\$" |
        while read -r g; do
            case $g in @*) expand_group "$g" ;; *) echo "$g" ;; esac
        done
}
if ! command -v strace >/dev/null 2>&1; then
    echo "   (strace is not installed: skipped)"
else
    allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$unit")
    deny=$(sed -n 's/^SystemCallFilter=~\(.*\)/\1/p' "$unit")
    for g in $allow; do expand_group "$g"; done | sort -u > "$T/allow.txt"
    for g in $deny; do expand_group "$g"; done | sort -u > "$T/deny.txt"
    comm -23 "$T/allow.txt" "$T/deny.txt" > "$T/permitted.txt"
    start_redis
    start_sandbox
    write_conf "$T/strace.conf" "metrics_listen = 127.0.0.1:$(free_port)"
    # LeakSanitizer cannot run under ptrace: off for this run of an asan build
    ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o "$T/strace.out" "$BIN/cancelqd" \
        -c "$T/strace.conf" > "$T/strace.log" 2>&1 &
    STRACE_PID=$!
    PIDS+=("$STRACE_PID")
    enqueue_many 30 sys
    check "the traced daemon finishes 30 jobs" wait_results 30 30
    dpid=$(pgrep -P "$STRACE_PID" -x cancelqd)
    kill -HUP "$dpid" 2>/dev/null
    sleep 0.5
    kill -TERM "$dpid" 2>/dev/null
    wait "$STRACE_PID"
    check "the traced daemon stops with status 0" [ $? -eq 0 ]
    awk '{ s = $2; if (s == "<...") s = $3; if (s ~ /^[a-z_0-9]+\(/ || $2 == "<...") {
               sub(/\(.*/, "", s); print s } }' "$T/strace.out" | sort -u > "$T/used.txt"
    echo "   $(wc -l < "$T/used.txt") distinct system calls used"
    check_eq "every system call used passes SystemCallFilter=" "" \
        "$(comm -23 "$T/used.txt" "$T/permitted.txt" | tr '\n' ' ')"
    check_eq "only AF_INET, AF_INET6 and AF_UNIX sockets (RestrictAddressFamilies=)" "" \
        "$(grep -o 'socket(AF_[A-Z0-9]*' "$T/strace.out" | sort -u |
            grep -v -e 'AF_INET$' -e 'AF_INET6$' -e 'AF_UNIX$')"
    check "the daemon made itself non-dumpable first (prctl PR_SET_DUMPABLE, 0)" \
        grep -qE 'prctl\(PR_SET_DUMPABLE, (0|SUID_DUMP_DISABLE)\) = 0' "$T/strace.out"
    check_eq "no writable and executable memory (MemoryDenyWriteExecute=)" "" \
        "$(grep -E '(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC' "$T/strace.out")"
fi

echo "-- make install with the default PREFIX"
make -C "$ROOT" --no-print-directory BUILD="$BUILD" install DESTDIR="$T/root2" \
    > "$T/install2.log" 2>&1
check "make install (PREFIX=/usr/local) exits 0" [ $? -eq 0 ]
check_eq "units land in /usr/local/lib/systemd/system and run /usr/local/sbin/cancelqd" \
    "ExecStart=/usr/local/sbin/cancelqd -c /etc/cancelq/cancelq.conf" \
    "$(grep '^ExecStart=' "$T/root2/usr/local/lib/systemd/system/cancelq.service" 2>/dev/null)"
check "man pages land in /usr/local/share/man" \
    test -f "$T/root2/usr/local/share/man/man8/cancelqd.8.gz"

finish
