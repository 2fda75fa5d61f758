"""Price every token: $/1M tokens per deployment, GPU-hours used vs paid, the idle share.

Works on any window of canonical signals (from Prometheus, scraped ``/metrics`` or a
simulation), priced with catalog prices or the user's. Input and output tokens cost different
amounts of GPU time: an output token needs its own decode step, while a prompt token shares one
prefill pass with thousands of others. The split uses ``output_token_weight`` (how many prompt
tokens of GPU time one output token is worth); the blended $/1M tokens does not depend on it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from gpuwise.context import HOURS_PER_MONTH, FleetContext
from gpuwise.signals import Signals

# Default weight of an output token relative to a prompt token. Batched decode spends roughly
# this much more GPU time per token than prefill on common GPUs (and providers' list prices for
# output tokens are 3-5x their input prices); override it per deployment when measured.
DEFAULT_OUTPUT_TOKEN_WEIGHT = 4.0


@dataclass(frozen=True)
class DeploymentCost:
    deployment: str
    model: str
    gpu: str
    window_s: float
    usd_per_gpu_hour: float
    gpu_hours_paid: float
    gpu_hours_busy: float  # NaN when the source has no GPU-busy signal
    idle_share: float  # of paid GPU-hours; NaN when unknown
    usd_total: float
    usd_idle: float
    input_tokens: float
    output_tokens: float
    usd_per_1m_tokens: float  # blended: input + output tokens
    usd_per_1m_input_tokens: float
    usd_per_1m_output_tokens: float
    usd_per_month: float  # the window's spend rate over a 730-hour month


@dataclass(frozen=True)
class CostReport:
    deployments: list[DeploymentCost]

    @property
    def usd_total(self) -> float:
        return sum(d.usd_total for d in self.deployments)

    @property
    def usd_per_month(self) -> float:
        return sum(d.usd_per_month for d in self.deployments)

    @property
    def usd_idle(self) -> float:
        return sum(d.usd_idle for d in self.deployments if not math.isnan(d.usd_idle))


def _per_million(usd: float, tokens: float) -> float:
    return usd / tokens * 1e6 if tokens > 0 else math.nan


def cost_report(
    signals: Sequence[Signals],
    context: FleetContext,
    output_token_weight: float = DEFAULT_OUTPUT_TOKEN_WEIGHT,
) -> CostReport:
    """Cost of each deployment over the window its signal rows cover."""
    per: dict[str, list[Signals]] = defaultdict(list)
    for s in sorted(signals, key=lambda s: (s.deployment, s.t_s)):
        per[s.deployment].append(s)
    out = []
    for name, rows in per.items():
        ctx = context.get(name)
        price = ctx.usd_per_gpu_hour
        paid_h = busy_h = 0.0
        busy_known = True
        tin = tout = window = 0.0
        for r in rows:
            dt = r.interval_s
            window += dt
            gpus = (
                r.gpus
                if not math.isnan(r.gpus)
                else (
                    (0.0 if math.isnan(r.replicas_ready) else r.replicas_ready)
                    + (0.0 if math.isnan(r.replicas_starting) else r.replicas_starting)
                )
                * ctx.gpus_per_replica
            )
            paid_h += gpus * dt / 3600.0
            if math.isnan(r.gpu_busy):
                busy_known = False
            else:
                ready_gpus = (
                    r.replicas_ready if not math.isnan(r.replicas_ready) else 0.0
                ) * ctx.gpus_per_replica
                busy_h += ready_gpus * r.gpu_busy * dt / 3600.0
            tin += 0.0 if math.isnan(r.prompt_tokens_per_s) else r.prompt_tokens_per_s * dt
            tout += 0.0 if math.isnan(r.output_tokens_per_s) else r.output_tokens_per_s * dt
        usd = paid_h * price
        idle = (1.0 - busy_h / paid_h) if busy_known and paid_h > 0 else math.nan
        weighted = tin + output_token_weight * tout
        in_usd = usd * tin / weighted if weighted > 0 else math.nan
        out_usd = usd - in_usd if weighted > 0 else math.nan
        out.append(
            DeploymentCost(
                deployment=name,
                model=ctx.model,
                gpu=ctx.gpu,
                window_s=window,
                usd_per_gpu_hour=price,
                gpu_hours_paid=paid_h,
                gpu_hours_busy=busy_h if busy_known else math.nan,
                idle_share=idle,
                usd_total=usd,
                usd_idle=usd * idle if not math.isnan(idle) else math.nan,
                input_tokens=tin,
                output_tokens=tout,
                usd_per_1m_tokens=_per_million(usd, tin + tout),
                usd_per_1m_input_tokens=_per_million(in_usd, tin),
                usd_per_1m_output_tokens=_per_million(out_usd, tout),
                usd_per_month=usd / window * 3600.0 * HOURS_PER_MONTH if window > 0 else math.nan,
            )
        )
    return CostReport(out)
