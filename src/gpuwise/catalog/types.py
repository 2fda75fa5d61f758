"""Typed records of the embedded catalog.

Every figure a plan or a bill depends on carries where it came from, so a user can check a number
before trusting a recommendation built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PricingKind = Literal["on-demand", "spot", "reserved"]
AttentionKind = Literal["mha", "gqa", "mla"]


@dataclass(frozen=True)
class Source:
    """Where a figure came from and when it was observed (ISO date, or 'undated')."""

    source: str
    date: str


@dataclass(frozen=True)
class Gpu:
    """One accelerator type. FLOP/s are dense (no sparsity), per GPU."""

    name: str  # canonical id, lower-case, e.g. "h100-sxm"
    display_name: str  # e.g. "H100 SXM 80GB"
    vendor: str  # "nvidia" | "amd"
    memory_bytes: int
    memory_bandwidth_bytes_per_s: float
    # dense tensor-core throughput per precision: keys among "bf16", "fp16", "fp8", "int8", "fp4"
    flops_per_s: dict[str, float]
    # GPU-to-GPU bandwidth inside one node, per GPU per direction (NVLink, xGMI or PCIe)
    interconnect_bytes_per_s: float
    interconnect_kind: str  # "nvlink" | "pcie" | "infinity-fabric"
    tdp_w: float
    aliases: tuple[str, ...] = ()
    sources: dict[str, Source] = field(default_factory=dict)  # figure name -> source


@dataclass(frozen=True)
class ModelArch:
    """A transformer's architecture, as its HF config.json states it."""

    name: str  # canonical id, lower-case, e.g. "llama-3.1-8b"
    hf_id: str  # e.g. "meta-llama/Llama-3.1-8B"
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # dense MLP width (for MoE: the dense layers' width)
    vocab_size: int
    max_position_embeddings: int
    attention: AttentionKind
    tie_embeddings: bool = False
    qkv_bias: bool = False
    # Mixture of experts (0 experts = dense model)
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_experts: int = 0
    first_k_dense: int = 0  # leading layers that are dense even in an MoE model
    # Multi-head latent attention (DeepSeek); zero for GQA/MHA
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # Published/derived parameter counts, used to check the architecture arithmetic
    published_params: int = 0
    published_active_params: int = 0
    aliases: tuple[str, ...] = ()
    sources: dict[str, Source] = field(default_factory=dict)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0


@dataclass(frozen=True)
class Price:
    """The price of one GPU for one hour from one provider, as observed on a date."""

    gpu: str  # canonical GPU id
    provider: str
    offering: str  # instance type or SKU
    pricing: PricingKind
    usd_per_gpu_hour: float
    region: str
    source: Source
    note: str = ""
    # Kept for the record but never chosen as a default: too old or illustrative to price a fleet.
    historical: bool = False
