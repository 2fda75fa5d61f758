"""Real vLLM (CPU build) replicas as local processes: start, wait until ready, stop by PID.

This module is the one place that knows how the local engine is started (flags and environment);
`scripts/engine.sh start|stop|status` calls its `__main__`, tests and the local fleet actuator call
its functions, so the two can never start the engine differently. The heavy install of the engine
venv stays in `scripts/engine.sh install` (pip, see `reference/real-engine.md`).

State lives only in the run dir (default `<repo>/.run`, or `$GPUWISE_RUN_DIR`): one
`replica-PORT.pid` and `replica-PORT.log` per replica, the generated model and vLLM's scratch files.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

__all__ = [
    "DEFAULT_KV_CACHE_BYTES",
    "DEFAULT_MAX_MODEL_LEN",
    "DEFAULT_MAX_NUM_SEQS",
    "SERVED_MODEL_NAME",
    "VLLM_VERSION",
    "EngineError",
    "EngineInstall",
    "LocalFleet",
    "Replica",
    "StopOutcome",
    "check_engine",
    "default_run_dir",
    "engine_command",
    "engine_env",
    "ensure_installed",
    "ensure_tiny_model",
    "free_port",
    "log_tail",
    "pid_alive",
    "process_argv",
    "process_group_alive",
    "project_root",
    "read_pid_file",
    "replica_from_pid_file",
    "spawn_detached",
    "start_replica",
    "stop_pid",
    "stop_replica",
    "wait_http_ok",
    "wait_ready",
]

SERVED_MODEL_NAME = "tiny"
DEFAULT_MAX_NUM_SEQS = 64
DEFAULT_KV_CACHE_BYTES = 128 * 1024 * 1024  # 131,072 tokens of the tiny model
DEFAULT_MAX_MODEL_LEN = 512
DEFAULT_READY_TIMEOUT_S = 180.0  # 16-18 s when quiet; several times that on a busy 2-core box
DEFAULT_STOP_GRACE_S = 10.0
TINY_MODEL_DIRNAME = "tiny-llama"
# Present means scripts/make_tiny_model.py finished here (it renames a complete dir into place).
TINY_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
VLLM_VERSION = "0.32.0"

StopOutcome = Literal["gone", "terminated", "killed"]


class EngineError(RuntimeError):
    """The engine could not be installed, found or started; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# paths


def project_root() -> Path:
    """The checkout holding `scripts/engine.sh`; the engine venv and run dir live beside it.

    `$GPUWISE_ROOT` wins so an installed gpuwise can still point at a checkout.
    """
    env = os.environ.get("GPUWISE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "scripts" / "engine.sh").is_file() and (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd().resolve()


def default_run_dir() -> Path:
    env = os.environ.get("GPUWISE_RUN_DIR")
    return Path(env).resolve() if env else project_root() / ".run"


def _default_venv() -> Path:
    env = os.environ.get("GPUWISE_ENGINE_VENV")
    return Path(env).resolve() if env else project_root() / ".venv-engine"


# --------------------------------------------------------------------------------------------------
# processes and ports (shared with prometheus_server)


def free_port() -> int:
    """A port the kernel just gave out on 127.0.0.1; racy by nature, but fine for local tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) from /proc, or None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields follow the parenthesised command name, which may itself contain spaces.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0], int(fields[2])


def pid_alive(pid: int) -> bool:
    """True while `pid` is a running process; reaps it first if it is our exited child.

    A child we started stays a zombie (and answers `kill(pid, 0)`) until waited for, so without
    the reap a stopped replica would look alive to the process that started it. Zombies of other
    parents count as gone: they hold no resources and only their parent can clear them.
    """
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    return stat is None or stat[0] != "Z"  # no /proc: trust kill(pid, 0)


def process_group_alive(pgid: int) -> bool:
    """Any live process left in the group: vLLM's API server forks an engine-core process (even
    with VLLM_ENABLE_V1_MULTIPROCESSING=0) that can outlive the leader by a moment."""
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[1] == pgid and stat[0] != "Z":
                return True
    return False


def _signal_tree(pid: int, sig: signal.Signals) -> bool:
    """Signal the process group when `pid` leads one (we start servers in their own session, so
    their helpers go down with them), else only the process; True when it was a group."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
            return True
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    return False


def stop_pid(pid: int, *, grace_s: float = DEFAULT_STOP_GRACE_S) -> StopOutcome:
    """SIGTERM, then SIGKILL after `grace_s`; returns once the process (and its group) is gone."""
    if not pid_alive(pid):
        return "gone"
    group = _signal_tree(pid, signal.SIGTERM)

    def alive() -> bool:
        return pid_alive(pid) or (group and process_group_alive(pid))

    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive():
            return "terminated"
        time.sleep(0.05)
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "killed"


def process_argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def spawn_detached(argv: list[str], *, env: Mapping[str, str], log_path: Path) -> int:
    """Start a server in its own session so it outlives a CLI that started it and a Ctrl-C in the
    caller's terminal does not reach it; we stop it by PID instead.

    posix_spawn rather than Popen: a Popen object for a server that outlives it warns on garbage
    collection and gets reaped behind our back; `pid_alive` reaps it instead.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        try:
            return os.posix_spawnp(
                argv[0],
                argv,
                dict(env),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull.fileno(), 0),
                    (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                    (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
                ],
                setsid=True,
            )
        except OSError as exc:
            raise EngineError(f"cannot start {argv[0]}: {exc}") from exc


def wait_http_ok(
    url: str, *, pid: int, timeout_s: float, what: str, log_path: Path, interval_s: float = 0.25
) -> None:
    """Poll until `url` answers 200; connection errors mean "not yet", a dead PID means failure."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=httpx.Timeout(2.0), trust_env=False) as client:
        while True:
            if not pid_alive(pid):
                raise EngineError(
                    f"{what} (pid {pid}) exited before it was ready; log {log_path}:\n"
                    + log_tail(log_path)
                )
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"{what} (pid {pid}) not ready after {timeout_s:.0f} s at {url}; "
                    f"log {log_path}:\n" + log_tail(log_path)
                )
            time.sleep(interval_s)


# --------------------------------------------------------------------------------------------------
# install and model


@dataclass(frozen=True)
class EngineInstall:
    """Whether the engine venv can serve; `problem` says why not (and how to fix it)."""

    venv_dir: Path
    vllm_version: str | None
    problem: str | None

    @property
    def python(self) -> Path:
        return self.venv_dir / "bin" / "python"

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_engine(venv_dir: Path | None = None, *, timeout_s: float = 120.0) -> EngineInstall:
    """Import vllm in the engine venv: a present venv with a broken torch (the CUDA extras that
    `engine.sh install` removes) is not an installed engine."""
    venv = Path(venv_dir) if venv_dir is not None else _default_venv()
    python = venv / "bin" / "python"
    if not python.is_file():
        return EngineInstall(
            venv, None, f"no engine venv at {venv}; run: scripts/engine.sh install"
        )
    try:
        res = subprocess.run(
            [str(python), "-c", "import vllm; print(vllm.__version__)"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"},
        )
    except subprocess.TimeoutExpired:
        return EngineInstall(venv, None, f"`import vllm` took over {timeout_s:.0f} s in {venv}")
    if res.returncode != 0:
        tail = "\n".join(res.stderr.strip().splitlines()[-5:])
        return EngineInstall(venv, None, f"`import vllm` fails in {venv}:\n{tail}")
    version = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "?"
    return EngineInstall(venv, version, None)


def ensure_installed(venv_dir: Path | None = None) -> EngineInstall:
    """Install through `scripts/engine.sh install` when missing (minutes, about 600 MB)."""
    found = check_engine(venv_dir)
    if found.ok:
        return found
    script = project_root() / "scripts" / "engine.sh"
    if not script.is_file():
        raise EngineError(f"{found.problem}\nand no scripts/engine.sh to install it with")
    env = dict(os.environ)
    env["GPUWISE_ENGINE_VENV"] = str(found.venv_dir)
    res = subprocess.run(["bash", str(script), "install"], env=env)
    found = check_engine(venv_dir)
    if res.returncode != 0 or not found.ok:
        raise EngineError(f"engine install failed (exit {res.returncode}): {found.problem}")
    return found


def ensure_tiny_model(
    path: Path | None = None, *, engine: EngineInstall | None = None, timeout_s: float = 600.0
) -> Path:
    """Generate the deterministic tiny Llama once; later calls only check it is there."""
    out = Path(path) if path is not None else default_run_dir() / TINY_MODEL_DIRNAME
    if all((out / name).is_file() for name in TINY_MODEL_FILES):
        return out
    engine = engine or check_engine()
    if not engine.ok:
        raise EngineError(engine.problem or "engine not installed")
    script = project_root() / "scripts" / "make_tiny_model.py"
    if not script.is_file():
        raise EngineError(f"cannot generate the model: {script} is missing")
    res = subprocess.run(
        [str(engine.python), str(script), str(out)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if res.returncode != 0:
        raise EngineError(f"model generation failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
    return out


# --------------------------------------------------------------------------------------------------
# one replica


def engine_env(run_dir: Path, port: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Offline, no telemetry, one OpenMP thread without core pinning (else every replica binds
    itself to core 0), scratch files inside the run dir instead of /tmp and ~/.cache.

    VLLM_ENABLE_V1_MULTIPROCESSING=0 is the reference's fast-start setting; the 0.32.0 API server
    still forks one engine-core process, which shares the replica's process group and is
    stopped with it."""
    scratch = run_dir / "rt" / str(port)
    env = dict(os.environ if base is None else base)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        VLLM_ENABLE_V1_MULTIPROCESSING="0",
        VLLM_CPU_OMP_THREADS_BIND="nobind",
        OMP_NUM_THREADS="1",
        VLLM_CACHE_ROOT=str(run_dir / "cache"),
        VLLM_RPC_BASE_PATH=str(scratch),
        TMPDIR=str(scratch),
        PYTHONUNBUFFERED="1",
    )
    return env


def engine_command(
    python: Path,
    model_dir: Path,
    port: int,
    *,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    kv_cache_bytes: int = DEFAULT_KV_CACHE_BYTES,
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    served_model_name: str = SERVED_MODEL_NAME,
) -> list[str]:
    """The server's argv. `-O0` skips torch.compile (saves about 30 s per start), `uni` avoids a
    separate worker process; the `vllm` console script is broken in vllm-cpu, hence `-m`."""
    return [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_model_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        str(max_model_len),
        "--max-num-seqs",
        str(max_num_seqs),
        "-O0",
        "--distributed-executor-backend",
        "uni",
        "--kv-cache-memory-bytes",
        str(kv_cache_bytes),
    ]


@dataclass(frozen=True)
class Replica:
    """A started engine process. `ready_s` is None until `wait_ready` saw /health answer."""

    pid: int
    port: int
    base_url: str
    log_path: Path
    started_at: float  # epoch seconds at spawn
    ready_s: float | None = None  # spawn to first healthy answer
    run_dir: Path = field(default_factory=default_run_dir, repr=False)

    @property
    def pid_path(self) -> Path:
        return _pid_path(self.run_dir, self.port)

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"


def _pid_path(run_dir: Path, port: int) -> Path:
    return run_dir / f"replica-{port}.pid"


def _log_path(run_dir: Path, port: int) -> Path:
    return run_dir / f"replica-{port}.log"


def _is_our_replica(pid: int, port: int) -> bool:
    """Guards against a stale pid file whose PID the kernel has since given to someone else."""
    argv = process_argv(pid)
    if "vllm.entrypoints.openai.api_server" not in argv:
        return False
    try:
        return argv[argv.index("--port") + 1] == str(port)
    except (ValueError, IndexError):
        return False


def start_replica(
    port: int | None = None,
    *,
    model_dir: Path | None = None,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    kv_cache_bytes: int = DEFAULT_KV_CACHE_BYTES,
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    run_dir: Path | None = None,
    engine: EngineInstall | None = None,
    wait: bool = True,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> Replica:
    """Spawn one server on 127.0.0.1 and (by default) wait for /health.

    A failed start stops the process and raises `EngineError` with the log's tail, so callers never
    inherit a half-started server.
    """
    run = Path(run_dir) if run_dir is not None else default_run_dir()
    run.mkdir(parents=True, exist_ok=True)
    port = port if port is not None else free_port()
    pid_file = _pid_path(run, port)
    if pid_file.exists():
        old = read_pid_file(pid_file)
        if old is not None and pid_alive(old) and _is_our_replica(old, port):
            raise EngineError(f"a replica already runs on port {port} (pid {old})")
        pid_file.unlink(missing_ok=True)
    # Only the interpreter is needed here: a broken venv shows up in the server's log rather than
    # costing a separate `import vllm` (seconds) on every start.
    python = (engine.venv_dir if engine is not None else _default_venv()) / "bin" / "python"
    if not python.is_file():
        raise EngineError(f"no engine python at {python}; run: scripts/engine.sh install")
    model = ensure_tiny_model(model_dir or run / TINY_MODEL_DIRNAME, engine=engine)
    log_path = _log_path(run, port)
    log_path.unlink(missing_ok=True)
    (run / "rt" / str(port)).mkdir(parents=True, exist_ok=True)
    argv = engine_command(
        python,
        model,
        port,
        max_num_seqs=max_num_seqs,
        kv_cache_bytes=kv_cache_bytes,
        max_model_len=max_model_len,
    )
    started_at = time.time()
    pid = spawn_detached(argv, env=engine_env(run, port), log_path=log_path)
    pid_file.write_text(f"{pid}\n")
    replica = Replica(
        pid=pid,
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        log_path=log_path,
        started_at=started_at,
        run_dir=run,
    )
    if not wait:
        return replica
    try:
        return wait_ready(replica, timeout_s)
    except BaseException:
        stop_replica(replica)
        raise


def wait_ready(replica: Replica, timeout_s: float = DEFAULT_READY_TIMEOUT_S) -> Replica:
    """Block until /health answers 200; returns the replica with `ready_s` filled in."""
    wait_http_ok(
        f"{replica.base_url}/health",
        pid=replica.pid,
        timeout_s=timeout_s,
        what=f"replica on port {replica.port}",
        log_path=replica.log_path,
    )
    return replace(replica, ready_s=time.time() - replica.started_at)


def stop_replica(replica: Replica, *, grace_s: float = DEFAULT_STOP_GRACE_S) -> StopOutcome:
    """Stop by PID (never by name), then drop its pid file and scratch dir."""
    outcome = stop_pid(replica.pid, grace_s=grace_s)
    if read_pid_file(replica.pid_path) == replica.pid:
        replica.pid_path.unlink(missing_ok=True)
    shutil.rmtree(replica.run_dir / "rt" / str(replica.port), ignore_errors=True)
    return outcome


def replica_from_pid_file(pid_file: Path) -> Replica | None:
    """Rebuild a handle for a replica started by another process (the CLI); None when stale."""
    run = pid_file.parent
    try:
        port = int(pid_file.stem.removeprefix("replica-"))
    except ValueError:
        return None
    pid = read_pid_file(pid_file)
    if pid is None or not pid_alive(pid) or not _is_our_replica(pid, port):
        return None
    return Replica(
        pid=pid,
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        log_path=_log_path(run, port),
        started_at=pid_file.stat().st_mtime,
        run_dir=run,
    )


# --------------------------------------------------------------------------------------------------
# a fleet


class LocalFleet:
    """N replicas started one after another (starting them together only slows each one down on a
    small CPU box), all stopped by PID on exit, also when the body or a start raised.

    `add` and `remove` make it usable as the local actuator's process pool.
    """

    def __init__(
        self,
        n: int,
        *,
        model_dir: Path | None = None,
        max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
        kv_cache_bytes: int = DEFAULT_KV_CACHE_BYTES,
        max_model_len: int = DEFAULT_MAX_MODEL_LEN,
        run_dir: Path | None = None,
        timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    ) -> None:
        self.n = n
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.model_dir = model_dir
        self.max_num_seqs = max_num_seqs
        self.kv_cache_bytes = kv_cache_bytes
        self.max_model_len = max_model_len
        self.timeout_s = timeout_s
        self.replicas: list[Replica] = []

    def add(self) -> Replica:
        replica = start_replica(
            model_dir=self.model_dir,
            max_num_seqs=self.max_num_seqs,
            kv_cache_bytes=self.kv_cache_bytes,
            max_model_len=self.max_model_len,
            run_dir=self.run_dir,
            timeout_s=self.timeout_s,
        )
        self.replicas.append(replica)
        return replica

    def remove(self, replica: Replica) -> StopOutcome:
        self.replicas = [r for r in self.replicas if r.pid != replica.pid]
        return stop_replica(replica)

    def stop_all(self) -> None:
        while self.replicas:
            stop_replica(self.replicas.pop())

    @property
    def base_urls(self) -> list[str]:
        return [r.base_url for r in self.replicas]

    def __iter__(self) -> Iterator[Replica]:
        return iter(list(self.replicas))

    def __enter__(self) -> LocalFleet:
        try:
            for _ in range(self.n):
                self.add()
        except BaseException:
            self.stop_all()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


# --------------------------------------------------------------------------------------------------
# command line (scripts/engine.sh start|stop|status)


def _cmd_start(args: argparse.Namespace) -> int:
    run = Path(args.run_dir) if args.run_dir else default_run_dir()
    print(
        f"starting replica on 127.0.0.1:{args.port} (log {_log_path(run, args.port)})", flush=True
    )
    try:
        replica = start_replica(
            args.port,
            model_dir=Path(args.model) if args.model else None,
            max_num_seqs=args.max_num_seqs,
            kv_cache_bytes=args.kv_cache_bytes,
            max_model_len=args.max_model_len,
            run_dir=run,
            timeout_s=args.timeout_s,
        )
    except EngineError as exc:
        print(f"engine: start failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"replica ready on {replica.base_url} in {replica.ready_s:.1f} s "
        f"(pid {replica.pid}, pid file {replica.pid_path})"
    )
    return 0


def _pid_files(run: Path) -> list[Path]:
    return sorted(run.glob("replica-*.pid"))


def _cmd_stop(args: argparse.Namespace) -> int:
    run = Path(args.run_dir) if args.run_dir else default_run_dir()
    if args.target == "all":
        files = _pid_files(run)
    else:
        try:
            files = [_pid_path(run, int(args.target))]
        except ValueError:
            print(f"engine: stop wants a port or 'all', not {args.target!r}", file=sys.stderr)
            return 2
    if not files:
        print("engine: no replicas to stop")
    for pid_file in files:
        replica = replica_from_pid_file(pid_file)
        if replica is None:
            pid_file.unlink(missing_ok=True)
            print(f"{pid_file.name}: not running (stale pid file removed)")
            continue
        t0 = time.monotonic()
        outcome = stop_replica(replica, grace_s=args.grace_s)
        print(f"port {replica.port} pid {replica.pid}: {outcome} in {time.monotonic() - t0:.1f} s")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    run = Path(args.run_dir) if args.run_dir else default_run_dir()
    files = _pid_files(run)
    if not files:
        print(f"no replicas (run dir {run})")
    for pid_file in files:
        replica = replica_from_pid_file(pid_file)
        if replica is None:
            print(f"{pid_file.name}: stale (process gone)")
            continue
        health = "down"
        with contextlib.suppress(httpx.HTTPError):
            code = httpx.get(f"{replica.base_url}/health", timeout=2.0, trust_env=False).status_code
            health = "ready" if code == 200 else f"HTTP {code}"
        print(f"port {replica.port} pid {replica.pid} {health} log {replica.log_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpuwise.live.local_engine", description="local vLLM replicas"
    )
    parser.add_argument("--run-dir", help="default: <repo>/.run or $GPUWISE_RUN_DIR")
    sub = parser.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="start one replica and wait until it is ready")
    start.add_argument("port", type=int)
    start.add_argument("--max-num-seqs", type=int, default=DEFAULT_MAX_NUM_SEQS)
    start.add_argument("--kv-cache-bytes", type=int, default=DEFAULT_KV_CACHE_BYTES)
    start.add_argument("--max-model-len", type=int, default=DEFAULT_MAX_MODEL_LEN)
    start.add_argument("--model", help="model dir (default: <run dir>/tiny-llama, generated)")
    start.add_argument("--timeout-s", type=float, default=DEFAULT_READY_TIMEOUT_S)
    stop = sub.add_parser("stop", help="stop a replica (or all) by PID")
    stop.add_argument("target", help="PORT or 'all'")
    stop.add_argument("--grace-s", type=float, default=DEFAULT_STOP_GRACE_S)
    sub.add_parser("status", help="list replicas started from this run dir")
    args = parser.parse_args(argv)
    return {"start": _cmd_start, "stop": _cmd_stop, "status": _cmd_status}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
