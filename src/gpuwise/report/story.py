"""The story of a comparison: the moment that tests the policies, and what each one did then.

A results table averages a whole run; what a person asks of an autoscaler is what it did when the
load jumped or a node died. So the report opens with that moment, found from the arrivals and
the scenario's faults (not hard-coded per scenario): the climb to the load's peak, or the first
fault. For each policy it says when the fleet first fell short of what the load after it needs,
when it had enough again, and how many of the requests arriving in the moment's window missed
the SLO. The window runs from the event to one scale-up lead time (plus a minute to drain) after
the load reached its new level: the time any policy needs to answer it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpuwise.report.compare import ANCHORS, Comparison
from gpuwise.sim.chunked import OUTCOME_FAILED, OUTCOME_TIMED_OUT
from gpuwise.workload.scenarios import get_scenario

BIN_S = 10.0
SMOOTH_S = 60.0  # the load is read as a one-minute mean: a rise, not a burst of a few seconds
DRAIN_S = 60.0  # after the answer arrives, a backlog takes about this long to clear


@dataclass(frozen=True)
class Rise:
    """The load's largest climb: from ``from_rps`` at ``start_s`` to ``to_rps`` at ``end_s``."""

    start_s: float
    end_s: float
    from_rps: float
    to_rps: float


@dataclass(frozen=True)
class Moment:
    """What a policy did in the story's window."""

    policy: str
    requests: int  # arriving in the window, or in flight at its start
    missed: int  # of those, outside the SLO (late, failed or timed out)
    failed: int  # of those, lost with a replica (not retried) or timed out
    short_s: float  # first time from the event on with fewer ready than the load needs; nan
    ready_for_peak_s: float  # the first time after that with enough again; nan: never
    peak_ready: int  # most replicas ready in the window


@dataclass(frozen=True)
class Story:
    event: str  # one sentence: what happens
    event_s: float
    window_s: tuple[float, float]
    peak_replicas: int  # what the load after the event needs at one replica's measured limit
    moments: list[Moment]
    headline: str  # gpuwise against the anchors, in one sentence


def smoothed_rate(arrivals_s: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(bin end times, arrivals per second over the trailing ``SMOOTH_S``), in ``BIN_S`` bins."""
    nb = max(1, math.ceil(duration_s / BIN_S))
    k = np.minimum((np.asarray(arrivals_s) // BIN_S).astype(np.int64), nb - 1)
    counts = np.bincount(k, minlength=nb).astype(float)
    w = max(1, int(round(SMOOTH_S / BIN_S)))
    csum = np.concatenate([[0.0], np.cumsum(counts)])
    lo = np.maximum(np.arange(nb) + 1 - w, 0)
    span = (np.arange(nb) + 1 - lo) * BIN_S
    return (np.arange(nb) + 1) * BIN_S, (csum[1:] - csum[lo]) / span


def find_rise(arrivals_s: np.ndarray, duration_s: float) -> Rise | None:
    """The largest climb of the one-minute load to its peak: from its lowest point before the
    peak, starting where it last stood within 10% of that climb above the low, ending where it
    first reached 90% of it. None when the load never climbs by a quarter."""
    t, r = smoothed_rate(arrivals_s, duration_s)
    if r.size < 3:
        return None
    peak_i = int(np.argmax(r))
    low_i = int(np.argmin(r[: peak_i + 1]))
    lo, hi = float(r[low_i]), float(r[peak_i])
    if hi <= 0 or hi - lo < 0.25 * max(lo, 1e-9):
        return None
    seg = r[low_i : peak_i + 1]
    below = np.nonzero(seg <= lo + 0.1 * (hi - lo))[0]
    start_i = low_i + int(below[-1])
    above = np.nonzero(r[start_i : peak_i + 1] >= lo + 0.9 * (hi - lo))[0]
    end_i = start_i + int(above[0])
    return Rise(max(0.0, float(t[start_i])), float(t[end_i]), float(r[start_i]), float(r[end_i]))


def _ready_series(c: Comparison, policy: str) -> tuple[np.ndarray, np.ndarray]:
    run = c.runs[policy]
    return (
        np.array([s.t_s for s in run.signals]),
        np.array([s.replicas_ready for s in run.signals]),
    )


def tell(c: Comparison) -> Story | None:
    """The story of ``c`` (None when it has no run to tell of)."""
    if not c.runs:
        return None
    any_run = next(iter(c.runs.values()))
    arrivals = any_run.requests.arrival_s
    limit = c.calibration.replica_max_rps
    faults = get_scenario(c.scenario).fault_events(c.duration_s)
    rise = find_rise(arrivals, c.duration_s)
    t, rate = smoothed_rate(arrivals, c.duration_s)
    if faults:
        f = faults[0]
        event_s = f.at_s
        what = "a node failure" if f.kind == "node-failure" else "a wave of spot reclaims"
        share = f"{f.share:.0%} of the {'ready' if f.kind == 'node-failure' else 'spot'} replicas"
        at_rate = float(np.interp(event_s, t, rate))
        event = (
            f"At {event_s:,.0f} s {what} takes {share}"
            + (
                f" ({len(faults)} reclaims, {f.notice_s:g} s notice each)"
                if len(faults) > 1
                else ""
            )
            + f", with the load at {at_rate:,.1f} req/s."
        )
        level_s = faults[-1].at_s
    elif rise is not None:
        event_s = rise.start_s
        level_s = rise.end_s
        event = (
            f"The load climbs from {rise.from_rps:,.1f} to {rise.to_rps:,.1f} req/s (one-minute "
            f"means) between {rise.start_s:,.0f} and {rise.end_s:,.0f} s."
        )
    else:
        return None
    w0 = event_s
    w1 = min(c.duration_s, level_s + c.cold_lead_s + DRAIN_S)
    after = (t > w0) & (t <= w1)
    peak_rps = float(rate[after].max()) if after.any() else float(np.interp(w0, t, rate))
    peak_n = max(1, math.ceil(peak_rps / limit - 1e-9)) if limit > 0 else 0
    event += (
        f" The load after it needs {peak_n} replicas at one replica's measured limit "
        f"({limit:.2f} req/s); a replica asked for takes {c.cold_lead_s:.0f} s to serve."
    )
    moments = []
    for r in c.rows:
        run = c.runs[r.policy]
        req = run.requests
        # the moment's requests: those arriving in the window and those still in flight at
        # the event (a failed node's streams arrived before it)
        pending = (req.arrival_s < w0) & ~(req.finish_s < w0)
        inwin = ((req.arrival_s >= w0) & (req.arrival_s < w1)) | pending
        met = req.slo_met(run.slo)
        ts, ready = _ready_series(c, r.policy)
        sel = (ts > w0) & (ts <= w1)
        # short: the first moment after the event (a fault's drop takes effect after it)
        short = np.nonzero(sel & (ready < peak_n))[0]
        short_s = float(ts[short[0]]) if short.size else math.nan
        ok = np.nonzero((ts >= short_s) & (ready >= peak_n))[0] if short.size else np.zeros(0)
        lost = np.isin(req.outcome, (OUTCOME_FAILED, OUTCOME_TIMED_OUT))
        moments.append(
            Moment(
                policy=r.policy,
                requests=int(inwin.sum()),
                missed=int((inwin & ~met).sum()),
                failed=int((inwin & lost).sum()),
                short_s=short_s,
                ready_for_peak_s=float(ts[ok[0]]) if ok.size else math.nan,
                peak_ready=int(ready[sel].max()) if sel.any() else 0,
            )
        )
    return Story(event, w0, (w0, w1), peak_n, moments, headline(c))


def headline(c: Comparison) -> str:
    """gpuwise's result and which anchors it dominates, in one sentence."""
    names = [r.policy for r in c.rows]
    if "gpuwise" not in names:
        return ""
    g = c.row("gpuwise")
    dom = c.dominance()
    anchors = [a for a in ANCHORS if a in dom]
    beaten = [a for a in anchors if dom[a] == "dominates"]
    text = f"gpuwise keeps {g.slo_attainment:.2%} of requests inside the SLO for ${g.cost_usd:,.2f}"
    if "oracle" in names and math.isfinite(g.cost_vs_oracle):
        text += f" ({g.cost_vs_oracle:.2f}x the perfect-foresight oracle's cost)"
    if anchors:
        text += f"; it Pareto-dominates {len(beaten)} of the {len(anchors)} anchor policies"
        rest = [a for a in anchors if a not in beaten]
        if rest:
            why = [f"{a}: {dom[a].removeprefix('no: ')}" for a in rest]
            text += " (not " + "; ".join(why) + ")"
    return text + "."
