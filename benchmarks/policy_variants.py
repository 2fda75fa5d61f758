"""gpuwise's policy with some settings changed, against the same anchors, on many scenario-seeds.

How the policy's settings were chosen (benchmarks/RESULTS.md, "Autoscaling policies side by
side"): each candidate change is measured on every scenario at several seeds, and kept only if it
does not lose where the policy already dominated. The anchors' rows do not depend on gpuwise's
settings, so they are computed once per (scenario, seed) and cached under
``benchmarks/out/variants/``; each variant then runs gpuwise alone, configured through
``compare_policies(configure=...)``, under the same rules as the table's runs.

Usage:
  .venv/bin/python benchmarks/policy_variants.py --seeds 0,1,2 [--scenarios a,b]
      [--set race_share=1 --set arrival_hold_s=60] [--jobs 2] [--fresh]
Prints one line per scenario-seed (attainment, cost, x the oracle, the anchors not dominated)
and the count of scenario-seeds where every anchor is dominated; writes
benchmarks/out/variants/<label>.json. Settings are SloAwarePolicy fields (see
``gpuwise.policy.slo``), parsed as the field's type.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

from _cli import positive, run  # beside this file
from gpuwise.policy import Policy, SloAwarePolicy
from gpuwise.report.compare import ANCHORS, compare_policies, pareto_dominates
from gpuwise.resolve import resolve_spec
from gpuwise.workload.scenarios import get_scenario
from policies import SCENARIOS  # the table's scenarios (benchmarks/policies.py, beside this)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "variants"
OTHERS = (*ANCHORS, "oracle")


def _bad(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``name=value`` pairs as SloAwarePolicy init fields of the right type; exit 2 otherwise."""
    fields = {f.name: f for f in dataclasses.fields(SloAwarePolicy) if f.init}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in fields:
            known = ", ".join(n for n, f in fields.items() if f.type in ("float", "int", "bool"))
            _bad(f"--set {item!r}: expected NAME=VALUE with NAME one of {known}")
        kind = fields[name].type
        try:
            out[name] = {"float": float, "int": int}.get(kind, str)(raw)
            if kind == "bool":
                out[name] = raw.lower() in ("1", "true", "yes")
        except ValueError:
            _bad(f"--set {item!r}: {name} takes a {kind}")
    return out


def _compare(spec: str, scenario: str, seed: int, duration: float, lead: float, **kw: Any):
    return compare_policies(
        resolve_spec(spec),
        scenario=scenario,
        duration_s=duration,
        seed=seed,
        lead_time_s=lead,
        **kw,
    )


def anchor_rows(spec: str, scenario: str, seed: int, duration: float, lead: float, fresh: bool):
    path = OUT / "anchors" / f"{scenario}_seed{seed}_{duration:g}s_lead{lead:g}.json"
    if path.exists() and not fresh:
        return json.loads(path.read_text())
    c = _compare(spec, scenario, seed, duration, lead, policies=OTHERS)
    rows = [r.as_dict() for r in c.rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def run_one(job: tuple[str, str, int, float, float, dict[str, Any], bool]) -> dict[str, Any]:
    spec, scenario, seed, duration, lead, settings, fresh = job
    rows = anchor_rows(spec, scenario, seed, duration, lead, fresh)

    def configure(name: str, policy: Policy) -> Policy:
        if name == "gpuwise" and settings:
            return dataclasses.replace(policy, **settings)  # type: ignore[type-var]
        return policy

    c = _compare(spec, scenario, seed, duration, lead, policies=("gpuwise",), configure=configure)
    g = c.rows[0]
    oracle = next(r for r in rows if r["policy"] == "oracle")["cost_usd"]
    missed = []
    for r in rows:
        if r["policy"] not in ANCHORS:
            continue
        a, cost = r["slo_attainment"], r["cost_usd"]
        if not pareto_dominates(g.slo_attainment, g.cost_usd, a, cost):
            missed.append({"policy": r["policy"], "slo_attainment": a, "cost_usd": cost})
    return {
        "scenario": scenario,
        "seed": seed,
        "slo_attainment": g.slo_attainment,
        "cost_usd": g.cost_usd,
        "cost_vs_oracle": g.cost_usd / oracle if oracle else None,
        "failed": g.failed,
        "not_dominated": missed,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(ROOT / "examples" / "autoscale-chat.yaml"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--duration", type=positive, default=1800.0)
    ap.add_argument("--lead-time", type=positive, default=120.0)
    ap.add_argument("--set", action="append", default=[], dest="settings")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="recompute the cached anchor rows")
    args = ap.parse_args()
    settings = parse_settings(args.settings)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        _bad(f"--seeds {args.seeds!r}: give whole numbers separated by commas, e.g. 0,1,2")
    scenarios = [s for s in args.scenarios.split(",") if s.strip()]
    for sc in scenarios:  # every name checked before any run starts
        get_scenario(sc)
    jobs = [
        (args.spec, sc, seed, args.duration, args.lead_time, settings, args.fresh)
        for seed in seeds
        for sc in scenarios
    ]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(run_one, jobs))
    label = ",".join(f"{k}={v}" for k, v in settings.items()) or "as shipped"
    wins = 0
    for r in results:
        wins += not r["not_dominated"]
        rest = " ".join(
            f"{m['policy']} ({m['slo_attainment']:.3%}, ${m['cost_usd']:.2f})"
            for m in r["not_dominated"]
        )
        print(
            f"{r['scenario']:22s} seed {r['seed']}  {r['slo_attainment']:.3%}  "
            f"${r['cost_usd']:6.2f}  {r['cost_vs_oracle']:.3f}x  failed {r['failed']:4d}  "
            + (rest or "dominates every anchor")
        )
    print(f"\n{label}: dominates every anchor on {wins} of {len(results)} scenario-seeds")
    OUT.mkdir(parents=True, exist_ok=True)
    name = "".join(ch if ch.isalnum() or ch in "=._," else "_" for ch in label)
    (OUT / f"{name}.json").write_text(
        json.dumps({"settings": settings, "wins": wins, "results": results}, indent=2) + "\n"
    )


if __name__ == "__main__":
    run(main)
