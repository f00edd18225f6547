#!/bin/sh
# deb.sh - build the Debian packages (debian/) into build/deb/, and check
# them with lintian.
#
#   sh tools/deb.sh build   dpkg-buildpackage -us -uc -b on a copy of the
#                           tree (dpkg-buildpackage writes next to the
#                           source dir); skipped when build/deb is newer
#                           than every file of the tree
#   sh tools/deb.sh lint    lintian on build/deb/*.changes: exit 1 on any
#                           error or warning (info tags are shown)
#
# The copy is the working tree as git sees it (tracked and untracked files,
# not the ignored ones such as build/), so uncommitted changes are packaged.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/deb
VERSION=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
ARCH=$(dpkg --print-architecture)
CHANGES=$OUT/cancelq_${VERSION}_$ARCH.changes

# files: the tree's files, one a line (NUL-free names; the tree has no
# names with newlines).
files() {
    cd "$ROOT"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files --cached --others --exclude-standard |
            while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done
    else
        find . -path ./build -prune -o -path './build-*' -prune -o -path ./.git -prune \
            -o -type f -print | sed 's|^\./||'
    fi
}

# The integration tests are copied too but do not go into the packages:
# editing them does not call for a rebuild.
packaged() { grep -v -e '^tests/integration/' -e '^\.ci/'; }

up_to_date() {
    [ -f "$OUT/.stamp" ] && [ -f "$CHANGES" ] || return 1
    files | packaged | sort > "$OUT/.files.now"
    cmp -s "$OUT/.files.now" "$OUT/.files" || return 1
    newer=$(cd "$ROOT" && while IFS= read -r f; do
        if [ "$f" -nt "$OUT/.stamp" ]; then
            echo "$f"
            break
        fi
    done < "$OUT/.files.now")
    [ -z "$newer" ] || echo "deb: $newer changed since the last build"
    [ -z "$newer" ]
}

build() {
    if up_to_date; then
        echo "deb: build/deb is up to date ($(basename "$CHANGES"))"
        return 0
    fi
    rm -rf "$OUT"
    src=$OUT/src/cancelq-$VERSION
    mkdir -p "$src"
    files | sort > "$OUT/.files.all"
    packaged < "$OUT/.files.all" > "$OUT/.files"
    (cd "$ROOT" && tr '\n' '\0' < "$OUT/.files.all" | tar --null -T - -cf -) | tar -C "$src" -xf -
    echo "deb: dpkg-buildpackage -us -uc -b in build/deb/src (log: build/deb/build.log)"
    if ! (cd "$src" && dpkg-buildpackage -us -uc -b -J) > "$OUT/build.log" 2>&1; then
        tail -40 "$OUT/build.log"
        echo "deb: dpkg-buildpackage failed (build/deb/build.log)" >&2
        return 1
    fi
    mv "$OUT"/src/*.deb "$OUT"/src/*.changes "$OUT"/src/*.buildinfo "$OUT"/
    for f in "$OUT"/src/*.ddeb; do [ -e "$f" ] && mv "$f" "$OUT"/; done
    rm -rf "$OUT/src"
    touch "$OUT/.stamp"
    (cd "$OUT" && ls -1 ./*.deb ./*.ddeb 2>/dev/null | sed 's|^\./|deb: built |')
}

lint() {
    [ -f "$CHANGES" ] || { echo "deb: no $CHANGES: run make deb" >&2; return 1; }
    echo "deb: lintian --fail-on error,warning --display-info $(basename "$CHANGES")"
    rc=0
    lintian --fail-on error,warning --display-info "$CHANGES" > "$OUT/lintian.log" 2>&1 || rc=$?
    cat "$OUT/lintian.log"
    if [ $rc -ne 0 ]; then
        echo "deb: lintian found errors or warnings (exit $rc)" >&2
        return 1
    fi
    echo "deb: lintian: no errors, no warnings"
}

case ${1:-} in
build) build ;;
lint) lint ;;
*)
    echo "usage: sh tools/deb.sh build|lint" >&2
    exit 2
    ;;
esac
