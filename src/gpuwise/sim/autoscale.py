"""One deployment under an autoscaling policy: the compiled loop in chunks, the policy between.

The loop: run the resumable kernel (``sim.chunked``) up to the next instant something must
happen (a policy tick, a replica becoming ready, a fault, or the next signal interval), then act
at that instant: kill replicas whose reclaim is due, apply faults, finish drains, time out
requests, route held ones, and on a tick hand the policy the signals so far and apply its
decision through the ``LifecycleManager``. The policy sees only ``Signals`` and a
``FleetState``, exactly what the live controller gives it.

Cost is what the lifecycle bills (every state a replica exists in, at its price), not ready
replica-time: a replica that provisions for two minutes and is cancelled still costs two minutes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gpuwise.policy.base import Decision, FleetState, Policy
from gpuwise.resolve import ResolvedDeployment
from gpuwise.signals import Signals
from gpuwise.sim.chunked import (
    CUR_HOLD_HEAD,
    CUR_HOLD_TAIL,
    CUR_INTERVAL,
    CUR_NEXT,
    N_CUR,
    expire_waiting,
    fail_replica,
    first_active,
    flush_hold,
    replica_idle,
    run_chunk,
)
from gpuwise.sim.engine import (
    C_BLOCK,
    C_CHUNKED,
    C_MAX_BATCHED,
    C_MAX_MODEL_LEN,
    C_MAX_SEQS,
    C_ROUTER,
    N_B,
    N_C,
    N_PF,
    N_PI,
    N_RF,
    N_RI,
    OUTCOME_OK,
    OUTCOME_PENDING,
    PF_AVAIL_FROM,
    PF_AVAIL_UNTIL,
    PF_CLOCK,
    PI_CAPACITY,
    PI_FREE,
    PI_HEAD,
    PI_TAIL,
    RF_ADMITTED,
    RF_ARRIVAL,
    RI_NEXT,
    RI_OUTCOME,
    RI_PREEMPTIONS,
    RI_PROMPT,
    RI_REPLICA,
    RI_TARGET,
    RI_TOKENS,
)
from gpuwise.sim.fleet import client_times
from gpuwise.sim.lifecycle import Billing, LifecycleConfig, LifecycleManager, ReplicaRecord
from gpuwise.sim.results import DeploymentRequests, grouped_percentiles, signal_row
from gpuwise.sim.router import probe_draws, router_code
from gpuwise.spec import Slo
from gpuwise.workload import Requests
from gpuwise.workload.scenarios import FaultEvent


@dataclass(frozen=True)
class DecisionRecord:
    t_s: float
    desired: int  # after clamping to the deployment's bounds
    warm_pool: int
    reason: str
    ready: int
    starting: int
    warm: int


@dataclass
class AutoscaleRun:
    """What one policy did to one deployment over one workload."""

    policy: str
    requests: DeploymentRequests
    retries: np.ndarray  # router retries per request
    signals: list[Signals]
    decisions: list[DecisionRecord]
    replicas: list[ReplicaRecord]
    billing: Billing
    span_s: float
    slo: Slo | None
    fault_log: list[str] = field(default_factory=list)

    @property
    def scale_events(self) -> int:
        """Decisions that changed the target, up or down."""
        n = 0
        prev = None
        for d in self.decisions:
            if prev is not None and d.desired != prev:
                n += 1
            prev = d.desired
        return n


# ---------------------------------------------------------------- the simulator's slots


class _KernelFleet:
    """The kernel's state arrays for one deployment, plus the slot operations of ``Slots``."""

    def __init__(
        self, rd: ResolvedDeployment, requests: Requests, seed: int, interval_s: float, cap: int
    ) -> None:
        d = rd.deployment
        self.cfg = np.zeros(N_C, dtype=np.int64)
        self.cfg[C_MAX_SEQS] = d.limits.max_num_seqs
        self.cfg[C_MAX_BATCHED] = d.limits.max_num_batched_tokens
        self.cfg[C_BLOCK] = d.limits.block_size
        self.cfg[C_MAX_MODEL_LEN] = rd.perf.memory.max_model_len
        self.cfg[C_CHUNKED] = 1 if d.limits.enable_chunked_prefill else 0
        self.cfg[C_ROUTER] = router_code(d.router)
        self.coeffs = rd.perf.coeff_vector()
        self.request_overhead_s = rd.perf.request_overhead_s  # added on the client's side
        self.cap = int(cap)
        self.interval_s = float(interval_s)
        n = len(requests)
        self.n = n
        self.arrival = np.array(requests.arrival_s, dtype=np.float64)
        self.prompt = np.array(requests.input_tokens, dtype=np.int64)
        self.output = np.array(requests.output_tokens, dtype=np.int64)
        self.draws = probe_draws(n, seed) if self.cfg[C_ROUTER] == 2 else np.zeros((n, 2))
        self.ri = np.zeros((n, N_RI), dtype=np.int64)
        self.ri[:, RI_PROMPT] = self.prompt
        self.ri[:, RI_TARGET] = self.output
        self.ri[:, RI_TOKENS] = self.prompt
        self.ri[:, RI_REPLICA] = -1
        self.ri[:, RI_OUTCOME] = OUTCOME_PENDING
        self.ri[:, RI_NEXT] = -1
        self.rf = np.full((n, N_RF), np.nan)
        self.rf[:, RF_ARRIVAL] = self.arrival
        self.max_seqs = int(self.cfg[C_MAX_SEQS])
        self.pi = np.zeros((0, N_PI), dtype=np.int64)
        self.pf = np.zeros((0, N_PF))
        self.running = np.zeros((0, self.max_seqs), dtype=np.int64)
        self.sched = np.zeros((0, self.max_seqs), dtype=np.int64)
        self.busy_end = np.zeros(0)
        self.bins = np.zeros((16, N_B))
        self.rr_next = np.zeros(1, dtype=np.int64)
        self.cursor = np.zeros(N_CUR, dtype=np.int64)
        self.retries = np.zeros(n, dtype=np.int64)
        self.retry_max = 0
        self.hold = np.zeros(0, dtype=np.int64)
        self.failed_by_kill = 0
        self.retried_by_kill = 0

    def set_retry_max(self, retry_max: int) -> None:
        self.retry_max = int(retry_max)
        self.hold = np.zeros(self.n * (1 + self.retry_max) + 1, dtype=np.int64)

    # Slots protocol
    def open(self, available_from_s: float) -> int:
        r = self.pi.shape[0]
        row_i = np.zeros((1, N_PI), dtype=np.int64)
        row_i[0, PI_HEAD] = -1
        row_i[0, PI_TAIL] = -1
        row_i[0, PI_CAPACITY] = self.cap
        row_i[0, PI_FREE] = self.cap
        row_f = np.zeros((1, N_PF))
        row_f[0, PF_AVAIL_FROM] = available_from_s
        row_f[0, PF_AVAIL_UNTIL] = np.inf
        row_f[0, PF_CLOCK] = available_from_s
        self.pi = np.concatenate([self.pi, row_i])
        self.pf = np.concatenate([self.pf, row_f])
        zeros = np.zeros((1, self.max_seqs), dtype=np.int64)
        self.running = np.concatenate([self.running, zeros])
        self.sched = np.concatenate([self.sched, zeros])
        self.busy_end = np.append(self.busy_end, available_from_s)
        return r

    def close(self, slot: int, at_s: float) -> None:
        if self.pf[slot, PF_AVAIL_UNTIL] > at_s:
            self.pf[slot, PF_AVAIL_UNTIL] = at_s

    def kill(self, slot: int, at_s: float) -> None:
        failed, retried = fail_replica(
            at_s,
            slot,
            self.retry_max,
            self.ri,
            self.rf,
            self.pi,
            self.pf,
            self.running,
            self.cursor,
            self.hold,
            self.retries,
        )
        self.failed_by_kill += failed
        self.retried_by_kill += retried

    def idle_since(self, slot: int) -> float | None:
        if not replica_idle(self.pi, slot):
            return None
        return float(self.busy_end[slot])

    # kernel calls
    def run_to(self, t_end: float) -> None:
        self.bins = run_chunk(
            t_end,
            self.arrival,
            self.prompt,
            self.output,
            self.draws,
            self.ri,
            self.rf,
            self.pi,
            self.pf,
            self.running,
            self.sched,
            self.cfg,
            self.coeffs,
            self.cap,
            self.bins,
            self.interval_s,
            self.rr_next,
            self.cursor,
            self.hold,
            self.busy_end,
        )

    def flush(self, t: float) -> None:
        flush_hold(
            t,
            self.draws,
            self.ri,
            self.pi,
            self.pf,
            self.running,
            self.cfg,
            self.coeffs,
            self.rr_next,
            self.cursor,
            self.hold,
        )

    def expire(self, t: float, timeout_s: float) -> None:
        expire_waiting(t, timeout_s, self.ri, self.rf, self.pi, self.cursor, self.hold)

    def held(self) -> int:
        return int(self.cursor[CUR_HOLD_TAIL] - self.cursor[CUR_HOLD_HEAD])

    def records(self, name: str) -> DeploymentRequests:
        ri, rf = self.ri, self.rf
        first, finish = client_times(rf, ri, self.request_overhead_s)
        return DeploymentRequests(
            deployment=name,
            arrival_s=self.arrival,
            input_tokens=self.prompt,
            output_tokens=self.output,
            admitted_s=rf[:, RF_ADMITTED].copy(),
            first_token_s=first,
            finish_s=finish,
            replica=ri[:, RI_REPLICA].astype(np.int32),
            preemptions=ri[:, RI_PREEMPTIONS].astype(np.int32),
            outcome=ri[:, RI_OUTCOME].astype(np.int8),
        )


# ---------------------------------------------------------------- signals, incrementally


def _signal_rows(
    fleet: _KernelFleet,
    name: str,
    k0: int,
    k1: int,
    lo: int,
    hi: int,
    tp: int,
    counts: Sequence[dict[str, float]],
) -> list[Signals]:
    """Signals of intervals ``[k0, k1)`` from the bins and requests ``[lo, hi)``.

    Every event of those intervals belongs to a request in ``[lo, hi)`` when ``lo`` is the first
    request unfinished at the start of interval ``k0`` and ``hi`` the first not yet arrived at
    its end; so each tick reads a short slice, not the whole run. ``counts`` gives the lifecycle
    counts (starting, warm, gpus) per interval.
    """
    nb = k1 - k0
    if nb <= 0:
        return []
    dt = fleet.interval_s
    bins = fleet.bins[k0:k1]
    edges = (np.arange(k0, k1 + 1)) * dt
    # arrivals in (k*dt, (k+1)*dt]; instants at 0 count in interval 0, as interval_index does
    cuts = np.searchsorted(fleet.arrival, edges, side="right")
    if k0 == 0:
        cuts[0] = 0
    arrivals = np.diff(cuts)
    ri, rf = fleet.ri[lo:hi], fleet.rf[lo:hi]
    outcome = ri[:, RI_OUTCOME]
    ok = outcome == OUTCOME_OK
    first, finish = client_times(rf, ri, fleet.request_overhead_s)
    arrival = rf[:, RF_ARRIVAL]

    def local(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.ceil(t / dt).astype(np.int64) - 1
        k = np.maximum(k, 0)
        keep = (k >= k0) & (k < k1)
        return k[keep] - k0, keep

    bad = (outcome != OUTCOME_OK) & (outcome != OUTCOME_PENDING)  # rejected, failed, timed out
    kb, _ = local(finish[bad])
    errors = np.bincount(kb, minlength=nb)
    kf, keep_f = local(finish[ok])
    completed = np.bincount(kf, minlength=nb)
    has_first = ok & ~np.isnan(first)
    kt, keep_t = local(first[has_first])
    ttft = grouped_percentiles(kt, (first - arrival)[has_first][keep_t], nb, (50, 95, 99))
    steps = (ri[:, RI_TARGET] - 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot_all = np.where(steps > 0, (finish - first) / steps, np.nan)
    tpot = grouped_percentiles(kf, tpot_all[ok][keep_f], nb, (50, 95))
    e2e = grouped_percentiles(kf, (finish - arrival)[ok][keep_f], nb, (95,))
    return [
        signal_row(
            name,
            k0 + j,
            dt,
            bins[j],
            arrivals[j],
            completed[j],
            errors[j],
            ttft[j],
            tpot[j],
            e2e[j],
            starting=float(counts[j]["starting"]),
            warm=float(counts[j]["warm"]),
            gpus=float(counts[j]["gpus"]),
        )
        for j in range(nb)
    ]


def lifecycle_counts_at(
    records: Sequence[ReplicaRecord], times_s: np.ndarray, tp: int
) -> dict[str, np.ndarray]:
    """Replicas starting / warm / draining and GPUs billed at each instant, vectorised."""
    from gpuwise.sim.lifecycle import BILLED_STATES, STARTING_STATES

    spans: dict[str, list[tuple[float, float]]] = {
        "starting": [],
        "warm": [],
        "draining": [],
        "billed": [],
    }
    for rec in records:
        ph = rec.phases
        for j, (s, start) in enumerate(ph):
            end = ph[j + 1][1] if j + 1 < len(ph) else math.inf
            if end <= start:
                continue
            if s in BILLED_STATES:
                spans["billed"].append((start, end))
            if s == "warm" or (rec.bound == "warm" and s in STARTING_STATES):
                spans["warm"].append((start, end))
            elif s in STARTING_STATES or s == "activating":
                spans["starting"].append((start, end))
            elif s == "draining":
                spans["draining"].append((start, end))
    out: dict[str, np.ndarray] = {}
    for key, sp in spans.items():
        if not sp:
            out[key] = np.zeros(times_s.shape)
            continue
        a = np.array(sp)
        starts = np.sort(a[:, 0])
        ends = np.sort(a[:, 1])
        out[key] = (
            np.searchsorted(starts, times_s, side="right")
            - np.searchsorted(ends, times_s, side="right")
        ).astype(float)
    out["gpus"] = out.pop("billed") * tp
    return out


# ---------------------------------------------------------------- the loop


def simulate_autoscaled(
    rd: ResolvedDeployment,
    requests: Requests,
    policy: Policy,
    *,
    duration_s: float,
    seed: int,
    initial_replicas: int,
    initial_warm: int = 0,
    lifecycle: LifecycleConfig | None = None,
    faults: Sequence[FaultEvent] = (),
    pricing: str | None = None,
    prices_usd_per_gpu_hour: dict[str, float] | None = None,
    signal_interval_s: float = 1.0,
    kv_capacity_blocks: int | None = None,
    observe_only_s: float = 0.0,
) -> AutoscaleRun:
    """Run ``requests`` through deployment ``rd`` with ``policy`` scaling it; see module doc.

    The fleet starts with ``initial_replicas`` ready (and ``initial_warm`` in the pool) at 0 s;
    the run ends when the arrival window is over and every request has ended. ``pricing``
    overrides the deployment's pricing kind; ``prices_usd_per_gpu_hour`` gives the price of
    each kind the lifecycle may use (on-demand fallback for spot), defaulting to the
    deployment's own price for all. For the first ``observe_only_s`` seconds the policy is
    consulted (it fills its windows) but its decisions are not applied: a simulation starts from
    empty engines, and a controller that has watched a running fleet would not react to that.
    """
    d = rd.deployment
    cfg = lifecycle or LifecycleConfig()
    kind = pricing or d.pricing
    prices = dict(prices_usd_per_gpu_hour or {})
    prices.setdefault(kind, rd.usd_per_gpu_hour)
    cap = int(kv_capacity_blocks or rd.perf.memory.kv_capacity_blocks)
    fleet = _KernelFleet(rd, requests, seed, signal_interval_s, cap)
    fleet.set_retry_max(cfg.retry_max)
    mgr = LifecycleManager(
        config=cfg,
        perf=rd.perf,
        gpu=rd.gpu.name,
        tp=d.tp,
        pricing=kind,
        prices_usd_per_gpu_hour=prices,
        slots=fleet,
        seed=seed,
    )
    mgr.add_ready(0.0, initial_replicas)
    mgr.add_warm(0.0, initial_warm)
    mgr.warm_target = initial_warm
    policy.reset()
    cold_lead = cfg.cold_lead_s(rd.perf, rd.gpu.name, kind)
    warm_lead = cfg.warm_lead_s(rd.perf)
    price_rep = prices[kind] * d.tp
    pending_faults = sorted(faults, key=lambda f: f.at_s)
    fault_log: list[str] = []
    history: list[Signals] = []
    decisions: list[DecisionRecord] = []
    desired = initial_replicas
    window_end = max(float(duration_s), requests.end_s)
    dt = float(signal_interval_s)
    interval = float(policy.interval_s)
    next_tick = interval
    k_done = 0
    lo_prev = 0
    lo = 0
    t = 0.0
    n = fleet.n
    while True:
        lo = first_active(fleet.ri, fleet.rf, lo, int(fleet.cursor[CUR_NEXT]), math.inf)
        if t >= window_end and lo >= n:
            break
        t_next = min(
            next_tick,
            pending_faults[0].at_s if pending_faults else math.inf,
            mgr.next_event_s(t),
            (math.floor(t / dt + 1e-9) + 1) * dt,
        )
        fleet.run_to(t_next)
        t = t_next
        mgr.kill_due(t)
        while pending_faults and pending_faults[0].at_s <= t:
            f = pending_faults.pop(0)
            if f.kind == "node-failure":
                ready = mgr.fleet_counts(t)["ready"]
                ids = mgr.fail(t, max(1, math.ceil(f.share * ready - 1e-9)))
                fault_log.append(f"{t:.0f} s: node failure took {len(ids)} ready replica(s)")
            elif f.kind == "spot-preemption":
                spot = mgr.spot_live(t)
                n_hit = max(1, math.ceil(f.share * spot - 1e-9))
                ids = mgr.preempt(t, n_hit, f.notice_s, f.outage_s)
                fault_log.append(
                    f"{t:.0f} s: spot reclaim of {len(ids)} replica(s), {f.notice_s:g} s notice, "
                    f"spot capacity out for {f.outage_s:g} s"
                )
            else:
                raise ValueError(f"unknown fault kind '{f.kind}'")
        mgr.poll(t)
        fleet.expire(t, cfg.request_timeout_s)
        fleet.flush(t)
        if t >= next_tick - 1e-9:
            k_now = int(fleet.cursor[CUR_INTERVAL])
            c = mgr.fleet_counts(t)
            gpus = mgr.gpus_billed(t)
            cnt = {"starting": c["starting"], "warm": c["warm"], "gpus": gpus}
            history.extend(
                _signal_rows(
                    fleet,
                    d.name,
                    k_done,
                    k_now,
                    lo_prev,
                    int(fleet.cursor[CUR_NEXT]),
                    d.tp,
                    [cnt] * (k_now - k_done),
                )
            )
            k_done = k_now
            lo_prev = first_active(
                fleet.ri, fleet.rf, lo_prev, int(fleet.cursor[CUR_NEXT]), k_now * dt
            )
            state = FleetState(
                deployment=d.name,
                now_s=t,
                desired=desired,
                ready=c["ready"],
                starting=c["starting"],
                warm=c["warm"],
                draining=c["draining"],
                min_replicas=d.replicas.min,
                max_replicas=d.replicas.max,
                cold_lead_s=cold_lead,
                warm_lead_s=warm_lead,
                usd_per_replica_hour=price_rep,
                warm_usd_per_replica_hour=price_rep * cfg.warm_price_fraction,
                spot=mgr.spot_live(t),
            )
            dec: Decision = policy.decide(t, history, state)
            reason = dec.reason
            if t >= observe_only_s - 1e-9:
                desired = state.clamp(dec.desired_replicas)
                mgr.scale(t, desired, max(0, int(dec.warm_pool)))
            else:
                reason = f"observing (not applied): {reason}"
            decisions.append(
                DecisionRecord(
                    t, desired, int(dec.warm_pool), reason, c["ready"], c["starting"], c["warm"]
                )
            )
            next_tick += interval
            fleet.flush(t)
    span = t
    records = fleet.records(d.name)
    billing = mgr.bill(span)
    nb = int(fleet.cursor[CUR_INTERVAL])
    ends = (np.arange(nb) + 1) * dt
    lc = lifecycle_counts_at(mgr.records, ends, d.tp)
    counts = [
        {"starting": lc["starting"][j], "warm": lc["warm"][j], "gpus": lc["gpus"][j]}
        for j in range(nb)
    ]
    signals = _signal_rows(fleet, d.name, 0, nb, 0, n, d.tp, counts)
    if n and (records.outcome < 0).any():  # the loop's contract; a violation is a bug
        raise RuntimeError(f"{d.name}: {(records.outcome < 0).sum()} requests never finished")
    return AutoscaleRun(
        policy=policy.name,
        requests=records,
        retries=fleet.retries.copy(),
        signals=signals,
        decisions=decisions,
        replicas=mgr.records,
        billing=billing,
        span_s=span,
        slo=rd.slo,
        fault_log=fault_log,
    )
