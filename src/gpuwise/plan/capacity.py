"""How many requests per second one replica sustains under an SLO: the analytic steady state.

Why analytic: the planner weighs thousands of (GPU, TP, precision, batch limit) candidates per
request-size bucket, far too many to simulate. In a steady state of continuous batching at
arrival rate λ, every iteration of length t carries ``B = λ·O·t`` decoding sequences and
``λ·I·t`` new prompt tokens, and t is the perf model's time of that very batch, so t is the
smallest fixed point of ``t = T(λ, t)``. The replica is feasible at λ when that t meets the TPOT
target (at the batch a Poisson burst reaches), the batch fits ``max_num_seqs`` and the KV cache,
the prompt tokens fit the token budget, and a slow prompt's chunked prefill plus its wait for the
budget meets the TTFT target. The largest feasible λ (found by bisection) is the capacity; the
simulator then checks the fleet built from these numbers.

The kernel is compiled with numba and calls ``iteration_time_from_coeffs``, the same formula
``ReplicaPerf.iteration_time_s`` and the simulator use, so the three never drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from gpuwise._jit import drop_stale_caches
from gpuwise.perf import model as _perf_model
from gpuwise.perf.model import iteration_time_from_coeffs

_iteration_time = njit(cache=True)(iteration_time_from_coeffs)

# Which constraint stopped the rate from growing (index into LIMIT_NAMES).
LIMIT_NAMES = ("none", "tpot", "max_num_seqs", "kv_cache", "token_budget", "ttft", "e2e")
_NO_TPOT_ITERATION_CAP_S = 10.0  # without a TPOT or e2e target, iterations up to this long count
_BURST_Z = 1.65  # a Poisson batch reaches mean + 1.65 sqrt(mean) about 5% of the time
_KV_FILL = 0.9  # share of the KV cache the steady state may fill (the rest absorbs bursts)
_BUDGET_FILL = 0.95  # share of the token budget prompt tokens may use on average
# Kingman's (1 + cs^2)/2 with a service-time cs^2 of 0.5 (output lengths vary less inside a
# size bucket than an exponential would): scales the M/M/c waiting-time tail to M/G/c.
_SERVICE_VARIABILITY = 0.75
_SLOT_FILL = 0.98  # share of the batch slots the steady state may hold (the queue must drain)


@njit(cache=True)
def _steady_iteration(c, lam, i_mean, o_mean, t):  # noqa: ANN001, ANN202 - numba
    """T(λ, t): iteration time of the steady batch implied by an iteration length t."""
    b = lam * o_mean * t
    ps = lam * t
    return _iteration_time(
        c, lam * i_mean * t, 0.0, b, b * (i_mean + 0.5 * o_mean), ps, ps * i_mean * i_mean * 0.5
    )


@njit(cache=True)
def _fixed_point(c, lam, i_mean, o_mean, t_hi):  # noqa: ANN001, ANN202 - numba
    """Smallest t with T(λ, t) <= t on [0, t_hi], or inf (T is convex in t: bisection is exact)."""
    if _steady_iteration(c, lam, i_mean, o_mean, t_hi) > t_hi:
        return math.inf
    lo, hi = 0.0, t_hi
    for _ in range(48):
        mid = 0.5 * (lo + hi)
        if _steady_iteration(c, lam, i_mean, o_mean, mid) <= mid:
            hi = mid
        else:
            lo = mid
    return hi


@njit(cache=True)
def _poisson_quantile(mean, q):  # noqa: ANN001, ANN202 - numba
    """Smallest k with P(N <= k) >= q for N ~ Poisson(mean) (normal approximation when large)."""
    if mean <= 0.0:
        return 0.0
    if mean > 200.0:
        return mean + _BURST_Z * math.sqrt(mean)
    p = math.exp(-mean)
    c = p
    k = 0
    while c < q and k < 100_000:
        k += 1
        p *= mean / k
        c += p
    return float(k)


@njit(cache=True)
def _erlang_c(servers, load):  # noqa: ANN001, ANN202 - numba
    """Probability that an arrival waits for one of ``servers`` slots at offered ``load``."""
    b = 1.0
    for k in range(1, int(servers) + 1):
        b = load * b / (k + load * b)
    return servers * b / (servers - load * (1.0 - b))


@njit(cache=True)
def _evaluate(
    c,
    lam,
    i_mean,
    o_mean,
    i_p,
    o_p,
    kv_tokens,
    max_seqs,
    budget,
    tpot_lim,
    ttft_lim,
    e2e_lim,
    tail,
    out,
):  # noqa: ANN001, ANN202 - numba
    """Fill out = [t, batch, ttft, tpot, e2e] at rate λ; return the violated limit (0 = none).

    The batch limit is a queue of ``max_num_seqs`` slots, each held for a request's prefill and
    decode (M/M/c): its Erlang-C wait at the SLO percentile joins the TTFT. That is what makes a
    batch-1 replica a single-server queue, and a batch-256 one almost never wait for a slot.
    """
    t_hi = tpot_lim
    if not t_hi < math.inf:
        t_hi = _NO_TPOT_ITERATION_CAP_S
    t = _fixed_point(c, lam, i_mean, o_mean, t_hi)
    over_tpot = False
    if not t < math.inf and t_hi < _NO_TPOT_ITERATION_CAP_S:
        # no iteration as short as the TPOT target: still fill ``out`` with the latencies at
        # this rate (at zero load they are the floor the plan reports), then fail on TPOT
        t = _fixed_point(c, lam, i_mean, o_mean, _NO_TPOT_ITERATION_CAP_S)
        over_tpot = True
    if not t < math.inf:
        for k in range(5):
            out[k] = math.inf
        return 1
    ctx = i_mean + 0.5 * o_mean
    b = lam * o_mean * t
    b_burst = min(b + _BURST_Z * math.sqrt(b), max_seqs)
    # TPOT: the decode iteration at a burst batch, plus the prompts whose prefill lands inside
    # the request's own decode window (at the SLO percentile), spread over its output tokens.
    t_dec = _iteration_time(c, 0.0, 0.0, b_burst, b_burst * ctx, 0.0, 0.0)
    p_one = _iteration_time(c, i_mean, 0.0, b, b * ctx, 1.0, i_mean * i_mean * 0.5) - (
        _iteration_time(c, 0.0, 0.0, b, b * ctx, 0.0, 0.0) if b > 0.0 else 0.0
    )
    gaps = max(o_mean - 1.0, 1.0)
    n_prompts = _poisson_quantile(lam * gaps * t, 1.0 - tail)
    tpot = t_dec + n_prompts * max(p_one, 0.0) / gaps
    free = budget - b_burst
    rho = lam * i_mean * t / free if free > 0.0 else math.inf
    chunk = min(i_p, free) if free >= 1.0 else 1.0
    n_chunks = math.ceil(i_p / chunk)
    t_chunk = _iteration_time(c, chunk, 0.0, b, b * ctx, 1.0, i_p * i_p * 0.5 / n_chunks)
    budget_wait = 3.0 * rho / (2.0 * (1.0 - rho)) * t_chunk if rho < 1.0 else math.inf
    hold_s = o_mean * t + t_chunk  # how long a request holds its batch slot
    load = lam * hold_s
    slot_wait = math.inf
    if load < max_seqs:
        pw = _erlang_c(max_seqs, load)
        drain = (max_seqs / hold_s - lam) / _SERVICE_VARIABILITY
        slot_wait = math.log(pw / tail) / drain if pw > tail else 0.0
    ttft = slot_wait + t + n_chunks * t_chunk + budget_wait
    e2e = ttft + max(o_p - 1.0, 0.0) * tpot
    out[0] = t
    out[1] = b
    out[2] = ttft
    out[3] = tpot
    out[4] = e2e
    if over_tpot or tpot > tpot_lim:
        return 1
    if load >= _SLOT_FILL * max_seqs:
        return 2
    if b_burst * ctx > _KV_FILL * kv_tokens:
        return 3
    if rho > _BUDGET_FILL:
        return 4
    if ttft > ttft_lim:
        return 5
    if e2e > e2e_lim:
        return 6
    return 0


@njit(cache=True)
def _capacity_kernel(
    coeffs,
    row_cfg,
    i_mean,
    o_mean,
    i_p,
    o_p,
    kv_tokens,
    max_seqs,
    budget,
    tpot_lim,
    ttft_lim,
    e2e_lim,
    tail,
    res,
):  # noqa: ANN001, ANN202 - numba
    """Per row: the largest feasible λ and the latencies there, plus zero-load latencies.

    res columns: rate, t, batch, ttft, tpot, e2e, zero-load ttft, zero-load tpot, limit code.
    """
    out = np.empty(5)
    for r in range(row_cfg.shape[0]):
        c = coeffs[row_cfg[r]]
        args = (
            i_mean[r],
            o_mean[r],
            i_p[r],
            o_p[r],
            kv_tokens[r],
            max_seqs[r],
            budget[r],
            tpot_lim[r],
            ttft_lim[r],
            e2e_lim[r],
            tail[r],
        )
        lam0 = 1e-9
        code0 = _evaluate(c, lam0, *args, out)
        res[r, 6] = out[2]
        res[r, 7] = out[3]
        if code0 != 0:
            res[r, 0] = 0.0
            res[r, 8] = code0
            continue
        lo, hi = lam0, 0.05
        code = _evaluate(c, hi, *args, out)
        while code == 0 and hi < 1e6:
            lo = hi
            hi *= 2.0
            code = _evaluate(c, hi, *args, out)
        last = code
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            code = _evaluate(c, mid, *args, out)
            if code == 0:
                lo = mid
            else:
                hi = mid
                last = code
            if hi - lo < 1e-4 * hi:
                break
        _evaluate(c, lo, *args, out)
        res[r, 0] = lo
        res[r, 1:6] = out
        res[r, 8] = last


@dataclass(frozen=True)
class CapacityTable:
    """Per (configuration, bucket): sustainable rate and the latencies predicted at that rate.

    Arrays are shaped ``(configs, buckets)``. ``limit`` names the constraint that stopped the rate
    (LIMIT_NAMES); ``zero_load_*`` are the best latencies the configuration reaches at all.
    """

    rate_rps: np.ndarray
    iteration_s: np.ndarray
    batch: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    zero_load_ttft_s: np.ndarray
    zero_load_tpot_s: np.ndarray
    limit: np.ndarray


@dataclass(frozen=True)
class RowInputs:
    """One configuration's engine limits and the SLO it is sized for (inf: no target)."""

    coeffs: np.ndarray  # ReplicaPerf.coeff_vector()
    kv_capacity_tokens: float
    max_num_seqs: float
    max_num_batched_tokens: float
    tpot_s: float
    ttft_s: float
    e2e_s: float
    percentile: float = 95.0


def capacity_table(
    rows: list[RowInputs],
    mean_input_tokens: np.ndarray,
    mean_output_tokens: np.ndarray,
    p_input_tokens: np.ndarray,
    p_output_tokens: np.ndarray,
) -> CapacityTable:
    """Evaluate every configuration on every bucket (token arrays are per bucket) in one pass."""
    n_cfg, n_b = len(rows), len(mean_input_tokens)
    if n_cfg == 0:
        z = np.zeros((0, n_b))
        return CapacityTable(z, z, z, z, z, z, z, z, z.astype(np.int64))
    coeffs = np.stack([r.coeffs for r in rows]).astype(np.float64)
    cfg = np.repeat(np.arange(n_cfg, dtype=np.int64), n_b)

    def per_row(attr: str) -> np.ndarray:
        return np.repeat(np.array([getattr(r, attr) for r in rows], dtype=np.float64), n_b)

    def per_bucket(a: np.ndarray) -> np.ndarray:
        return np.tile(np.asarray(a, dtype=np.float64), n_cfg)

    res = np.zeros((n_cfg * n_b, 9))
    _capacity_kernel(
        coeffs,
        cfg,
        per_bucket(mean_input_tokens),
        per_bucket(np.maximum(mean_output_tokens, 1.0)),
        per_bucket(p_input_tokens),
        per_bucket(np.maximum(p_output_tokens, 1.0)),
        per_row("kv_capacity_tokens"),
        per_row("max_num_seqs"),
        per_row("max_num_batched_tokens"),
        per_row("tpot_s"),
        per_row("ttft_s"),
        per_row("e2e_s"),
        1.0 - per_row("percentile") / 100.0 + 1e-9,
        res,
    )
    r = res.reshape(n_cfg, n_b, 9)
    return CapacityTable(
        rate_rps=r[:, :, 0],
        iteration_s=r[:, :, 1],
        batch=r[:, :, 2],
        ttft_s=r[:, :, 3],
        tpot_s=r[:, :, 4],
        e2e_s=r[:, :, 5],
        zero_load_ttft_s=r[:, :, 6],
        zero_load_tpot_s=r[:, :, 7],
        limit=r[:, :, 8].astype(np.int64),
    )


@njit(cache=True)
def _batch_limit_kernel(c, context_tokens, tpot_lim, kv_tokens, cap):  # noqa: ANN001, ANN202
    """Largest decode batch whose iteration meets the TPOT target and fits the KV cache."""
    best = 1
    lo, hi = 1, cap
    while lo <= hi:
        mid = (lo + hi) // 2
        t = _iteration_time(c, 0.0, 0.0, float(mid), mid * context_tokens, 0.0, 0.0)
        if t <= tpot_lim and mid * context_tokens <= kv_tokens:
            best = mid
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def batch_limit(
    coeffs: np.ndarray, context_tokens: float, tpot_s: float, kv_tokens: float, cap: int = 512
) -> int:
    """The max_num_seqs a planned replica runs with: the batch at which decode still meets TPOT.

    Why: the engine limit is what keeps a burst from stretching every running request's TPOT
    past the target; above it, requests wait for a slot (TTFT) instead. Rounded down to a
    multiple of 8 above 16, as people write it.
    """
    lim = tpot_s if math.isfinite(tpot_s) else _NO_TPOT_ITERATION_CAP_S
    b = int(_batch_limit_kernel(coeffs, float(context_tokens), lim, float(kv_tokens), cap))
    return b - b % 8 if b >= 16 else max(b, 1)


# numba keys each compiled function's cache on this file alone; the kernel inlines the perf
# model's formula, so it is rebuilt whenever either file changes.
drop_stale_caches("plan_capacity", (Path(__file__), Path(_perf_model.__file__)), globals())
