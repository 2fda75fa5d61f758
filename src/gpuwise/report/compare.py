"""Autoscaling policies side by side on one deployment and one scenario: the evidence table.

``compare_policies`` runs the same requests, the same lifecycle (cold starts, faults) and the same
seed through each policy, and reports for each: SLO attainment (TTFT and TPOT), requests failed
or timed out, p95/p99 TTFT, GPU-hours, cost, dollars per million tokens and scale events, with a
perfect-foresight oracle's cost as the lower bound.

How the policies are configured, so that the comparison is fair: every policy gets the same
**load test** of one replica, the highest Poisson rate at which one simulated replica keeps 99%
of the scenario's requests inside the SLO (``gpuwise.sim.loadtest``; lowest of three draws).
Every metric target an operator must pick for an anchor is the gauge one replica shows at
``UTILIZATION`` (80%) of that rate, the headroom operators leave below a measured limit; each
anchor then applies its own published defaults on top (Knative's 70% target utilization, HPA's
tolerance and windows, ...). KEDA keeps vLLM production-stack's chart threshold (5 waiting
requests), and "generic-ops" targets 60% GPU utilization as a CPU service would. The fixed fleet
is sized for the peak at that 80%; the perfect-foresight oracle plans at the measured limit
itself (it needs no headroom for a future it knows). gpuwise's policy plans with the measured
limit and its own margins. Every policy starts from the same ready fleet, sized for the
scenario's first minute, and watches it for the first two minutes before acting (simulated
engines start empty; a controller that had been running would not react to that).

The capacity model's own estimate is reported next to the measurement: it works from the mix's
means and is optimistic for long-prompt mixes (18 req/s for the Azure code trace, where one
replica keeps the SLO only up to about 8), so targets taken at its rate would set the anchors at
an overload the operator's load test would have shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from gpuwise.errors import UserError
from gpuwise.policy import (
    ApaPolicy,
    FixedPolicy,
    HpaPolicy,
    KedaPolicy,
    KpaPolicy,
    OraclePolicy,
    Policy,
    RayServePolicy,
    ReplicaCapacity,
    Seasonality,
    SloAwarePolicy,
    TokenMix,
)
from gpuwise.resolve import ResolvedDeployment, ResolvedSpec, resolve
from gpuwise.sim.autoscale import AutoscaleRun, simulate_autoscaled
from gpuwise.sim.chunked import OUTCOME_FAILED, OUTCOME_TIMED_OUT
from gpuwise.sim.engine import OUTCOME_REJECTED
from gpuwise.sim.fleet import simulate_deployment
from gpuwise.sim.lifecycle import LifecycleConfig
from gpuwise.spec import DiurnalArrivals, PoissonArrivals, Traffic
from gpuwise.workload import Requests, generate, peak_rate_rps
from gpuwise.workload.scenarios import Scenario, get_scenario

ANCHORS = ("hpa", "knative-kpa", "keda", "aibrix-apa", "ray-serve")
BASELINES = ("fixed-peak", "generic-ops")
POLICIES = ("gpuwise", *ANCHORS, *BASELINES, "oracle")
UTILIZATION = 0.8  # the share of a replica's limit the capacity-based policies plan for
OBSERVE_ONLY_S = 120.0  # policies watch the fleet warm up before they act


def pareto_dominates(att_a: float, usd_a: float, att_b: float, usd_b: float) -> bool:
    """Whether (attainment, cost) ``a`` Pareto-dominates ``b``: attainment at least as high at
    no more cost, and strictly better on one of the two."""
    geq = att_a >= att_b and usd_a <= usd_b
    return geq and (att_a > att_b or usd_a < usd_b)


@dataclass(frozen=True)
class Calibration:
    """One replica, measured: what an operator's load test gives the anchors' targets."""

    replica_max_rps: float  # the load test's: the highest rate one replica keeps inside the SLO
    replica_slo_rps: float  # at UTILIZATION of it: what the anchors' targets are measured at
    concurrency: float  # running + waiting per replica at replica_slo_rps
    kv_usage: float
    gpu_busy: float
    slo_attainment: float | None  # of the gauge run at replica_slo_rps
    replica_model_rps: float = math.nan  # the capacity model's limit, for comparison


@dataclass(frozen=True)
class PolicyRow:
    """One policy's results; attainment is the share of all requests, latencies over served."""

    policy: str
    requests: int
    ok: int
    rejected: int
    failed: int
    timed_out: int
    retried: int
    slo_attainment: float
    ttft_attainment: float
    tpot_attainment: float
    ttft_p95_s: float
    ttft_p99_s: float
    tpot_p95_s: float
    gpu_hours: float
    cost_usd: float
    usd_per_1m_tokens: float
    usd_per_1m_tokens_in_slo: float
    scale_events: int
    replicas_started: int
    mean_ready: float
    peak_gpus: float
    cost_vs_oracle: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass
class Comparison:
    spec: str
    deployment: str
    scenario: str
    scenario_description: str
    duration_s: float
    seed: int
    cold_lead_s: float
    warm_lead_s: float
    pricing: str
    usd_per_gpu_hour: float
    slo: dict[str, Any] | None
    calibration: Calibration
    initial_replicas: int
    rows: list[PolicyRow]
    runs: dict[str, AutoscaleRun] = field(repr=False)
    replica_slo_rps: float = 0.0

    def row(self, policy: str) -> PolicyRow:
        for r in self.rows:
            if r.policy == policy:
                return r
        raise KeyError(policy)

    def dominance(self, policy: str = "gpuwise") -> dict[str, str]:
        """For each other policy (not the oracle): does ``policy`` Pareto-dominate it?

        Dominates: SLO attainment at least as high at no more cost, strictly better on one.
        """
        me = self.row(policy)
        out: dict[str, str] = {}
        for r in self.rows:
            if r.policy in (policy, "oracle"):
                continue
            if pareto_dominates(me.slo_attainment, me.cost_usd, r.slo_attainment, r.cost_usd):
                out[r.policy] = "dominates"
            elif me.slo_attainment < r.slo_attainment and me.cost_usd > r.cost_usd:
                out[r.policy] = "dominated"
            elif me.slo_attainment < r.slo_attainment:
                out[r.policy] = (
                    f"no: attainment {me.slo_attainment:.2%} < {r.slo_attainment:.2%} "
                    f"(cost {me.cost_usd / r.cost_usd:.2f}x)"
                )
            else:
                out[r.policy] = (
                    f"no: cost ${me.cost_usd:.2f} > ${r.cost_usd:.2f} "
                    f"(attainment {me.slo_attainment:.2%} vs {r.slo_attainment:.2%})"
                )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "deployment": self.deployment,
            "scenario": self.scenario,
            "scenario_description": self.scenario_description,
            "duration_s": self.duration_s,
            "seed": self.seed,
            "cold_lead_s": self.cold_lead_s,
            "warm_lead_s": self.warm_lead_s,
            "pricing": self.pricing,
            "usd_per_gpu_hour": self.usd_per_gpu_hour,
            "slo": self.slo,
            "calibration": asdict(self.calibration),
            "initial_replicas": self.initial_replicas,
            "rows": [r.as_dict() for r in self.rows],
            "dominance": self.dominance() if any(r.policy == "gpuwise" for r in self.rows) else {},
        }


# ---------------------------------------------------------------- set-up


def scenario_deployment(
    resolved: ResolvedSpec, scenario: Scenario, duration_s: float, name: str | None
) -> ResolvedDeployment:
    """The deployment with the scenario's traffic (and pricing), resolved again."""
    spec = resolved.spec
    names = [d.name for d in spec.deployments]
    target = name or names[0]
    if target not in names:
        raise UserError(f"no deployment named '{target}'; the spec has {', '.join(names)}")
    deployments = []
    for d in spec.deployments:
        if d.name == target:
            if d.traffic is None:
                raise UserError(f"deployment '{d.name}' has no traffic to scale policies against")
            upd: dict[str, Any] = {"traffic": scenario.apply(d.traffic, duration_s)}
            if scenario.pricing is not None:
                upd["pricing"] = scenario.pricing
            d = d.model_copy(update=upd)
        deployments.append(d)
    r = resolve(
        spec.model_copy(update={"deployments": deployments}), resolved.path, resolved.profile
    )
    return r.deployment(target)


def _price_of(resolved: ResolvedSpec, rd: ResolvedDeployment, pricing: str) -> float:
    d = rd.deployment.model_copy(update={"pricing": pricing})
    spec = resolved.spec.model_copy(update={"deployments": [d]})
    try:
        return resolve(spec, resolved.path, resolved.profile).deployments[0].usd_per_gpu_hour
    except UserError:
        return rd.usd_per_gpu_hour


def load_test_for(rd: ResolvedDeployment, mix_requests: Requests) -> Callable[[TokenMix], float]:
    """The one-replica load test every policy is configured from (memoized per mix)."""
    from gpuwise.sim.loadtest import mix_load_test

    measure = mix_load_test(rd, mix_requests.input_tokens, mix_requests.output_tokens)
    memo: dict[tuple[float, float], float] = {}

    def cached(mix: TokenMix) -> float:
        key = (round(mix.mean_prompt, 6), round(mix.mean_output, 6))
        if key not in memo:
            memo[key] = float(measure(mix))
        return memo[key]

    return cached


def calibrate(
    rd: ResolvedDeployment,
    mix_requests: Requests,
    seed: int,
    load_test: Callable[[TokenMix], float] | None = None,
) -> Calibration:
    """One replica's measured limit for the mix (``load_test``, by default
    :func:`load_test_for`), and its gauges at ``UTILIZATION`` of it (simulated)."""
    lim = rd.deployment.limits
    tpot = rd.slo.tpot_s if rd.slo is not None else None
    cap = ReplicaCapacity(rd.perf, lim.max_num_seqs, rd.perf.memory.kv_capacity_tokens, tpot)
    mix = TokenMix.from_samples(mix_requests.input_tokens, mix_requests.output_tokens)
    model_rps = cap.max_rps(mix)
    measured = (load_test or load_test_for(rd, mix_requests))(mix)
    max_rps = measured if math.isfinite(measured) and measured > 0 else model_rps
    slo_rps = max_rps * UTILIZATION
    traffic = (
        Traffic(
            arrival=PoissonArrivals(rate_rps=slo_rps),
            input_tokens=rd.deployment.traffic.input_tokens if rd.deployment.traffic else None,
            output_tokens=rd.deployment.traffic.output_tokens if rd.deployment.traffic else None,
        )
        if rd.deployment.traffic and rd.deployment.traffic.input_tokens is not None
        else None
    )
    duration = 900.0
    if traffic is not None:
        reqs = generate(traffic, duration, seed + 7919)
    else:  # a trace's own lengths: resample them at the load-test rate
        rng = np.random.default_rng(seed + 7919)
        n = int(slo_rps * duration)
        idx = rng.integers(0, len(mix_requests), n)
        reqs = Requests(
            np.sort(rng.uniform(0, duration, n)),
            mix_requests.input_tokens[idx],
            mix_requests.output_tokens[idx],
            duration_s=duration,
        )
    _, summary, sig, _ = simulate_deployment(
        rd, reqs, duration_s=duration, seed=seed, replicas=1, signal_interval_s=10.0
    )
    warm = [s for s in sig if s.t_s > 120 and s.t_s <= duration]
    conc = float(np.mean([s.running + s.queue_depth for s in warm])) if warm else 1.0
    kv = float(np.nanmean([s.kv_usage for s in warm])) if warm else 0.5
    busy = float(np.nanmean([s.gpu_busy for s in warm])) if warm else 1.0
    return Calibration(max_rps, slo_rps, conc, kv, busy, summary.slo_attainment, model_rps)


def build_policy(
    name: str,
    *,
    rd: ResolvedDeployment,
    calibration: Calibration,
    mix: TokenMix,
    traffic: Traffic,
    duration_s: float,
    arrivals_s: np.ndarray,
    cold_lead_s: float,
    load_test: Callable[[TokenMix], float] | None = None,
) -> Policy:
    """A policy by name, configured as the module doc says. ``load_test`` (one replica's
    measured limit for a mix, :func:`load_test_for`) lets gpuwise's policy plan with a measured
    per-replica rate; without one it plans with the capacity model."""
    c = calibration
    lim = rd.deployment.limits
    tpot = rd.slo.tpot_s if rd.slo is not None else None
    if name == "gpuwise":
        season = None
        a = traffic.arrival
        if isinstance(a, DiurnalArrivals):
            season = Seasonality(a.period_s, a.peak_at_s, a.trough_rps / a.peak_rps)
        cap = ReplicaCapacity(rd.perf, lim.max_num_seqs, rd.perf.memory.kv_capacity_tokens, tpot)
        ttft = rd.slo.ttft_s if rd.slo is not None and rd.slo.ttft_s else 2.0
        pct = rd.slo.percentile if rd.slo is not None else 95.0
        return SloAwarePolicy(
            cap,
            mix,
            utilization=UTILIZATION,
            load_test=load_test,
            ttft_slo_s=ttft,
            burst_z=NormalDist().inv_cdf(min(pct, 99.9) / 100.0),
            seasonality=season,
        )
    if name == "hpa":
        return HpaPolicy(metric="kv_usage", target=c.kv_usage, name="hpa")
    if name == "generic-ops":
        return HpaPolicy(metric="gpu_busy", target=0.6, name="generic-ops")
    if name == "knative-kpa":
        return KpaPolicy(container_concurrency_target=c.concurrency)
    if name == "keda":
        return KedaPolicy(threshold=5.0)
    if name == "aibrix-apa":
        return ApaPolicy(metric="kv_usage", target=c.kv_usage)
    if name == "ray-serve":
        return RayServePolicy(target_ongoing_requests=c.concurrency)
    if name == "fixed-peak":
        peak = peak_rate_rps(traffic, duration_s)
        return FixedPolicy(max(1, math.ceil(peak / c.replica_slo_rps - 1e-9)), name="fixed-peak")
    if name == "oracle":
        bin_s = 30.0
        nb = max(1, math.ceil(duration_s / bin_s)) + 1
        counts = np.bincount(
            np.minimum((arrivals_s // bin_s).astype(np.int64), nb - 1), minlength=nb
        )
        return OraclePolicy(counts / bin_s, bin_s, c.replica_max_rps, cold_lead_s)
    raise UserError(f"unknown policy '{name}'; known: {', '.join(POLICIES)}")


# ---------------------------------------------------------------- the comparison


def summarize_run(run: AutoscaleRun, slo_percentile_s: Any = None) -> PolicyRow:
    """One run's table row."""
    req = run.requests
    n = max(len(req), 1)
    ok = req.ok
    slo = run.slo
    with np.errstate(invalid="ignore"):
        ttft_ok = ok & (req.ttft_s <= slo.ttft_s) if slo and slo.ttft_s else ok
        tpot = req.tpot_s
        tpot_ok = ok & (np.isnan(tpot) | (tpot <= slo.tpot_s)) if slo and slo.tpot_s else ok
    met = req.slo_met(slo)
    tokens = float(req.output_tokens[ok].sum())
    tokens_in = float(req.output_tokens[met].sum())
    cost = run.billing.usd

    def pct(x: np.ndarray, q: float) -> float:
        x = x[~np.isnan(x)]
        return float(np.percentile(x, q)) if x.size else math.nan

    ready = np.array([s.replicas_ready for s in run.signals]) if run.signals else np.zeros(1)
    gpus = np.array([s.gpus for s in run.signals]) if run.signals else np.zeros(1)
    return PolicyRow(
        policy=run.policy,
        requests=len(req),
        ok=int(ok.sum()),
        rejected=int((req.outcome == OUTCOME_REJECTED).sum()),
        failed=int((req.outcome == OUTCOME_FAILED).sum()),
        timed_out=int((req.outcome == OUTCOME_TIMED_OUT).sum()),
        retried=int(run.retries.sum()),
        slo_attainment=float(met.sum() / n),
        ttft_attainment=float(ttft_ok.sum() / n),
        tpot_attainment=float(tpot_ok.sum() / n),
        ttft_p95_s=pct(req.ttft_s[ok], 95),
        ttft_p99_s=pct(req.ttft_s[ok], 99),
        tpot_p95_s=pct(req.tpot_s[ok], 95),
        gpu_hours=run.billing.gpu_hours,
        cost_usd=cost,
        usd_per_1m_tokens=cost / tokens * 1e6 if tokens else math.inf,
        usd_per_1m_tokens_in_slo=cost / tokens_in * 1e6 if tokens_in else math.inf,
        scale_events=run.scale_events,
        replicas_started=sum(1 for r in run.replicas if r.phases[0][0] != "ready"),
        mean_ready=float(np.mean(ready)),
        peak_gpus=float(np.max(gpus)),
    )


def compare_policies(
    resolved: ResolvedSpec,
    *,
    scenario: str,
    policies: Sequence[str] = POLICIES,
    duration_s: float = 1800.0,
    seed: int = 0,
    lead_time_s: float | None = None,
    deployment: str | None = None,
    lifecycle: LifecycleConfig | None = None,
    signal_interval_s: float = 1.0,
    observe_only_s: float = OBSERVE_ONLY_S,
    extra_policies: Mapping[str, Policy] | None = None,
    configure: Callable[[str, Policy], Policy] | None = None,
) -> Comparison:
    """Run each named policy on ``scenario``; see module doc. ``lead_time_s`` pins the median
    scale-up lead time (request to ready) by setting the node provisioning time.
    ``extra_policies`` are run after them under the same rules (requests, lifecycle, faults,
    starting fleet, observe-only window), each reported under its key: what a benchmark uses to
    put a variant (a differently configured oracle, a tuned policy) on the same table.
    ``configure(name, policy)`` may return a changed copy of each named policy as it was built
    (``dataclasses.replace`` of a setting), for measuring a setting against the same anchors."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise UserError(f"duration must be > 0 seconds, got {duration_s!r}")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise UserError(f"unknown policy {', '.join(unknown)}; known: {', '.join(POLICIES)}")
    extra = dict(extra_policies or {})
    taken = sorted(set(extra) & set(policies))
    if taken:
        raise UserError(f"extra policy name {', '.join(taken)} is already a named policy here")
    sc = get_scenario(scenario)
    rd = scenario_deployment(resolved, sc, duration_s, deployment)
    d = rd.deployment
    pricing = d.pricing
    cfg = lifecycle or LifecycleConfig()
    if lead_time_s is not None:
        try:
            cfg = cfg.with_lead_time(rd.perf, rd.gpu.name, pricing, lead_time_s)
        except ValueError as e:
            raise UserError(f"--lead-time: {e}") from None
    prices = {pricing: rd.usd_per_gpu_hour}
    if pricing == "spot":
        prices["on-demand"] = _price_of(resolved, rd, "on-demand")
    assert d.traffic is not None
    requests = generate(d.traffic, duration_s, seed)
    if len(requests) == 0:
        raise UserError(f"scenario '{scenario}' produced no request in {duration_s:g} s")
    mix = TokenMix.from_samples(requests.input_tokens, requests.output_tokens)
    load_test = load_test_for(rd, requests)
    cal = calibrate(rd, requests, seed, load_test)
    cold_lead = cfg.cold_lead_s(rd.perf, rd.gpu.name, pricing)
    cold_lead_p90 = cfg.cold_lead_s(rd.perf, rd.gpu.name, pricing, q=0.9)
    first_min = float(np.sum(requests.arrival_s < 60.0)) / min(60.0, duration_s)
    initial = min(max(d.replicas.min, math.ceil(first_min / cal.replica_slo_rps)), d.replicas.max)
    runs: dict[str, AutoscaleRun] = {}
    rows: list[PolicyRow] = []
    faults = sc.fault_events(duration_s)
    named = (
        (
            name,
            build_policy(
                name,
                rd=rd,
                calibration=cal,
                mix=mix,
                traffic=d.traffic,
                duration_s=duration_s,
                arrivals_s=requests.arrival_s,
                cold_lead_s=cold_lead_p90,
                load_test=load_test,
            ),
        )
        for name in policies
    )
    for name, pol in (*named, *extra.items()):
        if configure is not None and name not in extra:
            pol = configure(name, pol)
        start = initial
        if isinstance(pol, FixedPolicy):
            start = min(pol.replicas, d.replicas.max)
        run = simulate_autoscaled(
            rd,
            requests,
            pol,
            duration_s=duration_s,
            seed=seed,
            initial_replicas=start,
            lifecycle=cfg,
            faults=faults,
            pricing=pricing,
            prices_usd_per_gpu_hour=prices,
            signal_interval_s=signal_interval_s,
            observe_only_s=observe_only_s,
        )
        runs[name] = run
        rows.append(replace(summarize_run(run), policy=name))
    if "oracle" in runs:
        oc = runs["oracle"].billing.usd
        rows = [
            PolicyRow(**{**asdict(r), "cost_vs_oracle": r.cost_usd / oc if oc > 0 else math.nan})
            for r in rows
        ]
    return Comparison(
        spec=resolved.spec.name,
        deployment=d.name,
        scenario=sc.name,
        scenario_description=sc.description,
        duration_s=duration_s,
        seed=seed,
        cold_lead_s=cold_lead,
        warm_lead_s=cfg.warm_lead_s(rd.perf),
        pricing=pricing,
        usd_per_gpu_hour=rd.usd_per_gpu_hour,
        slo=rd.slo.model_dump(mode="json") if rd.slo else None,
        calibration=cal,
        initial_replicas=initial,
        rows=rows,
        runs=runs,
        replica_slo_rps=cal.replica_slo_rps,
    )
