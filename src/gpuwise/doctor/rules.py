"""Diagnostic rules over a window of signals: each returns findings, with evidence and dollars.

A rule is a pure function ``(rows, ctx) -> list[Finding]`` over one deployment's signal rows in
time order. It looks where a strong engineer looks — queue depth, running batch, KV usage, the
latency tail, GPU busy time, errors — and never at CPU or host memory, which stay green while
requests queue behind a saturated GPU. Thresholds are named constants so that a reader can see,
and a team can change, what "saturated" or "idle" means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gpuwise.context import HOURS_PER_MONTH, DeploymentContext
from gpuwise.signals import Signals

Severity = Literal["high", "medium", "low", "info"]
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}

# What the rules call saturated, idle, pressured. Shares are of the intervals in the window.
QUEUE_PER_REPLICA = 0.5  # mean waiting requests per ready replica that counts as queueing
QUEUE_SHARE = 0.3  # ...in at least this share of intervals
SATURATED_BATCH_SHARE = 0.9  # running / max_num_seqs at which the engine cannot take more
KV_PRESSURE = 0.9  # KV-cache usage of the fullest replica
LOW_BATCH = 2.0  # mean running requests per replica below which batching is not happening
IDLE_BUSY = 0.3  # GPU busy share below which a replica is mostly idle
TARGET_BATCH_SHARE = 0.6  # a healthy steady batch, as a share of max_num_seqs
ERROR_SHARE = 0.01  # failed requests per arriving request
IMBALANCE_KV = 0.35  # fullest minus mean KV usage across replicas


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    deployment: str
    title: str
    evidence: dict[str, float | str]
    window: str
    meaning: str
    action: str
    usd_per_month_at_stake: float = 0.0
    notes: list[str] = field(default_factory=list)


def _arr(rows: Sequence[Signals], name: str) -> np.ndarray:
    return np.array([getattr(r, name) for r in rows], dtype=float)


def _mean(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else math.nan


def _max(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.max()) if a.size else math.nan


def _window(rows: Sequence[Signals]) -> str:
    t0 = rows[0].t_s - rows[0].interval_s
    t1 = rows[-1].t_s
    return f"{t0:,.0f}-{t1:,.0f} s ({t1 - t0:,.0f} s, {len(rows)} intervals)"


def _r(x: float, nd: int = 3) -> float:
    return round(x, nd) if not math.isnan(x) else x


def _replicas(rows: Sequence[Signals]) -> np.ndarray:
    rep = _arr(rows, "replicas_ready")
    return np.where(np.isnan(rep) | (rep <= 0), 1.0, rep)


def _monthly(ctx: DeploymentContext, replicas: float) -> float:
    if math.isnan(ctx.usd_per_replica_hour):
        return 0.0
    return replicas * ctx.usd_per_replica_hour * HOURS_PER_MONTH


def queueing_behind_saturated_engine(
    rows: Sequence[Signals], ctx: DeploymentContext
) -> list[Finding]:
    """The 'green dashboard' case: requests wait while the engine runs a full batch."""
    rep = _replicas(rows)
    queue = _arr(rows, "queue_depth")
    running = _arr(rows, "running")
    if np.all(np.isnan(queue)):
        return []
    per_rep_q = queue / rep
    queued = np.nan_to_num(per_rep_q) >= QUEUE_PER_REPLICA
    share = float(queued.mean())
    if share < QUEUE_SHARE:
        return []
    per_rep_running = running / rep
    busy = _arr(rows, "gpu_busy")
    kv = _arr(rows, "kv_usage_max")
    evidence: dict[str, float | str] = {
        "share_of_intervals_queueing": _r(share),
        "mean_waiting": _r(_mean(queue)),
        "max_waiting": _r(_max(queue)),
        "mean_running_per_replica": _r(_mean(per_rep_running)),
        "replicas_ready": _r(_mean(rep)),
    }
    limiters = []
    if ctx.max_num_seqs:
        full = _mean(per_rep_running[queued]) / ctx.max_num_seqs
        evidence["running_share_of_max_num_seqs"] = _r(full)
        if full >= SATURATED_BATCH_SHARE:
            limiters.append(f"the running batch is at max_num_seqs ({ctx.max_num_seqs})")
    if not math.isnan(_mean(kv[queued])) and _mean(kv[queued]) >= KV_PRESSURE:
        limiters.append("the KV cache is full")
        evidence["kv_usage_max_while_queueing"] = _r(_mean(kv[queued]))
    if not math.isnan(_mean(busy[queued])):
        evidence["gpu_busy_while_queueing"] = _r(_mean(busy[queued]))
        if _mean(busy[queued]) >= 0.85:
            limiters.append("the GPU is busy")
    ttft = _arr(rows, "ttft_p95_s")
    if not np.all(np.isnan(ttft)):
        evidence["ttft_p95_s_max"] = _r(_max(ttft))
    slo_missed = ctx.slo is not None and ctx.slo.ttft_s is not None and _max(ttft) > ctx.slo.ttft_s
    if not limiters and _mean(per_rep_running[queued]) < 1.0:
        return []  # a queue in front of an engine that runs nothing is a stall, not saturation
    why = "; ".join(limiters) if limiters else "admission is the bottleneck"
    # Replicas needed to absorb the queue at the current per-replica batch.
    per_rep = max(_mean(per_rep_running), 1.0)
    extra = math.ceil(_mean(np.nan_to_num(queue)) / per_rep)
    return [
        Finding(
            rule="queueing-saturated",
            severity="high" if slo_missed or share >= 0.6 else "medium",
            deployment=ctx.name,
            title="Requests queue behind a saturated engine",
            evidence=evidence,
            window=_window(rows),
            meaning=(
                f"In {share:.0%} of intervals requests waited for admission while {why}. "
                "Host CPU and memory look fine in this state; the wait shows up only as "
                "time to first token."
            ),
            action=(
                f"Add about {extra} replica(s), or raise max_num_seqs if the KV cache has room; "
                "scale on vllm:num_requests_waiting rather than CPU."
            ),
            usd_per_month_at_stake=round(_monthly(ctx, extra), 2),
        )
    ]


def kv_cache_pressure(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    kv = _arr(rows, "kv_usage_max")
    pre = _arr(rows, "preemptions_per_s")
    high = np.nan_to_num(kv) >= KV_PRESSURE
    pre_total = float(np.nansum(pre * _arr(rows, "interval_s")))
    if not high.any() and pre_total <= 0:
        return []
    return [
        Finding(
            rule="kv-pressure",
            severity="high" if pre_total > 0 else "medium",
            deployment=ctx.name,
            title="KV cache under pressure" + (" with preemptions" if pre_total > 0 else ""),
            evidence={
                "kv_usage_max": _r(_max(kv)),
                "share_of_intervals_above_90pct": _r(high.mean()),
                "preemptions": _r(pre_total, 1),
            },
            window=_window(rows),
            meaning=(
                "When the KV cache fills, the engine stops admitting and, past that, preempts "
                "running requests and recomputes them: work is paid for twice and the tail "
                "latency jumps."
            ),
            action=(
                "Lower max_num_seqs or max_model_len, use an fp8 KV cache, raise "
                "gpu_memory_utilization, or move to a GPU with more memory / higher TP."
            ),
        )
    ]


def batching_not_happening(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    rate = _arr(rows, "arrival_rate_rps")
    if _mean(rate) <= 0 or math.isnan(_mean(rate)):
        return []
    rep = _replicas(rows)
    running = _arr(rows, "running")
    per_rep = _mean(running / rep)
    if math.isnan(per_rep) or per_rep >= LOW_BATCH:
        return []
    busy = _mean(_arr(rows, "gpu_busy"))
    limit_is_low = ctx.max_num_seqs is not None and ctx.max_num_seqs < 4
    replicas = _mean(rep)
    # With real batching the same load fits on fewer replicas: decode steps cost about the
    # same for 1 or 16 sequences, so throughput grows nearly with the batch.
    target = (ctx.max_num_seqs or 64) * TARGET_BATCH_SHARE if not limit_is_low else 16.0
    needed = max(1.0, math.ceil(_mean(running) / target)) if not math.isnan(_mean(running)) else 1
    saving = _monthly(ctx, max(0.0, replicas - needed))
    tokens = _mean(_arr(rows, "output_tokens_per_s"))
    usd_per_m = (
        ctx.usd_per_replica_hour * replicas / 3600 / tokens * 1e6
        if tokens and not math.isnan(tokens) and tokens > 0
        else math.nan
    )
    return [
        Finding(
            rule="no-batching",
            severity="high" if limit_is_low or saving > 0 else "medium",
            deployment=ctx.name,
            title="Batching is not happening",
            evidence={
                "mean_running_per_replica": _r(per_rep),
                "gpu_busy": _r(busy),
                "max_num_seqs": ctx.max_num_seqs or "unknown",
                "replicas": _r(replicas),
                "usd_per_1m_output_tokens": _r(usd_per_m, 2),
            },
            window=_window(rows),
            meaning=(
                "Each replica serves about one request at a time, so every GPU reads all its "
                "weights to make one token. An LLM engine's throughput grows almost linearly "
                "with the batch until it is compute-bound; running one at a time multiplies "
                "the cost per token."
                + (" max_num_seqs is set to one-at-a-time." if limit_is_low else "")
            ),
            action=(
                "Raise max_num_seqs (e.g. 64-256) and route several requests to each replica; "
                f"the same load then fits on about {int(needed)} replica(s)."
            ),
            usd_per_month_at_stake=round(saving, 2),
        )
    ]


def over_provisioned(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    rep = _replicas(rows)
    replicas = _mean(rep)
    if replicas < 2:
        return []
    queue = _mean(_arr(rows, "queue_depth"))
    if not math.isnan(queue) and queue > 0.1:
        return []
    running = _arr(rows, "running")
    busy = _mean(_arr(rows, "gpu_busy"))
    peak_running = _max(running)
    if math.isnan(peak_running):
        return []
    per_rep_capacity = (ctx.max_num_seqs or 64) * TARGET_BATCH_SHARE
    needed = max(1, math.ceil(peak_running / per_rep_capacity))
    idle_replicas = replicas - needed
    mostly_idle = math.isnan(busy) or busy < IDLE_BUSY
    if idle_replicas < 1 or not mostly_idle:
        return []
    usd = _monthly(ctx, idle_replicas)
    return [
        Finding(
            rule="over-provisioned",
            severity="high" if idle_replicas / replicas >= 0.5 else "medium",
            deployment=ctx.name,
            title="Idle replicas: the fleet is larger than its load",
            evidence={
                "replicas_ready": _r(replicas),
                "peak_running": _r(peak_running),
                "mean_running": _r(_mean(running)),
                "gpu_busy": _r(busy),
                "replicas_needed_at_peak": needed,
                "idle_share": _r(idle_replicas / replicas),
            },
            window=_window(rows),
            meaning=(
                f"At the window's peak {peak_running:.0f} requests ran at once; "
                f"{needed} replica(s) hold that at a healthy batch, so "
                f"{idle_replicas:.0f} of {replicas:.0f} replicas are paid to wait."
            ),
            action=(
                f"Scale to {needed} replica(s) (keep one warm spare if cold starts are slow), or "
                "pack small models onto shared GPUs; see 'gpuwise plan'."
            ),
            usd_per_month_at_stake=round(usd, 2),
        )
    ]


def latency_tail(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    if ctx.slo is None:
        return []
    out = []
    queue = np.nan_to_num(_arr(rows, "queue_depth"))
    for metric, target, label in (
        ("ttft_p95_s", ctx.slo.ttft_s, "TTFT"),
        ("tpot_p95_s", ctx.slo.tpot_s, "TPOT"),
        ("e2e_p95_s", ctx.slo.e2e_s, "end-to-end"),
    ):
        if target is None:
            continue
        v = _arr(rows, metric)
        over = np.nan_to_num(v) > target
        if not over.any():
            continue
        queued = float((queue[over] > 0).mean())
        cause = "queueing" if queued >= 0.5 else "execution"
        out.append(
            Finding(
                rule=f"latency-tail-{label.lower().replace('-', '')}",
                severity="high" if over.mean() >= 0.2 else "medium",
                deployment=ctx.name,
                title=f"p95 {label} above the SLO ({target:g} s), from {cause}",
                evidence={
                    f"{metric}_max": _r(_max(v)),
                    f"{metric}_mean": _r(_mean(v)),
                    "slo_s": target,
                    "share_of_intervals_over": _r(over.mean()),
                    "share_over_with_queue": _r(queued),
                },
                window=_window(rows),
                meaning=(
                    "The tail comes from waiting for admission: the fleet lacks capacity at "
                    "those moments."
                    if cause == "queueing"
                    else "Requests were admitted at once but ran slowly: the batch or the prompts "
                    "are too large for this GPU, or prefill interrupts decoding."
                ),
                action=(
                    "Add capacity ahead of the load (autoscale on queue depth with warm replicas)."
                    if cause == "queueing"
                    else "Lower max_num_batched_tokens (smaller prefill chunks) or max_num_seqs, "
                    "or use a faster GPU / higher TP."
                ),
            )
        )
    return out


def cold_start_risk(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    ttr = ctx.time_to_ready_s
    rate = _arr(rows, "arrival_rate_rps")
    if ttr is None or len(rows) < 3 or np.all(np.isnan(rate)):
        return []
    t = _arr(rows, "t_s")
    r = np.nan_to_num(rate)
    dt = rows[0].interval_s
    # Compare the mean rate over one time-to-ready with the one just before it; windows of at
    # least three intervals keep Poisson noise in short intervals from looking like a ramp.
    k = max(3, math.ceil(ttr / dt))
    if len(r) < 2 * k:
        return []
    c = np.concatenate([[0.0], np.cumsum(r)])
    means = (c[k:] - c[:-k]) / k  # means[i] covers intervals i .. i+k-1
    before, after = means[:-k], means[k:]
    growth = after / np.maximum(before, 1e-9)
    i = int(np.argmax(growth))
    worst, at = float(growth[i]), float(t[min(i + 2 * k - 1, len(t) - 1)])
    if worst < 1.5:
        return []
    return [
        Finding(
            rule="cold-start-risk",
            severity="high" if worst >= 2 else "medium",
            deployment=ctx.name,
            title="Traffic ramps faster than a new replica becomes ready",
            evidence={
                "time_to_ready_s": _r(ttr, 1),
                "max_rate_growth_within_time_to_ready": _r(worst, 2),
                "at_t_s": _r(at, 1),
            },
            window=_window(rows),
            meaning=(
                f"The arrival rate grew {worst:.1f}x within {ttr:.0f} s, the time a new replica "
                "needs to provision, load weights and warm up; a reactive autoscaler adds "
                "capacity only after the spike has queued."
            ),
            action=(
                "Keep warm headroom sized to the ramp, or a warm pool with weights staged in "
                "host memory; scale on a forecast, not on utilization."
            ),
        )
    ]


def replica_imbalance(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    rep = _replicas(rows)
    if _mean(rep) < 2:
        return []
    gap = _arr(rows, "kv_usage_max") - _arr(rows, "kv_usage")
    g = _mean(gap)
    if math.isnan(g) or g < IMBALANCE_KV:
        return []
    return [
        Finding(
            rule="replica-imbalance",
            severity="medium",
            deployment=ctx.name,
            title="Load is uneven across replicas",
            evidence={
                "kv_usage_mean": _r(_mean(_arr(rows, "kv_usage"))),
                "kv_usage_max": _r(_mean(_arr(rows, "kv_usage_max"))),
                "mean_gap": _r(g),
            },
            window=_window(rows),
            meaning="One replica's KV cache is much fuller than the average: the router sends long "
            "requests to the same place, so one replica queues while others idle.",
            action="Route by least outstanding requests or least KV usage instead of round-robin.",
        )
    ]


def error_rate(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    err = _arr(rows, "errors_per_s")
    rate = _arr(rows, "arrival_rate_rps")
    e, r = _mean(err), _mean(rate)
    if math.isnan(e) or e <= 0 or math.isnan(r) or r <= 0:
        return []
    share = e / r
    if share < ERROR_SHARE:
        return []
    return [
        Finding(
            rule="errors",
            severity="high" if share >= 0.05 else "medium",
            deployment=ctx.name,
            title=f"{share:.1%} of requests fail or are aborted",
            evidence={"errors_per_s": _r(e), "arrival_rate_rps": _r(r), "error_share": _r(share)},
            window=_window(rows),
            meaning="Failed and aborted requests were paid for in GPU time and served nobody.",
            action="Check engine logs for OOM, timeouts at the gateway, and client disconnects.",
        )
    ]


_KEY_SIGNALS = {
    "queue_depth": "queue depth",
    "running": "running requests",
    "kv_usage": "KV-cache usage",
    "ttft_p95_s": "TTFT percentiles",
    "tpot_p95_s": "TPOT / inter-token latency percentiles",
    "output_tokens_per_s": "token throughput",
    "gpu_busy": "GPU utilization",
}


def unmeasurable(rows: Sequence[Signals], ctx: DeploymentContext) -> list[Finding]:
    missing = [label for name, label in _KEY_SIGNALS.items() if np.all(np.isnan(_arr(rows, name)))]
    if not missing:
        return []
    return [
        Finding(
            rule="unmeasurable",
            severity="info",
            deployment=ctx.name,
            title="Signals a dashboard cannot compute from these metrics",
            evidence={"missing": ", ".join(missing)},
            window=_window(rows),
            meaning=(
                "These metrics are absent for this engine/version (or the exporter is not "
                "scraped), so any panel built on them shows nothing or a wrong name; findings "
                "that need them were not evaluated."
            ),
            action=(
                "Scrape the engine's /metrics and DCGM exporter; for GPU utilization deploy "
                "dcgm-exporter next to the engine pods."
            ),
        )
    ]


RULES: tuple[Callable[[Sequence[Signals], DeploymentContext], list[Finding]], ...] = (
    queueing_behind_saturated_engine,
    kv_cache_pressure,
    batching_not_happening,
    over_provisioned,
    latency_tail,
    cold_start_risk,
    replica_imbalance,
    error_rate,
    unmeasurable,
)
