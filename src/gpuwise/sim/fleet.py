"""Simulate a whole fleet: each deployment's requests through its replicas and router.

Orchestration only: the workload comes from ``gpuwise.workload.generate``, the engine limits
and speed from the resolved spec's ``ReplicaPerf``, the work from the compiled kernel, and the
report from ``gpuwise.sim.results``. Deployments share nothing at run time (each has its own
replicas and router), so they are simulated one after another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from gpuwise.errors import UserError
from gpuwise.resolve import ResolvedDeployment, ResolvedSpec
from gpuwise.signals import Signals
from gpuwise.sim.engine import (
    C_BLOCK,
    C_CHUNKED,
    C_MAX_BATCHED,
    C_MAX_MODEL_LEN,
    C_MAX_SEQS,
    C_ROUTER,
    N_C,
    OUTCOME_OK,
    PF_AVAIL_FROM,
    PF_AVAIL_UNTIL,
    PF_BUSY_S,
    PF_KV_BLOCK_S,
    PF_RUNNING_S,
    PF_SEQ_S,
    PI_ITERATIONS,
    PI_MAX_USED,
    PI_STEPS,
    RF_ADMITTED,
    RF_FINISH,
    RF_FIRST,
    RI_OUTCOME,
    RI_PREEMPTIONS,
    RI_REPLICA,
)
from gpuwise.sim.kernel import run_deployment
from gpuwise.sim.results import (
    DeploymentRequests,
    DeploymentSummary,
    EngineStats,
    SimResult,
    interval_signals,
    summarize,
)
from gpuwise.sim.router import probe_draws, router_code
from gpuwise.workload import Requests, generate


class SimError(UserError):
    """A simulation asked for something that cannot be run; the message says what to change."""


def simulate(
    resolved: ResolvedSpec,
    *,
    duration_s: float,
    seed: int,
    requests: Mapping[str, Requests] | None = None,
    signal_interval_s: float = 10.0,
    replicas: Mapping[str, int] | None = None,
    kv_blocks: Mapping[str, int] | None = None,
) -> SimResult:
    """Run every deployment of ``resolved`` for ``duration_s`` of arrivals, then drain.

    ``requests`` replaces a deployment's generated traffic (a deployment with neither gets
    none); ``replicas`` overrides its starting replica count; ``kv_blocks`` pins its KV-cache
    capacity per replica (to match another simulator or a measured engine). Every deployment's
    traffic is drawn from ``seed`` itself, as ``gpuwise bench`` draws it, so both replay the same
    schedule. The same inputs give the same result, byte for byte.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise SimError(f"duration_s must be a finite number > 0, got {duration_s!r}")
    if not (math.isfinite(signal_interval_s) and signal_interval_s > 0):
        raise SimError(f"signal_interval_s must be > 0, got {signal_interval_s!r}")
    names = {d.deployment.name for d in resolved.deployments}
    for what, given in (("requests", requests), ("replicas", replicas), ("kv_blocks", kv_blocks)):
        unknown = sorted(set(given or ()) - names)
        if unknown:
            raise SimError(
                f"{what} names unknown deployment(s) {', '.join(unknown)}; "
                f"the spec has {', '.join(sorted(names))}"
            )
    runs: dict[str, DeploymentRequests] = {}
    summaries: dict[str, DeploymentSummary] = {}
    stats: dict[str, EngineStats] = {}
    signals: list[list[Signals]] = []
    for rd in resolved.deployments:
        name = rd.deployment.name
        if requests is not None and name in requests:
            reqs = requests[name]
        elif rd.deployment.traffic is not None:
            reqs = generate(rd.deployment.traffic, duration_s, seed)
        else:
            reqs = Requests.empty(duration_s)
        n_rep = (replicas or {}).get(name, rd.deployment.replicas.start)
        run, summary, sig, st = simulate_deployment(
            rd,
            reqs,
            duration_s=duration_s,
            seed=seed,
            replicas=n_rep,
            signal_interval_s=signal_interval_s,
            kv_capacity_blocks=(kv_blocks or {}).get(name),
        )
        runs[name], summaries[name], stats[name] = run, summary, st
        signals.append(sig)
    # by time, deployments in spec order at each instant, as one scrape of the fleet lists them
    order = {d.deployment.name: i for i, d in enumerate(resolved.deployments)}
    merged = sorted(
        (s for group in signals for s in group), key=lambda s: (s.t_s, order[s.deployment])
    )
    return SimResult(runs, summaries, merged, stats, float(duration_s), seed, signal_interval_s)


def simulate_deployment(
    rd: ResolvedDeployment,
    requests: Requests,
    *,
    duration_s: float,
    seed: int,
    replicas: int,
    signal_interval_s: float = 10.0,
    kv_capacity_blocks: int | None = None,
    router: str | None = None,
) -> tuple[DeploymentRequests, DeploymentSummary, list[Signals], EngineStats]:
    """One deployment through the kernel: its request records, summary, signals and stats."""
    d = rd.deployment
    name = d.name
    if replicas < 0:
        raise SimError(f"{name}: replicas must be >= 0, got {replicas}")
    cap = int(
        kv_capacity_blocks if kv_capacity_blocks is not None else rd.perf.memory.kv_capacity_blocks
    )
    if cap <= 0:
        raise SimError(f"{name}: the KV cache holds no block (kv_capacity_blocks {cap})")
    router_name = router or d.router
    cfg = np.zeros(N_C, dtype=np.int64)
    cfg[C_MAX_SEQS] = d.limits.max_num_seqs
    cfg[C_MAX_BATCHED] = d.limits.max_num_batched_tokens
    cfg[C_BLOCK] = d.limits.block_size
    cfg[C_MAX_MODEL_LEN] = rd.perf.memory.max_model_len
    cfg[C_CHUNKED] = 1 if d.limits.enable_chunked_prefill else 0
    try:
        cfg[C_ROUTER] = router_code(router_name)
    except ValueError as e:
        raise SimError(f"{name}: {e}") from None
    window_s = max(float(duration_s), requests.end_s)
    n = len(requests)
    arrival = np.array(requests.arrival_s, dtype=np.float64)
    prompt = np.array(requests.input_tokens, dtype=np.int64)
    output = np.array(requests.output_tokens, dtype=np.int64)
    draws = probe_draws(n, seed) if cfg[C_ROUTER] == 2 else np.zeros((n, 2))
    avail_from = np.zeros(replicas)
    avail_until = np.full(replicas, np.inf)
    min_intervals = max(1, math.ceil(window_s / signal_interval_s - 1e-9))
    ri, rf, pi, pf, bins = run_deployment(
        arrival,
        prompt,
        output,
        draws,
        cfg,
        rd.perf.coeff_vector(),
        cap,
        avail_from,
        avail_until,
        float(signal_interval_s),
        min_intervals,
    )
    first, finish = client_times(rf, ri, rd.perf.request_overhead_s)
    run = DeploymentRequests(
        deployment=name,
        arrival_s=arrival,
        input_tokens=prompt,
        output_tokens=output,
        admitted_s=rf[:, RF_ADMITTED].copy(),
        first_token_s=first,
        finish_s=finish,
        replica=ri[:, RI_REPLICA].astype(np.int32),
        preemptions=ri[:, RI_PREEMPTIONS].astype(np.int32),
        outcome=ri[:, RI_OUTCOME].astype(np.int8),
    )
    if n and (run.outcome < 0).any():  # the kernel's contract; a violation is a bug, not input
        raise RuntimeError(f"{name}: {(run.outcome < 0).sum()} requests never finished")
    last = float(np.nanmax(run.finish_s)) if n else 0.0
    span_s = max(window_s, last)
    available_s = (
        float(np.sum(np.minimum(pf[:, PF_AVAIL_UNTIL], span_s) - pf[:, PF_AVAIL_FROM]))
        if replicas
        else 0.0
    )
    summary = summarize(
        run,
        replicas_available_s=available_s,
        tp=d.tp,
        replicas=replicas,
        router=router_name,
        usd_per_gpu_hour=rd.usd_per_gpu_hour,
        slo=rd.slo,
        duration_s=float(duration_s),
        span_s=span_s,
        busy_s=float(pf[:, PF_BUSY_S].sum()),
        seq_s=float(pf[:, PF_SEQ_S].sum()),
        running_s=float(pf[:, PF_RUNNING_S].sum()),
        kv_block_s=float(pf[:, PF_KV_BLOCK_S].sum()),
        max_kv_blocks=int(pi[:, PI_MAX_USED].max()) if replicas else 0,
        kv_capacity_blocks=cap,
    )
    sig = interval_signals(run, bins, interval_s=float(signal_interval_s), tp=d.tp)
    stats = EngineStats(
        steps=int(pi[:, PI_STEPS].sum()),
        iterations=int(pi[:, PI_ITERATIONS].sum()),
        max_kv_blocks_used=int(pi[:, PI_MAX_USED].max()) if replicas else 0,
        kv_capacity_blocks=cap,
    )
    return run, summary, sig, stats


def client_times(
    rf: np.ndarray, ri: np.ndarray, request_overhead_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """First-token and finish times as a client sees them: the kernel's engine times plus the
    profile's per-request latency outside the engine (HTTP, tokenization; 0 unless the profile
    was fitted on client-side timings). A constant delay on the way in shifts the engine's whole
    timeline and one on the way out shifts what the client sees, so adding both to the served
    requests' times is exact; rejections keep their time."""
    first = rf[:, RF_FIRST].copy()
    finish = rf[:, RF_FINISH].copy()
    if request_overhead_s:
        first += request_overhead_s  # NaN (never reached) stays NaN
        served = ri[:, RI_OUTCOME] == OUTCOME_OK
        finish[served] += request_overhead_s
    return first, finish
