"""The process plumbing under the local engine and Prometheus, checked with stand-in processes so
it runs in a second, without the engine."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from gpuwise.live import local_engine
from gpuwise.live.local_engine import (
    EngineError,
    LocalFleet,
    Replica,
    engine_command,
    free_port,
    pid_alive,
    process_group_alive,
    spawn_detached,
    stop_pid,
    wait_http_ok,
)
from gpuwise.live.prometheus_server import PrometheusError, check_config, render_config


def _spawn_python(code: str, tmp_path: Path) -> int:
    return spawn_detached([sys.executable, "-c", code], env=os.environ, log_path=tmp_path / "p.log")


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_server_is_waited_for_then_stopped_by_pid(tmp_path: Path) -> None:
    port = free_port()
    pid = spawn_detached(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "-d",
            str(tmp_path),
        ],
        env=os.environ,
        log_path=tmp_path / "http.log",
    )
    wait_http_ok(
        f"http://127.0.0.1:{port}/", pid=pid, timeout_s=20, what="http", log_path=tmp_path / "x"
    )
    assert stop_pid(pid) == "terminated"
    assert not pid_alive(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert stop_pid(pid) == "gone"


def test_a_server_that_ignores_sigterm_is_killed_with_its_group(tmp_path: Path) -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('up', flush=True); time.sleep(60)\n"
    )
    pid = _spawn_python(code, tmp_path)
    deadline = time.monotonic() + 20
    while "up" not in (tmp_path / "p.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGTERM must arrive after the handler is set
    assert stop_pid(pid, grace_s=0.5) == "killed"
    assert not pid_alive(pid)
    assert not process_group_alive(pid)


def test_a_server_that_dies_during_start_fails_with_its_log(tmp_path: Path) -> None:
    pid = _spawn_python("print('model not found'); raise SystemExit(3)", tmp_path)
    with pytest.raises(EngineError, match="model not found"):
        wait_http_ok(
            f"http://127.0.0.1:{free_port()}/",
            pid=pid,
            timeout_s=20,
            what="fake",
            log_path=tmp_path / "p.log",
        )


def test_fleet_stops_what_it_started_when_a_later_start_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []

    def fake_start(**_: object) -> Replica:
        if len(started) == 2:
            raise EngineError("third replica did not start")
        pid = _spawn_python("import time; time.sleep(60)", tmp_path)
        started.append(pid)
        return Replica(pid, 1, "http://127.0.0.1:1", tmp_path / "p.log", 0.0, run_dir=tmp_path)

    monkeypatch.setattr(local_engine, "start_replica", fake_start)
    with pytest.raises(EngineError), LocalFleet(3, run_dir=tmp_path):
        pass
    assert len(started) == 2
    assert not any(pid_alive(pid) for pid in started)


def test_engine_listens_on_loopback_with_the_fast_start_flags() -> None:
    argv = engine_command(Path("python"), Path("model"), 8000, max_num_seqs=4)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--max-num-seqs") + 1] == "4"
    assert "-O0" in argv and argv[argv.index("--distributed-executor-backend") + 1] == "uni"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(render_config([8000, "127.0.0.1:8001"]))
    check_config(config)
    config.write_text(render_config([8000]).replace("scrape_interval: 1s", "scrape_interval: x"))
    with pytest.raises(PrometheusError, match="promtool rejects"):
        check_config(config)
