#!/usr/bin/env bash
# Local Prometheus (Debian's package) scraping local engine replicas, for tests and the local fleet.
#
# The config and server flags live in Python (gpuwise.live.prometheus_server); this script installs
# the package and forwards the rest, so both start Prometheus the same way.
#
# Usage:
#   scripts/prometheus.sh install                 apt-get install prometheus (idempotent)
#   scripts/prometheus.sh start PORT TARGETS...   serve on 127.0.0.1:PORT; TARGETS are replica
#                                                 ports or host:port; scrape every 1 s, keep 1 h
#   scripts/prometheus.sh stop [PORT]             SIGTERM by PID (all servers when no PORT)
#   scripts/prometheus.sh status                  list the servers started from this repo
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "prometheus.sh: $*" >&2; exit 1; }
usage() { sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

project_python() {
    if [[ -x "$ROOT/.venv/bin/python" ]]; then echo "$ROOT/.venv/bin/python"; else echo python3; fi
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

cmd_install() {
    if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
        echo "prometheus already installed: $(prometheus --version 2>&1 | head -n 1); nothing to do"
        return 0
    fi
    local t0=$SECONDS
    # Another install holding the dpkg lock is waited for (up to 10 min) rather than failed on.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
    if ! apt-cache show prometheus >/dev/null 2>&1; then
        echo "package prometheus unknown to apt; running apt-get update"
        as_root "${apt[@]}" update
    fi
    echo "installing Debian's prometheus"
    as_root "${apt[@]}" install -y --no-install-recommends prometheus
    # The package's service is not wanted: tests start their own server on a free port.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        as_root systemctl disable --now prometheus || true
    fi
    command -v prometheus >/dev/null 2>&1 || die "prometheus not on PATH after the install"
    echo "installed $(prometheus --version 2>&1 | head -n 1) in $((SECONDS - t0)) s"
}

main() {
    [[ $# -ge 1 ]] || { usage >&2; exit 2; }
    local cmd="$1"; shift
    case "$cmd" in
        install) cmd_install "$@" ;;
        start|stop|status)
            PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" \
                "$(project_python)" -m gpuwise.live.prometheus_server "$cmd" "$@" ;;
        -h|--help|help) usage ;;
        *) die "unknown command '$cmd' (install|start|stop|status)" ;;
    esac
}

main "$@"
