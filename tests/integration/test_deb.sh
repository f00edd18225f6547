#!/usr/bin/env bash
# test_deb.sh - the Debian packages as an admin gets them: build them (or
# reuse build/deb when it is up to date), lintian-clean, install both with
# dpkg -i on this machine, check what landed where (modes, conffile, units
# not enabled, completion, man pages), verify the installed units, run the
# installed programs (a config check with credentials from a temp dir, and
# one job through the installed cancelqd, cancelqctl and cancelq-sandbox),
# then purge both and check that nothing is left.
#
# Root only, and only on a host where cancelq is not installed already (by
# dpkg or by hand): it skips otherwise.  Whatever happens, the packages it
# installed are purged on exit.
source "$(dirname "$0")/lib.sh"

skip() {
    echo "   skipped: $*"
    echo "$(basename "$0"): 0 passed, 0 failed"
    exit 0
}
# status PKG: installed, config-files, not-installed, ...
status() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || echo not-installed; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i / dpkg --purge)"
command -v dpkg >/dev/null 2>&1 || skip "no dpkg on this host"
[ "$BUILD" = build ] || skip "BUILD=$BUILD: the packages carry their own build, checked with BUILD=build"
for p in cancelq cancelq-sandbox; do
    [ "$(status $p)" = not-installed ] || skip "$p is $(status $p) on this host: not touching it"
done
for f in /usr/sbin/cancelqd /usr/bin/cancelqctl /usr/bin/cancelq-sandbox /etc/cancelq \
         /lib/systemd/system/cancelq.service; do
    [ -e "$f" ] && skip "$f exists (cancelq installed by hand?): not touching it"
done
if ! command -v dpkg-buildpackage >/dev/null 2>&1 || ! command -v dh >/dev/null 2>&1 ||
    ! command -v lintian >/dev/null 2>&1; then
    sh "$ROOT/tools/bootstrap.sh" >/dev/null 2>&1
fi

VERSION=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
ARCH=$(dpkg --print-architecture)
DEB=$ROOT/build/deb
CONF=/etc/cancelq/cancelq.conf
INSTALLED=false

# Purge what this test installed, whatever state the test is in.
deb_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    if $INSTALLED; then
        rm -f "$CONF"
        dpkg --purge cancelq cancelq-sandbox > "$T/dpkg-cleanup.log" 2>&1 ||
            { echo "   cleanup: dpkg --purge failed:"; tail -5 "$T/dpkg-cleanup.log"; }
    fi
}
trap 'deb_cleanup; cleanup' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

echo "-- build"
check_eq "debian/changelog has the Makefile's version" "$VERSION" \
    "$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)"
start=$(date +%s)
make -C "$ROOT" --no-print-directory deb-build > "$T/build.log" 2>&1
rc=$?
check "make deb-build exits 0 ($(($(date +%s) - start))s)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { tail -30 "$T/build.log"; finish; }
for p in cancelq cancelq-sandbox; do
    check "$p ${VERSION} is built" test -f "$DEB/${p}_${VERSION}_$ARCH.deb"
done
sh "$ROOT/tools/deb.sh" lint > "$T/lintian.log" 2>&1
rc=$?
check "lintian: no errors, no warnings" [ $rc -eq 0 ]
grep -E '^[EWI]: ' "$T/lintian.log" | sed 's/^/   /'
check_eq "cancelq-sandbox is not in the cancelq package" "" \
    "$(dpkg-deb -c "$DEB/cancelq_${VERSION}_$ARCH.deb" | grep cancelq-sandbox)"

echo "-- dpkg -i"
INSTALLED=true
dpkg -i "$DEB/cancelq_${VERSION}_$ARCH.deb" "$DEB/cancelq-sandbox_${VERSION}_$ARCH.deb" \
    > "$T/dpkg-i.log" 2>&1
rc=$?
check "dpkg -i cancelq cancelq-sandbox exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || tail -20 "$T/dpkg-i.log"
check_eq "cancelq is installed" installed "$(status cancelq)"
check_eq "cancelq-sandbox is installed" installed "$(status cancelq-sandbox)"
check_eq "cancelqd is cancelq's" "cancelq: /usr/sbin/cancelqd" "$(dpkg -S /usr/sbin/cancelqd 2>&1)"
check_eq "cancelqctl is cancelq's" "cancelq: /usr/bin/cancelqctl" "$(dpkg -S /usr/bin/cancelqctl 2>&1)"
check_eq "cancelq-sandbox is cancelq-sandbox's" "cancelq-sandbox: /usr/bin/cancelq-sandbox" \
    "$(dpkg -S /usr/bin/cancelq-sandbox 2>&1)"
mode() { stat -c '%a %U' "$1" 2>/dev/null; }
check_eq "/etc/cancelq/credentials is 0700 root" "700 root" "$(mode /etc/cancelq/credentials)"
check_eq "the sample config is 0644" "644 root" "$(mode /etc/cancelq/cancelq.conf.example)"
check "the sample config is a conffile" \
    grep -q '/etc/cancelq/cancelq.conf.example' <<<"$(dpkg-query -W -f='${Conffiles}' cancelq)"
check "no cancelq.conf is shipped (the admin writes it)" test ! -e "$CONF"
for u in cancelq.service cancelq@.service; do
    check_eq "/lib/systemd/system/$u is installed 0644" "644 root" "$(mode /lib/systemd/system/$u)"
done
# the packages carry this tree's files (build/deb is not stale)
check "the installed completion is the tree's" \
    cmp -s /usr/share/bash-completion/completions/cancelqctl "$ROOT/completion/cancelqctl"
check "the installed unit is the tree's" \
    cmp -s /lib/systemd/system/cancelq.service "$ROOT/systemd/cancelq.service"
check "the installed sample config is the tree's" \
    cmp -s /etc/cancelq/cancelq.conf.example "$ROOT/conf/cancelq.conf"
check_eq "cancelq.service is not enabled" disabled "$(systemctl is-enabled cancelq.service 2>&1)"
check "no multi-user.target.wants link" \
    test ! -e /etc/systemd/system/multi-user.target.wants/cancelq.service
for m in 8:cancelqd 1:cancelqctl 5:cancelq.conf 1:cancelq-sandbox; do
    check_eq "man ${m#*:}(${m%%:*}) is found" "/usr/share/man/man${m%%:*}/${m#*:}.${m%%:*}.gz" \
        "$(man -w "${m%%:*}" "${m#*:}" 2>&1)"
done
check "bash-completion loads the cancelqctl completion on demand" \
    bash -c 'source /usr/share/bash-completion/bash_completion
             _completion_loader cancelqctl # 124: "loaded, complete again"
             complete -p cancelqctl | grep -q _cancelqctl'
ex=/usr/share/doc/cancelq/examples
check "the Grafana dashboard is in $ex" sh -c "jq -e .panels '$ex/cancelq.json' >/dev/null"
check "the alert rules are in $ex" grep -q '^groups:' "$ex/cancelq.rules.yml"
check "docs/events.md is in /usr/share/doc/cancelq" \
    sh -c 'test -e /usr/share/doc/cancelq/events.md || test -e /usr/share/doc/cancelq/events.md.gz'

echo "-- the installed units"
out=$(systemd-analyze verify /lib/systemd/system/cancelq.service 2>&1)
check "systemd-analyze verify cancelq.service: ok, no complaints" \
    [ $? -eq 0 ] && [ -z "$out" ]
[ -z "$out" ] || echo "$out" | head -5
# a template is verified through an instance of it
ln -s /lib/systemd/system/cancelq@.service "$T/cancelq@deb-test.service"
out=$(systemd-analyze verify "$T/cancelq@deb-test.service" 2>&1)
check "systemd-analyze verify cancelq@deb-test.service: ok, no complaints" \
    [ $? -eq 0 ] && [ -z "$out" ]
[ -z "$out" ] || echo "$out" | head -5

echo "-- the installed programs"
check_eq "cancelqd --version" "cancelqd $VERSION" "$(/usr/sbin/cancelqd --version 2>&1)"
check_eq "cancelqctl --version" "cancelqctl $VERSION" "$(/usr/bin/cancelqctl --version 2>&1)"
check_eq "cancelq-sandbox --version" "cancelq-sandbox $VERSION" \
    "$(/usr/bin/cancelq-sandbox --version 2>&1)"
check "cancelqctl --help lists the commands" \
    sh -c '/usr/bin/cancelqctl --help | grep -q "dlq list|show|requeue|drop|purge"'
# The admin's first step: the sample as the config, secrets by bare name
# from $CREDENTIALS_DIRECTORY (what LoadCredential= provides).
cp /etc/cancelq/cancelq.conf.example "$CONF"
mkdir -p "$T/creds"
for p in intronis activeplatform keliweb; do printf 'sandbox-%s-token\n' "$p" > "$T/creds/$p.token"; done
out=$(CREDENTIALS_DIRECTORY=$T/creds /usr/sbin/cancelqd -c "$CONF" --check-config 2>&1)
rc=$?
check "cancelqd -c $CONF --check-config (credentials in a temp dir)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || echo "$out" | tail -3
check "the secrets come from the temp dir" grep -qF "$T/creds/keliweb.token" <<<"$out"
out=$(/usr/sbin/cancelqd -c "$CONF" --check-config 2>&1)
check "without the credentials: exit 1, naming the missing file" \
    bash -c '[ "$1" -eq 1 ] && grep -qF /etc/cancelq/intronis.token <<<"$2"' _ $? "$out"
rm -f "$CONF"

# One job through the installed daemon, tool and sandbox.
start_redis
BIN=/usr/bin start_sandbox --quiet
write_conf "$T/e2e.conf"
BIN=/usr/sbin start_daemon "$T/e2e.conf"
/usr/bin/cancelqctl -c "$T/e2e.conf" enqueue --provider keliweb --action cancel_service \
    --param serviceid=4242 --id deb-1 > "$T/enqueue.out" 2>&1
check_eq "installed cancelqctl enqueues" deb-1 "$(cat "$T/enqueue.out")"
check "the installed cancelqd finishes the job" wait_results 1 20
check_eq "the job succeeded" succeeded "$(outcome deb-1 status)"
check_eq "the installed sandbox served the cancellation" 1 "$(target_calls keliweb:4242)"
check_eq "cancelqctl results tail shows it" succeeded \
    "$(/usr/bin/cancelqctl -c "$T/e2e.conf" results tail --json | jq -r 'select(.id == "deb-1") | .status')"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
check_eq "the installed cancelqd stops with 0 on SIGTERM" 0 "$?"
kill "$SANDBOX_PID"
wait "$SANDBOX_PID" 2>/dev/null

echo "-- dpkg -i again (upgrade path of the maintainer scripts)"
dpkg -i "$DEB/cancelq_${VERSION}_$ARCH.deb" "$DEB/cancelq-sandbox_${VERSION}_$ARCH.deb" \
    > "$T/dpkg-i2.log" 2>&1
check "reinstalling exits 0" [ $? -eq 0 ]
check_eq "credentials stay 0700" "700 root" "$(mode /etc/cancelq/credentials)"

echo "-- dpkg --purge"
dpkg --purge cancelq cancelq-sandbox > "$T/dpkg-purge.log" 2>&1
rc=$?
check "dpkg --purge cancelq cancelq-sandbox exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] && INSTALLED=false
[ $rc -eq 0 ] || tail -10 "$T/dpkg-purge.log"
for p in cancelq cancelq-sandbox; do
    check_eq "$p: not installed" not-installed "$(status $p)"
    check_eq "dpkg -L $p lists nothing" "" "$(dpkg -L $p 2>/dev/null)"
done
left=""
for f in /usr/sbin/cancelqd /usr/bin/cancelqctl /usr/bin/cancelq-sandbox /etc/cancelq \
         /lib/systemd/system/cancelq.service /lib/systemd/system/cancelq@.service \
         /usr/share/bash-completion/completions/cancelqctl /usr/share/doc/cancelq \
         /usr/share/doc/cancelq-sandbox /usr/share/man/man8/cancelqd.8.gz; do
    [ -e "$f" ] && left="$left $f"
done
check_eq "nothing is left" "" "$left"
check_eq "no deb-systemd-helper state is left" "" \
    "$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
        -name '*cancelq*' 2>/dev/null)"

finish
