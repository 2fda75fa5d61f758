"""How a deployment's load balancer picks a replica for each arriving request.

The routers are those a serving gateway offers (vLLM production stack, llm-d, AIBrix, Ray Serve):
round-robin ignores load; least-outstanding and power-of-two choices balance queue lengths (the
latter with two random probes, as at a large fleet where polling every replica costs too much);
least-KV balances memory pressure, which is what preempts. They read replica state at the arrival
instant, which the kernel has advanced every replica to, and only replicas inside their
availability window ``[from, until)`` are candidates.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gpuwise.sim.engine import (
    PF_AVAIL_FROM,
    PF_AVAIL_UNTIL,
    PI_CAPACITY,
    PI_RUNNING,
    PI_WAITING,
    blocks_in_use,
)

ROUTERS = {"round-robin": 0, "least-outstanding": 1, "power-of-two": 2, "least-kv": 3}
ROUND_ROBIN, LEAST_OUTSTANDING, POWER_OF_TWO, LEAST_KV = 0, 1, 2, 3


def router_code(name: str) -> int:
    """The kernel's code for a router name (the spec's ``router`` field)."""
    try:
        return ROUTERS[name]
    except KeyError:
        raise ValueError(f"router '{name}': use one of {', '.join(ROUTERS)}") from None


def probe_draws(n: int, seed: int) -> np.ndarray:
    """Two uniform draws per request for power-of-two choices, from the run's seed.

    Drawn here with numpy's generator, not inside the kernel, so that the picks do not depend on
    numba's RNG and a seed reproduces a run byte for byte.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x5157,)))
    return rng.random((n, 2))


@njit(cache=True)
def available(pf: np.ndarray, r: int, t: float) -> bool:
    return pf[r, PF_AVAIL_FROM] <= t < pf[r, PF_AVAIL_UNTIL]


@njit(cache=True)
def outstanding(pi: np.ndarray, r: int) -> int:
    """Requests routed to the replica and not finished: waiting plus running."""
    return pi[r, PI_WAITING] + pi[r, PI_RUNNING]


@njit(cache=True)
def route(
    kind: int,
    i: int,
    t: float,
    draws: np.ndarray,
    rr_next: np.ndarray,
    ri: np.ndarray,
    pi: np.ndarray,
    pf: np.ndarray,
    running: np.ndarray,
    cfg: np.ndarray,
    coeffs: np.ndarray,
) -> int:
    """The replica request ``i`` arriving at ``t`` goes to, or -1 when none is available."""
    n_rep = pi.shape[0]
    n_avail = 0
    for r in range(n_rep):
        if available(pf, r, t):
            n_avail += 1
    if n_avail == 0:
        return -1
    if kind == ROUND_ROBIN:
        for step in range(n_rep):
            r = (rr_next[0] + step) % n_rep
            if available(pf, r, t):
                rr_next[0] = r + 1
                return r
        return -1
    if kind == POWER_OF_TWO:
        a = int(draws[i, 0] * n_avail)
        if n_avail == 1:
            b = a
        else:
            b = int(draws[i, 1] * (n_avail - 1))
            if b >= a:
                b += 1
        ra = -1
        rb = -1
        seen = 0
        for r in range(n_rep):
            if available(pf, r, t):
                if seen == a:
                    ra = r
                if seen == b:
                    rb = r
                seen += 1
        # ties go to the first probe, as a gateway comparing two answers would
        return rb if outstanding(pi, rb) < outstanding(pi, ra) else ra
    best = -1
    best_key = np.inf
    best_tie = 0
    for r in range(n_rep):
        if not available(pf, r, t):
            continue
        out = outstanding(pi, r)
        if kind == LEAST_KV:
            key = blocks_in_use(t, ri, pi, pf, running, cfg, coeffs, r) / pi[r, PI_CAPACITY]
        else:
            key = float(out)
        if best < 0 or key < best_key or (key == best_key and out < best_tie):
            best = r
            best_key = key
            best_tie = out
    return best
