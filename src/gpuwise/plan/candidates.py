"""What the planner may choose from: each deployment's demand and every replica that could serve it.

A candidate is one kind of replica with a price: a GPU type, a tensor-parallel degree, a weight and
KV precision, engine limits (max_num_seqs from the TPOT target, a token budget), a pricing kind,
and, per request-size bucket, the rate it sustains under the deployment's SLO. A *packed*
candidate is one GPU shared by two or three small deployments, each engine with its own share of
the memory (vLLM's gpu_memory_utilization) and the compute time-shared between them.

Why enumerate rather than search: the space is small once memory fit and dominance prune it (a
candidate that costs no less and serves no more in every bucket than another is dropped), and an
explicit list is what a mixed-integer program needs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gpuwise.catalog import Catalog, CatalogError
from gpuwise.catalog.types import Gpu, ModelArch
from gpuwise.errors import UserError
from gpuwise.perf import Profile, ReplicaConfig, ReplicaPerf
from gpuwise.perf.model import TP_DEGREES
from gpuwise.plan.buckets import Bucket, size_buckets
from gpuwise.plan.capacity import RowInputs, batch_limit, capacity_table
from gpuwise.resolve import ResolvedDeployment, ResolvedSpec
from gpuwise.spec import PricingKind, Slo, Spec, Traffic
from gpuwise.workload import Requests, generate, peak_rate_rps

TOKEN_BUDGETS = (2048, 8192)
SAMPLE_REQUESTS = 4000  # requests drawn to find a deployment's size mix
RATE_MARGIN = 0.9  # capacities are planned at this share of the analytic maximum


class PlanError(UserError):
    """A fleet the planner cannot build; the message names the deployment and what is reachable."""


# ----------------------------------------------------------------------------- demand


@dataclass(frozen=True)
class Demand:
    """What one deployment needs: its model, the peak rate, the size mix and the SLO."""

    name: str
    index: int
    model: ModelArch
    rate_rps: float  # the peak the fleet is sized for
    rate_note: str
    buckets: tuple[Bucket, ...]
    slo: Slo | None
    min_replicas: int
    max_model_len: int
    gpu_memory_utilization: float
    traffic: Traffic
    current: ResolvedDeployment

    @property
    def bucket_rates_rps(self) -> np.ndarray:
        return np.array([b.rate_rps for b in self.buckets])

    @property
    def mean_input_tokens(self) -> float:
        return float(sum(b.share * b.mean_input_tokens for b in self.buckets))

    @property
    def mean_output_tokens(self) -> float:
        return float(sum(b.share * b.mean_output_tokens for b in self.buckets))

    def targets(self) -> tuple[float, float, float, float]:
        """(tpot_s, ttft_s, e2e_s, percentile), inf where the SLO sets no target."""
        s = self.slo
        if s is None:
            return math.inf, math.inf, math.inf, 95.0
        inf = math.inf
        return (s.tpot_s or inf, s.ttft_s or inf, s.e2e_s or inf, s.percentile)


def peak_rate(traffic: Traffic) -> tuple[float, str]:
    """The rate a static fleet must carry: the rate, or a diurnal curve's or a ramp's peak."""
    a = traffic.arrival
    match a.kind:
        case "poisson":
            return a.rate_rps, f"Poisson {a.rate_rps:g} req/s"
        case "gamma":
            return a.rate_rps, f"bursty {a.rate_rps:g} req/s (cv {a.cv:g})"
        case "diurnal":
            return a.peak_rps, f"diurnal peak {a.peak_rps:g} req/s"
        case "ramp":
            r = max(a.start_rps, a.end_rps)
            return r, f"ramp to {r:g} req/s"
        case _:
            r = peak_rate_rps(traffic, 3600.0)
            return r, f"trace peak {r:.3g} req/s (first hour)"


def sample_requests(traffic: Traffic, rate_rps: float, seed: int) -> Requests:
    """A few thousand requests of the deployment's traffic, to read its size mix from."""
    duration = min(max(SAMPLE_REQUESTS / max(rate_rps, 1e-6), 60.0), 7 * 86_400.0)
    return generate(traffic, duration, seed)


def demand_for(rd: ResolvedDeployment, seed: int) -> Demand:
    d = rd.deployment
    if d.traffic is None:
        raise PlanError(
            f"deployments[{rd.index}] ({d.name}): no traffic given; the planner sizes a fleet "
            "for its traffic, so add a traffic section (see examples/)"
        )
    rate, note = peak_rate(d.traffic)
    sample = sample_requests(d.traffic, rate, seed + rd.index)
    if sample.arrival_s.size == 0:
        raise PlanError(f"deployments[{rd.index}] ({d.name}): the traffic yields no requests")
    pct = rd.slo.percentile if rd.slo is not None else 95.0
    buckets = size_buckets(sample, rate, percentile=pct)
    return Demand(
        name=d.name,
        index=rd.index,
        model=rd.model,
        rate_rps=rate,
        rate_note=note,
        buckets=tuple(buckets),
        slo=rd.slo,
        min_replicas=d.replicas.min,
        max_model_len=rd.perf.memory.max_model_len,
        gpu_memory_utilization=d.limits.gpu_memory_utilization,
        traffic=d.traffic,
        current=rd,
    )


# ----------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class EngineConfig:
    """One engine process: what a manifest passes to vLLM and what the perf model evaluates."""

    gpu: str
    tp: int
    weight_dtype: str  # bf16 | fp16 | fp8 | int4
    kv_dtype: str  # auto | fp8
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    max_model_len: int

    @property
    def quantized(self) -> bool:
        return self.weight_dtype not in ("bf16", "fp16") or self.kv_dtype == "fp8"

    def describe(self) -> str:
        kv = "" if self.kv_dtype == "auto" else f", {self.kv_dtype} KV"
        return (
            f"{self.tp}x {self.gpu} {self.weight_dtype}{kv}, max_num_seqs {self.max_num_seqs}, "
            f"budget {self.max_num_batched_tokens}"
        )


@dataclass(frozen=True)
class Member:
    """One deployment's engine on a candidate replica, with its capacity per bucket."""

    deployment: str
    engine: EngineConfig
    capacity_rps: tuple[float, ...]  # per bucket of the deployment; 0 = cannot meet the SLO
    ttft_s: tuple[float, ...]  # predicted at capacity
    tpot_s: tuple[float, ...]
    kv_capacity_tokens: int
    compute_share: float = 1.0  # of the GPU's FLOP/s and bandwidth (below 1 when packed)


@dataclass(frozen=True)
class Candidate:
    """A replica kind with a price: one member (dedicated) or 2-3 members sharing one GPU."""

    key: str
    gpu: str
    gpus: int  # GPUs per replica
    pricing: PricingKind
    usd_per_gpu_hour: float
    members: tuple[Member, ...]

    @property
    def usd_per_hour(self) -> float:
        return self.usd_per_gpu_hour * self.gpus

    @property
    def packed(self) -> bool:
        return len(self.members) > 1

    def member(self, deployment: str) -> Member | None:
        return next((m for m in self.members if m.deployment == deployment), None)


@dataclass(frozen=True)
class PlanOptions:
    """What the planner may change. Each switch is one of the ladder's recommendations."""

    gpus: tuple[str, ...] | None = None  # None: every priced GPU in the catalog
    quantize: bool = True  # fp8 (on GPUs with fp8 cores) and int4 weight-only
    packing: bool = True
    max_pack: int = 3
    token_budgets: tuple[int, ...] = TOKEN_BUDGETS
    seed: int = 0
    derate: dict[str, float] = field(default_factory=dict)  # deployment -> capacity factor


def gpu_price(spec: Spec, catalog: Catalog, gpu: str, pricing: PricingKind) -> float | None:
    """USD per GPU-hour: the spec's override, else the catalog's default, else None (unpriced)."""
    for o in spec.prices:
        try:
            if catalog.gpu(o.gpu).name == gpu and o.pricing == pricing:
                return o.usd_per_gpu_hour
        except CatalogError:
            continue
    try:
        return catalog.default_price(gpu, pricing).usd_per_gpu_hour
    except CatalogError:
        return None


def shared_gpu(gpu: Gpu, compute_share: float) -> Gpu:
    """The GPU as one engine of a packed replica sees it: a share of its FLOP/s and bandwidth.

    Why a fixed share: engines time-sliced on one GPU run their iterations in turn, so each one's
    iteration takes as long as its own work plus its neighbours'; on average that is the GPU
    running at the engine's share of the time. Memory is not scaled here (each engine's
    gpu_memory_utilization is its memory share).
    """
    if compute_share >= 1.0:
        return gpu
    return replace(
        gpu,
        flops_per_s={k: v * compute_share for k, v in gpu.flops_per_s.items()},
        memory_bandwidth_bytes_per_s=gpu.memory_bandwidth_bytes_per_s * compute_share,
    )


def _dtype16(gpu: Gpu) -> str:
    return "bf16" if "bf16" in gpu.flops_per_s else "fp16"


def precisions(gpu: Gpu, current: tuple[str, str], quantize: bool) -> list[tuple[str, str]]:
    """(weight dtype, kv dtype) pairs worth trying on this GPU.

    16-bit always; fp8 weights with an fp8 KV cache only where the GPU has fp8 tensor cores (the
    speed-up comes from them); int4 weight-only (AWQ/GPTQ via Marlin) anywhere. The deployment's
    own precision stays an option even when quantization is off: it is not a change.
    """
    out = [(_dtype16(gpu), "auto")]
    if current[0] not in ("bf16", "fp16") or current[1] == "fp8":
        out.append(current)
    if quantize:
        if "fp8" in gpu.flops_per_s:
            out.append(("fp8", "fp8"))
        out.append(("int4", "auto"))
    return list(dict.fromkeys(out))


def _config(demand: Demand, gpu: Gpu, tp: int, wd: str, kv: str, seqs: int, budget: int,
            util: float, catalog: Catalog) -> ReplicaConfig:  # fmt: skip
    return ReplicaConfig(
        model=demand.model,
        gpu=gpu,
        tp=tp,
        weight_dtype=wd,
        kv_dtype=kv,
        max_num_seqs=seqs,
        max_num_batched_tokens=budget,
        gpu_memory_utilization=util,
        max_model_len=demand.max_model_len,
    )


@dataclass(frozen=True)
class SizedEngine:
    """An engine configuration with its perf model, before capacities are evaluated."""

    engine: EngineConfig
    perf: ReplicaPerf


def size_engine(
    demand: Demand,
    gpu: Gpu,
    tp: int,
    wd: str,
    kv: str,
    budget: int,
    util: float,
    profile: Profile,
    catalog: Catalog,
    max_num_seqs: int | None = None,
) -> SizedEngine | None:
    """Pick max_num_seqs from the TPOT target, then check the memory fit; None if it does not."""
    base = ReplicaPerf(_config(demand, gpu, tp, wd, kv, 256, budget, util, catalog), profile)
    if not base.memory.fits:
        return None
    if max_num_seqs is None:
        ctx = demand.mean_input_tokens + 0.5 * demand.mean_output_tokens
        tpot = demand.targets()[0]
        max_num_seqs = batch_limit(base.coeff_vector(), ctx, tpot, base.memory.kv_capacity_tokens)
    perf = ReplicaPerf(
        _config(demand, gpu, tp, wd, kv, max_num_seqs, budget, util, catalog), profile
    )
    if not perf.memory.fits:
        return None
    eng = EngineConfig(gpu.name, tp, wd, kv, max_num_seqs, budget, util, demand.max_model_len)
    return SizedEngine(eng, perf)


def _rows(demand: Demand, sized: Sequence[SizedEngine]) -> list[RowInputs]:
    tpot, ttft, e2e, pct = demand.targets()
    return [
        RowInputs(
            coeffs=s.perf.coeff_vector(),
            kv_capacity_tokens=float(s.perf.memory.kv_capacity_tokens),
            max_num_seqs=float(s.engine.max_num_seqs),
            max_num_batched_tokens=float(s.engine.max_num_batched_tokens),
            tpot_s=tpot,
            ttft_s=ttft,
            e2e_s=e2e,
            percentile=pct,
        )
        for s in sized
    ]


def evaluate_members(
    demand: Demand, sized: Sequence[SizedEngine], derate: float = 1.0
) -> list[Member]:
    """Capacity of each sized engine on each of the deployment's buckets (one kernel call)."""
    b = demand.buckets
    tab = capacity_table(
        _rows(demand, sized),
        np.array([x.mean_input_tokens for x in b]),
        np.array([x.mean_output_tokens for x in b]),
        np.array([x.p_input_tokens for x in b]),
        np.array([x.p_output_tokens for x in b]),
    )
    out = []
    for i, s in enumerate(sized):
        out.append(
            Member(
                deployment=demand.name,
                engine=s.engine,
                capacity_rps=tuple(float(v) * RATE_MARGIN * derate for v in tab.rate_rps[i]),
                ttft_s=tuple(float(v) for v in tab.ttft_s[i]),
                tpot_s=tuple(float(v) for v in tab.tpot_s[i]),
                kv_capacity_tokens=s.perf.memory.kv_capacity_tokens,
            )
        )
    return out


def best_latency(demand: Demand, sized: Sequence[SizedEngine]) -> tuple[float, float, str]:
    """The lowest zero-load (p-percentile) TTFT and TPOT any configuration reaches, and where."""
    b = demand.buckets
    tab = capacity_table(
        _rows(demand, sized),
        np.array([x.mean_input_tokens for x in b]),
        np.array([x.mean_output_tokens for x in b]),
        np.array([x.p_input_tokens for x in b]),
        np.array([x.p_output_tokens for x in b]),
    )
    ttft = tab.zero_load_ttft_s.max(axis=1)
    tpot = tab.zero_load_tpot_s.max(axis=1)
    i = int(np.argmin(tpot + ttft * 1e-6))
    j = int(np.argmin(ttft + tpot * 1e-6))
    where = f"TPOT on {sized[i].engine.describe()}; TTFT on {sized[j].engine.describe()}"
    return float(ttft[j]), float(tpot[i]), where


def _gpus(resolved: ResolvedSpec, options: PlanOptions) -> list[Gpu]:
    cat = resolved.catalog
    names = options.gpus if options.gpus is not None else tuple(sorted(cat.gpus))
    return [cat.gpu(n) for n in names]


def _tp_options(demand: Demand, gpu: Gpu, wd: str, kv: str, util: float, profile: Profile,
                catalog: Catalog) -> list[int]:  # fmt: skip
    """The smallest TP that fits and twice that (for latency): larger ones rarely pay."""
    for tp in TP_DEGREES:
        cfg = _config(demand, gpu, tp, wd, kv, 256, max(TOKEN_BUDGETS), util, catalog)
        if ReplicaPerf(cfg, profile).memory.fits:
            return [t for t in (tp, 2 * tp) if t in TP_DEGREES]
    return []


def dedicated_engines(
    demand: Demand, resolved: ResolvedSpec, options: PlanOptions, gpus: Sequence[Gpu] | None = None
) -> list[SizedEngine]:
    """Every fitting one-deployment engine: GPU type x TP x precision x token budget."""
    cur = demand.current.config
    current = (cur.weight_dtype, cur.kv_dtype_resolved if cur.kv_dtype != "auto" else "auto")
    util = demand.gpu_memory_utilization
    out: list[SizedEngine] = []
    for gpu in gpus if gpus is not None else _gpus(resolved, options):
        for wd, kv in precisions(gpu, current, options.quantize):
            for tp in _tp_options(demand, gpu, wd, kv, util, resolved.profile, resolved.catalog):
                for budget in options.token_budgets:
                    s = size_engine(
                        demand, gpu, tp, wd, kv, budget, util, resolved.profile, resolved.catalog
                    )
                    if s is not None:
                        out.append(s)
    return out


def priced(
    spec: Spec, catalog: Catalog, gpu: str, allowed: Sequence[PricingKind]
) -> list[tuple[PricingKind, float]]:
    out: list[tuple[PricingKind, float]] = []
    for kind in allowed:
        p = gpu_price(spec, catalog, gpu, kind)
        if p is not None:
            out.append((kind, p))
    return out


def dedicated_candidates(
    demand: Demand,
    resolved: ResolvedSpec,
    options: PlanOptions,
    pricing: Sequence[PricingKind],
    sized: Sequence[SizedEngine] | None = None,
) -> list[Candidate]:
    sized = list(sized) if sized is not None else dedicated_engines(demand, resolved, options)
    members = evaluate_members(demand, sized, options.derate.get(demand.name, 1.0))
    out: list[Candidate] = []
    for m in members:
        if max(m.capacity_rps) <= 0:
            continue
        e = m.engine
        for kind, usd in priced(resolved.spec, resolved.catalog, e.gpu, pricing):
            key = (
                f"{demand.name}|{e.gpu}|tp{e.tp}|{e.weight_dtype}|{e.kv_dtype}|"
                f"s{e.max_num_seqs}|b{e.max_num_batched_tokens}|{kind}"
            )
            out.append(Candidate(key, e.gpu, e.tp, kind, usd, (m,)))
    return out


def prune_dominated(cands: list[Candidate]) -> list[Candidate]:
    """Drop a candidate when another of the same kind costs no more and serves no less anywhere.

    Spot candidates are compared only with spot ones (they count against the spot share), and
    packed ones only with packed ones of the same deployments.
    """
    groups: dict[tuple, list[Candidate]] = {}
    for c in cands:
        sig = (c.pricing == "spot", tuple(m.deployment for m in c.members))
        groups.setdefault(sig, []).append(c)
    kept: list[Candidate] = []
    for group in groups.values():
        caps = [np.concatenate([np.array(m.capacity_rps) for m in c.members]) for c in group]
        order = sorted(range(len(group)), key=lambda i: (group[i].usd_per_hour, -caps[i].sum()))
        chosen: list[int] = []
        for i in order:
            if any(
                group[j].usd_per_hour <= group[i].usd_per_hour and np.all(caps[j] >= caps[i])
                for j in chosen
            ):
                continue
            chosen.append(i)
        kept.extend(group[i] for i in chosen)
    return kept


# ----------------------------------------------------------------------------- packing


def replicas_needed(demand: Demand, member: Member) -> float:
    """Load over capacity: how many such replicas the deployment's whole traffic needs."""
    cap = np.array(member.capacity_rps)
    rates = demand.bucket_rates_rps
    if np.any((cap <= 0) & (rates > 0)):
        return math.inf
    return float(np.sum(np.divide(rates, cap, out=np.zeros_like(rates), where=cap > 0)))


PACK_NEED_BELOW = 1.0  # a deployment is packable when one GPU of some type carries it all
TRIPLES_AMONG = 5  # triples only among this many of the smallest packable deployments
PACKED_PER_GROUP = 2  # packed layouts kept per set of deployments (and spot or not)


def packable(demands: Sequence[Demand], dedicated: dict[str, list[Candidate]]) -> list[Demand]:
    """Deployments small enough to share a GPU, smallest first.

    Why "one GPU carries it all": a deployment that needs several GPUs wastes at most part of
    one of them, and packing it multiplies the candidates without much to gain.
    """
    needs = []
    for d in demands:
        single = [c for c in dedicated.get(d.name, []) if c.gpus == 1]
        if not single:
            continue
        need = min(replicas_needed(d, c.members[0]) for c in single)
        if need < PACK_NEED_BELOW:
            needs.append((need, d.index, d))
    return [d for _, _, d in sorted(needs, key=lambda x: (x[0], x[1]))]


def _served_share(demand: Demand, member: Member) -> float:
    """The share of a deployment's whole traffic one such engine carries (at most 1)."""
    need = replicas_needed(demand, member)
    return min(1.0, 1.0 / need) if need > 0 and math.isfinite(need) else 0.0


def frontier(cands: list[Candidate], demands: Sequence[Demand], keep: int) -> list[Candidate]:
    """Dedicated candidates that are among the ``keep`` cheapest per request/s in some bucket.

    Why: the MILP's difficulty grows with near-equivalent candidates; a candidate that is never
    among the most cost-efficient for any request size cannot lower the bill by much (only by
    rounding, which the kept ones of each bucket cover). Spot and other pricing are kept apart.
    """
    dmap = {d.name: d for d in demands}
    chosen: set[int] = set()
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, c in enumerate(cands):
        if c.packed:
            chosen.add(i)
            continue
        groups.setdefault((c.members[0].deployment, c.pricing == "spot"), []).append(i)
    for (dep, _), idx in groups.items():
        for b in range(len(dmap[dep].buckets)):
            ranked = sorted(
                (i for i in idx if cands[i].members[0].capacity_rps[b] > 0),
                key=lambda i: (cands[i].usd_per_hour / cands[i].members[0].capacity_rps[b], i),
            )
            chosen.update(ranked[:keep])
        # and the cheapest per whole-traffic share, for deployments smaller than one replica
        ranked = sorted(
            idx,
            key=lambda i: (
                cands[i].usd_per_hour / max(_served_share(dmap[dep], cands[i].members[0]), 1e-9),
                i,
            ),
        )
        chosen.update(ranked[:keep])
    return [cands[i] for i in sorted(chosen)]


def best_packed(cands: list[Candidate], demands: Sequence[Demand], keep: int) -> list[Candidate]:
    """Per set of deployments (and spot or not), the ``keep`` layouts with most traffic per $.

    Why: every packed candidate adds a bucket-share variable per member and bucket to the MILP;
    the few most cost-efficient layouts of a set are the ones a cheapest fleet can use.
    """
    dmap = {d.name: d for d in demands}
    groups: dict[tuple, list[tuple[float, int, Candidate]]] = {}
    for i, c in enumerate(cands):
        value = sum(_served_share(dmap[m.deployment], m) for m in c.members)
        sig = (c.pricing == "spot", tuple(m.deployment for m in c.members))
        groups.setdefault(sig, []).append((-value / c.usd_per_hour, i, c))
    out = []
    for items in groups.values():
        out.extend(c for _, _, c in sorted(items, key=lambda x: (x[0], x[1]))[:keep])
    return out


def _memory_split(
    demands: Sequence[Demand], sized: Sequence[SizedEngine], gpu: Gpu
) -> list[float] | None:
    """gpu_memory_utilization per engine: each one's needs plus a share of the rest by KV demand."""
    total_util = min(d.gpu_memory_utilization for d in demands)
    usable = gpu.memory_bytes * total_util
    needs, weights = [], []
    for d, s in zip(demands, sized, strict=True):
        mem = s.perf.memory
        needs.append(
            mem.weight_bytes_per_gpu
            + mem.reserved_bytes_per_gpu
            + mem.kv_bytes_per_token_per_gpu * d.max_model_len * 1.05
        )
        ctx = d.mean_input_tokens + 0.5 * d.mean_output_tokens
        weights.append(d.rate_rps * d.mean_output_tokens * ctx * mem.kv_bytes_per_token_per_gpu)
    free = usable - sum(needs)
    if free <= 0:
        return None
    wsum = sum(weights) or 1.0
    return [math.floor((n + free * w / wsum) / gpu.memory_bytes * 100) / 100
            for n, w in zip(needs, weights, strict=True)]  # fmt: skip


def packed_candidates(
    demands: Sequence[Demand],
    resolved: ResolvedSpec,
    options: PlanOptions,
    pricing: Sequence[PricingKind],
) -> list[Candidate]:
    """One GPU shared by 2..max_pack small deployments, per GPU type and precision class.

    Each engine gets a memory share (its weights, reserve and one full-length sequence, plus the
    rest in proportion to its KV demand) and a compute share in proportion to its work (its load
    over a whole GPU's capacity); its capacity is then evaluated on that slice of the GPU. All
    engines of one deployment are evaluated in one kernel call, since Python overhead per call,
    not the arithmetic, is what a few thousand small evaluations cost.
    """
    budget = min(options.token_budgets)
    prof, cat = resolved.profile, resolved.catalog
    dmap = {d.name: d for d in demands}
    # Packed GPUs are never spot: one reclaimed GPU would take every packed model down at once,
    # and mixing the two also makes the MILP much harder (seconds become minutes at 10 x 10).
    pricing = [p for p in pricing if p != "spot"]
    gpus = [g for g in _gpus(resolved, options) if priced(resolved.spec, cat, g.name, pricing)]
    # 1. whole-GPU probes: memory needs and the work each deployment would put on the GPU
    probes: dict[tuple[str, str, str, str], SizedEngine] = {}
    for d in demands:
        for gpu in gpus:
            for wd, kv in precisions(gpu, ("bf16", "auto"), options.quantize):
                s = size_engine(d, gpu, 1, wd, kv, budget, 1.0, prof, cat)
                if s is not None:
                    probes[(d.name, gpu.name, wd, kv)] = s
    need: dict[tuple[str, str, str, str], float] = {}
    by_dep: dict[str, list[tuple[tuple[str, str, str, str], SizedEngine]]] = {}
    for k, s in probes.items():
        by_dep.setdefault(k[0], []).append((k, s))
    for name, items in by_dep.items():
        members = evaluate_members(dmap[name], [s for _, s in items])
        for (k, _), m in zip(items, members, strict=True):
            need[k] = replicas_needed(dmap[name], m)
    # 2. layouts: memory and compute split, engines sized on their slice
    layouts: list[
        tuple[tuple[Demand, ...], Gpu, str, str, list[tuple[Demand, SizedEngine]], list[float]]
    ] = []
    for size in range(2, options.max_pack + 1):
        pool = demands if size == 2 else demands[:TRIPLES_AMONG]
        for group in itertools.combinations(pool, size):
            for gpu in gpus:
                for wd, kv in precisions(gpu, ("bf16", "auto"), options.quantize):
                    keys = [(d.name, gpu.name, wd, kv) for d in group]
                    if any(k not in probes or not math.isfinite(need[k]) for k in keys):
                        continue
                    split = _memory_split(group, [probes[k] for k in keys], gpu)
                    if split is None:
                        continue
                    work = [max(need[k], 0.05) for k in keys]
                    shares = [w / sum(work) for w in work]
                    sized = []
                    for d, util, f in zip(group, split, shares, strict=True):
                        s = size_engine(d, shared_gpu(gpu, f), 1, wd, kv, budget, util, prof, cat)
                        if s is None:
                            break
                        sized.append((d, s))
                    if len(sized) == len(group):
                        layouts.append((group, gpu, wd, kv, sized, shares))
    engines: dict[str, list[SizedEngine]] = {}
    for _g, _gpu, _wd, _kv, sized, _sh in layouts:
        for d, s in sized:
            engines.setdefault(d.name, []).append(s)
    evaluated = {
        name: iter(evaluate_members(dmap[name], ss, options.derate.get(name, 1.0)))
        for name, ss in engines.items()
    }
    out: list[Candidate] = []
    for group, gpu, wd, kv, sized, shares in layouts:
        members = tuple(
            replace(next(evaluated[d.name]), compute_share=f)
            for (d, _), f in zip(sized, shares, strict=True)
        )
        if any(max(m.capacity_rps) <= 0 for m in members):
            continue
        for kind, usd in priced(resolved.spec, cat, gpu.name, pricing):
            key = "+".join(d.name for d in group) + f"|{gpu.name}|{wd}|{kv}|{kind}"
            out.append(Candidate(key, gpu.name, 1, kind, usd, members))
    return best_packed(prune_dominated(out), demands, PACKED_PER_GROUP)
