"""A schedule of requests: when each arrives and how many tokens it reads and writes.

This is the one object the simulator consumes and the load generator replays, so it is immutable
(read-only arrays), validated once on construction, and round-trips exactly through the arrivals
CSV: times are written with Python's shortest round-trip float repr, so ``bench`` replays the very
floats the simulator saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpuwise.workload._io import WorkloadError

CSV_HEADER = "arrival_s,input_tokens,output_tokens"


def _frozen(values: Any, dtype: type, name: str) -> np.ndarray:
    """A read-only 1-D copy, so a caller's array is never frozen or aliased behind its back."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise WorkloadError(f"Requests.{name} must be one-dimensional, got shape {arr.shape}")
    if (
        dtype is np.int64
        and arr.dtype.kind == "f"
        and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)))
    ):
        raise WorkloadError(f"Requests.{name} must hold whole numbers of tokens")
    out = np.array(arr, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False, repr=False)
class Requests:
    """Requests sorted by arrival; the window ``[start_s, start_s + duration_s)`` they cover.

    The window matters because a quiet stretch at the end is part of the workload: the mean rate
    of 10 requests over 100 s is 0.1 rps even if the last one came at 20 s. ``duration_s`` is None
    when nobody knows the window (a CSV read back), and then rates use the span of the arrivals.
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    duration_s: float | None = None
    start_s: float = 0.0

    def __post_init__(self) -> None:
        arrival = _frozen(self.arrival_s, np.float64, "arrival_s")
        inp = _frozen(self.input_tokens, np.int64, "input_tokens")
        out = _frozen(self.output_tokens, np.int64, "output_tokens")
        if not len(arrival) == len(inp) == len(out):
            raise WorkloadError(
                f"Requests arrays differ in length: arrival_s {len(arrival)}, "
                f"input_tokens {len(inp)}, output_tokens {len(out)}"
            )
        if arrival.size:
            if not np.all(np.isfinite(arrival)) or arrival[0] < 0:
                raise WorkloadError("Requests.arrival_s must be finite and >= 0")
            if np.any(np.diff(arrival) < 0):
                raise WorkloadError("Requests.arrival_s must be sorted ascending")
            if np.any(inp < 0):
                raise WorkloadError("Requests.input_tokens must be >= 0")
            if np.any(out < 1):
                raise WorkloadError("Requests.output_tokens must be >= 1")
        if self.duration_s is not None and not (
            np.isfinite(self.duration_s) and self.duration_s >= 0
        ):
            raise WorkloadError(
                f"Requests.duration_s must be finite and >= 0, got {self.duration_s}"
            )
        if not (np.isfinite(self.start_s) and self.start_s >= 0):
            raise WorkloadError(f"Requests.start_s must be finite and >= 0, got {self.start_s}")
        object.__setattr__(self, "arrival_s", arrival)
        object.__setattr__(self, "input_tokens", inp)
        object.__setattr__(self, "output_tokens", out)
        if self.duration_s is not None:
            object.__setattr__(self, "duration_s", float(self.duration_s))
        object.__setattr__(self, "start_s", float(self.start_s))

    # ------------------------------------------------------------------ basics

    @classmethod
    def empty(cls, duration_s: float | None = None) -> Requests:
        return cls(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64), duration_s)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    def __eq__(self, other: object) -> bool:
        """Byte equality: reproducibility means the same floats, not merely close ones."""
        if not isinstance(other, Requests):
            return NotImplemented
        return (
            self.duration_s == other.duration_s
            and self.start_s == other.start_s
            and self.arrival_s.tobytes() == other.arrival_s.tobytes()
            and self.input_tokens.tobytes() == other.input_tokens.tobytes()
            and self.output_tokens.tobytes() == other.output_tokens.tobytes()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Requests(n={len(self)}, start_s={self.start_s:g}, duration_s={self.duration_s}, "
            f"mean_rate_rps={self.mean_rate_rps:.4g})"
        )

    @property
    def end_s(self) -> float:
        """End of the window, or the last arrival when the window is unknown."""
        if self.duration_s is not None:
            return self.start_s + self.duration_s
        return float(self.arrival_s[-1]) if len(self) else self.start_s

    @property
    def mean_rate_rps(self) -> float:
        """Requests per second over the window (or, unknown window, over the arrivals' span)."""
        n = len(self)
        if self.duration_s is not None:
            return n / self.duration_s if self.duration_s > 0 else 0.0
        if n < 2:
            return 0.0
        span = float(self.arrival_s[-1] - self.arrival_s[0])
        return (n - 1) / span if span > 0 else float("inf")

    # ------------------------------------------------------------------ composition

    def slice_time(self, t0_s: float, t1_s: float, *, rebase: bool = False) -> Requests:
        """Requests arriving in ``[t0_s, t1_s)``; ``rebase`` moves t0_s to 0 (a new workload)."""
        if not t1_s >= t0_s >= 0:
            raise WorkloadError(f"slice_time needs 0 <= t0_s <= t1_s, got {t0_s}, {t1_s}")
        lo, hi = np.searchsorted(self.arrival_s, [t0_s, t1_s], side="left")
        arrival = self.arrival_s[lo:hi]
        start = t0_s
        if rebase:
            arrival = arrival - t0_s
            start = 0.0
        return Requests(
            arrival, self.input_tokens[lo:hi], self.output_tokens[lo:hi], t1_s - t0_s, start
        )

    def shift(self, offset_s: float) -> Requests:
        """The same requests later in time (window included), e.g. to place a spike."""
        if offset_s < 0 and (self.start_s + offset_s < 0):
            raise WorkloadError("shift would move the window before time 0")
        return Requests(
            self.arrival_s + offset_s,
            self.input_tokens,
            self.output_tokens,
            self.duration_s,
            self.start_s + offset_s,
        )

    @staticmethod
    def merge(streams: Sequence[Requests]) -> Requests:
        """Superpose streams (several tenants on one deployment); ties keep the streams' order."""
        if not streams:
            return Requests.empty(0.0)
        arrival = np.concatenate([s.arrival_s for s in streams])
        order = np.argsort(arrival, kind="stable")
        start = min(s.start_s for s in streams)
        known = all(s.duration_s is not None for s in streams)
        duration = max(s.end_s for s in streams) - start if known else None
        return Requests(
            arrival[order],
            np.concatenate([s.input_tokens for s in streams])[order],
            np.concatenate([s.output_tokens for s in streams])[order],
            duration,
            start,
        )

    @staticmethod
    def concat(streams: Sequence[Requests]) -> Requests:
        """Play streams back to back: each starts where the previous window ended.

        This is how scenarios are built from pieces (steady hour, then a spike), each piece
        generated from its own Traffic with its window starting at 0.
        """
        if not streams:
            return Requests.empty(0.0)
        parts = [streams[0]]
        for s in streams[1:]:
            parts.append(s.shift(parts[-1].end_s - s.start_s))
        known = all(s.duration_s is not None for s in streams)
        start = parts[0].start_s
        return Requests(
            np.concatenate([p.arrival_s for p in parts]),
            np.concatenate([p.input_tokens for p in parts]),
            np.concatenate([p.output_tokens for p in parts]),
            parts[-1].end_s - start if known else None,
            start,
        )

    # ------------------------------------------------------------------ CSV

    def to_csv(self, path: str | Path) -> None:
        """Write the arrivals CSV that ``bench`` and other tools replay, floats exactly."""
        rows = [
            f"{t!r},{i},{o}"
            for t, i, o in zip(
                self.arrival_s.tolist(),
                self.input_tokens.tolist(),
                self.output_tokens.tolist(),
                strict=True,
            )
        ]
        text = CSV_HEADER + "\n" + "".join(r + "\n" for r in rows)
        Path(path).write_text(text, encoding="utf-8")

    @staticmethod
    def from_csv(path: str | Path, *, duration_s: float | None = None) -> Requests:
        """Read an arrivals CSV; times are kept as written (not moved to start at 0)."""
        from gpuwise.workload.traces import read_csv_trace

        req = read_csv_trace(path)
        return Requests(req.arrival_s, req.input_tokens, req.output_tokens, duration_s)

    # ------------------------------------------------------------------ reporting

    def summary(self) -> dict[str, Any]:
        """Plain JSON-ready numbers for reports and ``--json`` output."""

        def stats(x: np.ndarray) -> dict[str, float]:
            if not x.size:
                return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
            p50, p90, p99 = np.percentile(x, [50, 90, 99])
            return {
                "mean": float(x.mean()),
                "p50": float(p50),
                "p90": float(p90),
                "p99": float(p99),
                "max": float(x.max()),
            }

        gaps = np.diff(self.arrival_s)
        cv = float(gaps.std() / gaps.mean()) if gaps.size > 1 and gaps.mean() > 0 else None
        return {
            "requests": len(self),
            "start_s": self.start_s,
            "duration_s": self.duration_s,
            "mean_rate_rps": self.mean_rate_rps,
            "interarrival_cv": cv,
            "input_tokens": stats(self.input_tokens),
            "output_tokens": stats(self.output_tokens),
            "total_input_tokens": int(self.input_tokens.sum()),
            "total_output_tokens": int(self.output_tokens.sum()),
        }


def merge(*streams: Requests) -> Requests:
    """Module-level alias of :meth:`Requests.merge` for composing scenarios."""
    return Requests.merge(streams)


def concat(*streams: Requests) -> Requests:
    """Module-level alias of :meth:`Requests.concat` for composing scenarios."""
    return Requests.concat(streams)
