"""Fixed fleets: the baseline every autoscaler must beat, and the perfect-foresight bound.

``FixedPolicy`` holds one replica count (sized for the peak, it is what a cautious team runs).
``OraclePolicy`` knows the future arrival rate and the scale-up lead time, and holds at every
instant just the replicas that rate needs at one replica's measured limit: the cost lower bound
a real policy, which must guess the future, is measured against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpuwise.policy.base import Decision, FleetState
from gpuwise.signals import Signals


@dataclass
class FixedPolicy:
    """Always ``replicas``."""

    replicas: int
    name: str = "fixed"
    interval_s: float = 15.0

    def reset(self) -> None:
        pass

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        return Decision(self.replicas, 0, f"fixed fleet of {self.replicas}")


@dataclass
class OraclePolicy:
    """Perfect foresight of the arrival rate: replicas for the rate ``lead_s`` ahead, no margin
    for forecast error.

    ``rate_rps[k]`` is the true arrival rate over ``[k*bin_s, (k+1)*bin_s)`` (from the very
    arrivals the run replays); ``replica_rps`` is one replica's rate at the SLO. At each tick it
    asks for what the busiest bin between now and ``now + lead_s + interval_s`` needs, so replicas
    are ready when the load arrives, and lets go of them as soon as the load has passed.
    """

    rate_rps: np.ndarray
    bin_s: float
    replica_rps: float
    lead_s: float
    name: str = "oracle"
    interval_s: float = 5.0

    def reset(self) -> None:
        pass

    def needed(self, t0_s: float, t1_s: float) -> int:
        k0 = max(0, int(t0_s // self.bin_s))
        k1 = max(k0 + 1, int(math.ceil(t1_s / self.bin_s)))
        peak = float(np.max(self.rate_rps[k0:k1])) if k0 < self.rate_rps.size else 0.0
        return max(1, math.ceil(peak / self.replica_rps - 1e-9))

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        horizon = now_s + self.lead_s + self.interval_s
        want = self.needed(now_s, horizon)
        return Decision(
            want,
            0,
            f"oracle: peak rate to {horizon:.0f} s needs {want} at {self.replica_rps:.2f} rps each",
        )
