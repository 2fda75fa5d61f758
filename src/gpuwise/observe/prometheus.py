"""Read signals from a Prometheus server over its HTTP API.

In a cluster the metrics store already holds every replica's history, so the window arithmetic
is Prometheus' own (``rate``, ``increase``, ``avg_over_time``): correct across scrapes, counter
resets and replicas that come and go. The dialect tables decide the metric names; this module
only writes the PromQL and reads the answers.

Histogram quantiles are computed here from ``sum by (le) (rate(X_bucket[w]))`` rather than with
``histogram_quantile`` in PromQL: the arithmetic is the same (``window.histogram_quantile`` is
a port of promql/quantile.go), one query gives p50/p95/p99, and only the bucket counts show
whether the answer fell into ``+Inf`` (a lower bound the report must flag).

A Prometheus that is down or slow is a user problem with a clear fix, so it raises
``ObserveError`` (a ``UserError``: the CLI prints the message, no traceback).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import httpx

from gpuwise.errors import UserError
from gpuwise.observe.dialects import (
    DCGM,
    UNKNOWN,
    Dialect,
    Metric,
    Ratio,
    detect_dialect,
    promql_dedupe,
    promql_selector,
    rate_sources,
)
from gpuwise.observe.exposition import Snapshot
from gpuwise.observe.observation import Observation
from gpuwise.observe.window import gpu_extra, histogram_quantile, read_gpus
from gpuwise.signals import NAN, Signals

__all__ = [
    "ObserveError",
    "PrometheusClient",
    "histogram_quantile_promql",
    "signals_from_prometheus",
]

ENGINE_NAME_RE = "vllm:.+|sglang:.+|tgi_.+|nv_inference_.+|nv_trt_llm_.+|nv_gpu_.+|llamacpp:.+"
RETRYABLE_STATUS = (502, 503, 504)


class ObserveError(UserError):
    """Metrics could not be read at all (Prometheus down, slow, or rejecting the query)."""


Vector = list[tuple[dict[str, str], float]]
Matrix = list[tuple[dict[str, str], list[tuple[float, float]]]]


class PrometheusClient:
    """A small client for ``/api/v1/query`` and ``/api/v1/query_range``.

    Retries connection failures, timeouts and 502/503/504 (Prometheus restarting or overloaded)
    ``retries`` times with a short backoff; a query Prometheus rejects (400/422) is not retried.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        retries: int = 2,
        *,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.retries = max(0, int(retries))
        self.backoff_s = backoff_s
        self._client = httpx.Client(
            base_url=self.base_url, timeout=self.timeout_s, trust_env=False, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport -------------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, str]) -> dict:
        where = f"Prometheus at {self.base_url}"
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * attempt)
            try:
                resp = self._client.get(path, params=params)
            except httpx.TimeoutException:
                last = (
                    f"{where} did not answer within {self.timeout_s:g} s; is it running? "
                    "check --prometheus"
                )
                continue
            except httpx.ConnectError as exc:
                detail = "connection refused" if "refused" in str(exc).lower() else str(exc)
                last = f"{where} is unreachable ({detail}); is it running? check --prometheus"
                continue
            except httpx.HTTPError as exc:
                last = f"{where} failed: {type(exc).__name__}: {exc}"
                continue
            if resp.status_code in RETRYABLE_STATUS:
                last = f"{where} answered HTTP {resp.status_code}; is it overloaded or starting?"
                continue
            try:
                body = resp.json()
            except ValueError:
                raise ObserveError(
                    f"{where} answered HTTP {resp.status_code} with no JSON; is --prometheus "
                    "the Prometheus base URL?"
                ) from None
            if body.get("status") != "success":
                raise ObserveError(
                    f"{where} rejected {params.get('query', '')!r}: "
                    f"{body.get('errorType', 'error')}: {body.get('error', resp.status_code)}"
                )
            return body.get("data") or {}
        raise ObserveError(last)

    # ---- API ------------------------------------------------------------------------------------
    def query(self, promql: str, at: float | None = None) -> Vector:
        """Instant query; a scalar answer comes back as one sample with no labels."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [({}, float(result[1]))]
        out = []
        for item in result or []:
            out.append((dict(item.get("metric", {})), float(item["value"][1])))
        return out

    def query_range(self, promql: str, start: float, end: float, step: float) -> Matrix:
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        data = self._get("/api/v1/query_range", params)
        out = []
        for item in data.get("result") or []:
            points = [(float(t), float(v)) for t, v in item.get("values", [])]
            out.append((dict(item.get("metric", {})), points))
        return out

    def ready(self) -> bool:
        try:
            return self._client.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False


def histogram_quantile_promql(q: float, name: str, selector: str, window_s: float) -> str:
    """The PromQL a dashboard or alert rule would use for the same quantile."""
    sel = selector.strip().strip("{}")
    return (
        f"histogram_quantile({q:g}, sum by (le) (rate({name}_bucket{{{sel}}}[{_dur(window_s)}])))"
    )


def _dur(window_s: float) -> str:
    return f"{max(1, round(window_s))}s"


# ---- signals ------------------------------------------------------------------------------------
class _Reader:
    """Runs the per-deployment queries; a rejected query is recorded, not fatal."""

    def __init__(self, client: PrometheusClient, at: float, window_s: float, obs: Observation):
        self.client, self.at, self.window_s, self.obs = client, at, window_s, obs
        self.w = _dur(window_s)

    def q(self, promql: str, at: float | None = None) -> Vector | None:
        try:
            return self.client.query(promql, self.at if at is None else at)
        except ObserveError as exc:
            if "rejected" not in str(exc):
                raise
            self.obs.unreadable.append(str(exc))
            return None

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        res = self.q(promql, at)
        if not res:
            return None
        v = res[0][1]
        return None if math.isnan(v) else v


def _exposed(metric: Metric, names: set[str]) -> str | None:
    """The name Prometheus stores for ``metric`` (counters: ``x`` or ``x_total``)."""
    if metric.kind == "counter":
        for n in (metric.name + "_total", metric.name):
            if n in names:
                return n
        return None
    if metric.kind == "histogram":
        return metric.name if metric.name + "_bucket" in names else None
    return metric.series_name if metric.series_name in names else None


def _discover(reader: _Reader, selector: str) -> Snapshot:
    sel = selector.strip().strip("{}")
    extra = f",{sel}" if sel else ""
    res = reader.q(
        f'group by (__name__, engine, model_name, model, name) ({{__name__=~"{ENGINE_NAME_RE}"'
        f"{extra}}})"
    )
    samples = {}
    for labels, _ in res or []:
        name = labels.pop("__name__", "")
        samples[(name, frozenset(labels.items()))] = 1.0
    return Snapshot(reader.at, samples)


def signals_from_prometheus(
    client: PrometheusClient,
    deployment_selector: str,
    window_s: float,
    at: float | None = None,
    *,
    deployment: str | None = None,
    model: str | None = None,
) -> Observation:
    """Signals for the deployment(s) whose series match ``deployment_selector``.

    ``deployment_selector`` is a PromQL label matcher list such as ``job="vllm"`` or
    ``namespace="prod",pod=~"llama-.*"``; ``at`` is the end of the window (default now).
    One Signals per model label value (or one named ``deployment``).
    """
    if not window_s > 0:
        raise ObserveError(f"the window must be positive, got {window_s:g} s")
    at = time.time() if at is None else float(at)
    obs = Observation(signals=[])
    reader = _Reader(client, at, window_s, obs)
    probe = _discover(reader, deployment_selector)
    names = {n for n, _ in probe.samples}
    dialect = detect_dialect(probe)
    obs.dialect = dialect
    if dialect is UNKNOWN:
        obs.unreadable.append(
            f"no engine series match {{{deployment_selector.strip('{}')}}} in Prometheus at "
            f"{client.base_url} (looked for vllm:, sglang:, tgi_, nv_inference_, nv_trt_llm_, "
            "llamacpp:)"
        )
        return obs
    obs.notes.append(f"dialect: {dialect.title}, version {dialect.version_range}")
    obs.notes.extend(dialect.notes)
    if model:
        models: list[str | None] = [model]
    elif dialect.model_label:
        models = sorted(probe.label_values(dialect.model_label, names)) or [None]
    else:
        models = [None]
    for m in models:
        name = (
            deployment
            if (deployment and len(models) == 1)
            else (f"{deployment}/{m}" if deployment else (m or "default"))
        )
        sel_model = (dialect.model_label, m) if (m and dialect.model_label) else None
        _one(reader, dialect, names, deployment_selector, name, sel_model, len(models) == 1)
    return obs


def _one(
    r: _Reader,
    dialect: Dialect,
    names: set[str],
    selector: str,
    deployment: str,
    model: tuple[str, str] | None,
    only: bool,
) -> None:
    obs, w, window_s = r.obs, r.w, r.window_s
    values: dict[str, float] = {}

    def sel(metric: Metric) -> str:
        return promql_selector(metric, selector, model)

    def first(cands: Sequence[Metric]) -> tuple[Metric, str] | None:
        for c in cands:
            n = _exposed(c, names)
            if n:
                return c, n
        return None

    def gauge(cands: Sequence[Metric], agg: str = "sum", at: float | None = None) -> float | None:
        hit = first(cands)
        if not hit:
            return None
        m, n = hit
        v = r.scalar(f"{agg}({promql_dedupe(n + sel(m), m)})", at)
        return None if v is None else v * m.scale

    def rate(cands: Sequence[Metric], sum_all: bool = False) -> float | None:
        total, seen = 0.0, False
        for c in cands:
            n = _exposed(c, names)
            if not n:
                continue
            v = r.scalar(f"sum({promql_dedupe(f'rate({n}{sel(c)}[{w}])', c)})")
            if v is not None:
                total, seen = total + v * c.scale, True
            if not sum_all:
                break
        return total if seen else None

    for key, cands in (("queue_depth", dialect.queue), ("running", dialect.running)):
        v = gauge(cands)
        if v is not None:
            values[key] = v
    for c in dialect.kv_usage:
        if isinstance(c, Ratio):
            num, den = gauge((c.num,)), gauge((c.den,))
            if num is not None and den:
                values["kv_usage"] = values["kv_usage_max"] = num / den
                break
            continue
        mean, peak = gauge((c,), "avg"), gauge((c,), "max")
        if mean is not None:
            values["kv_usage"], values["kv_usage_max"] = mean, peak if peak is not None else mean
            break
    for key, cands, sum_all in (
        *rate_sources(dialect),
        ("arrival_rate_rps", dialect.arrived, False),
    ):
        v = rate(cands, sum_all)
        if v is not None:
            values[key] = v
    extra: dict[str, float] = {}
    for key, num, den, scale in dialect.means:
        n, d = rate((num,)), rate((den,))
        if n is not None and d:
            extra[key] = n / d * scale
            obs.notes.append(f"{deployment}: {key} = {extra[key]:.4g} over the window")
    if "arrival_rate_rps" not in values and ("completed_rps" in values or "errors_per_s" in values):
        finished = values.get("completed_rps", 0.0) + values.get("errors_per_s", 0.0)
        growth = 0.0
        for cands in (dialect.queue, dialect.running):
            now, before = gauge(cands), gauge(cands, at=r.at - window_s)
            if now is not None and before is not None:
                growth += (now - before) / window_s
        values["arrival_rate_rps"] = max(0.0, finished + growth)
        obs.notes.append(
            f"{deployment}: arrival rate derived as finished + growth of queued and running"
        )

    for key_base, cands, qs in (
        ("ttft", dialect.ttft, (0.5, 0.95, 0.99)),
        ("tpot", dialect.tpot, (0.5, 0.95)),
        ("e2e", dialect.e2e, (0.95,)),
    ):
        hit = first(cands)
        if not hit:
            continue
        m, n = hit
        res = r.q(f"sum by (le) ({promql_dedupe(f'rate({n}_bucket{sel(m)}[{w}])', m)})")
        if res is None:
            continue
        buckets: dict[float, float] = {}
        for labels, v in res:
            try:
                le = float(labels.get("le", "nan"))
            except ValueError:
                continue
            if not math.isnan(le):
                buckets[le if math.isinf(le) else le * m.scale] = v
        for q in qs:
            field_name = f"{key_base}_p{round(q * 100)}_s"
            qr = histogram_quantile(q, buckets)
            values[field_name] = qr.value
            if qr.capped:
                obs.notes.append(
                    f"{deployment}: {field_name} lies in the +Inf bucket of {n}: reported as its "
                    f"top finite bound {qr.value:g} s, a lower bound"
                )
        if buckets and buckets.get(math.inf, 0.0) <= 0:
            obs.notes.append(f"{deployment}: no {n} observations in the window: {key_base} is NaN")

    # replicas ----------------------------------------------------------------------------------
    hit = first(dialect.running) or first(dialect.queue)
    pods: list[dict[str, str]] = []
    if hit:
        m, n = hit
        ready = r.scalar(f"count(count by (instance) ({n}{sel(m)}))")
        values["replicas_ready"] = ready if ready is not None else 0.0
        for labels, _ in r.q(f"group by (namespace, pod) ({n}{sel(m)})") or []:
            if labels.get("pod"):
                pods.append({"pod": labels["pod"], "namespace": labels.get("namespace", "")})
    down = r.scalar(f"count(up{promql_selector(Metric('up'), selector)} == 0)")
    if down:
        obs.notes.append(f"{deployment}: {down:g} scrape target(s) matching the selector are down")

    # GPU ---------------------------------------------------------------------------------------
    gpu = _gpus(r, pods, only)
    if gpu is not None and not math.isnan(gpu.busy):
        values["gpu_busy"], values["gpus"] = gpu.busy, gpu.gpus
        obs.notes.extend(f"{deployment}: {x}" for x in gpu.notes)
        extra.update(gpu_extra(gpu))
    elif dialect.gpu_busy:
        g = dialect.gpu_busy[0]
        if _exposed(g, names):
            v = r.scalar(f"avg(avg_over_time({g.name}{sel(g)}[{w}]))")
            if v is not None:
                values["gpu_busy"] = v * g.scale
                obs.notes.append(f"{deployment}: gpu_busy from {g.name}")
    if "gpu_busy" not in values and gpu is not None:
        obs.missing.extend(f"{deployment}: {x}" for x in gpu.missing)

    if extra:
        obs.extra[deployment] = extra
    sig = Signals(t_s=r.at, deployment=deployment, interval_s=float(window_s), **values)  # type: ignore[arg-type]
    obs.signals.append(sig)
    for field_name, why in dialect.unavailable.items():
        if field_name == "gpu_busy" and gpu is not None and gpu.missing:
            continue
        if math.isnan(getattr(sig, field_name, NAN)):
            obs.missing.append(f"{deployment}: {field_name}: {why}")
    for field_name in ("queue_depth", "running", "kv_usage"):
        if math.isnan(getattr(sig, field_name)) and field_name not in dialect.unavailable:
            obs.missing.append(f"{deployment}: {field_name}: no series found in Prometheus")


def _gpus(r: _Reader, pods: list[dict[str, str]], only: bool):
    """DCGM series over the window, as snapshots for ``window.read_gpus`` to join."""
    present = r.scalar(f'count({{__name__=~"{"|".join(m.name for m in DCGM.busy)}"}})')
    if not present:
        if pods or only:
            r.obs.notes.append("no DCGM exporter series in Prometheus: gpu_busy unavailable")
        return None
    filters = [""]
    if pods:
        regex = "|".join(sorted({p["pod"] for p in pods}))
        filters = [f'{pod_label}=~"{regex}"' for pod_label, _ in DCGM.pod_labels]
    snaps = []
    for f in filters:
        samples = {}
        for name in [m.name for m in DCGM.busy] + [DCGM.memory_used_mib, DCGM.power_w]:
            for labels, v in r.q(f"avg_over_time({name}{{{f}}}[{r.w}])") or []:
                labels.pop("__name__", None)
                samples[(name, frozenset(labels.items()))] = v
        snaps.append(Snapshot(r.at, samples))
    targets = [{k: v for k, v in p.items() if v} for p in pods]
    return read_gpus(snaps, targets, only_deployment=only)
