"""What ``gpuwise perf`` reports about one replica, as plain data (the CLI only renders it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuwise.catalog import Catalog
from gpuwise.perf.model import STORAGE_BYTES_PER_S, ReplicaConfig, ReplicaPerf
from gpuwise.perf.profile import Profile
from gpuwise.spec import Deployment

BATCH_SIZES = (1, 8, 32, 64, 128, 256)
CONTEXT_LENGTHS = (512, 2048, 8192)
PROMPT_LENGTHS = (128, 512, 2048, 8192)


def config_for(deployment: Deployment, catalog: Catalog) -> ReplicaConfig:
    """The replica a spec deployment describes, with catalog records resolved."""
    lim = deployment.limits
    return ReplicaConfig(
        model=catalog.model(deployment.model),
        gpu=catalog.gpu(deployment.gpu),
        tp=deployment.tp,
        weight_dtype=deployment.weight_dtype,
        kv_dtype=deployment.kv_dtype,
        max_num_seqs=lim.max_num_seqs,
        max_num_batched_tokens=lim.max_num_batched_tokens,
        gpu_memory_utilization=lim.gpu_memory_utilization,
        block_size=lim.block_size,
        max_model_len=lim.max_model_len,
    )


@dataclass(frozen=True)
class DecodePoint:
    batch: int
    context_tokens: int
    step_ms: float
    output_tokens_per_s: float
    fits_in_kv: bool


@dataclass(frozen=True)
class ReplicaSummary:
    model: str
    gpu: str
    tp: int
    weight_dtype: str
    kv_dtype: str
    profile: str
    fits: bool
    weight_gb_per_gpu: float
    weight_gb_total: float
    kv_bytes_per_token: float
    kv_bytes_per_token_per_gpu: float
    kv_cache_gb_per_gpu: float
    kv_capacity_tokens: int
    max_model_len: int
    max_concurrent_seqs: dict[int, int]  # context length -> sequences
    decode: list[DecodePoint]
    prefill_ms: dict[int, float]  # prompt length -> ms for one prompt
    load_s: dict[str, float]  # storage kind -> seconds to load the weights
    regime: dict[str, str] = field(default_factory=dict)  # which roof binds, per case
    not_fitting_reason: str = ""


def summarize_replica(config: ReplicaConfig, profile: Profile | None = None) -> ReplicaSummary:
    perf = ReplicaPerf(config, profile)
    mem = perf.memory
    reason = ""
    if not mem.fits:
        try:
            perf.check_fits()
        except ValueError as err:
            reason = str(err)
    decode = []
    for ctx in CONTEXT_LENGTHS:
        if ctx > mem.max_model_len:
            continue
        for b in BATCH_SIZES:
            if b > config.max_num_seqs:
                continue
            step = perf.decode_time_s(b, ctx)
            decode.append(
                DecodePoint(
                    b,
                    ctx,
                    round(step * 1e3, 3),
                    round(b / step, 1),
                    b * ctx <= mem.kv_capacity_tokens,
                )
            )
    return ReplicaSummary(
        model=config.model.name,
        gpu=config.gpu.name,
        tp=config.tp,
        weight_dtype=config.weight_dtype,
        kv_dtype=config.kv_dtype_resolved,
        profile=perf.profile.name,
        fits=mem.fits,
        weight_gb_per_gpu=round(mem.weight_bytes_per_gpu / 1e9, 2),
        weight_gb_total=round(mem.weight_bytes_total / 1e9, 2),
        kv_bytes_per_token=mem.kv_bytes_per_token,
        kv_bytes_per_token_per_gpu=mem.kv_bytes_per_token_per_gpu,
        kv_cache_gb_per_gpu=round(mem.kv_cache_bytes_per_gpu / 1e9, 2),
        kv_capacity_tokens=mem.kv_capacity_tokens,
        max_model_len=mem.max_model_len,
        max_concurrent_seqs={
            ctx: mem.max_concurrent_seqs(ctx, config.max_num_seqs, config.block_size)
            for ctx in CONTEXT_LENGTHS
            if ctx <= mem.max_model_len
        },
        decode=decode,
        prefill_ms={
            n: round(perf.prefill_time_s(n) * 1e3, 2)
            for n in PROMPT_LENGTHS
            if n <= min(mem.max_model_len, config.max_num_batched_tokens)
        },
        load_s={k: round(perf.load_time_s(k), 1) for k in STORAGE_BYTES_PER_S},
        regime=_regimes(perf),
        not_fitting_reason=reason,
    )


def _regimes(perf: ReplicaPerf) -> dict[str, str]:
    """Which roof binds: the lesson a user needs (decode waits on memory, prefill on compute)."""
    out = {}
    for label, kw in (
        ("decode batch 1", {"decode_seqs": 1, "decode_context_tokens": 1024}),
        ("decode batch 64", {"decode_seqs": 64, "decode_context_tokens": 64 * 1024}),
        ("prefill 2048 tokens", {"prefill_tokens": 2048}),
    ):
        out[label] = perf.bound(**kw)
    return out
