#!/bin/sh
# bootstrap.sh - install the Debian packages cancelq's build, tests, demo and
# benchmark need, when they are missing.  Needs root (apt-get) only when
# something is missing; says what to install otherwise.
set -eu

# Each tools/packages/*.txt lists packages one per line (# comments).
dir=$(cd "$(dirname "$0")" && pwd)/packages
PKGS=$(cat "$dir"/*.txt | sed 's/#.*//' | tr -s ' \t' '\n\n' | sed '/^$/d' | sort -u)

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "bootstrap: missing Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: run as root, or: sudo apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# the packaged redis-server service is not ours: tests start their own
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
echo "bootstrap: installed:$missing"
