"""Arrival times: renewal processes, time-varying Poisson, and trace replay, all seeded.

Every generator consumes its random numbers in fixed-size blocks, independent of the duration, so
a longer run is an exact extension of a shorter one with the same seed: the first hour of a
two-hour simulation is byte-for-byte the one-hour simulation. That keeps comparisons between runs
of different lengths honest and lets ``bench`` cut a schedule short without changing it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import overload

import numpy as np

from gpuwise.spec import (
    DiurnalArrivals,
    GammaArrivals,
    PoissonArrivals,
    RampArrivals,
    TraceArrivals,
    Traffic,
)
from gpuwise.workload._io import WorkloadError
from gpuwise.workload.schedule import Requests
from gpuwise.workload.traces import Trace, load_trace, resolve_trace_path

ArrivalSpec = PoissonArrivals | GammaArrivals | DiurnalArrivals | RampArrivals | TraceArrivals

# Independent random streams derived from one seed. Fixed numbers, never reordered: changing the
# length distribution must not move a single arrival.
STREAM_ARRIVALS = 0
STREAM_INPUT = 1
STREAM_OUTPUT = 2
STREAM_RESCALE = 3

_BLOCK = 1 << 16  # draws per block; fixed so that schedules are prefix-stable in the duration
MAX_REQUESTS = 200_000_000  # beyond this the arrays alone need gigabytes: a spec mistake
DEFAULT_BIN_S = 60.0


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one named stream; equal to ``SeedSequence(seed).spawn(...)[stream]``."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise WorkloadError(f"seed must be a whole number >= 0, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(stream,)))


def _check_duration(duration_s: float) -> float:
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0):
        raise WorkloadError(f"duration_s must be a finite number > 0, got {duration_s!r}")
    return float(duration_s)


def _check_count(rate_rps: float, duration_s: float) -> None:
    expected = rate_rps * duration_s
    if expected > MAX_REQUESTS:
        raise WorkloadError(
            f"{rate_rps:g} rps for {duration_s:g} s is about {expected:.3g} requests, more than "
            f"{MAX_REQUESTS:.0e}; shorten the duration or lower the rate"
        )


# ----------------------------------------------------------------------------- rate curves


def _diurnal_rate(a: DiurnalArrivals, t: np.ndarray) -> np.ndarray:
    mid = (a.peak_rps + a.trough_rps) / 2
    amp = (a.peak_rps - a.trough_rps) / 2
    return mid + amp * np.cos(2 * np.pi * (t - a.peak_at_s) / a.period_s)


def _ramp_rate(a: RampArrivals, t: np.ndarray) -> np.ndarray:
    if a.ramp_s > 0:
        frac = np.clip((t - a.at_s) / a.ramp_s, 0.0, 1.0)
    else:
        frac = (t >= a.at_s).astype(np.float64)
    return a.start_rps + (a.end_rps - a.start_rps) * frac


def _trace_curve(a: TraceArrivals, bin_s: float) -> np.ndarray:
    """Requests per second in consecutive bins of the replayed trace (rate_scale applied)."""
    t = _transformed_trace(a)[0]
    if not t.size:
        return np.zeros(0)
    counts = np.bincount((t // bin_s).astype(np.int64))
    return counts * (a.rate_scale / bin_s)


@overload
def rate_at(arrival: ArrivalSpec | Traffic, t_s: float, *, bin_s: float = ...) -> float: ...
@overload
def rate_at(
    arrival: ArrivalSpec | Traffic, t_s: np.ndarray, *, bin_s: float = ...
) -> np.ndarray: ...
def rate_at(
    arrival: ArrivalSpec | Traffic, t_s: float | np.ndarray, *, bin_s: float = DEFAULT_BIN_S
) -> float | np.ndarray:
    """The intended arrival rate at time ``t_s`` (rps), for autoscaler baselines and reports.

    Synthetic kinds give their exact curve. Traces have no curve, so it is the count in the
    ``bin_s``-wide bin holding ``t_s`` divided by ``bin_s`` (after start_s, time_scale and
    rate_scale). Before 0, and after a trace ends, the rate is 0.
    """
    a = arrival.arrival if isinstance(arrival, Traffic) else arrival
    t = np.asarray(t_s, dtype=np.float64)
    if isinstance(a, PoissonArrivals | GammaArrivals):
        r = np.full(t.shape, a.rate_rps)
    elif isinstance(a, DiurnalArrivals):
        r = _diurnal_rate(a, t)
    elif isinstance(a, RampArrivals):
        r = _ramp_rate(a, t)
    elif isinstance(a, TraceArrivals):
        if not bin_s > 0:
            raise WorkloadError(f"bin_s must be > 0, got {bin_s}")
        curve = _trace_curve(a, bin_s)
        k = np.floor(np.maximum(t, 0.0) / bin_s).astype(np.int64)
        r = np.append(curve, 0.0)[np.minimum(k, curve.size)]
    else:  # pragma: no cover
        raise WorkloadError(f"unknown arrival kind {a!r}")
    r = np.where(t >= 0, r, 0.0)
    return float(r) if np.ndim(t_s) == 0 else r


def peak_rate_rps(
    arrival: ArrivalSpec | Traffic, duration_s: float, *, bin_s: float = DEFAULT_BIN_S
) -> float:
    """The highest intended rate within ``[0, duration_s)``: what capacity must be sized for."""
    a = arrival.arrival if isinstance(arrival, Traffic) else arrival
    d = _check_duration(duration_s)
    last = math.nextafter(d, 0.0)
    if isinstance(a, PoissonArrivals | GammaArrivals):
        return float(a.rate_rps)
    if isinstance(a, DiurnalArrivals):
        first_peak = a.peak_at_s % a.period_s
        if first_peak < d:
            return float(a.peak_rps)
        # No crest inside the window: the cosine is highest at one of the window's ends.
        return float(np.max(_diurnal_rate(a, np.array([0.0, last]))))
    if isinstance(a, RampArrivals):
        # Piecewise linear: the maximum is at a breakpoint.
        pts = np.clip(np.array([0.0, a.at_s, a.at_s + a.ramp_s, last]), 0.0, last)
        return float(np.max(_ramp_rate(a, pts)))
    if isinstance(a, TraceArrivals):
        curve = _trace_curve(a, bin_s)[: math.ceil(d / bin_s)]
        return float(curve.max()) if curve.size else 0.0
    raise WorkloadError(f"unknown arrival kind {a!r}")  # pragma: no cover


# ----------------------------------------------------------------------------- generators


def _renewal(draw_gaps: Callable[[int], np.ndarray], duration_s: float) -> np.ndarray:
    """Cumulative gaps until ``duration_s``; block-wise so the schedule is prefix-stable."""
    chunks: list[np.ndarray] = []
    t0 = 0.0
    while True:
        times = np.cumsum(draw_gaps(_BLOCK))
        times += t0
        if times[-1] >= duration_s:
            chunks.append(times[: np.searchsorted(times, duration_s, side="left")])
            return np.concatenate(chunks)
        chunks.append(times)
        t0 = float(times[-1])


def _thinned(
    rate_fn: Callable[[np.ndarray], np.ndarray],
    rate_max: float,
    duration_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Non-homogeneous Poisson by thinning (Lewis-Shedler): exact for any bounded rate curve.

    Candidates come at the peak rate and each survives with probability rate(t)/peak. The waste is
    at most peak/mean candidates per arrival, cheap next to the simplicity of an exact method.
    """
    chunks: list[np.ndarray] = []
    t0 = 0.0
    while True:
        times = np.cumsum(rng.exponential(1.0 / rate_max, _BLOCK))
        times += t0
        u = rng.random(_BLOCK)
        done = times[-1] >= duration_s
        if done:
            k = int(np.searchsorted(times, duration_s, side="left"))
            times, u = times[:k], u[:k]
        chunks.append(times[u * rate_max < rate_fn(times)])
        if done:
            return np.concatenate(chunks)
        t0 = float(times[-1])


def _synthetic_times(
    a: PoissonArrivals | GammaArrivals | DiurnalArrivals | RampArrivals,
    duration_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    if isinstance(a, PoissonArrivals):
        _check_count(a.rate_rps, duration_s)
        return _renewal(lambda n: rng.exponential(1.0 / a.rate_rps, n), duration_s)
    if isinstance(a, GammaArrivals):
        _check_count(a.rate_rps, duration_s)
        shape = 1.0 / a.cv**2
        scale = 1.0 / (a.rate_rps * shape)
        # The first arrival is one full gap after 0 (the process is not started in equilibrium).
        return _renewal(lambda n: rng.gamma(shape, scale, n), duration_s)
    if isinstance(a, DiurnalArrivals):
        _check_count(a.peak_rps, duration_s)
        return _thinned(lambda t: _diurnal_rate(a, t), a.peak_rps, duration_s, rng)
    if isinstance(a, RampArrivals):
        peak = max(a.start_rps, a.end_rps)
        _check_count(peak, duration_s)
        return _thinned(lambda t: _ramp_rate(a, t), peak, duration_s, rng)
    raise WorkloadError(f"unknown arrival kind {a!r}")  # pragma: no cover


# ----------------------------------------------------------------------------- trace replay


def _transformed_trace(a: TraceArrivals) -> tuple[np.ndarray, Trace]:
    """The trace's times after skipping ``start_s`` (trace seconds) and stretching by time_scale."""
    trace = load_trace(resolve_trace_path(a.path), a.format)
    lo = int(np.searchsorted(trace.arrival_s, a.start_s, side="left"))
    with np.errstate(over="ignore"):
        t = (trace.arrival_s[lo:] - a.start_s) * a.time_scale
    if t.size and not np.isfinite(t[-1]):
        raise WorkloadError(f"{trace.path}: time_scale {a.time_scale:g} makes the times overflow")
    return t, _slice_trace(trace, lo)


def _slice_trace(trace: Trace, lo: int) -> Trace:
    return Trace(
        trace.path,
        trace.arrival_s[lo:],
        trace.input_tokens[lo:] if trace.input_tokens is not None else None,
        trace.output_tokens[lo:] if trace.output_tokens is not None else None,
    )


def _rescale(
    t: np.ndarray, factor: float, rng: np.random.Generator, end_s: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(source index, new time) per output request; see :func:`scale_rate` for the method."""
    n = t.size
    if not (math.isfinite(factor) and factor > 0):
        raise WorkloadError(f"rate scale factor must be a finite number > 0, got {factor}")
    if n == 0 or factor == 1.0:
        return np.arange(n), t
    whole = math.floor(factor)
    copies = whole + (rng.random(n) < factor - whole).astype(np.int64)
    nxt = np.empty(n)
    nxt[:-1] = t[1:]
    if end_s is not None and end_s > t[-1]:
        nxt[-1] = end_s
    else:
        nxt[-1] = t[-1] + (t[-1] - t[-2] if n > 1 else 0.0)
    gap = nxt - t
    idx = np.repeat(np.arange(n), copies)
    starts = np.repeat(np.cumsum(copies) - copies, copies)
    extra = (np.arange(idx.size) - starts) > 0
    new_t = t[idx] + np.where(extra, rng.random(idx.size) * gap[idx], 0.0)
    if end_s is not None:
        new_t = np.minimum(new_t, math.nextafter(end_s, -math.inf))
    order = np.argsort(new_t, kind="stable")
    return idx[order], new_t[order]


def scale_rate(requests: Requests, factor: float, seed: int) -> Requests:
    """The same traffic shape at ``factor`` times the rate, deterministic for a seed.

    Method (also used for a trace's ``rate_scale``): every request is kept ``floor(factor)``
    times, plus once more with probability ``factor - floor(factor)``; so factor < 1 is plain
    random thinning. The first copy keeps its original time; each extra copy (same token counts)
    arrives at a uniform random point in the gap before the next original request (the last
    request uses the window's end, or the previous gap). Because extras stay inside the local gap,
    the rate curve keeps its shape down to the scale of one inter-arrival gap, the duration is
    unchanged, and factor 2 is exactly the original requests plus one copy each.
    """
    idx, t = _rescale(
        requests.arrival_s,
        float(factor),
        stream_rng(seed, STREAM_RESCALE),
        requests.end_s if requests.duration_s is not None else None,
    )
    return Requests(
        t,
        requests.input_tokens[idx],
        requests.output_tokens[idx],
        requests.duration_s,
        requests.start_s,
    )


def trace_window(a: TraceArrivals, duration_s: float, seed: int) -> Trace:
    """The replayed part of a trace: transformed, rate-scaled, cut at ``duration_s``.

    Rate scaling runs over the whole trace before the cut, so that the random draws, and thus the
    schedule, do not depend on the duration (a longer run extends a shorter one).
    """
    d = _check_duration(duration_s)
    t, trace = _transformed_trace(a)
    idx, t = _rescale(t, a.rate_scale, stream_rng(seed, STREAM_RESCALE), None)
    k = int(np.searchsorted(t, d, side="left"))
    idx, t = idx[:k], t[:k]
    return Trace(
        trace.path,
        t,
        trace.input_tokens[idx] if trace.input_tokens is not None else None,
        trace.output_tokens[idx] if trace.output_tokens is not None else None,
    )


def arrival_times(arrival: ArrivalSpec | Traffic, duration_s: float, seed: int) -> np.ndarray:
    """Sorted arrival times in ``[0, duration_s)`` for one seed: the times ``generate`` uses."""
    a = arrival.arrival if isinstance(arrival, Traffic) else arrival
    d = _check_duration(duration_s)
    if isinstance(a, TraceArrivals):
        return trace_window(a, d, seed).arrival_s
    return _synthetic_times(a, d, stream_rng(seed, STREAM_ARRIVALS))
