"""What ``bench`` sends and when: the very schedule the simulator draws for the same inputs.

Open-loop schedules come from :func:`gpuwise.workload.generate` (a spec's deployment traffic, or
a Poisson traffic built from the quick flags) or from an arrivals CSV; nothing here draws random
numbers of its own, so ``gpuwise simulate`` and ``gpuwise bench`` with the same spec, duration and
seed see byte-identical arrival times and lengths. Caps (``max_requests``, the endpoint's context
length) only cut or clamp; they never move an arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpuwise.errors import UserError
from gpuwise.spec import FixedLength, PoissonArrivals, Traffic, load_spec
from gpuwise.workload import Requests, WorkloadError, generate

__all__ = [
    "Schedule",
    "capped",
    "fit_to_model_len",
    "schedule_from_csv",
    "schedule_from_spec",
    "schedule_poisson",
]


@dataclass(frozen=True)
class Schedule:
    """Requests to replay, with where they came from (for the report)."""

    requests: Requests
    source: str  # e.g. "spec examples/x.yaml deployment chat, seed 0, 60 s"
    origin_s: float = 0.0  # subtracted from every arrival time when sending

    def send_times_s(self) -> np.ndarray:
        """Seconds after the run's start at which each request is due."""
        return self.requests.arrival_s - self.origin_s


def schedule_from_spec(
    spec_path: str | Path, deployment: str | None, duration_s: float, seed: int
) -> Schedule:
    """``generate(traffic, duration_s, seed)`` for one deployment of a spec file."""
    spec = load_spec(spec_path)
    with_traffic = [d for d in spec.deployments if d.traffic is not None]
    if deployment is None:
        if len(with_traffic) != 1:
            names = ", ".join(d.name for d in with_traffic) or "(none has traffic)"
            raise UserError(
                f"{spec_path}: choose the deployment to replay with --deployment ({names})"
            )
        dep = with_traffic[0]
    else:
        found = [d for d in spec.deployments if d.name == deployment]
        if not found:
            names = ", ".join(d.name for d in spec.deployments)
            raise UserError(f"{spec_path}: no deployment named '{deployment}' (have: {names})")
        dep = found[0]
        if dep.traffic is None:
            raise UserError(f"{spec_path}: deployment '{deployment}' has no traffic section")
    assert dep.traffic is not None
    requests = _generate(dep.traffic, duration_s, seed)
    return Schedule(
        requests, f"spec {spec_path} deployment {dep.name}, {duration_s:g} s, seed {seed}"
    )


def schedule_poisson(
    rate_rps: float, input_tokens: int, output_tokens: int, duration_s: float, seed: int
) -> Schedule:
    """Poisson arrivals with fixed lengths, drawn exactly as a spec with that traffic would."""
    if rate_rps <= 0:
        raise UserError("--rate must be positive (requests per second)")
    if input_tokens < 1 or output_tokens < 1:
        raise UserError("--input-tokens and --output-tokens must be at least 1")
    traffic = Traffic(
        arrival=PoissonArrivals(rate_rps=rate_rps),
        input_tokens=FixedLength(tokens=input_tokens),
        output_tokens=FixedLength(tokens=output_tokens),
    )
    requests = _generate(traffic, duration_s, seed)
    return Schedule(
        requests,
        f"Poisson {rate_rps:g} req/s, {input_tokens} in / {output_tokens} out tokens, "
        f"{duration_s:g} s, seed {seed}",
    )


def schedule_from_csv(path: str | Path) -> Schedule:
    """An arrivals CSV (``arrival_s,input_tokens,output_tokens``), replayed from its first row."""
    try:
        requests = Requests.from_csv(path)
    except WorkloadError as err:
        raise UserError(str(err)) from None
    origin = float(requests.arrival_s[0]) if len(requests) else 0.0
    return Schedule(requests, f"arrivals {path}", origin_s=origin)


def capped(schedule: Schedule, max_requests: int, max_duration_s: float) -> Schedule:
    """The first ``max_requests`` requests due before ``max_duration_s``; times untouched."""
    t = schedule.send_times_s()
    n = min(int(np.searchsorted(t, max_duration_s, side="left")), max(0, max_requests))
    if n == len(schedule.requests):
        return schedule
    r = schedule.requests
    cut = Requests(
        r.arrival_s[:n], r.input_tokens[:n], r.output_tokens[:n], r.duration_s, r.start_s
    )
    return Schedule(cut, schedule.source, schedule.origin_s)


def fit_to_model_len(
    input_tokens: np.ndarray, output_tokens: np.ndarray, max_model_len: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Clamp lengths so prompt + output fits the endpoint's context; returns how many changed.

    The output is kept when it can be (it decides the decode work), the prompt shortened; a
    request that could not fit would only come back as an HTTP 400.
    """
    room = max(2, int(max_model_len) - 1)  # one token of slack for a BOS the server adds
    out = np.minimum(output_tokens, room - 1)
    inp = np.clip(np.minimum(input_tokens, room - out), 1, None)
    changed = int(np.count_nonzero((inp != input_tokens) | (out != output_tokens)))
    return inp, out, changed


def _generate(traffic: Traffic, duration_s: float, seed: int) -> Requests:
    if not duration_s > 0:
        raise UserError("the schedule's duration must be positive (--duration-s)")
    try:
        return generate(traffic, duration_s, seed)
    except WorkloadError as err:
        raise UserError(str(err)) from None
