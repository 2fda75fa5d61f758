"""A fleet: groups of identical replicas, each carrying shares of some deployments' traffic.

The one shape every answer of the planner takes (the plan, the current fleet, the baselines,
each rung of the recommendation ladder), so that pricing, utilization, verification and the
Kubernetes manifests are computed the same way for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpuwise.plan.candidates import Candidate, Demand, Member
from gpuwise.plan.milp import Allocation

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class MemberLoad:
    """What one deployment sends to one group: per-bucket shares and the load they make."""

    deployment: str
    bucket_shares: tuple[float, ...]  # share of each of the deployment's buckets served here
    rate_rps: float
    load: float  # sum of rate / capacity over buckets: replicas' worth of work

    def utilization(self, replicas: int) -> float:
        return self.load / replicas if replicas else 0.0


@dataclass(frozen=True)
class FleetGroup:
    """``replicas`` copies of one candidate and the traffic they carry."""

    candidate: Candidate
    replicas: int
    loads: tuple[MemberLoad, ...]

    @property
    def gpus(self) -> int:
        return self.candidate.gpus * self.replicas

    @property
    def usd_per_hour(self) -> float:
        return self.candidate.usd_per_hour * self.replicas

    @property
    def utilization(self) -> float:
        """Load over capacity: the share of the group's SLO-bound capacity in use.

        On a packed GPU each engine's load is over its own compute share, so the GPU's is the
        share-weighted sum.
        """
        if not self.replicas:
            return 0.0
        total = 0.0
        for m in self.loads:
            mem = self.candidate.member(m.deployment)
            total += m.load * (mem.compute_share if mem is not None else 1.0)
        return total / self.replicas

    def load_of(self, deployment: str) -> MemberLoad | None:
        return next((m for m in self.loads if m.deployment == deployment), None)


@dataclass(frozen=True)
class Fleet:
    name: str
    groups: tuple[FleetGroup, ...]

    @property
    def usd_per_hour(self) -> float:
        return float(sum(g.usd_per_hour for g in self.groups))

    @property
    def usd_per_month(self) -> float:
        return self.usd_per_hour * HOURS_PER_MONTH

    @property
    def gpus(self) -> int:
        return sum(g.gpus for g in self.groups)

    @property
    def utilization(self) -> float:
        """GPU-weighted load over capacity of the whole fleet."""
        gpus = self.gpus
        return sum(g.utilization * g.gpus for g in self.groups) / gpus if gpus else 0.0

    def groups_of(self, deployment: str) -> list[FleetGroup]:
        return [g for g in self.groups if g.load_of(deployment) is not None]

    def deployment_usd_per_hour(self, deployment: str) -> float:
        """A deployment's part of the bill; a packed GPU is split by the members' loads."""
        total = 0.0
        for g in self.groups:
            m = g.load_of(deployment)
            if m is None:
                continue
            loads = sum(x.load for x in g.loads)
            share = m.load / loads if loads > 0 else 1.0 / len(g.loads)
            total += g.usd_per_hour * share
        return total


def member_load(demand: Demand, member: Member, shares: Sequence[float]) -> MemberLoad:
    rates = demand.bucket_rates_rps * np.asarray(shares, dtype=float)
    cap = np.asarray(member.capacity_rps, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(rates > 0, rates / np.where(cap > 0, cap, np.nan), 0.0)
    load = float(np.nansum(per)) if np.all(np.isfinite(per[rates > 0])) else float("inf")
    return MemberLoad(demand.name, tuple(float(s) for s in shares), float(rates.sum()), load)


def fleet_from_allocation(
    name: str, demands: Sequence[Demand], candidates: Sequence[Candidate], alloc: Allocation
) -> Fleet:
    by_key = {c.key: c for c in candidates}
    dmap = {d.name: d for d in demands}
    groups = []
    for key, n in alloc.replicas.items():
        c = by_key[key]
        loads = []
        for m in c.members:
            d = dmap[m.deployment]
            shares = [alloc.shares.get((d.name, b, key), 0.0) for b in range(len(d.buckets))]
            loads.append(member_load(d, m, shares))
        groups.append(FleetGroup(c, n, tuple(loads)))
    groups.sort(key=lambda g: (g.loads[0].deployment, -g.usd_per_hour, g.candidate.key))
    return Fleet(name, tuple(groups))


def whole_traffic_fleet(
    name: str,
    demands: Sequence[Demand],
    picks: Sequence[tuple[Candidate, int]],
    capacity_of: Sequence[Member] | None = None,
) -> Fleet:
    """One group per deployment carrying all its traffic (the current fleet, the transplant).

    ``capacity_of``: per pick, the engine whose capacity the load is measured against. For a
    fleet as written that is the same hardware with a batching limit sized by the TPOT target,
    so that utilization means the share of what the GPUs bought could serve under the SLO
    (a batch-1 fleet is then, rightly, a few percent utilized).
    """
    dmap = {d.name: d for d in demands}
    groups = []
    for i, (c, n) in enumerate(picks):
        d = dmap[c.members[0].deployment]
        ref = capacity_of[i] if capacity_of is not None else c.members[0]
        groups.append(FleetGroup(c, n, (member_load(d, ref, [1.0] * len(d.buckets)),)))
    return Fleet(name, tuple(groups))
