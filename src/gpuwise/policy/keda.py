"""KEDA with a Prometheus trigger on ``vllm:num_requests_waiting``, feeding an HPA.

Source: ``reference/autoscaling.md`` (b3), from kedacore/keda ``pkg/scalers/prometheus_scaler.go``
and ``pkg/scaling/executor/*``, and vLLM production-stack's chart
(``helm/templates/scaledobject-vllm.yaml``: threshold 5). Defaults: pollingInterval 30 s,
cooldownPeriod 300 s (only for active -> 0), activationThreshold 0, the HPA metric target is an
**AverageValue** of ``threshold``, so the HPA computes ``ceil(value / threshold)`` (b2) and then
applies its own stabilization and rate policies (HPA defaults).

The query is ``sum(vllm:num_requests_waiting{model=...})`` (the fleet's waiting requests; the
chart's query without ``sum`` errors with more than one pod). KEDA's metrics adapter answers the
HPA's 15-second syncs by querying Prometheus each time (``useCachedMetrics`` false, the default),
so the value lags the engines by one Prometheus scrape; the polling interval decides only the
0 <-> 1 activation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpuwise.policy.base import Decision, FleetState, scraped
from gpuwise.policy.hpa import HpaBehavior, HpaCore, external_average_value_replicas
from gpuwise.signals import Signals


@dataclass
class KedaPolicy:
    threshold: float = 5.0
    activation_threshold: float = 0.0
    polling_interval_s: float = 30.0
    cooldown_period_s: float = 300.0
    scrape_interval_s: float = 15.0
    use_cached_metrics: bool = False
    behavior: HpaBehavior = field(default_factory=HpaBehavior)
    name: str = "keda"
    interval_s: float = 15.0  # the HPA's sync period; KEDA's own polling is tracked inside
    core: HpaCore = field(init=False)
    last_active_s: float = field(default=0.0, init=False)
    last_poll_s: float = field(default=-math.inf, init=False)
    cached_value: float = field(default=math.nan, init=False)
    active: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        self.core = HpaCore(self.behavior)

    def reset(self) -> None:
        self.core.reset()
        self.last_active_s = 0.0
        self.last_poll_s = -math.inf
        self.cached_value = math.nan
        self.active = True

    def _query(self, history: Sequence[Signals], now_s: float) -> float:
        row = scraped(history, now_s, self.scrape_interval_s)
        if row is None or math.isnan(row.queue_depth):
            return 0.0  # ignoreNullValues (default true): an empty result is 0
        return float(row.queue_depth)

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        f = fleet_state
        if now_s - self.last_poll_s >= self.polling_interval_s - 1e-9:
            self.last_poll_s = now_s
            self.cached_value = self._query(signals_history, now_s)
            self.active = self.cached_value > self.activation_threshold
            if self.active:
                self.last_active_s = now_s
        value = (
            self.cached_value if self.use_cached_metrics else self._query(signals_history, now_s)
        )
        current = f.desired
        min_r = f.min_replicas
        if min_r == 0 and not self.active:
            if now_s - self.last_active_s >= self.cooldown_period_s:
                return Decision(0, 0, f"keda: inactive for {self.cooldown_period_s:g} s -> 0")
            return Decision(current, 0, "keda: inactive, cooling down")
        if current == 0:
            return Decision(1, 0, "keda: activated (0 -> 1)")
        raw = external_average_value_replicas(
            current=current, metric=value, target=self.threshold, tolerance=self.behavior.tolerance
        )
        hpa_min = max(min_r, 1)
        out = self.core.normalize(now_s, current, raw, hpa_min, f.max_replicas)
        return Decision(
            out,
            0,
            f"keda: sum(num_requests_waiting) {value:.0f} / threshold {self.threshold:g} "
            f"(AverageValue) -> raw {raw}, hpa {out}",
        )
