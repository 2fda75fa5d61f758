#!/usr/bin/env bash
# Install gpuwise and run every test: lint, unit tests, then the end-to-end tests against a real
# vLLM (CPU build) and a real Prometheus, which this script installs and the tests start/stop.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts

echo "== real engine, Prometheus and Chromium (installed once, skipped when present)"
bash scripts/engine.sh install
bash scripts/prometheus.sh install
bash scripts/chromium.sh install  # headless browser for the HTML report tests

echo "== pytest"
GPUWISE_E2E=1 .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

echo "== done in $(( $(date +%s) - start )) s"
