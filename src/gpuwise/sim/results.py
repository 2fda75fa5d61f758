"""What a simulation leaves behind: per-request records, per-deployment summaries, signals.

The summary answers the questions gpuwise exists for (did the fleet meet its SLO, how busy were
the GPUs, what did a token cost) and ends in its one number: dollars per million output tokens
served inside the SLO. The signals are the same records ``gpuwise.observe`` makes from a live
fleet, so policies and the doctor read a simulation exactly as they read production.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpuwise.signals import Signals, write_signals_csv
from gpuwise.sim.engine import (
    B_BUSY_S,
    B_KV_MAX,
    B_KV_MEAN,
    B_OUTPUT_TOKENS,
    B_PREEMPTIONS,
    B_PROMPT_TOKENS,
    B_QUEUE,
    B_READY,
    B_RUNNING,
    OUTCOME_OK,
    OUTCOME_REJECTED,
)
from gpuwise.spec import Slo

OUTCOME_NAMES = {0: "ok", 1: "rejected", 2: "failed", 3: "timed_out"}
PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True, eq=False)
class DeploymentRequests:
    """Every request of one deployment, as parallel arrays in arrival order (times in seconds).

    Times a request never reached are NaN (a rejected request has no first token); ``replica``
    is -1 for a request that was never routed.
    """

    deployment: str
    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    admitted_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    replica: np.ndarray
    preemptions: np.ndarray
    outcome: np.ndarray

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def ok(self) -> np.ndarray:
        return self.outcome == OUTCOME_OK

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.arrival_s

    @property
    def e2e_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s

    @property
    def tpot_s(self) -> np.ndarray:
        """Mean gap between output tokens after the first; NaN for one-token outputs."""
        steps = (self.output_tokens - 1).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(steps > 0, (self.finish_s - self.first_token_s) / steps, np.nan)

    def slo_met(self, slo: Slo | None) -> np.ndarray:
        """Per request: served and inside every target the SLO sets (rejected requests miss)."""
        met = self.ok.copy()
        if slo is None:
            return met
        with np.errstate(invalid="ignore"):
            if slo.ttft_s is not None:
                met &= self.ttft_s <= slo.ttft_s
            if slo.tpot_s is not None:
                tpot = self.tpot_s
                met &= np.isnan(tpot) | (tpot <= slo.tpot_s)
            if slo.e2e_s is not None:
                met &= self.e2e_s <= slo.e2e_s
        return met


@dataclass(frozen=True)
class DeploymentSummary:
    """One deployment over one simulation; latencies are over served requests, in seconds."""

    deployment: str
    replicas: int
    tp: int
    router: str
    kv_capacity_blocks: int
    duration_s: float  # the arrival window
    span_s: float  # until the last request finished (what is billed)
    requests: int
    ok: int
    rejected: int
    preemptions: int
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p95_s: float
    ttft_p99_s: float
    tpot_p50_s: float
    tpot_p90_s: float
    tpot_p95_s: float
    tpot_p99_s: float
    e2e_p50_s: float
    e2e_p90_s: float
    e2e_p95_s: float
    e2e_p99_s: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    mean_batch_size: float  # requests per executed iteration, weighted by its time
    mean_running_per_replica: float  # the running list's length, time-weighted over the span
    gpu_busy: float  # share of replica time spent executing iterations
    kv_usage_mean: float
    kv_usage_max: float
    gpu_hours: float
    usd_per_gpu_hour: float
    cost_usd: float
    usd_per_1m_output_tokens: float
    slo_percentile: float | None = None
    slo_attainment: float | None = None  # share of all requests meeting every target
    slo_targets_met: bool | None = None  # each target met by at least the percentile's share
    slo_target_attainment: dict[str, float] = field(default_factory=dict)
    slo_percentile_values_s: dict[str, float] = field(default_factory=dict)  # served requests
    usd_per_1m_output_tokens_in_slo: float | None = None  # gpuwise's one number

    def as_dict(self) -> dict[str, Any]:
        return {k: _json_value(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EngineStats:
    """How the kernel got there: for benchmarks, and for tests of its invariants."""

    steps: int  # scheduling decisions (a fast-forwarded decode run is one)
    iterations: int  # engine iterations simulated
    max_kv_blocks_used: int  # the most blocks any replica ever held
    kv_capacity_blocks: int


@dataclass
class SimResult:
    """A fleet simulation: ``requests``, ``summaries`` and ``stats`` keyed by deployment."""

    requests: dict[str, DeploymentRequests]
    summaries: dict[str, DeploymentSummary]
    signals: list[Signals]
    stats: dict[str, EngineStats]
    duration_s: float
    seed: int
    signal_interval_s: float

    def signals_for(self, deployment: str) -> list[Signals]:
        return [s for s in self.signals if s.deployment == deployment]

    def to_dir(self, path: str | Path) -> Path:
        """Write requests.csv, signals.csv and summary.json; same run, same bytes."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        write_requests_csv(self.requests.values(), out / "requests.csv")
        write_signals_csv(self.signals, out / "signals.csv")
        doc = {
            "duration_s": self.duration_s,
            "seed": self.seed,
            "signal_interval_s": self.signal_interval_s,
            "deployments": {k: v.as_dict() for k, v in self.summaries.items()},
            "engine": {k: asdict(v) for k, v in self.stats.items()},
        }
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        tmp.replace(out / "summary.json")
        return out


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    return v


REQUEST_COLUMNS = (
    "deployment",
    "request",
    "arrival_s",
    "input_tokens",
    "output_tokens",
    "replica",
    "admitted_s",
    "first_token_s",
    "finish_s",
    "preemptions",
    "outcome",
)


def _floats(a: np.ndarray) -> list[str]:
    return ["" if x != x else repr(x) for x in a.tolist()]


def write_requests_csv(runs: Any, path: Path) -> Path:
    """One row per request; floats in shortest round-trip form, an empty cell for 'never'."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(REQUEST_COLUMNS) + "\n")
        for run in runs:
            outcome = [OUTCOME_NAMES.get(c, str(c)) for c in run.outcome.tolist()]
            cols = zip(
                range(len(run)),
                _floats(run.arrival_s),
                run.input_tokens.tolist(),
                run.output_tokens.tolist(),
                run.replica.tolist(),
                _floats(run.admitted_s),
                _floats(run.first_token_s),
                _floats(run.finish_s),
                run.preemptions.tolist(),
                outcome,
                strict=True,
            )
            name = run.deployment
            f.writelines(
                f"{name},{i},{a},{p},{o},{r},{ad},{ft},{fi},{pr},{oc}\n"
                for i, a, p, o, r, ad, ft, fi, pr, oc in cols
            )
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- summaries


def _pct(x: np.ndarray, q: float) -> float:
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if x.size else math.nan


def summarize(
    run: DeploymentRequests,
    *,
    replicas_available_s: float,
    tp: int,
    replicas: int,
    router: str,
    usd_per_gpu_hour: float,
    slo: Slo | None,
    duration_s: float,
    span_s: float,
    busy_s: float,
    seq_s: float,
    running_s: float,
    kv_block_s: float,
    max_kv_blocks: int,
    kv_capacity_blocks: int,
) -> DeploymentSummary:
    """The deployment's report card from its requests and the kernel's integrals.

    ``replicas_available_s`` is replica-seconds the deployment had ready (and paid for).
    """
    ok = run.ok
    ttft, tpot, e2e = run.ttft_s[ok], run.tpot_s[ok], run.e2e_s[ok]
    out_tokens = float(run.output_tokens[ok].sum())
    gpu_hours = replicas_available_s * tp / 3600.0
    cost = gpu_hours * usd_per_gpu_hour
    lat: dict[str, float] = {}
    for name, x in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e)):
        for q in PERCENTILES:
            lat[f"{name}_p{q}_s"] = _pct(x, q)
    slo_kw: dict[str, Any] = {}
    if slo is not None:
        n = max(len(run), 1)
        met = run.slo_met(slo)
        per_target: dict[str, float] = {}
        with np.errstate(invalid="ignore"):
            if slo.ttft_s is not None:
                per_target["ttft_s"] = float((ok & (run.ttft_s <= slo.ttft_s)).sum() / n)
            if slo.tpot_s is not None:
                t = run.tpot_s
                per_target["tpot_s"] = float((ok & (np.isnan(t) | (t <= slo.tpot_s))).sum() / n)
            if slo.e2e_s is not None:
                per_target["e2e_s"] = float((ok & (run.e2e_s <= slo.e2e_s)).sum() / n)
        values = {"ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e}
        at_p = {k: _pct(values[k], slo.percentile) for k in per_target}
        in_slo_tokens = float(run.output_tokens[met].sum())
        slo_kw = {
            "slo_percentile": slo.percentile,
            "slo_attainment": float(met.sum() / n),
            "slo_targets_met": all(v >= slo.percentile / 100.0 for v in per_target.values()),
            "slo_target_attainment": per_target,
            "slo_percentile_values_s": at_p,
            "usd_per_1m_output_tokens_in_slo": (
                cost / in_slo_tokens * 1e6 if in_slo_tokens > 0 else math.inf
            ),
        }
    return DeploymentSummary(
        deployment=run.deployment,
        replicas=replicas,
        tp=tp,
        router=router,
        kv_capacity_blocks=kv_capacity_blocks,
        duration_s=duration_s,
        span_s=span_s,
        requests=len(run),
        ok=int(ok.sum()),
        rejected=int((run.outcome == OUTCOME_REJECTED).sum()),
        preemptions=int(run.preemptions.sum()),
        **lat,
        input_tokens_per_s=float(run.input_tokens[ok].sum()) / span_s if span_s > 0 else 0.0,
        output_tokens_per_s=out_tokens / span_s if span_s > 0 else 0.0,
        mean_batch_size=seq_s / busy_s if busy_s > 0 else 0.0,
        mean_running_per_replica=running_s / replicas_available_s if replicas_available_s else 0.0,
        gpu_busy=busy_s / replicas_available_s if replicas_available_s > 0 else 0.0,
        kv_usage_mean=(
            kv_block_s / (kv_capacity_blocks * replicas_available_s)
            if replicas_available_s > 0
            else 0.0
        ),
        kv_usage_max=max_kv_blocks / kv_capacity_blocks,
        gpu_hours=gpu_hours,
        usd_per_gpu_hour=usd_per_gpu_hour,
        cost_usd=cost,
        usd_per_1m_output_tokens=cost / out_tokens * 1e6 if out_tokens > 0 else math.inf,
        **slo_kw,
    )


# ---------------------------------------------------------------- signals


def interval_index(t: np.ndarray, interval_s: float, n_bins: int) -> np.ndarray:
    """Interval of each instant; interval k is (k*interval, (k+1)*interval], as the kernel's."""
    k = np.ceil(t / interval_s).astype(np.int64) - 1
    return np.clip(k, 0, n_bins - 1)


def grouped_percentiles(
    groups: np.ndarray, values: np.ndarray, n_groups: int, qs: tuple[float, ...]
) -> np.ndarray:
    """Percentiles (numpy's linear method) of ``values`` within each group, NaN where empty.

    One sort for all intervals, so a day of 10-second signals costs what one percentile does.
    """
    out = np.full((n_groups, len(qs)), np.nan)
    keep = ~np.isnan(values)
    g, v = groups[keep], values[keep]
    if not v.size:
        return out
    order = np.lexsort((v, g))
    v = v[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    for j, q in enumerate(qs):
        pos = starts[has] + q / 100.0 * (counts[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, starts[has] + counts[has] - 1)
        frac = pos - lo
        out[has, j] = v[lo] + (v[hi] - v[lo]) * frac
    return out


def interval_signals(
    run: DeploymentRequests, bins: np.ndarray, *, interval_s: float, tp: int
) -> list[Signals]:
    """Signals per interval from the kernel's gauges and integrals plus the request records."""
    nb = bins.shape[0]
    if nb == 0:
        return []
    ok = run.ok
    arrivals = np.bincount(interval_index(run.arrival_s, interval_s, nb), minlength=nb)
    rejected = run.outcome == OUTCOME_REJECTED
    errors = np.bincount(interval_index(run.arrival_s[rejected], interval_s, nb), minlength=nb)
    fin_k = interval_index(run.finish_s[ok], interval_s, nb)
    completed = np.bincount(fin_k, minlength=nb)
    first_ok = ok & ~np.isnan(run.first_token_s)
    ttft = grouped_percentiles(
        interval_index(run.first_token_s[first_ok], interval_s, nb),
        run.ttft_s[first_ok],
        nb,
        (50, 95, 99),
    )
    tpot = grouped_percentiles(fin_k, run.tpot_s[ok], nb, (50, 95))
    e2e = grouped_percentiles(fin_k, run.e2e_s[ok], nb, (95,))
    return [
        signal_row(
            run.deployment,
            k,
            interval_s,
            bins[k],
            arrivals[k],
            completed[k],
            errors[k],
            ttft[k],
            tpot[k],
            e2e[k],
            starting=0.0,
            warm=0.0,
            gpus=float(bins[k, B_READY]) * tp,
        )
        for k in range(nb)
    ]


def signal_row(
    deployment: str,
    k: int,
    interval_s: float,
    b: np.ndarray,
    arrivals: float,
    completed: float,
    errors: float,
    ttft: np.ndarray,
    tpot: np.ndarray,
    e2e: np.ndarray,
    *,
    starting: float,
    warm: float,
    gpus: float,
) -> Signals:
    """One interval's record from the kernel's bin ``b`` (gauges and integrals) and the counts
    and percentiles of the requests in it; shared by the fixed-fleet and autoscaling paths.
    ``k`` is the interval's index in the run (its end is ``(k + 1) * interval_s``)."""
    dt = interval_s
    ready = float(b[B_READY])
    return Signals(
        t_s=(k + 1) * dt,
        deployment=deployment,
        interval_s=dt,
        arrival_rate_rps=float(arrivals) / dt,
        completed_rps=float(completed) / dt,
        prompt_tokens_per_s=float(b[B_PROMPT_TOKENS]) / dt,
        output_tokens_per_s=float(b[B_OUTPUT_TOKENS]) / dt,
        queue_depth=float(b[B_QUEUE]),
        running=float(b[B_RUNNING]),
        kv_usage=float(b[B_KV_MEAN]),
        kv_usage_max=float(b[B_KV_MAX]),
        gpu_busy=float(b[B_BUSY_S]) / (dt * ready) if ready else math.nan,
        preemptions_per_s=float(b[B_PREEMPTIONS]) / dt,
        errors_per_s=float(errors) / dt,
        ttft_p50_s=float(ttft[0]),
        ttft_p95_s=float(ttft[1]),
        ttft_p99_s=float(ttft[2]),
        tpot_p50_s=float(tpot[0]),
        tpot_p95_s=float(tpot[1]),
        e2e_p95_s=float(e2e[0]),
        replicas_ready=ready,
        replicas_starting=starting,
        replicas_warm=warm,
        gpus=gpus,
    )
