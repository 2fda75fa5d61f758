"""The replica performance model: memory arithmetic by hand, roofline regimes, calibration."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gpuwise.catalog import get_gpu, get_model
from gpuwise.perf import PerfError, Profile, ReplicaConfig, ReplicaPerf, load_profile
from gpuwise.perf.arch import param_counts
from gpuwise.perf.calibrate import decode_sample, fit_profile, predict, prefill_sample
from gpuwise.perf.model import _sum_max_linear

KIB = 1024


def perf(model: str, gpu: str = "h100-sxm", **kw) -> ReplicaPerf:
    return ReplicaPerf(ReplicaConfig(model=get_model(model), gpu=get_gpu(gpu), **kw))


def test_llama_8b_gqa_memory_by_hand() -> None:
    p = perf("llama-3.1-8b")
    # 8,030,261,248 parameters x 2 bytes
    assert p.memory.weight_bytes_total == pytest.approx(8_030_261_248 * 2, rel=1e-9)
    # 32 layers x 8 KV heads x 128 head dim x 2 (K and V) x 2 bytes = 128 KiB
    assert p.memory.kv_bytes_per_token == 32 * 8 * 128 * 2 * 2 == 128 * KIB
    assert p.memory.fits


def test_llama_8b_kv_split_across_tp_and_fp8() -> None:
    p = perf("llama-3.1-8b", tp=2, kv_dtype="fp8")
    assert p.memory.kv_bytes_per_token == 64 * KIB
    assert p.memory.kv_bytes_per_token_per_gpu == 32 * KIB  # 4 KV heads per GPU


def test_kv_heads_replicate_when_tp_exceeds_them() -> None:
    p = perf("qwen2.5-7b", tp=8)  # 4 KV heads: each of 8 GPUs still holds one
    assert p.memory.kv_bytes_per_token_per_gpu == 28 * 1 * 128 * 2 * 2


def test_mixtral_moe_memory_uses_all_experts() -> None:
    p = perf("mixtral-8x7b", tp=2)
    pc = param_counts(get_model("mixtral-8x7b"))
    assert pc.total == 46_702_792_704 and pc.active == 12_879_925_248
    assert p.memory.weight_bytes_total == pytest.approx(pc.total * 2, rel=1e-9)
    assert p.memory.kv_bytes_per_token == 32 * 8 * 128 * 2 * 2


def test_deepseek_v3_mla_kv_is_the_latent() -> None:
    p = perf("deepseek-v3", "h200", tp=8, weight_dtype="fp8")
    # (kv_lora_rank 512 + rope dim 64) x 61 layers x 1 byte (fp8 KV follows fp8? no: auto->bf16)
    assert p.memory.kv_bytes_per_token == (512 + 64) * 61 * 2
    assert p.memory.kv_bytes_per_token_per_gpu == p.memory.kv_bytes_per_token  # replicated
    pc = param_counts(get_model("deepseek-v3"))
    assert pc.total == 671_026_404_352 and pc.active == 37_552_282_624
    # fp8 linears (1 byte) + 16-bit embeddings, head and norms
    emb = pc.embedding + pc.lm_head + pc.norms_and_router
    assert p.memory.weight_bytes_total == pytest.approx(pc.linear_total + 2 * emb, rel=1e-9)
    assert p.memory.fits


def test_70b_needs_tp2_on_h100() -> None:
    one = perf("llama-3.1-70b")
    assert not one.memory.fits
    with pytest.raises(PerfError, match="fits at tp 2"):
        one.check_fits()
    assert perf("llama-3.1-70b", tp=2).memory.fits


def test_int4_weight_only_includes_group_scales() -> None:
    p = perf("llama-3.1-8b", weight_dtype="int4")
    pc = param_counts(get_model("llama-3.1-8b"))
    expect = (
        pc.linear_total * (0.5 + 4 / 128) + (pc.embedding + pc.lm_head + pc.norms_and_router) * 2
    )
    assert p.memory.weight_bytes_total == pytest.approx(expect, rel=1e-9)


def test_max_concurrent_seqs_follows_blocks() -> None:
    p = perf("llama-3.1-8b", max_num_seqs=100_000)
    mem = p.memory
    assert mem.max_concurrent_seqs(2048, 100_000, 16) == mem.kv_capacity_blocks // 128
    assert mem.max_concurrent_seqs(2048, 8, 16) == 8


def test_roofline_regimes() -> None:
    p = perf("llama-3.1-8b")
    assert p.bound(decode_seqs=1, decode_context_tokens=1024) == "memory"
    assert p.bound(decode_seqs=8, decode_context_tokens=8 * 1024) == "memory"
    assert p.bound(prefill_tokens=4096) == "compute"
    # memory-bound decode: 8 sequences cost far less than 8x one sequence
    assert p.decode_time_s(8, 1024) < 1.5 * p.decode_time_s(1, 1024)
    # compute-bound prefill: doubling a large chunk roughly doubles its time
    ratio = p.prefill_time_s(8192) / p.prefill_time_s(4096)
    assert 1.8 < ratio < 2.4


def test_decode_run_closed_form_matches_loop() -> None:
    p = perf("llama-3.1-70b", tp=2)
    loop = sum(p.decode_time_s(48, 700 + i) for i in range(300))
    assert p.decode_run_time_s(48, 700, 300) == pytest.approx(loop, rel=1e-9)


def test_sum_max_linear_exact() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        a1, s1, a2, s2 = rng.uniform(-1, 1, 4)
        n = int(rng.integers(0, 60))
        ref = sum(max(a1 + s1 * i, a2 + s2 * i) for i in range(n))
        assert _sum_max_linear(a1, s1, a2, s2, n) == pytest.approx(ref, abs=1e-9)


def test_vectorised_iteration_time_matches_scalar() -> None:
    p = perf("llama-3.1-8b")
    b = np.array([1, 4, 16, 64])
    vec = p.iteration_time_s(decode_seqs=b, decode_context_tokens=b * 512)
    for i, bi in enumerate(b):
        assert vec[i] == pytest.approx(p.decode_time_s(int(bi), 512))


def test_load_time_from_storage_bandwidth() -> None:
    p = perf("llama-3.1-8b")
    assert p.load_time_s(1e9) == pytest.approx(16.06, rel=1e-3)
    assert p.load_time_s("host-memory") < p.load_time_s("nvme") < p.load_time_s("network")
    with pytest.raises(PerfError, match="storage"):
        p.load_time_s("floppy")


def test_calibration_recovers_known_factors() -> None:
    truth = Profile(
        compute_eff=0.55,
        compute_half_sat_flops=3e9,
        memory_eff=0.65,
        overhead_s=0.004,
        allreduce_latency_s=4e-5,
    )
    samples = []
    for gpu, tp in (("a100-80gb", 2), ("a100-80gb", 4), ("a100-80gb", 8), ("a100-80gb", 1)):
        model = "llama-2-70b" if tp > 1 else "llama-2-7b"
        cfg = ReplicaConfig(get_model(model), get_gpu(gpu), tp=tp, max_model_len=4096)
        for n in (128, 512, 2048, 8192):
            samples.append(prefill_sample(cfg, n, 1, 1.0))
        for b in (1, 8, 32, 128):
            samples.append(decode_sample(cfg, b, 1024, 1.0))
    measured = predict(samples, truth)
    samples = [replace(s, measured_s=float(m)) for s, m in zip(samples, measured, strict=True)]
    fitted = fit_profile(samples, Profile())
    assert fitted.compute_eff == pytest.approx(0.55, rel=0.05)
    assert fitted.memory_eff == pytest.approx(0.65, rel=0.05)
    assert fitted.overhead_s == pytest.approx(0.004, rel=0.1)
    assert fitted.allreduce_latency_s == pytest.approx(4e-5, rel=0.1)
    assert fitted.fit_error["median_abs_rel"] < 1e-3


def test_calibration_needs_enough_samples() -> None:
    cfg = ReplicaConfig(get_model("llama-2-7b"), get_gpu("a100-80gb"))
    with pytest.raises(PerfError, match="at least"):
        fit_profile([decode_sample(cfg, 1, 100, 0.01)])


def test_profile_round_trip(tmp_path) -> None:
    prof = Profile(name="x", compute_eff=0.5, fit_error={"median_abs_rel": 0.1})
    path = prof.save(tmp_path / "x.yaml")
    assert load_profile(path) == prof


def test_bad_profile_file_names_field(tmp_path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("profile:\n  compute_eff: 2.0\n")
    with pytest.raises(PerfError, match=r"profile.compute_eff"):
        load_profile(f)
    with pytest.raises(PerfError, match="built-in"):
        load_profile("no-such-profile")


def test_default_profile_is_the_a100_fit() -> None:
    prof = load_profile()
    assert prof.name == "default"
    assert "a100" in prof.fitted_on.lower()
