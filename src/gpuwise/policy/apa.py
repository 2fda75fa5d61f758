"""AIBrix's APA, faithfully: a per-pod mean against a target, with fluctuation tolerance bands.

Source: ``reference/autoscaling.md`` (b4), from vllm-project/aibrix
``pkg/controller/podautoscaler/algorithm/apa.go``, ``context/context.go`` and
``podautoscaler_controller.go``. Defaults: resync every 10 s, stable (observe) window 180 s,
scale-up tolerance 0.1, scale-down tolerance 0.1 (the "up/down fluctuation tolerance" bands),
max scale-up rate 2, max scale-down rate 2, scale-up cooldown 0 s, scale-down cooldown 300 s.

Each tick records the **mean of the per-pod values** into the window and the window's value is
the mean over it. The cooldown stabilization picks the **minimum** recommendation of the
scale-down window (``stabilizeRecommendation`` with ``selectMax=false``, reference note 2), which
is not Kubernetes' maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpuwise.policy.base import Decision, FleetState
from gpuwise.signals import Signals


def apa_recommendation(
    ready: int,
    per_pod: float,
    target: float,
    up_tolerance: float,
    down_tolerance: float,
    max_up_rate: float,
    max_down_rate: float,
) -> int:
    """``apa.go``: one recommendation from N ready pods and their mean metric."""
    n = ready
    r = per_pod / target
    if r > 1.0 + up_tolerance:
        return min(math.ceil(n * r), math.ceil(max_up_rate * n))
    if r < 1.0 - down_tolerance:
        return max(math.ceil(n * r), math.floor(n / max_down_rate))
    return n


@dataclass
class ApaPolicy:
    """APA on a per-pod gauge: ``metric`` a per-replica mean field, or a fleet total divided by
    ready replicas when ``per_pod_from_total``."""

    metric: str
    target: float
    per_pod_from_total: bool = False
    window_s: float = 180.0
    up_tolerance: float = 0.1
    down_tolerance: float = 0.1
    max_scale_up_rate: float = 2.0
    max_scale_down_rate: float = 2.0
    scale_up_cooldown_s: float = 0.0
    scale_down_cooldown_s: float = 300.0
    name: str = "aibrix-apa"
    interval_s: float = 10.0
    samples: list[tuple[float, float]] = field(default_factory=list, init=False)
    recs: list[tuple[float, int]] = field(default_factory=list, init=False)

    def reset(self) -> None:
        self.samples = []
        self.recs = []

    def _per_pod(self, s: Signals) -> float:
        v = float(getattr(s, self.metric))
        if self.per_pod_from_total:
            return v / s.replicas_ready if s.replicas_ready > 0 else math.nan
        return v

    def _stabilize(self, now_s: float, current: int, desired: int) -> int:
        self.recs.append((now_s, desired))
        horizon = max(self.scale_up_cooldown_s, self.scale_down_cooldown_s)
        self.recs = [(t, d) for t, d in self.recs if t > now_s - horizon - 1e-9]
        if desired > current:
            window = [d for t, d in self.recs if t > now_s - self.scale_up_cooldown_s - 1e-9]
            return min(window) if window and self.scale_up_cooldown_s > 0 else desired
        if desired < current:
            window = [d for t, d in self.recs if t > now_s - self.scale_down_cooldown_s - 1e-9]
            return min(window) if window else desired  # selectMax=false (reference note 2)
        return desired

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        f = fleet_state
        if signals_history:
            v = self._per_pod(signals_history[-1])
            if not math.isnan(v):
                self.samples.append((now_s, v))
        self.samples = [(t, v) for t, v in self.samples if t > now_s - self.window_s - 1e-9]
        if not self.samples or f.ready <= 0:
            return Decision(f.desired, 0, "apa: no metrics yet; keep")
        mean = sum(v for _, v in self.samples) / len(self.samples)
        raw = apa_recommendation(
            f.ready,
            mean,
            self.target,
            self.up_tolerance,
            self.down_tolerance,
            self.max_scale_up_rate,
            self.max_scale_down_rate,
        )
        out = f.clamp(self._stabilize(now_s, f.desired, raw))
        return Decision(
            out,
            0,
            f"apa: {self.metric} {mean:.3g}/pod over {self.window_s:g} s vs {self.target:.3g} "
            f"(tolerance +{self.up_tolerance:g}/-{self.down_tolerance:g}) on {f.ready} ready "
            f"-> {raw}, cooled {out}",
        )
