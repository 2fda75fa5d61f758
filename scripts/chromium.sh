#!/usr/bin/env bash
# Headless Chromium (Debian's package), for the tests that open gpuwise's HTML reports.
#
# Usage:
#   scripts/chromium.sh install     apt-get install chromium (idempotent)
#   scripts/chromium.sh path        print the browser's path (exit 1 when missing)
set -euo pipefail

die() { echo "chromium.sh: $*" >&2; exit 1; }
usage() { sed -n '2,6s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

find_browser() {
    local b
    for b in chromium chromium-browser; do
        if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
    done
    return 1
}

cmd_install() {
    if b=$(find_browser); then
        echo "chromium already installed: $("$b" --version 2>/dev/null | head -n 1); nothing to do"
        return 0
    fi
    local t0=$SECONDS
    # Another install holding the dpkg lock is waited for (up to 10 min) rather than failed on.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
    if ! apt-cache show chromium >/dev/null 2>&1; then
        echo "package chromium unknown to apt; running apt-get update"
        as_root "${apt[@]}" update
    fi
    echo "installing Debian's chromium"
    as_root "${apt[@]}" install -y --no-install-recommends chromium
    b=$(find_browser) || die "chromium not on PATH after the install"
    echo "installed $("$b" --version 2>/dev/null | head -n 1) in $((SECONDS - t0)) s"
}

main() {
    [[ $# -ge 1 ]] || { usage >&2; exit 2; }
    case "$1" in
        install) cmd_install ;;
        path) find_browser ;;
        -h|--help|help) usage ;;
        *) die "unknown command '$1' (install|path)" ;;
    esac
}

main "$@"
