"""Named "what if" scenarios: a deployment's traffic, transformed into a stress case.

A scenario keeps the deployment's token mix and reshapes its arrivals around the deployment's
own base rate, so "traffic doubles in five minutes" means double *this* fleet's traffic. Specs
and the CLI name them (``--scenario double-in-5-min``); the autoscaling comparisons reuse them.

Fault scenarios also carry fault events (a node failure at the peak, a wave of spot reclaims)
and may run the fleet on another pricing kind; traffic-only tools ignore the faults, and the
lifecycle simulator (``gpuwise.sim.autoscale``) applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gpuwise.errors import UserError
from gpuwise.spec import (
    DiurnalArrivals,
    EmpiricalLength,
    GammaArrivals,
    PoissonArrivals,
    RampArrivals,
    TraceArrivals,
    Traffic,
)
from gpuwise.workload.traces import read_trace, resolve_trace_path


def _trace_rate_rps(path: str) -> float:
    trace = read_trace(resolve_trace_path(path))
    return len(trace) / max(float(trace.arrival_s[-1]), 1.0) if len(trace) else 0.0


def base_rate_rps(traffic: Traffic, duration_s: float) -> float:
    """The steady rate a scenario scales from: the mean rate of the deployment's traffic."""
    a = traffic.arrival
    match a:
        case PoissonArrivals() | GammaArrivals():
            return a.rate_rps
        case DiurnalArrivals():
            return (a.peak_rps + a.trough_rps) / 2.0
        case RampArrivals():
            return a.start_rps
        case TraceArrivals():
            return _trace_rate_rps(a.path) * a.rate_scale / a.time_scale
    raise UserError(f"cannot take a base rate from arrival kind '{a.kind}'")


@dataclass(frozen=True)
class FaultEvent:
    """A fault at ``at_s``.

    ``node-failure``: nodes die at once, taking ``share`` of the ready replicas (at least one);
    their in-flight requests fail or are retried by the router. ``spot-preemption``: ``share`` of
    the spot replicas (at least one) get ``notice_s`` of notice to drain and are then reclaimed;
    spot capacity stays unavailable for ``outage_s``.
    """

    kind: Literal["node-failure", "spot-preemption"]
    at_s: float
    share: float
    notice_s: float = 0.0
    outage_s: float = 0.0


def _no_faults(duration_s: float) -> tuple[FaultEvent, ...]:
    return ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[[Traffic, float], Traffic]  # (traffic, duration_s) -> traffic
    faults: Callable[[float], tuple[FaultEvent, ...]] = field(default=_no_faults)
    pricing: str | None = None  # run the fleet on this pricing kind instead of the spec's

    def apply(self, traffic: Traffic, duration_s: float) -> Traffic:
        return self.build(traffic, duration_s)

    def fault_events(self, duration_s: float) -> tuple[FaultEvent, ...]:
        return self.faults(duration_s)


def _with_arrival(t: Traffic, arrival: object, lengths_from: str | None = None) -> Traffic:
    upd: dict[str, object] = {"arrival": arrival}
    if lengths_from is not None:  # a dataset scenario brings its own token mix
        upd["input_tokens"] = EmpiricalLength(dataset=lengths_from)
        upd["output_tokens"] = EmpiricalLength(dataset=lengths_from)
    elif t.input_tokens is None or t.output_tokens is None:
        # the deployment replays a trace: keep its lengths as an empirical sample of the trace
        a = t.arrival
        assert isinstance(a, TraceArrivals)
        upd["input_tokens"] = t.input_tokens or EmpiricalLength(path=a.path)
        upd["output_tokens"] = t.output_tokens or EmpiricalLength(path=a.path)
    return t.model_copy(update=upd)


def _double(t: Traffic, d: float) -> Traffic:
    r = base_rate_rps(t, d)
    return _with_arrival(t, RampArrivals(start_rps=r, end_rps=2 * r, at_s=d / 3, ramp_s=300.0))


def _flash(t: Traffic, d: float) -> Traffic:
    r = base_rate_rps(t, d)
    return _with_arrival(t, RampArrivals(start_rps=r, end_rps=5 * r, at_s=d / 3, ramp_s=30.0))


def _diurnal(t: Traffic, d: float) -> Traffic:
    r = base_rate_rps(t, d)
    return _with_arrival(
        t, DiurnalArrivals(peak_rps=1.6 * r, trough_rps=0.4 * r, period_s=d, peak_at_s=d / 2)
    )


def _trace(name: str) -> Callable[[Traffic, float], Traffic]:
    def build(t: Traffic, d: float) -> Traffic:
        r = base_rate_rps(t, d)
        trace_rate = _trace_rate_rps(name)
        return t.model_copy(
            update={
                "arrival": TraceArrivals(path=name, rate_scale=max(r / trace_rate, 1e-6)),
                "input_tokens": None,
                "output_tokens": None,
            }
        )

    return build


def _node_failure_at_peak(d: float) -> tuple[FaultEvent, ...]:
    # one node of four fails where the compressed day peaks
    return (FaultEvent("node-failure", at_s=d / 2, share=0.25),)


def _spot_wave(d: float) -> tuple[FaultEvent, ...]:
    # three reclaims 20 s apart, each of a fifth of the spot fleet, with a 30 s notice (GCP's;
    # AWS gives 2 minutes), then 10 minutes without spot capacity in the zone
    return tuple(
        FaultEvent("spot-preemption", at_s=d / 2 + k * 20.0, share=0.2, notice_s=30.0, outage_s=600)
        for k in range(3)
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "the deployment's own traffic, unchanged", lambda t, d: t),
        Scenario(
            "double-in-5-min", "traffic doubles over five minutes, a third of the way in", _double
        ),
        Scenario("flash-crowd-5x", "a 5x flash crowd arriving within 30 seconds", _flash),
        Scenario(
            "diurnal-compressed", "a day's curve (0.4x-1.6x) compressed into the run", _diurnal
        ),
        Scenario(
            "azure-conv",
            "the Azure LLM 2023 conversation trace, rate-scaled to the deployment's rate",
            _trace("azure-conv"),
        ),
        Scenario(
            "azure-code",
            "the Azure LLM 2023 code trace, rate-scaled to the deployment's rate",
            _trace("azure-code"),
        ),
        Scenario(
            "node-failure-at-peak",
            "the compressed day, and a quarter of the ready replicas' nodes fail at its peak",
            _diurnal,
            faults=_node_failure_at_peak,
        ),
        Scenario(
            "spot-preemption-wave",
            "steady traffic on spot replicas; three reclaims of a fifth of them (30 s notice) "
            "half-way, then 10 minutes without spot capacity",
            lambda t, d: t,
            faults=_spot_wave,
            pricing="spot",
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        import difflib

        near = difflib.get_close_matches(name, list(SCENARIOS), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UserError(f"unknown scenario '{name}'{hint} Known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]
