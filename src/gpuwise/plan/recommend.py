"""The answer tied to the bill: one recommendation per lever, each priced against the one before.

The ladder follows the order an engineer would pull the levers in: raise the batching limit on
the hardware already bought; quantize; change GPU type (per request size, as Mélange does); pack
small models together; buy spot or reserved capacity. Each rung is the cheapest proven fleet
with that lever and all earlier ones available, so the savings add up to the whole gap between
today's bill and the plan, and each one is a fleet that passed its own simulation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gpuwise.errors import UserError
from gpuwise.plan.baselines import Baseline
from gpuwise.plan.candidates import Candidate, Demand
from gpuwise.plan.fleet import Fleet
from gpuwise.plan.planner import Pool, Proven, prove
from gpuwise.plan.verify import Verification
from gpuwise.resolve import ResolvedSpec

QUALITY_WARNING = (
    "quantized weights or KV cache change the model's outputs; gpuwise predicts speed and cost, "
    "not accuracy: check quality on your own evaluation set before shipping"
)


@dataclass(frozen=True)
class DeploymentEffect:
    deployment: str
    before: str  # the replicas serving it, in words
    after: str
    p95_ttft_before_s: float
    p95_ttft_after_s: float
    p95_tpot_before_s: float
    p95_tpot_after_s: float
    attainment_after: float


@dataclass(frozen=True)
class Recommendation:
    key: str  # batching | quantization | gpu-type | packing | pricing
    title: str
    usd_per_month_before: float
    usd_per_month_after: float
    utilization_before: float  # load / capacity, GPU-weighted
    utilization_after: float
    gpu_busy_before: float  # simulated share of GPU time executing, replica-weighted
    gpu_busy_after: float
    effects: tuple[DeploymentEffect, ...]
    warnings: tuple[str, ...]

    @property
    def saving_usd_per_month(self) -> float:
        return self.usd_per_month_before - self.usd_per_month_after


@dataclass(frozen=True)
class Rung:
    key: str
    title: str
    keep: Callable[[Candidate, dict[str, Demand]], bool]


def _same_pricing(c: Candidate, dm: dict[str, Demand]) -> bool:
    return all(dm[m.deployment].current.deployment.pricing == c.pricing for m in c.members)


def _same_precision(c: Candidate, dm: dict[str, Demand]) -> bool:
    m = c.members[0]
    cfg = dm[m.deployment].current.config
    return m.engine.weight_dtype in (
        cfg.weight_dtype,
        "bf16" if cfg.weight_dtype == "fp16" else "fp16",
    ) and (m.engine.kv_dtype == cfg.kv_dtype)


def _same_gpu(c: Candidate, dm: dict[str, Demand]) -> bool:
    return c.gpu == dm[c.members[0].deployment].current.gpu.name


RUNGS: tuple[Rung, ...] = (
    Rung(
        "batching",
        "batching limit: continuous batching sized by the TPOT target, on the same GPUs",
        lambda c, dm: (
            not c.packed
            and _same_gpu(c, dm)
            and c.gpus == dm[c.members[0].deployment].current.config.tp
            and _same_precision(c, dm)
            and _same_pricing(c, dm)
        ),
    ),
    Rung(
        "quantization",
        "quantization (fp8 / int4 weights, fp8 KV cache), same GPU type",
        lambda c, dm: not c.packed and _same_gpu(c, dm) and _same_pricing(c, dm),
    ),
    Rung(
        "gpu-type",
        "GPU type per request size (right-sizing, heterogeneous as Mélange)",
        lambda c, dm: not c.packed and _same_pricing(c, dm),
    ),
    Rung(
        "packing",
        "bin-packing: several small models on one GPU",
        lambda c, dm: _same_pricing(c, dm),
    ),
    Rung("pricing", "pricing: spot share and reserved capacity", lambda c, dm: True),
)


def _describe(fleet: Fleet, deployment: str) -> str:
    parts = []
    for g in fleet.groups_of(deployment):
        m = g.candidate.member(deployment)
        assert m is not None
        e = m.engine
        share = g.load_of(deployment)
        packed = (
            f" packed with {', '.join(x.deployment for x in g.loads if x.deployment != deployment)}"
            if g.candidate.packed
            else ""
        )
        rate = (
            f" ({share.rate_rps:.3g} req/s)"
            if share and len(fleet.groups_of(deployment)) > 1
            else ""
        )
        parts.append(f"{g.replicas}x {e.describe()} {g.candidate.pricing}{packed}{rate}")
    return "; ".join(parts)


def _busy(fleet: Fleet, ver: Verification) -> float:
    tot, w = 0.0, 0.0
    for c in ver.checks:
        n = sum(g.replicas for g in fleet.groups_of(c.deployment))
        tot += c.gpu_busy * n
        w += n
    return tot / w if w else 0.0


def _quantized(fleet: Fleet, demands: Sequence[Demand]) -> list[str]:
    dm = {d.name: d for d in demands}
    out = []
    for g in fleet.groups:
        for m in g.candidate.members:
            cur = dm[m.deployment].current.config
            if m.engine.quantized and (
                m.engine.weight_dtype != cur.weight_dtype or m.engine.kv_dtype != cur.kv_dtype
            ):
                out.append(
                    f"{m.deployment} ({m.engine.weight_dtype} weights, {m.engine.kv_dtype} KV)"
                )
    return sorted(set(out))


def recommendation(
    key: str,
    title: str,
    before: tuple[Fleet, Verification],
    after: tuple[Fleet, Verification],
    demands: Sequence[Demand],
) -> Recommendation:
    (fb, vb), (fa, va) = before, after
    effects = []
    for d in demands:
        cb, ca = vb.check(d.name), va.check(d.name)
        assert cb is not None and ca is not None
        effects.append(
            DeploymentEffect(
                d.name,
                _describe(fb, d.name),
                _describe(fa, d.name),
                cb.ttft_p95_s,
                ca.ttft_p95_s,
                cb.tpot_p95_s,
                ca.tpot_p95_s,
                ca.attainment,
            )
        )
    newly = sorted(set(_quantized(fa, demands)) - set(_quantized(fb, demands)))
    warnings = (f"{'; '.join(newly)}: {QUALITY_WARNING}",) if newly else ()
    return Recommendation(
        key,
        title,
        fb.usd_per_month,
        fa.usd_per_month,
        fb.utilization,
        fa.utilization,
        _busy(fb, vb),
        _busy(fa, va),
        tuple(effects),
        warnings,
    )


def ladder(
    resolved: ResolvedSpec,
    pool: Pool,
    current: Baseline,
    *,
    seed: int,
    final_reference: Proven | None = None,
) -> tuple[list[Recommendation], Proven]:
    """Every rung proven in turn; returns the recommendations and the last rung (the plan)."""
    dm = {d.name: d for d in pool.demands}
    spec = resolved.spec
    prev_fleet: tuple[Fleet, Verification] = (current.fleet, current.verification)
    prev: Proven | None = None
    recs: list[Recommendation] = []
    for i, rung in enumerate(RUNGS):
        last = i == len(RUNGS) - 1

        def keep(c: Candidate, r: Rung = rung) -> bool:
            return r.keep(c, dm)

        spot = spec.spot_max_share if rung.key == "pricing" else 0.0
        ref = prev
        if last and final_reference is not None:
            ref = (
                final_reference
                if prev is None or final_reference.fleet.usd_per_hour < prev.fleet.usd_per_hour
                else prev
            )
        try:
            got = prove(
                rung.key, resolved, pool, keep, spot_max_share=spot, seed=seed, reference=ref
            )
        except UserError:
            if ref is None:
                continue  # this lever alone cannot meet the SLO (e.g. the current GPU is too small)
            got = ref
        recs.append(
            recommendation(
                rung.key, rung.title, prev_fleet, (got.fleet, got.verification), pool.demands
            )
        )
        prev_fleet = (got.fleet, got.verification)
        prev = got
    if prev is None:
        raise UserError("no fleet could be proven for this spec")
    return recs, prev
