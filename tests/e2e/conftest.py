"""A real vLLM replica and a real Prometheus scraping it, shared by the e2e tests.

Without the engine venv the tests skip (so a fresh clone's `pytest` passes); with GPUWISE_E2E=1
a missing or broken engine is a failure, so CI that means to test the engine cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from gpuwise.live.local_engine import (
    EngineError,
    Replica,
    check_engine,
    ensure_tiny_model,
    start_replica,
    stop_replica,
)
from gpuwise.live.prometheus_server import PrometheusServer, start_prometheus, stop_prometheus

E2E_REQUIRED = os.environ.get("GPUWISE_E2E") == "1"
MAX_NUM_SEQS = 4  # small, so a dozen concurrent requests queue
TARGET_UP_TIMEOUT_S = 30.0  # Prometheus applies new targets after up to 5 s


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine: needs the real local vLLM engine")
    config.addinivalue_line("markers", "prometheus: needs a real Prometheus server")


def _unavailable(reason: str) -> NoReturn:
    if E2E_REQUIRED:
        pytest.fail(f"GPUWISE_E2E=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason} (set GPUWISE_E2E=1 to make this a failure)")


@pytest.fixture(scope="session")
def e2e_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs, pid files and Prometheus data go to pytest's temp dir (it keeps the last few runs
    for post mortems), so test runs do not pile up in the repo's .run/."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def replica(e2e_run_dir: Path) -> Iterator[Replica]:
    engine = check_engine()
    if not engine.python.is_file():
        _unavailable(f"the local engine is not installed: {engine.problem}")
    if not engine.ok:  # present but broken is never a reason to skip
        pytest.fail(f"the local engine is broken: {engine.problem}", pytrace=False)
    try:
        # The model is cached in the default run dir: generating it costs seconds, and it is
        # byte-identical every time.
        model = ensure_tiny_model(engine=engine)
        started = start_replica(
            max_num_seqs=MAX_NUM_SEQS, model_dir=model, run_dir=e2e_run_dir, engine=engine
        )
    except EngineError as exc:
        pytest.fail(f"the local engine did not start: {exc}", pytrace=False)
    print(f"\nreplica on port {started.port} ready in {started.ready_s:.1f} s (pid {started.pid})")
    try:
        yield started
    finally:
        stop_replica(started)


@pytest.fixture(scope="session")
def prometheus(replica: Replica, e2e_run_dir: Path) -> Iterator[PrometheusServer]:
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        _unavailable("prometheus is not installed (scripts/prometheus.sh install)")
    server = start_prometheus([replica.port], run_dir=e2e_run_dir)
    print(f"prometheus on port {server.port} ready in {server.ready_s:.2f} s (pid {server.pid})")
    try:
        _wait_target_up(server, f"127.0.0.1:{replica.port}")
        yield server
    finally:
        stop_prometheus(server)


def _wait_target_up(server: PrometheusServer, instance: str) -> None:
    deadline = time.monotonic() + TARGET_UP_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            targets = httpx.get(f"{server.base_url}/api/v1/targets", timeout=2.0).json()
            for t in targets["data"]["activeTargets"]:
                if t["labels"]["instance"] == instance:
                    last = f"{t['health']} {t['lastError']}".strip()
                    if t["health"] == "up":
                        return
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last = repr(exc)
        time.sleep(0.25)
    pytest.fail(f"target {instance} not up in Prometheus after {TARGET_UP_TIMEOUT_S} s: {last}")
