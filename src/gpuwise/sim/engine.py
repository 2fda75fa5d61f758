"""One replica's continuous-batching engine, modelled on vLLM v1's scheduler, as numba functions.

Why numba and flat arrays: a fleet simulation of a million requests makes tens of millions of
scheduling decisions; as Python objects that is minutes, as compiled loops over numpy arrays it
is seconds. Every function here is pure in the sense that it only reads and writes the arrays it
is given (no globals change), so the kernel in ``gpuwise.sim.kernel`` composes them freely.

The model, step by step (vLLM v1 ``Scheduler.schedule``, FCFS policy):

* The running list keeps admission order. Each running request gets ``min(todo, budget)`` new
  tokens, front to back, where ``todo = num_tokens - num_computed`` (1 for a decoding request,
  the rest of the prompt for a partial prefill) and ``budget`` starts at max_num_batched_tokens.
  A partial prefill is always the newest admission, so this equals "decodes first, then running
  partial prefills".
* Paged KV: a request holds ``ceil(num_computed_after_step / block_size)`` blocks. When the free
  pool cannot cover a request's new blocks, the most recently admitted running request is
  preempted (recompute): its blocks are freed, its progress forgotten, and it goes to the front
  of the waiting queue with its generated tokens to be recomputed as prompt.
* Only if nothing was preempted this step, waiting requests are admitted in FCFS order while
  ``len(running) < max_num_seqs``, budget remains and their first chunk's blocks fit; the first
  one that does not fit stops admission (no skipping ahead).
* A step that brings a request's ``num_computed`` up to ``num_tokens`` samples one token: the
  first one is the TTFT, the one that reaches the output length finishes the request.

Decode fast-forward: when a step is decode-only, schedules every running request, admitted and
preempted nothing, the next steps are the same batch with contexts one longer, until a request
finishes or the KV cache would overflow. Those ``n`` iterations become one pending "run" whose
duration is the closed form of ``ReplicaPerf.decode_run_time_s``; an arrival routed to the
replica mid-run truncates it to the iterations already started (``truncate_run``), so the new
request joins at exactly the iteration boundary a step-by-step simulation would give it.

State layout (rows are requests or replicas; columns are the named constants below) keeps the
argument lists short and each request's fields in one cache line.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gpuwise.perf.model import iteration_time_from_coeffs

# Compiled once here so every kernel shares one formula with ReplicaPerf.iteration_time_s.
iteration_time = njit(cache=True)(iteration_time_from_coeffs)

# ---------------------------------------------------------------- request columns (int64)
RI_PROMPT = 0  # prompt tokens
RI_TARGET = 1  # output tokens the request will produce
RI_COMPUTED = 2  # tokens whose KV is in the cache (vLLM num_computed_tokens)
RI_TOKENS = 3  # prompt + generated (vLLM num_tokens)
RI_GENERATED = 4  # output tokens produced so far
RI_BLOCKS = 5  # KV blocks held
RI_REPLICA = 6  # replica index, -1 when never routed
RI_PREEMPTIONS = 7
RI_OUTCOME = 8  # OUTCOME_* code
RI_NEXT = 9  # next request in the replica's waiting queue (linked list), -1 at the tail
N_RI = 10

# ---------------------------------------------------------------- request columns (float64)
RF_ARRIVAL = 0
RF_ADMITTED = 1  # first admission into the running batch
RF_FIRST = 2  # first output token
RF_FINISH = 3  # last output token, or the rejection time
N_RF = 4

OUTCOME_PENDING = -1  # internal: never left in a finished simulation
OUTCOME_OK = 0
OUTCOME_REJECTED = 1
# Reserved for the lifecycle and timeout issues: OUTCOME_FAILED = 2, OUTCOME_TIMED_OUT = 3.

# ---------------------------------------------------------------- replica columns (int64)
PI_RUNNING = 0  # requests in the running list
PI_HEAD = 1  # waiting queue head request, -1 when empty
PI_TAIL = 2
PI_WAITING = 3  # waiting queue length
PI_FREE = 4  # free KV blocks
PI_CAPACITY = 5  # KV blocks in all
PI_PEND_N = 6  # iterations of the pending step (0: none pending)
PI_MAX_USED = 7  # most KV blocks ever allocated at once (checked <= capacity by the tests)
PI_STEPS = 8  # scheduling decisions made (a fast-forward run counts once)
PI_ITERATIONS = 9  # engine iterations simulated
PI_PREEMPTIONS = 10
PI_SCHED_SEQS = 11  # requests scheduled in the pending step
PI_BLOCKS_START = 12  # KV blocks in use once the pending step's first iteration allocated
PI_PREEMPT_PENDING = 13  # preemptions made by the pending step's scheduling
N_PI = 14

# ---------------------------------------------------------------- replica columns (float64)
PF_CLOCK = 0  # when the engine is next free to schedule
PF_PEND_START = 1
PF_PEND_END = 2
PF_AVAIL_FROM = 3  # the replica serves in [from, until): fixed now, the autoscaler's later
PF_AVAIL_UNTIL = 4
PF_BUSY_S = 5  # time spent executing iterations
PF_SEQ_S = 6  # integral of scheduled requests over busy time
PF_RUNNING_S = 7  # integral of the running list's length over time
PF_KV_BLOCK_S = 8  # integral of KV blocks in use over time
PF_PEND_CTX = 9  # summed context of the pending decode run's batch at its start
PF_PROMPT_TOKENS = 10  # prefill tokens computed (recomputation included)
PF_OUTPUT_TOKENS = 11
N_PF = 12

# ---------------------------------------------------------------- engine configuration (int64)
C_MAX_SEQS = 0
C_MAX_BATCHED = 1
C_BLOCK = 2
C_MAX_MODEL_LEN = 3
C_CHUNKED = 4
C_ROUTER = 5
N_C = 6

# ---------------------------------------------------------------- per-interval columns (float64)
B_BUSY_S = 0  # summed over replicas
B_PROMPT_TOKENS = 1
B_OUTPUT_TOKENS = 2
B_PREEMPTIONS = 3
B_QUEUE = 4  # gauges, read at the interval's end
B_RUNNING = 5
B_KV_MEAN = 6
B_KV_MAX = 7
B_READY = 8
N_B = 9


@njit(cache=True)
def blocks_for(tokens: int, block_size: int) -> int:
    return (tokens + block_size - 1) // block_size


# ---------------------------------------------------------------- waiting queue (linked list)


@njit(cache=True)
def waiting_push_back(ri: np.ndarray, pi: np.ndarray, r: int, q: int) -> None:
    ri[q, RI_NEXT] = -1
    if pi[r, PI_TAIL] < 0:
        pi[r, PI_HEAD] = q
    else:
        ri[pi[r, PI_TAIL], RI_NEXT] = q
    pi[r, PI_TAIL] = q
    pi[r, PI_WAITING] += 1


@njit(cache=True)
def waiting_push_front(ri: np.ndarray, pi: np.ndarray, r: int, q: int) -> None:
    ri[q, RI_NEXT] = pi[r, PI_HEAD]
    pi[r, PI_HEAD] = q
    if pi[r, PI_TAIL] < 0:
        pi[r, PI_TAIL] = q
    pi[r, PI_WAITING] += 1


@njit(cache=True)
def waiting_pop_front(ri: np.ndarray, pi: np.ndarray, r: int) -> int:
    q = pi[r, PI_HEAD]
    nxt = ri[q, RI_NEXT]
    pi[r, PI_HEAD] = nxt
    if nxt < 0:
        pi[r, PI_TAIL] = -1
    ri[q, RI_NEXT] = -1
    pi[r, PI_WAITING] -= 1
    return q


# ---------------------------------------------------------------- decode runs in closed form


@njit(cache=True)
def _series(a: float, s: float, i0: int, i1: int) -> float:
    cnt = i1 - i0
    if cnt <= 0:
        return 0.0
    return a * cnt + s * (i0 + i1 - 1) * cnt / 2.0


@njit(cache=True)
def sum_max_linear(a1: float, s1: float, a2: float, s2: float, n: int) -> float:
    """perf.model._sum_max_linear, compiled: sum over i < n of max(a1 + s1*i, a2 + s2*i)."""
    if s1 == s2:
        return _series(max(a1, a2), s1, 0, n)
    cross = (a2 - a1) / (s1 - s2)
    k = min(n, max(0, math.ceil(cross)))
    head = _series(a1, s1, 0, k) if a1 >= a2 else _series(a2, s2, 0, k)
    end1 = a1 + s1 * (n - 1)
    end2 = a2 + s2 * (n - 1)
    tail = _series(a1, s1, k, n) if end1 >= end2 else _series(a2, s2, k, n)
    return head + tail


@njit(cache=True)
def decode_run_time(coeffs: np.ndarray, batch: float, ctx_sum: float, n: int) -> float:
    """ReplicaPerf.decode_run_time_s for a batch whose contexts sum to ``ctx_sum`` at the start.

    One iteration goes through ``iteration_time`` itself, so that a run of one is bit-identical
    to a single step (the step-by-step reference in the tests relies on it).
    """
    if n <= 0 or batch <= 0:
        return 0.0
    if n == 1:
        return iteration_time(coeffs, 0.0, 0.0, batch, ctx_sum, 0.0, 0.0)
    b = batch
    layer = coeffs[3] * b
    eff = layer / (layer + coeffs[4])
    fc = coeffs[5] * eff
    a_c = (coeffs[0] * b + coeffs[1] * b + coeffs[2] * ctx_sum) / fc
    s_c = coeffs[2] * b / fc
    a_m = (coeffs[6] + coeffs[7] * (ctx_sum + b) + coeffs[8] * b) / coeffs[9]
    s_m = coeffs[7] * b / coeffs[9]
    fixed = n * (coeffs[10] + coeffs[14] * b + coeffs[11] * (coeffs[12] + coeffs[13] * b))
    return fixed + sum_max_linear(a_c, s_c, a_m, s_m, n)


@njit(cache=True)
def iterations_started_before(
    coeffs: np.ndarray, batch: float, ctx_sum: float, n: int, elapsed_s: float
) -> int:
    """How many of a run's ``n`` iterations start strictly before ``elapsed_s`` into it (>= 1)."""
    lo = 1
    hi = n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if decode_run_time(coeffs, batch, ctx_sum, mid - 1) < elapsed_s:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True)
def _run_blocks(
    ri: np.ndarray, running: np.ndarray, r: int, nrun: int, iterations: int, bs: int
) -> int:
    """KV blocks a decode run's batch holds once ``iterations`` of its iterations allocated."""
    total = 0
    for j in range(nrun):
        total += blocks_for(ri[running[r, j], RI_COMPUTED] + iterations, bs)
    return total


@njit(cache=True)
def blocks_in_use(
    t: float,
    ri: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    r: int,
) -> int:
    """KV blocks allocated at time ``t`` (the replica must be advanced to ``t``).

    A pending run allocates one block-slot per iteration as it goes, so mid-run usage is that of
    the iterations started by ``t``, not the run's final figure.
    """
    n = pi[r, PI_PEND_N]
    used = pi[r, PI_CAPACITY] - pi[r, PI_FREE]
    if n <= 1 or t <= pf[r, PF_PEND_START]:
        return used
    m = iterations_started_before(
        coeffs, float(pi[r, PI_SCHED_SEQS]), pf[r, PF_PEND_CTX], n, t - pf[r, PF_PEND_START]
    )
    return _run_blocks(ri, running, r, pi[r, PI_RUNNING], m, cfg[C_BLOCK])


# ---------------------------------------------------------------- one scheduling decision


@njit(cache=True)
def schedule(
    t: float,
    ri: np.ndarray,
    rf: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    sched: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
    r: int,
) -> None:
    """Decide replica ``r``'s next step at time ``t`` and make it pending (see module doc)."""
    bs = cfg[C_BLOCK]
    budget = cfg[C_MAX_BATCHED]
    cap = pi[r, PI_CAPACITY]
    free = pi[r, PI_FREE]
    nrun = pi[r, PI_RUNNING]
    preempted = 0
    idx = 0
    while idx < nrun and budget > 0:
        q = running[r, idx]
        c = ri[q, RI_COMPUTED]
        todo = ri[q, RI_TOKENS] - c
        k = todo if todo < budget else budget
        need = blocks_for(c + k, bs) - ri[q, RI_BLOCKS]
        ok = True
        while need > free:
            victim = running[r, nrun - 1]
            nrun -= 1
            free += ri[victim, RI_BLOCKS]
            ri[victim, RI_BLOCKS] = 0
            ri[victim, RI_COMPUTED] = 0
            ri[victim, RI_PREEMPTIONS] += 1
            preempted += 1
            waiting_push_front(ri, pi, r, victim)
            if victim == q:
                ok = False
                break
        if not ok:
            break
        if need > 0:
            free -= need
            ri[q, RI_BLOCKS] += need
        sched[r, idx] = k
        budget -= k
        idx += 1
    for j in range(idx, nrun):
        sched[r, j] = 0
    admitted = 0
    if preempted == 0:
        max_seqs = cfg[C_MAX_SEQS]
        chunked = cfg[C_CHUNKED] != 0
        while pi[r, PI_HEAD] >= 0 and budget > 0 and nrun < max_seqs:
            q = pi[r, PI_HEAD]
            todo = ri[q, RI_TOKENS] - ri[q, RI_COMPUTED]
            if not chunked and todo > budget:
                break
            k = todo if todo < budget else budget
            need = blocks_for(ri[q, RI_COMPUTED] + k, bs) - ri[q, RI_BLOCKS]
            if need > free:
                break
            waiting_pop_front(ri, pi, r)
            running[r, nrun] = q
            sched[r, nrun] = k
            nrun += 1
            free -= need
            ri[q, RI_BLOCKS] += need
            budget -= k
            admitted += 1
            if np.isnan(rf[q, RF_ADMITTED]):
                rf[q, RF_ADMITTED] = t

    # The batch the performance model times: decodes read their context, chunks attend causally.
    pt = 0.0
    pc = 0.0
    ps = 0.0
    pap = 0.0
    ds = 0.0
    dc = 0.0
    nsched = 0
    all_decode = True
    min_left = 1 << 62
    for j in range(nrun):
        k = sched[r, j]
        if k == 0:
            all_decode = False
            continue
        nsched += 1
        q = running[r, j]
        c = ri[q, RI_COMPUTED]
        g = ri[q, RI_GENERATED]
        if ri[q, RI_TOKENS] - c == 1 and g >= 1:
            ds += 1.0
            dc += c
            left = ri[q, RI_TARGET] - g
            if left < min_left:
                min_left = left
        else:
            pt += k
            pc += c
            ps += 1.0
            pap += k * (c + k / 2.0)
            all_decode = False
    dt = iteration_time(coeffs, pt, pc, ds, dc, ps, pap)
    n = 1
    if all_decode and nsched > 0 and preempted == 0 and admitted == 0 and min_left > 1:
        # Same batch until the first request finishes or the cache cannot grow any more.
        n = min_left
        if _run_blocks(ri, running, r, nrun, n, bs) > cap:
            lo = 1
            hi = n
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if _run_blocks(ri, running, r, nrun, mid, bs) <= cap:
                    lo = mid
                else:
                    hi = mid - 1
            n = lo
        if n > 1:
            dt = decode_run_time(coeffs, ds, dc, n)
    pi[r, PI_RUNNING] = nrun
    pi[r, PI_FREE] = free
    pi[r, PI_PEND_N] = n
    pi[r, PI_SCHED_SEQS] = nsched
    pi[r, PI_BLOCKS_START] = cap - free
    pi[r, PI_PREEMPT_PENDING] = preempted
    pi[r, PI_PREEMPTIONS] += preempted
    pi[r, PI_STEPS] += 1
    if cap - free > pi[r, PI_MAX_USED]:
        pi[r, PI_MAX_USED] = cap - free
    pf[r, PF_PEND_START] = t
    pf[r, PF_PEND_END] = t + dt
    pf[r, PF_PEND_CTX] = dc


@njit(cache=True)
def truncate_run(t: float, pi: np.ndarray, pf: np.ndarray, coeffs: np.ndarray, r: int) -> None:
    """Cut a pending decode run after the iteration in progress at ``t`` (an arrival joins)."""
    n = pi[r, PI_PEND_N]
    s = pf[r, PF_PEND_START]
    if n <= 1 or pf[r, PF_PEND_END] <= t or t <= s:
        return
    b = float(pi[r, PI_SCHED_SEQS])
    ctx = pf[r, PF_PEND_CTX]
    m = iterations_started_before(coeffs, b, ctx, n, t - s)
    if m < n:
        pi[r, PI_PEND_N] = m
        pf[r, PF_PEND_END] = s + decode_run_time(coeffs, b, ctx, m)


# ---------------------------------------------------------------- completing a step


@njit(cache=True)
def bin_of(t: float, interval_s: float) -> int:
    """Interval index of an instant; interval k covers (k*interval, (k+1)*interval]."""
    k = int(math.ceil(t / interval_s)) - 1
    return k if k > 0 else 0


@njit(cache=True)
def add_spread(
    bins: np.ndarray, col: int, s: float, e: float, amount: float, interval_s: float
) -> None:
    """Add ``amount`` over [s, e] to the intervals it overlaps, in proportion to the overlap."""
    if amount == 0.0:
        return
    if e <= s:
        bins[bin_of(e, interval_s), col] += amount
        return
    k = int(s // interval_s)
    last = bin_of(e, interval_s)
    while k <= last:
        lo = max(s, k * interval_s)
        hi = min(e, (k + 1) * interval_s)
        if hi > lo:
            bins[k, col] += amount * (hi - lo) / (e - s)
        k += 1


@njit(cache=True)
def apply_pending(
    ri: np.ndarray,
    rf: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    sched: np.ndarray,
    cfg: np.ndarray,
    bins: np.ndarray,
    interval_s: float,
    r: int,
) -> None:
    """Finish replica ``r``'s pending step at its end time: tokens, completions, accounting."""
    n = pi[r, PI_PEND_N]
    s = pf[r, PF_PEND_START]
    e = pf[r, PF_PEND_END]
    bs = cfg[C_BLOCK]
    cap = pi[r, PI_CAPACITY]
    nrun = pi[r, PI_RUNNING]
    used_before = cap - pi[r, PI_FREE]
    grown = 0
    out_tokens = 0
    prompt_tokens = 0
    w = 0
    for idx in range(nrun):
        q = running[r, idx]
        k = sched[r, idx]
        if k > 0:
            c = ri[q, RI_COMPUTED]
            if n > 1:
                c_new = c + n
                nb = blocks_for(c_new, bs)
                grown += nb - ri[q, RI_BLOCKS]
                ri[q, RI_BLOCKS] = nb
                ri[q, RI_COMPUTED] = c_new
                ri[q, RI_TOKENS] += n
                ri[q, RI_GENERATED] += n
                out_tokens += n
            else:
                if not (ri[q, RI_TOKENS] - c == 1 and ri[q, RI_GENERATED] >= 1):
                    prompt_tokens += k
                c_new = c + k
                ri[q, RI_COMPUTED] = c_new
                if c_new == ri[q, RI_TOKENS]:
                    ri[q, RI_TOKENS] += 1
                    ri[q, RI_GENERATED] += 1
                    out_tokens += 1
                    if ri[q, RI_GENERATED] == 1:
                        rf[q, RF_FIRST] = e
            if ri[q, RI_GENERATED] >= ri[q, RI_TARGET]:
                rf[q, RF_FINISH] = e
                ri[q, RI_OUTCOME] = OUTCOME_OK
                pi[r, PI_FREE] += ri[q, RI_BLOCKS]
                ri[q, RI_BLOCKS] = 0
                continue
        running[r, w] = q
        w += 1
    pi[r, PI_FREE] -= grown
    peak = used_before + grown
    if peak > pi[r, PI_MAX_USED]:
        pi[r, PI_MAX_USED] = peak
    dur = e - s
    pf[r, PF_BUSY_S] += dur
    pf[r, PF_SEQ_S] += pi[r, PI_SCHED_SEQS] * dur
    pf[r, PF_RUNNING_S] += nrun * dur
    pf[r, PF_KV_BLOCK_S] += 0.5 * (pi[r, PI_BLOCKS_START] + peak) * dur
    pf[r, PF_PROMPT_TOKENS] += prompt_tokens
    pf[r, PF_OUTPUT_TOKENS] += out_tokens
    add_spread(bins, B_BUSY_S, s, e, dur, interval_s)
    if n > 1:
        add_spread(bins, B_OUTPUT_TOKENS, s, e, float(out_tokens), interval_s)
    else:
        bins[bin_of(e, interval_s), B_OUTPUT_TOKENS] += out_tokens
    bins[bin_of(e, interval_s), B_PROMPT_TOKENS] += prompt_tokens
    bins[bin_of(s, interval_s), B_PREEMPTIONS] += pi[r, PI_PREEMPT_PENDING]
    pi[r, PI_RUNNING] = w
    pi[r, PI_ITERATIONS] += n
    pi[r, PI_PEND_N] = 0
    pf[r, PF_CLOCK] = e


@njit(cache=True)
def has_work(pi: np.ndarray, r: int) -> bool:
    return pi[r, PI_RUNNING] > 0 or pi[r, PI_HEAD] >= 0


@njit(cache=True)
def advance(
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
) -> None:
    """Bring replica ``r`` to time ``t``: finish steps ending by ``t``, start those before it.

    A step starting exactly at ``t`` is left for later, so that a request arriving at ``t`` is
    seen by it, as a real engine sees a request that is queued when it schedules.
    """
    while True:
        if pi[r, PI_PEND_N] > 0:
            if pf[r, PF_PEND_END] <= t:
                apply_pending(ri, rf, pi, pf, running, sched, cfg, bins, interval_s, r)
            else:
                return
        if pf[r, PF_CLOCK] < t and has_work(pi, r):
            schedule(pf[r, PF_CLOCK], ri, rf, pi, pf, running, sched, cfg, coeffs, r)
        else:
            break
    if pf[r, PF_CLOCK] < t:
        pf[r, PF_CLOCK] = t  # idle until t
