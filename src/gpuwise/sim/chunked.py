"""The compiled loop of one deployment, resumable: run to an instant, stop, let Python act, go on.

Why a second loop beside ``kernel.run_deployment``: an autoscaling policy is Python and must see
the fleet at each of its ticks, and the lifecycle must add, drain and fail replicas between ticks.
So this loop keeps all state in arrays the caller owns and returns at ``t_end``; the caller then
changes replicas' availability windows (``PF_AVAIL_FROM`` / ``PF_AVAIL_UNTIL``), fails replicas,
expires requests and calls it again. With a fixed fleet and no action in between it gives exactly
what the one-shot kernel gives (a test checks it byte for byte), so the default path can stay on
the one-shot kernel.

What the one-shot kernel does not have, and this one does:

* a **gateway hold queue**: a request that arrives while no replica is available waits at the
  router (as Knative's activator holds it) instead of being rejected, and is routed as soon as a
  replica is ready; it times out like any other waiting request;
* **timeouts** (``expire_waiting``): a request still waiting for admission ``timeout_s`` after it
  arrived is given up by its client (outcome 3);
* **node failure** (``fail_replica``): every request on the replica fails (outcome 2), except that
  the router retries, up to a limit, those that had not streamed a token yet (counted);
* **drain completion** (``busy_end``): the end of each replica's last step, so the caller knows
  when a draining replica has finished its in-flight requests and stops being billed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from gpuwise._jit import drop_stale_caches
from gpuwise.sim import engine as _engine
from gpuwise.sim import kernel as _kernel
from gpuwise.sim import router as _router
from gpuwise.sim.engine import (
    C_BLOCK,
    C_CHUNKED,
    C_MAX_BATCHED,
    C_MAX_MODEL_LEN,
    C_ROUTER,
    OUTCOME_PENDING,
    OUTCOME_REJECTED,
    PF_AVAIL_UNTIL,
    PF_CLOCK,
    PF_PEND_END,
    PI_CAPACITY,
    PI_FREE,
    PI_HEAD,
    PI_PEND_N,
    PI_RUNNING,
    PI_TAIL,
    PI_WAITING,
    RF_ARRIVAL,
    RF_FINISH,
    RI_BLOCKS,
    RI_COMPUTED,
    RI_GENERATED,
    RI_NEXT,
    RI_OUTCOME,
    RI_PROMPT,
    RI_REPLICA,
    RI_TOKENS,
    apply_pending,
    blocks_for,
    has_work,
    schedule,
    truncate_run,
    waiting_pop_front,
    waiting_push_back,
)
from gpuwise.sim.kernel import _ensure_bins, _sample
from gpuwise.sim.router import available, route

OUTCOME_FAILED = 2
OUTCOME_TIMED_OUT = 3

# cursor slots: the loop's position, kept by the caller between calls
CUR_NEXT = 0  # next arrival to route
CUR_INTERVAL = 1  # next signal interval to sample
CUR_HOLD_HEAD = 2  # gateway hold queue: hold[head:tail] (entries may be stale, see flush_hold)
CUR_HOLD_TAIL = 3
N_CUR = 4


@njit(cache=True)
def advance_tracked(
    t: float,
    ri: np.ndarray,
    rf: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    sched: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    bins: np.ndarray,
    interval_s: float,
    r: int,
    busy_end: np.ndarray,
) -> None:
    """``engine.advance``, also recording when the replica's last completed step ended."""
    while True:
        if pi[r, PI_PEND_N] > 0:
            if pf[r, PF_PEND_END] <= t:
                apply_pending(ri, rf, pi, pf, running, sched, cfg, bins, interval_s, r)
                busy_end[r] = pf[r, PF_CLOCK]
            else:
                return
        if pf[r, PF_CLOCK] < t and has_work(pi, r):
            schedule(pf[r, PF_CLOCK], ri, rf, pi, pf, running, sched, cfg, coeffs, r)
        else:
            break
    if pf[r, PF_CLOCK] < t:
        pf[r, PF_CLOCK] = t


@njit(cache=True)
def _advance_all(
    t: float,
    ri: np.ndarray,
    rf: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    sched: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    bins: np.ndarray,
    interval_s: float,
    busy_end: np.ndarray,
) -> None:
    for r in range(pi.shape[0]):
        advance_tracked(
            t, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, r, busy_end
        )


@njit(cache=True)
def run_chunk(
    t_end: float,
    arrival_s: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    draws: np.ndarray,
    ri: np.ndarray,
    rf: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    sched: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    kv_capacity_blocks: int,
    bins: np.ndarray,
    interval_s: float,
    rr_next: np.ndarray,
    cursor: np.ndarray,
    hold: np.ndarray,
    busy_end: np.ndarray,
) -> np.ndarray:
    """Route arrivals before ``t_end``, sample intervals ending by it, advance every replica to it.

    Returns the (possibly grown) interval bins. Arrivals exactly at ``t_end`` are left for the
    next call, after the caller has acted at ``t_end``, as a real router sees a replica added at
    that instant.
    """
    n = arrival_s.shape[0]
    bs = cfg[C_BLOCK]
    kind = cfg[C_ROUTER]
    i = cursor[CUR_NEXT]
    k = cursor[CUR_INTERVAL]
    while i < n and arrival_s[i] < t_end:
        t = arrival_s[i]
        while (k + 1) * interval_s <= t:
            ts = (k + 1) * interval_s
            bins = _ensure_bins(bins, ts, interval_s)
            _advance_all(
                ts, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, busy_end
            )
            _sample(k, ts, ri, pi, pf, running, cfg, coeffs, bins)
            k += 1
        bins = _ensure_bins(bins, t, interval_s)
        _advance_all(t, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, busy_end)
        p = prompt_tokens[i]
        total = p + output_tokens[i]
        servable = (
            p > 0
            and total <= cfg[C_MAX_MODEL_LEN]
            and blocks_for(total, bs) <= kv_capacity_blocks
            and (cfg[C_CHUNKED] != 0 or total <= cfg[C_MAX_BATCHED])
        )
        if not servable:
            ri[i, RI_OUTCOME] = OUTCOME_REJECTED
            rf[i, RF_FINISH] = t
            i += 1
            continue
        r = route(kind, i, t, draws, rr_next, ri, pi, pf, running, cfg, coeffs)
        if r < 0:
            hold[cursor[CUR_HOLD_TAIL]] = i
            cursor[CUR_HOLD_TAIL] += 1
        else:
            truncate_run(t, pi, pf, coeffs, r)
            ri[i, RI_REPLICA] = r
            waiting_push_back(ri, pi, r, i)
        i += 1
    while (k + 1) * interval_s <= t_end:
        ts = (k + 1) * interval_s
        bins = _ensure_bins(bins, ts, interval_s)
        _advance_all(ts, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, busy_end)
        _sample(k, ts, ri, pi, pf, running, cfg, coeffs, bins)
        k += 1
    bins = _ensure_bins(bins, t_end, interval_s)
    _advance_all(t_end, ri, rf, pi, pf, running, sched, cfg, coeffs, bins, interval_s, busy_end)
    cursor[CUR_NEXT] = i
    cursor[CUR_INTERVAL] = k
    return bins


@njit(cache=True)
def flush_hold(
    t: float,
    draws: np.ndarray,
    ri: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    rr_next: np.ndarray,
    cursor: np.ndarray,
    hold: np.ndarray,
) -> int:
    """Route the held requests, oldest first, if a replica is available at ``t``; how many went.

    Every replica must already be advanced to ``t`` (true between ``run_chunk`` calls).
    """
    head = cursor[CUR_HOLD_HEAD]
    tail = cursor[CUR_HOLD_TAIL]
    if head >= tail:
        return 0
    any_up = False
    for r in range(pi.shape[0]):
        if available(pf, r, t):
            any_up = True
            break
    if not any_up:
        return 0
    kind = cfg[C_ROUTER]
    routed = 0
    for j in range(head, tail):
        q = hold[j]
        if ri[q, RI_OUTCOME] != OUTCOME_PENDING or ri[q, RI_REPLICA] >= 0:
            continue  # timed out while held
        r = route(kind, q, t, draws, rr_next, ri, pi, pf, running, cfg, coeffs)
        truncate_run(t, pi, pf, coeffs, r)
        ri[q, RI_REPLICA] = r
        waiting_push_back(ri, pi, r, q)
        routed += 1
    cursor[CUR_HOLD_HEAD] = tail
    return routed


@njit(cache=True)
def expire_waiting(
    t: float,
    timeout_s: float,
    ri: np.ndarray,
    rf: np.ndarray,
    pi: np.ndarray,
    cursor: np.ndarray,
    hold: np.ndarray,
) -> int:
    """Give up requests that waited ``timeout_s`` without a first token; returns how many.

    Only requests outside a running batch are touched (held at the gateway, or in a replica's
    waiting queue, where they hold no KV block), so a step in flight is never disturbed. A
    request already streaming is never timed out: its client is reading tokens.
    """
    cutoff = t - timeout_s
    n_exp = 0
    for r in range(pi.shape[0]):
        prev = -1
        q = pi[r, PI_HEAD]
        while q >= 0:
            nxt = ri[q, RI_NEXT]
            if ri[q, RI_GENERATED] == 0 and rf[q, RF_ARRIVAL] <= cutoff:
                if prev < 0:
                    pi[r, PI_HEAD] = nxt
                else:
                    ri[prev, RI_NEXT] = nxt
                if nxt < 0:
                    pi[r, PI_TAIL] = prev
                pi[r, PI_WAITING] -= 1
                ri[q, RI_NEXT] = -1
                ri[q, RI_OUTCOME] = OUTCOME_TIMED_OUT
                rf[q, RF_FINISH] = t
                n_exp += 1
            else:
                prev = q
            q = nxt
    for j in range(cursor[CUR_HOLD_HEAD], cursor[CUR_HOLD_TAIL]):
        q = hold[j]
        held = ri[q, RI_OUTCOME] == OUTCOME_PENDING and ri[q, RI_REPLICA] < 0
        if held and rf[q, RF_ARRIVAL] <= cutoff:
            ri[q, RI_OUTCOME] = OUTCOME_TIMED_OUT
            rf[q, RF_FINISH] = t
            n_exp += 1
    return n_exp


@njit(cache=True)
def _drop(
    t: float,
    q: int,
    retry_max: int,
    ri: np.ndarray,
    rf: np.ndarray,
    cursor: np.ndarray,
    hold: np.ndarray,
    retries: np.ndarray,
) -> int:
    """A request lost with its replica: back to the gateway (1) or failed (0)."""
    ri[q, RI_BLOCKS] = 0
    ri[q, RI_COMPUTED] = 0
    ri[q, RI_NEXT] = -1
    if ri[q, RI_GENERATED] == 0 and retries[q] < retry_max:
        retries[q] += 1
        ri[q, RI_TOKENS] = ri[q, RI_PROMPT]
        ri[q, RI_REPLICA] = -1
        hold[cursor[CUR_HOLD_TAIL]] = q
        cursor[CUR_HOLD_TAIL] += 1
        return 1
    ri[q, RI_OUTCOME] = OUTCOME_FAILED
    rf[q, RF_FINISH] = t
    return 0


@njit(cache=True)
def fail_replica(
    t: float,
    r: int,
    retry_max: int,
    ri: np.ndarray,
    rf: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    cursor: np.ndarray,
    hold: np.ndarray,
    retries: np.ndarray,
) -> tuple[int, int]:
    """Replica ``r`` dies at ``t`` (advanced to ``t``); returns (requests failed, retried).

    The step in flight is lost with the GPU. Requests that had not streamed a token are put back
    at the gateway for the router to retry (up to ``retry_max`` times each); the others fail,
    since their client already holds part of an answer.
    """
    failed = 0
    retried = 0
    for j in range(pi[r, PI_RUNNING]):
        if _drop(t, running[r, j], retry_max, ri, rf, cursor, hold, retries):
            retried += 1
        else:
            failed += 1
    while pi[r, PI_HEAD] >= 0:
        q = waiting_pop_front(ri, pi, r)
        if _drop(t, q, retry_max, ri, rf, cursor, hold, retries):
            retried += 1
        else:
            failed += 1
    pi[r, PI_RUNNING] = 0
    pi[r, PI_PEND_N] = 0
    pi[r, PI_FREE] = pi[r, PI_CAPACITY]
    if pf[r, PF_AVAIL_UNTIL] > t:
        pf[r, PF_AVAIL_UNTIL] = t
    return failed, retried


@njit(cache=True)
def replica_idle(pi: np.ndarray, r: int) -> bool:
    """Nothing routed to the replica is unfinished (so a draining replica is done)."""
    return pi[r, PI_PEND_N] == 0 and pi[r, PI_RUNNING] == 0 and pi[r, PI_HEAD] < 0


@njit(cache=True)
def first_active(ri: np.ndarray, rf: np.ndarray, lo: int, hi: int, t_cut: float) -> int:
    """The first request from ``lo`` (below ``hi``) unfinished, or finished after ``t_cut``.

    Every event after ``t_cut`` belongs to a request at or beyond it, so readers of recent
    intervals scan from there instead of from the start of the run.
    """
    j = lo
    while j < hi and ri[j, RI_OUTCOME] != OUTCOME_PENDING and rf[j, RF_FINISH] <= t_cut:
        j += 1
    return j


# ---------------------------------------------------------------- stale compiled code

# As in kernel.py: numba keys its on-disk cache on the defining file alone, so this module's
# compiled functions are dropped whenever any source they inline has changed.
_SOURCES = (
    Path(__file__),
    Path(_engine.__file__),
    Path(_router.__file__),
    Path(_kernel.__file__),
    Path(__file__).resolve().parents[1] / "perf" / "model.py",
)


drop_stale_caches("sim_chunked", _SOURCES, globals())
