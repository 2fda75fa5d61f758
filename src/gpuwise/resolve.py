"""A spec joined with the catalog and the performance model: what every command starts from.

Validation of a spec has two halves. ``gpuwise.spec`` checks shape and ranges; this module checks
meaning: that each model and GPU exists (with a "did you mean"), that a price is known, and that
each replica fits in memory. Errors name the field path, as the spec's own errors do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuwise.catalog import Catalog, CatalogError, load_catalog
from gpuwise.catalog.types import Gpu, ModelArch
from gpuwise.errors import UserError
from gpuwise.perf import PerfError, Profile, ReplicaConfig, ReplicaPerf, load_profile
from gpuwise.perf.summary import config_for
from gpuwise.spec import Deployment, Slo, Spec, SpecError, load_spec


@dataclass(frozen=True)
class ResolvedDeployment:
    index: int
    deployment: Deployment
    model: ModelArch
    gpu: Gpu
    config: ReplicaConfig
    perf: ReplicaPerf
    slo: Slo | None
    usd_per_gpu_hour: float
    price_source: str

    @property
    def usd_per_replica_hour(self) -> float:
        return self.usd_per_gpu_hour * self.deployment.tp

    @property
    def summary_line(self) -> str:
        d = self.deployment
        return (
            f"{self.model.name} on {d.tp}x {self.gpu.name} ({d.weight_dtype} weights, "
            f"{self.config.kv_dtype_resolved} KV) served by {d.engine}, "
            f"replicas {d.replicas.min}-{d.replicas.max}"
        )

    @property
    def detail_lines(self) -> list[str]:
        d, mem, lim = self.deployment, self.perf.memory, self.deployment.limits
        lines = [
            f"engine limits: max_num_seqs {lim.max_num_seqs}, max_num_batched_tokens "
            f"{lim.max_num_batched_tokens}, gpu_memory_utilization {lim.gpu_memory_utilization}, "
            f"block_size {lim.block_size}, max_model_len {mem.max_model_len:,}"
            + ("" if lim.max_model_len else " (gpuwise default)"),
            f"memory: {mem.weight_bytes_per_gpu / 1e9:,.1f} GB weights per GPU, KV cache "
            f"{mem.kv_capacity_tokens:,} tokens ({mem.kv_bytes_per_token / 1024:,.0f} KiB/token)",
            f"price: ${self.usd_per_gpu_hour:.2f}/GPU-hour {d.pricing} ({self.price_source}) = "
            f"${self.usd_per_replica_hour:.2f}/replica-hour, "
            f"${self.usd_per_replica_hour * 730 * d.replicas.start:,.0f}/month at "
            f"{d.replicas.start} replica(s)",
        ]
        if d.traffic is not None:
            lines.append(f"traffic: {describe_traffic(d.traffic)}")
        lines.append(f"slo: {describe_slo(self.slo)}")
        return lines


@dataclass(frozen=True)
class ResolvedSpec:
    spec: Spec
    path: str
    catalog: Catalog
    profile: Profile
    deployments: list[ResolvedDeployment]

    def deployment(self, name: str) -> ResolvedDeployment:
        for d in self.deployments:
            if d.deployment.name == name:
                return d
        raise UserError(f"no deployment named '{name}' in {self.path}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.model_dump(mode="json"),
            "profile": self.profile.name,
            "deployments": [
                {
                    "name": d.deployment.name,
                    "model": d.model.name,
                    "gpu": d.gpu.name,
                    "tp": d.deployment.tp,
                    "weight_dtype": d.deployment.weight_dtype,
                    "kv_dtype": d.config.kv_dtype_resolved,
                    "max_model_len": d.perf.memory.max_model_len,
                    "weight_gb_per_gpu": round(d.perf.memory.weight_bytes_per_gpu / 1e9, 3),
                    "kv_capacity_tokens": d.perf.memory.kv_capacity_tokens,
                    "usd_per_gpu_hour": d.usd_per_gpu_hour,
                    "price_source": d.price_source,
                    "slo": d.slo.model_dump(mode="json") if d.slo else None,
                }
                for d in self.deployments
            ],
        }


def resolve(
    spec: Spec, path: str = "<spec>", profile: str | Path | Profile | None = None
) -> ResolvedSpec:
    try:
        catalog = load_catalog(tuple(Path(c) for c in spec.catalog))
    except CatalogError as e:
        raise SpecError(f"{path}: catalog: {e}") from None
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    out = []
    for i, d in enumerate(spec.deployments):
        where = f"{path}: deployments[{i}]"
        try:
            model = catalog.model(d.model)
        except CatalogError as e:
            raise SpecError(f"{where}.model: {e}") from None
        try:
            gpu = catalog.gpu(d.gpu)
        except CatalogError as e:
            raise SpecError(f"{where}.gpu: {e}") from None
        cfg = config_for(d, catalog)
        perf = ReplicaPerf(cfg, prof)
        try:
            perf.check_fits()
        except PerfError as e:
            raise SpecError(f"{where} ({d.name}): {e}") from None
        usd, src = _price(spec, catalog, gpu.name, d.pricing, where)
        out.append(ResolvedDeployment(i, d, model, gpu, cfg, perf, spec.slo_for(d), usd, src))
    return ResolvedSpec(spec, path, catalog, prof, out)


def resolve_spec(path: str | Path, profile: str | Path | Profile | None = None) -> ResolvedSpec:
    """Load, validate and resolve a spec file in one step."""
    return resolve(load_spec(path), str(path), profile)


def _price(spec: Spec, catalog: Catalog, gpu: str, pricing: str, where: str) -> tuple[float, str]:
    for j, o in enumerate(spec.prices):
        try:
            og = catalog.gpu(o.gpu).name
        except CatalogError as e:
            raise SpecError(f"{where.split(':')[0]}: prices[{j}].gpu: {e}") from None
        if og == gpu and o.pricing == pricing:
            return o.usd_per_gpu_hour, "spec override"
    try:
        p = catalog.default_price(gpu, pricing)
    except CatalogError as e:
        raise SpecError(f"{where}.pricing: {e}") from None
    return p.usd_per_gpu_hour, f"catalog: {p.provider} {p.offering}, observed {p.source.date}"


def describe_traffic(t: Any) -> str:
    a = t.arrival
    match a.kind:
        case "poisson":
            s = f"Poisson {a.rate_rps:g} req/s"
        case "gamma":
            s = f"bursty (Gamma, cv {a.cv:g}) {a.rate_rps:g} req/s"
        case "diurnal":
            s = (
                f"diurnal {a.trough_rps:g}-{a.peak_rps:g} req/s, period {a.period_s:g} s, "
                f"peak at {a.peak_at_s:g} s"
            )
        case "ramp":
            s = (
                f"{a.start_rps:g} req/s, then to {a.end_rps:g} req/s at {a.at_s:g} s over "
                f"{a.ramp_s:g} s"
            )
        case "trace":
            s = (
                f"trace {Path(a.path).name} ({a.format}), time x{a.time_scale:g}, "
                f"rate x{a.rate_scale:g}"
            )
        case _:
            s = a.kind

    def ln(d: Any, what: str) -> str:
        if d is None:
            return f"{what} from the trace"
        match d.kind:
            case "fixed":
                return f"{what} {d.tokens}"
            case "uniform":
                return f"{what} uniform {d.low}-{d.high}"
            case "lognormal":
                return f"{what} lognormal mean {d.mean:g} cv {d.cv:g}"
            case _:
                return f"{what} empirical {d.dataset or Path(d.path).name}"

    return f"{s}; {ln(t.input_tokens, 'input tokens')}; {ln(t.output_tokens, 'output tokens')}"


def describe_slo(slo: Slo | None) -> str:
    if slo is None:
        return "none set (latency is reported, attainment is not)"
    parts = [
        f"{k} <= {v:g} s"
        for k, v in (("TTFT", slo.ttft_s), ("TPOT", slo.tpot_s), ("end-to-end", slo.e2e_s))
        if v is not None
    ]
    return f"p{slo.percentile:g} " + ", ".join(parts)
