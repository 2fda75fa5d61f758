"""The user's YAML spec as typed, validated objects.

A spec is what a team knows about its serving fleet: which models, on which GPUs, with which
engine limits, receiving which traffic, under which latency SLOs, at which prices. Everything
else in gpuwise (perf, sim, plan, policy, cost) reads these objects, never raw YAML. Validation
errors always name the field path (``deployments[1].traffic.arrival.rate_rps``) so that a user
can fix the file without reading the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpuwise.errors import UserError

Engine = Literal["vllm", "sglang", "tgi", "triton"]
WeightDtype = Literal["bf16", "fp16", "fp8", "int8", "int4"]
KvDtype = Literal["auto", "bf16", "fp16", "fp8"]
PricingKind = Literal["on-demand", "spot", "reserved"]
RouterKind = Literal["round-robin", "least-outstanding", "power-of-two", "least-kv"]


class SpecError(UserError):
    """A spec the user must fix; the message names the file, the field path and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- traffic


class PoissonArrivals(_Strict):
    """Independent arrivals at a constant mean rate (coefficient of variation 1)."""

    kind: Literal["poisson"] = "poisson"
    rate_rps: float = Field(gt=0)


class GammaArrivals(_Strict):
    """Renewal process with Gamma gaps: cv > 1 is burstier than Poisson, cv < 1 smoother."""

    kind: Literal["gamma"] = "gamma"
    rate_rps: float = Field(gt=0)
    cv: float = Field(gt=0)


class DiurnalArrivals(_Strict):
    """A sinusoidal day: trough at ``peak_at_s - period_s/2``, peak at ``peak_at_s``."""

    kind: Literal["diurnal"] = "diurnal"
    peak_rps: float = Field(gt=0)
    trough_rps: float = Field(ge=0)
    period_s: float = Field(default=86_400.0, gt=0)
    peak_at_s: float = Field(default=14 * 3600.0, ge=0)

    @model_validator(mode="after")
    def _trough_below_peak(self) -> DiurnalArrivals:
        if self.trough_rps > self.peak_rps:
            raise ValueError("trough_rps must not exceed peak_rps")
        return self


class RampArrivals(_Strict):
    """Constant rate, then a linear change to a new rate (a step when ramp_s is 0).

    "Traffic doubles in five minutes" is ``start_rps: r, end_rps: 2r, ramp_s: 300``.
    """

    kind: Literal["ramp"] = "ramp"
    start_rps: float = Field(gt=0)
    end_rps: float = Field(gt=0)
    at_s: float = Field(default=0.0, ge=0)
    ramp_s: float = Field(default=0.0, ge=0)


class TraceArrivals(_Strict):
    """Replay of a trace file's timestamps (and its token counts unless lengths are given)."""

    kind: Literal["trace"] = "trace"
    path: str
    format: Literal["auto", "azure", "mooncake", "csv"] = "auto"
    time_scale: float = Field(default=1.0, gt=0)  # >1 stretches the trace in time
    rate_scale: float = Field(default=1.0, gt=0)  # >1 keeps the shape, more requests per second
    start_s: float = Field(default=0.0, ge=0)  # skip this much of the trace


Arrivals = Annotated[
    PoissonArrivals | GammaArrivals | DiurnalArrivals | RampArrivals | TraceArrivals,
    Field(discriminator="kind"),
]


class FixedLength(_Strict):
    kind: Literal["fixed"] = "fixed"
    tokens: int = Field(gt=0)


class UniformLength(_Strict):
    kind: Literal["uniform"] = "uniform"
    low: int = Field(gt=0)
    high: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> UniformLength:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self


class LognormalLength(_Strict):
    """Heavy-tailed lengths, given by their mean and coefficient of variation."""

    kind: Literal["lognormal"] = "lognormal"
    mean: float = Field(gt=0)
    cv: float = Field(default=1.0, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)


class EmpiricalLength(_Strict):
    """Lengths sampled from a column of a CSV file, or from an embedded dataset by name."""

    kind: Literal["empirical"] = "empirical"
    dataset: str | None = None  # embedded: sharegpt, arxiv-summarization, azure-conv, azure-code
    path: str | None = None
    column: str | None = None  # defaults to the dataset's input or output column

    @model_validator(mode="after")
    def _one_source(self) -> EmpiricalLength:
        if (self.dataset is None) == (self.path is None):
            raise ValueError("give exactly one of 'dataset' or 'path'")
        return self


LengthDist = Annotated[
    FixedLength | UniformLength | LognormalLength | EmpiricalLength,
    Field(discriminator="kind"),
]


class Traffic(_Strict):
    """What one deployment receives. Lengths default to the trace's own when replaying one."""

    arrival: Arrivals
    input_tokens: LengthDist | None = None
    output_tokens: LengthDist | None = None

    @model_validator(mode="after")
    def _lengths_given(self) -> Traffic:
        if self.arrival.kind != "trace" and (
            self.input_tokens is None or self.output_tokens is None
        ):
            raise ValueError(
                "input_tokens and output_tokens are required unless arrival.kind is 'trace'"
            )
        return self


# ----------------------------------------------------------------------------- SLO and fleet


class Slo(_Strict):
    """Latency objectives at one percentile; a request is 'inside the SLO' when it meets all."""

    percentile: float = Field(default=95.0, gt=0, le=100)
    ttft_s: float | None = Field(default=None, gt=0)
    tpot_s: float | None = Field(default=None, gt=0)
    e2e_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_target(self) -> Slo:
        if self.ttft_s is None and self.tpot_s is None and self.e2e_s is None:
            raise ValueError("set at least one of ttft_s, tpot_s, e2e_s")
        return self


class EngineLimits(_Strict):
    """The engine knobs that decide batching and memory (vLLM names; others map onto them)."""

    max_num_seqs: int = Field(default=256, gt=0)
    max_num_batched_tokens: int = Field(default=8192, gt=0)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    block_size: int = Field(default=16, gt=0)
    max_model_len: int | None = Field(default=None, gt=0)  # default: the model's context length
    enable_chunked_prefill: bool = True


class Replicas(_Strict):
    min: int = Field(default=1, ge=0)
    max: int = Field(default=1, ge=1)
    initial: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.max < self.min:
            raise ValueError("max must be >= min")
        if self.initial is not None and not self.min <= self.initial <= self.max:
            raise ValueError("initial must lie between min and max")
        return self

    @property
    def start(self) -> int:
        return self.initial if self.initial is not None else max(self.min, 1)


class Deployment(_Strict):
    """One model served by one engine configuration on one GPU type."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=50)
    model: str
    engine: Engine = "vllm"
    gpu: str
    tp: int = Field(default=1, ge=1, le=64)
    weight_dtype: WeightDtype = "bf16"
    kv_dtype: KvDtype = "auto"
    limits: EngineLimits = EngineLimits()
    replicas: Replicas = Replicas()
    pricing: PricingKind = "on-demand"
    router: RouterKind = "least-outstanding"
    traffic: Traffic | None = None
    slo: Slo | None = None

    @model_validator(mode="after")
    def _tp_power_of_two(self) -> Deployment:
        if self.tp & (self.tp - 1):
            raise ValueError("tp must be a power of two (1, 2, 4, 8, ...)")
        return self

    @property
    def kv_dtype_resolved(self) -> str:
        """vLLM's 'auto' keeps the KV cache in the activation dtype (bf16 for int weights)."""
        if self.kv_dtype != "auto":
            return self.kv_dtype
        return self.weight_dtype if self.weight_dtype in ("bf16", "fp16") else "bf16"


class PriceOverride(_Strict):
    gpu: str
    pricing: PricingKind = "on-demand"
    usd_per_gpu_hour: float = Field(gt=0)


class Spec(_Strict):
    """A whole fleet: deployments, the default SLO, prices and planning allowances."""

    name: str = "fleet"
    deployments: list[Deployment] = Field(min_length=1)
    slo: Slo | None = None  # default for deployments that do not set their own
    prices: list[PriceOverride] = []
    pricing_allowed: list[PricingKind] = ["on-demand"]
    spot_max_share: float = Field(default=0.0, ge=0, le=1)
    catalog: list[str] = []  # extra catalog files, relative to the spec file

    @model_validator(mode="after")
    def _unique_names(self) -> Spec:
        seen: set[str] = set()
        for i, d in enumerate(self.deployments):
            if d.name in seen:
                raise ValueError(f"deployments[{i}].name '{d.name}' is used twice")
            seen.add(d.name)
        return self

    def slo_for(self, deployment: Deployment) -> Slo | None:
        return deployment.slo or self.slo


# ----------------------------------------------------------------------------- loading


def _field_path(loc: tuple[Any, ...]) -> str:
    """('deployments', 1, 'traffic', 'arrival', 'poisson', 'rate_rps') -> deployments[1]...."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("poisson", "gamma", "diurnal", "ramp", "trace") or part in (
            "fixed",
            "uniform",
            "lognormal",
            "empirical",
        ):
            continue  # the discriminator's branch name adds nothing for the user
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: the spec is not valid:"]
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see examples/)"
        lines.append(f"  {_field_path(tuple(e['loc']))}: {msg}")
    return "\n".join(lines)


def parse_spec(data: Any, source: str = "<spec>") -> Spec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec must be a YAML mapping with a 'deployments' list")
    try:
        return Spec.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source)) from None


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; relative paths inside it are resolved against its folder."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such spec file (see examples/ for ready-made specs)")
    text = p.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(f"{p}: YAML syntax error{where}: {problem}") from None
    spec = parse_spec(data, str(p))
    return _resolve_paths(spec, p.parent)


def _resolve_paths(spec: Spec, base: Path) -> Spec:
    """Make file references absolute so later stages do not depend on the working directory."""

    def rel(s: str) -> str:
        q = Path(s).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    deployments = []
    for d in spec.deployments:
        t = d.traffic
        if t is not None:
            upd: dict[str, Any] = {}
            if isinstance(t.arrival, TraceArrivals):
                upd["arrival"] = t.arrival.model_copy(update={"path": rel(t.arrival.path)})
            for key in ("input_tokens", "output_tokens"):
                dist = getattr(t, key)
                if isinstance(dist, EmpiricalLength) and dist.path is not None:
                    upd[key] = dist.model_copy(update={"path": rel(dist.path)})
            if upd:
                d = d.model_copy(update={"traffic": t.model_copy(update=upd)})
        deployments.append(d)
    return spec.model_copy(
        update={"deployments": deployments, "catalog": [rel(c) for c in spec.catalog]}
    )
