"""Fit a perf profile to a live engine: sweep load, measure iterations, ``fit_profile``.

The sweep has two parts, both with fixed lengths:

* **prefill steps**: one request at a time, prompts of several lengths, two output tokens. With
  nothing else running, a request's prefill is one engine iteration holding just its prompt.
* **decode steps**: closed loops at several concurrency levels (1, 2, 4, ... up to the engine's
  batch limit), a short prompt and a longer output. The mean gap between tokens is the mean
  decode iteration at the batch size actually running, with contexts of about prompt + output/2.

Where the times come from is the plan's ``timings``:

* ``client`` (the default): what the client saw, which is what latency SLOs are about. A prefill
  step's median TTFT is one prefill iteration plus one ``request_overhead_s`` (HTTP, admission,
  tokenization, the trip back); a decode step's mean TPOT is one decode iteration, output
  processing included. The fit adds ``overhead_per_seq_s`` and ``request_overhead_s`` to the
  coefficients, so the profile predicts client-side TTFT and TPOT. Prefill requests are paced
  ``prefill_gap_s`` apart, as open-loop traffic arrives, rather than sent back to back.
* ``engine``: the engine's own ``/metrics`` (vLLM: the histograms of prefill time, inter-token
  latency, queue time and tokens per iteration, read before and after each step; the difference
  of ``_sum`` over the difference of ``_count`` is the step's mean). They exclude HTTP,
  tokenization and detokenization, so the profile predicts what the engine measures; on a GPU
  server whose API process has cores of its own that is nearly what clients see, on a small CPU
  machine it is not. Without engine histograms this mode falls back to client times.

The batch a decode step ran at is measured, not assumed: the time-weighted number of requests
between their first token and their end. Each step becomes an ``IterationSample``; the
profile's coefficients are fitted to them and saved as a YAML profile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from gpuwise.bench.metrics import RequestRecord
from gpuwise.bench.runner import ServerInfo, Session
from gpuwise.bench.schedule import Schedule
from gpuwise.catalog import Catalog
from gpuwise.catalog.types import Gpu, ModelArch, Source
from gpuwise.errors import UserError
from gpuwise.perf import Profile, ReplicaConfig, ReplicaPerf
from gpuwise.perf.calibrate import (
    FIT_BOUNDS,
    IterationSample,
    fit_profile,
    predict,
    prefill_sample,
)
from gpuwise.workload import Requests

__all__ = [
    "TIMINGS",
    "CalibrationPlan",
    "CalibrationResult",
    "StepMeasurement",
    "arch_from_config",
    "calibrate",
    "fit_parameters",
    "fit_steps",
    "load_model_config",
    "model_resolver",
]

# vLLM (V1) histograms read around each step: (sum, count) deltas give the step's means.
H_PREFILL = "vllm:request_prefill_time_seconds"
H_ITL = "vllm:inter_token_latency_seconds"
H_QUEUE = "vllm:request_queue_time_seconds"
H_TTFT = "vllm:time_to_first_token_seconds"
H_ITER_TOKENS = "vllm:iteration_tokens_total"
HISTOGRAMS = (H_PREFILL, H_ITL, H_QUEUE, H_TTFT, H_ITER_TOKENS)
# Fitted for a single-GPU (tp 1) engine: the all-reduce terms do not exist there.
FIT_TP1 = ("compute_eff", "compute_half_sat_flops", "memory_eff", "overhead_s")
# Client times also hold output processing per sequence and a latency per request. The
# half-saturation size is left out: it only adds an intercept to compute-bound iterations
# (compute time = flops/peak x (1 + half_sat/layer flops), affine in the tokens), which a TTFT
# cannot tell from the request overhead, nor a CPU's decode from the fixed per-iteration cost;
# it keeps the base profile's value.
FIT_CLIENT = ("compute_eff", "memory_eff", "overhead_s", "overhead_per_seq_s", "request_overhead_s")
TIMINGS = ("client", "engine")
SETTLE_S = 0.25  # let the engine's stat logger record the last finished requests


@dataclass(frozen=True)
class CalibrationPlan:
    """What to measure. Defaults suit a small engine; every step is bounded in time."""

    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    prompt_tokens: tuple[int, ...] = (16, 32, 64, 128, 256, 384)
    decode_prompt_tokens: int = 32
    decode_output_tokens: int = 128
    prefill_output_tokens: int = 2
    requests_per_prompt: int = 8
    requests_per_slot: int = 4  # decode step at concurrency c sends c * this many requests
    warmup_requests: int = 4
    rounds: int = 1  # the whole sweep, repeated (interleaved) this many times
    timings: str = "client"  # "client" or "engine" (see the module doc)
    prefill_gap_s: float = 0.1  # client timings: prefill requests this far apart (0: back to back)
    step_max_s: float = 60.0  # no request is started after this in one step
    timeout_s: float = 60.0

    def check(self, max_model_len: int | None) -> CalibrationPlan:
        """Validated, with prompt steps that do not fit the context dropped."""
        if not self.concurrency or min(self.concurrency) < 1:
            raise UserError("--concurrency levels must be positive integers")
        if not self.prompt_tokens or min(self.prompt_tokens) < 1:
            raise UserError("--prompt-tokens steps must be positive integers")
        if self.rounds < 1:
            raise UserError("--rounds must be at least 1")
        if self.timings not in TIMINGS:
            raise UserError(f"--from '{self.timings}': use one of {', '.join(TIMINGS)}")
        if not self.prefill_gap_s >= 0:
            raise UserError("--prefill-gap-s must not be negative")
        if self.decode_output_tokens < 2:
            raise UserError("--decode-output-tokens must be at least 2 (one gap between tokens)")
        plan = self
        if max_model_len:
            room = max_model_len - self.prefill_output_tokens - 2  # BOS and slack
            fitting = tuple(p for p in self.prompt_tokens if p <= room)
            if not fitting:
                raise UserError(f"no prompt step fits the endpoint's max_model_len {max_model_len}")
            if self.decode_prompt_tokens + self.decode_output_tokens + 2 > max_model_len:
                raise UserError(
                    f"decode steps need {self.decode_prompt_tokens}+{self.decode_output_tokens} "
                    f"tokens, more than the endpoint's max_model_len {max_model_len}"
                )
            plan = replace(self, prompt_tokens=fitting)
        return replace(
            plan,
            concurrency=tuple(sorted(set(plan.concurrency))),
            prompt_tokens=tuple(sorted(set(plan.prompt_tokens))),
        )


@dataclass(frozen=True)
class StepMeasurement:
    """One step of the sweep and the iteration time taken from it."""

    kind: str  # "prefill" | "decode"
    concurrency: int
    requests: int
    ok: int
    prompt_tokens: float  # mean, as the server counted them
    output_tokens: float  # mean completion tokens
    batch: float  # prefill: 1; decode: measured mean number of sequences decoding
    context_tokens: float  # decode: mean context per sequence; prefill: 0
    measured_s: float  # the iteration time used in the fit
    source: str  # "engine" (from /metrics) or "client"
    client_ttft_s: float | None  # median
    client_tpot_s: float | None  # mean
    engine_prefill_s: float | None
    engine_itl_s: float | None
    engine_queue_s: float | None
    engine_ttft_s: float | None
    engine_tokens_per_iteration: float | None
    wall_s: float
    request_overheads: float = 0.0  # 1 when measured_s is a client TTFT (see perf.calibrate)


@dataclass(frozen=True)
class SampleFit:
    kind: str
    batch: float
    prompt_tokens: float
    context_tokens: float
    measured_s: float
    predicted_s: float

    @property
    def rel_error(self) -> float:
        return (self.predicted_s - self.measured_s) / self.measured_s


@dataclass
class CalibrationResult:
    endpoint: str
    served_model: str
    config: ReplicaConfig
    profile: Profile
    steps: list[StepMeasurement]
    fits: list[SampleFit]
    engine_metrics: bool
    started_at: str
    runtime_s: float
    api_overhead_s: float | None  # client TTFT minus the engine's TTFT, at concurrency 1
    out_path: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "endpoint": self.endpoint,
            "served_model": self.served_model,
            "model": self.config.model.name,
            "gpu": self.config.gpu.name,
            "max_num_seqs": self.config.max_num_seqs,
            "profile": asdict(self.profile),
            "out_path": self.out_path,
            "engine_metrics": self.engine_metrics,
            "started_at": self.started_at,
            "runtime_s": round(self.runtime_s, 2),
            "api_overhead_s": self.api_overhead_s,
            "steps": [asdict(s) for s in self.steps],
            "samples": [{**asdict(f), "rel_error": round(f.rel_error, 4)} for f in self.fits],
            "warnings": self.warnings,
        }


# --------------------------------------------------------------------------------------------------
# the model's architecture from its config.json


def arch_from_config(cfg: dict[str, Any], name: str, hf_id: str = "") -> ModelArch:
    """A dense or Mixtral-style MoE decoder from a Hugging Face config.json."""
    try:
        if "kv_lora_rank" in cfg:
            raise UserError(
                f"{name}: multi-head latent attention (DeepSeek) is not read from config.json; "
                "use a catalog model (--model)"
            )
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        kv_heads = int(cfg.get("num_key_value_heads") or heads)
        experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or 0)
        return ModelArch(
            name=name,
            hf_id=hf_id or name,
            hidden_size=hidden,
            num_layers=int(cfg["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            intermediate_size=int(cfg["intermediate_size"]),
            vocab_size=int(cfg["vocab_size"]),
            max_position_embeddings=int(cfg.get("max_position_embeddings") or 2048),
            attention="gqa" if kv_heads < heads else "mha",
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            qkv_bias=bool(cfg.get("attention_bias", False)),
            num_experts=experts,
            experts_per_token=int(cfg.get("num_experts_per_tok") or 0) if experts else 0,
            moe_intermediate_size=(
                int(cfg.get("moe_intermediate_size") or cfg["intermediate_size"]) if experts else 0
            ),
            sources={"config": Source(source=f"config.json of {hf_id or name}", date="")},
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, UserError):
            raise
        raise UserError(f"{name}: config.json lacks or garbles {err}") from None


def load_model_config(path: str | Path, name: str | None = None) -> ModelArch:
    """``path`` is a model folder or its config.json; the name defaults to the folder's."""
    p = Path(path).expanduser()
    cfg_path = p / "config.json" if p.is_dir() else p
    if not cfg_path.is_file():
        raise UserError(f"{cfg_path}: no such file (give a model folder or its config.json)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{cfg_path}: cannot read it as JSON ({err})") from None
    folder = cfg_path.parent
    return arch_from_config(cfg, name or folder.name, str(folder))


def model_resolver(
    catalog: Catalog, model: str | None = None, model_config: str | Path | None = None
) -> Callable[[ServerInfo], ModelArch]:
    """How ``calibrate`` finds the architecture, first match wins: ``--model-config`` (a folder
    or config.json), ``--model`` (a catalog model), the folder vLLM reports as the model's
    ``root`` when it is on this machine, the local engine's generated tiny model when the served
    name is the local engine's, the catalog entry of the served model name."""

    def resolve(info: ServerInfo) -> ModelArch:
        if model_config is not None:
            return load_model_config(model_config)
        if model is not None:
            return catalog.model(model)
        if info.root and (Path(info.root) / "config.json").is_file():
            return load_model_config(info.root)
        from gpuwise.live.local_engine import SERVED_MODEL_NAME, TINY_MODEL_DIRNAME, default_run_dir

        local = default_run_dir() / TINY_MODEL_DIRNAME
        if info.model == SERVED_MODEL_NAME and (local / "config.json").is_file():
            return load_model_config(local)
        try:
            return catalog.model(info.model)
        except UserError:
            raise UserError(
                f"cannot tell the architecture of the served model '{info.model}': pass --model "
                "(a catalog model) or --model-config (a folder with its config.json)"
            ) from None

    return resolve


# --------------------------------------------------------------------------------------------------
# /metrics


def _histograms(text: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of each histogram in HISTOGRAMS, summed over label sets."""
    try:
        from gpuwise.observe.exposition import parse_exposition
    except ImportError:  # pragma: no cover - observe is optional for this module
        parse_exposition = None  # type: ignore[assignment]
    out: dict[str, tuple[float, float]] = {}
    if parse_exposition is not None:
        snap, _ = parse_exposition(text)
        for h in HISTOGRAMS:
            s, c = snap.sum(h + "_sum"), snap.sum(h + "_count")
            if s is not None and c is not None:
                out[h] = (s, c)
        return out
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, _, value = line.rpartition(" ")
        series = key.split("{", 1)[0]
        try:
            sums[series] = sums.get(series, 0.0) + float(value)
        except ValueError:
            continue
    for h in HISTOGRAMS:
        if h + "_sum" in sums and h + "_count" in sums:
            out[h] = (sums[h + "_sum"], sums[h + "_count"])
    return out


async def _engine_name(client: httpx.AsyncClient, info: ServerInfo) -> str:
    """ "vLLM 0.32.0" from vLLM's /version; the /v1/models owner otherwise."""
    name = "vLLM" if info.is_vllm else (info.owned_by or "the engine")
    try:
        r = await client.get(f"{info.base_url}/version", timeout=5.0)
        version = r.json().get("version") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        version = None
    return f"{name} {version}" if version else name


async def _scrape(client: httpx.AsyncClient, info: ServerInfo) -> dict[str, tuple[float, float]]:
    try:
        r = await client.get(info.metrics_url, timeout=10.0)
    except httpx.HTTPError:
        return {}
    return _histograms(r.text) if r.status_code == 200 else {}


def _delta_mean(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], name: str
) -> float | None:
    if name not in before or name not in after:
        return None
    ds = after[name][0] - before[name][0]
    dc = after[name][1] - before[name][1]
    return ds / dc if dc > 0 and ds >= 0 else None


# --------------------------------------------------------------------------------------------------
# the fit


def fit_parameters(
    samples: Sequence[IterationSample], profile: Profile, candidates: Sequence[str] = FIT_TP1
) -> tuple[str, ...]:
    """The coefficients the samples can tell apart under ``profile``.

    A roof that binds in no sample cannot be measured: on a CPU serving a 1M-parameter model
    nothing is bandwidth-bound, and fitting ``memory_eff`` there would only let it drift to a
    bound. A sweep that has both bound kinds (any GPU: prefill compute-bound, decode
    memory-bound) fits all of them.
    """
    kinds = set()
    for s in samples:
        perf = ReplicaPerf(s.config, profile)
        kinds.add(
            perf.bound(
                prefill_tokens=s.prefill_tokens,
                prefill_context_tokens=s.prefill_context_tokens,
                decode_seqs=s.decode_seqs,
                decode_context_tokens=s.decode_context_tokens,
                prefill_seqs=s.prefill_seqs,
                prefill_attention_pairs=s.prefill_attention_pairs,
            )
        )
    fit = [f for f in candidates if not (f == "memory_eff" and "memory" not in kinds)]
    if "compute" not in kinds:
        fit = [f for f in fit if f not in ("compute_eff", "compute_half_sat_flops")]
    return tuple(fit)


def fit_steps(
    samples: Sequence[IterationSample], base: Profile, candidates: Sequence[str] = FIT_TP1
) -> Profile:
    """Fit ``candidates`` to the samples, keeping only the coefficients the samples measure.

    Fit everything, then again without a roof that binds in no sample under that fit (see
    ``fit_parameters``), and without any coefficient the fit drove to a bound of its range: a
    coefficient at a bound was not measured, it only absorbed what other terms explain (on a CPU,
    a memory efficiency of 5% turns the bandwidth roof into a fixed cost). Dropped coefficients
    keep the base profile's values.
    """

    def fit(params: Sequence[str]) -> Profile:
        return fit_profile(
            samples,
            base=base,
            fit=params,
            name=base.name,
            description=base.description,
            fitted_on=base.fitted_on,
        )

    params = tuple(candidates)
    profile = fit(params)
    for _ in range(len(params)):
        keep = tuple(
            f for f in fit_parameters(samples, profile, params) if not _at_bound(profile, f)
        )
        if keep == params or not 0 < len(keep) <= len(samples):
            break
        params = keep
        profile = fit(params)
    return profile


def _at_bound(profile: Profile, name: str) -> bool:
    """True when a fitted coefficient sits on an edge of its FIT_BOUNDS range (0 excepted for
    the additive overheads: a term the data say is absent is measured, not pinned)."""
    lo, hi = FIT_BOUNDS[name]
    v = float(getattr(profile, name))
    edges = [hi] if lo == 0 else [lo, hi]
    return any(abs(v - e) <= 1e-6 * max(abs(e), 1e-12) for e in edges)


# --------------------------------------------------------------------------------------------------
# the sweep


def _decode_batch(records: Sequence[RequestRecord]) -> float:
    """The batch a decode token saw: for every token after a request's first, how many
    requests were decoding (between their first token and their end) when it arrived, averaged
    over tokens, as the inter-token latencies are. Idle gaps between requests do not count."""
    spans = np.array(
        [
            (r.first_token_s, r.end_s)
            for r in records
            if r.outcome == "ok" and r.first_token_s is not None and r.end_s is not None
        ],
        dtype=float,
    ).reshape(-1, 2)
    times = np.array(
        [t for r in records if r.outcome == "ok" for t in r.token_times_s[1:]], dtype=float
    )
    if not times.size or not spans.size:
        return 0.0
    starts = np.sort(spans[:, 0])
    ends = np.sort(spans[:, 1])
    running = np.searchsorted(starts, times, side="right") - np.searchsorted(
        ends, times, side="left"
    )
    return float(np.mean(np.maximum(running, 1)))


def _step(
    kind: str,
    c: int,
    records: list[RequestRecord],
    wall_s: float,
    before: dict[str, tuple[float, float]],
    after: dict[str, tuple[float, float]],
    timings: str = "engine",
) -> StepMeasurement:
    ok = [r for r in records if r.outcome == "ok"]
    if not ok:
        first = next((r.error for r in records if r.error), "no request finished")
        raise UserError(
            f"calibration {kind} step at concurrency {c}: every request failed: {first}"
        )
    prompt = float(np.mean([r.prompt_tokens or r.input_tokens for r in ok]))
    output = float(np.mean([r.completion_tokens or r.output_tokens for r in ok]))
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    tpots = [r.tpot_s for r in ok if r.tpot_s is not None]
    client_ttft = float(np.median(ttfts)) if ttfts else None
    client_tpot = float(np.mean(tpots)) if tpots else None
    e_prefill = _delta_mean(before, after, H_PREFILL)
    e_itl = _delta_mean(before, after, H_ITL)
    e_queue = _delta_mean(before, after, H_QUEUE)
    e_ttft = _delta_mean(before, after, H_TTFT)
    e_iter = _delta_mean(before, after, H_ITER_TOKENS)
    overheads = 0.0
    if kind == "prefill":
        batch, context = 1.0, 0.0
        if timings == "client":
            # what the client waited for: the prefill iteration plus one request overhead
            measured, source, overheads = client_ttft or math.nan, "client", 1.0
        elif e_prefill is not None:
            measured, source = e_prefill, "engine"
        else:
            measured, source = (client_ttft or math.nan) - (e_queue or 0.0), "client"
    else:
        batch = _decode_batch(ok)
        context = prompt + output / 2.0
        if e_itl is not None and timings == "engine":
            measured, source = e_itl, "engine"
        else:
            measured, source = client_tpot or math.nan, "client"
    return StepMeasurement(
        kind=kind,
        concurrency=c,
        requests=len(records),
        ok=len(ok),
        prompt_tokens=prompt,
        output_tokens=output,
        batch=batch,
        context_tokens=context,
        measured_s=measured,
        source=source,
        client_ttft_s=client_ttft,
        client_tpot_s=client_tpot,
        engine_prefill_s=e_prefill,
        engine_itl_s=e_itl,
        engine_queue_s=e_queue,
        engine_ttft_s=e_ttft,
        engine_tokens_per_iteration=e_iter,
        wall_s=wall_s,
        request_overheads=overheads,
    )


def _samples(config: ReplicaConfig, steps: Sequence[StepMeasurement]) -> list[IterationSample]:
    """One sample per distinct step: the median over rounds, so that a burst of interference
    on a shared machine during one round does not count (the steps keep every round)."""
    groups: dict[tuple[str, int, int], list[StepMeasurement]] = {}
    for s in steps:
        if math.isfinite(s.measured_s) and s.measured_s > 0 and (s.kind == "prefill" or s.batch):
            groups.setdefault((s.kind, s.concurrency, round(s.prompt_tokens)), []).append(s)
    samples = []
    for (kind, _c, prompt), group in groups.items():
        measured = float(np.median([s.measured_s for s in group]))
        if kind == "prefill":
            overheads = float(np.median([s.request_overheads for s in group]))
            samples.append(prefill_sample(config, prompt, 1, measured, request_overheads=overheads))
            continue
        batch = float(np.median([s.batch for s in group]))
        context = float(np.mean([s.context_tokens for s in group]))
        samples.append(
            IterationSample(
                config=config,
                measured_s=measured,
                decode_seqs=batch,
                decode_context_tokens=batch * context,
                kind="decode",
            )
        )
    return samples


async def _sweep(
    session: Session,
    plan: CalibrationPlan,
    on_step: Callable[[str], None] | None,
) -> tuple[list[StepMeasurement], bool]:
    info = session.info
    assert info is not None
    client = session.client

    async def paced(n: int, prompt: int, output: int) -> tuple[list[RequestRecord], float]:
        """``n`` requests ``prefill_gap_s`` apart, each alone on the engine (open loop)."""
        gap = plan.prefill_gap_s
        arrival = np.arange(n, dtype=float) * gap
        reqs = Requests(arrival, np.full(n, prompt), np.full(n, output), n * gap)
        return await session.open_loop(
            Schedule(reqs, "calibration prefill step"),
            max_duration_s=min(plan.step_max_s, n * gap),
            timeout_s=plan.timeout_s,
            drain_s=plan.timeout_s,
        )

    async def run(c: int, n: int, prompt: int, output: int) -> tuple[list[RequestRecord], float]:
        return await session.closed_loop(
            concurrency=c,
            input_tokens=prompt,
            output_tokens=output,
            max_requests=n,
            max_duration_s=plan.step_max_s,
            timeout_s=plan.timeout_s,
            drain_s=plan.timeout_s,
        )

    # Warm-up: the first requests after a start pay for lazy initialisation.
    if plan.warmup_requests:
        await run(1, plan.warmup_requests, plan.decode_prompt_tokens, plan.decode_output_tokens)
    steps: list[StepMeasurement] = []
    have_metrics = False
    todo: list[tuple[str, int, int, int, int]] = [
        ("prefill", 1, plan.requests_per_prompt, p, plan.prefill_output_tokens)
        for p in plan.prompt_tokens
    ] + [
        (
            "decode",
            c,
            c * plan.requests_per_slot,
            plan.decode_prompt_tokens,
            plan.decode_output_tokens,
        )
        for c in plan.concurrency
    ]
    # Rounds interleave the steps, so a slow minute of a shared machine hits one round of every
    # level instead of every round of one level; the fit takes each step's median over rounds.
    todo = todo * plan.rounds
    for kind, c, n, prompt, output in todo:
        if on_step is not None:
            on_step(
                f"{kind}: concurrency {c}, {prompt} prompt / {output} output tokens, {n} requests"
            )
        await asyncio.sleep(SETTLE_S)
        before = await _scrape(client, info)
        if kind == "prefill" and plan.timings == "client" and plan.prefill_gap_s > 0:
            records, wall = await paced(n, prompt, output)
        else:
            records, wall = await run(c, n, prompt, output)
        await asyncio.sleep(SETTLE_S)
        after = await _scrape(client, info)
        have_metrics = have_metrics or bool(before and after)
        steps.append(_step(kind, c, records, wall, before, after, plan.timings))
    return steps, have_metrics


def calibrate(
    endpoint: str,
    *,
    model: ModelArch | Callable[[ServerInfo], ModelArch],
    gpu: Gpu,
    plan: CalibrationPlan | None = None,
    base: Profile | None = None,
    name: str = "calibrated",
    max_num_seqs: int | None = None,
    engine_warmup_s: float | None = None,
    served_model: str | None = None,
    api_key: str | None = None,
    out: str | Path | None = None,
    note: str = "",
    on_step: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Sweep ``endpoint``, fit a profile for ``model`` on ``gpu``, save it to ``out`` if given.

    ``model`` may be a function of what the preflight learned (vLLM reports the model's folder,
    whose config.json gives the architecture). ``max_num_seqs`` describes the engine's batch
    limit in the profile's replica config (default: the highest concurrency level).
    """
    plan = plan or CalibrationPlan()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    result = asyncio.run(
        _calibrate(endpoint, plan, model, gpu, base, name, max_num_seqs, engine_warmup_s,
                   served_model, api_key, note, on_step, started)
    )  # fmt: skip
    result.runtime_s = time.perf_counter() - t0
    if out is not None:
        result.out_path = str(result.profile.save(out))
    return result


async def _calibrate(
    endpoint: str,
    plan: CalibrationPlan,
    model: ModelArch | Callable[[ServerInfo], ModelArch],
    gpu: Gpu,
    base: Profile | None,
    name: str,
    max_num_seqs: int | None,
    engine_warmup_s: float | None,
    served_model: str | None,
    api_key: str | None,
    note: str,
    on_step: Callable[[str], None] | None,
    started: dt.datetime,
) -> CalibrationResult:
    top = max(plan.concurrency) if plan.concurrency else 1
    async with Session(
        endpoint, model=served_model, api_key=api_key, max_connections=max(16, top)
    ) as session:
        info = session.info
        assert info is not None
        arch = model(info) if callable(model) else model
        plan = plan.check(info.max_model_len)
        config = ReplicaConfig(
            model=arch,
            gpu=gpu,
            tp=1,
            max_num_seqs=max_num_seqs or max(plan.concurrency),
            max_model_len=info.max_model_len,
        )
        engine = await _engine_name(session.client, info)
        steps, have_metrics = await _sweep(session, plan, on_step)
    samples = _samples(config, steps)
    base_profile = base or Profile()
    client = plan.timings == "client"
    if not client:  # engine times hold no request overhead, whatever the base profile says
        base_profile = replace(base_profile, request_overhead_s=0.0)
    if engine_warmup_s is not None:
        base_profile = replace(base_profile, engine_warmup_s=float(engine_warmup_s))
    prefills = [s for s in steps if s.kind == "prefill"]
    prompts = ", ".join(dict.fromkeys(str(round(s.prompt_tokens)) for s in prefills))
    decodes: dict[int, list[float]] = {}
    for s in steps:
        if s.kind == "decode":
            decodes.setdefault(s.concurrency, []).append(s.batch)
    levels = ", ".join(f"{c} (batch {np.mean(b):.2f})" for c, b in decodes.items())
    rounds = f" (median of {plan.rounds} interleaved rounds)" if plan.rounds > 1 else ""
    if client:
        pacing = (
            f"requests {plan.prefill_gap_s:g} s apart" if plan.prefill_gap_s > 0 else "back to back"
        )
        source = (
            "client-side latencies (prefill: median TTFT, one request overhead each; decode: "
            "mean TPOT)"
        )
    else:
        pacing = "back to back"
        source = "engine /metrics histograms" if have_metrics else "client-side latencies"
    fitted_on = (
        f"gpuwise calibrate against {engine} at {info.base_url} (served model '{info.model}', "
        f"architecture {arch.name}, hardware record {gpu.name}) on "
        f"{started.isoformat(timespec='seconds')}: prefill at concurrency 1 ({pacing}) with "
        f"prompts of {prompts} tokens; decode at concurrency {levels} with "
        f"{plan.decode_prompt_tokens} prompt / {plan.decode_output_tokens} output "
        f"tokens{rounds}; times from {source}" + (f"; {note}" if note else "")
    )
    description = (
        f"{arch.name} served by {engine} on {gpu.display_name}, fitted by gpuwise calibrate"
    )

    profile = fit_steps(
        samples,
        replace(base_profile, name=name, description=description, fitted_on=fitted_on),
        FIT_CLIENT if client else FIT_TP1,
    )
    predicted = predict(samples, profile)
    fits = [
        SampleFit(
            kind=smp.kind,
            batch=smp.decode_seqs or smp.prefill_seqs,
            prompt_tokens=smp.prefill_tokens,
            context_tokens=(smp.decode_context_tokens / smp.decode_seqs if smp.decode_seqs else 0),
            measured_s=smp.measured_s,
            predicted_s=float(p),
        )
        for smp, p in zip(samples, predicted, strict=True)
    ]
    c1 = [s for s in steps if s.kind == "prefill" and s.engine_ttft_s and s.client_ttft_s]
    overhead = (
        float(np.median([s.client_ttft_s - s.engine_ttft_s for s in c1])) if c1 else None  # type: ignore[operator]
    )
    warnings = list(info.warnings)
    if not have_metrics and client:
        warnings.append(
            f"{info.metrics_url} gave no vLLM histograms: only the client-side latencies "
            "were measured, so the API overhead cannot be told from the engine's time"
        )
    elif not have_metrics:
        warnings.append(
            f"{info.metrics_url} gave no vLLM histograms; iteration times are client-side "
            "latencies (they include HTTP and tokenization)"
        )
    return CalibrationResult(
        endpoint=info.completions_url,
        served_model=info.model,
        config=config,
        profile=profile,
        steps=steps,
        fits=fits,
        engine_metrics=have_metrics,
        started_at=started.isoformat(timespec="seconds"),
        runtime_s=0.0,
        api_overhead_s=overhead,
        warnings=warnings,
    )
