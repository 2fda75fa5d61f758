"""The embedded catalog: every listed entry loads, every figure is sourced, lookups forgive
spelling, user files extend it, bad files fail loudly, and the default price is reproducible."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from gpuwise.catalog import (
    ENV_VAR,
    Catalog,
    CatalogError,
    ModelArch,
    Price,
    Source,
    default_catalog,
    default_price,
    get_gpu,
    get_model,
    load_catalog,
)

DATA = Path(__file__).parent / "data"

GPU_IDS = [
    "h100-sxm",
    "h100-pcie",
    "h200",
    "b200",
    "a100-40gb",
    "a100-80gb",
    "l40s",
    "l4",
    "a10g",
    "t4",
    "mi300x",
]
MODEL_IDS = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "mistral-7b",
    "mixtral-8x7b",
    "qwen2.5-7b",
    "qwen2.5-72b",
    "gemma-2-9b",
    "phi-3-mini",
    "deepseek-v3",
    "llama-2-7b",
    "llama-2-70b",
]
GPU_FIGURES = (
    "memory_bytes",
    "memory_bandwidth_bytes_per_s",
    "interconnect_bytes_per_s",
    "tdp_w",
)


@pytest.fixture(autouse=True)
def _no_user_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own GPUWISE_CATALOG must not change what the embedded data tests see.
    monkeypatch.delenv(ENV_VAR, raising=False)


def write(tmp_path: Path, text: str, name: str = "extra.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- every entry loads


@pytest.mark.parametrize("gpu_id", GPU_IDS)
def test_every_listed_gpu_loads_with_positive_figures(gpu_id: str) -> None:
    gpu = default_catalog().gpus[gpu_id]
    assert gpu.name == gpu_id
    assert gpu.memory_bytes > 0 and isinstance(gpu.memory_bytes, int)
    assert gpu.memory_bandwidth_bytes_per_s > 0
    assert gpu.interconnect_bytes_per_s > 0
    assert gpu.tdp_w > 0
    assert {"bf16", "fp16"} & gpu.flops_per_s.keys()
    assert all(v > 0 for v in gpu.flops_per_s.values())
    assert gpu.vendor in {"nvidia", "amd"}
    assert gpu.interconnect_kind in {"nvlink", "pcie", "infinity-fabric"}


def test_catalog_has_exactly_the_listed_gpus_and_models() -> None:
    catalog = default_catalog()
    assert sorted(catalog.gpus) == sorted(GPU_IDS)
    assert sorted(catalog.models) == sorted(MODEL_IDS)


def test_gpu_figures_are_converted_to_base_units() -> None:
    catalog = default_catalog()
    h100 = catalog.gpu("h100-sxm")
    assert h100.memory_bytes == 80 * 2**30  # aiconfigurator states GiB
    assert h100.memory_bandwidth_bytes_per_s == pytest.approx(3.35e12)
    assert h100.flops_per_s["bf16"] == pytest.approx(989e12)
    assert h100.flops_per_s["fp8"] == pytest.approx(1978e12)
    assert h100.interconnect_bytes_per_s == pytest.approx(450e9)
    assert catalog.gpu("a100-40gb").memory_bytes == 40 * 10**9  # llm-analysis states GB
    assert catalog.gpu("a100-80gb").interconnect_bytes_per_s == pytest.approx(300e9)
    assert catalog.gpu("b200").interconnect_bytes_per_s == pytest.approx(900e9)
    assert catalog.gpu("b200").flops_per_s["fp4"] == pytest.approx(9000e12)
    assert catalog.gpu("h100-pcie").interconnect_bytes_per_s == pytest.approx(64e9)
    assert catalog.gpu("l4").interconnect_bytes_per_s == pytest.approx(32e9)
    assert catalog.gpu("t4").interconnect_bytes_per_s == pytest.approx(16e9)
    assert catalog.gpu("mi300x").interconnect_kind == "infinity-fabric"


def test_precisions_follow_the_hardware() -> None:
    catalog = default_catalog()
    assert "bf16" not in catalog.gpu("t4").flops_per_s  # Turing has no BF16
    assert catalog.gpu("t4").flops_per_s["fp16"] == pytest.approx(65e12)
    a10g = catalog.gpu("a10g").flops_per_s
    assert a10g["bf16"] == a10g["fp16"]
    assert "fp8" not in catalog.gpu("a100-80gb").flops_per_s  # no FP8 on Ampere
    assert "fp8" in catalog.gpu("h100-sxm").flops_per_s
    assert "fp4" in catalog.gpu("b200").flops_per_s


def test_uncertain_figures_say_so() -> None:
    catalog = default_catalog()
    assert "UNCERTAIN" in catalog.gpu("a10g").sources["flops_per_s.fp16"].source
    assert "UNCERTAIN" in catalog.gpu("a10g").sources["tdp_w"].source
    assert "UNCERTAIN" in catalog.gpu("mi300x").sources["flops_per_s.int8"].source
    assert "UNCERTAIN" in catalog.gpu("mi300x").sources["interconnect_bytes_per_s"].source


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_listed_model_loads(model_id: str) -> None:
    model = default_catalog().models[model_id]
    assert model.name == model_id
    assert model.hf_id
    assert model.num_heads % model.num_kv_heads == 0
    assert model.published_params >= model.published_active_params > 0


# ---------------------------------------------------------------------------- every figure sourced


def _assert_sourced(source: Source | None, what: str) -> None:
    assert source is not None, f"{what} has no source"
    assert source.source.strip(), f"{what} has an empty source"
    assert source.date.strip(), f"{what} has no date"


@pytest.mark.parametrize("gpu_id", GPU_IDS)
def test_every_gpu_figure_has_a_source_and_date(gpu_id: str) -> None:
    gpu = default_catalog().gpus[gpu_id]
    for name in GPU_FIGURES:
        _assert_sourced(gpu.sources.get(name), f"{gpu_id}.{name}")
    for precision in gpu.flops_per_s:
        key = f"flops_per_s.{precision}"
        _assert_sourced(gpu.sources.get(key), f"{gpu_id}.{key}")


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_model_figure_has_a_source_and_date(model_id: str) -> None:
    model = default_catalog().models[model_id]
    for f in dataclasses.fields(ModelArch):
        if f.name in {"name", "hf_id", "aliases", "sources"}:
            continue
        if getattr(model, f.name) != f.default:  # every figure the file sets, zeros excepted
            _assert_sourced(model.sources.get(f.name), f"{model_id}.{f.name}")


def test_every_price_has_a_source_and_date() -> None:
    catalog = default_catalog()
    assert catalog.prices
    for price in catalog.prices:
        what = f"{price.gpu} {price.provider} {price.offering} {price.pricing}"
        _assert_sourced(price.source, what)
        assert price.gpu in catalog.gpus
        assert price.pricing in {"on-demand", "spot", "reserved"}
        assert price.usd_per_gpu_hour > 0


def test_instance_prices_are_divided_per_gpu_and_marked_derived() -> None:
    rows = default_catalog().prices_for("h100-sxm", "on-demand")
    coreweave = next(p for p in rows if p.provider == "CoreWeave")
    assert coreweave.usd_per_gpu_hour == pytest.approx(49.24 / 8)
    assert "derived" in coreweave.note


def test_every_listed_gpu_has_an_on_demand_price() -> None:
    catalog = default_catalog()
    for gpu_id in GPU_IDS:
        assert catalog.default_price(gpu_id).usd_per_gpu_hour > 0


def test_price_gaps_are_recorded() -> None:
    assert any("reserved" in gap for gap in default_catalog().price_gaps)


# ---------------------------------------------------------------------------- lookups


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("h100-sxm", "h100-sxm"),
        ("H100_SXM", "h100-sxm"),
        ("h100 sxm", "h100-sxm"),
        ("H100 SXM 80GB", "h100-sxm"),
        ("h100", "h100-sxm"),
        ("H100-SXM5", "h100-sxm"),
        ("H100 PCIe", "h100-pcie"),
        ("H200 SXM 141GB", "h200"),
        ("B200", "b200"),
        ("a100", "a100-40gb"),
        ("A100 SXM 80GB", "a100-80gb"),
        ("A100-80GB", "a100-80gb"),
        ("NVIDIA L40S", "l40s"),
        ("Tesla T4", "t4"),
        ("mi300x", "mi300x"),
        ("AMD Instinct MI300X", "mi300x"),
    ],
)
def test_gpu_lookup_ignores_case_separators_and_accepts_aliases(name: str, expected: str) -> None:
    assert get_gpu(name).name == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama-3.1-8b", "llama-3.1-8b"),
        ("Llama 3.1 8B", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", "llama-3.1-70b"),
        ("LLAMA2-70B", "llama-2-70b"),
        ("meta-llama/Llama-2-7b-hf", "llama-2-7b"),
        ("Qwen/Qwen2.5-72B-Instruct", "qwen2.5-72b"),
        ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),
        ("Mixtral-8x7B-v0.1", "mixtral-8x7b"),
    ],
)
def test_model_lookup_accepts_aliases_and_hf_ids(name: str, expected: str) -> None:
    assert get_model(name).name == expected


def test_unknown_gpu_suggests_the_closest_and_says_how_to_list() -> None:
    with pytest.raises(CatalogError) as info:
        get_gpu("h10-sxm")
    message = str(info.value)
    assert "unknown GPU 'h10-sxm'; did you mean 'h100-sxm'?" in message
    assert "gpuwise catalog gpus" in message


def test_unknown_model_suggests_the_closest() -> None:
    with pytest.raises(
        CatalogError, match=r"did you mean 'llama-3\.1-8b'\?.*gpuwise catalog models"
    ):
        get_model("lama-3.1-8b")


def test_unknown_name_with_nothing_close_still_says_what_to_do() -> None:
    with pytest.raises(CatalogError) as info:
        get_gpu("zzzzzzzz")
    assert "did you mean" not in str(info.value)
    assert "gpuwise catalog gpus" in str(info.value)


def test_catalog_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        get_gpu("")


# ---------------------------------------------------------------------------- architectures


def _config(name: str) -> dict[str, Any]:
    return json.loads((DATA / "config_json" / f"{name}.config.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("model_id", "config"),
    [
        ("llama-3.1-8b", "meta-llama--Meta-Llama-3.1-8B"),
        ("llama-3.1-70b", "meta-llama--Meta-Llama-3.1-70B"),
        ("llama-3.1-405b", "meta-llama--Meta-Llama-3.1-405B"),
        ("mixtral-8x7b", "mistralai--Mixtral-8x7B-v0.1"),
        ("deepseek-v3", "deepseek-ai--DeepSeek-V3"),
    ],
)
def test_architecture_matches_its_config_json(model_id: str, config: str) -> None:
    model = get_model(model_id)
    cfg = _config(config)
    assert model.hidden_size == cfg["hidden_size"]
    assert model.num_layers == cfg["num_hidden_layers"]
    assert model.num_heads == cfg["num_attention_heads"]
    assert model.num_kv_heads == cfg["num_key_value_heads"]
    assert model.intermediate_size == cfg["intermediate_size"]
    assert model.vocab_size == cfg["vocab_size"]
    assert model.max_position_embeddings == cfg["max_position_embeddings"]
    assert model.tie_embeddings == cfg["tie_word_embeddings"]
    assert model.qkv_bias == cfg.get("attention_bias", False)
    if "head_dim" in cfg or model.attention != "mla":
        expected_head_dim = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
        assert model.head_dim == expected_head_dim
    if "num_local_experts" in cfg:  # Mixtral
        assert model.num_experts == cfg["num_local_experts"]
        assert model.experts_per_token == cfg["num_experts_per_tok"]
        assert model.moe_intermediate_size == cfg["intermediate_size"]
    if "n_routed_experts" in cfg:  # DeepSeek-V3
        assert model.attention == "mla"
        assert model.num_experts == cfg["n_routed_experts"]
        assert model.experts_per_token == cfg["num_experts_per_tok"]
        assert model.shared_experts == cfg["n_shared_experts"]
        assert model.first_k_dense == cfg["first_k_dense_replace"]
        assert model.moe_intermediate_size == cfg["moe_intermediate_size"]
        assert model.kv_lora_rank == cfg["kv_lora_rank"]
        assert model.q_lora_rank == cfg["q_lora_rank"]
        assert model.qk_nope_head_dim == cfg["qk_nope_head_dim"]
        assert model.qk_rope_head_dim == cfg["qk_rope_head_dim"]
        assert model.v_head_dim == cfg["v_head_dim"]
        assert model.head_dim == model.qk_nope_head_dim + model.qk_rope_head_dim


def _dense_param_count(m: ModelArch, norms_per_layer: int = 2) -> int:
    h, hd = m.hidden_size, m.head_dim
    attention = 2 * h * m.num_heads * hd + 2 * h * m.num_kv_heads * hd
    if m.qkv_bias:
        attention += (m.num_heads + 2 * m.num_kv_heads) * hd
    per_layer = attention + 3 * h * m.intermediate_size + norms_per_layer * h
    embeddings = m.vocab_size * h * (1 if m.tie_embeddings else 2)
    return embeddings + m.num_layers * per_layer + h


@pytest.mark.parametrize(
    ("model_id", "norms_per_layer"),
    [
        ("llama-3.1-8b", 2),
        ("llama-3.1-70b", 2),
        ("llama-3.1-405b", 2),
        ("mistral-7b", 2),
        ("qwen2.5-7b", 2),
        ("qwen2.5-72b", 2),
        ("gemma-2-9b", 4),  # Gemma-2 adds pre- and post-feed-forward norms
        ("phi-3-mini", 2),
        ("llama-2-7b", 2),
        ("llama-2-70b", 2),
    ],
)
def test_dense_architecture_arithmetic_gives_the_published_count(
    model_id: str, norms_per_layer: int
) -> None:
    model = get_model(model_id)
    assert _dense_param_count(model, norms_per_layer) == model.published_params
    assert model.published_active_params == model.published_params


def test_mixtral_arithmetic_gives_total_and_active_counts() -> None:
    m = get_model("mixtral-8x7b")
    h, hd = m.hidden_size, m.head_dim
    attention = 2 * h * m.num_heads * hd + 2 * h * m.num_kv_heads * hd
    expert = 3 * h * m.moe_intermediate_size
    router, norms = h * m.num_experts, 2 * h
    outside = 2 * m.vocab_size * h + h
    total = outside + m.num_layers * (attention + m.num_experts * expert + router + norms)
    active = outside + m.num_layers * (attention + m.experts_per_token * expert + router + norms)
    assert (total, active) == (m.published_params, m.published_active_params)


def test_llama2_dimensions_match_vidur_profiles() -> None:
    # The Vidur profiling tables (mlp.csv columns) used to validate against Splitwise and Vidur.
    seven, seventy = get_model("llama-2-7b"), get_model("llama-2-70b")
    assert (seven.num_heads, seven.num_kv_heads, seven.hidden_size) == (32, 32, 4096)
    assert seven.intermediate_size == 11008
    assert (seventy.num_heads, seventy.num_kv_heads, seventy.hidden_size) == (64, 8, 8192)
    assert seventy.intermediate_size == 28672
    assert seven.max_position_embeddings == seventy.max_position_embeddings == 4096


# ---------------------------------------------------------------------------- user catalog files

USER_FILE = """
gpus:
  rtx-4090:
    display_name: RTX 4090 24GB
    vendor: nvidia
    aliases: ["RTX 4090", "GeForce RTX 4090"]
    memory_bytes: {value: 24, unit: GiB, source: "my datasheet", date: "2026-01-01"}
    memory_bandwidth_bytes_per_s: 1.008e+12
    flops_per_s:
      fp16: {value: 165.2, unit: TFLOPS}
    interconnect_kind: pcie
    interconnect_bytes_per_s: {value: 32, unit: GB/s}
    tdp_w: 450
  H100 SXM 80GB:
    tdp_w: {value: 650, source: "measured power cap", date: "2026-12-01"}
models:
  tiny-llama:
    hf_id: local/tiny-llama
    source: "our own config.json"
    date: "2026-12-01"
    hidden_size: 64
    num_layers: 2
    num_heads: 4
    num_kv_heads: 2
    head_dim: 16
    intermediate_size: 128
    vocab_size: 1000
    max_position_embeddings: 512
    attention: gqa
prices:
  - gpu: GeForce RTX 4090
    provider: Our colo
    offering: rack 7
    pricing: reserved
    usd_per_gpu_hour: 0.31
    date: 2026-12-01
"""


def test_user_file_extends_and_overrides_without_touching_the_embedded_catalog(
    tmp_path: Path,
) -> None:
    catalog = load_catalog([write(tmp_path, USER_FILE)])

    rtx = catalog.gpu("rtx 4090")
    assert rtx.name == "rtx-4090"
    assert rtx.memory_bytes == 24 * 2**30
    assert rtx.memory_bandwidth_bytes_per_s == pytest.approx(1.008e12)
    assert rtx.flops_per_s == {"fp16": pytest.approx(165.2e12)}
    assert rtx.sources["memory_bytes"] == Source("my datasheet", "2026-01-01")
    assert str(tmp_path) in rtx.sources["tdp_w"].source  # bare numbers cite the file

    h100 = catalog.gpu("h100-sxm")
    assert h100.tdp_w == 650
    assert h100.sources["tdp_w"].source == "measured power cap"
    assert h100.memory_bytes == 80 * 2**30  # the rest of the entry stays embedded

    tiny = catalog.model("tiny-llama")
    assert tiny.hf_id == "local/tiny-llama"
    assert tiny.sources["hidden_size"] == Source("our own config.json", "2026-12-01")

    (price,) = catalog.prices_for("rtx-4090")
    assert price.usd_per_gpu_hour == 0.31
    assert price.source.date == "2026-12-01"
    assert catalog.default_price("rtx-4090", "reserved") == price

    assert catalog.files[-1].endswith("extra.yaml")
    embedded = default_catalog()
    assert embedded.gpu("h100-sxm").tdp_w == 700
    assert "rtx-4090" not in embedded.gpus


def test_environment_variable_names_user_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write(tmp_path, "gpus:\n  h100:\n    tdp_w: 600\n", "first.yaml")
    second = write(tmp_path, "gpus:\n  h100-sxm:\n    tdp_w: 610\n", "second.yaml")
    monkeypatch.setenv(ENV_VAR, f"{first}{os.pathsep}{second}")
    assert default_catalog().gpu("h100-sxm").tdp_w == 610  # later files win
    third = write(tmp_path, "gpus:\n  h100-sxm:\n    tdp_w: 620\n", "third.yaml")
    assert load_catalog([third]).gpu("h100-sxm").tdp_w == 620  # explicit paths win over the env


def test_user_price_row_replaces_the_embedded_row_with_the_same_offer(tmp_path: Path) -> None:
    text = """
prices:
  - {gpu: h100-sxm, provider: AWS, offering: p5.48xlarge, pricing: on-demand, region: us-east-1,
     usd_per_gpu_hour: 4.00, date: "2026-12-01", source: "our AWS bill"}
"""
    catalog = load_catalog([write(tmp_path, text)])
    aws = [p for p in catalog.prices_for("h100-sxm", "on-demand") if p.provider == "AWS"]
    assert [p.usd_per_gpu_hour for p in aws] == [4.00]
    assert len(catalog.prices) == len(default_catalog().prices)


def test_loading_is_cached_until_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "gpus:\n  h100-sxm:\n    tdp_w: 600\n")
    assert load_catalog([path]) is load_catalog([path])
    assert default_catalog() is default_catalog()
    path.write_text("gpus:\n  h100-sxm:\n    tdp_w: 601.5\n", encoding="utf-8")
    assert load_catalog([path]).gpu("h100-sxm").tdp_w == 601.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpus: [h100\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("gpu:\n  h100-sxm: {}\n", "gpu: unknown key"),
        (
            "gpus:\n  h100-sxm:\n    memory_bytes: {value: 80, unit: GiBs}\n",
            "gpus.h100-sxm.memory_bytes.unit: unknown memory unit 'GiBs'",
        ),
        ("gpus:\n  h100-sxm:\n    tdp_w: -5\n", "gpus.h100-sxm.tdp_w: must be a positive number"),
        ("gpus:\n  h100-sxm:\n    tdpw: 5\n", "gpus.h100-sxm.tdpw: unknown field"),
        ("gpus:\n  h100-sxm:\n    vendor: acme\n", "gpus.h100-sxm.vendor: is 'acme'"),
        (
            "gpus:\n  new-gpu:\n    vendor: nvidia\n",
            "gpus.new-gpu.interconnect_kind: missing",
        ),
        ("models:\n  llama-3.1-8b:\n    num_layers: 3.5\n", "models.llama-3.1-8b.num_layers"),
        (
            "models:\n  llama-3.1-8b:\n    num_kv_heads: 7\n",
            "models.llama-3.1-8b.num_kv_heads: must divide num_heads",
        ),
        (
            "prices:\n  - {gpu: h10-sxm, provider: x, pricing: spot, usd_per_gpu_hour: 1, "
            "date: '2026-01-01'}\n",
            "prices[0].gpu: unknown GPU 'h10-sxm'; did you mean 'h100-sxm'?",
        ),
        (
            "prices:\n  - {gpu: h100-sxm, provider: x, pricing: cheap, usd_per_gpu_hour: 1, "
            "date: '2026-01-01'}\n",
            "prices[0].pricing: is 'cheap'",
        ),
        (
            "prices:\n  - {gpu: h100-sxm, provider: x, pricing: spot, usd_per_gpu_hour: 1}\n",
            "prices[0].date: missing",
        ),
        ("schema_version: 2\n", "schema_version: is 2"),
    ],
)
def test_malformed_user_file_error_names_the_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(CatalogError) as info:
        load_catalog([path])
    message = str(info.value)
    assert f"catalog file {path}" in message
    assert expected in message
    assert "fix the file" in message


def test_missing_user_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"missing\.yaml: the file does not exist"):
        load_catalog([tmp_path / "missing.yaml"])


def test_alias_clash_between_user_and_embedded_entries_is_an_error(tmp_path: Path) -> None:
    text = """
gpus:
  my-gpu:
    vendor: nvidia
    aliases: ["H100"]
    memory_bytes: 1
    memory_bandwidth_bytes_per_s: 1
    flops_per_s: {bf16: 1}
    interconnect_kind: pcie
    interconnect_bytes_per_s: 1
    tdp_w: 1
"""
    with pytest.raises(CatalogError, match=r"'H100' names both 'h100-sxm' and 'my-gpu'"):
        load_catalog([write(tmp_path, text)])


# ---------------------------------------------------------------------------- default price


def _expected_default(catalog: Catalog, gpu: str, pricing: str) -> Price:
    rows = [
        p
        for p in catalog.prices
        if p.gpu == gpu
        and p.pricing == pricing
        and not p.historical
        and p.source.date[:1].isdigit()
    ]
    rows.sort(key=lambda p: (p.usd_per_gpu_hour, p.provider.casefold(), p.offering.casefold()))
    return rows[(len(rows) - 1) // 2]


@pytest.mark.parametrize("gpu_id", ["h100-sxm", "h200", "a100-80gb", "l40s", "mi300x"])
def test_default_price_is_the_median_dated_offer(gpu_id: str) -> None:
    catalog = default_catalog()
    chosen = catalog.default_price(gpu_id)
    assert chosen == _expected_default(catalog, gpu_id, "on-demand")
    assert chosen == default_price(gpu_id, "on-demand")
    assert not chosen.historical


def test_default_price_does_not_depend_on_row_order() -> None:
    catalog = default_catalog()
    reversed_catalog = Catalog(
        gpus=catalog.gpus, models=catalog.models, prices=tuple(reversed(catalog.prices))
    )
    for gpu_id in GPU_IDS:
        assert reversed_catalog.default_price(gpu_id) == catalog.default_price(gpu_id)


def _price(provider: str, usd: float, date: str = "2026-01-01", **kw: object) -> Price:
    return Price(
        gpu="t4",
        provider=provider,
        offering="x",
        pricing="spot",
        usd_per_gpu_hour=usd,
        region="r",
        source=Source("https://example.invalid", date),
        **kw,  # type: ignore[arg-type]
    )


def test_default_price_breaks_ties_by_provider_and_skips_historical_and_undated() -> None:
    base = default_catalog()
    prices = (
        _price("Zeta", 1.0),
        _price("Alpha", 1.0),
        _price("Beta", 3.0),
        _price("Old", 0.1, historical=True),
        _price("Undated", 0.2, date="undated (snapshot)"),
    )
    catalog = Catalog(gpus=base.gpus, models=base.models, prices=prices)
    # dated, current rows sorted: Alpha 1.0, Zeta 1.0, Beta 3.0 -> the median is Zeta
    assert catalog.default_price("t4", "spot").provider == "Zeta"
    two = Catalog(gpus=base.gpus, models=base.models, prices=prices[:2])
    assert two.default_price("t4", "spot").provider == "Alpha"  # lower middle of an even count
    undated_only = Catalog(gpus=base.gpus, models=base.models, prices=prices[3:])
    assert undated_only.default_price("t4", "spot").provider == "Undated"


def test_missing_default_price_says_which_gpu_and_what_to_do() -> None:
    with pytest.raises(CatalogError) as info:
        default_price("t4", "reserved")
    message = str(info.value)
    assert "no reserved price for GPU 't4'" in message
    assert "price override" in message


def test_historical_rows_are_never_the_default() -> None:
    catalog = default_catalog()
    assert any(p.historical for p in catalog.prices_for("a10g", "spot"))
    with pytest.raises(CatalogError, match="no spot price for GPU 'a10g'"):
        catalog.default_price("a10g", "spot")


def test_unknown_pricing_kind_is_rejected() -> None:
    with pytest.raises(CatalogError, match="unknown pricing kind 'hourly'"):
        default_catalog().prices_for("h100-sxm", "hourly")  # type: ignore[arg-type]


def test_prices_for_accepts_aliases_and_sorts_cheapest_first() -> None:
    rows = default_catalog().prices_for("H100 SXM 80GB", "on-demand")
    assert rows and all(p.gpu == "h100-sxm" for p in rows)
    assert [p.usd_per_gpu_hour for p in rows] == sorted(p.usd_per_gpu_hour for p in rows)
