"""A local Prometheus (Debian's package) scraping local engine replicas, started and stopped by PID.

Tests and the local fleet need a real metrics store to read signals from, the same way they would
in a cluster. The config is written to the run dir and checked with `promtool` before start, so a
bad target list fails with promtool's message instead of a server that never gets ready.
`scripts/prometheus.sh start|stop|status` calls this module's `__main__`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from gpuwise.live.local_engine import (
    DEFAULT_STOP_GRACE_S,
    EngineError,
    StopOutcome,
    default_run_dir,
    free_port,
    pid_alive,
    process_argv,
    read_pid_file,
    spawn_detached,
    stop_pid,
    wait_http_ok,
)

__all__ = [
    "PrometheusError",
    "PrometheusServer",
    "check_config",
    "find_prometheus",
    "render_config",
    "start_prometheus",
    "stop_prometheus",
    "wait_ready",
]

DEFAULT_READY_TIMEOUT_S = 30.0  # ready in about 0.25 s when quiet
JOB_NAME = "vllm"


class PrometheusError(EngineError):
    """Prometheus is missing, its config is invalid, or it did not get ready."""


@dataclass(frozen=True)
class PrometheusServer:
    """A started Prometheus. `ready_s` is None until `wait_ready` saw /-/ready answer."""

    pid: int
    port: int
    base_url: str
    config_path: Path
    data_dir: Path
    log_path: Path
    pid_path: Path
    targets: tuple[str, ...]
    started_at: float  # epoch seconds at spawn
    ready_s: float | None = None


def find_prometheus() -> tuple[Path, Path]:
    """(prometheus, promtool); raises with the install command when either is missing."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        raise PrometheusError("prometheus/promtool not found; run: scripts/prometheus.sh install")
    return Path(prometheus), Path(promtool)


def _target(t: str | int) -> str:
    """A bare port means a local replica; anything else must already be host:port."""
    if isinstance(t, int) or str(t).isdigit():
        return f"127.0.0.1:{int(t)}"
    return str(t)


def render_config(targets: Sequence[str | int], *, scrape_interval_s: float = 1.0) -> str:
    """Scrape every second by default: a test's load lasts seconds, and the default 1 min would
    never see the queue it builds. Written by hand (it is tiny) to avoid a YAML dependency."""
    interval = f"{scrape_interval_s:g}s"
    lines = [
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "scrape_configs:",
        f"  - job_name: {JOB_NAME}",
        f"    scrape_timeout: {interval}",
        "    static_configs:",
        "      - targets:",
    ]
    lines += [f"          - '{_target(t)}'" for t in targets]
    return "\n".join(lines) + "\n"


def check_config(config_path: Path, *, promtool: Path | None = None) -> None:
    """Raise `PrometheusError` with promtool's own words when the config is invalid."""
    tool = promtool or find_prometheus()[1]
    res = subprocess.run(
        [str(tool), "check", "config", str(config_path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise PrometheusError(f"promtool rejects {config_path}:\n{res.stdout}{res.stderr}")


def _paths(run_dir: Path, port: int) -> tuple[Path, Path, Path, Path]:
    home = run_dir / "prom" / str(port)
    return (
        home / "prometheus.yml",
        home / "data",
        run_dir / f"prometheus-{port}.log",
        run_dir / f"prometheus-{port}.pid",
    )


def start_prometheus(
    targets: Sequence[str | int],
    port: int | None = None,
    *,
    run_dir: Path | None = None,
    scrape_interval_s: float = 1.0,
    retention: str = "1h",
    wait: bool = True,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> PrometheusServer:
    """Start Prometheus on 127.0.0.1 scraping `targets` (ports or host:port).

    The data dir is wiped first: series left by an earlier fleet on the same ports would otherwise
    answer queries about this one. A failed start stops the process and raises with the log tail.
    """
    prometheus, promtool = find_prometheus()
    run = Path(run_dir) if run_dir is not None else default_run_dir()
    port = port if port is not None else free_port()
    config_path, data_dir, log_path, pid_path = _paths(run, port)
    old = read_pid_file(pid_path)
    if old is not None and _is_our_prometheus(old, port):
        raise PrometheusError(f"a Prometheus already runs on port {port} (pid {old})")
    config_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    targets_t = tuple(_target(t) for t in targets)
    config_path.write_text(render_config(targets_t, scrape_interval_s=scrape_interval_s))
    check_config(config_path, promtool=promtool)
    log_path.unlink(missing_ok=True)
    argv = [
        str(prometheus),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    started_at = time.time()
    pid = spawn_detached(argv, env=os.environ, log_path=log_path)
    pid_path.write_text(f"{pid}\n")
    server = PrometheusServer(
        pid=pid,
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        config_path=config_path,
        data_dir=data_dir,
        log_path=log_path,
        pid_path=pid_path,
        targets=targets_t,
        started_at=started_at,
    )
    if not wait:
        return server
    try:
        return wait_ready(server, timeout_s)
    except BaseException:
        stop_prometheus(server)
        raise


def wait_ready(
    server: PrometheusServer, timeout_s: float = DEFAULT_READY_TIMEOUT_S
) -> PrometheusServer:
    """Block until /-/ready answers 200; returns the server with `ready_s` filled in."""
    try:
        wait_http_ok(
            f"{server.base_url}/-/ready",
            pid=server.pid,
            timeout_s=timeout_s,
            what=f"prometheus on port {server.port}",
            log_path=server.log_path,
        )
    except EngineError as exc:
        raise PrometheusError(str(exc)) from None
    return replace(server, ready_s=time.time() - server.started_at)


def stop_prometheus(
    server: PrometheusServer, *, grace_s: float = DEFAULT_STOP_GRACE_S
) -> StopOutcome:
    """Stop by PID (SIGTERM lets it flush the head block; about 2 s), then drop the pid file."""
    outcome = stop_pid(server.pid, grace_s=grace_s)
    if read_pid_file(server.pid_path) == server.pid:
        server.pid_path.unlink(missing_ok=True)
    return outcome


def _is_our_prometheus(pid: int, port: int) -> bool:
    """Guards against a stale pid file whose PID now belongs to another process."""
    argv = process_argv(pid)
    return (
        pid_alive(pid)
        and bool(argv)
        and Path(argv[0]).name == "prometheus"
        and f"--web.listen-address=127.0.0.1:{port}" in argv
    )


# --------------------------------------------------------------------------------------------------
# command line (scripts/prometheus.sh start|stop|status)


def _pid_files(run: Path, port: int | None) -> list[Path]:
    if port is not None:
        return [_paths(run, port)[3]]
    return sorted(run.glob("prometheus-*.pid"))


def _port_of(pid_file: Path) -> int | None:
    try:
        return int(pid_file.stem.removeprefix("prometheus-"))
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpuwise.live.prometheus_server", description="local Prometheus"
    )
    parser.add_argument("--run-dir", help="default: <repo>/.run or $GPUWISE_RUN_DIR")
    sub = parser.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="start Prometheus and wait until it is ready")
    start.add_argument("port", type=int)
    start.add_argument("targets", nargs="+", help="replica ports or host:port")
    start.add_argument("--scrape-interval-s", type=float, default=1.0)
    start.add_argument("--retention", default="1h")
    start.add_argument("--timeout-s", type=float, default=DEFAULT_READY_TIMEOUT_S)
    stop = sub.add_parser("stop", help="stop by PID (all when no port)")
    stop.add_argument("port", type=int, nargs="?")
    sub.add_parser("status", help="list servers started from this run dir")
    args = parser.parse_args(argv)
    run = Path(args.run_dir) if args.run_dir else default_run_dir()

    if args.cmd == "start":
        try:
            server = start_prometheus(
                args.targets,
                args.port,
                run_dir=run,
                scrape_interval_s=args.scrape_interval_s,
                retention=args.retention,
                timeout_s=args.timeout_s,
            )
        except PrometheusError as exc:
            print(f"prometheus: start failed: {exc}", file=sys.stderr)
            return 1
        print(
            f"prometheus ready on {server.base_url} in {server.ready_s:.2f} s (pid {server.pid}), "
            f"scraping {', '.join(server.targets)}; config {server.config_path}"
        )
        return 0

    files = _pid_files(run, args.port if args.cmd == "stop" else None)
    if not files:
        print(f"no prometheus servers (run dir {run})")
    for pid_file in files:
        port, pid = _port_of(pid_file), read_pid_file(pid_file)
        if port is None or pid is None or not _is_our_prometheus(pid, port):
            if args.cmd == "stop":
                pid_file.unlink(missing_ok=True)
            print(
                f"{pid_file.name}: not running"
                + (" (stale pid file removed)" if args.cmd == "stop" else "")
            )
            continue
        if args.cmd == "stop":
            t0 = time.monotonic()
            outcome = stop_pid(pid)
            pid_file.unlink(missing_ok=True)
            print(f"port {port} pid {pid}: {outcome} in {time.monotonic() - t0:.1f} s")
        else:
            state = "down"
            with contextlib.suppress(httpx.HTTPError):
                code = httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2.0, trust_env=False)
                state = "ready" if code.status_code == 200 else f"HTTP {code.status_code}"
            print(f"port {port} pid {pid} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
