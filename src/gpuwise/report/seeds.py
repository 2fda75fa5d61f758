"""One scenario at several seeds: how far each policy's results move with the random draws.

A single seed decides near-ties by a few requests or cents (which replica's provisioning drew
long, which minute a burst fell in), so a verdict worth acting on is one that holds across
seeds. ``across_seeds`` folds comparisons of the same scenario and policies at different seeds
into one row per policy: the spread of attainment and cost, at how many seeds gpuwise
Pareto-dominates it, and whether gpuwise's mean attainment and cost dominate its means (what a
team paying for many days of such traffic gets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gpuwise.errors import UserError
from gpuwise.report.compare import Comparison, pareto_dominates


@dataclass(frozen=True)
class SeedSpread:
    """One policy over several seeds; ``dominated_at`` lists the seeds at which gpuwise
    Pareto-dominates it, ``dominated_on_mean`` whether gpuwise's means dominate its means (both
    None for gpuwise itself, the oracle, or runs without gpuwise)."""

    policy: str
    seeds: tuple[int, ...]
    slo_attainment_mean: float
    slo_attainment_min: float
    slo_attainment_max: float
    cost_usd_mean: float
    cost_usd_min: float
    cost_usd_max: float
    usd_per_1m_tokens_in_slo_mean: float
    failed_mean: float
    dominated_at: tuple[int, ...] | None
    dominated_on_mean: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` as distinct seeds in order; a UserError names the option."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise UserError(
                f"--seeds '{text}': give whole numbers and ranges, e.g. 0,1,2 or 0-4"
            ) from None
        if a < 0 or b < a:
            raise UserError(f"--seeds '{text}': seeds are >= 0 and a range runs low-high")
        out.extend(s for s in range(a, b + 1) if s not in out)
    if not out:
        raise UserError(f"--seeds '{text}': give at least one seed, e.g. 0,1,2")
    return out


def across_seeds(comparisons: Sequence[Comparison]) -> list[SeedSpread]:
    """One row per policy, in the first comparison's order."""
    if not comparisons:
        return []
    first = comparisons[0]
    names = [r.policy for r in first.rows]
    for c in comparisons[1:]:
        if c.scenario != first.scenario or [r.policy for r in c.rows] != names:
            raise ValueError("comparisons of different scenarios or policies")
    seeds = tuple(c.seed for c in comparisons)
    with_gpuwise = "gpuwise" in names
    out: list[SeedSpread] = []

    def mean(policy: str, key: str) -> float:
        return sum(getattr(c.row(policy), key) for c in comparisons) / len(comparisons)

    for name in names:
        rows = [c.row(name) for c in comparisons]
        att = [r.slo_attainment for r in rows]
        usd = [r.cost_usd for r in rows]
        dominated_at: tuple[int, ...] | None = None
        on_mean: bool | None = None
        if with_gpuwise and name not in ("gpuwise", "oracle"):
            on_mean = pareto_dominates(
                mean("gpuwise", "slo_attainment"),
                mean("gpuwise", "cost_usd"),
                mean(name, "slo_attainment"),
                mean(name, "cost_usd"),
            )
            dominated_at = tuple(
                c.seed
                for c, r in zip(comparisons, rows, strict=True)
                if pareto_dominates(
                    c.row("gpuwise").slo_attainment,
                    c.row("gpuwise").cost_usd,
                    r.slo_attainment,
                    r.cost_usd,
                )
            )
        out.append(
            SeedSpread(
                policy=name,
                seeds=seeds,
                slo_attainment_mean=mean(name, "slo_attainment"),
                slo_attainment_min=min(att),
                slo_attainment_max=max(att),
                cost_usd_mean=mean(name, "cost_usd"),
                cost_usd_min=min(usd),
                cost_usd_max=max(usd),
                usd_per_1m_tokens_in_slo_mean=mean(name, "usd_per_1m_tokens_in_slo"),
                failed_mean=mean(name, "failed"),
                dominated_at=dominated_at,
                dominated_on_mean=on_mean,
            )
        )
    return out
