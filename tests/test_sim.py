"""The fleet simulator: faithful to a step-by-step engine, conserving, reproducible, fast enough.

The most important test is ``test_fast_forward_matches_step_by_step_reference``: a deliberately
slow simulator below runs vLLM v1's scheduling one iteration at a time, in plain Python, and the
compiled kernel (which fast-forwards decode runs in closed form) must give every request the same
admission, first-token and finish times.
"""

from __future__ import annotations

import json
import math
from collections import deque
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from gpuwise.perf.model import iteration_time_from_coeffs
from gpuwise.resolve import ResolvedDeployment, ResolvedSpec, resolve
from gpuwise.signals import read_signals_csv
from gpuwise.sim import SimError, simulate, simulate_deployment
from gpuwise.sim.engine import decode_run_time, iterations_started_before
from gpuwise.spec import parse_spec
from gpuwise.workload import Requests

RATE_70 = 1.98  # ~70% of the reference replica's capacity (see benchmarks/sim_speed.py)


def spec_dict(**deployment: object) -> dict:
    d: dict = {
        "name": "ref",
        "model": "llama-2-70b",
        "gpu": "a100-80gb",
        "tp": 2,
        "traffic": {
            "arrival": {"kind": "poisson", "rate_rps": RATE_70},
            "input_tokens": {"kind": "fixed", "tokens": 512},
            "output_tokens": {"kind": "fixed", "tokens": 128},
        },
    }
    d.update(deployment)
    return {"deployments": [d]}


def resolved(**kw: object) -> ResolvedSpec:
    return _resolved(json.dumps(kw, sort_keys=True))


@cache
def _resolved(key: str) -> ResolvedSpec:
    return resolve(parse_spec(spec_dict(**json.loads(key))))


def ref_deployment() -> ResolvedDeployment:
    return resolved().deployments[0]


def random_requests(
    n: int, rate_rps: float, seed: int, *, max_in: int = 600, max_out: int = 200
) -> Requests:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate_rps, n))
    return Requests(
        arrival,
        rng.integers(1, max_in, n),
        rng.integers(1, max_out, n),
        duration_s=float(arrival[-1]) + 1e-3,
    )


def run(
    reqs: Requests,
    *,
    replicas: int = 1,
    kv: int | None = None,
    router: str = "round-robin",
    seed: int = 0,
    interval_s: float = 10.0,
    rd: ResolvedDeployment | None = None,
):
    rd = rd or ref_deployment()
    return simulate_deployment(
        rd,
        reqs,
        duration_s=reqs.end_s,
        seed=seed,
        replicas=replicas,
        signal_interval_s=interval_s,
        kv_capacity_blocks=kv,
        router=router,
    )


# ---------------------------------------------------------------- the step-by-step reference


def reference_sim(reqs: Requests, rd: ResolvedDeployment, kv_blocks: int) -> dict[str, np.ndarray]:
    """vLLM v1's scheduler, one iteration at a time, in plain Python (slow on purpose)."""
    lim = rd.deployment.limits
    coeffs = rd.perf.coeff_vector()
    bs, budget0, max_seqs = lim.block_size, lim.max_num_batched_tokens, lim.max_num_seqs
    max_len = rd.perf.memory.max_model_len
    arrival = reqs.arrival_s.tolist()
    prompt = reqs.input_tokens.tolist()
    target = reqs.output_tokens.tolist()
    n = len(arrival)
    computed, tokens, gen = [0] * n, list(prompt), [0] * n
    blocks, preempt = [0] * n, [0] * n
    admitted, first, finish = [math.nan] * n, [math.nan] * n, [math.nan] * n
    outcome = [-1] * n
    waiting: deque[int] = deque()
    running: list[int] = []
    free = kv_blocks
    t, i = 0.0, 0

    def nblocks(x: int) -> int:
        return -(-x // bs)

    while i < n or waiting or running:
        if not waiting and not running:
            t = max(t, arrival[i])
        while i < n and arrival[i] <= t:
            p, o = prompt[i], target[i]
            if p <= 0 or p + o > max_len or nblocks(p + o) > kv_blocks:
                outcome[i], finish[i] = 1, arrival[i]
            else:
                waiting.append(i)
            i += 1
        if not waiting and not running:
            continue
        budget, sched, preempted = budget0, {}, False
        idx = 0
        while idx < len(running) and budget > 0:
            q = running[idx]
            k = min(tokens[q] - computed[q], budget)
            need = nblocks(computed[q] + k) - blocks[q]
            ok = True
            while need > free:
                v = running.pop()
                free += blocks[v]
                blocks[v], computed[v] = 0, 0
                preempt[v] += 1
                preempted = True
                waiting.appendleft(v)
                if v == q:
                    ok = False
                    break
            if not ok:
                break
            free -= need
            blocks[q] += need
            sched[q] = k
            budget -= k
            idx += 1
        if not preempted:
            while waiting and budget > 0 and len(running) < max_seqs:
                q = waiting[0]
                k = min(tokens[q] - computed[q], budget)
                need = nblocks(computed[q] + k) - blocks[q]
                if need > free:
                    break
                waiting.popleft()
                running.append(q)
                free -= need
                blocks[q] += need
                sched[q] = k
                budget -= k
                if math.isnan(admitted[q]):
                    admitted[q] = t
        pt = pc = ps = pap = ds = dc = 0.0
        for q, k in sched.items():
            c = computed[q]
            if tokens[q] - c == 1 and gen[q] >= 1:
                ds += 1
                dc += c
            else:
                pt += k
                pc += c
                ps += 1
                pap += k * (c + k / 2.0)
        t_end = t + iteration_time_from_coeffs(coeffs, pt, pc, ds, dc, ps, pap)
        for q, k in sched.items():
            computed[q] += k
            if computed[q] == tokens[q]:
                tokens[q] += 1
                gen[q] += 1
                if gen[q] == 1:
                    first[q] = t_end
                if gen[q] == target[q]:
                    finish[q], outcome[q] = t_end, 0
                    free += blocks[q]
                    blocks[q] = 0
                    running.remove(q)
        t = t_end
    return {
        "admitted_s": np.array(admitted),
        "first_token_s": np.array(first),
        "finish_s": np.array(finish),
        "preemptions": np.array(preempt),
        "outcome": np.array(outcome),
    }


def assert_same_as_reference(
    reqs: Requests, kv: int, rd: ResolvedDeployment | None = None
) -> object:
    rd = rd or ref_deployment()
    got, _, _, stats = run(reqs, kv=kv, rd=rd)
    want = reference_sim(reqs, rd, kv)
    np.testing.assert_array_equal(got.outcome, want["outcome"])
    np.testing.assert_array_equal(got.preemptions, want["preemptions"])
    for key in ("admitted_s", "first_token_s", "finish_s"):
        np.testing.assert_allclose(
            getattr(got, key), want[key], rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=key
        )
    assert stats.steps < stats.iterations  # the kernel did fast-forward
    return got


def test_fast_forward_matches_step_by_step_reference() -> None:
    reqs = random_requests(400, 3.0, seed=7)
    got = assert_same_as_reference(reqs, kv=ref_deployment().perf.memory.kv_capacity_blocks)
    assert int(got.preemptions.sum()) == 0


def test_fast_forward_matches_reference_under_preemption() -> None:
    reqs = random_requests(250, 4.0, seed=3)
    got = assert_same_as_reference(reqs, kv=120)  # ~1,900 tokens of KV: constant preemption
    assert int(got.preemptions.sum()) > 20
    assert (got.outcome == 0).all()


def test_fast_forward_matches_reference_with_chunking_and_seq_limit() -> None:
    # a 256-token budget chunks every prompt; 6 sequences at most keeps a queue waiting
    rd = resolved(limits={"max_num_seqs": 6, "max_num_batched_tokens": 256}).deployments[0]
    reqs = random_requests(200, 1.5, seed=12, max_in=1500, max_out=120)
    got = assert_same_as_reference(reqs, kv=400, rd=rd)
    assert int(got.preemptions.sum()) > 0
    assert_same_as_reference(reqs, kv=rd.perf.memory.kv_capacity_blocks, rd=rd)


def test_round_robin_fleet_is_independent_replicas() -> None:
    reqs = random_requests(300, 6.0, seed=11)
    got, *_ = run(reqs, replicas=3, router="round-robin")
    assert got.replica.tolist() == [i % 3 for i in range(300)]
    rd = ref_deployment()
    for r in range(3):
        sub = Requests(reqs.arrival_s[r::3], reqs.input_tokens[r::3], reqs.output_tokens[r::3])
        want = reference_sim(sub, rd, rd.perf.memory.kv_capacity_blocks)
        np.testing.assert_allclose(got.finish_s[r::3], want["finish_s"], rtol=1e-9)


# ---------------------------------------------------------------- formulas shared with perf


def test_iteration_time_from_coeffs_agrees_with_replica_perf() -> None:
    perf = ref_deployment().perf
    k = perf.coeff_vector()
    rng = np.random.default_rng(0)
    for _ in range(200):
        pt, pc = float(rng.integers(0, 5000)), float(rng.integers(0, 3000))
        ds, dc = float(rng.integers(0, 256)), float(rng.integers(0, 400_000))
        ps = float(rng.integers(1, 4)) if pt else 0.0
        pap = pt * (pc + pt / 2.0)
        want = perf.iteration_time_s(pt, pc, ds, dc, ps, pap)
        assert iteration_time_from_coeffs(k, pt, pc, ds, dc, ps, pap) == pytest.approx(
            want, rel=1e-12, abs=0.0
        )
    assert iteration_time_from_coeffs(k, 0, 0, 0, 0, 0, 0) == 0.0


@pytest.mark.parametrize(
    ("batch", "ctx", "n"), [(1, 10, 1), (8, 600, 7), (59, 512, 128), (256, 3000, 900)]
)
def test_decode_run_time_is_the_perf_closed_form_and_the_sum(batch: int, ctx: int, n: int) -> None:
    perf = ref_deployment().perf
    k = perf.coeff_vector()
    got = decode_run_time(k, float(batch), float(batch * ctx), n)
    assert got == pytest.approx(perf.decode_run_time_s(batch, ctx, n), rel=1e-12)
    steps = [perf.decode_time_s(batch, ctx + i) for i in range(n)]
    assert got == pytest.approx(sum(steps), rel=1e-10)
    # the iteration in progress at an instant, found from the closed form
    starts = np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    for probe in (1e-9, float(starts[-1]) / 2 + 1e-9, float(starts[-1]) + 1e-6):
        want = int(np.sum(starts < probe))
        assert iterations_started_before(k, float(batch), float(batch * ctx), n, probe) == want


# ---------------------------------------------------------------- invariants


def test_every_request_ends_exactly_once_and_ttft_before_e2e() -> None:
    reqs = random_requests(600, 8.0, seed=5, max_in=3000, max_out=1500)
    got, summary, sig, stats = run(reqs, replicas=2, router="least-outstanding")
    assert set(np.unique(got.outcome)) <= {0, 1}
    assert not np.isnan(got.finish_s).any()
    ok = got.outcome == 0
    assert not np.isnan(got.first_token_s[ok]).any()
    assert (got.ttft_s[ok] <= got.e2e_s[ok] + 1e-12).all()
    assert (got.ttft_s[ok] > 0).all()
    assert (got.admitted_s[ok] >= got.arrival_s[ok]).all()
    assert summary.ok + summary.rejected == summary.requests == 600
    # the signals' counts add up to the records
    assert sum(s.arrival_rate_rps * s.interval_s for s in sig) == pytest.approx(600)
    assert sum(s.completed_rps * s.interval_s for s in sig) == pytest.approx(summary.ok)
    out = sum(s.output_tokens_per_s * s.interval_s for s in sig)
    assert out == pytest.approx(float(got.output_tokens[ok].sum()), rel=1e-9)
    assert stats.max_kv_blocks_used <= stats.kv_capacity_blocks


def test_first_admission_is_fcfs_in_one_replica() -> None:
    for kv in (None, 150):
        got, *_ = run(random_requests(300, 5.0, seed=2), kv=kv)
        adm = got.admitted_s[got.outcome == 0]
        assert (np.diff(adm) >= 0).all()


def test_preemption_when_and_only_when_kv_runs_out() -> None:
    reqs = random_requests(300, 4.0, seed=9)
    ample, s_ample, _, st_ample = run(reqs)
    assert s_ample.preemptions == 0 and st_ample.max_kv_blocks_used < st_ample.kv_capacity_blocks
    tiny, s_tiny, _, st_tiny = run(reqs, kv=100)
    assert s_tiny.preemptions > 0
    assert (tiny.outcome == 0).all()  # all still finish
    assert st_tiny.max_kv_blocks_used <= 100
    assert st_tiny.max_kv_blocks_used >= 90  # and the cache really was full


def test_rejections_are_counted_not_dropped() -> None:
    reqs = Requests(
        np.array([0.0, 0.1, 0.2, 0.3, 0.4]),
        np.array([100, 4000, 0, 200, 50]),  # 4000+200 > max_model_len 4096; 0 is empty
        np.array([10, 200, 10, 10, 10]),
        duration_s=1.0,
    )
    got, summary, sig, _ = run(reqs)
    assert got.outcome.tolist() == [0, 1, 1, 0, 0]
    assert summary.rejected == 2 and summary.ok == 3
    assert np.isnan(got.first_token_s[[1, 2]]).all()
    assert sum(s.errors_per_s * s.interval_s for s in sig) == pytest.approx(2)
    # more blocks than the whole cache is rejected as well
    got, summary, *_ = run(reqs, kv=10)  # 160 tokens
    assert got.outcome.tolist() == [0, 1, 1, 1, 0]


def test_littles_law_on_a_long_stationary_run() -> None:
    n = 12_000
    reqs = random_requests(n, RATE_70, seed=1, max_in=1000, max_out=250)  # ~6,000 s
    got, _, sig, _ = run(reqs, interval_s=1.0)
    in_system = np.array([s.queue_depth + s.running for s in sig])
    window = int(reqs.end_s)
    mean_n = in_system[:window].mean()
    lam = n / reqs.end_s
    assert mean_n == pytest.approx(lam * float(np.mean(got.e2e_s)), rel=0.03)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    rs = resolved(
        router="power-of-two", replicas={"min": 3, "max": 3}, slo={"ttft_s": 1.0, "tpot_s": 0.12}
    )

    def write(seed: int, name: str) -> dict[str, bytes]:
        res = simulate(rs, duration_s=120.0, seed=seed, signal_interval_s=5.0)
        out = res.to_dir(tmp_path / name)
        return {f: (out / f).read_bytes() for f in ("requests.csv", "signals.csv", "summary.json")}

    a, b, c = write(4, "a"), write(4, "b"), write(5, "c")
    assert a == b
    assert a["requests.csv"] != c["requests.csv"]
    rows = read_signals_csv(tmp_path / "a" / "signals.csv")
    # one row per 5 s through the window, then on until the last request has drained
    assert rows[23].t_s == 120.0 and rows[0].replicas_ready == 3
    assert [r.t_s for r in rows] == [5.0 * (k + 1) for k in range(len(rows))]


# ---------------------------------------------------------------- routers


def outstanding_at(got, i: int, r: int) -> int:
    prior = np.arange(i)
    mask = (got.replica[:i] == r) & (got.finish_s[prior] > got.arrival_s[i])
    return int(mask.sum())


def test_least_outstanding_picks_the_least_loaded_replica() -> None:
    got, *_ = run(random_requests(250, 9.0, seed=4), replicas=3, router="least-outstanding")
    for i in range(250):
        loads = [outstanding_at(got, i, r) for r in range(3)]
        assert got.replica[i] == int(np.argmin(loads)), (i, loads)


def test_power_of_two_is_seeded_and_balances() -> None:
    reqs = random_requests(2000, 12.0, seed=6)
    a, *_ = run(reqs, replicas=4, router="power-of-two", seed=1)
    b, *_ = run(reqs, replicas=4, router="power-of-two", seed=1)
    c, *_ = run(reqs, replicas=4, router="power-of-two", seed=2)
    assert a.replica.tolist() == b.replica.tolist() != c.replica.tolist()
    counts = np.bincount(a.replica, minlength=4)
    assert counts.min() > 0.2 * 2000


def test_least_kv_spreads_memory() -> None:
    reqs = random_requests(800, 10.0, seed=8, max_in=2000)
    got, summary, *_ = run(reqs, replicas=4, router="least-kv")
    assert got.replica[:4].tolist() == [0, 1, 2, 3]  # each new request finds an emptier cache
    tokens = np.bincount(got.replica, weights=got.input_tokens, minlength=4)
    assert tokens.min() > 0.15 * tokens.sum()


# ---------------------------------------------------------------- summary and API


def test_summary_prices_tokens_inside_the_slo() -> None:
    rs = resolved(slo={"ttft_s": 0.5, "tpot_s": 0.1, "percentile": 90})
    res = simulate(rs, duration_s=300.0, seed=3)
    s = res.summaries["ref"]
    rd = rs.deployments[0]
    assert s.gpu_hours == pytest.approx(s.span_s * 2 / 3600)
    assert s.cost_usd == pytest.approx(s.gpu_hours * rd.usd_per_gpu_hour)
    assert 0 < s.slo_attainment < 1
    assert s.usd_per_1m_output_tokens_in_slo == pytest.approx(
        s.usd_per_1m_output_tokens / (s.slo_attainment * s.requests / s.ok), rel=1e-9
    )  # fixed output lengths: tokens in SLO are proportional to requests in SLO
    assert 0.5 < s.gpu_busy <= 1.0 and 0 < s.kv_usage_mean < s.kv_usage_max <= 1.0
    assert s.ttft_p50_s <= s.ttft_p90_s <= s.ttft_p95_s <= s.ttft_p99_s
    assert s.output_tokens_per_s == pytest.approx(128 * s.ok / s.span_s)


def test_simulate_rejects_unknown_names_and_pins_kv() -> None:
    rs = resolved()
    with pytest.raises(SimError, match="unknown deployment"):
        simulate(rs, duration_s=10.0, seed=0, replicas={"nope": 2})
    res = simulate(rs, duration_s=60.0, seed=0, kv_blocks={"ref": 500})
    assert res.stats["ref"].kv_capacity_blocks == 500
    assert res.summaries["ref"].kv_capacity_blocks == 500
