"""One deployment's requests from its Traffic spec: the schedule every tool shares.

The simulator, ``gpuwise bench`` and the planner all call :func:`generate` with the same spec and
seed and get the same arrays. Arrival times, input lengths and output lengths come from separate
streams of the seed, so editing a length distribution never moves an arrival.
"""

from __future__ import annotations

import numpy as np

from gpuwise.spec import EmpiricalLength, TraceArrivals, Traffic
from gpuwise.workload._io import WorkloadError
from gpuwise.workload.arrivals import (
    STREAM_ARRIVALS,
    STREAM_INPUT,
    STREAM_OUTPUT,
    _check_duration,
    _synthetic_times,
    stream_rng,
    trace_window,
)
from gpuwise.workload.lengths import LengthSpec, is_paired, sample_lengths, sample_paired
from gpuwise.workload.schedule import Requests


def generate(traffic: Traffic, duration_s: float, seed: int) -> Requests:
    """Requests arriving in ``[0, duration_s)``; identical arrays for identical inputs.

    Lengths come from the spec's distributions when given, else from the trace's own columns
    (one of the two may come from each). A trace that ends before ``duration_s`` is not looped:
    the schedule ends with it, and ``duration_s`` still records the window asked for.
    """
    d = _check_duration(duration_s)
    arrival = traffic.arrival
    trace_in: np.ndarray | None = None
    trace_out: np.ndarray | None = None
    source = ""
    if isinstance(arrival, TraceArrivals):
        window = trace_window(arrival, d, seed)
        times = window.arrival_s
        trace_in, trace_out = window.input_tokens, window.output_tokens
        source = str(window.path)
    else:
        times = _synthetic_times(arrival, d, stream_rng(seed, STREAM_ARRIVALS))
    inp, out = _lengths(traffic.input_tokens, traffic.output_tokens, times.size, seed)
    if inp is None:
        inp = _from_trace(trace_in, source, "input")
    if out is None:
        out = _from_trace(trace_out, source, "output")
    return Requests(times, inp, out, duration_s=d)


def _lengths(
    input_dist: LengthSpec | None, output_dist: LengthSpec | None, n: int, seed: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if is_paired(input_dist, output_dist):
        assert isinstance(input_dist, EmpiricalLength) and isinstance(output_dist, EmpiricalLength)
        return sample_paired(input_dist, output_dist, n, stream_rng(seed, STREAM_INPUT))
    inp = (
        sample_lengths(input_dist, n, stream_rng(seed, STREAM_INPUT), "input")
        if input_dist is not None
        else None
    )
    out = (
        sample_lengths(output_dist, n, stream_rng(seed, STREAM_OUTPUT), "output")
        if output_dist is not None
        else None
    )
    return inp, out


def _from_trace(values: np.ndarray | None, source: str, role: str) -> np.ndarray:
    if values is None:
        raise WorkloadError(
            f"{source}: the trace has no {role}-token column; give traffic.{role}_tokens in the "
            f"spec, or add an {role}_tokens column to the file"
        )
    return values
