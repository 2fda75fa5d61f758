"""Doctor rules and cost arithmetic on hand-built signal windows (the e2e tests use real ones)."""

from __future__ import annotations

import json
import math

import pytest

from gpuwise.context import DeploymentContext, FleetContext
from gpuwise.cost import cost_report
from gpuwise.doctor import diagnose
from gpuwise.signals import Signals
from gpuwise.spec import Slo

SLO = Slo(percentile=95, ttft_s=1.0, tpot_s=0.1)


def rows(n: int = 12, **kw: float) -> list[Signals]:
    base = dict(
        deployment="chat",
        interval_s=10.0,
        arrival_rate_rps=5.0,
        completed_rps=5.0,
        prompt_tokens_per_s=2500.0,
        output_tokens_per_s=500.0,
        queue_depth=0.0,
        running=20.0,
        kv_usage=0.3,
        kv_usage_max=0.35,
        gpu_busy=0.6,
        preemptions_per_s=0.0,
        errors_per_s=0.0,
        ttft_p95_s=0.3,
        tpot_p95_s=0.03,
        e2e_p95_s=4.0,
        replicas_ready=2.0,
        replicas_starting=0.0,
        gpus=2.0,
    )
    base.update(kw)
    return [Signals(t_s=10.0 * (i + 1), **base) for i in range(n)]


def ctx(**kw) -> FleetContext:
    d = dict(
        name="chat",
        usd_per_gpu_hour=4.0,
        gpus_per_replica=1,
        slo=SLO,
        max_num_seqs=64,
        time_to_ready_s=120.0,
    )
    d.update(kw)
    return FleetContext({"chat": DeploymentContext(**d)})


def rules_of(report) -> set[str]:
    return {f.rule for f in report.findings}


def test_healthy_fleet_has_no_high_findings() -> None:
    rep = diagnose(rows(), ctx())
    assert not rep.by_severity("high")
    assert "queueing-saturated" not in rules_of(rep)


def test_green_dashboard_queueing_is_found_with_evidence() -> None:
    rep = diagnose(
        rows(queue_depth=30.0, running=128.0, kv_usage_max=0.95, gpu_busy=0.97, ttft_p95_s=6.0),
        ctx(),
    )
    f = next(f for f in rep.findings if f.rule == "queueing-saturated")
    assert f.severity == "high"
    assert f.evidence["mean_waiting"] == 30.0
    assert f.evidence["running_share_of_max_num_seqs"] == 1.0
    assert f.usd_per_month_at_stake > 0
    assert "latency-tail-ttft" in rules_of(rep)
    tail = next(f for f in rep.findings if f.rule == "latency-tail-ttft")
    assert "queueing" in tail.title


def test_execution_tail_is_told_apart_from_queueing() -> None:
    rep = diagnose(rows(tpot_p95_s=0.3), ctx())
    f = next(f for f in rep.findings if f.rule == "latency-tail-tpot")
    assert "execution" in f.title


def test_no_batching_and_over_provisioning_carry_dollars() -> None:
    rep = diagnose(
        rows(running=4.0, replicas_ready=4.0, gpus=4.0, gpu_busy=0.1, arrival_rate_rps=0.5),
        ctx(max_num_seqs=1),
    )
    nb = next(f for f in rep.findings if f.rule == "no-batching")
    assert nb.severity == "high" and nb.usd_per_month_at_stake > 0
    rep2 = diagnose(rows(running=3.0, replicas_ready=6.0, gpus=6.0, gpu_busy=0.05), ctx())
    op = next(f for f in rep2.findings if f.rule == "over-provisioned")
    # peak running 3 fits on one replica (64 x 0.6): five of six are idle, at $4 x 730 h each
    assert op.evidence["replicas_needed_at_peak"] == 1
    assert op.usd_per_month_at_stake == pytest.approx(5 * 4.0 * 730)


def test_kv_pressure_and_preemptions() -> None:
    rep = diagnose(rows(kv_usage_max=0.97, preemptions_per_s=0.5), ctx())
    f = next(f for f in rep.findings if f.rule == "kv-pressure")
    assert f.severity == "high" and f.evidence["preemptions"] == 60.0


def test_cold_start_risk_from_ramp() -> None:
    rs = rows(24)
    rs = [
        Signals(**{**r.as_dict(), "arrival_rate_rps": 2.0 if i < 12 else 6.0})
        for i, r in enumerate(rs)
    ]
    rep = diagnose(rs, ctx(time_to_ready_s=60.0))
    assert "cold-start-risk" in rules_of(rep)
    assert "cold-start-risk" not in rules_of(diagnose(rows(24), ctx(time_to_ready_s=60.0)))


def test_unmeasurable_signals_are_reported_not_guessed() -> None:
    rep = diagnose(rows(gpu_busy=math.nan), ctx())
    f = next(f for f in rep.findings if f.rule == "unmeasurable")
    assert "GPU utilization" in f.evidence["missing"]


def test_errors_and_imbalance() -> None:
    rep = diagnose(rows(errors_per_s=0.5, kv_usage=0.3, kv_usage_max=0.8), ctx())
    assert {"errors", "replica-imbalance"} <= rules_of(rep)


def test_report_renders_json_and_markdown() -> None:
    rep = diagnose(rows(queue_depth=30.0, running=128.0), ctx())
    doc = json.loads(rep.to_json())
    assert doc["findings"][0]["rule"] == "queueing-saturated"
    md = rep.to_markdown()
    assert "## [" in md and "action:" in md


def test_cost_by_hand() -> None:
    # 12 intervals x 10 s = 120 s with 2 GPUs at $4/h: 2 x 120/3600 GPU-h = 0.0667 GPU-h = $0.2667
    rep = cost_report(rows(), ctx(), output_token_weight=4.0)
    d = rep.deployments[0]
    assert d.gpu_hours_paid == pytest.approx(2 * 120 / 3600)
    assert d.usd_total == pytest.approx(8 * 120 / 3600)
    assert d.idle_share == pytest.approx(0.4)  # busy 60%
    assert d.usd_idle == pytest.approx(d.usd_total * 0.4)
    assert d.input_tokens == 2500 * 120 and d.output_tokens == 500 * 120
    assert d.usd_per_1m_tokens == pytest.approx(d.usd_total / (3000 * 120) * 1e6)
    # split: input share = 2500 / (2500 + 4 x 500) = 5/9 of the dollars
    assert d.usd_per_1m_input_tokens == pytest.approx(d.usd_total * 5 / 9 / (2500 * 120) * 1e6)
    assert d.usd_per_1m_output_tokens == pytest.approx(d.usd_total * 4 / 9 / (500 * 120) * 1e6)
    assert d.usd_per_month == pytest.approx(8 * 730)


def test_cost_without_busy_signal_leaves_idle_unknown() -> None:
    d = cost_report(rows(gpu_busy=math.nan), ctx()).deployments[0]
    assert math.isnan(d.idle_share) and d.usd_total > 0
