"""Fixed fleets of several sizes on one scenario: what attainment each size buys, at what cost.

The frontier a policy cannot beat without foresight of the bursts (RESULTS.md, "Autoscaling
policies side by side"). Same lifecycle, lead time and seed as benchmarks/policies.py.

Usage: .venv/bin/python benchmarks/fixed_fleets.py [--spec examples/autoscale-chat.yaml]
       [--scenario azure-code] [--replicas 3,5,8,12,16,24] [--duration 1800]
       [--lead-time 120] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _cli import positive, run  # beside this file
from gpuwise.policy import FixedPolicy
from gpuwise.report.compare import OBSERVE_ONLY_S, scenario_deployment, summarize_run
from gpuwise.resolve import resolve_spec
from gpuwise.sim.autoscale import simulate_autoscaled
from gpuwise.sim.lifecycle import LifecycleConfig
from gpuwise.workload import generate
from gpuwise.workload.scenarios import get_scenario

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(ROOT / "examples" / "autoscale-chat.yaml"))
    ap.add_argument("--scenario", default="azure-code")
    ap.add_argument("--replicas", default="3,5,8,12,16,24")
    ap.add_argument("--duration", type=positive, default=1800.0)
    ap.add_argument("--lead-time", type=positive, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sc = get_scenario(args.scenario)
    rd = scenario_deployment(resolve_spec(args.spec), sc, args.duration, None)
    pricing = rd.deployment.pricing
    cfg = LifecycleConfig().with_lead_time(rd.perf, rd.gpu.name, pricing, args.lead_time)
    assert rd.deployment.traffic is not None
    requests = generate(rd.deployment.traffic, args.duration, args.seed)
    print(f"### fixed fleets on {args.scenario}\n")
    print("| replicas | inside SLO | TTFT ok | TPOT ok | timed out | cost |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.replicas.split(",")):
        run = simulate_autoscaled(
            rd,
            requests,
            FixedPolicy(n),
            duration_s=args.duration,
            seed=args.seed,
            initial_replicas=n,
            lifecycle=cfg,
            faults=sc.fault_events(args.duration),
            pricing=pricing,
            observe_only_s=OBSERVE_ONLY_S,
        )
        row = summarize_run(run)
        print(
            f"| {n} | {row.slo_attainment:.2%} | {row.ttft_attainment:.2%} | "
            f"{row.tpot_attainment:.2%} | {row.timed_out:,} | ${row.cost_usd:.2f} |"
        )


if __name__ == "__main__":
    run(main)
