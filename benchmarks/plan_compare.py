"""gpuwise's plan against Mélange's formulation and the usual baselines, on three fleets.

Each fleet is planned once (``gpuwise.plan.plan``): the same demands, candidates, capacities and
simulation check feed every formulation, so the differences are the formulations' own.

- ``packing``: examples/thirty-k-fleet.yaml, three small deployments on batch-1 H100s; packing
  them onto one GPU is where gpuwise beats Mélange (which never co-locates models).
- ``heterogeneity``: one 8B chat deployment, 25 req/s, a long-tailed prompt mix (lognormal mean
  1,500, cv 2.5), TTFT 1 s; Mélange's own GPU set (L4, A10G, L40S, A100, H100), no
  quantization: short prompts go to a cheaper GPU, long ones to an H100.
- ``neither``: one 70B deployment, 15 req/s of near-uniform requests: one GPU type serves every
  size best and nothing small is left to pack, so gpuwise, Mélange and the best single type
  coincide.

Checks (the script exits 1 if one fails): gpuwise never costs more than Mélange; it costs less
on ``packing``; Mélange costs less than the best single type on ``heterogeneity``; all three
coincide on ``neither``; every compared fleet except the spec as written passed its simulation.

    python benchmarks/plan_compare.py            # table on stdout, JSON in benchmarks/out/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gpuwise.plan import PlanOptions, plan
from gpuwise.resolve import resolve, resolve_spec
from gpuwise.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "plan_compare.json"

HETEROGENEOUS = {
    "name": "heterogeneity",
    "slo": {"percentile": 95, "ttft_s": 1.0, "tpot_s": 0.06},
    "deployments": [
        {
            "name": "chat-and-docs",
            "model": "llama-3.1-8b",
            "gpu": "h100-sxm",
            "limits": {"max_model_len": 16384},
            "replicas": {"min": 1, "max": 4, "initial": 3},
            "traffic": {
                "arrival": {"kind": "poisson", "rate_rps": 25},
                "input_tokens": {"kind": "lognormal", "mean": 1500, "cv": 2.5, "max_tokens": 14000},
                "output_tokens": {"kind": "lognormal", "mean": 150, "cv": 1.5, "max_tokens": 2000},
            },
        }
    ],
}
NEITHER = {
    "name": "neither",
    "slo": {"percentile": 95, "ttft_s": 1.5, "tpot_s": 0.05},
    "deployments": [
        {
            "name": "assistant",
            "model": "llama-3.1-70b",
            "gpu": "h100-sxm",
            "tp": 2,
            "replicas": {"min": 2, "max": 12, "initial": 8},
            "traffic": {
                "arrival": {"kind": "poisson", "rate_rps": 15},
                "input_tokens": {"kind": "uniform", "low": 900, "high": 1100},
                "output_tokens": {"kind": "uniform", "low": 180, "high": 220},
            },
        }
    ],
}
MELANGE_GPUS = ("l4", "a10g", "l40s", "a100-80gb", "h100-sxm")


def fleets() -> list[tuple[str, Any, PlanOptions]]:
    return [
        ("packing", resolve_spec(ROOT / "examples" / "thirty-k-fleet.yaml"), PlanOptions()),
        (
            "heterogeneity",
            resolve(parse_spec(HETEROGENEOUS)),
            PlanOptions(gpus=MELANGE_GPUS, quantize=False),
        ),
        ("neither", resolve(parse_spec(NEITHER)), PlanOptions()),
    ]


def run() -> tuple[list[dict[str, Any]], list[str]]:
    rows, failures = [], []
    for key, resolved, options in fleets():
        t0 = time.perf_counter()
        p = plan(resolved, options)
        wall = time.perf_counter() - t0
        single = p.single_gpu.fleet.usd_per_month if p.single_gpu else float("nan")
        row = {
            "fleet": key,
            "current_usd_per_month": round(p.current.fleet.usd_per_month, 2),
            "transplant_usd_per_month": round(p.transplant.fleet.usd_per_month, 2),
            "single_gpu": p.single_gpu.title if p.single_gpu else None,
            "single_gpu_usd_per_month": round(single, 2),
            "melange_usd_per_month": round(p.melange.fleet.usd_per_month, 2),
            "gpuwise_usd_per_month": round(p.fleet.usd_per_month, 2),
            "gpuwise_gpus": p.fleet.gpus,
            "packed_gpus": sum(g.replicas for g in p.fleet.groups if g.candidate.packed),
            "gpu_types": sorted({g.candidate.gpu for g in p.fleet.groups}),
            "melange_gpu_types": sorted({g.candidate.gpu for g in p.melange.fleet.groups}),
            "verified": {
                "gpuwise": p.verification.ok,
                "melange": p.melange.verification.ok,
                "single_gpu": p.single_gpu.verification.ok if p.single_gpu else None,
                "transplant": p.transplant.verification.ok,
            },
            "milp_s": round(p.stats.solve_s, 3),
            "plan_wall_s": round(wall, 2),
        }
        rows.append(row)
        g, m = row["gpuwise_usd_per_month"], row["melange_usd_per_month"]
        if g > m + 0.01:
            failures.append(f"{key}: gpuwise ${g:,.0f} costs more than Mélange ${m:,.0f}")
        if key == "packing" and not g < m:
            failures.append(f"packing: gpuwise ${g:,.0f} is not below Mélange ${m:,.0f}")
        if key == "heterogeneity" and not m < single:
            failures.append(
                f"heterogeneity: Mélange ${m:,.0f} not below single type ${single:,.0f}"
            )
        if key == "neither" and not (abs(g - m) < 0.01 and abs(m - single) < 0.01):
            failures.append(f"neither: ${g:,.0f} / ${m:,.0f} / ${single:,.0f} differ")
        if not all(v for v in row["verified"].values() if v is not None):
            failures.append(f"{key}: a compared fleet failed its simulation: {row['verified']}")
    return rows, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows, failures = run()
    head = ("fleet", "current", "transplant", "single type", "Mélange", "gpuwise", "vs Mélange",
            "MILP s")  # fmt: skip
    print(" | ".join(f"{h:>13}" for h in head))
    for r in rows:
        g, m = r["gpuwise_usd_per_month"], r["melange_usd_per_month"]
        cells = (
            r["fleet"],
            f"${r['current_usd_per_month']:,.0f}",
            f"${r['transplant_usd_per_month']:,.0f}",
            f"${r['single_gpu_usd_per_month']:,.0f}",
            f"${m:,.0f}",
            f"${g:,.0f}",
            f"{(g - m) / m:+.0%}",
            f"{r['milp_s']:.2f}",
        )
        print(" | ".join(f"{c:>13}" for c in cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"fleets": rows, "failures": failures}, indent=2) + "\n")
    print(f"wrote {args.out}")
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
