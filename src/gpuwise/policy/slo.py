"""gpuwise's own policy: replicas from the SLO and a measured replica, ahead of the load.

What it does differently from the anchors, and why:

* **Capacity, not a utilization proxy.** It turns the arrival rate and the token mix the fleet
  serves into replicas with one replica's *sustainable rate* for that mix: measured by a short
  load test when one is given (``load_test``; the simulator's is :mod:`gpuwise.sim.loadtest`),
  planned at ``limit_share`` (90%) of it, since at the limit 1% already miss and every
  under-estimate of the rate becomes a queue; else the performance model's limit
  (:mod:`gpuwise.policy.capacity`) at ``utilization``. The model works from the mix's means
  and is optimistic on the tails: 2,000-token prompts with 30-token answers stall every decode
  behind the prefills that arrive meanwhile, so per-request TPOT misses at half the rate the
  mean iteration time allows; the load test sees that. GPU busy is ~100% whenever anything runs
  and KV usage depends on the mix, so neither says how many replicas are needed.
* **Margins from the arrivals, not a fixed factor.** On top of the forecast it holds the larger
  of two measured margins: the *bursts* (how far the arrivals in 5-60 s windows rose above their
  trend in the recent history, at the SLO's percentile, less what the TTFT slack absorbs;
  :func:`~gpuwise.policy.capacity.burst_margin`), and the *hidden ramp* (the steepest ramp that
  Poisson counting noise at the current rate can still hide from the trend test, held for one
  lead time and for the part of the trend window such a ramp takes to be detected). A smooth
  stream costs about nothing for the first; the second is what lets a fleet at flat load absorb
  a ramp that starts without warning.
* **Cold-start aware.** A replica asked for now serves a lead time later, so it sizes the fleet
  for the rate forecast at ``now + lead`` (a linear trend, robust to steps, or the known daily
  shape), and counts replicas already starting.
* **Steps and bursts told apart by experience.** A rise beyond everything the recent history
  allows for is a new level: the burst history restarts there and the new level is served at
  once. One lead time later the policy checks whether the level held. Where such steps fade
  before replicas could arrive (a code assistant's minute-long spikes), it stops chasing them
  and plans on the bursts' mean and envelope instead, which holds capacity through the quiet
  between bursts. Rises get the same check: where the last detected rises did not get half-way
  to their forecast within a lead time (a rate that wanders on the scale of minutes), a slope is
  not extrapolated, and what a faded rise asked for is not held once there is no backlog.
* **The mix it serves.** Tokens computed per request *served* (arrivals less the queue's growth
  and the errors), so that a fleet falling behind does not read its mix as lighter, nor one
  clearing a backlog as heavier; one load test per 15% of the mean lengths, the model's ratio
  in between.
* **Queue.** A queue while replicas are on their way is expected, and replicas asked for it now
  would come after the clients gave up; only a queue that grows although the ready fleet is as
  large as the need adds replicas (the per-replica rate was optimistic), or one that grows
  while nothing is on its way (a fleet short before the policy could act): it will still be
  there when what is asked for now arrives, so it asks for what drains it then. But no
  replica is let go while the backlog exceeds what the ready fleet clears within the TTFT
  slack: every new request waits behind it.
* **A step still climbing** (the fast rate rising beyond its noise from one tick to the next)
  is asked for where it will be one shift window later; what the next ticks do not confirm is
  cancelled while still provisioning, so it costs seconds of billing.
* **Scale-down by ski rental.** Letting a replica go and asking for it back costs a lead time of
  billing; holding it costs its price. So a surplus is held for one lead time from the last
  need for it, or only for the rate window when the known daily shape is past its peak. A
  replica that arrives is held at least ``arrival_hold_s`` (30 s), so a rate hovering at a
  replica's boundary does not let it go the tick it arrives and ask for it back the next.
* **Racing replacements after a loss.** A node failure or a spot reclaim leaves the fleet
  short of what it needs now for a whole lead time, and the lead time is drawn (on-demand
  fallback capacity has a wide spread). So after a loss it asks for ``race_share`` (2) extra
  replicas per missing one and, once enough are ready, cancels those still provisioning (the
  lifecycle cancels the slowest first): the first replacements are the fastest of several
  draws, for the billing of the cancelled ones' provisioning seconds. This assumes that
  cancelling a provisioning replica stops its bill (a controller that terminates the instance,
  as SkyServe does, or Karpenter with a short ``consolidateAfter``; not the cluster
  autoscaler, whose empty node stays 10 minutes). Measured on the spot wave, it beats a
  standing ``spot_hedge`` (SkyServe's ``num_overprovision``, 0 by default): the hedge is paid
  all day, the race only while the fleet is short.
* **Warm pool only when it pays.** The forecast's excess over today's need is held as ready
  headroom, or as a warm pool when a warm replica is billed less than a ready one.

Every decision carries a reason string with the numbers it used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gpuwise.policy.base import Decision, FleetState, window
from gpuwise.policy.capacity import (
    NO_BURST,
    BurstMargin,
    ReplicaCapacity,
    TokenMix,
    burst_margin,
)
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
    """See module doc. ``capacity`` and ``prior_mix`` describe one replica and the expected mix;
    ``load_test`` (optional) measures one replica's sustainable rate for a mix."""

    capacity: ReplicaCapacity
    prior_mix: TokenMix
    utilization: float = 0.8  # only without a load test: the share of the model's limit
    load_test: Callable[[TokenMix], float] | None = None
    limit_share: float = 0.9  # with a load test: plan at this share of the measured limit
    ttft_slo_s: float = 2.0  # what a queued request may wait: the slack bursts are sized with
    trend_window_s: float = 120.0
    trend_bin_s: float = 10.0
    fast_window_s: float = 10.0
    slow_window_s: float = 60.0
    mix_window_s: float = 300.0
    load_test_step: float = 0.15  # mixes this far apart (log of the mean lengths) are re-tested
    burst_window_s: float = 480.0  # the history the burst margin is measured over
    shift_window_s: float = 30.0  # arrivals this recent beyond the history's bursts: a new level
    burst_z: float = 1.645  # bursts at the SLO's percentile (95th: 1.645)
    trend_z: float = 3.0  # a slope is a trend only this many standard errors from zero
    detect_share: float = 0.25  # of the trend window: how late a ramp beyond the noise is seen
    max_growth_per_lead: float = 2.0  # never plan for more than this factor within one lead time
    lead_margin: float = 1.15  # the lead time is drawn; plan for a slower start than the median
    backlog_drain_s: float = 60.0
    client_patience_s: float = 60.0  # how long a queued client waits before it gives up
    spot_hedge: int = 0  # replicas held beyond the need while the fleet runs on spot
    race_share: float = 2.0  # after a loss, extra requests per replica short of the need now
    arrival_hold_s: float = 30.0  # a replica that just arrived is held at least this long
    seasonality: Seasonality | None = None
    name: str = "gpuwise"
    interval_s: float = 5.0
    needs: list[tuple[float, int]] = field(default_factory=list, init=False)
    mix: TokenMix | None = field(default=None, init=False)
    _since: float = field(default=-math.inf, init=False)
    _steps: list[tuple[float, float, float]] = field(default_factory=list, init=False)
    _step_held: list[bool] = field(default_factory=list, init=False)
    _last_step: float = field(default=-math.inf, init=False)
    _prev_fast: tuple[float, float] | None = field(default=None, init=False)
    _prev_ready: int = field(default=-1, init=False)
    _prev_desired: int = field(default=-1, init=False)
    _lost: bool = field(default=False, init=False)
    _trends: list[tuple[float, float, float]] = field(default_factory=list, init=False)
    _trend_held: list[bool] = field(default_factory=list, init=False)
    _faded: list[tuple[float, float]] = field(default_factory=list, init=False)
    _rate_cache: dict[tuple[int, int], tuple[float, float]] = field(
        default_factory=dict, init=False
    )  # mix bucket -> (load-tested rate, the model's rate) at its centre

    def reset(self) -> None:
        self.needs = []
        self.mix = None
        self._since = -math.inf
        self._steps = []
        self._step_held = []
        self._last_step = -math.inf
        self._prev_fast = None
        self._prev_ready = -1
        self._prev_desired = -1
        self._lost = False
        self._trends = []
        self._trend_held = []
        self._faded = []
        # the capacity cache depends only on inputs, so it may survive a reset

    # ---------------------------------------------------------------- estimates

    def replica_rps(self, mix: TokenMix) -> float:
        """Requests/s one replica takes inside the SLO for this mix.

        With a load test: the measured sustainable rate (it sees the tails the model does not:
        prefill stalls of long prompts, KV and queue fluctuations) at the nearest tested mix,
        one test per ``load_test_step`` of the mean lengths, scaled by the model's ratio
        between that mix and this one, at ``limit_share`` of it: the limit is the rate at which
        1% of a steady Poisson stream already misses, and beyond it misses climb steeply (the
        queue grows without bound), while a rate estimated from 10-60 s of arrivals is off by
        several percent either way; planning at the limit turns every under-estimate into a
        queue. Without a load test: the model's limit at ``utilization``.
        """
        if self.load_test is None:
            return self.capacity.max_rps(mix) * self.utilization
        step = self.load_test_step
        key = (round(math.log(mix.mean_prompt) / step), round(math.log(mix.mean_output) / step))
        centre = self.prior_mix.rescaled(math.exp(key[0] * step), math.exp(key[1] * step))
        if key not in self._rate_cache:
            self._rate_cache[key] = (float(self.load_test(centre)), self.capacity.max_rps(centre))
        measured, model_c = self._rate_cache[key]
        # between the tested mixes the model's sensitivity carries the measurement: it is wrong
        # about a mix's tails, but the same tails are in both, and the ratio is smooth
        ratio = self.capacity.max_rps(mix) / model_c if model_c > 0 else 1.0
        ratio = ratio if math.isfinite(ratio) and ratio > 0 else 1.0
        return self.limit_share * measured * ratio

    def observed_mix(self, rows: Sequence[Signals]) -> TokenMix:
        """The mix the fleet is serving: tokens computed per second over requests served.

        In steady state prompt and output tokens per second are the arrival rate times the mean
        lengths. Where the engines fall behind, they compute the tokens of fewer requests than
        arrive (the queue grows, some give up), and while they clear a backlog, of more: so the
        tokens are divided by the requests that arrived, less the queue's growth over the window
        and the errors, and not by the arrivals, which would read an overloaded fleet's mix as
        lighter (talking the policy into fewer replicas exactly when it needs more) and a
        draining one's as heavier. The estimate is blended with the prior until the window is
        full and a few hundred requests were seen, since a fleet that just started has not yet
        reached it.
        """
        if self.mix is None:
            self.mix = self.prior_mix
        if not rows:
            return self.mix
        arrivals = sum(_num(s.arrival_rate_rps) * s.interval_s for s in rows)
        errors = sum(_num(s.errors_per_s) * s.interval_s for s in rows)
        grew = _num(rows[-1].queue_depth) - _num(rows[0].queue_depth)
        served = arrivals - grew - errors
        if served < 0.25 * arrivals:
            return self.mix  # mostly queued or lost: too little was served to tell the mix
        prompt = sum(_num(s.prompt_tokens_per_s) * s.interval_s for s in rows)
        out = sum(_num(s.output_tokens_per_s) * s.interval_s for s in rows)
        covered = sum(s.interval_s for s in rows) / self.mix_window_s
        p = self.prior_mix.mean_prompt
        o = self.prior_mix.mean_output
        w = min(1.0, served / 300.0) * min(1.0, covered)
        if served > 0 and w > 0:
            p = (1 - w) * p + w * prompt / served
            o = (1 - w) * o + w * out / served
        self.mix = self.prior_mix.rescaled(max(p, 1.0), max(o, 1.0))
        return self.mix

    def bursts(
        self, history: Sequence[Signals], now_s: float, lead_s: float, per_rep: float
    ) -> BurstMargin:
        """The burst margin of the arrivals since the last new level (see
        ``capacity.burst_margin``).

        A flash crowd is a new level, not a burst: measured over a history that straddles
        it, the step would read as a huge spread and size the fleet for bursts that never come.
        So when the last ``shift_window_s`` bring more arrivals than the history before them
        allows for (beyond its ``trend_z`` quantile around its trend, and by at least one
        replica's rate: a smaller change moves the fleet by a replica at most), the history
        restarts there, and the policy serves the new level at once. Unless experience says
        otherwise: one lead time after each such step it checks whether the rate stayed at least
        half-way up to the step's peak. Where steps have faded by then (a code assistant's
        minute-long spikes), replicas asked for at a step come after it; so a step is kept in
        the history as one more burst, and the margin holds for the next one through the quiet
        in between.
        """
        start = max(now_s - self.burst_window_s, self._since)
        rows = [s for s in window(history, now_s, now_s - start) if s.t_s > start]
        if len(rows) < 3:
            return NO_BURST
        bin_s = float(np.median([s.interval_s for s in rows]))
        counts = np.array([_num(s.arrival_rate_rps) * s.interval_s for s in rows])
        k = max(1, int(round(self.shift_window_s / bin_s)))
        recent = float(counts[-k:].sum()) / (k * bin_s)
        still: list[tuple[float, float, float]] = []
        for t0, before_rps, peak_rps in self._steps:
            if now_s >= t0 + lead_s:
                self._step_held.append(recent >= 0.5 * (before_rps + peak_rps))
            else:
                still.append((t0, before_rps, max(peak_rps, recent)))
        self._steps = still
        self._step_held = self._step_held[-3:]
        if counts.size >= 4 * k and now_s - self._last_step > self.shift_window_s:
            before = burst_margin(
                counts[:-k], bin_s, windows_s=(k * bin_s,), slack_s=0.0, z=self.trend_z
            )
            if recent > before.rate_rps + max(before.excess_rps, per_rep):
                self._last_step = now_s
                self._steps.append((now_s, before.rate_rps, recent))
                if self.steps_hold():
                    self._since = now_s - k * bin_s
                    counts = counts[-k:]
        return burst_margin(
            counts, bin_s, slack_s=self.ttft_slo_s, z=self.burst_z, trend=self.steps_hold()
        )

    def trends(self, now_s: float, level: float, slope: float, lead_s: float) -> bool:
        """Whether rises of the arrival rate last here: the trend's forecast, checked by experience.

        A rate that wanders on the scale of minutes (a conversation trace whose users come and
        go in waves) shows a two-minute rise the trend test calls significant, since it judges
        the slope against the scatter of 10-s bins, not against the wander; extrapolated over a
        lead time, such a rise asks for a replica that arrives when the rate is back. So each
        detected rise is checked one lead time later: did the rate (over ``slow_window_s``) get
        at least half-way to what the trend forecast? Where the last rises mostly did not, a
        detected slope is not extrapolated (the level it reached is served, with the hidden-ramp
        margin on top); no experience yet: assume rises last. A rise found to have faded also
        releases what it asked for: the ski-rental hold is for a load that may come back, and
        this one was only forecast (once the fleet has no backlog beyond the TTFT slack).
        """
        still: list[tuple[float, float, float]] = []
        for t0, lvl0, slope0 in self._trends:
            if now_s >= t0 + lead_s:
                held = level >= lvl0 + 0.5 * slope0 * lead_s
                self._trend_held.append(held)
                if not held:
                    self._faded.append((t0, now_s))
            else:
                still.append((t0, lvl0, slope0))
        self._trends = still
        self._trend_held = self._trend_held[-3:]
        if slope > 0 and not self._trends:
            self._trends.append((now_s, level, slope))
        h = self._trend_held
        return not h or sum(h) * 2 >= len(h)

    def steps_hold(self) -> bool:
        """Whether steps of the arrival rate last here (no experience yet: assume they do)."""
        h = self._step_held
        return not h or sum(h) * 2 >= len(h)

    def rates(self, history: Sequence[Signals], now_s: float) -> tuple[float, float, float, float]:
        """(level, rate over the last ``fast_window_s``, slope, slope noise may hide) per second.

        The level is the trend line's value now when the rate is rising, else the mean over
        ``slow_window_s``; the fast rate catches a step before the trend test can.
        """
        rows = window(history, now_s, self.trend_window_s)
        fast = window(history, now_s, self.fast_window_s)
        slow = window(history, now_s, self.slow_window_s)
        r_fast = _mean_rate(fast)
        r_slow = _mean_rate(slow)
        slope = 0.0
        hidden = 0.0
        r_fit = r_slow
        covered = sum(s.interval_s for s in rows)
        if covered >= 0.75 * self.trend_window_s:
            t = np.array([s.t_s for s in rows])
            y = np.array([_num(s.arrival_rate_rps) for s in rows])
            # bin to trend_bin_s to damp Poisson noise, then least squares
            b = np.floor((t - t[0]) / self.trend_bin_s).astype(int)
            nb = int(b.max()) + 1
            if nb >= 3:
                cnt = np.bincount(b, minlength=nb)
                sy = np.bincount(b, weights=y, minlength=nb)
                st = np.bincount(b, weights=t, minlength=nb)
                keep = cnt > 0
                yb, tb = sy[keep] / cnt[keep], st[keep] / cnt[keep]
                slope, r_fit, se_slope = _line(tb - now_s, yb)
                if slope > self.trend_z * se_slope:
                    # a step looks like a steep ramp to a line through it: when a level shift
                    # explains the window clearly better, the trend is the one after the shift
                    k = _step_break(yb)
                    if k is not None and len(yb) - k >= 3:
                        slope, r_fit, se_slope = _line(tb[k:] - now_s, yb[k:])
                    elif k is not None:
                        slope, r_fit, se_slope = 0.0, float(np.mean(yb[k:])), 0.0
                if abs(slope) < self.trend_z * se_slope:
                    slope = 0.0  # not distinguishable from noise
                    r_fit = r_slow
                # the steepest ramp the counting noise alone hides from the test above: Poisson
                # arrivals at the level make each bin's rate vary by level / bin, so a slope
                # below trend_z of that standard error would not have been called a trend;
                # once one is, what it may still be steeper by (its one-sided 95% bound)
                tvar = float(np.sum((tb - tb.mean()) ** 2))
                lvl = max(r_fit if slope > 0 else r_slow, 0.0)
                if tvar > 0:
                    z = self.trend_z if slope <= 0 else 1.645
                    hidden = z * math.sqrt(lvl / self.trend_bin_s / tvar)
        level = max(r_fit, 0.0) if slope > 0 else max(r_slow, 0.0)
        return level, max(r_fast, 0.0), slope, hidden

    def expected(self, now_s: float, r_now: float, slope: float, horizon_s: float) -> float:
        """Where the rate is heading at ``now + horizon``: the daily shape when known, else the
        trend (a decline included; the plan itself never counts on one)."""
        if self.seasonality is not None:
            s = self.seasonality
            rel_now = s.relative(now_s)
            if rel_now > 0:
                return r_now * s.relative(now_s + horizon_s) / rel_now
        return max(0.0, r_now + slope * horizon_s)

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
        level, r_fast, slope, hidden = self.rates(signals_history, now_s)
        slow = _mean_rate(window(signals_history, now_s, self.slow_window_s))
        faded = ""
        if not self.trends(now_s, slow, slope, f.cold_lead_s) and slope > 0:
            # rises here fade within a lead time: serve the level, do not extrapolate
            faded = f" (not extrapolated: rises here faded, {slope:+.3f}/s)"
            slope = 0.0
        burst = self.bursts(signals_history, now_s, f.cold_lead_s, per_rep)
        eps = burst.excess_rps
        centre = burst.rate_rps if burst.window_s > 0 else level
        if not self.steps_hold() and burst.window_s > 0:
            # where steps fade within a lead time, the last minute is a burst, not a level:
            # plan on the bursts' mean and envelope, without a trend to extrapolate
            level, slope = centre, 0.0
        cold_h = f.cold_lead_s * self.lead_margin + self.interval_s
        warm_h = f.warm_lead_s * self.lead_margin + self.interval_s

        def need_at(h: float) -> tuple[float, float]:
            """(rate to plan for at now + h, its margin): the forecast of the level plus a
            margin for the bursts around it or for a ramp the forecast does not hold yet,
            whichever is larger (both measure how far the rate may be above the forecast)."""
            planned = self.forecast(now_s, level, slope, h)
            # the ramp noise may still hide, on top of where the rate is heading (the trend, or
            # the daily shape, declines included), beyond what the plan already holds
            # with no trend detected, a ramp just beyond what the noise hides is seen only once
            # it has covered part of the trend window, and it keeps climbing while it is: the
            # margin covers that delay as well as the horizon
            h_hidden = h + (self.detect_share * self.trend_window_s if slope <= 0 else 0.0)
            unc = max(0.0, self.expected(now_s, level, slope, h) + hidden * h_hidden - planned)
            margin = max(eps, unc)
            return planned + margin, margin

        r_now, _ = need_at(0.0)
        r_cold, m_cold = need_at(cold_h)
        r_warm, _ = need_at(warm_h)
        # right after a new level (a step beyond the bursts the history knows), the last few
        # seconds are the rate from now on; a burst inside the known envelope is not chased
        # (the margin holds for it, and replicas asked for now would come after it)
        in_step = now_s - self._since <= cold_h
        r_step = r_fast if in_step else 0.0
        # a step still climbing (the fast rate rose since the last tick by more than its
        # counting noise): it will be higher by the time another window confirms it, so ask
        # now for where the climb goes within one shift window. Not held by the ski rental:
        # what the next ticks do not confirm is cancelled while it is still provisioning, which
        # costs only the seconds it was billed
        r_ahead = 0.0
        prev = self._prev_fast
        self._prev_fast = (now_s, r_fast)
        if in_step and prev is not None and now_s > prev[0]:
            rise = r_fast - prev[1]
            noise = self.trend_z * math.sqrt(max(r_fast + prev[1], 1.0) / self.fast_window_s)
            if rise > noise:
                r_ahead = r_fast + rise / (now_s - prev[0]) * self.shift_window_s
        need_ahead = _replicas(r_ahead, per_rep)
        need_now = _replicas(max(r_now, r_step), per_rep)
        need_cold = _replicas(max(r_cold, r_step), per_rep)
        need_warm = _replicas(max(r_warm, r_step), per_rep)
        queue = _num(signals_history[-1].queue_depth)
        use_pool = f.warm_usd_per_replica_hour < f.usd_per_replica_hour
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
        need = max(need_now, fc)
        # a spot reclaim takes replicas at a notice shorter than the lead time that brings
        # them back, so a fleet on spot may hold a hedge (SkyServe's num_overprovision; 0 by
        # default: racing replacements after a loss, below, measured better on the spot wave)
        hedge = self.spot_hedge if f.spot > 0 else 0
        need += hedge
        # A queue while replicas are on their way is expected: they were asked for the rate,
        # and more for the queue would come a lead time later, when it has been served or has
        # given up (clients wait about a minute; a lead time is two). A queue the ready fleet
        # should not have, one that grows beyond what it clears within the TTFT slack although
        # the fleet is as large as the need, says the per-replica rate is too optimistic: then
        # add what drains it within backlog_drain_s. (A queue left over from an outage shrinks.)
        # Nor is a queue that grows while nothing is on its way expected: see below
        backlog = 0
        excess = queue - max(f.ready, 0) * per_rep * self.ttft_slo_s
        before = window(signals_history, now_s - self.fast_window_s, self.fast_window_s)
        queue_before = _num(before[-1].queue_depth) if before else queue
        growing = queue > queue_before
        if f.ready >= need and excess > 0 and growing:
            backlog = _replicas(excess / self.backlog_drain_s, per_rep)
        elif excess > 0 and growing and f.starting == 0:
            # a backlog that nothing on its way was asked for (the fleet was short before the
            # policy could act, or a rise outran the margin): it grows until what is asked for
            # now arrives, for at most as long as clients wait, and every request behind it
            # misses; ask for what drains it, as it will be then, within backlog_drain_s
            grow = (queue - queue_before) / self.fast_window_s
            at_arrival = excess + grow * min(f.cold_lead_s, self.client_patience_s)
            backlog = _replicas(at_arrival / self.backlog_drain_s, per_rep)
        target = need + backlog
        # ski rental: letting a replica go and asking for it again costs a lead time of billing
        # (every second from provisioning to ready is paid) and the SLO meanwhile; holding it
        # costs its price per second. So a surplus replica is kept for one (median) lead time,
        # unless the forecast is sure the load will not return; then only as long as it takes
        # to tell a dip from noise (one window of the rate estimate).
        hold_s = f.cold_lead_s
        sure = ""
        if self.seasonality is not None and slope <= 0:
            s = self.seasonality
            if s.relative(now_s + cold_h) < s.relative(now_s):
                hold_s = self.slow_window_s
                sure = "; the daily shape is past its peak"
        # the needs a faded rise asked for (from its start to its check) are no reason to hold
        # replicas: the load they planned for did not come. Unless the fleet has a backlog
        # beyond the TTFT slack: then the surplus is serving it (released once it is gone)
        if self._faded and excess <= 0:
            for t0, t1 in self._faded:
                self.needs = [(t, n) for t, n in self.needs if not t0 <= t <= t1]
            self._faded = []
        self.needs.append((now_s, target))
        # a loss: fewer serving than the target last applied (the simulator's lifecycle, which
        # does not replace what died), or fewer ready although the target did not go down (a
        # controller whose ReplicaSet recreates the pods at once)
        lost_now = f.serving < f.desired or (
            f.ready < self._prev_ready and f.desired >= self._prev_desired
        )
        self._prev_desired = f.desired
        # a replica that just became ready was asked for a lead time ago, for the rate forecast
        # for now: it is held from its arrival, not only from when it was asked for. Otherwise a
        # rate hovering at a replica's boundary lets it go the tick it arrives, asks for it again
        # the next, and serves the lead time in between one replica short. Held arrival_hold_s,
        # not a lead time: that would also hold what a rise that faded meanwhile asked for
        if 0 <= self._prev_ready < f.ready:
            held_from = now_s - max(0.0, hold_s - self.arrival_hold_s)
            self.needs.append((held_from, min(f.ready, f.desired)))
        self._prev_ready = f.ready
        self.needs = [(t, n) for t, n in self.needs if t > now_s - max(hold_s, 1e-9) - 1e-9]
        current = f.desired
        if max(target, need_ahead) >= current:
            desired = max(target, need_ahead)
            step = "up" if desired > current else "hold"
            if need_ahead > target:
                step += (
                    f" (a step still climbing: {r_ahead:.0f} rps within "
                    f"{self.shift_window_s:.0f} s)"
                )
        elif excess > 0:
            # a backlog the ready fleet does not clear within the TTFT slack: every request
            # arriving now waits behind it (FCFS), so the replicas serving it stay until it is
            # gone; they are already paid for, unlike replicas asked for it now
            desired = current
            step = f"hold (need {target}; a backlog of {queue:.0f} beyond the TTFT slack)"
        else:
            floor_n = max(n for _, n in self.needs)
            desired = max(floor_n, target)
            if desired < current:
                step = "down" + sure
            else:
                desired = current
                step = f"hold (need {target}; max {floor_n} in the last {hold_s:.0f} s)"
        # replicas lost (a node failed, a spot reclaim: lost_now above) leave the fleet short
        # of what it needs now until replacements arrive, and the lead time is drawn: racing
        # extra requests and cancelling the slowest once enough are ready brings the first ones
        # sooner (the minimum of several draws) for the billing of the cancelled ones'
        # provisioning. Only after a loss: a ramp's shortfall is the forecast's to cover, and
        # racing it doubles what a fading step costs
        short = need_now + hedge - f.ready
        if lost_now:
            self._lost = True
        elif short <= 0:
            self._lost = False
        if self._lost and short > 0 and self.race_share > 0:
            race = math.ceil(self.race_share * short - 1e-9)
            if target + race > desired:
                desired = target + race
                step += f" (+{race} racing: {short} short of the need now after a loss)"
        desired = f.clamp(desired)
        reason = (
            f"gpuwise {step}: rate {level:.1f} rps (last {self.fast_window_s:.0f} s "
            f"{r_fast:.1f}; trend {slope:+.3f}/s{faded}, {hidden:.3f}/s hidden), "
            f"bursts +{eps:.1f} rps "
            f"({burst.window_s:.0f}-s windows: sd {burst.spread_rps:.1f} rps, Poisson "
            f"{burst.poisson_rps:.1f}); plan {r_cold:.1f} rps at +{cold_h:.0f} s (margin "
            f"{m_cold:.1f}); mix {mix.mean_prompt:.0f}/{mix.mean_output:.0f} tok -> "
            f"{per_rep:.2f} rps/replica "
            + (
                f"(load test x{self.limit_share:g})"
                if self.load_test is not None
                else f"(model x{self.utilization:g})"
            )
            + f"; need {need_now} now, {need_cold} at lead"
            + (f", +{backlog} for a queue of {queue:.0f} it should not have" if backlog else "")
            + (f", +{hedge} spot hedge ({f.spot} on spot)" if hedge else "")
            + f"; {how} -> {desired}"
        )
        return Decision(desired, pool, reason)


def _replicas(rate: float, per_rep: float) -> int:
    return math.ceil(rate / per_rep - 1e-9) if per_rep > 0 else 0


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line through ``(x, y)``: slope, value at x = 0, the slope's standard error."""
    a, c = np.polyfit(x, y, 1)
    resid = y - (a * x + c)
    se = float(np.sqrt(np.sum(resid**2) / max(1, len(y) - 2)))
    xvar = float(np.sum((x - x.mean()) ** 2))
    return float(a), float(c), se / math.sqrt(xvar) if xvar > 0 else 0.0


def _step_break(y: np.ndarray) -> int | None:
    """Where a level shift splits ``y``, if two levels fit it clearly better than one line.

    "Clearly": the Bayesian information criterion of the two-level model (three parameters:
    two means and the break) beats the line's (two), i.e. its residual sum of squares is below
    ``exp(-ln(n) / n)`` of the line's. None when the line is as good.
    """
    n = len(y)
    if n < 4:
        return None
    x = np.arange(n, dtype=float)
    a, c = np.polyfit(x, y, 1)
    sse_line = float(np.sum((y - (a * x + c)) ** 2))
    best_k, best_sse = None, math.inf
    for k in range(2, n - 1):
        sse = float(np.sum((y[:k] - y[:k].mean()) ** 2) + np.sum((y[k:] - y[k:].mean()) ** 2))
        if sse < best_sse:
            best_k, best_sse = k, sse
    if best_k is None or best_sse >= sse_line * math.exp(-math.log(n) / n):
        return None
    return best_k


def _num(x: float) -> float:
    return 0.0 if math.isnan(x) else float(x)


def _mean_rate(rows: Sequence[Signals]) -> float:
    if not rows:
        return 0.0
    total = sum(_num(s.arrival_rate_rps) * s.interval_s for s in rows)
    span = sum(s.interval_s for s in rows)
    return total / span if span > 0 else 0.0
