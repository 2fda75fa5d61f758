"""The compiled loop of one deployment: every replica and the router, arrival by arrival.

Why one kernel per deployment: routing needs every replica's state at each arrival instant, so
replicas of a deployment advance in lockstep between arrivals; deployments never interact and are
run one after another by ``gpuwise.sim.fleet``. The loop touches each replica only when one of
its steps ends or when a request is routed to it, so the work grows with the number of steps
(a few per request thanks to decode fast-forward), not with the number of iterations.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit

from gpuwise._jit import drop_stale_caches
from gpuwise.sim import engine as _engine
from gpuwise.sim import router as _router
from gpuwise.sim.engine import (
    B_KV_MAX,
    B_KV_MEAN,
    B_QUEUE,
    B_READY,
    B_RUNNING,
    C_BLOCK,
    C_CHUNKED,
    C_MAX_BATCHED,
    C_MAX_MODEL_LEN,
    C_MAX_SEQS,
    C_ROUTER,
    N_B,
    N_PF,
    N_PI,
    N_RF,
    N_RI,
    OUTCOME_PENDING,
    OUTCOME_REJECTED,
    PF_AVAIL_FROM,
    PF_AVAIL_UNTIL,
    PF_CLOCK,
    PI_CAPACITY,
    PI_FREE,
    PI_HEAD,
    PI_PEND_N,
    PI_RUNNING,
    PI_TAIL,
    PI_WAITING,
    RF_ARRIVAL,
    RF_FINISH,
    RI_NEXT,
    RI_OUTCOME,
    RI_PROMPT,
    RI_REPLICA,
    RI_TARGET,
    RI_TOKENS,
    advance,
    blocks_for,
    blocks_in_use,
    truncate_run,
    waiting_push_back,
)
from gpuwise.sim.router import available, route


@njit(cache=True)
def _ensure_bins(bins: np.ndarray, t: float, interval_s: float) -> np.ndarray:
    need = int(math.ceil(t / interval_s)) + 2
    if need <= bins.shape[0]:
        return bins
    grown = np.zeros((max(need, 2 * bins.shape[0]), bins.shape[1]))
    grown[: bins.shape[0]] = bins
    return grown


@njit(cache=True)
def _sample(
    k: int,
    t: float,
    ri: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    bins: np.ndarray,
) -> None:
    """Read the gauges at the end of interval ``k`` (every replica advanced to ``t``)."""
    queue = 0
    run = 0
    ready = 0
    kv_sum = 0.0
    kv_max = 0.0
    for r in range(pi.shape[0]):
        if not available(pf, r, t):
            continue
        ready += 1
        queue += pi[r, PI_WAITING]
        run += pi[r, PI_RUNNING]
        kv = blocks_in_use(t, ri, pi, pf, running, cfg, coeffs, r) / pi[r, PI_CAPACITY]
        kv_sum += kv
        if kv > kv_max:
            kv_max = kv
    bins[k, B_QUEUE] = queue
    bins[k, B_RUNNING] = run
    bins[k, B_READY] = ready
    bins[k, B_KV_MEAN] = kv_sum / ready if ready > 0 else np.nan
    bins[k, B_KV_MAX] = kv_max if ready > 0 else np.nan


@njit(cache=True)
def _busy(pi: np.ndarray) -> bool:
    for r in range(pi.shape[0]):
        if pi[r, PI_PEND_N] > 0 or pi[r, PI_RUNNING] > 0 or pi[r, PI_HEAD] >= 0:
            return True
    return False


@njit(cache=True)
def run_deployment(
    arrival_s: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    draws: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    kv_capacity_blocks: int,
    avail_from_s: np.ndarray,
    avail_until_s: np.ndarray,
    interval_s: float,
    min_intervals: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulate one deployment to the last completion; returns (ri, rf, pi, pf, intervals).

    Requests that cannot ever be served (longer than max_model_len, more KV blocks than the
    whole cache, no replica available) are rejected at arrival, so each request ends exactly once.
    """
    n = arrival_s.shape[0]
    n_rep = avail_from_s.shape[0]
    bs = cfg[C_BLOCK]
    ri = np.zeros((n, N_RI), dtype=np.int64)
    rf = np.full((n, N_RF), np.nan)
    for i in range(n):
        ri[i, RI_PROMPT] = prompt_tokens[i]
        ri[i, RI_TARGET] = output_tokens[i]
        ri[i, RI_TOKENS] = prompt_tokens[i]
        ri[i, RI_REPLICA] = -1
        ri[i, RI_OUTCOME] = OUTCOME_PENDING
        ri[i, RI_NEXT] = -1
        rf[i, RF_ARRIVAL] = arrival_s[i]
    pi = np.zeros((n_rep, N_PI), dtype=np.int64)
    pf = np.zeros((n_rep, N_PF))
    for r in range(n_rep):
        pi[r, PI_HEAD] = -1
        pi[r, PI_TAIL] = -1
        pi[r, PI_CAPACITY] = kv_capacity_blocks
        pi[r, PI_FREE] = kv_capacity_blocks
        pf[r, PF_AVAIL_FROM] = avail_from_s[r]
        pf[r, PF_AVAIL_UNTIL] = avail_until_s[r]
        pf[r, PF_CLOCK] = avail_from_s[r]
    running = np.zeros((n_rep, cfg[C_MAX_SEQS]), dtype=np.int64)
    sched = np.zeros((n_rep, cfg[C_MAX_SEQS]), dtype=np.int64)
    bins = np.zeros((max(min_intervals, 16) + 2, N_B))
    rr_next = np.zeros(1, dtype=np.int64)
    kind = cfg[C_ROUTER]
    k = 0  # next interval to sample
    for i in range(n):
        t = arrival_s[i]
        while (k + 1) * interval_s <= t:
            ts = (k + 1) * interval_s
            bins = _ensure_bins(bins, ts, interval_s)
            for r in range(n_rep):
                advance(ts, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, r)
            _sample(k, ts, ri, pi, pf, running, cfg, coeffs, bins)
            k += 1
        bins = _ensure_bins(bins, t, interval_s)
        for r in range(n_rep):
            advance(t, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, r)
        p = prompt_tokens[i]
        total = p + output_tokens[i]
        servable = (
            p > 0
            and total <= cfg[C_MAX_MODEL_LEN]
            and blocks_for(total, bs) <= kv_capacity_blocks
            and (cfg[C_CHUNKED] != 0 or total <= cfg[C_MAX_BATCHED])
        )
        r = route(kind, i, t, draws, rr_next, ri, pi, pf, running, cfg, coeffs) if servable else -1
        if r < 0:
            ri[i, RI_OUTCOME] = OUTCOME_REJECTED
            rf[i, RF_FINISH] = t
            continue
        truncate_run(t, pi, pf, coeffs, r)
        ri[i, RI_REPLICA] = r
        waiting_push_back(ri, pi, r, i)
    while k < min_intervals or _busy(pi):
        ts = (k + 1) * interval_s
        bins = _ensure_bins(bins, ts, interval_s)
        for r in range(n_rep):
            advance(ts, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, r)
        _sample(k, ts, ri, pi, pf, running, cfg, coeffs, bins)
        k += 1
    return ri, rf, pi, pf, bins[:k].copy()


# ---------------------------------------------------------------- stale compiled code

# numba's on-disk cache is keyed on the defining file alone: when engine.py or perf/model.py
# changes but this file does not, the cached kernel would keep the old inlined code. So the
# caches of every sim function are dropped whenever any of these sources changed.
_SOURCES = (
    Path(__file__),
    Path(_engine.__file__),
    Path(_router.__file__),
    Path(__file__).resolve().parents[1] / "perf" / "model.py",
)


def _drop_stale_caches() -> None:
    for tag, module in (
        ("sim_engine", vars(_engine)),
        ("sim_router", vars(_router)),
        ("sim_kernel", globals()),
    ):
        drop_stale_caches(tag, _SOURCES, module)


_drop_stale_caches()
