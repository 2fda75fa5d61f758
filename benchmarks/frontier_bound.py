"""The cheapest any policy could be, even one that knows the future: a bound on the frontier.

Pareto dominance of every anchor needs one run that is at least as good as the best anchor's
attainment and no dearer than the cheapest anchor. Where the anchors spread far apart (the
Azure code trace: one cheap policy that serves few requests, one dear one that serves most),
that corner may be out of reach for every policy. This script computes a lower bound on the
cost of reaching each attainment, for a clairvoyant policy in a relaxed world:

* time in bins of ``--bin-s``; a bin whose arrival rate is spread over ``a`` ready replicas
  keeps the share of its requests inside the SLO that one replica keeps in a steady load test
  at that per-replica rate (the best of two draws; 1 below the load-tested limit ``rate``):
  no backlog carried between bins, no bursts, no join transients, no router imbalance, and
  every request of a bin at or below the limit counted as inside; each relaxation favours the
  policy;
* a replica is billed while ready, plus one lead time of billing each time one is added (from
  request to ready, as the lifecycle bills); going down is free and instant; the fleet starts
  with the same ready replicas as ``compare-policies``, holds no more until the earliest a
  replica asked for at the end of the observe-only window could be ready (its provisioning
  drawn as zero: image pull, weight load and warm-up only), and never goes below the
  deployment's minimum;
* the policy knows every arrival in advance.

Solved exactly by dynamic programming over (bin, replicas) for each Lagrange multiplier (the
dollars one request inside the SLO is worth), which traces the lower convex hull of the
reachable (cost, attainment) pairs; any real policy lies on or above it (up to what the
load test's curve misses: a fleet of many replicas multiplexes a little better than one).
``--rate-from model`` instead counts a bin fully inside whenever the replicas could serve it at
the capacity model's limit, which one replica does not reach (on the code trace it keeps 75%
of requests inside the SLO at 80% of it): a looser bound, shown for contrast.

Usage: .venv/bin/python benchmarks/frontier_bound.py [--scenario azure-code] [--seed 0]
       [--rate-from load-test|model] [--bin-s 10] [--lead-time 120]
Prints a table of the bound at several attainments next to the anchors' results (run with
``compare-policies`` for the same scenario and seed) and writes benchmarks/out/frontier_<s>.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from _cli import positive, run  # beside this file
from gpuwise.report.compare import (
    ANCHORS,
    OBSERVE_ONLY_S,
    compare_policies,
    scenario_deployment,
)
from gpuwise.resolve import ResolvedDeployment, resolve_spec
from gpuwise.sim.lifecycle import LifecycleConfig
from gpuwise.sim.loadtest import attainment_at
from gpuwise.workload import Requests, generate
from gpuwise.workload.scenarios import get_scenario

ROOT = Path(__file__).resolve().parents[1]


def best_path(
    counts: np.ndarray,
    share_in: np.ndarray,
    bin_s: float,
    lead_s: float,
    usd_per_hour: float,
    initial: int,
    lo: int,
    hi: int,
    usd_per_request: float,
    ready_cap: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float]:
    """(ready replicas per bin, cost, requests inside the SLO) of the fleet path maximizing
    value - cost, where each request inside the SLO is worth ``usd_per_request``; exact, by
    dynamic programming. ``share_in[k, a]`` is the share of bin ``k``'s requests inside the SLO
    with ``a`` ready; ``ready_cap[k]``, if given, is the most replicas bin ``k`` can have ready.
    The path is also a plan: ``clairvoyant_frontier.py`` runs it in the
    simulator, where backlog and bursts are real."""
    states = np.arange(hi + 1)
    price_s = usd_per_hour / 3600.0
    add = np.maximum(states[None, :] - states[:, None], 0) * lead_s * price_s  # [from, to]
    v = np.full(hi + 1, -np.inf)
    v[initial] = 0.0
    cost = np.zeros(hi + 1)
    served = np.zeros(hi + 1)
    back = np.zeros((counts.size, hi + 1), dtype=np.int64)
    for k in range(counts.size):
        total = v[:, None] - add  # value of moving from each state to each state
        best_from = np.argmax(total, axis=0)
        back[k] = best_from
        v_new = total[best_from, states]
        cost_new = cost[best_from] + add[best_from, states]
        inside = counts[k] * share_in[k]
        gain = inside * usd_per_request
        run = states * bin_s * price_s
        v_new = v_new + gain - run
        v_new[states < lo] = -np.inf
        if ready_cap is not None:
            v_new[states > ready_cap[k]] = -np.inf
        cost = cost_new + run
        served = served[best_from] + inside
        v = v_new
    j = int(np.argmax(v))
    path = np.empty(counts.size, dtype=np.int64)
    for k in range(counts.size - 1, -1, -1):
        path[k] = j
        j = int(back[k, j])
    return path, float(cost[path[-1]]), float(served[path[-1]])


def attainment_curve(
    rd: ResolvedDeployment, reqs: Requests, tested_rps: float
) -> tuple[np.ndarray, np.ndarray]:
    """One replica's share of requests inside the SLO by steady per-replica rate, from the load
    test's own simulations (the best of two draws, never better at a higher rate)."""
    xs = np.array([1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0]) * tested_rps
    ys = [
        max(attainment_at(rd, reqs.input_tokens, reqs.output_tokens, x, seed=d) for d in (0, 1))
        for x in xs
    ]
    xs, ys = np.concatenate([[0.0], xs]), np.concatenate([[1.0], ys])
    return xs, np.minimum.accumulate(ys)


def share_table(
    lam_rps: np.ndarray, hi: int, xs: np.ndarray, ys: np.ndarray, scale: float = 1.0
) -> np.ndarray:
    """``[bin, a]``: the curve's share inside the SLO with bin rate ``lam_rps`` over ``a`` ready
    replicas; ``scale`` > 1 plans as if each replica carried that much more (headroom for what
    the curve leaves out)."""
    per = lam_rps[:, None] / np.maximum(np.arange(hi + 1), 1)[None, :]
    share_in = np.interp(per * scale, xs, ys, right=float(ys[-1]))
    share_in[:, 0] = np.where(lam_rps > 0, 0.0, 1.0)
    return share_in


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(ROOT / "examples" / "autoscale-chat.yaml"))
    ap.add_argument("--scenario", default="azure-code")
    ap.add_argument("--duration", type=positive, default=1800.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lead-time", type=positive, default=120.0)
    ap.add_argument("--bin-s", type=positive, default=10.0)
    ap.add_argument("--rate-from", choices=("load-test", "model"), default="load-test")
    args = ap.parse_args()
    r = resolve_spec(args.spec)
    # the comparison first: its load test, starting fleet and lead time are the bound's too
    comp = compare_policies(
        r,
        scenario=args.scenario,
        duration_s=args.duration,
        seed=args.seed,
        lead_time_s=args.lead_time,
        policies=("gpuwise", *ANCHORS),
    )
    rd = scenario_deployment(r, get_scenario(args.scenario), args.duration, None)
    assert rd.deployment.traffic is not None
    reqs = generate(rd.deployment.traffic, args.duration, args.seed)
    tested = comp.calibration.replica_max_rps
    model_rps = comp.calibration.replica_model_rps
    rate = tested if args.rate_from == "load-test" else model_rps
    lead = comp.cold_lead_s
    initial = comp.initial_replicas
    ready_from = OBSERVE_ONLY_S + LifecycleConfig().fixed_lead_s(rd.perf)
    nb = math.ceil(args.duration / args.bin_s)
    k = np.minimum((reqs.arrival_s // args.bin_s).astype(np.int64), nb - 1)
    counts = np.bincount(k, minlength=nb).astype(float)
    hi = rd.deployment.replicas.max
    lam = counts / args.bin_s
    ready_cap = np.where((np.arange(nb) + 1) * args.bin_s <= ready_from, initial, hi)
    if args.rate_from == "model":
        per = lam[:, None] / np.maximum(np.arange(hi + 1), 1)[None, :]
        share_in = (per <= rate + 1e-9).astype(float)
        share_in[:, 0] = np.where(lam > 0, 0.0, 1.0)
    else:  # one replica's attainment curve above its limit, from the load test's own sims
        xs, ys = attainment_curve(rd, reqs, tested)
        share_in = share_table(lam, hi, xs, ys)
        print(
            "one replica's attainment by rate: "
            + ", ".join(f"{x:.1f} req/s {y:.1%}" for x, y in zip(xs[1:], ys[1:], strict=True))
        )
    n = len(reqs)
    hull = []
    for mu in np.geomspace(1e-6, 1e-1, 240):
        _, c, s = best_path(
            counts,
            share_in,
            args.bin_s,
            lead,
            rd.usd_per_replica_hour,
            initial,
            rd.deployment.replicas.min,
            hi,
            float(mu),
            ready_cap,
        )
        hull.append((float(mu), c, s / n))

    def bound(att: float) -> float:
        # any run with attainment att and cost C has mu * att * n - C <= V*(mu) for every mu
        return max(0.0, max(mu * att * n - (mu * a * n - c) for mu, c, a in hull))

    print(
        f"\n{args.scenario}, seed {args.seed}: {n:,} requests, per-replica rate {rate:.2f} req/s "
        f"({args.rate_from}; load test {tested:.2f}, model {model_rps:.2f}), lead "
        f"{lead:.0f} s, ${rd.usd_per_gpu_hour:.2f}/GPU-hour, starting from {initial} ready and no "
        f"more before {ready_from:.0f} s\n"
    )
    print("| policy | inside SLO | cost | clairvoyant lower bound at that attainment |")
    print("|---|---:|---:|---:|")
    rows = []
    for row in comp.rows:
        lb = bound(row.slo_attainment)
        rows.append({**row.as_dict(), "bound_usd": lb})
        print(f"| {row.policy} | {row.slo_attainment:.2%} | ${row.cost_usd:.2f} | ${lb:.2f} |")
    anchors = [x for x in comp.rows if x.policy in ANCHORS]
    best = max(anchors, key=lambda x: x.slo_attainment)
    cheap = min(anchors, key=lambda x: x.cost_usd)
    corner = bound(best.slo_attainment)
    verdict = "reachable in the bound" if corner <= cheap.cost_usd else "out of reach"
    print(
        f"\nDominating every anchor needs >= {best.slo_attainment:.2%} ({best.policy}) at <= "
        f"${cheap.cost_usd:.2f} ({cheap.policy}); the clairvoyant bound at "
        f"{best.slo_attainment:.2%} is ${corner:.2f}: {verdict}."
    )
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "scenario": args.scenario,
        "seed": args.seed,
        "rate_rps": rate,
        "rate_from": args.rate_from,
        "lead_s": lead,
        "ready_from_s": ready_from,
        "hull": [{"usd_per_request": m, "cost_usd": c, "attainment": a} for m, c, a in hull],
        "rows": rows,
        "corner_bound_usd": corner,
        "cheapest_anchor_usd": cheap.cost_usd,
        "best_anchor_attainment": best.slo_attainment,
    }
    path = out / f"frontier_{args.scenario}_{args.rate_from}_seed{args.seed}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    run(main)
