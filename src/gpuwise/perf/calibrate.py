"""Fit a profile's efficiency factors to measured iteration times.

Measurements come as iteration samples: what one engine iteration contained and how long it
took. Published profiling tables (Splitwise's prompt and per-token times), a live engine's
``/metrics`` histograms, and request-level TTFT/TPOT at a known, low load all reduce to that
form. The fit minimises relative error in log space with a robust loss, because one bad
measurement (an out-of-memory retry, a noisy neighbour) should not drag every coefficient.

A client-side time also holds what happens outside the engine: a time to first token includes
one ``request_overhead_s`` (HTTP, tokenization, streaming back) on top of the prefill iteration,
which such a sample says with ``request_overheads=1``; that is how a fit tells the two apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from gpuwise.perf.model import ReplicaConfig, ReplicaPerf
from gpuwise.perf.profile import PerfError, Profile

# The coefficients a fit may move, with the bounds that keep them physical.
FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "compute_eff": (0.05, 1.0),
    "compute_half_sat_flops": (1.0e3, 1.0e12),
    "memory_eff": (0.05, 1.0),
    "overhead_s": (0.0, 10.0),
    "overhead_per_layer_s": (0.0, 1.0),
    "allreduce_latency_s": (0.0, 1.0e-2),
    "allreduce_bw_eff": (0.05, 1.0),
    "overhead_per_seq_s": (0.0, 1.0),
    "request_overhead_s": (0.0, 10.0),
}
DEFAULT_FIT = (
    "compute_eff",
    "compute_half_sat_flops",
    "memory_eff",
    "overhead_s",
    "allreduce_latency_s",
)
_LOG_SCALED = {
    "compute_half_sat_flops",
    "allreduce_latency_s",
    "overhead_s",
    "overhead_per_layer_s",
    "overhead_per_seq_s",
    "request_overhead_s",
}
# Where a log-scaled coefficient starts when the base profile has it at 0 (log 0 is a flat,
# infinitely distant start): about a CPU engine's figures, from which a fit moves either way.
_LOG_START = {
    "overhead_s": 1e-3,
    "overhead_per_layer_s": 1e-5,
    "overhead_per_seq_s": 1e-5,
    "request_overhead_s": 1e-3,
    "allreduce_latency_s": 1e-5,
}


@dataclass(frozen=True)
class IterationSample:
    """One measured engine iteration (or the mean of several identical ones)."""

    config: ReplicaConfig
    measured_s: float
    prefill_tokens: float = 0.0
    prefill_context_tokens: float = 0.0
    prefill_seqs: float = 0.0
    prefill_attention_pairs: float | None = None
    decode_seqs: float = 0.0
    decode_context_tokens: float = 0.0
    kind: str = ""  # free label for error tables, e.g. "prefill" or "decode"
    request_overheads: float = 0.0  # 1 for a client-measured TTFT (see the module doc)


def prefill_sample(
    config: ReplicaConfig,
    prompt_tokens: int,
    batch: int,
    measured_s: float,
    *,
    request_overheads: float = 0.0,
) -> IterationSample:
    """A batch of ``batch`` prompts, each ``prompt_tokens`` long, prefilled in one iteration;
    ``request_overheads=1`` when ``measured_s`` is a client's time to first token."""
    return IterationSample(
        config=config,
        measured_s=measured_s,
        prefill_tokens=float(prompt_tokens * batch),
        prefill_seqs=float(batch),
        prefill_attention_pairs=batch * prompt_tokens * prompt_tokens / 2.0,
        kind="prefill",
        request_overheads=request_overheads,
    )


def decode_sample(
    config: ReplicaConfig, batch: int, context_tokens: float, measured_s: float
) -> IterationSample:
    """One decode iteration of ``batch`` sequences whose contexts average ``context_tokens``."""
    return IterationSample(
        config=config,
        measured_s=measured_s,
        decode_seqs=float(batch),
        decode_context_tokens=float(batch) * context_tokens,
        kind="decode",
    )


def predict(samples: Sequence[IterationSample], profile: Profile) -> np.ndarray:
    """Predicted seconds for each sample under ``profile``."""
    cache: dict[int, ReplicaPerf] = {}  # by identity: configs hold unhashable catalog records
    out = np.empty(len(samples))
    for i, s in enumerate(samples):
        perf = cache.get(id(s.config))
        if perf is None:
            perf = cache[id(s.config)] = ReplicaPerf(s.config, profile)
        out[i] = perf.iteration_time_s(
            prefill_tokens=s.prefill_tokens,
            prefill_context_tokens=s.prefill_context_tokens,
            decode_seqs=s.decode_seqs,
            decode_context_tokens=s.decode_context_tokens,
            prefill_seqs=s.prefill_seqs,
            prefill_attention_pairs=s.prefill_attention_pairs,
        )
        if s.request_overheads:
            out[i] += s.request_overheads * profile.request_overhead_s
    return out


def relative_errors(samples: Sequence[IterationSample], profile: Profile) -> np.ndarray:
    measured = np.array([s.measured_s for s in samples])
    return (predict(samples, profile) - measured) / measured


def fit_profile(
    samples: Sequence[IterationSample],
    base: Profile | None = None,
    fit: Sequence[str] = DEFAULT_FIT,
    *,
    name: str = "fitted",
    description: str = "",
    fitted_on: str = "",
) -> Profile:
    """Return ``base`` with the coefficients in ``fit`` moved to best explain ``samples``."""
    base = base or Profile()
    if len(samples) < len(fit):
        raise PerfError(
            f"calibration needs at least {len(fit)} samples to fit {len(fit)} coefficients, "
            f"got {len(samples)}; measure more load levels"
        )
    unknown = [f for f in fit if f not in FIT_BOUNDS]
    if unknown:
        raise PerfError(f"cannot fit '{unknown[0]}'; choose among {', '.join(FIT_BOUNDS)}")
    measured = np.array([s.measured_s for s in samples], dtype=float)
    if np.any(measured <= 0) or not np.all(np.isfinite(measured)):
        raise PerfError("calibration samples must have positive, finite measured times")

    def to_x(p: Profile) -> np.ndarray:
        return np.array(
            [
                _enc(f, getattr(p, f) or (_LOG_START.get(f, 0.0) if f in _LOG_SCALED else 0))
                for f in fit
            ]
        )

    def from_x(x: np.ndarray) -> Profile:
        return replace(base, **{f: _dec(f, v) for f, v in zip(fit, x, strict=True)})

    lo = np.array([_enc(f, FIT_BOUNDS[f][0]) for f in fit])
    hi = np.array([_enc(f, FIT_BOUNDS[f][1]) for f in fit])
    x0 = np.clip(to_x(base), lo + 1e-9, hi - 1e-9)

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.log(predict(samples, from_x(x)) / measured)

    # Several starts: the roofline's max() makes the surface piecewise, so one start can stall.
    best = None
    for scale in (1.0, 0.5, 2.0):
        start = np.clip(x0 + np.log(scale) * np.array([f in _LOG_SCALED for f in fit]), lo, hi)
        res = least_squares(residuals, start, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    prof = from_x(best.x)
    err = np.abs(relative_errors(samples, prof))
    return replace(
        prof,
        name=name,
        description=description or prof.description,
        fitted_on=fitted_on or prof.fitted_on,
        fit_error={
            "median_abs_rel": round(float(np.median(err)), 4),
            "p90_abs_rel": round(float(np.percentile(err, 90)), 4),
            "samples": float(len(samples)),
        },
    )


def _enc(field: str, v: float) -> float:
    return float(np.log(max(v, 1e-15))) if field in _LOG_SCALED else float(v)


def _dec(field: str, v: float) -> float:
    return float(np.exp(v)) if field in _LOG_SCALED else float(v)
