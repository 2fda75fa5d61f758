"""Autoscaling policies side by side on every named scenario: the table in RESULTS.md.

Usage: .venv/bin/python benchmarks/policies.py [--spec examples/autoscale-chat.yaml]
       [--duration 1800] [--lead-time 120] [--seed 0] [--scenarios a,b,...]
Writes benchmarks/out/policies.json, one HTML report per scenario under
benchmarks/out/policies/, and prints a Markdown table per scenario.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _cli import positive, run  # beside this file
from gpuwise.report import compare_policies, write_html
from gpuwise.resolve import resolve_spec
from gpuwise.workload.scenarios import get_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = (
    "double-in-5-min",
    "flash-crowd-5x",
    "diurnal-compressed",
    "azure-conv",
    "azure-code",
    "node-failure-at-peak",
    "spot-preemption-wave",
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(ROOT / "examples" / "autoscale-chat.yaml"))
    ap.add_argument("--duration", type=positive, default=1800.0)
    ap.add_argument("--lead-time", type=positive, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = ap.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s.strip()]
    for sc in scenarios:  # every name checked before anything is written
        get_scenario(sc)
    out = ROOT / "benchmarks" / "out"
    r = resolve_spec(args.spec)
    (out / "policies").mkdir(parents=True, exist_ok=True)
    docs = []
    for sc in scenarios:
        t0 = time.perf_counter()
        c = compare_policies(
            r, scenario=sc, duration_s=args.duration, seed=args.seed, lead_time_s=args.lead_time
        )
        wall = time.perf_counter() - t0
        write_html(c, out / "policies" / f"{sc}.html", "benchmarks/policies.py")
        doc = c.as_dict()
        doc["wall_s"] = wall
        docs.append(doc)
        print(f"\n### {sc} ({wall:.0f} s to simulate all policies)\n")
        print(
            "| policy | inside SLO | TTFT ok | TPOT ok | failed | timed out | TTFT p95 s | "
            "TTFT p99 s | GPU-h | cost | vs oracle | $/1M tok | $/1M in SLO | scale events | "
            "gpuwise |"
        )
        print("|---|" + "---:|" * 13 + "---|")
        dom = c.dominance()
        for row in c.rows:
            verdict = "" if row.policy in ("gpuwise", "oracle") else dom[row.policy]
            print(
                f"| {row.policy} | {row.slo_attainment:.2%} | {row.ttft_attainment:.2%} | "
                f"{row.tpot_attainment:.2%} | {row.failed:,} | {row.timed_out:,} | "
                f"{row.ttft_p95_s:.2f} | {row.ttft_p99_s:.2f} | {row.gpu_hours:.2f} | "
                f"${row.cost_usd:.2f} | {row.cost_vs_oracle:.2f}x | "
                f"${row.usd_per_1m_tokens:.2f} | ${row.usd_per_1m_tokens_in_slo:.2f} | "
                f"{row.scale_events} | {verdict} |"
            )
    (out / "policies.json").write_text(json.dumps(docs, indent=2) + "\n")


if __name__ == "__main__":
    run(main)
