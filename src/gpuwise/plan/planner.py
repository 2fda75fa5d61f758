"""``plan(resolved) -> Plan``: enumerate, solve, simulate, tighten until the fleet is proven.

The loop: candidates (every fitting replica kind, with per-bucket capacities) go to the MILP;
the cheapest fleet goes to the simulator at peak traffic; a deployment that misses a target has
its candidates' capacities lowered by ``TIGHTEN`` and the MILP runs again. A fleet is returned
only once every deployment passes; after ``MAX_ROUNDS`` the planner stops with an error naming
the deployment and what it reached, rather than print a plan it could not prove.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from gpuwise.plan.candidates import (
    Candidate,
    Demand,
    PlanError,
    PlanOptions,
    best_latency,
    dedicated_candidates,
    dedicated_engines,
    demand_for,
    frontier,
    packable,
    packed_candidates,
    prune_dominated,
)
from gpuwise.plan.fleet import Fleet, fleet_from_allocation
from gpuwise.plan.milp import Allocation, Infeasible, solve_fleet
from gpuwise.plan.verify import Verification, verify
from gpuwise.resolve import ResolvedSpec
from gpuwise.spec import PricingKind

TIGHTEN = 0.8  # capacity factor applied to a deployment whose simulated SLO missed
MAX_ROUNDS = 6
FRONTIER_KEEP = 3  # dedicated candidates kept per deployment and bucket (cheapest per req/s)


@dataclass(frozen=True)
class SolveStats:
    candidates: int
    variables: int
    constraints: int
    solve_s: float  # MILP wall time, summed over rounds
    rounds: int


@dataclass(frozen=True)
class Proven:
    """A fleet with the simulation that passed it, and how it was found."""

    fleet: Fleet
    verification: Verification
    stats: SolveStats
    derate: dict[str, float]


@dataclass(frozen=True)
class Pool:
    """Everything the solver may pick from, computed once and filtered per question.

    Not pruned for dominance here: a candidate dominated by a quantized or spot one must stay
    available to a question that excludes those (the recommendation ladder); ``prove`` prunes
    what it is given.
    """

    demands: tuple[Demand, ...]
    candidates: tuple[Candidate, ...]
    enumerate_s: float
    sized: dict[str, list]


def derated(cands: Sequence[Candidate], derate: dict[str, float]) -> list[Candidate]:
    """The same candidates with the capacities of tightened deployments scaled down."""
    if not derate:
        return list(cands)
    out = []
    for c in cands:
        ms = tuple(
            replace(
                m, capacity_rps=tuple(v * derate.get(m.deployment, 1.0) for v in m.capacity_rps)
            )
            if m.deployment in derate
            else m
            for m in c.members
        )
        out.append(replace(c, members=ms))
    return out


def build_pool(resolved: ResolvedSpec, options: PlanOptions) -> Pool:
    t0 = time.perf_counter()
    spec = resolved.spec
    demands = tuple(demand_for(rd, options.seed) for rd in resolved.deployments)
    pricing: list[PricingKind] = list(dict.fromkeys(spec.pricing_allowed))
    sized = {d.name: dedicated_engines(d, resolved, options) for d in demands}
    dedicated = {
        d.name: dedicated_candidates(d, resolved, options, pricing, sized[d.name]) for d in demands
    }
    for d in demands:
        _check_coverage(d, dedicated[d.name], sized[d.name])
    cands = [c for d in demands for c in dedicated[d.name]]
    if options.packing and len(demands) > 1:
        small = packable(demands, dedicated)
        if len(small) > 1:
            cands += packed_candidates(small, resolved, options, pricing)
    return Pool(demands, tuple(cands), time.perf_counter() - t0, sized)


def _check_coverage(d: Demand, cands: Sequence[Candidate], sized: list) -> None:
    """Stop with the best reachable latency when no replica of any kind meets the SLO."""
    served = [any(c.members[0].capacity_rps[b] > 0 for c in cands) for b in range(len(d.buckets))]
    if all(served):
        return
    if not sized:
        raise PlanError(
            f"deployment '{d.name}': {d.model.name} fits on no priced GPU in the catalog up to "
            f"tp 8 with max_model_len {d.max_model_len:,}; lower limits.max_model_len or add a GPU"
        )
    ttft, tpot, where = best_latency(d, sized)
    missing = [d.buckets[b].label for b, ok in enumerate(served) if not ok]
    slo = d.slo
    want = []
    if slo is not None:
        if slo.ttft_s is not None:
            want.append(f"TTFT <= {slo.ttft_s:g} s")
        if slo.tpot_s is not None:
            want.append(f"TPOT <= {slo.tpot_s:g} s")
        if slo.e2e_s is not None:
            want.append(f"end-to-end <= {slo.e2e_s:g} s")
    pct = f"p{slo.percentile:g}" if slo else "p95"
    raise PlanError(
        f"deployment '{d.name}': no GPU configuration meets its SLO ({pct} {', '.join(want)}) "
        f"for requests of size {'; '.join(missing)}. The best achievable even with no other load "
        f"is {pct} TTFT {ttft:.3g} s and TPOT {tpot:.3g} s ({where}). Relax the SLO or shorten "
        f"the requests."
    )


def prove(
    name: str,
    resolved: ResolvedSpec,
    pool: Pool,
    keep: Callable[[Candidate], bool],
    *,
    spot_max_share: float,
    seed: int,
    derate: dict[str, float] | None = None,
    reference: Proven | None = None,
) -> Proven:
    """Solve over the candidates ``keep`` accepts, then simulate and tighten until proven.

    ``reference``: a proven fleet whose candidates are all allowed here too; if this search ends
    costlier (tightening is greedy), the reference is the answer, since it is feasible and proven.
    """
    derate = dict(derate or {})
    base = frontier(
        prune_dominated([c for c in pool.candidates if keep(c)]), pool.demands, FRONTIER_KEEP
    )
    solve_s, last = 0.0, None
    for rnd in range(1, MAX_ROUNDS + 1):
        cands = derated(base, derate)
        alloc = solve_fleet(pool.demands, cands, spot_max_share=spot_max_share)
        if isinstance(alloc, Infeasible):
            raise PlanError(f"{name}: {alloc.reason}: {alloc.uncovered}")
        solve_s += alloc.solve_s
        fleet = fleet_from_allocation(name, pool.demands, cands, alloc)
        ver = verify(resolved, pool.demands, fleet, seed=seed)
        stats = SolveStats(len(cands), alloc.variables, alloc.constraints, solve_s, rnd)
        last = (fleet, ver, alloc)
        if ver.ok:
            got = Proven(fleet, ver, stats, derate)
            if reference is not None and reference.fleet.usd_per_hour < fleet.usd_per_hour - 1e-9:
                return replace(reference, fleet=replace(reference.fleet, name=name))
            return got
        for dn in ver.failed:
            derate[dn] = derate.get(dn, 1.0) * tighten_factor(fleet, dn)
    assert last is not None
    fleet, ver, _ = last
    if reference is not None:
        return replace(reference, fleet=replace(reference.fleet, name=name))
    worst = [c for c in ver.checks if not c.ok]
    detail = "; ".join(
        f"{c.deployment}: p{c.percentile:g} TTFT {c.ttft_s:.3g} s, TPOT {c.tpot_s:.3g} s, "
        f"end-to-end {c.e2e_s:.3g} s (missed {', '.join(c.failed_targets)})"
        for c in worst
    )
    raise PlanError(
        f"{name}: no fleet passed its simulation after {MAX_ROUNDS} rounds of tightening; "
        f"the last one reached {detail}. The SLO is too tight for these GPUs at this traffic."
    )


def tighten_factor(fleet: Fleet, deployment: str) -> float:
    """How much to lower a failed deployment's capacities: enough to force another replica.

    Lowering by TIGHTEN alone does nothing when the deployment's replicas run well below their
    capacity (the miss then comes from bursts or prefill interference, not from load), so the
    factor is also capped just under the busiest group's utilization: the same replicas can no
    longer carry the same traffic, and the solver must add one or move the traffic.
    """
    utils = []
    for g in fleet.groups_of(deployment):
        m = g.load_of(deployment)
        if m is not None and g.replicas:
            utils.append(m.utilization(g.replicas))
    u = max(utils, default=1.0)
    return max(min(TIGHTEN, 0.95 * u), 0.05)


def is_finite_cost(p: Proven) -> bool:
    return math.isfinite(p.fleet.usd_per_hour)


def solve_only(
    pool: Pool, keep: Callable[[Candidate], bool], spot_max_share: float
) -> Allocation | Infeasible:
    return solve_fleet(
        pool.demands, [c for c in pool.candidates if keep(c)], spot_max_share=spot_max_share
    )
