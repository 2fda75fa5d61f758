"""Proof in simulation: run a fleet through ``gpuwise.sim`` and check every SLO target.

Why: the capacities the solver used are an analytic steady state; bursts, the tail of the size
mix and the engine's scheduling are what the simulator adds. A plan is only printed after its
fleet, fed the deployment's traffic at its peak rate (a diurnal curve or a ramp becomes Poisson
arrivals at the peak), meets each target at the SLO percentile.

How a fleet becomes simulated deployments: each group (identical replicas of one candidate)
is one simulated deployment per member, fed the requests that the solver's shares send it
(each request's size bucket, then a seeded draw among the groups serving that bucket). A packed
GPU's engines each get the memory share they are planned with and a fixed share of the GPU's
FLOP/s and bandwidth as planned (``Member.compute_share``): engines time-sliced on one GPU take
turns, so each runs, on average, at its share of the GPU; a conservative stand-in, since an
engine whose neighbours are idle has the whole GPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpuwise.perf import ReplicaConfig, ReplicaPerf
from gpuwise.plan.buckets import bucket_of
from gpuwise.plan.candidates import Demand, shared_gpu
from gpuwise.plan.fleet import Fleet, FleetGroup
from gpuwise.resolve import ResolvedDeployment, ResolvedSpec
from gpuwise.sim import simulate_deployment
from gpuwise.spec import Deployment as SpecDeployment
from gpuwise.spec import EngineLimits, PoissonArrivals, Replicas, Slo, Traffic
from gpuwise.workload import Requests, generate

VERIFY_REQUESTS = 4000  # requests per deployment in one check (fewer for slow traffic)
MIN_VERIFY_S, MAX_VERIFY_S = 300.0, 3600.0


@dataclass(frozen=True)
class DeploymentCheck:
    """One deployment's simulated latencies at the SLO percentile, and whether each target held."""

    deployment: str
    scenario: str
    requests: int
    percentile: float
    attainment: float  # share of requests inside every target
    ttft_s: float  # at the percentile
    tpot_s: float
    e2e_s: float
    ttft_p95_s: float
    tpot_p95_s: float
    e2e_p95_s: float
    gpu_busy: float  # share of replica time executing iterations
    ok: bool
    failed_targets: tuple[str, ...]


@dataclass(frozen=True)
class Verification:
    fleet: str
    checks: tuple[DeploymentCheck, ...]
    sim_wall_s: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, deployment: str) -> DeploymentCheck | None:
        return next((c for c in self.checks if c.deployment == deployment), None)

    @property
    def failed(self) -> list[str]:
        return [c.deployment for c in self.checks if not c.ok]


def peak_traffic(traffic: Traffic, rate_rps: float) -> tuple[Traffic, str]:
    """The traffic a static fleet must survive: curves become Poisson at their peak."""
    kind = traffic.arrival.kind
    if kind in ("diurnal", "ramp"):
        t = traffic.model_copy(update={"arrival": PoissonArrivals(rate_rps=rate_rps)})
        return t, f"Poisson at the {kind} peak, {rate_rps:g} req/s"
    return traffic, f"the spec's traffic ({kind}, {rate_rps:.3g} req/s)"


def verify_duration_s(rate_rps: float) -> float:
    return float(min(max(VERIFY_REQUESTS / max(rate_rps, 1e-9), MIN_VERIFY_S), MAX_VERIFY_S))


def _split(
    demand: Demand, reqs: Requests, groups: Sequence[tuple[int, FleetGroup]], seed: int
) -> dict[int, np.ndarray]:
    """Which requests each group receives: by size bucket, then by the solver's shares."""
    b_idx = bucket_of(list(demand.buckets), reqs.input_tokens, reqs.output_tokens)
    rng = np.random.default_rng([seed, demand.index, 7])
    u = rng.random(b_idx.size)
    choice = np.full(b_idx.size, -1, dtype=np.int64)
    for b in range(len(demand.buckets)):
        weights = []
        for gi, g in groups:
            load = g.load_of(demand.name)
            weights.append((gi, load.bucket_shares[b] if load else 0.0))
        total = sum(w for _, w in weights)
        if total <= 0:
            continue
        edges = np.cumsum([w / total for _, w in weights])
        pick = np.minimum(np.searchsorted(edges, u[b_idx == b], side="right"), len(weights) - 1)
        choice[b_idx == b] = np.array([gi for gi, _ in weights])[pick]
    # a request in a bucket nobody serves (cannot happen after a solve) goes to the first group
    choice[choice < 0] = groups[0][0]
    return {gi: np.flatnonzero(choice == gi) for gi, _ in groups}


def _subset(reqs: Requests, idx: np.ndarray) -> Requests:
    return Requests(
        reqs.arrival_s[idx],
        reqs.input_tokens[idx],
        reqs.output_tokens[idx],
        duration_s=reqs.duration_s,
        start_s=reqs.start_s,
    )


def sim_deployment(
    resolved: ResolvedSpec, demand: Demand, group: FleetGroup, name: str, compute_share: float
) -> ResolvedDeployment:
    """The simulator's view of one member of a group: a one-off resolved deployment."""
    member = group.candidate.member(demand.name)
    assert member is not None
    e = member.engine
    cur = demand.current
    limits = EngineLimits(
        max_num_seqs=e.max_num_seqs,
        max_num_batched_tokens=e.max_num_batched_tokens,
        gpu_memory_utilization=e.gpu_memory_utilization,
        block_size=cur.deployment.limits.block_size,
        max_model_len=e.max_model_len,
        enable_chunked_prefill=True,
    )
    dep = SpecDeployment(
        name=name,
        model=demand.model.name,
        gpu=e.gpu,
        tp=e.tp,
        weight_dtype=e.weight_dtype,  # type: ignore[arg-type]
        kv_dtype=e.kv_dtype,  # type: ignore[arg-type]
        limits=limits,
        replicas=Replicas(min=max(group.replicas, 0), max=max(group.replicas, 1)),
        pricing=group.candidate.pricing,
        router=cur.deployment.router,
        slo=demand.slo,
    )
    gpu = shared_gpu(resolved.catalog.gpu(e.gpu), compute_share)
    cfg = ReplicaConfig(
        model=demand.model,
        gpu=gpu,
        tp=e.tp,
        weight_dtype=e.weight_dtype,
        kv_dtype=e.kv_dtype,
        max_num_seqs=e.max_num_seqs,
        max_num_batched_tokens=e.max_num_batched_tokens,
        gpu_memory_utilization=e.gpu_memory_utilization,
        block_size=limits.block_size,
        max_model_len=e.max_model_len,
    )
    perf = ReplicaPerf(cfg, resolved.profile)
    return ResolvedDeployment(
        demand.index,
        dep,
        demand.model,
        gpu,
        cfg,
        perf,
        demand.slo,
        group.candidate.usd_per_gpu_hour,
        "plan",
    )


def _at(values: np.ndarray, pct: float) -> float:
    v = values[~np.isnan(values)] if values.size else values
    return float(np.percentile(v, pct)) if v.size else 0.0


def _check(demand: Demand, scenario: str, runs: list, busy: float, total: int) -> DeploymentCheck:
    slo: Slo | None = demand.slo
    pct = slo.percentile if slo else 95.0
    if not runs:
        return DeploymentCheck(demand.name, scenario, 0, pct, 1.0, 0, 0, 0, 0, 0, 0, busy, True, ())
    ok_mask = np.concatenate([r.ok for r in runs])
    met = np.concatenate([r.slo_met(slo) for r in runs])

    def lat(attr: str) -> np.ndarray:
        v = np.concatenate([getattr(r, attr) for r in runs]).astype(float)
        v[~ok_mask] = np.inf  # a rejected request is as late as can be
        return v

    ttft, tpot, e2e = lat("ttft_s"), lat("tpot_s"), lat("e2e_s")
    values = {"ttft": _at(ttft, pct), "tpot": _at(tpot, pct), "e2e": _at(e2e, pct)}
    failed = []
    if slo is not None:
        for key, target in (("ttft", slo.ttft_s), ("tpot", slo.tpot_s), ("e2e", slo.e2e_s)):
            if target is not None and not values[key] <= target:
                failed.append(key)
    return DeploymentCheck(
        deployment=demand.name,
        scenario=scenario,
        requests=total,
        percentile=pct,
        attainment=float(met.mean()) if met.size else 1.0,
        ttft_s=values["ttft"],
        tpot_s=values["tpot"],
        e2e_s=values["e2e"],
        ttft_p95_s=_at(ttft, 95.0),
        tpot_p95_s=_at(tpot, 95.0),
        e2e_p95_s=_at(e2e, 95.0),
        gpu_busy=busy,
        ok=not failed,
        failed_targets=tuple(failed),
    )


def verify(
    resolved: ResolvedSpec,
    demands: Sequence[Demand],
    fleet: Fleet,
    *,
    seed: int = 0,
    only: Sequence[str] | None = None,
) -> Verification:
    """Simulate ``fleet`` on each deployment's peak traffic; one check per deployment."""
    t0 = time.perf_counter()
    checks = []
    indexed = list(enumerate(fleet.groups))
    for d in demands:
        if only is not None and d.name not in only:
            continue
        traffic, scenario = peak_traffic(d.traffic, d.rate_rps)
        duration = verify_duration_s(d.rate_rps)
        reqs = generate(traffic, duration, seed + 1000 + d.index)
        groups = [(gi, g) for gi, g in indexed if g.load_of(d.name) is not None]
        if not groups:
            raise ValueError(f"fleet '{fleet.name}' has no replica for deployment {d.name}")
        split = _split(d, reqs, groups, seed)
        runs, busy_w, busy_n = [], 0.0, 0.0
        for gi, g in groups:
            idx = split[gi]
            if idx.size == 0:
                continue
            member = g.candidate.member(d.name)
            assert member is not None
            rd = sim_deployment(resolved, d, g, f"g{gi}", member.compute_share)
            run, summary, _sig, _st = simulate_deployment(
                rd, _subset(reqs, idx), duration_s=duration, seed=seed, replicas=g.replicas
            )
            runs.append(run)
            busy_w += summary.gpu_busy * g.replicas
            busy_n += g.replicas
        checks.append(_check(d, scenario, runs, busy_w / busy_n if busy_n else 0.0, len(reqs)))
    return Verification(fleet.name, tuple(checks), time.perf_counter() - t0)


def worst_ratio(check: DeploymentCheck, slo: Slo | None) -> float:
    """How far the worst target is from being met (>1: missed by that factor)."""
    if slo is None:
        return 0.0
    r = 0.0
    for v, t in ((check.ttft_s, slo.ttft_s), (check.tpot_s, slo.tpot_s), (check.e2e_s, slo.e2e_s)):
        if t is not None:
            r = max(r, v / t if math.isfinite(v) else math.inf)
    return r
