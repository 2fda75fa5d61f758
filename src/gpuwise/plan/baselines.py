"""What the plan is compared with: the fleet as written, the generic-ops transplant, the best
single GPU type, and Mélange's formulation (heterogeneous GPUs, no packing, no spot).

Why these four: the first is today's bill; the transplant is how CPU services are run (one
model per GPU, one request at a time, replicas for the load), the bill gpuwise exists to cut;
the single type is what most teams pick; and Mélange is the published state of the art, so the
plan must never cost more than it on the same inputs and must cost less where packing or spot
helps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gpuwise.errors import UserError
from gpuwise.plan.candidates import (
    Candidate,
    Demand,
    Member,
    evaluate_members,
    prune_dominated,
    size_engine,
)
from gpuwise.plan.fleet import Fleet, whole_traffic_fleet
from gpuwise.plan.milp import Infeasible, solve_fleet
from gpuwise.plan.planner import Pool, Proven, SolveStats, prove
from gpuwise.plan.verify import Verification, verify
from gpuwise.resolve import ResolvedSpec

TRANSPLANT_TARGET_UTILIZATION = 0.7  # how busy an ops team runs a one-request-at-a-time server
MAX_TRANSPLANT_ROUNDS = 12
SINGLE_GPU_TRIES = 3  # single-type fleets proven, cheapest unverified first


@dataclass(frozen=True)
class Baseline:
    """A compared fleet, its simulation, and how it was made."""

    key: str
    title: str
    fleet: Fleet
    verification: Verification
    note: str = ""


def _as_written(
    d: Demand, resolved: ResolvedSpec, max_num_seqs: int | None, derive: bool = False
) -> Candidate:
    """The deployment's own replica (optionally with another batch limit), priced as written.

    ``derive``: the batch limit sized by the TPOT target instead (the hardware's SLO capacity).
    """
    rd = d.current
    dep, cfg = rd.deployment, rd.config
    seqs = None if derive else (max_num_seqs if max_num_seqs is not None else cfg.max_num_seqs)
    sized = size_engine(
        d,
        rd.gpu,
        cfg.tp,
        cfg.weight_dtype,
        cfg.kv_dtype,
        cfg.max_num_batched_tokens,
        cfg.gpu_memory_utilization,
        resolved.profile,
        resolved.catalog,
        max_num_seqs=seqs,
    )
    if sized is None:  # resolve() already checked the fit; this is a guard, not a user path
        raise UserError(f"deployment '{d.name}': its configuration does not fit in memory")
    m = evaluate_members(d, [sized])[0]
    key = f"{d.name}|as-written|s{sized.engine.max_num_seqs}"
    return Candidate(key, rd.gpu.name, cfg.tp, dep.pricing, rd.usd_per_gpu_hour, (m,))


def current_fleet(resolved: ResolvedSpec, demands: Sequence[Demand], seed: int) -> Baseline:
    """The spec's deployments as written, at their starting replica counts, simulated."""
    picks = [(_as_written(d, resolved, None), d.current.deployment.replicas.start) for d in demands]
    fleet = whole_traffic_fleet("current", demands, picks, hardware_capacity(resolved, demands))
    ver = verify(resolved, demands, fleet, seed=seed)
    return Baseline("current", "current fleet (as written)", fleet, ver)


def hardware_capacity(resolved: ResolvedSpec, demands: Sequence[Demand]) -> list[Member]:
    """Per deployment, its hardware as written with a batching limit sized by the TPOT target."""
    return [_as_written(d, resolved, None, derive=True).members[0] for d in demands]


def _erlangs(d: Demand) -> float:
    """Requests in service at once at batch 1: rate x (prefill + output x decode step)."""
    perf = d.current.perf
    total = 0.0
    for b in d.buckets:
        ctx = b.mean_input_tokens + 0.5 * b.mean_output_tokens
        service_s = perf.prefill_time_s(max(int(b.mean_input_tokens), 1)) + (
            b.mean_output_tokens * perf.decode_time_s(1, ctx)
        )
        total += b.rate_rps * service_s
    return total


def transplant_fleet(resolved: ResolvedSpec, demands: Sequence[Demand], seed: int) -> Baseline:
    """One model per GPU, max_num_seqs 1, replicas added until the simulation meets the SLO."""
    cands = {d.name: _as_written(d, resolved, 1) for d in demands}
    n = {
        d.name: max(1, d.min_replicas, math.ceil(_erlangs(d) / TRANSPLANT_TARGET_UTILIZATION))
        for d in demands
    }
    note = ""
    hw = hardware_capacity(resolved, demands)
    for _ in range(MAX_TRANSPLANT_ROUNDS):
        fleet = whole_traffic_fleet(
            "transplant", demands, [(cands[d.name], n[d.name]) for d in demands], hw
        )
        ver = verify(resolved, demands, fleet, seed=seed)
        if ver.ok:
            break
        for dn in ver.failed:
            n[dn] += max(1, math.ceil(0.25 * n[dn]))
    else:
        note = "did not meet the SLO even at this size (latency floor of batch-1 serving)"
    return Baseline(
        "transplant",
        "generic-ops transplant (one model per GPU, max_num_seqs 1)",
        fleet,
        ver,
        note,
    )


def _melange_keep(c: Candidate) -> bool:
    return not c.packed and c.pricing != "spot"


def melange(resolved: ResolvedSpec, pool: Pool, seed: int) -> Proven:
    """Mélange's formulation: heterogeneous GPU types per request size, no packing, no spot."""
    return prove("melange", resolved, pool, _melange_keep, spot_max_share=0.0, seed=seed)


def single_gpu_type(resolved: ResolvedSpec, pool: Pool, seed: int) -> tuple[str, Proven] | None:
    """The cheapest proven fleet that uses one GPU type for every deployment (on-demand)."""
    costs: list[tuple[float, str]] = []
    for gpu in sorted({c.gpu for c in pool.candidates}):

        def keep(c: Candidate, g: str = gpu) -> bool:
            return c.gpu == g and not c.packed and c.pricing == "on-demand"

        alloc = solve_fleet(pool.demands, prune_dominated([c for c in pool.candidates if keep(c)]))
        if not isinstance(alloc, Infeasible):
            costs.append((alloc.usd_per_hour, gpu))
    best: tuple[str, Proven] | None = None
    for _, gpu in sorted(costs)[:SINGLE_GPU_TRIES]:

        def keep(c: Candidate, g: str = gpu) -> bool:
            return c.gpu == g and not c.packed and c.pricing == "on-demand"

        try:
            p = prove(f"single-{gpu}", resolved, pool, keep, spot_max_share=0.0, seed=seed)
        except UserError:
            continue
        if best is None or p.fleet.usd_per_hour < best[1].fleet.usd_per_hour:
            best = (gpu, p)
    return best


__all__ = [
    "Baseline",
    "Proven",
    "SolveStats",
    "current_fleet",
    "melange",
    "single_gpu_type",
    "transplant_fleet",
]
