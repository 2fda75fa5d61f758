"""One replica's sustainable rate for a token mix, measured by a short simulated load test.

The capacity model (:mod:`gpuwise.policy.capacity`) works from the mix's moments and the mean
iteration time. It is right about the means and optimistic about the tails: a mix of long
prompts with short answers (a code assistant's 2,000-token prompts, 30-token completions)
stalls every decode behind the prefills that arrive during it, so the *per-request* TPOT misses
long before the mean iteration time reaches the target; and near the KV or prefill limit the
queue's fluctuations, not its mean, decide the TTFT. An operator would load-test one replica at
increasing rates and keep the highest rate at which it still meets the SLO (Mélange's and
AIBrix's profiles are exactly that). This module does the same against the simulated engine:
Poisson arrivals of the mix's own requests, one replica, bisection on the rate.

The result is what :class:`gpuwise.policy.SloAwarePolicy` plans with when it is given one
(``load_test=``); the policy never imports the simulator, it only calls the function.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gpuwise.policy.capacity import ReplicaCapacity, TokenMix
from gpuwise.resolve import ResolvedDeployment
from gpuwise.sim.fleet import simulate_deployment
from gpuwise.workload import Requests


def attainment_at(
    rd: ResolvedDeployment,
    prompt: np.ndarray,
    output: np.ndarray,
    rate_rps: float,
    *,
    seed: int = 0,
    duration_s: float = 600.0,
    warmup_s: float = 120.0,
) -> float:
    """Share of requests arriving in ``[warmup_s, duration_s)`` that meet the deployment's SLO,
    with Poisson arrivals at ``rate_rps`` of requests drawn from ``(prompt, output)``.

    The draws are common across rates (the same exponential gaps, rescaled, and the same
    request order), so attainment is a smooth function of the rate and bisection on it is
    stable.
    """
    rng = np.random.default_rng(seed)
    n_max = int(rate_rps * duration_s * 1.2 + 50)
    gaps = rng.exponential(1.0, n_max)
    idx = rng.integers(0, len(prompt), n_max)
    t = np.cumsum(gaps) / rate_rps
    keep = t < duration_s
    t, idx = t[keep], idx[keep]
    if t.size == 0:
        return 1.0
    reqs = Requests(t, prompt[idx], output[idx], duration_s=duration_s)
    run, _, _, _ = simulate_deployment(
        rd, reqs, duration_s=duration_s, seed=seed, replicas=1, signal_interval_s=60.0
    )
    counted = run.arrival_s >= min(warmup_s, 0.5 * duration_s)
    met = run.slo_met(rd.slo)
    return float(met[counted].mean()) if counted.any() else 1.0


def sustainable_rps(
    rd: ResolvedDeployment,
    prompt: np.ndarray,
    output: np.ndarray,
    *,
    target: float = 0.99,
    seed: int = 0,
    duration_s: float = 1200.0,
    rel_tol: float = 0.01,
) -> float:
    """The highest Poisson rate at which one replica keeps ``target`` of requests inside the SLO.

    Bracketed from the capacity model's limit (which is optimistic, so the search mostly goes
    down from it), then bisected to ``rel_tol``.
    """
    prompt = np.asarray(prompt, dtype=np.int64)
    output = np.maximum(np.asarray(output, dtype=np.int64), 1)
    lim = rd.deployment.limits
    tpot = rd.slo.tpot_s if rd.slo is not None else None
    cap = ReplicaCapacity(rd.perf, lim.max_num_seqs, rd.perf.memory.kv_capacity_tokens, tpot)
    hint = cap.max_rps(TokenMix.from_samples(prompt, output))
    hint = hint if math.isfinite(hint) and hint > 0 else 1.0

    def ok(rate: float) -> bool:
        a = attainment_at(rd, prompt, output, rate, seed=seed, duration_s=duration_s)
        return a >= target

    hi = 1.2 * hint
    while ok(hi) and hi < 1e4:
        hi *= 2.0
    lo = hi / 2.0
    while not ok(lo) and lo > 1e-3:
        hi, lo = lo, lo / 2.0
    if lo <= 1e-3:
        return 0.0
    while hi - lo > rel_tol * lo:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def mix_load_test(
    rd: ResolvedDeployment,
    prompt: np.ndarray,
    output: np.ndarray,
    *,
    target: float = 0.99,
    seed: int = 0,
    duration_s: float = 1200.0,
    replicates: int = 3,
) -> Callable[[TokenMix], float]:
    """A load test for :class:`~gpuwise.policy.SloAwarePolicy`: given the mix the fleet serves
    (its mean prompt and output lengths), the sustainable rate of one replica for the sample
    ``(prompt, output)`` rescaled to those means. The policy caches the answers.

    The rate sits at a cliff (a few percent above it the queue grows without bound), and one
    test's answer varies by about that much with the draw of arrivals and requests; so it
    runs ``replicates`` tests with different draws and keeps the lowest.
    """
    p0 = np.asarray(prompt, dtype=float)
    o0 = np.asarray(output, dtype=float)
    mp, mo = float(p0.mean()), float(o0.mean())
    max_len = int(rd.perf.memory.max_model_len)

    def measure(mix: TokenMix) -> float:
        a = mix.mean_prompt / mp if mp > 0 else 1.0
        b = mix.mean_output / mo if mo > 0 else 1.0
        o = np.maximum(np.rint(o0 * b), 1).astype(np.int64)
        # a heavier mix stretches the longest prompts past the context window, which the
        # engine would reject and the test would count against the rate; a client cannot
        # send those, so they stop at the window (or at their own length, if already past it)
        cap = np.maximum(max_len - o, p0)
        p = np.maximum(np.minimum(np.rint(p0 * a), cap), 1).astype(np.int64)
        return min(
            sustainable_rps(rd, p, o, target=target, seed=seed + k, duration_s=duration_s)
            for k in range(max(1, replicates))
        )

    return measure
