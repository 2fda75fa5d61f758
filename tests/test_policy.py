"""The anchors' policies against hand-worked cases from ``reference/autoscaling.md`` (b1-b5),
and gpuwise's own policy and capacity model against the simulator."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from gpuwise.policy import (
    ApaPolicy,
    FleetState,
    HpaCore,
    HpaPolicy,
    KedaPolicy,
    KpaPolicy,
    RayServePolicy,
    ReplicaCapacity,
    SloAwarePolicy,
    TokenMix,
)
from gpuwise.policy.apa import apa_recommendation
from gpuwise.policy.hpa import external_average_value_replicas, plain_metric_replicas
from gpuwise.policy.ray import desired_replicas
from gpuwise.resolve import ResolvedDeployment, resolve
from gpuwise.signals import Signals
from gpuwise.spec import parse_spec


def fleet(desired: int, ready: int | None = None, lo: int = 1, hi: int = 100) -> FleetState:
    return FleetState(
        deployment="d",
        now_s=0.0,
        desired=desired,
        ready=desired if ready is None else ready,
        starting=0,
        warm=0,
        draining=0,
        min_replicas=lo,
        max_replicas=hi,
        cold_lead_s=120.0,
        warm_lead_s=20.0,
        usd_per_replica_hour=4.0,
        warm_usd_per_replica_hour=4.0,
    )


def sig(t: float, **kw: float) -> Signals:
    return Signals(t_s=t, deployment="d", interval_s=1.0, **kw)


# ---------------------------------------------------------------- HPA v2 (b2)


def test_hpa_plain_metric_ratio_and_tolerance() -> None:
    # b2: ratio = current/target; |1 - ratio| <= 0.1 keeps the count; else ceil(ratio * ready)
    kw = dict(current=4, ready=4, missing=0, target=1.0, tolerance=0.1)
    assert plain_metric_replicas(ready_values_sum=4 * 1.5, **kw) == 6
    assert plain_metric_replicas(ready_values_sum=4 * 1.05, **kw) == 4
    assert plain_metric_replicas(ready_values_sum=4 * 0.5, **kw) == 2


def test_hpa_missing_pods_count_as_zero_up_and_as_target_down() -> None:
    # b2: "Missing pods count as 0 when scaling up and as 100 % (= target) when scaling down";
    # the count is not changed if that would flip the direction
    up = plain_metric_replicas(
        current=4, ready_values_sum=2 * 2.0, ready=2, missing=2, target=1.0, tolerance=0.1
    )
    assert up == 4  # (2*2 + 0*2)/4 = 1.0: within tolerance
    up2 = plain_metric_replicas(
        current=4, ready_values_sum=2 * 3.0, ready=2, missing=2, target=1.0, tolerance=0.1
    )
    assert up2 == 6  # (6 + 0)/4 = 1.5 -> ceil(1.5 * 4)
    down = plain_metric_replicas(
        current=4, ready_values_sum=2 * 0.2, ready=2, missing=2, target=1.0, tolerance=0.1
    )
    assert down == 3  # (0.4 + 1*2)/4 = 0.6 -> ceil(0.6 * 4)


def test_hpa_external_average_value_is_metric_over_target() -> None:
    # b2/b3: External AverageValue: ratio = metric/(target*current); desired = ceil(metric/target)
    assert external_average_value_replicas(current=2, metric=23, target=5, tolerance=0.1) == 5
    assert external_average_value_replicas(current=2, metric=10.4, target=5, tolerance=0.1) == 2
    assert external_average_value_replicas(current=0, metric=7, target=5, tolerance=0.1) == 2


def test_hpa_stabilization_min_up_max_down() -> None:
    # b2: upRec = min(recs in up window (0 s)), downRec = max(recs in down window (300 s))
    core = HpaCore()
    assert core.stabilize(0.0, 10, 10) == 10
    assert core.stabilize(100.0, 10, 8) == 10  # max(8, 10) over the last 300 s
    assert core.stabilize(200.0, 10, 5) == 10
    assert core.stabilize(301.0, 10, 5) == 8  # the 10 left the window; max(5, 8, 5)
    assert core.stabilize(401.0, 10, 5) == 5
    assert core.stabilize(402.0, 5, 9) == 9  # up: no window


def test_hpa_rate_policies_pick_the_largest_change() -> None:
    # b2: scaleUp [Pods 4 / 15 s, Percent 100 / 15 s], selectPolicy Max
    core = HpaCore()
    assert core.rate_limit(0.0, 2, 20, 1, 100) == 6  # max(2+4, ceil(2*2)=4)
    assert core.rate_limit(0.0, 10, 50, 1, 100) == 20  # max(14, 20)
    # scaleDown [Percent 100 / 15 s]: all the way to the bound
    assert core.rate_limit(0.0, 10, 1, 1, 100) == 1
    # replicas added in the period count against it: periodStart = current - added
    core.events.append((0.0, 4))  # went 2 -> 6 at t=0
    assert core.rate_limit(10.0, 6, 50, 1, 100) == 6  # start 2: max(6, 4), no more this period
    assert core.rate_limit(16.0, 6, 50, 1, 100) == 12  # the period passed


def test_hpa_policy_reads_the_gauge_and_scales() -> None:
    pol = HpaPolicy(metric="kv_usage", target=0.5, scrape_interval_s=0.0)
    d = pol.decide(15.0, [sig(15.0, kv_usage=0.9, replicas_ready=4)], fleet(4))
    assert d.desired_replicas == 8  # ceil(1.8 * 4) = 8, within the rate limit max(8, 8)
    assert "kv_usage" in d.reason


# ---------------------------------------------------------------- Knative KPA (b1)


def _kpa_history(now: float, conc: float, panic_conc: float | None = None) -> list[Signals]:
    rows = []
    for t in range(int(now) - 59, int(now) + 1):
        c = panic_conc if panic_conc is not None and t > now - 6 else conc
        rows.append(sig(float(t), running=c, queue_depth=0.0))
    return rows


def test_kpa_stable_mode_divides_the_fleet_total_by_the_target() -> None:
    # b1: target = 100 * 0.7 = 70 per pod; dspc = ceil(300/70) = 5
    pol = KpaPolicy()
    d = pol.decide(100.0, _kpa_history(100.0, 300.0), fleet(3))
    assert d.desired_replicas == 5
    assert "stable" in d.reason


def test_kpa_panics_at_200_percent_and_does_not_scale_down_in_panic() -> None:
    # b1: dppc/readyN >= 2.0 enters panic; desired = max(stable, panic) and is held
    pol = KpaPolicy()
    d = pol.decide(100.0, _kpa_history(100.0, 100.0, panic_conc=700.0), fleet(3))
    assert d.desired_replicas == 10  # dppc = ceil(700/70) = 10; 10/3 >= 2
    assert "panic" in d.reason
    d2 = pol.decide(130.0, _kpa_history(130.0, 100.0), fleet(10, ready=10))
    assert d2.desired_replicas == 10  # still within 60 s of the last panic: held
    d3 = pol.decide(200.0, _kpa_history(200.0, 100.0), fleet(10, ready=10))
    assert d3.desired_replicas == 5  # out of panic; maxDown = floor(10/2) = 5 clamps ceil(100/70)


# ---------------------------------------------------------------- KEDA (b3)


def test_keda_feeds_hpa_with_average_value_of_the_waiting_queue() -> None:
    pol = KedaPolicy(scrape_interval_s=0.0)
    d = pol.decide(15.0, [sig(15.0, queue_depth=23.0, replicas_ready=2)], fleet(2))
    assert d.desired_replicas == 5  # ceil(23/5), within HPA's limit max(2+4, 4)
    # an empty queue recommends 0 -> HPA's floor max(min, 1), after its 300 s window
    pol.reset()
    pol.decide(0.0, [sig(0.0, queue_depth=20.0)], fleet(4))
    for t in (15.0, 150.0, 299.0):
        assert pol.decide(t, [sig(t, queue_depth=0.0)], fleet(4)).desired_replicas == 4
    assert pol.decide(315.0, [sig(315.0, queue_depth=0.0)], fleet(4)).desired_replicas == 1


# ---------------------------------------------------------------- AIBrix APA (b4)


def test_apa_tolerance_bands_and_rate_limits() -> None:
    rec = lambda r: apa_recommendation(4, r * 0.5, 0.5, 0.1, 0.1, 2.0, 2.0)  # noqa: E731
    assert rec(1.2) == 5  # > 1 + 0.1: min(ceil(4.8), ceil(2*4))
    assert rec(1.05) == 4  # inside the band
    assert rec(0.95) == 4
    assert rec(0.3) == 2  # max(ceil(1.2), floor(4/2))
    assert rec(2.5) == 8  # min(ceil(10), 8)


def test_apa_scale_down_cooldown_picks_the_minimum_recommendation() -> None:
    # b4 note 2: stabilizeRecommendation with selectMax=false takes the minimum
    pol = ApaPolicy(metric="kv_usage", target=0.5, window_s=1.0)
    f = fleet(8)
    assert pol.decide(0.0, [sig(0.0, kv_usage=0.3)], f).desired_replicas == 5  # ceil(8*0.6)
    assert pol.decide(10.0, [sig(10.0, kv_usage=0.4)], f).desired_replicas == 5  # min(5, 7)


# ---------------------------------------------------------------- Ray Serve (b5)


def test_ray_desired_and_delay_counters() -> None:
    assert desired_replicas(2, 10.0, 2.0, 1.0) == 5
    assert desired_replicas(0, 3.0, 2.0, 1.0) == 1  # the 0 -> N fast path
    pol = RayServePolicy(target_ongoing_requests=2.0, upscale_delay_s=30.0, interval_s=1.0)
    hist = [sig(float(t), running=10.0, queue_depth=0.0) for t in range(1, 200)]
    out = [pol.decide(float(t), hist[:t], fleet(2)).desired_replicas for t in range(1, 33)]
    assert out[:30] == [2] * 30  # counter must exceed int(30/1) = 30 ticks
    assert out[30] == 5
    # a change of direction resets the counter
    pol.reset()
    for t in range(1, 20):
        pol.decide(float(t), hist[:t], fleet(2))
    low = [sig(float(t), running=1.0, queue_depth=0.0) for t in range(1, 200)]
    pol.decide(20.0, low[:20], fleet(2))
    assert pol.counter == -1


# ---------------------------------------------------------------- gpuwise


@cache
def rd8b() -> ResolvedDeployment:
    spec = {
        "deployments": [
            {
                "name": "chat",
                "model": "llama-3.1-8b",
                "gpu": "h100-sxm",
                "limits": {"max_num_seqs": 256, "max_model_len": 8192},
                "replicas": {"min": 1, "max": 48},
            }
        ],
        "slo": {"ttft_s": 2.0, "tpot_s": 0.1},
    }
    return resolve(parse_spec(spec)).deployments[0]


def _mix() -> TokenMix:
    rng = np.random.default_rng(0)
    return TokenMix.from_samples(rng.integers(200, 2000, 4000), rng.integers(50, 500, 4000))


def test_capacity_model_matches_the_simulator() -> None:
    """At 80% of the model's limit one simulated replica meets the SLO; at 130% it does not."""
    from gpuwise.sim import simulate_deployment
    from gpuwise.workload import Requests

    rd = rd8b()
    mix = _mix()
    cap = ReplicaCapacity(rd.perf, 256, rd.perf.memory.kv_capacity_tokens, 0.1)
    lim = cap.max_rps(mix)
    assert lim > 0
    rng = np.random.default_rng(1)
    out = {}
    for f in (0.8, 1.3):
        n = int(lim * f * 600)
        t = np.sort(rng.uniform(0, 600, n))
        reqs = Requests(t, rng.integers(200, 2000, n), rng.integers(50, 500, n), duration_s=600.0)
        _, s, _, _ = simulate_deployment(rd, reqs, duration_s=600.0, seed=0, replicas=1)
        out[f] = s.slo_attainment
    assert out[0.8] >= 0.99
    assert out[1.3] < 0.9


def _ramp(now: float, r0: float, slope: float, start: float) -> list[Signals]:
    rows = []
    for t in range(1, int(now) + 1):
        rate = r0 + slope * max(0.0, t - start)
        rows.append(
            sig(
                float(t),
                arrival_rate_rps=rate,
                queue_depth=0.0,
                replicas_ready=5.0,
                prompt_tokens_per_s=rate * 1100,
                output_tokens_per_s=rate * 275,
            )
        )
    return rows


def test_gpuwise_sizes_from_capacity_and_scales_ahead_of_a_ramp() -> None:
    rd = rd8b()
    mix = _mix()
    cap = ReplicaCapacity(rd.perf, 256, rd.perf.memory.kv_capacity_tokens, 0.1)
    pol = SloAwarePolicy(cap, mix)
    per = pol.replica_rps(mix)
    flat = pol.decide(400.0, _ramp(400.0, 30.0, 0.0, 0.0), fleet(5))
    # flat 30 rps: no trend, so it holds the ramp Poisson noise could still hide from the
    # trend test over one lead time: 3 standard errors of a slope fitted to twelve 10-s bins
    # (each bin's rate varies by 30/10, the bins' times spread by 100 * 143 s^2), for the
    # lead time with its margin (120 s * 1.15 + one 5-s tick)
    hidden = 3 * math.sqrt(30 / 10 / (100 * 143)) * (120 * 1.15 + 5)
    assert hidden == pytest.approx(6.21, abs=0.01)
    assert flat.desired_replicas == math.ceil((30 + hidden) / per)
    assert "rps/replica" in flat.reason and flat.warm_pool == 0
    pol.reset()
    # +0.1 rps/s for 3 minutes: it asks for the rate one lead time ahead, not the rate now
    ramp = pol.decide(400.0, _ramp(400.0, 30.0, 0.1, 220.0), fleet(5))
    now_need = math.ceil(48 / per)
    assert ramp.desired_replicas > now_need
    assert "trend +0.1" in ramp.reason


def test_gpuwise_uses_a_warm_pool_only_when_it_is_cheaper() -> None:
    rd = rd8b()
    mix = _mix()
    cap = ReplicaCapacity(rd.perf, 256, rd.perf.memory.kv_capacity_tokens, 0.1)
    hist = _ramp(400.0, 30.0, 0.1, 220.0)
    same = SloAwarePolicy(cap, mix).decide(400.0, hist, fleet(5))
    assert same.warm_pool == 0
    cheap = FleetState(**{**fleet(5).__dict__, "warm_usd_per_replica_hour": 1.0})
    pooled = SloAwarePolicy(cap, mix).decide(400.0, hist, cheap)
    assert pooled.warm_pool > 0
    assert pooled.desired_replicas < same.desired_replicas
    assert "warm pool" in pooled.reason


def test_gpuwise_scale_down_waits_for_the_stabilization_window() -> None:
    rd = rd8b()
    cap = ReplicaCapacity(rd.perf, 256, rd.perf.memory.kv_capacity_tokens, 0.1)
    pol = SloAwarePolicy(cap, _mix())
    hi = _ramp(400.0, 60.0, 0.0, 0.0)
    n_hi = pol.decide(400.0, hi, fleet(5)).desired_replicas
    lo = hi + [
        sig(
            float(t),
            arrival_rate_rps=20.0,
            queue_depth=0.0,
            replicas_ready=n_hi,
            prompt_tokens_per_s=20 * 1100,
            output_tokens_per_s=20 * 275,
        )
        for t in range(401, 700)
    ]
    assert pol.decide(500.0, lo[:500], fleet(n_hi)).desired_replicas == n_hi  # held
    assert pol.decide(650.0, lo[:650], fleet(n_hi)).desired_replicas < n_hi  # released


@pytest.mark.parametrize("pol_name", ["hpa", "knative-kpa", "keda", "aibrix-apa", "ray-serve"])
def test_anchor_reasons_name_their_numbers(pol_name: str) -> None:
    pols = {
        "hpa": HpaPolicy(metric="kv_usage", target=0.5, scrape_interval_s=0.0),
        "knative-kpa": KpaPolicy(),
        "keda": KedaPolicy(scrape_interval_s=0.0),
        "aibrix-apa": ApaPolicy(metric="kv_usage", target=0.5),
        "ray-serve": RayServePolicy(),
    }
    pol = pols[pol_name]
    hist = [
        sig(float(t), running=50.0, queue_depth=3.0, kv_usage=0.4, replicas_ready=3.0)
        for t in range(1, 100)
    ]
    d = pol.decide(99.0, hist, fleet(3))
    assert d.reason and any(ch.isdigit() for ch in d.reason)
    assert 1 <= d.desired_replicas <= 100
