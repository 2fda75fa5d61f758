"""The canonical signal record: what one deployment of a fleet looks like over one interval.

The simulator produces it from its own state; ``gpuwise.observe`` produces it from Prometheus or
scraped ``/metrics``. Policies, the doctor and cost reports read only this record, so none of them
knows which world it runs in. A value that could not be measured is NaN, never a guess.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

NAN = math.nan


@dataclass(frozen=True)
class Signals:
    """One deployment over the interval ``(t_s - interval_s, t_s]``; gauges are read at ``t_s``."""

    t_s: float
    deployment: str
    interval_s: float
    # load
    arrival_rate_rps: float = NAN  # requests arriving per second over the interval
    completed_rps: float = NAN
    prompt_tokens_per_s: float = NAN
    output_tokens_per_s: float = NAN
    # engine state (gauges, summed over ready replicas unless named per replica)
    queue_depth: float = NAN  # requests waiting for admission
    running: float = NAN  # requests in the running batch
    kv_usage: float = NAN  # mean KV-cache usage of ready replicas, 0..1
    kv_usage_max: float = NAN  # the fullest replica, 0..1
    gpu_busy: float = NAN  # share of the interval the engines were executing, 0..1
    preemptions_per_s: float = NAN
    errors_per_s: float = NAN  # failed, rejected or timed-out requests per second
    # latency of requests that got their first token / finished in the interval
    ttft_p50_s: float = NAN
    ttft_p95_s: float = NAN
    ttft_p99_s: float = NAN
    tpot_p50_s: float = NAN
    tpot_p95_s: float = NAN
    e2e_p95_s: float = NAN
    # fleet
    replicas_ready: float = NAN
    replicas_starting: float = NAN
    replicas_warm: float = NAN
    gpus: float = NAN  # GPUs paid for during the interval (ready + starting + warm + draining)

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


SIGNAL_FIELDS = tuple(f.name for f in fields(Signals))


def write_signals_csv(rows: Iterable[Signals], path: str | Path) -> Path:
    """Write rows to CSV atomically (a partial file never replaces a good one)."""
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SIGNAL_FIELDS)
        for r in rows:
            w.writerow(
                [
                    "" if isinstance(v, float) and math.isnan(v) else v
                    for v in (getattr(r, k) for k in SIGNAL_FIELDS)
                ]
            )
    tmp.replace(p)
    return p


def read_signals_csv(path: str | Path) -> list[Signals]:
    out = []
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            kw: dict[str, float | str] = {}
            for k in SIGNAL_FIELDS:
                v = row.get(k, "")
                kw[k] = v if k == "deployment" else (float(v) if v not in ("", None) else NAN)
            out.append(Signals(**kw))  # type: ignore[arg-type]
    return out


def latest(rows: Sequence[Signals], deployment: str) -> Signals | None:
    for r in reversed(rows):
        if r.deployment == deployment:
            return r
    return None
