"""Two snapshots per replica (start and end of a window) -> canonical ``Signals`` per deployment.

Counters and histograms in an exposition are cumulative since the engine started, so one scrape
only gives lifetime averages; recent behaviour needs the difference of two scrapes (what
Prometheus' ``rate`` does). This module is that arithmetic, as pure functions:

* counter deltas per series, with resets (a restarted replica) handled like Prometheus: a value
  lower than before means the counter restarted from zero, so the delta is the new value;
* histogram quantiles from bucket deltas, interpolated linearly inside a bucket exactly like
  Prometheus' ``histogram_quantile``, including its answer for the ``+Inf`` bucket (the top
  finite bound), which is flagged because it is only a lower bound;
* gauges from the end snapshot: queue and running summed over replicas, KV usage as mean and
  max;
* GPU busy from DCGM series joined to the replicas' pods, else the engine's own GPU gauge, else
  NaN with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from gpuwise.observe.dialects import (
    DCGM,
    UNKNOWN,
    Dialect,
    Metric,
    Ratio,
    detect_dialect,
    rate_sources,
    select,
)
from gpuwise.observe.exposition import Labels, Snapshot
from gpuwise.observe.observation import Observation
from gpuwise.signals import NAN, Signals

__all__ = [
    "GpuReading",
    "gpu_extra",
    "Quantile",
    "ReplicaWindow",
    "counter_delta",
    "histogram_delta",
    "histogram_quantile",
    "observe_window",
    "read_gpus",
    "window_signals",
]


# ---- pure arithmetic -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantile:
    """A histogram quantile; ``capped`` when it fell into ``+Inf`` and ``value`` is the top
    finite bound (the true value is at least that)."""

    value: float
    capped: bool = False
    count: float = 0.0


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> Quantile:
    """Prometheus' ``histogram_quantile`` on cumulative ``le -> count`` buckets.

    Same rules as promql/quantile.go: NaN without a ``+Inf`` bucket or without observations;
    counts made monotonic; linear interpolation inside the bucket, from 0 for the first bucket;
    the quantile in ``+Inf`` returns the highest finite bound.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    items = sorted((float(b), float(c)) for b, c in buckets.items() if not math.isnan(c))
    if len(items) < 2 or not math.isinf(items[-1][0]):
        return Quantile(NAN)
    bounds = [b for b, _ in items]
    counts: list[float] = []
    for _, c in items:  # ensure monotonic, as Prometheus does for float noise
        counts.append(max(c, counts[-1]) if counts else c)
    total = counts[-1]
    if total <= 0:
        return Quantile(NAN, count=total)
    rank = q * total
    b = next((i for i in range(len(counts) - 1) if counts[i] >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return Quantile(bounds[-2], capped=True, count=total)
    if b == 0 and bounds[0] <= 0:
        return Quantile(bounds[0], count=total)
    start = 0.0 if b == 0 else bounds[b - 1]
    below = 0.0 if b == 0 else counts[b - 1]
    in_bucket = counts[b] - below
    if in_bucket <= 0:
        return Quantile(start, count=total)
    return Quantile(start + (bounds[b] - start) * (rank - below) / in_bucket, count=total)


def counter_delta(
    start: Mapping[Labels, float] | None, end: Mapping[Labels, float]
) -> tuple[float, bool]:
    """Increase of a counter over the window, summed over its series; (delta, reset seen).

    A series lower at the end than at the start was reset (the replica restarted), so its
    increase is its end value, as in Prometheus. A series absent at the start appeared during
    the window (labelled children are created on first use), so it started from zero.
    """
    total, reset = 0.0, False
    for labels, v_end in end.items():
        if math.isnan(v_end):
            continue
        v0 = (start or {}).get(labels)
        if v0 is None or math.isnan(v0):
            total += v_end
        elif v_end < v0:
            total += v_end
            reset = True
        else:
            total += v_end - v0
    return total, reset


def _without_le(labels: Labels) -> Labels:
    return frozenset((k, v) for k, v in labels if k != "le")


def _le(labels: Labels) -> float | None:
    raw = dict(labels).get("le")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def histogram_delta(
    start: Mapping[Labels, float] | None, end: Mapping[Labels, float], scale: float = 1.0
) -> tuple[dict[float, float], bool]:
    """Cumulative bucket counts over the window, summed over series; (buckets, reset seen).

    ``start``/``end`` are the ``_bucket`` series (labels include ``le``). A series whose count
    went down restarted, so its end buckets are the window's. ``scale`` converts bounds to
    seconds (Triton's histograms are in milliseconds).
    """
    groups: dict[Labels, dict[float, tuple[float | None, float]]] = {}
    for labels, v in end.items():
        le = _le(labels)
        if le is None:
            continue
        v0 = (start or {}).get(labels)
        groups.setdefault(_without_le(labels), {})[le] = (v0, v)
    out: dict[float, float] = {}
    reset = False
    for series in groups.values():
        was_reset = any(v0 is not None and v < v0 for v0, v in series.values())
        reset |= was_reset
        for le, (v0, v) in series.items():
            d = v if (was_reset or v0 is None) else v - v0
            key = le * scale if not math.isinf(le) else le
            out[key] = out.get(key, 0.0) + d
    return dict(sorted(out.items())), reset


# ---- replicas and GPUs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaWindow:
    """One replica's scrapes at the start and end of the window (None: it did not answer)."""

    name: str
    start: Snapshot | None
    end: Snapshot | None


@dataclass
class GpuReading:
    """GPU facts for one deployment, from DCGM (or the engine's own gauge)."""

    busy: float = NAN
    util: float = NAN  # DCGM_FI_DEV_GPU_UTIL as 0..1, kept next to busy: the gap is evidence
    gpus: float = NAN
    memory_used_bytes: float = NAN
    power_w: float = NAN
    source: str = ""
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _pod_of(labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    for pod_label, ns_label in DCGM.pod_labels:
        if labels.get(pod_label):
            return labels[pod_label], labels.get(ns_label)
    return None, None


def read_gpus(
    dcgm: Sequence[Snapshot], targets: Sequence[Mapping[str, str]], *, only_deployment: bool
) -> GpuReading:
    """Join DCGM GPU series to the deployment's replicas by pod and namespace.

    ``targets`` are the replicas' identity labels. Without pod labels on either side the join is
    impossible; then, and only when one deployment is being observed, every GPU in the DCGM input
    is attributed to it (a single host), which is said in the notes.
    """
    out = GpuReading()
    rows: dict[tuple, dict[str, float | str | None]] = {}
    for snap in dcgm:
        for metric in DCGM.busy:
            for labels, v in snap.series(metric.name).items():
                d = dict(labels)
                gid = tuple(d.get(k, "") for k in DCGM.gpu_id_labels)
                row = rows.setdefault(gid, {"pod": None, "ns": None})
                pod, ns = _pod_of(d)
                if pod:
                    row["pod"], row["ns"] = pod, ns
                if metric.name not in row and not math.isnan(v):
                    ratio = v * metric.scale
                    row[metric.name] = ratio / 100.0 if ratio > 1.0 else ratio
        for name, key in ((DCGM.memory_used_mib, "mem"), (DCGM.power_w, "power")):
            for labels, v in snap.series(name).items():
                d = dict(labels)
                gid = tuple(d.get(k, "") for k in DCGM.gpu_id_labels)
                rows.setdefault(gid, {"pod": None, "ns": None})[key] = v
    if not rows:
        return out
    wanted = {(t.get("pod"), t.get("namespace")) for t in targets if t.get("pod")}
    if wanted:

        def joined(row: Mapping) -> bool:
            return any(
                row["pod"] == p and (ns is None or row["ns"] in (None, ns)) for p, ns in wanted
            )

        chosen = [r for r in rows.values() if joined(r)]
        if not chosen:
            out.missing.append(
                "gpu_busy: no DCGM GPU series carries the replicas' pod labels "
                f"({', '.join(sorted(p for p, _ in wanted))})"
            )
            return out
    elif any(r["pod"] for r in rows.values()):
        out.missing.append(
            "gpu_busy: DCGM series name pods but the replicas' pods are unknown; "
            "give each replica its pod and namespace to join them"
        )
        return out
    elif only_deployment:
        chosen = list(rows.values())
        out.notes.append(
            f"DCGM series carry no pod labels: all {len(chosen)} GPU(s) attributed to this "
            "deployment"
        )
    else:
        out.missing.append("gpu_busy: DCGM series carry no pod labels to split among deployments")
        return out
    busy_vals, sources = [], set()
    for r in chosen:
        for metric in DCGM.busy:
            if metric.name in r:
                busy_vals.append(float(r[metric.name]))  # type: ignore[arg-type]
                sources.add(metric.name)
                break
    out.gpus = float(len(chosen))
    if busy_vals:
        out.busy = math.fsum(busy_vals) / len(busy_vals)
        out.source = "+".join(sorted(sources))
        if "DCGM_FI_PROF_GR_ENGINE_ACTIVE" not in sources:
            out.notes.append(
                "gpu_busy from DCGM_FI_DEV_GPU_UTIL: time with any kernel running, so it reads "
                "high even at batch size 1 (DCGM_FI_PROF_GR_ENGINE_ACTIVE is not exported)"
            )
    utils = [float(r[u.name]) for r in chosen for u in DCGM.busy[1:] if u.name in r]  # type: ignore[arg-type]
    if utils:
        out.util = math.fsum(utils) / len(utils)
    mems = [float(r["mem"]) for r in chosen if isinstance(r.get("mem"), float)]
    if mems:
        out.memory_used_bytes = math.fsum(mems) * 2**20  # FB values are MiB
    powers = [float(r["power"]) for r in chosen if isinstance(r.get("power"), float)]
    if powers:
        out.power_w = math.fsum(powers)
    return out


def gpu_extra(gpu: GpuReading) -> dict[str, float]:
    """GPU facts without a ``Signals`` field, for ``Observation.extra``."""
    return {
        "gpu_util": gpu.util,
        "gpu_memory_used_bytes": gpu.memory_used_bytes,
        "gpu_power_w": gpu.power_w,
    }


# ---- one deployment ------------------------------------------------------------------------------
def _first(snap: Snapshot | None, cands: Iterable[Metric], model) -> tuple[Metric, dict] | None:
    if snap is None:
        return None
    for m in cands:
        found = select(snap, m, model)
        if found:
            return m, found
    return None


def _gauge(snap: Snapshot | None, cands: Sequence[Metric], model) -> float | None:
    hit = _first(snap, cands, model)
    if hit is None:
        return None
    m, found = hit
    vals = [v for v in found.values() if not math.isnan(v)]
    return math.fsum(vals) * m.scale if vals else None


def _kv(snap: Snapshot | None, cands: Sequence[Metric | Ratio], model) -> list[float]:
    if snap is None:
        return []
    for c in cands:
        if isinstance(c, Ratio):
            num = _gauge(snap, (c.num,), model)
            den = _gauge(snap, (c.den,), model)
            if num is not None and den:
                return [num / den]
            continue
        found = select(snap, c, model)
        vals = [v * c.scale for v in found.values() if not math.isnan(v)]
        if vals:
            return vals
    return []


@dataclass
class _Acc:
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def window_signals(
    replicas: Sequence[ReplicaWindow],
    dialect: Dialect,
    *,
    deployment: str,
    model: tuple[str, str] | None = None,
    window_s: float | None = None,
    t_s: float | None = None,
    gpu: GpuReading | None = None,
) -> tuple[Signals, list[str], list[str], dict[str, float]]:
    """Signals of one deployment from its replicas' windows.

    Returns (signals, missing, notes, extra): ``extra`` holds means an engine gives only as
    counter pairs (Triton's microsecond totals, llama.cpp's seconds totals)."""
    acc = _Acc()
    answered = [r for r in replicas if r.end is not None]
    paired = [r for r in answered if r.start is not None]
    if window_s is None:
        spans = [
            r.end.t_s - r.start.t_s  # type: ignore[union-attr]
            for r in paired
            if math.isfinite(r.end.t_s - r.start.t_s)  # type: ignore[union-attr]
        ]
        window_s = math.fsum(spans) / len(spans) if spans else None
    if t_s is None:
        ends = [r.end.t_s for r in answered if math.isfinite(r.end.t_s)]  # type: ignore[union-attr]
        t_s = max(ends) if ends else NAN
    have_rates = bool(paired) and window_s is not None and window_s > 0
    if not paired:
        acc.notes.append(
            f"{deployment}: one scrape per replica: no rates; latency quantiles are over each "
            "engine's lifetime, not a window"
        )
    elif window_s is None or window_s <= 0:
        acc.notes.append(f"{deployment}: window length unknown: rates left NaN (pass window_s)")
    for r in answered:
        if r.start is None and paired:
            acc.notes.append(f"{deployment}: replica {r.name}: no start scrape, left out of rates")

    def rate(cands: Sequence[Metric], sum_all: bool = False) -> float | None:
        """Sum over replicas of the counter increase, per second; None if no series."""
        if not have_rates:
            return None
        total, seen, reset = 0.0, False, False
        for r in paired:
            for m in cands:
                end = select(r.end, m, model)  # type: ignore[arg-type]
                if not end:
                    continue
                d, was_reset = counter_delta(select(r.start, m, model), end)  # type: ignore[arg-type]
                total += d * m.scale
                seen, reset = True, reset or was_reset
                if not sum_all:
                    break
        if reset:
            acc.notes.append(f"{deployment}: a counter reset (replica restart) was handled")
        return total / window_s if seen else None  # type: ignore[operator]

    def gauge_sum(cands: Sequence[Metric], which: str = "end") -> float | None:
        vals = [_gauge(getattr(r, which), cands, model) for r in answered]
        vals = [v for v in vals if v is not None]
        return math.fsum(vals) if vals else None

    values: dict[str, float] = {}

    # gauges ---------------------------------------------------------------------------------
    queue = gauge_sum(dialect.queue)
    running = gauge_sum(dialect.running)
    values["queue_depth"] = NAN if queue is None else queue
    values["running"] = NAN if running is None else running
    per_replica_kv = [_kv(r.end, dialect.kv_usage, model) for r in answered]
    flat = [v for vs in per_replica_kv for v in vs]
    if flat:
        means = [math.fsum(vs) / len(vs) for vs in per_replica_kv if vs]
        values["kv_usage"] = math.fsum(means) / len(means)
        values["kv_usage_max"] = max(flat)
        if max(flat) > 1.0 + 1e-9:
            acc.notes.append(f"{deployment}: KV usage above 1 ({max(flat):g}): unit is not 0-1?")

    # rates ----------------------------------------------------------------------------------
    for key, cands, sum_all in rate_sources(dialect):
        v = rate(cands, sum_all)
        if v is not None:
            values[key] = v
    extra: dict[str, float] = {}
    for key, num, den, scale in dialect.means:
        if have_rates:
            n, d = rate((num,)), rate((den,))
        else:  # lifetime totals from the one scrape
            n, d = gauge_sum((num,)), gauge_sum((den,))
        if n is not None and d:
            extra[key] = n / d * scale
            span = "the window" if have_rates else "the engine's lifetime"
            acc.notes.append(f"{deployment}: {key} = {extra[key]:.4g} over {span}")
    arrived = rate(dialect.arrived)
    if arrived is not None:
        values["arrival_rate_rps"] = arrived
    elif have_rates and ("completed_rps" in values or "errors_per_s" in values):
        finished = values.get("completed_rps", 0.0) + values.get("errors_per_s", 0.0)
        inflight_end, inflight_start = 0.0, 0.0
        have_inflight = False
        for cands in (dialect.queue, dialect.running):
            for r in paired:
                a, b = _gauge(r.start, cands, model), _gauge(r.end, cands, model)
                if a is not None and b is not None:
                    inflight_start, inflight_end, have_inflight = (
                        inflight_start + a,
                        inflight_end + b,
                        True,
                    )
        growth = (inflight_end - inflight_start) / window_s if have_inflight else 0.0  # type: ignore[operator]
        values["arrival_rate_rps"] = max(0.0, finished + growth)
        acc.notes.append(
            f"{deployment}: arrival rate derived as finished + growth of queued and running "
            f"(the engine has no arrival counter){'' if have_inflight else '; no in-flight gauge'}"
        )

    # latency ----------------------------------------------------------------------------------
    for key_base, cands, qs in (
        ("ttft", dialect.ttft, (0.5, 0.95, 0.99)),
        ("tpot", dialect.tpot, (0.5, 0.95)),
        ("e2e", dialect.e2e, (0.95,)),
    ):
        metric = next(
            (
                m
                for m in cands
                if any(
                    select(r.end, replace(m, name=m.name + "_bucket", kind="gauge"), model)  # type: ignore[arg-type]
                    for r in answered
                )
            ),
            None,
        )
        if metric is None:
            continue
        bm = replace(metric, name=metric.name + "_bucket", kind="gauge")
        merged: dict[float, float] = {}
        reset = False
        for r in answered:
            if have_rates and r.start is None:
                continue
            start = select(r.start, bm, model) if (have_rates and r.start) else None
            d, was_reset = histogram_delta(start, select(r.end, bm, model), metric.scale)  # type: ignore[arg-type]
            reset |= was_reset
            for le, c in d.items():
                merged[le] = merged.get(le, 0.0) + c
        if reset:
            acc.notes.append(f"{deployment}: {metric.name} was reset (replica restart); handled")
        for q in qs:
            field_name = f"{key_base}_p{round(q * 100)}_s"
            res = histogram_quantile(q, merged)
            values[field_name] = res.value
            if res.capped:
                acc.notes.append(
                    f"{deployment}: {field_name} lies in the +Inf bucket of {metric.name}: "
                    f"reported as its top finite bound {res.value:g} s, a lower bound"
                )
        if not merged or not any(math.isinf(le) for le in merged):
            acc.missing.append(f"{deployment}: {key_base}: {metric.name} has no +Inf bucket")
        elif merged.get(math.inf, 0.0) <= 0:
            acc.notes.append(
                f"{deployment}: no {metric.name} observations in the window: {key_base} is NaN"
            )
        if metric is not cands[0] and key_base == "tpot":
            acc.notes.append(f"{deployment}: tpot read from {metric.name}")

    # GPU --------------------------------------------------------------------------------------
    if gpu is not None and not math.isnan(gpu.busy):
        values["gpu_busy"] = gpu.busy
        values["gpus"] = gpu.gpus
    elif dialect.gpu_busy:
        engine_busy = [v for r in answered for v in _kv(r.end, dialect.gpu_busy, model)]
        if engine_busy:
            values["gpu_busy"] = math.fsum(engine_busy) / len(engine_busy)
            values["gpus"] = float(len(engine_busy))
            acc.notes.append(f"{deployment}: gpu_busy from {dialect.gpu_busy[0].name}")
    if gpu is not None:
        acc.notes.extend(f"{deployment}: {n}" for n in gpu.notes)
        if "gpu_busy" not in values:
            acc.missing.extend(f"{deployment}: {m}" for m in gpu.missing)

    values["replicas_ready"] = float(len(answered))
    sig = Signals(
        t_s=t_s,
        deployment=deployment,
        interval_s=NAN if window_s is None else float(window_s),
        **values,  # type: ignore[arg-type]
    )
    for name, why in dialect.unavailable.items():
        if name == "gpu_busy" and gpu is not None and gpu.missing:
            continue  # the DCGM join already said why
        if math.isnan(getattr(sig, name, NAN)):
            acc.missing.append(f"{deployment}: {name}: {why}")
    if dialect is not UNKNOWN:
        for name in ("queue_depth", "running", "kv_usage"):
            if math.isnan(getattr(sig, name)) and name not in dialect.unavailable and answered:
                acc.missing.append(f"{deployment}: {name}: no series found in the input")
    return sig, acc.missing, acc.notes, extra


# ---- many deployments ----------------------------------------------------------------------------
def _merged(snaps: Iterable[Snapshot]) -> Snapshot:
    samples: dict = {}
    for s in snaps:
        samples.update(s.samples)
    return Snapshot(NAN, samples)


def _metric_names(dialect: Dialect) -> set[str]:
    out: set[str] = set()
    for group in (dialect.queue, dialect.running, dialect.ttft, dialect.tpot, dialect.e2e):
        out.update(m.name for m in group)
    for group in (dialect.finished_ok, dialect.prompt_tokens, dialect.output_tokens):
        for m in group:
            out.update((m.name, m.name + "_total", m.series_name))
    for c in dialect.kv_usage:
        out.update((c.num.name, c.den.name) if isinstance(c, Ratio) else (c.name,))
    return out


def models_of(dialect: Dialect, snaps: Iterable[Snapshot]) -> list[str | None]:
    """Model label values found on the dialect's series (one deployment each)."""
    if not dialect.model_label:
        return [None]
    found: set[str] = set()
    names = _metric_names(dialect)
    for s in snaps:
        found |= s.label_values(dialect.model_label, names)
    return sorted(found) or [None]


def observe_window(
    replicas: Sequence[ReplicaWindow],
    *,
    deployment: str | None = None,
    model: str | None = None,
    window_s: float | None = None,
    t_s: float | None = None,
    dcgm: Sequence[Snapshot] = (),
    unreadable: Sequence[str] = (),
    dialect: Dialect | None = None,
) -> Observation:
    """Detect the dialect, split by model, and compute Signals for each deployment."""
    ends = [r.end for r in replicas if r.end is not None]
    starts = [r.start for r in replicas if r.start is not None]
    obs = Observation(signals=[], unreadable=list(unreadable))
    if not ends:
        obs.unreadable.append("no replica answered at the end of the window")
        return obs
    dialect = dialect or detect_dialect(_merged(ends or starts))
    obs.dialect = dialect
    if dialect is UNKNOWN:
        names = _merged(ends).names()
        if any(n.startswith("DCGM_FI_") for n in names):
            obs.unreadable.append(
                "only DCGM exporter (GPU) metrics: give them as the GPU source next to an "
                "engine's metrics (dcgm_paths / dcgm_urls)"
            )
        else:
            obs.unreadable.append(
                "no engine metrics recognised (looked for vllm:, sglang:, tgi_, nv_inference_, "
                "nv_trt_llm_, llamacpp:)"
            )
        return obs
    obs.notes.append(f"dialect: {dialect.title}, version {dialect.version_range}")
    obs.notes.extend(dialect.notes)
    models = [model] if model else models_of(dialect, ends)
    for m in models:
        name = (
            deployment
            if (deployment and len(models) == 1)
            else (f"{deployment}/{m}" if deployment else (m or "default"))
        )
        selector = (dialect.model_label, m) if (m and dialect.model_label) else None
        mine = [
            r
            for r in replicas
            if r.end is None
            or selector is None
            or r.end.label_values(selector[0], _metric_names(dialect)) & {selector[1]}
        ]
        gpu = None
        if dcgm:
            gpu = read_gpus(
                dcgm, [r.end.target for r in mine if r.end], only_deployment=len(models) == 1
            )
        sig, missing, notes, extra = window_signals(
            mine, dialect, deployment=name, model=selector, window_s=window_s, t_s=t_s, gpu=gpu
        )
        obs.signals.append(sig)
        obs.missing.extend(missing)
        obs.notes.extend(notes)
        if gpu is not None and not math.isnan(gpu.gpus):
            extra.update(gpu_extra(gpu))
        if extra:
            obs.extra[name] = extra
    return obs
