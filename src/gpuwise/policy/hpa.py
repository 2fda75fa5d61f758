"""Kubernetes HPA v2, faithfully: the replica calculator, stabilization windows and rate policies.

Source: ``reference/autoscaling.md`` (b2), from kubernetes ``replica_calculator.go``,
``horizontal.go`` and ``pkg/apis/autoscaling/v2/defaults.go``. Defaults: sync period 15 s,
tolerance 0.1, scale-up stabilization 0 s with policies [4 Pods / 15 s, 100 Percent / 15 s]
(selectPolicy Max), scale-down stabilization 300 s with [100 Percent / 15 s] (selectPolicy Max).

``HpaCore`` is the shared machinery (KEDA feeds it too); ``HpaPolicy`` scales on a per-pod
gauge (a Pods metric, AverageValue: KV-cache usage, or GPU utilization for the "generic-ops"
baseline that treats a GPU like a CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpuwise.policy.base import Decision, FleetState, scraped
from gpuwise.signals import Signals


@dataclass(frozen=True)
class ScalingPolicy:
    """One HPA rate policy: ``kind`` "Pods" or "Percent", ``value`` per ``period_s``."""

    kind: str
    value: float
    period_s: float


@dataclass(frozen=True)
class HpaBehavior:
    """``spec.behavior`` with the v2 API's defaults."""

    tolerance: float = 0.1
    scale_up_window_s: float = 0.0
    scale_down_window_s: float = 300.0
    scale_up_policies: tuple[ScalingPolicy, ...] = (
        ScalingPolicy("Pods", 4, 15.0),
        ScalingPolicy("Percent", 100, 15.0),
    )
    scale_up_select: str = "Max"
    scale_down_policies: tuple[ScalingPolicy, ...] = (ScalingPolicy("Percent", 100, 15.0),)
    scale_down_select: str = "Max"


def plain_metric_replicas(
    *,
    current: int,
    ready_values_sum: float,
    ready: int,
    missing: int,
    target: float,
    tolerance: float,
) -> int:
    """``calcPlainMetricReplicas`` for a Pods metric (AverageValue) or a utilization.

    ``ready_values_sum`` sums the metric over pods that reported it; ``missing`` pods exist but
    report nothing (still starting). Missing pods count as 0 when scaling up and as the target
    when scaling down, and the count is kept if that would flip the direction.
    """
    if ready <= 0:
        return current
    usage_ratio = ready_values_sum / ready / target
    if missing == 0:
        if abs(1.0 - usage_ratio) <= tolerance:
            return current
        return math.ceil(usage_ratio * ready)
    fill = target if usage_ratio < 1.0 else 0.0
    new_ratio = (ready_values_sum + fill * missing) / (ready + missing) / target
    if (
        abs(1.0 - new_ratio) <= tolerance
        or (usage_ratio < 1.0 and new_ratio > 1.0)
        or (usage_ratio > 1.0 and new_ratio < 1.0)
    ):
        return current
    new_replicas = math.ceil(new_ratio * (ready + missing))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def external_average_value_replicas(
    *, current: int, metric: float, target: float, tolerance: float
) -> int:
    """External metric with an AverageValue target (KEDA's default): ``ceil(metric/target)``.

    The tolerance is checked on ``metric / (target * current)``.
    """
    if current == 0:
        return math.ceil(metric / target)
    ratio = metric / (target * current)
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(metric / target)


@dataclass
class HpaCore:
    """The controller's memory (past recommendations, scale events) and what it does with it."""

    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)  # (t, replica change)

    def reset(self) -> None:
        self.recommendations.clear()
        self.events.clear()

    def stabilize(self, now_s: float, current: int, desired: int) -> int:
        """``stabilizeRecommendationWithBehaviors``: min over the up window, max over the down."""
        b = self.behavior
        up = desired
        down = desired
        for t, rec in self.recommendations:
            if t > now_s - b.scale_up_window_s:
                up = min(up, rec)
            if t > now_s - b.scale_down_window_s:
                down = max(down, rec)
        out = current
        if out < up:
            out = up
        if out > down:
            out = down
        self.recommendations.append((now_s, desired))
        horizon = max(b.scale_up_window_s, b.scale_down_window_s)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > now_s - horizon]
        return out

    def _changes(self, now_s: float, period_s: float, up: bool) -> int:
        return sum(
            abs(d) for t, d in self.events if t > now_s - period_s and (d > 0 if up else d < 0)
        )

    def rate_limit(self, now_s: float, current: int, desired: int, min_r: int, max_r: int) -> int:
        """``convertDesiredReplicasWithBehaviorRate``: the rate policies, then the bounds."""
        b = self.behavior
        if desired > current:
            pick = max if b.scale_up_select == "Max" else min
            limit: int | None = None
            for p in b.scale_up_policies:
                start = current - self._changes(now_s, p.period_s, up=True)
                if p.kind == "Pods":
                    proposed = int(start + p.value)
                else:
                    proposed = math.ceil(start * (1.0 + p.value / 100.0))
                limit = proposed if limit is None else pick(limit, proposed)
            limit = current if limit is None or limit < current else limit
            return min(desired, min(limit, max_r))
        if desired < current:
            pick = min if b.scale_down_select == "Max" else max
            limit = None
            for p in b.scale_down_policies:
                start = current + self._changes(now_s, p.period_s, up=False)
                if p.kind == "Pods":
                    proposed = int(start - p.value)
                else:
                    proposed = int(start * (1.0 - p.value / 100.0))
                limit = proposed if limit is None else pick(limit, proposed)
            limit = current if limit is None or limit > current else limit
            return max(desired, max(limit, min_r))
        return desired

    def normalize(self, now_s: float, current: int, raw: int, min_r: int, max_r: int) -> int:
        """Stabilize, rate-limit and bound a raw recommendation; records the scale event."""
        stabilized = self.stabilize(now_s, current, raw)
        out = self.rate_limit(now_s, current, stabilized, min_r, max_r)
        out = min(max(out, min_r), max_r)
        if out != current:
            self.events.append((now_s, out - current))
            keep = max(
                [p.period_s for p in self.behavior.scale_up_policies]
                + [p.period_s for p in self.behavior.scale_down_policies]
                + [0.0]
            )
            self.events = [(t, d) for t, d in self.events if t > now_s - keep]
        return out


@dataclass
class HpaPolicy:
    """HPA v2 on a per-pod gauge of the canonical signals (a Pods metric, AverageValue).

    ``metric`` names a ``Signals`` field that is a per-replica mean (``kv_usage``,
    ``gpu_busy``) or, with ``per_pod_from_total``, a fleet total divided by ready replicas
    (``running``, ``queue_depth``). The gauge is read as Prometheus last scraped it
    (``scrape_interval_s``), which is how the custom-metrics adapter serves it.
    """

    metric: str
    target: float
    name: str = "hpa"
    interval_s: float = 15.0  # --horizontal-pod-autoscaler-sync-period
    per_pod_from_total: bool = False
    scrape_interval_s: float = 15.0
    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    core: HpaCore = field(init=False)

    def __post_init__(self) -> None:
        self.core = HpaCore(self.behavior)

    def reset(self) -> None:
        self.core.reset()

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        f = fleet_state
        current = f.desired
        row = scraped(signals_history, now_s, self.scrape_interval_s)
        value = math.nan if row is None else float(getattr(row, self.metric))
        ready = 0 if row is None else int(row.replicas_ready)
        if self.per_pod_from_total and ready > 0:
            value = value / ready
        if math.isnan(value) or ready <= 0:
            return Decision(current, 0, f"hpa: no {self.metric} sample; keep {current}")
        missing = max(0, current - ready)
        raw = plain_metric_replicas(
            current=current,
            ready_values_sum=value * ready,
            ready=ready,
            missing=missing,
            target=self.target,
            tolerance=self.behavior.tolerance,
        )
        out = self.core.normalize(now_s, current, raw, f.min_replicas, f.max_replicas)
        return Decision(
            out,
            0,
            f"hpa: {self.metric} {value:.3g}/pod vs target {self.target:.3g} over {ready} ready "
            f"+ {missing} starting -> raw {raw}, stabilized and rate-limited {out}",
        )
