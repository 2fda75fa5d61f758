"""The policy interface: signals history and fleet state in, desired replicas and warm pool out.

A policy is a pure decision object. It never sleeps, never does I/O and takes the time as an
argument, so the simulator can run a day of traffic through it in seconds and the live controller
can call the very same object every few seconds. It may keep state between calls (stabilization
windows, delay counters); ``reset`` clears it, so one object run twice on the same inputs makes
the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gpuwise.signals import Signals


@dataclass(frozen=True)
class Decision:
    """What the fleet should look like: serving replicas (ready + starting) and warm-pool size."""

    desired_replicas: int
    warm_pool: int = 0
    reason: str = ""


@dataclass(frozen=True)
class FleetState:
    """The deployment's replicas as the controller sees them at one instant.

    ``cold_lead_s`` / ``warm_lead_s`` are the expected times from a request to a ready replica,
    from scratch and from the warm pool; prices are per replica (all its GPUs) per hour.
    """

    deployment: str
    now_s: float
    desired: int  # the target last applied
    ready: int
    starting: int  # requested or starting toward serving (including warm activations)
    warm: int  # in the warm pool, or on its way there
    draining: int
    min_replicas: int
    max_replicas: int
    cold_lead_s: float
    warm_lead_s: float
    usd_per_replica_hour: float
    warm_usd_per_replica_hour: float
    spot: int = 0  # replicas on reclaimable (spot) capacity, alive and not under a notice

    @property
    def serving(self) -> int:
        """Replicas that serve now or will without a new decision."""
        return self.ready + self.starting

    def clamp(self, n: float) -> int:
        return int(min(max(n, self.min_replicas), self.max_replicas))


@runtime_checkable
class Policy(Protocol):
    """Anything with a name, a decision interval and ``decide`` (and ``reset``) is a policy."""

    name: str
    interval_s: float

    def reset(self) -> None: ...

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision: ...


# ---------------------------------------------------------------- reading the history


def window(history: Sequence[Signals], now_s: float, seconds: float) -> list[Signals]:
    """The signals whose interval ends within ``(now_s - seconds, now_s]``, oldest first."""
    out: list[Signals] = []
    for s in reversed(history):
        if s.t_s <= now_s - seconds + 1e-9:
            break
        if s.t_s <= now_s + 1e-9:
            out.append(s)
    out.reverse()
    return out


def mean_of(rows: Sequence[Signals], field: str) -> float:
    """Mean of a field over rows, skipping NaN; NaN when nothing was measured."""
    vals = [getattr(r, field) for r in rows]
    vals = [v for v in vals if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def latest_value(history: Sequence[Signals], field: str) -> float:
    """The newest measured value of a field (NaN if none)."""
    for s in reversed(history):
        v = getattr(s, field)
        if not math.isnan(v):
            return float(v)
    return math.nan


def per_ready(total: float, ready: float) -> float:
    """A fleet total spread over ready replicas (the per-pod mean an HPA Pods metric sees)."""
    return total / ready if ready > 0 else math.nan


def scraped(history: Sequence[Signals], now_s: float, scrape_interval_s: float) -> Signals | None:
    """The row a scraper polling every ``scrape_interval_s`` last read by ``now_s``.

    A Prometheus-backed metric lags the engine by up to one scrape interval; policies reading
    through Prometheus (HPA's adapter, KEDA) see that lag, those scraping pods directly do not.
    """
    if scrape_interval_s <= 0:
        return history[-1] if history else None
    cut = math.floor(now_s / scrape_interval_s + 1e-9) * scrape_interval_s
    for s in reversed(history):
        if s.t_s <= cut + 1e-9:
            return s
    return None
