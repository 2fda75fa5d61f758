"""Ray Serve's default autoscaling policy, faithfully: ongoing requests against a target.

Source: ``reference/autoscaling.md`` (b5), from ray-project/ray
``python/ray/serve/autoscaling_policy.py`` and ``config.py``. Defaults: target_ongoing_requests 2,
upscale_delay_s 30, downscale_delay_s 600, look_back_period_s 30 (mean), smoothing factor 1.0,
control loop every 0.1 s. The delays are counters of control-loop ticks; the counter reset when
the direction changes is what makes Ray slow to react to a noisy metric.

"Ongoing" is queued plus running requests (``running + queue_depth``), averaged over the look-back
period. The control loop here ticks every ``interval_s`` (1 s by default, not 0.1 s, to keep
simulations cheap) and the delays are converted to ticks of that length, so they keep their
meaning in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpuwise.policy.base import Decision, FleetState, window
from gpuwise.signals import Signals


def desired_replicas(
    current: int, total_ongoing: float, target_ongoing: float, factor: float
) -> int:
    """``_calculate_desired_num_replicas`` with a smoothing/scaling factor."""
    if current == 0:
        return max(math.ceil(1 * factor), 1) if total_ongoing > 0 else 0
    raw = total_ongoing / target_ongoing
    scaled = math.ceil(current + factor * (raw - current))
    if scaled == current and raw < current:
        scaled -= 1
    return scaled


@dataclass
class RayServePolicy:
    target_ongoing_requests: float = 2.0
    upscale_delay_s: float = 30.0
    downscale_delay_s: float = 600.0
    look_back_period_s: float = 30.0
    smoothing_factor: float = 1.0
    name: str = "ray-serve"
    interval_s: float = 1.0
    counter: int = field(default=0, init=False)

    def reset(self) -> None:
        self.counter = 0

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        f = fleet_state
        rows = window(signals_history, now_s, self.look_back_period_s)
        if not rows:
            return Decision(f.desired, 0, "ray: no metrics yet; keep")
        ongoing = [
            (0.0 if math.isnan(s.running) else s.running)
            + (0.0 if math.isnan(s.queue_depth) else s.queue_depth)
            for s in rows
        ]
        total = sum(ongoing) / len(ongoing)
        current = f.desired
        factor = self.smoothing_factor
        want = f.clamp(desired_replicas(current, total, self.target_ongoing_requests, factor))
        up_ticks = int(self.upscale_delay_s / self.interval_s)
        down_ticks = int(self.downscale_delay_s / self.interval_s)
        decision = current
        if current == 0 and want > 0:
            decision = want  # the 0 -> N fast path skips the delay
        elif want > current:
            if self.counter < 0:
                self.counter = 0
            self.counter += 1
            if self.counter > up_ticks:
                self.counter = 0
                decision = want
        elif want < current:
            if self.counter > 0:
                self.counter = 0
            self.counter -= 1
            if self.counter < -down_ticks:
                self.counter = 0
                decision = want
        else:
            self.counter = 0
        return Decision(
            decision,
            0,
            f"ray: ongoing {total:.1f} / target {self.target_ongoing_requests:g} -> {want}; "
            f"counter {self.counter} (up after {up_ticks}, down after {down_ticks}) -> {decision}",
        )
