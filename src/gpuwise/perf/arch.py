"""Parameter and FLOP arithmetic of a transformer, from its architecture alone.

Kept separate from memory and timing so each formula can be checked against the published
parameter counts (the catalog carries them) before anything is built on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuwise.catalog.types import ModelArch

BYTES_PER_WEIGHT = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
# Weight-only int4/int8 (GPTQ/AWQ style) stores one fp16 scale (and zero) per group of 128.
GROUP_SCALE_BYTES_PER_WEIGHT = {"int4": 4.0 / 128, "int8": 4.0 / 128}
BYTES_PER_KV = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}


@dataclass(frozen=True)
class ParamCounts:
    """Parameters split by how an engine stores and reads them."""

    embedding: int  # input embedding table (a lookup: only touched rows are read)
    lm_head: int  # output projection (0 when tied to the embedding)
    attention: int  # all layers
    dense_mlp: int  # all dense-MLP layers
    expert_mlp: int  # all routed experts of all MoE layers
    active_expert_mlp: int  # routed experts a token actually passes through (+ shared experts)
    norms_and_router: int

    @property
    def total(self) -> int:
        return (
            self.embedding
            + self.lm_head
            + self.attention
            + self.dense_mlp
            + self.expert_mlp
            + self.norms_and_router
        )

    @property
    def active(self) -> int:
        """Parameters one token's forward pass touches (MoE: only its routed experts)."""
        return (
            self.embedding
            + self.lm_head
            + self.attention
            + self.dense_mlp
            + self.active_expert_mlp
            + self.norms_and_router
        )

    @property
    def linear_active(self) -> int:
        """Active parameters in matmuls run for every token (everything but the lookup/head)."""
        return self.attention + self.dense_mlp + self.active_expert_mlp

    @property
    def linear_total(self) -> int:
        return self.attention + self.dense_mlp + self.expert_mlp


def attention_params_per_layer(m: ModelArch) -> int:
    h = m.hidden_size
    if m.attention == "mla":
        qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = (
            h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * m.num_heads * qk_dim
            if m.q_lora_rank
            else h * m.num_heads * qk_dim
        )
        kv = (
            h * (m.kv_lora_rank + m.qk_rope_head_dim)
            + m.kv_lora_rank
            + m.kv_lora_rank * m.num_heads * (m.qk_nope_head_dim + m.v_head_dim)
        )
        o = m.num_heads * m.v_head_dim * h
        return q + kv + o
    q = h * m.num_heads * m.head_dim
    kv = 2 * h * m.num_kv_heads * m.head_dim
    o = m.num_heads * m.head_dim * h
    bias = (m.num_heads + 2 * m.num_kv_heads) * m.head_dim if m.qkv_bias else 0
    return q + kv + o + bias


def param_counts(m: ModelArch) -> ParamCounts:
    h = m.hidden_size
    embedding = m.vocab_size * h
    lm_head = 0 if m.tie_embeddings else m.vocab_size * h
    attention = attention_params_per_layer(m) * m.num_layers
    norms = (2 * m.num_layers + 1) * h
    if not m.is_moe:
        return ParamCounts(
            embedding, lm_head, attention, 3 * h * m.intermediate_size * m.num_layers, 0, 0, norms
        )
    moe_layers = m.num_layers - m.first_k_dense
    dense_mlp = 3 * h * m.intermediate_size * m.first_k_dense
    per_expert = 3 * h * m.moe_intermediate_size
    shared = per_expert * m.shared_experts * moe_layers
    routed = per_expert * m.num_experts * moe_layers
    active_routed = per_expert * m.experts_per_token * moe_layers
    router = h * m.num_experts * moe_layers
    return ParamCounts(
        embedding=embedding,
        lm_head=lm_head,
        attention=attention,
        dense_mlp=dense_mlp + shared,
        expert_mlp=routed,
        active_expert_mlp=active_routed,
        norms_and_router=norms + router,
    )


def kv_elements_per_token_per_layer(m: ModelArch) -> int:
    """Cached K/V elements per token per layer: 2·kv_heads·head_dim (GQA), or MLA's latent."""
    if m.attention == "mla":
        return m.kv_lora_rank + m.qk_rope_head_dim
    return 2 * m.num_kv_heads * m.head_dim


def attention_flops_per_token_per_context(m: ModelArch) -> float:
    """FLOPs one new token spends on each earlier token it attends to, over all layers.

    QK^T and the weighted sum of V each cost 2 FLOPs per multiply-add. For MLA (absorbed form,
    as vLLM runs decode) the score and value products run over the latent dimension.
    """
    if m.attention == "mla":
        per_head = (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
    else:
        per_head = 2 * m.head_dim
    return 2.0 * m.num_heads * per_head * m.num_layers
