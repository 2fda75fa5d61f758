"""gpuwise's own policy: its capacity, burst and step estimates on hand-checkable cases."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from gpuwise.policy import FleetState, ReplicaCapacity, Seasonality, SloAwarePolicy, TokenMix
from gpuwise.policy.capacity import burst_margin
from gpuwise.policy.slo import _step_break
from gpuwise.resolve import ResolvedDeployment, resolve
from gpuwise.signals import Signals
from gpuwise.spec import parse_spec


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


def fleet(desired: int, ready: int | None = None) -> FleetState:
    return FleetState(
        deployment="d",
        now_s=0.0,
        desired=desired,
        ready=desired if ready is None else ready,
        starting=0,
        warm=0,
        draining=0,
        min_replicas=1,
        max_replicas=100,
        cold_lead_s=120.0,
        warm_lead_s=20.0,
        usd_per_replica_hour=4.0,
        warm_usd_per_replica_hour=4.0,
    )


def rows(rates: list[float], queue: list[float] | None = None) -> list[Signals]:
    """One signal row per second with these arrival rates (and queue depths)."""
    q = queue or [0.0] * len(rates)
    return [
        Signals(
            t_s=float(i + 1),
            deployment="d",
            interval_s=1.0,
            arrival_rate_rps=r,
            queue_depth=q[i],
            replicas_ready=5.0,
            prompt_tokens_per_s=r * 1100,
            output_tokens_per_s=r * 275,
        )
        for i, r in enumerate(rates)
    ]


def policy(**kw: object) -> SloAwarePolicy:
    rd = rd8b()
    rng = np.random.default_rng(0)
    mix = TokenMix.from_samples(rng.integers(200, 2000, 4000), rng.integers(50, 500, 4000))
    cap = ReplicaCapacity(rd.perf, 256, rd.perf.memory.kv_capacity_tokens, 0.1)
    return SloAwarePolicy(cap, mix, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- burst margin


def test_burst_margin_of_a_steady_stream_is_poissons() -> None:
    # 30 arrivals every second for 5 minutes: no spread, so the Poisson floor sets it. The 60-s
    # window expects c = 1800 arrivals; a z = 2.33 burst is 2.33 * sqrt(1800) = 98.9 more, of
    # which a 2-s slack absorbs 2 * 30 = 60; the rest, spread over 62 s, is 0.63 rps.
    b = burst_margin(np.full(300, 30.0), 1.0, slack_s=2.0, z=2.33)
    assert b.window_s == 60.0
    assert b.excess_rps == pytest.approx((2.33 * math.sqrt(1800) - 60) / 62, rel=1e-6)
    assert b.excess_rps == pytest.approx(0.627, abs=1e-3)
    assert b.rate_rps == pytest.approx(30.0)
    assert b.poisson_rps == pytest.approx(math.sqrt(1800) / 60)
    assert b.factor == pytest.approx(1 + 0.627 / 30, abs=1e-4)
    # a shorter window asks for less than nothing: its burst is smaller than the slack
    short = burst_margin(np.full(300, 30.0), 1.0, windows_s=(10.0,), slack_s=2.0, z=2.33)
    assert short.excess_rps == 0.0


def test_burst_margin_remembers_a_rare_burst_at_its_height() -> None:
    # 10/s for 5 minutes with 30 s at 100/s in the middle, measured in 10-s windows around the
    # mean (no trend). 291 windows; the 21 wholly inside the burst (7%, more than the 5% above
    # the 95th percentile) count 1000. Every count but the first and last nine is in ten
    # windows, so the windows' mean is (10 * 5700 - 2 * 450) / 291 = 192.8. The burst is
    # 1000 - 192.8 = 807.2 above it; the slack absorbs 2 s * 19.3/s; the rest over 12 s.
    c = np.full(300, 10.0)
    c[135:165] = 100.0
    b = burst_margin(c, 1.0, windows_s=(10.0,), slack_s=2.0, z=1.645, trend=False)
    mean = (10 * 5700 - 2 * 450) / 291
    assert b.rate_rps == pytest.approx(mean / 10)
    assert b.excess_rps == pytest.approx((1000 - mean - 2 * mean / 10) / 12, rel=1e-6)
    assert b.excess_rps == pytest.approx(64.06, abs=0.01)
    # a standard deviation would have spread the one burst thin: 1.645 sd is far lower
    assert 1.645 * b.spread_rps * 10 < 0.6 * (1000 - mean)


def test_step_break_tells_a_step_from_a_ramp() -> None:
    assert _step_break(np.array([30.0] * 6 + [150.0] * 6)) == 6
    assert _step_break(np.arange(12, dtype=float) * 10.0) is None
    assert _step_break(np.array([1.0, 2.0, 3.0])) is None  # too short to tell


# ---------------------------------------------------------------- the load test


@pytest.mark.parametrize(
    ("prompt", "output", "at_most"),
    [
        ((1500, 2600), (10, 45), 0.7),  # long prompts, short answers: prefills stall decodes
        ((200, 2000), (50, 500), 1.05),  # chat: the model's mean is about right
    ],
)
def test_load_test_finds_the_rate_at_the_slo(
    prompt: tuple[int, int], output: tuple[int, int], at_most: float
) -> None:
    from gpuwise.sim.loadtest import attainment_at, sustainable_rps

    rd = rd8b()
    rng = np.random.default_rng(3)
    p = rng.integers(*prompt, 3000)
    o = rng.integers(*output, 3000)
    rate = sustainable_rps(rd, p, o, duration_s=600.0)
    assert attainment_at(rd, p, o, rate, duration_s=600.0) >= 0.99
    assert attainment_at(rd, p, o, rate * 1.3, duration_s=600.0) < 0.99
    cap = ReplicaCapacity(rd.perf, 256, rd.perf.memory.kv_capacity_tokens, 0.1)
    model = cap.max_rps(TokenMix.from_samples(p, o))
    assert 0.2 * model < rate <= at_most * model


def test_a_heavier_mix_is_load_tested_inside_the_context_window() -> None:
    # prompts near the 8,192-token window: stretched by 10%, some would pass it and be rejected,
    # which the test would count against the rate (it fell to ~0 before the fix); a client
    # cannot send those, so they stop at the window and the rate moves by about the stretch
    from gpuwise.sim.loadtest import mix_load_test

    rd = rd8b()
    rng = np.random.default_rng(4)
    p = rng.integers(500, 7900, 1500)
    o = rng.integers(20, 200, 1500)
    measure = mix_load_test(rd, p, o, duration_s=600.0, replicates=1)
    base = TokenMix.from_samples(p, o)
    r0 = measure(base)
    r1 = measure(base.rescaled(base.mean_prompt * 1.1, base.mean_output))
    assert 0.7 * r0 < r1 < r0


def test_policy_plans_with_the_load_test_and_caches_it() -> None:
    calls: list[float] = []

    def measure(mix: TokenMix) -> float:
        calls.append(mix.mean_prompt)
        return 7.0

    pol = policy(load_test=measure)
    d = pol.decide(300.0, rows([30.0] * 300), fleet(5))
    assert "rps/replica (load test x0.9)" in d.reason
    pol.decide(305.0, rows([30.0] * 305), fleet(d.desired_replicas))
    assert len(calls) == 1  # the same mix bucket: measured once
    # between tested mixes the measurement is carried by the model's ratio
    mix = pol.mix
    assert mix is not None
    step = pol.load_test_step
    key = (round(math.log(mix.mean_prompt) / step), round(math.log(mix.mean_output) / step))
    centre = pol.prior_mix.rescaled(math.exp(key[0] * step), math.exp(key[1] * step))
    want = pol.limit_share * 7.0 * pol.capacity.max_rps(mix) / pol.capacity.max_rps(centre)
    assert pol.replica_rps(mix) == pytest.approx(want)
    assert calls[0] == pytest.approx(centre.mean_prompt)
    heavier = mix.rescaled(mix.mean_prompt * 1.5, mix.mean_output)
    assert pol.replica_rps(heavier) < pol.replica_rps(mix)
    assert len(calls) == 2  # 50% longer prompts: another bucket, tested once


def test_the_mix_counts_the_requests_served_not_those_that_arrived() -> None:
    # 30 rps arrive with 1,100-token prompts; the fleet prefills only 20 of them a second
    # (the queue grows by 10/s): divided by arrivals, the mix would read 733 tokens
    pol = policy()
    n = 300
    behind = [
        Signals(
            t_s=float(i + 1),
            deployment="d",
            interval_s=1.0,
            arrival_rate_rps=30.0,
            queue_depth=10.0 * (i + 1),
            replicas_ready=5.0,
            prompt_tokens_per_s=20 * 1100.0,
            output_tokens_per_s=20 * 275.0,
        )
        for i in range(n)
    ]
    mix = pol.observed_mix(behind)
    assert mix.mean_prompt == pytest.approx(1100.0, rel=0.02)
    # and while it drains a backlog (40 a second served of 30 arriving), not heavier
    pol.reset()
    draining = [
        replace(s, queue_depth=3000.0 - 10.0 * (i + 1), prompt_tokens_per_s=40 * 1100.0)
        for i, s in enumerate(behind)
    ]
    assert pol.observed_mix(draining).mean_prompt == pytest.approx(1100.0, rel=0.02)


# ---------------------------------------------------------------- margins and steps


def test_flat_load_holds_the_ramp_noise_can_hide_and_no_more() -> None:
    pol = policy(load_test=lambda mix: 7.0)
    d = pol.decide(400.0, rows([28.0] * 400), fleet(5))
    # 3 standard errors of a slope over twelve 10-s bins at 28 rps, over 120 * 1.15 + 5 s and
    # the quarter of the 120-s trend window it takes to see such a ramp
    slope = 3 * math.sqrt(28 / 10 / (100 * 143))
    per_rep = pol.replica_rps(pol.mix)  # 90% of the 7 rps measured, at the mix observed
    assert 6.0 < per_rep < 6.6
    assert d.desired_replicas == math.ceil((28 + slope * (143 + 30)) / per_rep) == 6
    assert "0.042/s hidden" in d.reason


def test_a_new_level_restarts_the_burst_history_and_is_served_at_once() -> None:
    pol = policy(load_test=lambda mix: 7.0)
    hist = rows([30.0] * 400 + [150.0] * 40)
    d = None
    for t in range(5, 441, 5):
        d = pol.decide(float(t), hist[:t], fleet(5 if d is None else d.desired_replicas))
    assert d is not None
    # the step is a level, not a burst: no burst margin from the 30 -> 150 jump
    assert pol.bursts(hist, 440.0, 120.0, 7.0).excess_rps < 5.0
    assert d.desired_replicas >= math.ceil(150 / 7.0)
    assert pol.steps_hold()


def test_where_steps_fade_it_holds_burst_capacity_instead_of_chasing() -> None:
    # 10 rps with 30-s spikes to 100 rps every 240 s: the first spike is chased as a new level;
    # a lead time later the rate is back at 10, so steps fade here, and from then on the
    # policy keeps the spikes' envelope through the quiet instead of chasing each one
    rates = [10.0] * 900
    for start in (300, 540, 780):
        rates[start : start + 30] = [100.0] * 30
    hist = rows(rates)
    pol = policy(load_test=lambda mix: 7.0)
    out = {}
    desired = 2
    for t in range(5, 901, 5):
        dec = pol.decide(float(t), hist[:t], fleet(desired))
        desired = dec.desired_replicas
        out[t] = dec
    assert pol._step_held and not pol.steps_hold()
    quiet = out[760]  # 200 s after the second spike ended, just before the third
    assert quiet.desired_replicas >= 5  # the envelope of the spikes, not the 10 rps now
    assert "bursts +" in quiet.reason


def test_a_queue_adds_replicas_only_when_the_ready_fleet_should_keep_up() -> None:
    pol = policy(load_test=lambda mix: 7.0)
    base = [30.0] * 400
    growing = [0.0] * 390 + [float(50 * k) for k in range(10)]
    need = pol.decide(400.0, rows(base), fleet(6)).desired_replicas
    pol.reset()
    grown = pol.decide(400.0, rows(base, growing), fleet(need))
    m = re.search(r"need (\d+) now, (\d+) at lead, \+(\d+) for a queue", grown.reason)
    assert m is not None, grown.reason
    now_n, lead_n, extra = (int(g) for g in m.groups())
    assert extra >= 1 and grown.desired_replicas == max(now_n, lead_n) + extra
    pol.reset()
    shrinking = [0.0] * 390 + [float(50 * (10 - k)) for k in range(10)]
    left = pol.decide(400.0, rows(base, shrinking), fleet(need))
    assert left.desired_replicas == need  # a queue left over from an outage drains itself
    pol.reset()
    waiting = pol.decide(
        400.0, rows(base, growing), replace(fleet(need), ready=2, starting=need - 2)
    )
    assert waiting.desired_replicas == need  # replicas are on the way: more would come late


def test_a_queue_growing_while_nothing_is_on_its_way_is_drained_as_it_will_be() -> None:
    # two ready replicas, nothing starting, and a queue that grew by 450 in 10 s: it keeps
    # growing until what is asked for now arrives (for at most client_patience_s), so the
    # request covers the rate's need plus what drains that backlog within backlog_drain_s
    pol = policy(load_test=lambda mix: 7.0)
    growing = [0.0] * 390 + [float(50 * k) for k in range(10)]
    short = pol.decide(400.0, rows([30.0] * 400, growing), fleet(2))
    m = re.search(r"need (\d+) now, (\d+) at lead, \+(\d+) for a queue", short.reason)
    assert m is not None, short.reason
    now_n, lead_n, extra = (int(g) for g in m.groups())
    r = re.search(r"-> ([0-9.]+) rps/replica", short.reason)
    assert r is not None
    per_rep = float(r.group(1))  # the load test's 7.0 x limit_share, scaled to the mix
    excess = 450.0 - 2 * per_rep * pol.ttft_slo_s
    grow = 450.0 / pol.fast_window_s  # the queue 10 s ago was empty
    at_arrival = excess + grow * min(120.0, pol.client_patience_s)
    assert abs(extra - at_arrival / pol.backlog_drain_s / per_rep) < 1.0
    assert short.desired_replicas == max(now_n, lead_n) + extra


def test_scale_down_holds_one_lead_time_or_the_rate_window_past_the_daily_peak() -> None:
    hist = rows([60.0] * 400 + [20.0] * 300)

    def first_release(pol: SloAwarePolicy) -> float:
        n_hi = pol.decide(400.0, hist[:400], fleet(5)).desired_replicas
        for t in range(405, 700, 5):
            if pol.decide(float(t), hist[:t], fleet(n_hi)).desired_replicas < n_hi:
                return t - 400.0
        return math.inf

    # no known shape: the surplus is held for the 120-s lead time (ski rental)
    plain = first_release(policy(load_test=lambda mix: 7.0))
    assert 120.0 <= plain <= 200.0
    # a daily shape past its peak: only the 60-s rate window to tell a dip from noise
    season = Seasonality(period_s=3600.0, peak_at_s=300.0, trough_to_peak=0.3)
    sure = first_release(policy(load_test=lambda mix: 7.0, seasonality=season))
    assert sure < plain


def _run(pol: SloAwarePolicy, rates: list[float], start: int = 2) -> dict[int, object]:
    hist = rows(rates)
    out = {}
    desired = start
    for t in range(5, len(rates) + 1, 5):
        dec = pol.decide(float(t), hist[:t], fleet(desired))
        desired = dec.desired_replicas
        out[t] = dec
    return out


def test_rises_that_fade_are_not_extrapolated_and_release_what_they_asked_for() -> None:
    # 30 rps wandering in waves: a 90-s rise to 50 rps that falls back within a minute, twice.
    # The first is taken for a trend (no experience yet); a lead time later the rate is back at
    # 30, so rises here fade, the replicas it asked for go at once, and the second rise is
    # served at the level it reached, not extrapolated over a lead time
    rates = [30.0] * 1000
    for start in (300, 700):
        rates[start : start + 90] = [30.0 + 20.0 * k / 90 for k in range(90)]
        rates[start + 90 : start + 120] = [50.0 - 20.0 * k / 30 for k in range(30)]
    pol = policy(load_test=lambda mix: 7.0)
    out = _run(pol, rates)
    assert pol._trend_held and not any(pol._trend_held)
    first = [t for t in range(300, 420, 5) if "trend +0.000" not in out[t].reason]
    assert first and "not extrapolated" not in out[first[0]].reason
    peak_first = max(out[t].desired_replicas for t in range(300, 500, 5))
    second = [out[t] for t in range(700, 820, 5)]
    assert any("not extrapolated" in d.reason for d in second)
    assert max(d.desired_replicas for d in second) < peak_first
    # released at the check (one lead time after the rise began), not a lead time after that
    assert out[470].desired_replicas < peak_first


def test_rises_that_last_are_extrapolated() -> None:
    # 30 rps, then a steady ramp of +0.1 rps/s for ten minutes: every check finds it held
    rates = [30.0] * 300 + [30.0 + 0.1 * k for k in range(600)]
    pol = policy(load_test=lambda mix: 7.0)
    out = _run(pol, rates)
    assert pol._trend_held and all(pol._trend_held)
    assert not any("not extrapolated" in d.reason for d in out.values())


def test_scale_down_waits_while_a_backlog_exceeds_the_ttft_slack() -> None:
    # the rate fell to 20 rps (3 replicas at 7 each), but 2,000 requests still wait: every new
    # request queues behind them, so the 20 ready replicas stay until the backlog is served
    pol = policy(load_test=lambda mix: 7.0)
    hist = rows([20.0] * 400, [0.0] * 380 + [2000.0 - 10.0 * k for k in range(20)])
    d = pol.decide(400.0, hist, fleet(20))
    assert d.desired_replicas == 20 and "backlog of 1810" in d.reason
    pol.reset()
    d = pol.decide(400.0, rows([20.0] * 400), fleet(20))
    assert d.desired_replicas < 20 and d.reason.startswith("gpuwise down")


def test_a_step_still_climbing_is_asked_for_where_it_goes_and_not_held() -> None:
    # 30 rps, then a climb of 4 rps per second to 150: while the fast rate still rises, the
    # policy asks for the rate one shift window ahead, but does not record it as a need the
    # ski rental holds: what later ticks do not confirm is let go while still provisioning
    rates = [30.0] * 400 + [30.0 + 4.0 * k for k in range(1, 31)] + [150.0] * 100
    hist = rows(rates)
    pol = policy(load_test=lambda mix: 7.0)
    desired, out, held = 6, {}, {}
    for t in range(5, len(rates) + 1, 5):
        dec = pol.decide(float(t), hist[:t], replace(fleet(desired), ready=6, starting=0))
        desired = dec.desired_replicas
        out[t] = dec
        held[t] = pol.needs[-1][1]
    climbing = [t for t in range(405, 431, 5) if "still climbing" in out[t].reason]
    assert climbing, "the climb was never extrapolated"
    t = climbing[0]
    fast = float(np.mean(rates[t - 10 : t]))
    assert out[t].desired_replicas > math.ceil(fast / 7.0)
    assert held[t] < out[t].desired_replicas
    assert out[len(rates)].desired_replicas >= math.ceil(150 / 7.0)


def test_a_fleet_on_spot_holds_the_hedge_it_is_given() -> None:
    pol = policy(load_test=lambda mix: 7.0, spot_hedge=1)
    hist = rows([30.0] * 400)
    on_demand = pol.decide(400.0, hist, fleet(6))
    pol.reset()
    spot = pol.decide(400.0, hist, replace(fleet(6), spot=6))
    assert spot.desired_replicas == on_demand.desired_replicas + 1
    assert "+1 spot hedge (6 on spot)" in spot.reason


def test_after_a_loss_it_races_replacements_and_stops_once_whole() -> None:
    # Two replicas vanish (a node failure: fewer serving than the target): it asks for them
    # back plus race_share (2) per replica short of the need now. A fleet short only because it
    # is growing (serving = target) does not race, and once the ready fleet covers the need now
    # the race ends (the extra ones are cancelled while provisioning)
    hist = rows([30.0] * 400)
    pol = policy(load_test=lambda mix: 7.0)
    whole = pol.decide(400.0, hist, fleet(6))
    m = re.search(r"need (\d+) now", whole.reason)
    assert m is not None and "racing" not in whole.reason
    need_now, target = int(m.group(1)), whole.desired_replicas
    ready = need_now - 2
    lost = pol.decide(405.0, hist, replace(fleet(target), ready=ready))
    assert lost.desired_replicas == target + 2 * 2
    assert "+4 racing: 2 short of the need now after a loss" in lost.reason
    # the next tick: the target was applied (the new ones count as starting), still short
    racing = pol.decide(410.0, hist, replace(fleet(target + 4), ready=ready, starting=8))
    assert racing.desired_replicas == target + 4
    back = pol.decide(415.0, hist, replace(fleet(target + 4), ready=need_now, starting=6))
    assert back.desired_replicas < target + 4 and "racing" not in back.reason
    pol.reset()
    short_growing = replace(fleet(target), ready=ready, starting=target - ready)
    pol.decide(400.0, hist, short_growing)
    growing = pol.decide(405.0, hist, short_growing)
    assert "racing" not in growing.reason
    pol.reset()
    # a live controller's ReplicaSet recreates the pods: serving = target, but ready dropped
    pol.decide(400.0, hist, fleet(target))
    live = pol.decide(405.0, hist, replace(fleet(target), ready=ready, starting=target - ready))
    assert live.desired_replicas == target + 4


def _plan_margin(reason: str) -> float:
    m = re.search(r"\(margin ([0-9.]+)\)", reason)
    assert m is not None, reason
    return float(m.group(1))


def test_hidden_ramp_margin_covers_the_detection_delay() -> None:
    # flat 30 rps: no trend, so the margin is the ramp noise may hide, held over the horizon
    # (1.15 x 120 s lead + one 5-s tick = 143 s) and over the quarter of the 120-s trend window
    # such a ramp takes to be seen (30 s): 173/143 of the margin without the delay
    late = policy(load_test=lambda mix: 7.0).decide(300.0, rows([30.0] * 300), fleet(6))
    now = policy(load_test=lambda mix: 7.0, detect_share=0.0).decide(
        300.0, rows([30.0] * 300), fleet(6)
    )
    assert _plan_margin(late.reason) / _plan_margin(now.reason) == pytest.approx(173 / 143, 0.02)
    assert late.desired_replicas >= now.desired_replicas


def test_plans_below_the_measured_limit() -> None:
    # 7 rps measured; at 90% of it a replica is planned for 6.3 rps: 30 rps need 5 at the
    # limit, 5 (4.76) at 90%, and 33 rps need 5 at the limit but 6 at 90%
    at_limit = policy(load_test=lambda mix: 7.0, limit_share=1.0)
    below = policy(load_test=lambda mix: 7.0)
    mix = below.prior_mix
    assert below.replica_rps(mix) == pytest.approx(0.9 * at_limit.replica_rps(mix))
    r = at_limit.replica_rps(mix)
    assert math.ceil(33.0 / r) < math.ceil(33.0 / below.replica_rps(mix))


def test_a_replica_that_just_arrived_is_held_one_lead_time_from_its_arrival() -> None:
    # 20 rps need fewer than 8 replicas; asked for earlier, the eighth has just become ready
    hist = rows([20.0] * 600)
    arrived = policy(load_test=lambda mix: 7.0)
    arrived.decide(400.0, hist[:400], fleet(8, ready=7))
    held = arrived.decide(405.0, hist[:405], fleet(8))
    assert held.desired_replicas == 8 and "hold" in held.reason
    later = arrived.decide(530.0, hist[:530], fleet(8))
    assert later.desired_replicas < 8  # a lead time (120 s) after it arrived: let go
    settled = policy(load_test=lambda mix: 7.0)
    settled.decide(400.0, hist[:400], fleet(8))
    assert settled.decide(405.0, hist[:405], fleet(8)).desired_replicas < 8
