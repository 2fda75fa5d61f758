"""One replica's memory and speed: the numbers every plan, simulation and policy rests on.

A replica is a model served by one engine on ``tp`` GPUs of one type. Its memory decides how many
sequences can run at once (the KV cache), and its iteration time decides how fast each batch
moves. Iteration time is a roofline: the larger of compute time (FLOPs over achievable FLOP/s)
and memory time (weights + KV + activations over achievable bandwidth), plus the tensor-parallel
all-reduces, a fixed per-iteration overhead and a per-sequence one (output processing). The
efficiency factors come from a ``Profile`` fitted to measurements, so the same formulas serve an
H100 and the local CPU engine. A profile may also carry a per-request latency outside the
engine (HTTP, tokenization: ``request_overhead_s``), which delays what a client sees but costs
no iteration time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gpuwise.catalog.types import Gpu, ModelArch
from gpuwise.perf.arch import (
    BYTES_PER_KV,
    BYTES_PER_WEIGHT,
    GROUP_SCALE_BYTES_PER_WEIGHT,
    ParamCounts,
    attention_flops_per_token_per_context,
    kv_elements_per_token_per_layer,
    param_counts,
)
from gpuwise.perf.profile import PerfError, Profile

REFERENCE_FLOPS = 312e12  # A100 dense bf16: the GPU the default profile's saturation is fit on
REFERENCE_LINK_BYTES_PER_S = 300e9  # A100 NVLink3 per direction

# Sustained read bandwidth a weight load sees, by where the weights come from (assumptions,
# stated so a user can override them with a number): object storage or a model hub over the
# network, a local NVMe disk, and pinned host memory over PCIe.
STORAGE_BYTES_PER_S = {"network": 1.0e9, "nvme": 3.0e9, "host-memory": 20.0e9}

# When a spec leaves limits.max_model_len unset, gpuwise sizes for this context instead of the
# model's maximum (128k for Llama-3.1): a chat fleet rarely needs a KV cache able to hold one
# 128k sequence, and vLLM refuses to start when it cannot. Emitted manifests pass it explicitly.
DEFAULT_MAX_MODEL_LEN = 8192

WEIGHT_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4")
TP_DEGREES = (1, 2, 4, 8)


@dataclass(frozen=True)
class ReplicaConfig:
    """What decides one replica's memory and speed (the engine limits that matter for both)."""

    model: ModelArch
    gpu: Gpu
    tp: int = 1
    weight_dtype: str = "bf16"
    kv_dtype: str = "auto"
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    gpu_memory_utilization: float = 0.9
    block_size: int = 16
    max_model_len: int | None = None

    @property
    def kv_dtype_resolved(self) -> str:
        if self.kv_dtype != "auto":
            return self.kv_dtype
        return self.weight_dtype if self.weight_dtype in ("bf16", "fp16") else "bf16"

    @property
    def model_len(self) -> int:
        """The longest sequence the engine must hold; see DEFAULT_MAX_MODEL_LEN."""
        if self.max_model_len:
            return self.max_model_len
        return min(self.model.max_position_embeddings, DEFAULT_MAX_MODEL_LEN)


@dataclass(frozen=True)
class MemoryReport:
    weight_bytes_per_gpu: float
    weight_bytes_total: float
    kv_bytes_per_token: float  # whole replica (all GPUs), the figure users quote
    kv_bytes_per_token_per_gpu: float
    usable_bytes_per_gpu: float  # gpu memory x gpu_memory_utilization
    reserved_bytes_per_gpu: float  # activations, CUDA context, graphs
    kv_cache_bytes_per_gpu: float
    kv_capacity_tokens: int
    kv_capacity_blocks: int
    max_model_len: int

    @property
    def fits(self) -> bool:
        return self.kv_capacity_tokens >= self.max_model_len

    def max_concurrent_seqs(self, context_tokens: int, max_num_seqs: int, block_size: int) -> int:
        blocks_per_seq = max(1, math.ceil(context_tokens / block_size))
        return int(min(max_num_seqs, self.kv_capacity_blocks // blocks_per_seq))


class ReplicaPerf:
    """Memory and timing of one replica; cheap to build, pure, and safe to share."""

    def __init__(self, config: ReplicaConfig, profile: Profile | None = None) -> None:
        c = config
        if c.weight_dtype not in BYTES_PER_WEIGHT:
            raise PerfError(f"weight dtype '{c.weight_dtype}': use one of {WEIGHT_DTYPES}")
        if c.kv_dtype_resolved not in BYTES_PER_KV:
            raise PerfError(f"kv dtype '{c.kv_dtype}': use one of auto, bf16, fp16, fp8")
        if c.weight_dtype == "fp8" and "fp8" not in c.gpu.flops_per_s and c.gpu.vendor == "nvidia":
            pass  # vLLM runs fp8 weights weight-only (Marlin) on Ampere/Ada without fp8 cores
        self.config = c
        self.profile = profile or Profile()
        self.params: ParamCounts = param_counts(c.model)

    # ------------------------------------------------------------------ memory

    @cached_property
    def memory(self) -> MemoryReport:
        c, p, m = self.config, self.params, self.config.model
        w = BYTES_PER_WEIGHT[c.weight_dtype] + GROUP_SCALE_BYTES_PER_WEIGHT.get(c.weight_dtype, 0)
        # Engines quantize the linear layers; embeddings, head and norms stay in 16 bits.
        weight_total = p.linear_total * w + (p.embedding + p.lm_head + p.norms_and_router) * 2.0
        weight_per_gpu = weight_total / c.tp
        kv_el = kv_elements_per_token_per_layer(m)
        kv_b = BYTES_PER_KV[c.kv_dtype_resolved]
        kv_total = kv_el * m.num_layers * kv_b
        if m.attention == "mla":
            kv_per_gpu = kv_total  # the latent is replicated on every TP rank
        else:
            heads_per_gpu = math.ceil(m.num_kv_heads / c.tp)  # replicated when tp > kv heads
            kv_per_gpu = 2 * heads_per_gpu * m.head_dim * m.num_layers * kv_b
        usable = c.gpu.memory_bytes * c.gpu_memory_utilization
        act_peak = self._activation_peak_bytes_per_gpu()
        reserved = self.profile.activation_reserve_bytes + act_peak
        kv_cache = max(0.0, usable - weight_per_gpu - reserved)
        tokens = int(kv_cache // kv_per_gpu)
        blocks = tokens // c.block_size
        return MemoryReport(
            weight_bytes_per_gpu=weight_per_gpu,
            weight_bytes_total=weight_total,
            kv_bytes_per_token=kv_total,
            kv_bytes_per_token_per_gpu=kv_per_gpu,
            usable_bytes_per_gpu=usable,
            reserved_bytes_per_gpu=reserved,
            kv_cache_bytes_per_gpu=kv_cache,
            kv_capacity_tokens=blocks * c.block_size,
            kv_capacity_blocks=blocks,
            max_model_len=c.model_len,
        )

    def _activation_peak_bytes_per_gpu(self) -> float:
        """Peak activations of a full token budget (the engine's profiling run reserves this)."""
        c, m = self.config, self.config.model
        inter = m.moe_intermediate_size * m.experts_per_token if m.is_moe else m.intermediate_size
        per_token = (4 * m.hidden_size + 2 * inter / c.tp) * 2.0
        logits = m.vocab_size / c.tp * 4.0 * min(c.max_num_seqs, c.max_num_batched_tokens)
        return c.max_num_batched_tokens * per_token + logits

    def check_fits(self) -> None:
        """Raise a PerfError that says what would fit, as an engineer would answer."""
        mem = self.memory
        if mem.fits:
            return
        c = self.config
        where = f"{c.model.name} ({c.weight_dtype}) on {c.tp}x {c.gpu.name}"
        gb = 1e9
        if mem.kv_cache_bytes_per_gpu <= 0:
            why = (
                f"needs {mem.weight_bytes_per_gpu / gb:.1f} GB of weights per GPU plus "
                f"{mem.reserved_bytes_per_gpu / gb:.1f} GB reserved, but "
                f"{c.gpu_memory_utilization:.0%} of {c.gpu.memory_bytes / gb:.1f} GB is "
                f"{mem.usable_bytes_per_gpu / gb:.1f} GB"
            )
        else:
            why = (
                f"the KV cache left after the weights holds {mem.kv_capacity_tokens:,} tokens, "
                f"fewer than max_model_len {mem.max_model_len:,}"
            )
        hints = self.fitting_alternatives()
        hint = ("; " + "; ".join(hints)) if hints else "; nothing up to tp 8 fits"
        raise PerfError(f"{where} does not fit: {why}{hint}")

    def fitting_alternatives(self) -> list[str]:
        """The smallest TP at this precision, and the smallest precision at this TP, that fit."""
        c = self.config
        out: list[str] = []
        for tp in TP_DEGREES:
            if tp > c.tp and ReplicaPerf(_with(c, tp=tp), self.profile).memory.fits:
                out.append(f"it fits at tp {tp}")
                break
        for dt in ("fp8", "int8", "int4"):
            if BYTES_PER_WEIGHT[dt] < BYTES_PER_WEIGHT[c.weight_dtype]:
                alt = _with(c, weight_dtype=dt)
                if ReplicaPerf(alt, self.profile).memory.fits:
                    out.append(f"it fits at tp {c.tp} with {dt} weights")
                    break
        shorter = self.memory.kv_capacity_tokens
        if self.memory.kv_cache_bytes_per_gpu > 0 and shorter >= 1024:
            out.append(f"or set limits.max_model_len <= {shorter:,}")
        return out

    # ------------------------------------------------------------------ timing

    @cached_property
    def _coeffs(self) -> _Coeffs:
        c, p, m, g, prof = (
            self.config,
            self.params,
            self.config.model,
            self.config.gpu,
            self.profile,
        )
        flops_peak = peak_flops(g, c.weight_dtype)
        mem = self.memory
        link = g.interconnect_bytes_per_s or REFERENCE_LINK_BYTES_PER_S
        ar_steps = math.log2(c.tp) if c.tp > 1 else 0.0
        return _Coeffs(
            flops_linear_per_token=2.0 * p.linear_active / c.tp,
            flops_head_per_seq=2.0 * (p.lm_head or p.embedding) / c.tp,
            flops_attn_per_ctx=attention_flops_per_token_per_context(m) / c.tp,
            layer_flops_per_token=2.0 * p.linear_active / c.tp / m.num_layers,
            half_sat_flops=prof.compute_half_sat_flops * flops_peak / REFERENCE_FLOPS,
            flops_per_s=flops_peak * prof.compute_eff,
            weight_bytes=(mem.weight_bytes_per_gpu - p.embedding * 2.0 / c.tp),
            kv_bytes_per_token=mem.kv_bytes_per_token_per_gpu,
            act_bytes_per_token=m.num_layers
            * (4 * m.hidden_size + 3 * self._mlp_width() / c.tp)
            * 2.0,
            bytes_per_s=g.memory_bandwidth_bytes_per_s * prof.memory_eff,
            fixed_s=prof.overhead_s + prof.overhead_per_layer_s * m.num_layers,
            n_allreduce=(2 * m.num_layers) if c.tp > 1 else 0,
            ar_latency_s=prof.allreduce_latency_s * ar_steps * REFERENCE_LINK_BYTES_PER_S / link,
            ar_s_per_token=(
                2.0 * (c.tp - 1) / c.tp * m.hidden_size * 2.0 / (link * prof.allreduce_bw_eff)
                if c.tp > 1
                else 0.0
            ),
            seq_s=prof.overhead_per_seq_s,
        )

    def _mlp_width(self) -> int:
        m = self.config.model
        return m.moe_intermediate_size * m.experts_per_token if m.is_moe else m.intermediate_size

    def iteration_time_s(
        self,
        prefill_tokens: float | np.ndarray = 0,
        prefill_context_tokens: float | np.ndarray = 0,
        decode_seqs: float | np.ndarray = 0,
        decode_context_tokens: float | np.ndarray = 0,
        prefill_seqs: float | np.ndarray | None = None,
        prefill_attention_pairs: float | np.ndarray | None = None,
    ) -> float | np.ndarray:
        """Time of one engine iteration (vectorised over numpy arrays).

        ``prefill_tokens``: new prompt tokens computed this iteration (all chunks together);
        ``prefill_context_tokens``: tokens already cached before those chunks (summed over
        chunks); ``decode_seqs``: sequences producing one token each; ``decode_context_tokens``:
        their contexts summed. ``prefill_attention_pairs`` (query-key pairs the chunks attend
        over) defaults to one chunk's causal count, tokens*(context + tokens/2).
        """
        k = self._coeffs
        tokens = np.asarray(prefill_tokens, dtype=float) + np.asarray(decode_seqs, dtype=float)
        compute_s, memory_s = self._roofs(
            prefill_tokens,
            prefill_context_tokens,
            decode_seqs,
            decode_context_tokens,
            prefill_seqs,
            prefill_attention_pairs,
        )
        comm_s = k.n_allreduce * (k.ar_latency_s + k.ar_s_per_token * tokens)
        pt = np.asarray(prefill_tokens, dtype=float)
        ps = np.where(pt > 0, 1.0, 0.0) if prefill_seqs is None else prefill_seqs
        seqs_out = np.asarray(decode_seqs, dtype=float) + np.asarray(ps, dtype=float)
        t = np.where(
            tokens > 0,
            np.maximum(compute_s, memory_s) + comm_s + k.fixed_s + k.seq_s * seqs_out,
            0.0,
        )
        return float(t) if t.ndim == 0 else t

    def _roofs(
        self,
        prefill_tokens: float | np.ndarray = 0,
        prefill_context_tokens: float | np.ndarray = 0,
        decode_seqs: float | np.ndarray = 0,
        decode_context_tokens: float | np.ndarray = 0,
        prefill_seqs: float | np.ndarray | None = None,
        prefill_attention_pairs: float | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compute time and memory time of a batch, before overheads and communication."""
        k = self._coeffs
        pt = np.asarray(prefill_tokens, dtype=float)
        pc = np.asarray(prefill_context_tokens, dtype=float)
        ds = np.asarray(decode_seqs, dtype=float)
        dc = np.asarray(decode_context_tokens, dtype=float)
        if prefill_seqs is None:
            prefill_seqs = np.where(pt > 0, 1.0, 0.0)
        if prefill_attention_pairs is None:
            prefill_attention_pairs = pt * (pc + pt / 2.0)
        tokens = pt + ds
        seqs_out = ds + np.asarray(prefill_seqs, dtype=float)
        attn_pairs = dc + np.asarray(prefill_attention_pairs, dtype=float)
        flops = (
            k.flops_linear_per_token * tokens
            + k.flops_head_per_seq * seqs_out
            + k.flops_attn_per_ctx * attn_pairs
        )
        layer = k.layer_flops_per_token * tokens
        eff = layer / (layer + k.half_sat_flops)
        compute_s = flops / (k.flops_per_s * np.maximum(eff, 1e-12))
        memory_s = (
            k.weight_bytes
            + k.kv_bytes_per_token * (dc + pc + tokens)
            + k.act_bytes_per_token * tokens
        ) / k.bytes_per_s
        return compute_s, memory_s

    def bound(self, **batch: float) -> str:
        """'compute' or 'memory': which roof sets the time of this batch (see iteration_time_s)."""
        c, m = self._roofs(**batch)
        return "compute" if float(c) >= float(m) else "memory"

    def prefill_time_s(self, prompt_tokens: int, batch: int = 1) -> float:
        """Time to prefill ``batch`` prompts of ``prompt_tokens`` in one iteration (no chunking)."""
        return float(
            self.iteration_time_s(
                prefill_tokens=prompt_tokens * batch,
                prefill_seqs=batch,
                prefill_attention_pairs=batch * prompt_tokens * prompt_tokens / 2.0,
            )
        )

    def decode_time_s(self, batch: int, context_tokens: float) -> float:
        """Time of one decode iteration of ``batch`` sequences at ``context_tokens`` each."""
        return float(
            self.iteration_time_s(decode_seqs=batch, decode_context_tokens=batch * context_tokens)
        )

    def decode_run_time_s(self, batch: int, context_tokens_start: float, iterations: int) -> float:
        """Total time of ``iterations`` decode steps of a fixed batch whose contexts grow by one.

        Between arrivals and completions the batch composition of a decode-only engine is fixed,
        so the simulator advances many iterations at once; each term is linear in the context,
        and the sum of a max of two arithmetic series is done in closed form.
        """
        if iterations <= 0 or batch <= 0:
            return 0.0
        k = self._coeffs
        b = float(batch)
        c0 = float(context_tokens_start) * b
        layer = k.layer_flops_per_token * b
        eff = layer / (layer + k.half_sat_flops)
        fc = k.flops_per_s * eff
        # compute_s(i) = a_c + s_c*i ; memory_s(i) = a_m + s_m*i, with context c0 + b*i
        a_c = (
            k.flops_linear_per_token * b + k.flops_head_per_seq * b + k.flops_attn_per_ctx * c0
        ) / fc
        s_c = k.flops_attn_per_ctx * b / fc
        a_m = (
            k.weight_bytes + k.kv_bytes_per_token * (c0 + b) + k.act_bytes_per_token * b
        ) / k.bytes_per_s
        s_m = k.kv_bytes_per_token * b / k.bytes_per_s
        n = iterations
        fixed = n * (
            k.fixed_s + k.seq_s * b + k.n_allreduce * (k.ar_latency_s + k.ar_s_per_token * b)
        )
        return fixed + _sum_max_linear(a_c, s_c, a_m, s_m, n)

    @property
    def request_overhead_s(self) -> float:
        """Latency each request pays outside the engine (see ``Profile.request_overhead_s``);
        the simulator adds it to every served request's first-token and finish times."""
        return self.profile.request_overhead_s

    def coeff_vector(self) -> np.ndarray:
        """The timing coefficients as a flat float64 array, in ``_Coeffs`` field order.

        Compiled inner loops (the simulator's numba kernel) cannot hold Python objects; they take
        this vector and :func:`iteration_time_from_coeffs`, so they use the very same formula.
        """
        k = self._coeffs
        return np.array([float(getattr(k, f)) for f in COEFF_FIELDS], dtype=np.float64)

    def load_time_s(self, storage: str | float = "nvme") -> float:
        """Seconds to read the weights from storage into GPU memory on a cold start."""
        if isinstance(storage, str):
            if storage not in STORAGE_BYTES_PER_S:
                raise PerfError(
                    f"storage '{storage}': use one of {', '.join(STORAGE_BYTES_PER_S)} "
                    "or a bandwidth in bytes per second"
                )
            bw = STORAGE_BYTES_PER_S[storage]
        else:
            bw = float(storage)
            if bw <= 0:
                raise PerfError("storage bandwidth must be positive")
        return self.memory.weight_bytes_total / bw

    def cold_start_s(self, storage: str | float = "nvme") -> float:
        """Weight load plus engine warm-up (image pull and node provisioning are the fleet's)."""
        return self.load_time_s(storage) + self.profile.engine_warmup_s


@dataclass(frozen=True)
class _Coeffs:
    flops_linear_per_token: float
    flops_head_per_seq: float
    flops_attn_per_ctx: float
    layer_flops_per_token: float
    half_sat_flops: float
    flops_per_s: float
    weight_bytes: float
    kv_bytes_per_token: float
    act_bytes_per_token: float
    bytes_per_s: float
    fixed_s: float
    n_allreduce: int
    ar_latency_s: float
    ar_s_per_token: float
    seq_s: float  # per sequence that produces a token (decode seqs + prefill seqs)


COEFF_FIELDS = tuple(_Coeffs.__dataclass_fields__)  # field order, as coeff_vector lays them out


def iteration_time_from_coeffs(
    coeffs: np.ndarray,
    prefill_tokens: float,
    prefill_context_tokens: float,
    decode_seqs: float,
    decode_context_tokens: float,
    prefill_seqs: float,
    prefill_attention_pairs: float,
) -> float:
    """``ReplicaPerf.iteration_time_s`` for one batch, in scalar float arithmetic.

    Written without numpy calls or objects so that numba can compile it into the simulator's
    kernel; ``coeffs`` is ``ReplicaPerf.coeff_vector()``. All arguments are required (the
    object method's defaults for prefill_seqs and attention pairs are the caller's job here).
    Keep it in step with ``iteration_time_s`` and ``_roofs``: a test checks that they agree.
    """
    tokens = prefill_tokens + decode_seqs
    if tokens <= 0.0:
        return 0.0
    seqs_out = decode_seqs + prefill_seqs
    attn_pairs = decode_context_tokens + prefill_attention_pairs
    flops = coeffs[0] * tokens + coeffs[1] * seqs_out + coeffs[2] * attn_pairs
    layer = coeffs[3] * tokens
    eff = layer / (layer + coeffs[4])
    if eff < 1e-12:
        eff = 1e-12
    compute_s = flops / (coeffs[5] * eff)
    memory_s = (
        coeffs[6]
        + coeffs[7] * (decode_context_tokens + prefill_context_tokens + tokens)
        + coeffs[8] * tokens
    ) / coeffs[9]
    comm_s = coeffs[11] * (coeffs[12] + coeffs[13] * tokens)
    roof_s = compute_s if compute_s > memory_s else memory_s
    return roof_s + comm_s + coeffs[10] + coeffs[14] * seqs_out


def _sum_max_linear(a1: float, s1: float, a2: float, s2: float, n: int) -> float:
    """sum_{i=0}^{n-1} max(a1 + s1*i, a2 + s2*i), exactly, in O(1)."""

    def series(a: float, s: float, i0: int, i1: int) -> float:  # sum over i in [i0, i1)
        cnt = i1 - i0
        return a * cnt + s * (i0 + i1 - 1) * cnt / 2.0 if cnt > 0 else 0.0

    if s1 == s2:
        return series(max(a1, a2), s1, 0, n)
    cross = (a2 - a1) / (s1 - s2)  # where the two lines meet; one side each dominates
    k = min(n, max(0, math.ceil(cross)))
    head = series(a1, s1, 0, k) if a1 >= a2 else series(a2, s2, 0, k)
    end1, end2 = a1 + s1 * (n - 1), a2 + s2 * (n - 1)
    tail = series(a1, s1, k, n) if end1 >= end2 else series(a2, s2, k, n)
    return head + tail


def peak_flops(gpu: Gpu, weight_dtype: str) -> float:
    """Dense FLOP/s the matmuls run at: fp8 on fp8 tensor cores, else 16-bit (weight-only quant)."""
    f = gpu.flops_per_s
    if weight_dtype == "fp8" and "fp8" in f:
        return f["fp8"]
    for key in ("bf16", "fp16"):
        if key in f:
            return f[key]
    raise PerfError(f"GPU '{gpu.name}' has no 16-bit FLOP/s figure in the catalog")


def _with(c: ReplicaConfig, **changes: object) -> ReplicaConfig:
    from dataclasses import replace

    return replace(c, **changes)
