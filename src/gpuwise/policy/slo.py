"""gpuwise's own policy: replicas from the SLO and the performance model, ahead of the load.

What it does differently from the anchors, and why:

* **Capacity, not a utilization proxy.** It turns the observed arrival rate and token mix into
  replicas through :mod:`gpuwise.policy.capacity` (the performance model's steady state of one
  replica), run at ``utilization`` of the rate where a replica stops meeting its limits, so the
  queueing tail stays inside the TTFT target. GPU busy is ~100% whenever anything runs and KV
  usage depends on the mix, so neither says how many replicas are needed.
* **Cold-start aware.** A replica asked for now serves ``cold_lead_s`` later, so it sizes the fleet
  for the rate forecast at ``now + lead`` (a linear trend over the last minutes, plus the known
  daily shape when there is one), and counts replicas already starting (no cascade of requests
  while they start).
* **Warm capacity sized to the ramp.** The forecast's excess over today's need is the ramp the
  fleet must absorb during the lead time; it is held as ready headroom, or as a warm pool when a
  warm replica is cheaper than a ready one (a warm pool only saves when it is billed less, since
  a ready replica also serves).
* **Scale-down with hysteresis.** It lets a replica go only when the largest need of the last
  ``down_stabilization_s`` is below the fleet, and when the survivors still carry the load at
  ``down_utilization`` (the N-1 check WVA and Dynamo both found they needed).

Every decision carries a reason string with the numbers it used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gpuwise.policy.base import Decision, FleetState, window
from gpuwise.policy.capacity import ReplicaCapacity, TokenMix
from gpuwise.signals import Signals


@dataclass(frozen=True)
class Seasonality:
    """A known daily shape: the relative rate at each instant (a cosine from trough to peak)."""

    period_s: float
    peak_at_s: float
    trough_to_peak: float  # trough rate / peak rate

    def relative(self, t_s: float) -> float:
        phase = 2 * math.pi * (t_s - self.peak_at_s) / self.period_s
        lo = self.trough_to_peak
        return lo + (1 - lo) * 0.5 * (1 + math.cos(phase))


@dataclass
class SloAwarePolicy:
    """See module doc. ``capacity`` and ``prior_mix`` describe one replica and the expected mix."""

    capacity: ReplicaCapacity
    prior_mix: TokenMix
    utilization: float = 0.8
    down_utilization: float = 0.9
    trend_window_s: float = 120.0
    trend_bin_s: float = 10.0
    fast_window_s: float = 10.0
    slow_window_s: float = 60.0
    mix_window_s: float = 300.0
    noise_z: float = 2.0
    trend_z: float = 3.0  # a slope is a trend only this many standard errors from zero
    max_growth_per_lead: float = 2.0  # never plan for more than this factor within one lead time
    lead_margin: float = 1.15  # the lead time is drawn; plan for a slower start than the median
    down_stabilization_s: float = 180.0  # for the load seen now
    forecast_stabilization_s: float = 60.0  # for the part held for the forecast ramp
    backlog_drain_s: float = 60.0
    seasonality: Seasonality | None = None
    name: str = "gpuwise"
    interval_s: float = 5.0
    needs: list[tuple[float, int]] = field(default_factory=list, init=False)
    ahead: list[tuple[float, int]] = field(default_factory=list, init=False)
    mix: TokenMix | None = field(default=None, init=False)
    _rate_cache: dict[tuple[int, int], float] = field(default_factory=dict, init=False)

    def reset(self) -> None:
        self.needs = []
        self.ahead = []
        self.mix = None
        # the capacity cache depends only on inputs, so it may survive a reset

    # ---------------------------------------------------------------- estimates

    def replica_rps(self, mix: TokenMix) -> float:
        """Requests/s one replica takes inside the SLO for this mix (cached by 2% buckets)."""
        key = (round(math.log(mix.mean_prompt) / 0.02), round(math.log(mix.mean_output) / 0.02))
        if key not in self._rate_cache:
            self._rate_cache[key] = self.capacity.max_rps(mix) * self.utilization
        return self._rate_cache[key]

    def observed_mix(self, rows: Sequence[Signals]) -> TokenMix:
        """The mix the fleet is serving: tokens computed per second over requests arriving.

        In steady state prompt and output tokens per second are the arrival rate times the mean
        lengths. The estimate is blended with the prior until the window is full and a few
        hundred requests were seen, since a fleet that just started has not yet reached it. It
        is only updated from windows where the engines kept up (no queue to speak of, no errors):
        an overloaded fleet computes fewer tokens than arrive, which would read as a lighter
        mix and talk the policy into fewer replicas exactly when it needs more.
        """
        if self.mix is None:
            self.mix = self.prior_mix
        if any(
            _num(s.queue_depth) > max(1.0, _num(s.replicas_ready)) or _num(s.errors_per_s) > 0
            for s in rows
        ):
            return self.mix
        arrivals = sum(_num(s.arrival_rate_rps) * s.interval_s for s in rows)
        prompt = sum(_num(s.prompt_tokens_per_s) * s.interval_s for s in rows)
        out = sum(_num(s.output_tokens_per_s) * s.interval_s for s in rows)
        covered = sum(s.interval_s for s in rows) / self.mix_window_s
        p = self.prior_mix.mean_prompt
        o = self.prior_mix.mean_output
        w = min(1.0, arrivals / 300.0) * min(1.0, covered)
        if arrivals > 0 and w > 0:
            p = (1 - w) * p + w * prompt / arrivals
            o = (1 - w) * o + w * out / arrivals
        self.mix = self.prior_mix.rescaled(max(p, 1.0), max(o, 1.0))
        return self.mix

    def rates(self, history: Sequence[Signals], now_s: float) -> tuple[float, float, float]:
        """(rate now, slope per second, rate noise) from the recent per-interval arrivals."""
        rows = window(history, now_s, self.trend_window_s)
        fast = window(history, now_s, self.fast_window_s)
        slow = window(history, now_s, self.slow_window_s)
        r_fast = _mean_rate(fast)
        r_slow = _mean_rate(slow)
        slope = 0.0
        r_fit = r_slow
        covered = sum(s.interval_s for s in rows)
        if covered >= 0.75 * self.trend_window_s:
            t = np.array([s.t_s for s in rows])
            y = np.array([_num(s.arrival_rate_rps) for s in rows])
            # bin to trend_bin_s to damp Poisson noise, then least squares
            b = np.floor((t - t[0]) / self.trend_bin_s)
            nb = int(b.max()) + 1
            if nb >= 3:
                cnt = np.bincount(b.astype(int), minlength=nb)
                sy = np.bincount(b.astype(int), weights=y, minlength=nb)
                st = np.bincount(b.astype(int), weights=t, minlength=nb)
                keep = cnt > 0
                yb, tb = sy[keep] / cnt[keep], st[keep] / cnt[keep]
                a, c = np.polyfit(tb - now_s, yb, 1)
                slope, r_fit = float(a), float(c)
                resid = yb - (a * (tb - now_s) + c)
                se = float(np.sqrt(np.sum(resid**2) / max(1, len(yb) - 2)))
                tvar = float(np.sum((tb - tb.mean()) ** 2))
                if tvar > 0 and abs(slope) < self.trend_z * se / math.sqrt(tvar):
                    slope = 0.0  # not distinguishable from noise
                    r_fit = r_slow
        r_now = max(r_fast, r_fit, 0.0) if slope > 0 else max(r_slow, r_fast, 0.0)
        noise = self.noise_z * math.sqrt(max(r_now, 0.0) / self.slow_window_s)
        return r_now, slope, noise

    def forecast(self, now_s: float, r_now: float, slope: float, horizon_s: float) -> float:
        """The rate at ``now + horizon``: linear trend, or the daily shape, whichever is higher."""
        r = r_now + max(0.0, slope) * horizon_s
        if self.seasonality is not None:
            s = self.seasonality
            rel_now = s.relative(now_s)
            if rel_now > 0:
                peak_ahead = max(s.relative(now_s + x) for x in np.linspace(0.0, horizon_s, 9))
                r = max(r, r_now * peak_ahead / rel_now)
        return min(r, r_now * self.max_growth_per_lead) if r_now > 0 else r

    # ---------------------------------------------------------------- the decision

    def decide(
        self, now_s: float, signals_history: Sequence[Signals], fleet_state: FleetState
    ) -> Decision:
        f = fleet_state
        if not signals_history:
            return Decision(f.desired, 0, "gpuwise: no signals yet; keep")
        mix = self.observed_mix(window(signals_history, now_s, self.mix_window_s))
        per_rep = self.replica_rps(mix)
        r_now, slope, noise = self.rates(signals_history, now_s)
        cold_h = f.cold_lead_s * self.lead_margin + self.interval_s
        warm_h = f.warm_lead_s * self.lead_margin + self.interval_s
        r_cold = self.forecast(now_s, r_now, slope, cold_h) + noise
        r_warm = self.forecast(now_s, r_now, slope, warm_h) + noise
        need_now = math.ceil((r_now + noise) / per_rep - 1e-9)
        need_cold = math.ceil(r_cold / per_rep - 1e-9)
        need_warm = math.ceil(r_warm / per_rep - 1e-9)
        queue = _num(signals_history[-1].queue_depth)
        backlog = math.ceil(queue / (per_rep * self.backlog_drain_s)) if queue > 0 else 0
        use_pool = f.warm_usd_per_replica_hour < f.usd_per_replica_hour
        base = need_now + backlog
        if use_pool:
            fc = need_warm
            pool = max(0, need_cold - need_warm)
            how = (
                f"warm pool {pool} (${f.warm_usd_per_replica_hour:.2f}/h) cheaper than headroom "
                f"(${f.usd_per_replica_hour:.2f}/h)"
            )
        else:
            fc = need_cold
            pool = 0
            how = "ramp held as ready headroom (a warm replica costs as much and does not serve)"
        target = max(base, fc)
        self.needs.append((now_s, base))
        self.needs = [(t, n) for t, n in self.needs if t > now_s - self.down_stabilization_s]
        self.ahead.append((now_s, fc))
        self.ahead = [(t, n) for t, n in self.ahead if t > now_s - self.forecast_stabilization_s]
        current = f.desired
        if target >= current:
            desired = target
            step = "up" if target > current else "hold"
        else:
            # what the last minutes asked for: the load now (long memory) and the forecast
            # (short memory: a ramp that stopped releases its headroom sooner)
            floor_n = max(max(n for _, n in self.needs), max(n for _, n in self.ahead))
            survivors_ok = (current - 1) * per_rep / self.utilization * self.down_utilization
            if floor_n < current and survivors_ok >= r_now + noise:
                desired = floor_n
                step = "down"
            else:
                desired = current
                step = f"hold (need {target}; recent max {floor_n})"
        desired = f.clamp(desired)
        reason = (
            f"gpuwise {step}: rate {r_now:.1f} rps (trend {slope:+.3f}/s, noise {noise:.1f}); "
            f"forecast {r_cold:.1f} rps at +{cold_h:.0f} s; mix {mix.mean_prompt:.0f}/"
            f"{mix.mean_output:.0f} tok -> {per_rep:.2f} rps/replica at u={self.utilization:g}; "
            f"need {need_now} now, {need_cold} at lead"
            + (f", +{backlog} for a queue of {queue:.0f}" if backlog else "")
            + f"; {how} -> {desired}"
        )
        return Decision(desired, pool, reason)


def _num(x: float) -> float:
    return 0.0 if math.isnan(x) else float(x)


def _mean_rate(rows: Sequence[Signals]) -> float:
    if not rows:
        return 0.0
    total = sum(_num(s.arrival_rate_rps) * s.interval_s for s in rows)
    span = sum(s.interval_s for s in rows)
    return total / span if span > 0 else 0.0
