"""What perfect foresight buys on one scenario, measured in the lifecycle simulator itself.

``frontier_bound.py`` bounds every policy in a relaxed world (no backlog, no bursts inside a
bin, the observe-only window at its most lenient). This script asks the complementary question
in the real one: run policies that know every future arrival under the comparison's own rules
(same requests, lifecycle, starting fleet, two-minute observe-only window, lead time), for a
grid of their knobs, and report the cost/attainment frontier those runs trace. Two families:

**The oracle** (the comparison's own lower-bound policy), on two knobs:

* ``bin_s``: how finely it sees the future rate (the comparison's oracle uses 30-s bins; finer
  bins see the spikes inside them, and buy replicas for them);
* ``share``: the per-replica rate it plans at, as a multiple of the one-replica load test's limit
  (1 is the comparison's oracle; below 1 buys headroom, above 1 runs replicas overloaded).

Each variant asks, every 5 s, for what the busiest bin between now and one lead time (plus a tick)
ahead needs, and lets replicas go as soon as the load has passed.

**Planned paths**: the fleet path ``frontier_bound.py``'s dynamic programme finds best in its
relaxed world (which bins are worth serving at what fleet, each addition billed a lead time),
followed in the simulator by the oracle's own rule: every 5 s ask for the most the path holds
between now and one lead time ahead. Knobs: the bin (``--plan-bins``), the dollars a request
inside the SLO is worth (``--plan-values``: the trade-off between cost and attainment), and how
much heavier than the load test's curve each replica's load is taken to be (``--plan-scales``:
headroom for the backlog and bursts the relaxed world leaves out). It sees the spikes that are
cheap to serve and lets the others go, which a per-bin rule cannot.

Neither family is a bound (a cleverer clairvoyant may do better), but together they answer
"would knowing the future reach the corner every anchor leaves open?" with runs of the same
simulator the table comes from.

Usage: .venv/bin/python benchmarks/clairvoyant_frontier.py [--scenario azure-code] [--seed 0]
       [--bins 5,10,20,30] [--shares 0.7,0.85,1,1.2,1.5,2]
       [--plan-bins 5,10] [--plan-values 0.0005,0.0007,0.001,0.0015,0.002,0.005]
       [--plan-scales 1,1.15,1.3,1.5]
Prints the runs, the frontier and the anchors' corner, and writes
benchmarks/out/clairvoyant_<scenario>_seed<seed>.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from _cli import positive, positives, run  # beside this file
from frontier_bound import attainment_curve, best_path, share_table  # beside this file
from gpuwise.policy import OraclePolicy
from gpuwise.report.compare import ANCHORS, compare_policies, scenario_deployment
from gpuwise.resolve import resolve_spec
from gpuwise.sim.lifecycle import LifecycleConfig
from gpuwise.workload import generate
from gpuwise.workload.scenarios import get_scenario

ROOT = Path(__file__).resolve().parents[1]


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, attainment) points no other point dominates, cheapest first."""
    out: list[tuple[float, float]] = []
    for cost, att in sorted(points):
        if not out or att > out[-1][1]:
            out.append((cost, att))
    return out


def cost_at(front: list[tuple[float, float]], att: float) -> float:
    """The cheapest frontier cost reaching ``att``, interpolated between neighbouring runs."""
    for (c0, a0), (c1, a1) in zip(front, front[1:], strict=False):
        if a0 < att <= a1:
            return c0 + (c1 - c0) * (att - a0) / (a1 - a0)
    if front and att <= front[0][1]:
        return front[0][0]
    return math.inf


def attainment_at(front: list[tuple[float, float]], usd: float) -> float:
    """The best frontier attainment at no more than ``usd`` (no interpolation: a run)."""
    best = [a for c, a in front if c <= usd]
    return max(best) if best else math.nan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(ROOT / "examples" / "autoscale-chat.yaml"))
    ap.add_argument("--scenario", default="azure-code")
    ap.add_argument("--duration", type=positive, default=1800.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lead-time", type=positive, default=120.0)
    ap.add_argument("--bins", type=positives, default=positives("5,10,20,30"))
    ap.add_argument("--shares", type=positives, default=positives("0.7,0.85,1,1.2,1.5,2"))
    ap.add_argument("--plan-bins", type=positives, default=positives("5,10"))
    ap.add_argument(
        "--plan-values", type=positives, default=positives("0.0005,0.0007,0.001,0.0015,0.002,0.005")
    )
    ap.add_argument("--plan-scales", type=positives, default=positives("1,1.15,1.3,1.5"))
    args = ap.parse_args()
    r = resolve_spec(args.spec)
    rd = scenario_deployment(r, get_scenario(args.scenario), args.duration, None)
    assert rd.deployment.traffic is not None
    reqs = generate(rd.deployment.traffic, args.duration, args.seed)
    arrivals = reqs.arrival_s
    cfg = LifecycleConfig().with_lead_time(
        rd.perf, rd.gpu.name, rd.deployment.pricing, args.lead_time
    )
    lead_p90 = cfg.cold_lead_s(rd.perf, rd.gpu.name, rd.deployment.pricing, q=0.9)
    # one comparison of the anchors first: its load test gives the limit the shares multiply
    comp = compare_policies(
        r,
        scenario=args.scenario,
        duration_s=args.duration,
        seed=args.seed,
        lead_time_s=args.lead_time,
        policies=(*ANCHORS, "oracle"),
    )
    limit = comp.calibration.replica_max_rps
    variants = {}
    for bin_s in args.bins:
        nb = max(1, math.ceil(args.duration / bin_s)) + 1
        k = np.minimum((arrivals // bin_s).astype(np.int64), nb - 1)
        rate = np.bincount(k, minlength=nb) / bin_s
        for share in args.shares:
            name = f"oracle bin {bin_s:g} s, share {share:g}"
            variants[name] = (
                {"family": "oracle", "bin_s": bin_s, "share": share},
                OraclePolicy(rate, bin_s, limit * share, lead_p90),
            )
    hi = rd.deployment.replicas.max
    xs, ys = attainment_curve(rd, reqs, limit)
    for bin_s in args.plan_bins:
        nb = max(1, math.ceil(args.duration / bin_s))
        k = np.minimum((arrivals // bin_s).astype(np.int64), nb - 1)
        counts = np.bincount(k, minlength=nb).astype(float)
        for scale in args.plan_scales:
            share_in = share_table(counts / bin_s, hi, xs, ys, scale)
            for value in args.plan_values:
                path, _, _ = best_path(
                    counts,
                    share_in,
                    bin_s,
                    comp.cold_lead_s,
                    rd.usd_per_replica_hour,
                    comp.initial_replicas,
                    rd.deployment.replicas.min,
                    hi,
                    value,
                )
                name = f"planned bin {bin_s:g} s, scale {scale:g}, ${value:g}/request"
                knobs = {
                    "family": "planned",
                    "bin_s": bin_s,
                    "scale": scale,
                    "usd_per_request": value,
                }
                # a path of replicas is the oracle's rate at one request per second a replica:
                # it asks for the most the path holds within a lead time, as the oracle does
                plan = OraclePolicy(path.astype(float), bin_s, 1.0, lead_p90, name="planned")
                variants[name] = (knobs, plan)
    runs = compare_policies(
        r,
        scenario=args.scenario,
        duration_s=args.duration,
        seed=args.seed,
        lead_time_s=args.lead_time,
        policies=(),
        extra_policies={n: v[1] for n, v in variants.items()},
    )
    print(
        f"\n{args.scenario}, seed {args.seed}: one replica's load-tested limit {limit:.2f} req/s, "
        f"lead {comp.cold_lead_s:.0f} s, starting from {comp.initial_replicas} ready\n"
    )
    print("| policy | inside SLO | cost |")
    print("|---|---:|---:|")
    for row in comp.rows:
        print(f"| {row.policy} | {row.slo_attainment:.2%} | ${row.cost_usd:.2f} |")
    for row in runs.rows:
        print(f"| {row.policy} | {row.slo_attainment:.2%} | ${row.cost_usd:.2f} |")
    anchors = [x for x in comp.rows if x.policy in ANCHORS]
    best = max(anchors, key=lambda x: x.slo_attainment)
    cheap = min(anchors, key=lambda x: x.cost_usd)
    print(
        f"\nThe corner every anchor leaves: >= {best.slo_attainment:.2%} ({best.policy}) at <= "
        f"${cheap.cost_usd:.2f} ({cheap.policy})."
    )
    families: dict[str, dict[str, object]] = {}
    for family in ("oracle", "planned", "all"):
        front = frontier(
            [
                (x.cost_usd, x.slo_attainment)
                for x in runs.rows
                if family == "all" or variants[x.policy][0]["family"] == family
            ]
        )
        need = cost_at(front, best.slo_attainment)
        reach = attainment_at(front, cheap.cost_usd)
        families[family] = {
            "frontier": [{"cost_usd": c, "slo_attainment": a} for c, a in front],
            "usd_at_corner_attainment": need if math.isfinite(need) else None,
            "attainment_at_corner_usd": reach if math.isfinite(reach) else None,
        }
        at_att = (
            f"{best.slo_attainment:.2%} from ${need:.2f} (interpolated, "
            f"{need / cheap.cost_usd:.2f}x {cheap.policy}'s cost)"
            if math.isfinite(need)
            else f"{best.slo_attainment:.2%} never reached"
        )
        at_usd = (
            f"the best at ${cheap.cost_usd:.2f} or less is {reach:.2%}"
            if math.isfinite(reach)
            else f"none at ${cheap.cost_usd:.2f} or less"
        )
        print(
            f"{family} runs: {at_att}; {at_usd}; frontier "
            + ", ".join(f"{a:.2%} at ${c:.2f}" for c, a in front)
        )
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "scenario": args.scenario,
        "seed": args.seed,
        "limit_rps": limit,
        "lead_s": comp.cold_lead_s,
        "anchors": [x.as_dict() for x in comp.rows],
        "clairvoyant": [{**variants[x.policy][0], **x.as_dict()} for x in runs.rows],
        "corner": {
            "attainment": best.slo_attainment,
            "attainment_of": best.policy,
            "usd": cheap.cost_usd,
            "usd_of": cheap.policy,
        },
        "families": families,  # "oracle", "planned", and "all" runs together
    }
    path = out / f"clairvoyant_{args.scenario}_seed{args.seed}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    run(main)
