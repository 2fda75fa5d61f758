"""Knative's KPA, faithfully: stable and panic windows over the fleet's total concurrency.

Source: ``reference/autoscaling.md`` (b1), from knative/serving
``pkg/autoscaler/scaling/autoscaler.go::Scale`` and ``pkg/autoscaler/config/config.go``.
Defaults: target utilization 0.7 of the per-pod concurrency target (container-concurrency-
target-default 100), stable window 60 s, panic window 10% of it (6 s), panic threshold 200%,
max scale-up rate 1000, max scale-down rate 2, scale-to-zero grace 30 s, scale-down delay 0,
decider tick 2 s, 1-second metric buckets averaged linearly over each window.

Knative's "concurrency" is requests in flight at the pods' queue-proxies; here, requests running
or waiting in the engines (``running + queue_depth``), summed over the fleet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpuwise.policy.base import Decision, FleetState, window
from gpuwise.signals import Signals


def _concurrency(s: Signals) -> float:
    r = 0.0 if math.isnan(s.running) else s.running
    q = 0.0 if math.isnan(s.queue_depth) else s.queue_depth
    return r + q


@dataclass
class KpaPolicy:
    """Knative KPA with its published defaults; ``container_concurrency_target`` is per pod."""

    container_concurrency_target: float = 100.0
    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_to_zero_grace_s: float = 30.0
    scale_down_delay_s: float = 0.0
    activation_scale: int = 1
    name: str = "knative-kpa"
    interval_s: float = 2.0  # decider tick
    panic_time_s: float | None = field(default=None, init=False)
    max_panic_pods: int = field(default=0, init=False)
    recent: list[tuple[float, int]] = field(default_factory=list, init=False)
    zero_since_s: float | None = field(default=None, init=False)

    def reset(self) -> None:
        self.panic_time_s = None
        self.max_panic_pods = 0
        self.recent = []
        self.zero_since_s = None

    @property
    def target_per_pod(self) -> float:
        """``ResolveMetricTarget``: max(0.01, total x target utilization)."""
        return max(0.01, self.container_concurrency_target * self.target_utilization)

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        f = fleet_state
        stable = window(signals_history, now_s, self.stable_window_s)
        panic_s = self.stable_window_s * self.panic_window_percentage / 100.0
        panic = window(signals_history, now_s, panic_s)
        if not stable or not panic:
            return Decision(f.desired, 0, "kpa: no metrics yet; keep")
        stable_total = sum(_concurrency(s) for s in stable) / len(stable)
        panic_total = sum(_concurrency(s) for s in panic) / len(panic)
        target = self.target_per_pod
        ready_n = max(1, f.ready)
        max_up = math.ceil(self.max_scale_up_rate * ready_n)
        max_down = math.floor(ready_n / self.max_scale_down_rate)
        dspc = math.ceil(stable_total / target)
        dppc = math.ceil(panic_total / target)
        desired_stable = min(max(dspc, max_down), max_up)
        desired_panic = min(max(dppc, max_down), max_up)
        if self.activation_scale > 1:
            if desired_stable > 0:
                desired_stable = max(desired_stable, self.activation_scale)
            if desired_panic > 0:
                desired_panic = max(desired_panic, self.activation_scale)
        over_panic = dppc / ready_n >= self.panic_threshold
        if over_panic:
            self.panic_time_s = now_s
        elif self.panic_time_s is not None and now_s > self.panic_time_s + self.stable_window_s:
            self.panic_time_s = None
            self.max_panic_pods = 0
        if self.panic_time_s is not None:
            desired = max(desired_stable, desired_panic)
            self.max_panic_pods = max(self.max_panic_pods, desired)
            desired = self.max_panic_pods
            mode = "panic"
        else:
            desired = desired_stable
            mode = "stable"
        if self.scale_down_delay_s > 0:
            self.recent.append((now_s, desired))
            self.recent = [(t, d) for t, d in self.recent if t > now_s - self.scale_down_delay_s]
            desired = max(d for _, d in self.recent)
        desired = self._scale_to_zero(now_s, desired, f)
        out = f.clamp(desired)
        return Decision(
            out,
            0,
            f"kpa {mode}: concurrency stable {stable_total:.1f} / panic {panic_total:.1f} vs "
            f"{target:.1f} per pod, {ready_n} ready -> {desired}",
        )

    def _scale_to_zero(self, now_s: float, desired: int, f: FleetState) -> int:
        """Zero only after the grace period at zero demand (and only if min-scale allows it)."""
        if desired > 0 or f.min_replicas > 0:
            self.zero_since_s = None
            return desired
        if self.zero_since_s is None:
            self.zero_since_s = now_s
        if now_s - self.zero_since_s >= self.scale_to_zero_grace_s:
            return 0
        return max(1, f.ready)
