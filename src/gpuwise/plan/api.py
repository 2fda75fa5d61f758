"""``gpuwise.plan.plan(resolved) -> Plan``: the cheapest proven fleet, its ladder and baselines."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gpuwise.plan.baselines import (
    Baseline,
    current_fleet,
    melange,
    single_gpu_type,
    transplant_fleet,
)
from gpuwise.plan.candidates import PlanOptions
from gpuwise.plan.fleet import HOURS_PER_MONTH, Fleet
from gpuwise.plan.planner import Proven, SolveStats, build_pool
from gpuwise.plan.recommend import Recommendation, ladder
from gpuwise.plan.verify import Verification
from gpuwise.resolve import ResolvedSpec


@dataclass(frozen=True)
class DemandSummary:
    deployment: str
    model: str
    rate_rps: float
    rate_note: str
    buckets: int
    mean_input_tokens: float
    mean_output_tokens: float
    slo: str


@dataclass(frozen=True)
class Plan:
    spec_name: str
    demands: tuple[DemandSummary, ...]
    fleet: Fleet
    verification: Verification
    stats: SolveStats
    enumerate_s: float
    total_s: float
    current: Baseline
    transplant: Baseline
    single_gpu: Baseline | None
    melange: Baseline
    recommendations: tuple[Recommendation, ...]
    warnings: tuple[str, ...]

    @property
    def baselines(self) -> list[Baseline]:
        out = [self.current, self.transplant]
        if self.single_gpu is not None:
            out.append(self.single_gpu)
        out.append(self.melange)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec_name,
            "hours_per_month": HOURS_PER_MONTH,
            "demands": [d.__dict__ for d in self.demands],
            "plan": fleet_dict(self.fleet, self.verification),
            "baselines": {
                b.key: {"title": b.title, "note": b.note, **fleet_dict(b.fleet, b.verification)}
                for b in self.baselines
            },
            "recommendations": [
                {
                    "key": r.key,
                    "title": r.title,
                    "usd_per_month_before": round(r.usd_per_month_before, 2),
                    "usd_per_month_after": round(r.usd_per_month_after, 2),
                    "saving_usd_per_month": round(r.saving_usd_per_month, 2),
                    "utilization_before": round(r.utilization_before, 4),
                    "utilization_after": round(r.utilization_after, 4),
                    "gpu_busy_before": round(r.gpu_busy_before, 4),
                    "gpu_busy_after": round(r.gpu_busy_after, 4),
                    "effects": [e.__dict__ for e in r.effects],
                    "warnings": list(r.warnings),
                }
                for r in self.recommendations
            ],
            "solver": {
                "candidates": self.stats.candidates,
                "variables": self.stats.variables,
                "constraints": self.stats.constraints,
                "milp_s": round(self.stats.solve_s, 4),
                "rounds": self.stats.rounds,
                "enumerate_s": round(self.enumerate_s, 4),
                "total_s": round(self.total_s, 4),
            },
            "warnings": list(self.warnings),
        }


def fleet_dict(fleet: Fleet, ver: Verification) -> dict[str, Any]:
    return {
        "usd_per_hour": round(fleet.usd_per_hour, 4),
        "usd_per_month": round(fleet.usd_per_month, 2),
        "gpus": fleet.gpus,
        "utilization": round(fleet.utilization, 4),
        "verified": ver.ok,
        "groups": [
            {
                "replicas": g.replicas,
                "gpu": g.candidate.gpu,
                "gpus_per_replica": g.candidate.gpus,
                "pricing": g.candidate.pricing,
                "usd_per_gpu_hour": g.candidate.usd_per_gpu_hour,
                "usd_per_month": round(g.usd_per_hour * HOURS_PER_MONTH, 2),
                "utilization": round(g.utilization, 4),
                "engines": [
                    {
                        "deployment": m.deployment,
                        **m.engine.__dict__,
                        "compute_share": round(m.compute_share, 4),
                        "kv_capacity_tokens": m.kv_capacity_tokens,
                        "rate_rps": round(ld.rate_rps, 4) if (ld := g.load_of(m.deployment)) else 0,
                        "load": round(ld.load, 4) if ld else 0,
                    }
                    for m in g.candidate.members
                ],
            }
            for g in fleet.groups
        ],
        "simulation": [c.__dict__ for c in ver.checks],
    }


def _slo_words(d: Any) -> str:
    from gpuwise.resolve import describe_slo

    return describe_slo(d.slo)


def plan(resolved: ResolvedSpec, options: PlanOptions | None = None) -> Plan:
    """The cheapest fleet that meets every SLO in simulation, with the evidence around it."""
    t0 = time.perf_counter()
    opts = options or PlanOptions()
    pool = build_pool(resolved, opts)
    seed = opts.seed
    current = current_fleet(resolved, pool.demands, seed)
    mel: Proven = melange(resolved, pool, seed)
    recs, final = ladder(resolved, pool, current, seed=seed, final_reference=mel)
    transplant = transplant_fleet(resolved, pool.demands, seed)
    single = single_gpu_type(resolved, pool, seed)
    warnings = sorted({w for r in recs for w in r.warnings})
    demands = tuple(
        DemandSummary(
            d.name,
            d.model.name,
            d.rate_rps,
            d.rate_note,
            len(d.buckets),
            round(d.mean_input_tokens, 1),
            round(d.mean_output_tokens, 1),
            _slo_words(d),
        )
        for d in pool.demands
    )
    return Plan(
        spec_name=resolved.spec.name,
        demands=demands,
        fleet=final.fleet,
        verification=final.verification,
        stats=final.stats,
        enumerate_s=pool.enumerate_s,
        total_s=time.perf_counter() - t0,
        current=current,
        transplant=transplant,
        single_gpu=(
            Baseline(
                "single-gpu",
                f"best single GPU type ({single[0]})",
                single[1].fleet,
                single[1].verification,
            )
            if single
            else None
        ),
        melange=Baseline(
            "melange",
            "Mélange (heterogeneous, no packing, no spot)",
            mel.fleet,
            mel.verification,
        ),
        recommendations=tuple(recs),
        warnings=tuple(warnings),
    )
