"""Replica lifecycle: what happens between "we want one more replica" and it serving, and after.

A GPU replica is not a process that starts in a second. It is requested, waits for capacity
(spot capacity can be unavailable), its node is provisioned, the engine image is pulled, the
weights are read into GPU memory (model bytes over storage bandwidth, from the performance
model), the engine warms up (CUDA graphs, profiling run), and only then is it ready. Scaling down
drains it: no new requests, in-flight ones finish, then it is gone. A **warm pool** keeps replicas
provisioned with weights staged in host memory, so activating one skips provisioning, the pull
and the slow read; a warm replica holds its GPU, so it is billed like one.

Every state a replica passes through is kept as a timeline of ``(state, start_s)`` phases, so
billing is a sum over phases: every second from the start of provisioning to "gone" is paid at
its state's price, and nothing else is. The durations are drawn when a replica is requested, from
a seed, so a run is reproducible. The manager never touches the simulator's arrays itself; it
asks a ``Slots`` object (the driver's) to open, close or kill a serving slot.

Provisioning times and capacity shortfalls are **assumptions** (no public dataset gives them per
GPU type): the defaults below are in the range users report for GPU node scale-up (llm-d and WVA
docs: pod ready in 2-8 minutes, of which node provisioning is the first; see
``reference/autoscaling.md`` (d)). Override them per GPU type and pricing kind, or use
:meth:`LifecycleConfig.with_lead_time` to pin the total scale-up lead time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from gpuwise.perf.model import ReplicaPerf

State = Literal[
    "requested",  # waiting for capacity (not billed)
    "provisioning",  # node being created and booted
    "pulling",  # engine image pull
    "loading",  # weights into GPU memory (or into host memory for the warm pool)
    "warming",  # engine warm-up: CUDA graphs, profiling run
    "warm",  # in the warm pool: GPU held, weights staged, engine asleep
    "activating",  # warm -> ready: weights from host memory to GPU, warm-up
    "ready",
    "draining",  # no new requests; in-flight ones finish
    "gone",
]
STATES: tuple[str, ...] = State.__args__  # type: ignore[attr-defined]
BILLED_STATES = frozenset(STATES) - {"requested", "gone"}
STARTING_STATES = frozenset({"requested", "provisioning", "pulling", "loading", "warming"})


@dataclass(frozen=True)
class Duration:
    """A lognormal duration given by its median and coefficient of variation (0: fixed)."""

    median_s: float
    cv: float = 0.0

    def draw(self, rng: np.random.Generator) -> float:
        if self.cv <= 0:
            return float(self.median_s)
        sigma = math.sqrt(math.log1p(self.cv**2))
        return float(self.median_s * math.exp(sigma * rng.standard_normal()))

    def quantile(self, q: float) -> float:
        if self.cv <= 0:
            return float(self.median_s)
        from statistics import NormalDist

        sigma = math.sqrt(math.log1p(self.cv**2))
        return float(self.median_s * math.exp(sigma * NormalDist().inv_cdf(q)))


@dataclass(frozen=True)
class Capacity:
    """How often a request for a node finds none, and how long until it asks again."""

    unavailable_p: float = 0.0
    retry_s: float = 60.0
    max_retries: int = 10


# Assumptions (see module doc): node provisioning by pricing kind, any GPU type.
DEFAULT_PROVISION = {
    "on-demand": Duration(90.0, 0.3),
    "spot": Duration(75.0, 0.4),
    "reserved": Duration(45.0, 0.2),
}
DEFAULT_CAPACITY = {
    "on-demand": Capacity(0.0),
    "spot": Capacity(0.1, 60.0),
    "reserved": Capacity(0.0),
}


@dataclass(frozen=True)
class LifecycleConfig:
    """How replicas start, idle and stop; times in seconds, sizes in bytes.

    ``provision`` is keyed by pricing kind, or by ``"gpu/pricing"`` for one GPU type.
    ``request_timeout_s`` is the client's patience for a first token while queued;
    ``retry_max`` is how many times the router re-sends a request lost with its replica before
    it has streamed anything.
    """

    provision: Mapping[str, Duration] = field(default_factory=lambda: dict(DEFAULT_PROVISION))
    capacity: Mapping[str, Capacity] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    image_bytes: float = 10e9  # a vLLM CUDA image is 8-10 GB
    image_pull_bytes_per_s: float = 400e6
    weight_storage: str = "network"
    warm_storage: str = "host-memory"
    warmup_s: float | None = None  # default: the performance profile's engine_warmup_s
    warm_price_fraction: float = 1.0  # a warm replica holds its GPU
    request_timeout_s: float = 60.0
    retry_max: int = 1
    spot_ondemand_fallback: bool = True

    def provision_for(self, gpu: str, pricing: str) -> Duration:
        key = f"{gpu}/{pricing}"
        if key in self.provision:
            return self.provision[key]
        return self.provision.get(pricing, DEFAULT_PROVISION["on-demand"])

    def capacity_for(self, pricing: str) -> Capacity:
        return self.capacity.get(pricing, Capacity())

    def with_lead_time(
        self, perf: ReplicaPerf, gpu: str, pricing: str, lead_s: float, cv: float = 0.1
    ) -> LifecycleConfig:
        """The same lifecycle with provisioning set so the median scale-up lead time is ``lead_s``.

        The lead time is request to ready with capacity available: provisioning + pull + weight
        load + warm-up. Raises ValueError when the fixed parts alone exceed ``lead_s``.
        """
        fixed = self.fixed_lead_s(perf)
        if lead_s <= fixed:
            raise ValueError(
                f"a {lead_s:g} s lead time is shorter than image pull + weight load + warm-up "
                f"({fixed:.0f} s)"
            )
        prov = dict(self.provision)
        prov[f"{gpu}/{pricing}"] = Duration(lead_s - fixed, cv)
        return replace(self, provision=prov)

    def fixed_lead_s(self, perf: ReplicaPerf) -> float:
        """The lead time with no time spent provisioning: image pull, weight load, warm-up."""
        return self.pull_s() + perf.load_time_s(self.weight_storage) + self.warmup_for(perf)

    def pull_s(self) -> float:
        return self.image_bytes / self.image_pull_bytes_per_s

    def warmup_for(self, perf: ReplicaPerf) -> float:
        return perf.profile.engine_warmup_s if self.warmup_s is None else self.warmup_s

    def cold_lead_s(self, perf: ReplicaPerf, gpu: str, pricing: str, q: float = 0.5) -> float:
        """Request to ready at quantile ``q`` of provisioning, capacity available."""
        return (
            self.provision_for(gpu, pricing).quantile(q)
            + self.pull_s()
            + perf.load_time_s(self.weight_storage)
            + self.warmup_for(perf)
        )

    def warm_lead_s(self, perf: ReplicaPerf) -> float:
        """Warm pool to ready: weights from host memory to the GPU, then warm-up."""
        return perf.load_time_s(self.warm_storage) + self.warmup_for(perf)


@dataclass
class ReplicaRecord:
    """One replica's life as phases; the last phase is "gone" once it is gone."""

    id: int
    pricing: str
    usd_per_gpu_hour: float
    bound: Literal["ready", "warm"]  # where its start-up leads
    phases: list[tuple[str, float]]
    slot: int = -1  # the simulator's serving slot, while it has one
    kill_s: float = math.inf  # a spot reclaim or failure scheduled at this instant

    def state_at(self, t: float) -> str:
        state = self.phases[0][0]
        for s, start in self.phases:
            if start <= t:
                state = s
            else:
                break
        return state

    @property
    def gone_s(self) -> float:
        s, start = self.phases[-1]
        return start if s == "gone" else math.inf

    @property
    def ready_s(self) -> float:
        for s, start in self.phases:
            if s == "ready":
                return start
        return math.inf

    def truncate(self, t: float, then: str) -> None:
        """Drop phases planned after ``t`` and enter ``then`` at ``t``."""
        self.phases = [(s, start) for s, start in self.phases if start < t]
        if not self.phases or self.phases[-1][0] != then:
            self.phases.append((then, t))

    def state_seconds(self, until_s: float) -> dict[str, float]:
        """Seconds spent in each state up to ``until_s``."""
        out: dict[str, float] = {}
        for j, (s, start) in enumerate(self.phases):
            end = self.phases[j + 1][1] if j + 1 < len(self.phases) else until_s
            end = min(end, until_s)
            if end > start:
                out[s] = out.get(s, 0.0) + end - start
        return out


class Slots(Protocol):
    """The simulator side: serving slots whose availability windows the manager sets."""

    def open(self, available_from_s: float) -> int: ...

    def close(self, slot: int, at_s: float) -> None: ...  # no new requests from at_s

    def kill(self, slot: int, at_s: float) -> None: ...  # the node dies: in-flight lost

    def idle_since(self, slot: int) -> float | None: ...  # None while it has work


@dataclass(frozen=True)
class Billing:
    """GPU-seconds and dollars per state; ``usd`` is the total bill."""

    gpu_s: dict[str, float]
    usd_by_state: dict[str, float]
    usd: float

    @property
    def gpu_hours(self) -> float:
        return sum(self.gpu_s.values()) / 3600.0


class LifecycleManager:
    """Applies scaling decisions to a deployment's replicas and keeps their timelines.

    Deterministic: durations come from one generator seeded by ``seed``, drawn in the order
    replicas are requested.
    """

    def __init__(
        self,
        *,
        config: LifecycleConfig,
        perf: ReplicaPerf,
        gpu: str,
        tp: int,
        pricing: str,
        prices_usd_per_gpu_hour: Mapping[str, float],
        slots: Slots,
        seed: int,
    ) -> None:
        self.config = config
        self.perf = perf
        self.gpu = gpu
        self.tp = tp
        self.pricing = pricing
        self.prices = dict(prices_usd_per_gpu_hour)
        self.slots = slots
        self.rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x11FE,)))
        self.records: list[ReplicaRecord] = []
        self.outage_until: dict[str, float] = {}
        self.warm_target = 0
        self.starts = 0
        self.stops = 0

    # ---------------------------------------------------------------- queries

    def count(self, t: float) -> dict[str, int]:
        """Replicas in each state at ``t`` (records that are gone are not counted)."""
        out = {s: 0 for s in STATES}
        for r in self.records:
            out[r.state_at(t)] += 1
        return out

    def fleet_counts(self, t: float) -> dict[str, int]:
        """ready / starting (toward serving) / warm (incl. on its way to the pool) / draining."""
        ready = starting = warm = draining = 0
        for r in self._live(t):
            s = r.state_at(t)
            if s == "ready":
                ready += 1
            elif s == "draining":
                draining += 1
            elif s == "warm" or (r.bound == "warm" and s in STARTING_STATES):
                warm += 1
            else:
                starting += 1
        return {"ready": ready, "starting": starting, "warm": warm, "draining": draining}

    def spot_live(self, t: float) -> int:
        """Spot replicas alive at ``t`` and not already under a reclaim notice."""
        return sum(1 for r in self._live(t) if r.pricing == "spot" and r.kill_s == math.inf)

    def gpus_billed(self, t: float) -> int:
        return sum(self.tp for r in self.records if r.state_at(t) in BILLED_STATES)

    def next_event_s(self, after_s: float) -> float:
        """The next instant after ``after_s`` at which a replica becomes ready or is killed."""
        best = math.inf
        for r in self.records:
            if r.gone_s <= after_s:
                continue
            if after_s < r.ready_s < best and r.slot >= 0:
                best = r.ready_s
            if after_s < r.kill_s < best:
                best = r.kill_s
        return best

    def _live(self, t: float) -> Iterable[ReplicaRecord]:
        return (r for r in self.records if r.gone_s > t)

    # ---------------------------------------------------------------- starting

    def _price(self, pricing: str) -> float:
        return self.prices.get(pricing, self.prices[self.pricing])

    def _pricing_now(self, t: float) -> str:
        p = self.pricing
        if self.outage_until.get(p, -math.inf) > t and self.config.spot_ondemand_fallback:
            return "on-demand" if p == "spot" else p
        return p

    def _cold_phases(self, t: float, pricing: str, bound: str) -> list[tuple[str, float]]:
        cfg = self.config
        cap = cfg.capacity_for(pricing)
        wait = max(0.0, self.outage_until.get(pricing, -math.inf) - t)
        for _ in range(cap.max_retries):
            if cap.unavailable_p > 0 and self.rng.random() < cap.unavailable_p:
                wait += cap.retry_s
            else:
                break
        prov = cfg.provision_for(self.gpu, pricing).draw(self.rng)
        phases: list[tuple[str, float]] = []
        clock = t
        if wait > 0:
            phases.append(("requested", clock))
            clock += wait
        for state, dur in (
            ("provisioning", prov),
            ("pulling", cfg.pull_s()),
            # the warm pool stages weights in host memory over the same link
            ("loading", self.perf.load_time_s(cfg.weight_storage)),
        ):
            phases.append((state, clock))
            clock += dur
        if bound == "warm":
            phases.append(("warm", clock))
        else:
            phases.append(("warming", clock))
            clock += cfg.warmup_for(self.perf)
            phases.append(("ready", clock))
        return phases

    def add_ready(self, t: float, n: int) -> None:
        """Replicas already serving at ``t`` (a run's starting fleet): no start-up billed."""
        for _ in range(n):
            rec = self._new("ready", [("ready", t)], self.pricing)
            rec.slot = self.slots.open(t)

    def add_warm(self, t: float, n: int) -> None:
        for _ in range(n):
            self._new("warm", [("warm", t)], self.pricing)

    def _new(self, bound: str, phases: list[tuple[str, float]], pricing: str) -> ReplicaRecord:
        rec = ReplicaRecord(
            id=len(self.records),
            pricing=pricing,
            usd_per_gpu_hour=self._price(pricing),
            bound=bound,  # type: ignore[arg-type]
            phases=phases,
        )
        self.records.append(rec)
        return rec

    def _start_cold(self, t: float, bound: str) -> ReplicaRecord:
        pricing = self._pricing_now(t)
        rec = self._new(bound, self._cold_phases(t, pricing, bound), pricing)
        if bound == "ready":
            rec.slot = self.slots.open(rec.ready_s)
        self.starts += 1
        return rec

    def _activate(self, t: float, rec: ReplicaRecord) -> None:
        ready_at = t + self.config.warm_lead_s(self.perf)
        rec.truncate(t, "activating")
        rec.phases.append(("ready", ready_at))
        rec.bound = "ready"
        rec.slot = self.slots.open(ready_at)

    # ---------------------------------------------------------------- scaling

    def scale(self, t: float, desired: int, warm: int) -> dict[str, int]:
        """Move toward ``desired`` serving replicas (ready + starting) and ``warm`` in the pool.

        Up: activate warm replicas first (fast), then request cold ones. Down: cancel those still
        starting (the latest first), then drain ready ones (the newest first, as a ReplicaSet
        does). Returns what was done, by kind.
        """
        done = {"activated": 0, "started": 0, "cancelled": 0, "drained": 0, "warm_added": 0}
        live = [r for r in self._live(t) if r.kill_s > t]
        serving = [
            r
            for r in live
            if r.bound == "ready" and r.state_at(t) not in ("draining", "warm", "gone")
        ]
        diff = desired - len(serving)
        if diff > 0:
            pool = [r for r in live if r.state_at(t) == "warm"]
            for rec in pool[:diff]:
                self._activate(t, rec)
                done["activated"] += 1
            for _ in range(diff - min(diff, len(pool))):
                self._start_cold(t, "ready")
                done["started"] += 1
        elif diff < 0:
            starting = sorted(
                (r for r in serving if r.state_at(t) != "ready"), key=lambda r: -r.ready_s
            )
            ready = sorted(
                (r for r in serving if r.state_at(t) == "ready"),
                key=lambda r: (-r.ready_s, -r.id),
            )
            for rec in (starting + ready)[:-diff]:
                if rec.state_at(t) == "ready":
                    rec.truncate(t, "draining")
                    self.slots.close(rec.slot, t)
                    done["drained"] += 1
                else:
                    rec.truncate(t, "gone")
                    if rec.slot >= 0:
                        self.slots.close(rec.slot, t)
                        rec.slot = -1
                    done["cancelled"] += 1
                self.stops += 1
        self.warm_target = max(0, warm)
        done["warm_added"] = self._fill_pool(t)
        return done

    def _fill_pool(self, t: float) -> int:
        live = [r for r in self._live(t) if r.kill_s > t]
        pool = [r for r in live if r.bound == "warm"]
        draining = sum(1 for r in live if r.state_at(t) == "draining")
        short = self.warm_target - len(pool) - draining  # drained replicas refill the pool
        added = 0
        if short > 0:
            for _ in range(short):
                self._start_cold(t, "warm")
                added += 1
        elif len(pool) > self.warm_target:
            # release the surplus, those still starting first
            surplus = len(pool) - self.warm_target
            order = sorted(pool, key=lambda r: (r.state_at(t) == "warm", -r.id))
            for rec in order[:surplus]:
                rec.truncate(t, "gone")
        return added

    # ---------------------------------------------------------------- time passing

    def poll(self, t: float) -> None:
        """Finish drains that completed by ``t``; a drained replica refills the pool if short."""
        for rec in self.records:
            if rec.state_at(t) != "draining" or rec.gone_s <= t:
                continue
            idle = self.slots.idle_since(rec.slot)
            if idle is None:
                continue
            done_s = max(idle, rec.phases[-1][1])
            pool = sum(
                1
                for r in self._live(t)
                if r.bound == "warm" and r.state_at(t) != "gone" and r.kill_s > t
            )
            if rec.kill_s == math.inf and pool < self.warm_target:
                rec.phases.append(("warm", done_s))
                rec.bound = "warm"
            else:
                rec.phases.append(("gone", done_s))
            rec.slot = -1

    def kill_due(self, t: float) -> None:
        """Kill the replicas whose reclaim or failure instant is ``t`` or earlier."""
        for rec in self.records:
            if rec.kill_s <= t and rec.gone_s > rec.kill_s:
                if rec.slot >= 0:
                    self.slots.kill(rec.slot, rec.kill_s)
                    rec.slot = -1
                rec.truncate(rec.kill_s, "gone")

    # ---------------------------------------------------------------- faults

    def fail(self, t: float, n: int) -> list[int]:
        """``n`` ready replicas' nodes die at ``t`` (the oldest first); returns their ids."""
        ready = [r for r in self.records if r.state_at(t) == "ready" and r.gone_s > t]
        ready.sort(key=lambda r: (r.ready_s, r.id))
        hit = ready[:n]
        for rec in hit:
            rec.kill_s = t
        self.kill_due(t)
        return [r.id for r in hit]

    def preempt(self, t: float, n: int, notice_s: float, outage_s: float) -> list[int]:
        """A spot reclaim: ``n`` spot replicas get a notice at ``t`` and die at ``t + notice_s``.

        Ready ones drain during the notice; any other state is released at once. Spot capacity
        is then unavailable for ``outage_s`` (replacements fall back to on-demand when allowed).
        """
        spot = [
            r for r in self.records if r.pricing == "spot" and r.gone_s > t and r.kill_s == math.inf
        ]
        spot.sort(key=lambda r: (r.state_at(t) != "ready", r.id))
        hit = spot[:n]
        for rec in hit:
            if rec.state_at(t) == "ready":
                rec.truncate(t, "draining")
                self.slots.close(rec.slot, t)
                rec.kill_s = t + notice_s
            else:
                if rec.slot >= 0:
                    self.slots.close(rec.slot, t)
                    rec.slot = -1
                rec.truncate(t, "gone")
        self.outage_until["spot"] = max(self.outage_until.get("spot", -math.inf), t + outage_s)
        return [r.id for r in hit]

    # ---------------------------------------------------------------- billing

    def bill(self, until_s: float) -> Billing:
        """Every billed second of every replica up to ``until_s``, at its state's price."""
        gpu_s: dict[str, float] = {s: 0.0 for s in sorted(BILLED_STATES)}
        usd: dict[str, float] = {s: 0.0 for s in sorted(BILLED_STATES)}
        for rec in self.records:
            for s, secs in rec.state_seconds(until_s).items():
                if s not in BILLED_STATES:
                    continue
                frac = self.config.warm_price_fraction if s == "warm" else 1.0
                gpu_s[s] += secs * self.tp
                usd[s] += secs * self.tp * rec.usd_per_gpu_hour * frac / 3600.0
        return Billing(gpu_s, usd, sum(usd.values()))
