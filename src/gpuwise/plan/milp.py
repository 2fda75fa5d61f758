"""The cheapest fleet as a mixed-integer program (HiGHS through ``scipy.optimize.milp``).

Mélange's formulation, generalized. Integer ``n[c]``: replicas of candidate c (its price per hour
is the objective). Continuous ``x[d,b,c]`` in [0, 1]: the share of deployment d's bucket b that c
serves. Every bucket is served in full (sum over c of x = 1); a replica's load is the sum over
what it serves of rate / capacity, and n[c] replicas carry at most n[c] of it. A packed candidate
is one GPU whose engines each hold a fixed share of its memory and of its compute (time-shared),
and each engine's load must fit its own share on the same n[c] GPUs. Spot candidates
may serve at most ``spot_max_share`` of each deployment's rate, and each deployment keeps its
minimum replica count.

Why continuous shares rather than Mélange's request slices: they are the same thing at infinite
slicing, and give the solver fewer integers.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from gpuwise.plan.candidates import Candidate, Demand

MAX_REPLICAS_PER_CANDIDATE = 10_000
MIP_REL_GAP = 1e-4  # 0.01% of the bill: far below the precision of any price in the catalog


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the duration (the C++ solver writes there)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass(frozen=True)
class Allocation:
    """The solver's answer: replicas per candidate key and the shares of each bucket."""

    replicas: dict[str, int]
    shares: dict[tuple[str, int, str], float]  # (deployment, bucket, candidate key) -> share
    usd_per_hour: float
    solve_s: float
    variables: int
    constraints: int


@dataclass(frozen=True)
class Infeasible:
    """No fleet exists: the buckets that no candidate can serve under the SLO, by deployment."""

    uncovered: dict[str, list[int]]
    reason: str


def solve_fleet(
    demands: Sequence[Demand],
    candidates: Sequence[Candidate],
    *,
    spot_max_share: float = 0.0,
    time_limit_s: float = 30.0,
) -> Allocation | Infeasible:
    t0 = time.perf_counter()
    cands = list(candidates)
    nc = len(cands)
    # x variables: one per (deployment, bucket, candidate) with positive capacity
    xs: list[tuple[str, int, int, float]] = []  # (deployment, bucket, cand index, load per share)
    uncovered: dict[str, list[int]] = {}
    for d in demands:
        for b, bk in enumerate(d.buckets):
            found = False
            for ci, c in enumerate(cands):
                m = c.member(d.name)
                if m is None or m.capacity_rps[b] <= 0:
                    continue
                found = True
                xs.append((d.name, b, ci, bk.rate_rps / m.capacity_rps[b]))
            if not found and bk.rate_rps > 0:
                uncovered.setdefault(d.name, []).append(b)
    if uncovered:
        return Infeasible(uncovered, "no candidate meets the SLO for some request sizes")
    nx = len(xs)
    nvar = nc + nx
    rows, cols, vals, lb, ub = [], [], [], [], []
    r = 0
    # each bucket served in full
    bucket_row: dict[tuple[str, int], int] = {}
    for d in demands:
        for b in range(len(d.buckets)):
            bucket_row[(d.name, b)] = r
            lb.append(1.0)
            ub.append(1.0)
            r += 1
    for j, (dn, b, _ci, _load) in enumerate(xs):
        rows.append(bucket_row[(dn, b)])
        cols.append(nc + j)
        vals.append(1.0)
    # load on each engine of a candidate <= its replicas (a packed GPU's engines each get a
    # fixed share of its compute, so each engine's load is bounded on its own)
    engine_row: dict[tuple[int, str], int] = {}
    for ci, c in enumerate(cands):
        for m in c.members:
            engine_row[(ci, m.deployment)] = r
            rows.append(r)
            cols.append(ci)
            vals.append(-1.0)
            lb.append(-np.inf)
            ub.append(0.0)
            r += 1
    for j, (dn, _b, ci, load) in enumerate(xs):
        rows.append(engine_row[(ci, dn)])
        cols.append(nc + j)
        vals.append(load)
    # spot share per deployment
    if spot_max_share < 1.0 and any(c.pricing == "spot" for c in cands):
        for d in demands:
            total = d.rate_rps
            rate = {b: bk.rate_rps for b, bk in enumerate(d.buckets)}
            any_term = False
            for j, (dn, b, ci, _load) in enumerate(xs):
                if dn == d.name and cands[ci].pricing == "spot":
                    rows.append(r)
                    cols.append(nc + j)
                    vals.append(rate[b])
                    any_term = True
            if any_term:
                lb.append(-np.inf)
                ub.append(spot_max_share * total)
                r += 1
    # minimum replicas per deployment
    for d in demands:
        need = d.min_replicas
        if need <= 0:
            continue
        for ci, c in enumerate(cands):
            if c.member(d.name) is not None:
                rows.append(r)
                cols.append(ci)
                vals.append(1.0)
        lb.append(float(need))
        ub.append(np.inf)
        r += 1
    a = coo_matrix((vals, (rows, cols)), shape=(r, nvar)).tocsr()
    cost = np.zeros(nvar)
    cost[:nc] = [c.usd_per_hour for c in cands]
    integrality = np.zeros(nvar)
    integrality[:nc] = 1
    lo = np.zeros(nvar)
    hi = np.concatenate([np.full(nc, MAX_REPLICAS_PER_CANDIDATE), np.ones(nx)])
    with _quiet_stdout():  # HiGHS prints solver notes on fd 1, which would break --json output
        res = milp(
            cost,
            constraints=LinearConstraint(a, np.array(lb), np.array(ub)),
            integrality=integrality,
            bounds=Bounds(lo, hi),
            options={"time_limit": time_limit_s, "mip_rel_gap": MIP_REL_GAP, "presolve": True},
        )
    solve_s = time.perf_counter() - t0
    if res.x is None:
        return Infeasible({}, f"the solver found no fleet ({res.message})")
    n = np.round(res.x[:nc]).astype(int)
    replicas = {cands[i].key: int(n[i]) for i in range(nc) if n[i] > 0}
    shares: dict[tuple[str, int, str], float] = {}
    for j, (dn, b, ci, _load) in enumerate(xs):
        v = float(res.x[nc + j])
        if v > 1e-7:
            shares[(dn, b, cands[ci].key)] = v
    usd = float(sum(cands[i].usd_per_hour * n[i] for i in range(nc)))
    return Allocation(replicas, shares, usd, solve_s, nvar, r)
