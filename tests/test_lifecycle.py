"""Replica lifecycle in the simulator: billing of every state, drains, failures, determinism.

The lifecycle runs the compiled kernel in chunks (``gpuwise.sim.chunked``); with nothing to do
between chunks it must give exactly what the one-shot kernel gives, so the first test pins that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pytest

from gpuwise.policy import Decision, FixedPolicy, FleetState
from gpuwise.resolve import ResolvedDeployment, resolve
from gpuwise.signals import Signals
from gpuwise.sim import simulate_deployment
from gpuwise.sim.autoscale import simulate_autoscaled
from gpuwise.sim.chunked import OUTCOME_FAILED, OUTCOME_TIMED_OUT
from gpuwise.sim.lifecycle import BILLED_STATES, Duration, LifecycleConfig
from gpuwise.spec import parse_spec
from gpuwise.workload import Requests
from gpuwise.workload.scenarios import FaultEvent


@cache
def deployment(pricing: str = "on-demand") -> ResolvedDeployment:
    spec = {
        "deployments": [
            {
                "name": "chat",
                "model": "llama-3.1-8b",
                "gpu": "h100-sxm",
                "pricing": pricing,
                "limits": {"max_num_seqs": 64, "max_model_len": 4096},
                "replicas": {"min": 1, "max": 8},
            }
        ],
        "slo": {"ttft_s": 2.0, "tpot_s": 0.1},
    }
    return resolve(parse_spec(spec)).deployments[0]


def poisson(rate_rps: float, duration_s: float, seed: int = 1) -> Requests:
    rng = np.random.default_rng(seed)
    n = int(rate_rps * duration_s * 1.2) + 10
    t = np.cumsum(rng.exponential(1.0 / rate_rps, n))
    t = t[t < duration_s]
    k = t.size
    return Requests(t, rng.integers(100, 1500, k), rng.integers(20, 300, k), duration_s=duration_s)


FAST = LifecycleConfig(
    provision={"on-demand": Duration(30.0, 0.2), "spot": Duration(20.0, 0.2)},
    image_bytes=4e9,
)


@dataclass
class Script:
    """A policy that follows a timetable of (from_s, desired, warm)."""

    steps: Sequence[tuple[float, int, int]]
    name: str = "script"
    interval_s: float = 5.0
    seen: list[float] = field(default_factory=list)

    def reset(self) -> None:
        self.seen = []

    def decide(self, now_s: float, history: Sequence[Signals], fleet: FleetState) -> Decision:
        self.seen.append(now_s)
        want, warm = fleet.desired, 0
        for t, d, w in self.steps:
            if now_s >= t:
                want, warm = d, w
        return Decision(want, warm, f"script at {now_s:g}")


def test_chunked_fixed_fleet_is_the_one_shot_kernel_byte_for_byte() -> None:
    rd = deployment()
    reqs = poisson(12.0, 200.0)
    one, _, sig, _ = simulate_deployment(
        rd, reqs, duration_s=200.0, seed=3, replicas=2, signal_interval_s=1.0
    )
    run = simulate_autoscaled(
        rd, reqs, FixedPolicy(2), duration_s=200.0, seed=3, initial_replicas=2
    )
    for f in ("admitted_s", "first_token_s", "finish_s", "outcome", "replica", "preemptions"):
        assert np.array_equal(getattr(one, f), getattr(run.requests, f), equal_nan=True), f
    assert len(run.signals) == len(sig)
    for a, b in zip(sig[:50], run.signals[:50], strict=True):
        assert (a.queue_depth, a.running, a.replicas_ready) == (
            b.queue_depth,
            b.running,
            b.replicas_ready,
        )
        assert a.arrival_rate_rps == b.arrival_rate_rps and a.completed_rps == b.completed_rps


def test_lifecycle_bills_every_state_and_only_while_a_replica_exists() -> None:
    rd = deployment()
    reqs = poisson(10.0, 600.0)
    # up with a warm pool, activate from it, then scale down (drain into the pool, then release)
    pol = Script([(0, 1, 2), (150, 4, 1), (300, 1, 1), (450, 1, 0)])
    run = simulate_autoscaled(
        rd, reqs, pol, duration_s=600.0, seed=0, initial_replicas=1, lifecycle=FAST
    )
    bill = run.billing
    seen = {s for rec in run.replicas for s, _ in rec.phases}
    for state in (
        "provisioning",
        "pulling",
        "loading",
        "warming",
        "warm",
        "activating",
        "ready",
        "draining",
    ):
        assert state in seen, state
        assert bill.gpu_s[state] > 0, state
    # each replica is billed from its first billed phase to the end of its life, nothing else
    total = 0.0
    for rec in run.replicas:
        start = next(t for s, t in rec.phases if s in BILLED_STATES)
        end = min(rec.gone_s, run.span_s)
        total += (end - start) * rd.deployment.tp
        assert rec.phases == sorted(rec.phases, key=lambda p: p[1])
    assert sum(bill.gpu_s.values()) == pytest.approx(total)
    price = rd.usd_per_gpu_hour
    assert bill.usd == pytest.approx(sum(bill.gpu_s.values()) / 3600 * price)
    # the signals' GPU count is the billed count
    gpu_s = sum(s.gpus * s.interval_s for s in run.signals)
    assert gpu_s == pytest.approx(sum(bill.gpu_s.values()), rel=0.02)


def test_warm_pool_priced_at_its_own_fraction() -> None:
    rd = deployment()
    reqs = poisson(5.0, 300.0)
    cfg = LifecycleConfig(
        provision={"on-demand": Duration(30.0)}, image_bytes=4e9, warm_price_fraction=0.25
    )
    run = simulate_autoscaled(
        rd,
        reqs,
        FixedPolicy(1),
        duration_s=300.0,
        seed=0,
        initial_replicas=1,
        initial_warm=2,
        lifecycle=cfg,
    )
    # FixedPolicy asks for no pool: the two warm replicas are released at the first tick
    warm_s = run.billing.gpu_s["warm"]
    assert warm_s > 0
    assert run.billing.usd_by_state["warm"] == pytest.approx(
        warm_s / 3600 * rd.usd_per_gpu_hour * 0.25
    )


def test_draining_never_drops_an_in_flight_request() -> None:
    rd = deployment()
    reqs = poisson(14.0, 400.0)
    pol = Script([(0, 4, 0), (200, 1, 0)])
    run = simulate_autoscaled(rd, reqs, pol, duration_s=400.0, seed=0, initial_replicas=4)
    r = run.requests
    assert (r.outcome == 0).all() or (r.outcome[r.outcome != 0] == OUTCOME_TIMED_OUT).all()
    assert not (r.outcome == OUTCOME_FAILED).any()
    drained = [rec for rec in run.replicas if any(s == "draining" for s, _ in rec.phases)]
    assert len(drained) == 3
    for rec in drained:
        start = next(t for s, t in rec.phases if s == "draining")
        held = r.replica == rec.id  # the starting fleet's slots are its record ids
        assert held.any()
        assert (r.outcome[held] == 0).all()  # all it held finished, on it
        assert (r.arrival_s[held] <= start + 1e-9).all()  # nothing new after the drain began
        # billed until its last request finished, and not a second longer
        assert rec.gone_s == pytest.approx(max(start, float(np.nanmax(r.finish_s[held]))))


@pytest.mark.parametrize("retry_max", [0, 1])
def test_a_failure_is_counted_and_no_request_is_lost(retry_max: int) -> None:
    rd = deployment()
    reqs = poisson(12.0, 300.0)
    cfg = LifecycleConfig(
        provision={"on-demand": Duration(30.0)}, image_bytes=4e9, retry_max=retry_max
    )
    fault = FaultEvent("node-failure", at_s=150.0, share=0.5)
    run = simulate_autoscaled(
        rd,
        reqs,
        FixedPolicy(2),
        duration_s=300.0,
        seed=0,
        initial_replicas=2,
        lifecycle=cfg,
        faults=[fault],
    )
    r = run.requests
    assert len(r) == len(reqs)
    assert ((r.outcome >= 0) & (r.outcome <= 3)).all()  # every request ended exactly once
    assert not np.isnan(r.finish_s).any()
    failed = r.outcome == OUTCOME_FAILED
    if retry_max == 0:
        assert failed.sum() > 0
        assert run.retries.sum() == 0
        assert (r.finish_s[failed] == 150.0).all()
    else:
        assert run.retries.sum() > 0
        retried = run.retries > 0
        assert (r.outcome[retried] == 0).all()  # retried before streaming, then served
        assert (failed <= ~retried).all()
    assert "node failure" in run.fault_log[0]
    gone = [rec for rec in run.replicas if rec.gone_s == 150.0]
    assert len(gone) == 1  # half of two ready replicas


def test_spot_reclaim_drains_during_the_notice_and_falls_back_to_on_demand() -> None:
    rd = deployment("spot")
    reqs = poisson(12.0, 400.0)
    waves = [FaultEvent("spot-preemption", at_s=100.0, share=0.5, notice_s=30.0, outage_s=200.0)]
    run = simulate_autoscaled(
        rd,
        reqs,
        FixedPolicy(2),
        duration_s=400.0,
        seed=0,
        initial_replicas=2,
        lifecycle=FAST,
        faults=waves,
        pricing="spot",
        prices_usd_per_gpu_hour={"spot": 2.0, "on-demand": 4.0},
    )
    hit = [rec for rec in run.replicas if rec.kill_s < math.inf]
    assert len(hit) == 1
    rec = hit[0]
    assert rec.state_at(101.0) == "draining"
    assert rec.gone_s <= 130.0 + 1e-9
    replacements = [x for x in run.replicas if x.phases[0][1] > 0]
    assert replacements and replacements[0].pricing == "on-demand"
    assert replacements[0].usd_per_gpu_hour == 4.0


def test_requests_time_out_when_nothing_can_serve_them() -> None:
    rd = deployment()
    reqs = poisson(40.0, 200.0)  # far beyond one replica
    cfg = LifecycleConfig(request_timeout_s=20.0)
    run = simulate_autoscaled(
        rd, reqs, FixedPolicy(1), duration_s=200.0, seed=0, initial_replicas=1, lifecycle=cfg
    )
    r = run.requests
    t_out = r.outcome == OUTCOME_TIMED_OUT
    assert t_out.sum() > 0
    waited = r.finish_s[t_out] - r.arrival_s[t_out]
    assert (waited >= 20.0 - 1e-9).all() and (waited <= 20.0 + 1.0 + 1e-9).all()
    assert np.isnan(r.first_token_s[t_out]).all()


def test_same_policy_object_twice_same_seed_same_decisions() -> None:
    from gpuwise.policy import TokenMix
    from gpuwise.report.compare import build_policy, calibrate
    from gpuwise.spec import PoissonArrivals, Traffic, UniformLength

    rd = deployment()
    reqs = poisson(12.0, 400.0)
    cal = calibrate(rd, reqs, 0)
    traffic = Traffic(
        arrival=PoissonArrivals(rate_rps=12.0),
        input_tokens=UniformLength(low=100, high=1500),
        output_tokens=UniformLength(low=20, high=300),
    )
    mix = TokenMix.from_samples(reqs.input_tokens, reqs.output_tokens)
    for name in ("gpuwise", "hpa", "knative-kpa", "keda", "aibrix-apa", "ray-serve"):
        pol = build_policy(
            name,
            rd=rd,
            calibration=cal,
            mix=mix,
            traffic=traffic,
            duration_s=400.0,
            arrivals_s=reqs.arrival_s,
            cold_lead_s=60.0,
        )
        runs = [
            simulate_autoscaled(
                rd, reqs, pol, duration_s=400.0, seed=5, initial_replicas=2, lifecycle=FAST
            )
            for _ in range(2)
        ]
        a, b = runs
        assert [(d.t_s, d.desired, d.warm_pool, d.reason) for d in a.decisions] == [
            (d.t_s, d.desired, d.warm_pool, d.reason) for d in b.decisions
        ], name
        assert np.array_equal(a.requests.finish_s, b.requests.finish_s, equal_nan=True)
        assert a.billing == b.billing


def test_autoscaled_records_include_the_client_side_request_overhead() -> None:
    """A profile fitted on client timings adds its per-request latency outside the engine to
    first-token and finish times in the autoscaling path too, as the fixed-fleet path does."""
    from dataclasses import replace

    from gpuwise.perf import ReplicaPerf

    rd = deployment()
    reqs = poisson(4.0, 60.0)
    base = simulate_autoscaled(
        rd, reqs, FixedPolicy(2), duration_s=60.0, seed=0, initial_replicas=2
    )
    profile = replace(rd.perf.profile, request_overhead_s=0.25)
    slow = replace(rd, perf=ReplicaPerf(rd.config, profile))
    shifted = simulate_autoscaled(
        slow, reqs, FixedPolicy(2), duration_s=60.0, seed=0, initial_replicas=2
    )
    ok = base.requests.outcome == 0
    assert ok.any()
    np.testing.assert_allclose(
        shifted.requests.first_token_s[ok], base.requests.first_token_s[ok] + 0.25
    )
    np.testing.assert_allclose(shifted.requests.finish_s[ok], base.requests.finish_s[ok] + 0.25)
