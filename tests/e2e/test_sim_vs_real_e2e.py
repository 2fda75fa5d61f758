"""The simulator against the real local vLLM replica: one short run, loose bounds.

A reduced ``benchmarks/sim_vs_real.py``: measure the replica's capacity, then replay one schedule
(50% of capacity for 6 s, then twice the capacity for 1.5 s) against the replica and through the
simulator with a profile fitted on this machine by a short ``gpuwise calibrate`` (the shipped
``cpu-tiny-llama`` was fitted on another host) and the replica's ``--max-num-seqs``. The
steady part (requests that arrived before the step) must agree on TTFT p50 and mean TPOT within
40%, and the queue must build in both worlds during the step, to a similar depth.

Why 40% and not the benchmark's 15%/25%: this is one repetition on cores shared with whatever
else the machine runs. The benchmark's repeated runs show one run's TTFT p50 moving by 2-3x when
other processes take half a core, which a single run cannot average away; 40% still catches what
matters, a broken model (a profile without the per-request overhead predicts a quarter of the
real TTFT; a 2x error in iteration time doubles TPOT). When a run fails and the CPU meter saw
other processes take more than 0.2 cores, or the engine itself decoded more than 25% slower or
faster than the profile fitted on it a minute before (mean TPOT against the simulated one: the
host's speed moved, which on these VMs happens with no other process in sight, 1.46x and 1.62x
in two runs on 2026-12-03), the run is repeated once: the retry is tied to measured
interference, not to chance. A model error is there on the retry too.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gpuwise_cli import LOCAL_CATALOG, run_gpuwise

from gpuwise.live.local_engine import Replica, pid_alive
from gpuwise.resolve import resolve
from gpuwise.spec import load_spec

pytestmark = [pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
MAX_NUM_SEQS = 4  # the session replica's (conftest.MAX_NUM_SEQS)
BOUND = 0.40
STEADY_S = 6.0  # 50% of capacity this long, then the step
BURST_S = 1.5
BURST_FACTOR = 2.0
RETRY_OTHER_CORES = 0.2
RETRY_SPEED = 1.25  # the engine's TPOT over the fitted profile's, beyond which the host moved
QUIET_WAIT_S = 4.0  # before each real run, wait this long at most for other work to pause
TEST_BUDGET_S = 60.0  # the comparison, after the profile is fitted
CALIBRATE_BUDGET_S = 180


def _benchmark() -> ModuleType:
    path = ROOT / "benchmarks" / "sim_vs_real.py"
    spec = importlib.util.spec_from_file_location("sim_vs_real", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sim_vs_real"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _problems(sim: dict[str, Any], real: dict[str, Any], steady: dict[str, dict]) -> list[str]:
    out = []
    for key in ("ttft_p50_s", "tpot_mean_s"):
        s, r = steady["sim"][key], steady["real"][key]
        if not (math.isfinite(r) and r > 0 and abs(s - r) / r <= BOUND):
            out.append(f"steady {key}: sim {s * 1e3:.2f} ms vs real {r * 1e3:.2f} ms")
    qs, qr = sim["metrics"]["peak_queue"], real["metrics"]["peak_queue"]
    if not (qs >= 5 and qr >= 5):
        out.append(f"the queue did not build in both: peak sim {qs:.0f}, real {qr:.0f}")
    elif not 0.5 <= qs / qr <= 2.0:
        out.append(f"peak queue: sim {qs:.0f} vs real {qr:.0f}")
    bad = sum(n for k, n in real["outcomes"].items() if k != "ok")
    if bad:
        out.append(f"{bad} real requests failed: {real['outcomes']}")
    return out


def _profile_fitted_here(replica: Replica, out: Path) -> Path:
    """``gpuwise calibrate --from client`` on the session replica, a short sweep.

    The shipped ``cpu-tiny-llama`` was fitted on one build machine; the same kind of 2-vCPU VM
    on another host has run this engine up to 2x slower (steady TTFT p50 17-23 ms against the
    9.5 the shipped profile predicts, with no other process on the VM), so a fixed profile would
    test the host, not the simulator. What must hold is that a profile fitted *here* predicts
    the engine here, under a load it was not fitted on (the step to twice the capacity).
    """
    r = run_gpuwise(
        "calibrate", replica.base_url, "--gpu", "cpu-local", "--catalog", str(LOCAL_CATALOG),
        "--from", "client", "--concurrency", "1,2,4", "--max-num-seqs", str(MAX_NUM_SEQS),
        "--rounds", "2", "--name", "fitted-here", "--out", str(out),
        timeout_s=CALIBRATE_BUDGET_S,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def test_simulation_agrees_with_the_real_engine(replica: Replica, tmp_path: Path) -> None:
    if not pid_alive(replica.pid):
        pytest.fail(f"the shared replica (pid {replica.pid}) was stopped before this test")
    profile = _profile_fitted_here(replica, tmp_path / "fitted-here.yaml")
    t0 = time.monotonic()
    svr = _benchmark()
    spec = svr.with_max_num_seqs(load_spec(svr.DEFAULT_SPEC), "tiny", MAX_NUM_SEQS)
    resolved = resolve(spec, str(svr.DEFAULT_SPEC), profile)
    traffic = resolved.deployment("tiny").deployment.traffic
    prompt, output = svr.mean_lengths(traffic, 0)
    cap = svr.measure_capacity(
        replica, 4 * MAX_NUM_SEQS, prompt, output, 4.0, drain_s=10.0, quiet_wait_s=QUIET_WAIT_S
    )
    capacity = cap["capacity_rps"]
    assert capacity > 1.0, cap
    (case,) = svr.build_cases(
        traffic,
        capacity,
        loads=[],
        duration_s=STEADY_S,
        seed=0,
        burst_factor=BURST_FACTOR,
        burst_s=BURST_S,
        burst_at_s=STEADY_S,
    )
    sim = svr.simulate_case(resolved, "tiny", case)
    steady_until = STEADY_S - 0.5  # requests that never met the step's queue
    problems: list[str] = []
    for attempt in (1, 2):
        real = svr.real_case(
            replica, case, case.requests(), timeout_s=15.0, quiet_wait_s=QUIET_WAIT_S
        )
        steady = {
            "sim": svr.metrics_of(sim["per_request"], steady_until),
            "real": svr.metrics_of(real["per_request"], steady_until),
        }
        cpu = real["cpu"]
        print(
            f"\ncapacity {capacity:.1f} req/s (simulated "
            f"{svr.simulated_capacity(resolved, 'tiny', prompt, output, capacity):.1f}); "
            f"attempt {attempt}: steady TTFT p50 sim {steady['sim']['ttft_p50_s'] * 1e3:.2f} "
            f"real {steady['real']['ttft_p50_s'] * 1e3:.2f} ms, TPOT sim "
            f"{steady['sim']['tpot_mean_s'] * 1e3:.3f} real "
            f"{steady['real']['tpot_mean_s'] * 1e3:.3f} ms; peak queue sim "
            f"{sim['metrics']['peak_queue']:.0f} real {real['metrics']['peak_queue']:.0f}; CPU "
            f"cores: load generator {cpu['load_generator_cores']:.2f}, replica "
            f"{cpu['replica_cores']:.2f}, others {cpu['other_cores']:.2f}"
        )
        problems = _problems(sim, real, steady)
        speed = steady["real"]["tpot_mean_s"] / steady["sim"]["tpot_mean_s"]
        drifted = not (1 / RETRY_SPEED <= speed <= RETRY_SPEED)
        if not problems or not (cpu["other_cores"] > RETRY_OTHER_CORES or drifted):
            break
    assert not problems, "; ".join(problems)
    assert time.monotonic() - t0 < TEST_BUDGET_S
