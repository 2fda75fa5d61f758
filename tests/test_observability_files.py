"""Dashboards and alert rules: valid for promtool, and every vLLM name is one vLLM exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gpuwise.deploy.observability import (
    alert_rules,
    grafana_dashboard,
    render_alert_rules,
    views_from_resolved,
)
from gpuwise.resolve import resolve_spec

ROOT = Path(__file__).resolve().parents[1]
REAL_VLLM = ROOT / "tests/data/expositions/vllm-0.32.0-cpu-tiny-idle.txt"
REMOVED = (
    "vllm:gpu_cache_usage_perc",
    "vllm:time_per_output_token_seconds",
    "vllm:num_preemptions[",
)


def all_exprs() -> list[str]:
    views = views_from_resolved(resolve_spec(ROOT / "examples/three-models.yaml"))
    dash = grafana_dashboard(views)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [r["expr"] for g in alert_rules(views)["groups"] for r in g["rules"]]
    return exprs


def test_metric_names_are_current_vllm_names() -> None:
    def base(name: str) -> str:
        return re.sub(r"_(bucket|sum|count)$", "", name)

    exported = {base(m) for m in re.findall(r"^(vllm:[a-z0-9_]+)", REAL_VLLM.read_text(), re.M)}
    used = {base(m) for e in all_exprs() for m in re.findall(r"vllm:[a-z0-9_]+", e)}
    assert used, "no vLLM metric used"
    missing = sorted(u for u in used if u not in exported)
    assert not missing, f"names vLLM 0.32.0 does not export: {missing}"
    joined = "\n".join(all_exprs())
    assert not any(r in joined for r in REMOVED)


def test_dashboard_has_the_panels_an_engineer_looks_at() -> None:
    views = views_from_resolved(resolve_spec(ROOT / "examples/chat-8b-h100.yaml"))
    titles = [p["title"] for p in grafana_dashboard(views)["panels"]]
    for want in (
        "Queue depth",
        "Running requests",
        "KV-cache usage",
        "Time to first token",
        "Inter-token latency",
        "Tokens per second",
        "GPU utilization (DCGM)",
        "Replicas",
        "Cost per 1M generated tokens",
    ):
        assert any(want in t for t in titles), want
    json.dumps(grafana_dashboard(views))  # serialisable


def test_alert_thresholds_come_from_the_slo() -> None:
    views = views_from_resolved(resolve_spec(ROOT / "examples/chat-8b-h100.yaml"))
    rules = {r["alert"]: r for r in alert_rules(views)["groups"][0]["rules"]}
    assert rules["GpuwiseSloTTFTBreach"]["expr"].endswith("> 2")
    assert "histogram_quantile(0.95" in rules["GpuwiseSloTPOTBreach"]["expr"]


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (scripts/prometheus.sh install)",
)
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    views = views_from_resolved(resolve_spec(ROOT / "examples/three-models.yaml"))
    f = tmp_path / "rules.yaml"
    f.write_text(render_alert_rules(views))
    r = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
