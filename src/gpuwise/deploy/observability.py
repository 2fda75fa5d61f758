"""A Grafana dashboard and Prometheus alert rules for a fleet, on current vLLM metric names.

Several published dashboards still query names vLLM removed (``vllm:gpu_cache_usage_perc``,
``vllm:time_per_output_token_seconds``, ``vllm:num_preemptions`` without ``_total``) and so show
empty panels that look like a healthy fleet. Everything here uses the names vLLM 0.32 exports
(see ``gpuwise.observe.dialects``), one row of panels per deployment, and SLO thresholds from the
spec. Engine series are selected by ``model_name``: the deployment name, or ``<name>-g<i>`` for
its GPU group ``i`` as the emitted manifests serve it; GPU utilization comes from the DCGM exporter
joined on the pod label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class DeploymentView:
    """What the dashboard and the alerts need to know about one deployment."""

    name: str
    usd_per_replica_hour: float
    gpus_per_replica: int
    max_num_seqs: int
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    percentile: float = 95.0


def views_from_resolved(resolved: Any) -> list[DeploymentView]:
    out = []
    for d in resolved.deployments:
        slo = d.slo
        out.append(
            DeploymentView(
                name=d.deployment.name,
                usd_per_replica_hour=d.usd_per_replica_hour,
                gpus_per_replica=d.deployment.tp,
                max_num_seqs=d.deployment.limits.max_num_seqs,
                ttft_s=slo.ttft_s if slo else None,
                tpot_s=slo.tpot_s if slo else None,
                e2e_s=slo.e2e_s if slo else None,
                percentile=slo.percentile if slo else 95.0,
            )
        )
    return out


def _sel(v: DeploymentView) -> str:
    # The emitted manifests serve each deployment's group i as "<name>-g<i>" (vLLM labels metrics
    # with the first served name); a fleet started by hand may use the bare name.
    return f'model_name=~"{v.name}(-g[0-9]+)?"'


def _q(pct: float, metric: str, sel: str, window: str = "$__rate_interval") -> str:
    return (
        f"histogram_quantile({pct / 100:g}, sum by (le) (rate({metric}_bucket{{{sel}}}[{window}])))"
    )


def _replicas(v: DeploymentView) -> str:
    return f"count(vllm:num_requests_running{{{_sel(v)}}})"


def panel_queries(v: DeploymentView) -> dict[str, list[tuple[str, str]]]:
    """Panel title -> [(legend, PromQL)] for one deployment."""
    s = _sel(v)
    q = {
        "Queue depth (waiting requests)": [("waiting", f"sum(vllm:num_requests_waiting{{{s}}})")],
        "Running requests": [
            ("running", f"sum(vllm:num_requests_running{{{s}}})"),
            ("batch limit (all replicas)", f"{v.max_num_seqs} * {_replicas(v)}"),
        ],
        "KV-cache usage": [
            ("mean", f"avg(vllm:kv_cache_usage_perc{{{s}}})"),
            ("fullest replica", f"max(vllm:kv_cache_usage_perc{{{s}}})"),
        ],
        "Time to first token": [
            (f"p{p}", _q(p, "vllm:time_to_first_token_seconds", s)) for p in (50, 95, 99)
        ],
        "Inter-token latency (TPOT)": [
            (f"p{p}", _q(p, "vllm:inter_token_latency_seconds", s)) for p in (50, 95, 99)
        ],
        "Tokens per second": [
            ("prompt", f"sum(rate(vllm:prompt_tokens_total{{{s}}}[$__rate_interval]))"),
            ("generated", f"sum(rate(vllm:generation_tokens_total{{{s}}}[$__rate_interval]))"),
        ],
        "GPU utilization (DCGM)": [
            (
                "mean",
                "avg(DCGM_FI_DEV_GPU_UTIL * on (pod) group_left() "
                f"max by (pod) (vllm:num_requests_running{{{s}}} * 0 + 1))",
            ),
        ],
        "Replicas": [("ready (answering /metrics)", _replicas(v))],
        "Cost per 1M generated tokens (USD)": [
            (
                "$/1M output tokens",
                f"({v.usd_per_replica_hour:g} * {_replicas(v)} / 3600) / "
                f"sum(rate(vllm:generation_tokens_total{{{s}}}[$__rate_interval])) * 1e6",
            ),
        ],
    }
    return q


_UNITS = {
    "Time to first token": "s",
    "Inter-token latency (TPOT)": "s",
    "KV-cache usage": "percentunit",
    "GPU utilization (DCGM)": "percent",
    "Cost per 1M generated tokens (USD)": "currencyUSD",
}


def grafana_dashboard(views: list[DeploymentView], title: str = "gpuwise fleet") -> dict[str, Any]:
    """A Grafana dashboard (schema 39) with a row of panels per deployment."""
    panels: list[dict[str, Any]] = []
    pid = 1
    y = 0
    for v in views:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": f"{v.name}",
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid += 1
        y += 1
        for i, (ptitle, targets) in enumerate(panel_queries(v).items()):
            panels.append(
                {
                    "id": pid,
                    "type": "timeseries",
                    "title": f"{v.name}: {ptitle}",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": y + (i // 3) * 8},
                    "fieldConfig": {
                        "defaults": {"unit": _UNITS.get(ptitle, "short")},
                        "overrides": [],
                    },
                    "targets": [
                        {
                            "refId": chr(65 + j),
                            "expr": expr,
                            "legendFormat": legend,
                            "datasource": {"type": "prometheus", "uid": "${datasource}"},
                        }
                        for j, (legend, expr) in enumerate(targets)
                    ],
                }
            )
            pid += 1
        y += 8 * 3
    return {
        "title": title,
        "uid": "gpuwise-" + "".join(c for c in title.lower() if c.isalnum())[:30],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "tags": ["gpuwise", "llm", "vllm"],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": panels,
    }


def alert_rules(views: list[DeploymentView], group: str = "gpuwise") -> dict[str, Any]:
    """Prometheus alerting rules: SLO breaches and saturation, per deployment."""
    rules: list[dict[str, Any]] = []
    for v in views:
        s = _sel(v)
        pct = v.percentile
        lab = {"deployment": v.name}
        slo_rules = (
            ("TTFT", v.ttft_s, "vllm:time_to_first_token_seconds"),
            ("TPOT", v.tpot_s, "vllm:inter_token_latency_seconds"),
            ("E2E", v.e2e_s, "vllm:e2e_request_latency_seconds"),
        )
        for what, target, metric in slo_rules:
            if target is None:
                continue
            rules.append(
                {
                    "alert": f"GpuwiseSlo{what}Breach",
                    "expr": f"{_q(pct, metric, s, '5m')} > {target:g}",
                    "for": "5m",
                    "labels": {**lab, "severity": "page"},
                    "annotations": {
                        "summary": f"{v.name}: p{pct:g} {what} above the SLO of {target:g} s",
                        "description": "Check queue depth first: a queue means missing capacity, "
                        "no queue means slow execution (batch or prompts too large).",
                    },
                }
            )
        rules += [
            {
                "alert": "GpuwiseQueueBehindSaturatedEngine",
                "expr": (
                    f"sum(vllm:num_requests_waiting{{{s}}}) > 0 and "
                    f"sum(vllm:num_requests_running{{{s}}}) >= "
                    f"0.9 * {v.max_num_seqs} * {_replicas(v)}"
                ),
                "for": "3m",
                "labels": {**lab, "severity": "page"},
                "annotations": {
                    "summary": f"{v.name}: requests queue behind full batches "
                    "(CPU and memory dashboards stay green)"
                },
            },
            {
                "alert": "GpuwiseKvCacheNearFull",
                "expr": f"max(vllm:kv_cache_usage_perc{{{s}}}) > 0.95",
                "for": "5m",
                "labels": {**lab, "severity": "warn"},
                "annotations": {
                    "summary": f"{v.name}: KV cache above 95%: admissions stall "
                    "and preemptions follow"
                },
            },
            {
                "alert": "GpuwisePreemptions",
                "expr": f"sum(rate(vllm:num_preemptions_total{{{s}}}[5m])) > 0",
                "for": "5m",
                "labels": {**lab, "severity": "warn"},
                "annotations": {"summary": f"{v.name}: requests are preempted and recomputed"},
            },
            {
                "alert": "GpuwiseAbortedRequests",
                "expr": (
                    f'sum(rate(vllm:request_success_total{{{s},finished_reason="abort"}}'
                    f"[5m])) / sum(rate(vllm:request_success_total{{{s}}}[5m])) > 0.05"
                ),
                "for": "10m",
                "labels": {**lab, "severity": "warn"},
                "annotations": {"summary": f"{v.name}: more than 5% of requests aborted"},
            },
            {
                "alert": "GpuwiseIdleReplicas",
                "expr": (
                    f"sum(vllm:num_requests_running{{{s}}}) < "
                    f"0.1 * {v.max_num_seqs} * ({_replicas(v)} - 1)"
                ),
                "for": "30m",
                "labels": {**lab, "severity": "ticket"},
                "annotations": {
                    "summary": f"{v.name}: replicas idle for 30 minutes",
                    "description": f"Each idle replica costs ${v.usd_per_replica_hour:,.2f}/h; "
                    "run 'gpuwise doctor' for the dollars at stake.",
                },
            },
            {
                "alert": "GpuwiseNoReplicaAnswering",
                "expr": f"absent(vllm:num_requests_running{{{s}}})",
                "for": "2m",
                "labels": {**lab, "severity": "page"},
                "annotations": {"summary": f"{v.name}: no replica exports metrics"},
            },
        ]
    return {"groups": [{"name": group, "rules": rules}]}


def render_dashboard(views: list[DeploymentView], title: str) -> str:
    return json.dumps(grafana_dashboard(views, title), indent=2) + "\n"


def render_alert_rules(views: list[DeploymentView], group: str = "gpuwise") -> str:
    return yaml.safe_dump(alert_rules(views, group), sort_keys=False, width=1000)
