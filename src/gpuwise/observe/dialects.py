"""Engine metric dialects as data: which exposed series give which canonical signal.

Each serving engine names the same concepts differently, and vLLM renamed its own across
versions (``gpu_cache_usage_perc`` -> ``kv_cache_usage_perc``, ``time_per_output_token_seconds``
-> ``inter_token_latency_seconds``). Keeping the mapping as tables (not code paths) means a new
engine version is a new row, and the window arithmetic in ``window.py`` / the PromQL in
``prometheus.py`` never branch on the engine.

Every candidate list is ordered: the first series present wins, so old and new names map to the
same signal. What an engine cannot provide is recorded with the reason (``unavailable``), so the
report says *why* a number is missing instead of showing a silent NaN.

Sources: ``shared/reference/observability.md`` (vLLM wheels 0.6.6 ... 0.33.0 inspected, SGLang
0.5.23, TGI @db931fc, Triton @e1db8a6, tensorrtllm_backend @0b9d7d5, llama.cpp server,
dcgm-exporter @d5e5f51).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from gpuwise.observe.exposition import Labels, Snapshot

__all__ = [
    "DCGM",
    "DIALECTS",
    "UNKNOWN",
    "Dialect",
    "GpuMetrics",
    "Metric",
    "Ratio",
    "detect_dialect",
    "promql_dedupe",
    "promql_selector",
    "select",
    "vllm_version_range",
]


@dataclass(frozen=True)
class Metric:
    """One exposed series family plus a label filter.

    ``only`` / ``exclude`` are ``(label, values)`` pairs (a PromQL ``=~`` / ``!~``); ``scale``
    converts to canonical units (percent -> fraction, ms -> s); ``model_scoped`` is False for
    series that describe the whole server (GPU utilisation) and carry no model label.
    """

    name: str
    kind: str = "gauge"  # gauge | counter | histogram | hist_sum (a histogram's _sum as counter)
    only: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[tuple[str, tuple[str, ...]], ...] = ()
    scale: float = 1.0
    model_scoped: bool = True
    # Series that differ only in these labels report the same thing (SGLang's tensor-parallel
    # ranks); keep one (the max) instead of summing them.
    dedupe: tuple[str, ...] = ()

    @property
    def series_name(self) -> str:
        return self.name + "_sum" if self.kind == "hist_sum" else self.name


@dataclass(frozen=True)
class Ratio:
    """A fraction computed from two gauges (TRT-LLM KV blocks: used / max)."""

    num: Metric
    den: Metric


@dataclass(frozen=True)
class Dialect:
    """How one engine (and version family) exposes the canonical signals."""

    key: str
    engine: str
    title: str
    version_range: str
    model_label: str | None
    queue: tuple[Metric, ...] = ()
    running: tuple[Metric, ...] = ()
    kv_usage: tuple[Metric | Ratio, ...] = ()
    prompt_tokens: tuple[Metric, ...] = ()
    output_tokens: tuple[Metric, ...] = ()
    finished_ok: tuple[Metric, ...] = ()  # requests that finished normally
    failed: tuple[Metric, ...] = ()  # failed, aborted, rejected (all are summed)
    arrived: tuple[Metric, ...] = ()  # an arrival counter, where the engine has one
    preemptions: tuple[Metric, ...] = ()
    ttft: tuple[Metric, ...] = ()
    tpot: tuple[Metric, ...] = ()
    e2e: tuple[Metric, ...] = ()
    gpu_busy: tuple[Metric, ...] = ()  # engine-native GPU utilisation (Triton), 0..1
    # Means from counter pairs where an engine has no histogram: (extra key, sum, count, scale)
    means: tuple[tuple[str, Metric, Metric, float], ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    known_caps_s: Mapping[str, float] = field(default_factory=dict)  # top finite bucket bounds
    notes: tuple[str, ...] = ()


def rate_sources(d: Dialect) -> tuple[tuple[str, tuple, bool], ...]:
    """(canonical signal, counters that can give it, sum every candidate?) for the per-second
    rates: the one list both readers (scrape windows and Prometheus) compute from counters."""
    return (
        ("prompt_tokens_per_s", d.prompt_tokens, False),
        ("output_tokens_per_s", d.output_tokens, False),
        ("completed_rps", d.finished_ok, False),
        ("errors_per_s", d.failed, True),
        ("preemptions_per_s", d.preemptions, False),
    )


@dataclass(frozen=True)
class GpuMetrics:
    """DCGM exporter fields (``etc/default-counters.csv``) and the labels that join them."""

    busy: tuple[Metric, ...]
    memory_used_mib: str
    power_w: str
    pod_labels: tuple[tuple[str, str], ...]  # (pod label, namespace label), in order of trust
    gpu_id_labels: tuple[str, ...]


DCGM = GpuMetrics(
    # GR_ENGINE_ACTIVE is a ratio of time a context's pipes were busy, and is reported under MIG;
    # GPU_UTIL (0-100) counts time with *any* kernel running, so it reads high at batch size 1
    # (NVML nvmlUtilization_t; dcgm-exporter #341) and is absent under MIG (#430).
    busy=(
        Metric("DCGM_FI_PROF_GR_ENGINE_ACTIVE", model_scoped=False),
        Metric("DCGM_FI_DEV_GPU_UTIL", scale=0.01, model_scoped=False),
    ),
    memory_used_mib="DCGM_FI_DEV_FB_USED",
    power_w="DCGM_FI_DEV_POWER_USAGE",
    # With honorLabels false, Prometheus renames the exporter's own pod label to exported_pod.
    pod_labels=(("pod", "namespace"), ("exported_pod", "exported_namespace")),
    gpu_id_labels=("Hostname", "hostname", "UUID", "gpu", "GPU_I_ID"),
)


def _m(name: str, kind: str = "gauge", **kw) -> Metric:
    return Metric(name, kind, **kw)


# ---- vLLM ----------------------------------------------------------------------------------------
_VLLM_COMMON = dict(
    engine="vllm",
    model_label="model_name",
    queue=(_m("vllm:num_requests_waiting"),),
    running=(_m("vllm:num_requests_running"),),
    kv_usage=(_m("vllm:kv_cache_usage_perc"), _m("vllm:gpu_cache_usage_perc")),
    prompt_tokens=(_m("vllm:prompt_tokens", "counter"),),
    output_tokens=(_m("vllm:generation_tokens", "counter"),),
    finished_ok=(
        _m("vllm:request_success", "counter", exclude=(("finished_reason", ("abort", "error")),)),
    ),
    failed=(
        _m("vllm:request_success", "counter", only=(("finished_reason", ("abort", "error")),)),
        _m("vllm:admission_rejections", "counter"),
    ),
    preemptions=(_m("vllm:num_preemptions", "counter"),),
    ttft=(_m("vllm:time_to_first_token_seconds", "histogram"),),
    # ITL is the 0.10+ name of the per-token histogram that V0 called TPOT (same buckets), so
    # both map to tpot_*; the per-request mean TPOT histogram is the fallback.
    tpot=(
        _m("vllm:inter_token_latency_seconds", "histogram"),
        _m("vllm:time_per_output_token_seconds", "histogram"),
        _m("vllm:request_time_per_output_token_seconds", "histogram"),
    ),
    e2e=(_m("vllm:e2e_request_latency_seconds", "histogram"),),
    # vLLM served by Triton's vllm_backend re-exports these next to Triton's own GPU gauges.
    gpu_busy=(_m("nv_gpu_utilization", model_scoped=False),),
    unavailable={
        "gpu_busy": "vLLM exports no GPU utilisation (and none at all on CPU); "
        "needs DCGM exporter metrics",
    },
)

VLLM_V1 = Dialect(
    key="vllm-v1",
    title="vLLM (V1 engine names)",
    version_range=">=0.7.3",
    known_caps_s={"ttft": 2560.0, "tpot": 80.0, "e2e": 7680.0},
    notes=(
        "vllm:prompt_tokens_total includes prefix-cache hits",
        "errors_per_s counts finished_reason abort and error plus admission rejections",
    ),
    **_VLLM_COMMON,  # type: ignore[arg-type]
)

VLLM_V0 = Dialect(
    key="vllm-v0",
    title="vLLM (V0 engine names)",
    version_range="<=0.11 (V0 engine)",
    known_caps_s={"ttft": 10.0, "tpot": 2.5, "e2e": 60.0},
    notes=(
        "V0 histograms stop at TTFT 10 s, TPOT 2.5 s, e2e 60 s: a quantile beyond is a lower bound",
        "vllm:prompt_tokens_total includes prefix-cache hits",
    ),
    **_VLLM_COMMON,  # type: ignore[arg-type]
)

# ---- SGLang --------------------------------------------------------------------------------------
_SG = {"dedupe": ("tp_rank", "pp_rank", "moe_ep_rank")}
SGLANG = Dialect(
    key="sglang",
    engine="sglang",
    title="SGLang",
    version_range="any (sglang: prefix)",
    model_label="model_name",
    queue=(_m("sglang:num_queue_reqs", **_SG),),
    running=(_m("sglang:num_running_reqs", **_SG),),
    kv_usage=(_m("sglang:token_usage", **_SG),),
    prompt_tokens=(_m("sglang:prompt_tokens", "counter", **_SG),),
    output_tokens=(_m("sglang:generation_tokens", "counter", **_SG),),
    finished_ok=(_m("sglang:num_requests", "counter", **_SG),),
    failed=(_m("sglang:num_aborted_requests", "counter", **_SG),),
    preemptions=(_m("sglang:num_retracted_requests", "counter", **_SG),),
    ttft=(_m("sglang:time_to_first_token_seconds", "histogram", **_SG),),
    tpot=(
        _m("sglang:inter_token_latency_seconds", "histogram", **_SG),
        _m("sglang:time_per_output_token_seconds", "histogram", **_SG),
        _m("sglang:request_time_per_output_token_seconds", "histogram", **_SG),
    ),
    e2e=(_m("sglang:e2e_request_latency_seconds", "histogram", **_SG),),
    unavailable={"gpu_busy": "SGLang exports no GPU utilisation; needs DCGM exporter metrics"},
    known_caps_s={"ttft": 400.0, "e2e": 2400.0},
    notes=(
        "SGLang <=0.4 TTFT buckets stop at 30 s and TPOT at 2.5 s",
        "sglang:num_requests_total counts finished requests, aborted ones included",
        "series that differ only in tp_rank/pp_rank/moe_ep_rank are counted once (max)",
    ),
)

# ---- TGI -----------------------------------------------------------------------------------------
TGI = Dialect(
    key="tgi",
    engine="tgi",
    title="Hugging Face TGI",
    version_range="any (tgi_ prefix)",
    model_label=None,
    queue=(_m("tgi_queue_size"),),
    running=(_m("tgi_batch_current_size"),),
    prompt_tokens=(_m("tgi_request_input_length", "hist_sum"),),
    output_tokens=(_m("tgi_request_generated_tokens", "hist_sum"),),
    finished_ok=(_m("tgi_request_success", "counter"),),
    failed=(_m("tgi_request_failure", "counter"),),
    arrived=(_m("tgi_request_count", "counter"),),
    tpot=(_m("tgi_request_mean_time_per_token_duration", "histogram"),),
    e2e=(_m("tgi_request_duration", "histogram"),),
    unavailable={
        "kv_usage": "TGI exports no KV-cache usage gauge",
        "kv_usage_max": "TGI exports no KV-cache usage gauge",
        "preemptions_per_s": "TGI exports no preemption counter",
        "ttft_p50_s": "TGI exports no TTFT histogram (its dashboard adds p50 queue and prefill)",
        "ttft_p95_s": "TGI exports no TTFT histogram",
        "ttft_p99_s": "TGI exports no TTFT histogram",
        "gpu_busy": "TGI exports no GPU utilisation; needs DCGM exporter metrics",
    },
    known_caps_s={"tpot": 145.61, "e2e": 145.61},
    notes=("TGI tpot is each request's mean time per token, not per-token latency",),
)

# ---- Triton --------------------------------------------------------------------------------------
_TRITON_COMMON = dict(
    model_label="model",
    queue=(_m("nv_inference_pending_request_count"),),
    finished_ok=(_m("nv_inference_request_success", "counter"),),
    failed=(_m("nv_inference_request_failure", "counter"),),
    # Opt-in (--metrics-config histogram_latencies=true); milliseconds.
    ttft=(_m("nv_inference_first_response_histogram_ms", "histogram", scale=0.001),),
    gpu_busy=(_m("nv_gpu_utilization", model_scoped=False),),
    means=(
        (
            "mean_e2e_s",
            _m("nv_inference_request_duration_us", "counter"),
            _m("nv_inference_request_success", "counter"),
            1e-6,
        ),
        (
            "mean_queue_s",
            _m("nv_inference_queue_duration_us", "counter"),
            _m("nv_inference_request_success", "counter"),
            1e-6,
        ),
    ),
)
_TRITON_UNAVAILABLE = {
    "prompt_tokens_per_s": "Triton core counts inferences, not tokens",
    "output_tokens_per_s": "Triton core counts inferences, not tokens",
    "preemptions_per_s": "Triton exports no preemption counter",
    "tpot_p50_s": "Triton exports no per-token latency",
    "tpot_p95_s": "Triton exports no per-token latency",
    "e2e_p95_s": "Triton exports cumulative microsecond counters, no latency histogram "
    "(the mean is in extra: mean_e2e_s)",
}

TRITON = Dialect(
    key="triton",
    engine="triton",
    title="NVIDIA Triton Inference Server",
    version_range="any (nv_inference_ prefix)",
    unavailable={
        **_TRITON_UNAVAILABLE,
        "running": "Triton core exports no in-flight gauge",
        "kv_usage": "Triton core has no KV cache (TensorRT-LLM backend reports one)",
        "kv_usage_max": "Triton core has no KV cache",
    },
    notes=("nv_gpu_utilization is 0-1 (DCGM_FI_DEV_GPU_UTIL is 0-100)",),
    **_TRITON_COMMON,  # type: ignore[arg-type]
)

_TRT = "nv_trt_llm_request_metrics"
_TRT_KV = "nv_trt_llm_kv_cache_block_metrics"
TRITON_TRTLLM = Dialect(
    key="triton-trtllm",
    engine="triton-trtllm",
    title="Triton with the TensorRT-LLM backend",
    version_range=">=23.11 (nv_trt_llm_ prefix; base Triton counters from 23.12)",
    queue=(
        _m(_TRT, only=(("request_type", ("waiting",)),)),
        _m("nv_inference_pending_request_count"),
    ),
    running=(_m(_TRT, only=(("request_type", ("active",)),)),),
    kv_usage=(
        _m(_TRT_KV, only=(("kv_cache_block_type", ("fraction",)),)),
        Ratio(
            _m(_TRT_KV, only=(("kv_cache_block_type", ("used",)),)),
            _m(_TRT_KV, only=(("kv_cache_block_type", ("max",)),)),
        ),
    ),
    unavailable=_TRITON_UNAVAILABLE,
    notes=(
        "older TRT-LLM backends have no request_type=waiting; the queue falls back to "
        "nv_inference_pending_request_count",
    ),
    **{k: v for k, v in _TRITON_COMMON.items() if k != "queue"},  # type: ignore[arg-type]
)

# ---- llama.cpp -----------------------------------------------------------------------------------
LLAMACPP = Dialect(
    key="llamacpp",
    engine="llamacpp",
    title="llama.cpp server",
    version_range="any (llamacpp: prefix)",
    model_label=None,
    queue=(_m("llamacpp:requests_deferred"),),
    running=(_m("llamacpp:requests_processing"),),
    # Removed from mainline in ggml-org/llama.cpp PR #13660; ik_llama.cpp still exports it.
    kv_usage=(_m("llamacpp:kv_cache_usage_ratio"),),
    prompt_tokens=(_m("llamacpp:prompt_tokens", "counter"),),
    output_tokens=(_m("llamacpp:tokens_predicted", "counter"),),
    means=(
        (
            "mean_tpot_s",
            _m("llamacpp:tokens_predicted_seconds", "counter"),
            _m("llamacpp:tokens_predicted", "counter"),
            1.0,
        ),
        (
            "mean_prefill_s_per_token",
            _m("llamacpp:prompt_seconds", "counter"),
            _m("llamacpp:prompt_tokens", "counter"),
            1.0,
        ),
    ),
    unavailable={
        "arrival_rate_rps": "llama.cpp exports no request counters",
        "completed_rps": "llama.cpp exports no request counters",
        "errors_per_s": "llama.cpp exports no request counters",
        "preemptions_per_s": "llama.cpp exports no preemption counter",
        "ttft_p50_s": "llama.cpp exports no latency histograms",
        "ttft_p95_s": "llama.cpp exports no latency histograms",
        "ttft_p99_s": "llama.cpp exports no latency histograms",
        "tpot_p50_s": "llama.cpp exports only totals (the mean is in extra: mean_tpot_s)",
        "tpot_p95_s": "llama.cpp exports no latency histograms",
        "e2e_p95_s": "llama.cpp exports no latency histograms",
        "gpu_busy": "llama.cpp exports no GPU utilisation; needs DCGM exporter metrics",
    },
    notes=(
        "llamacpp:prompt_tokens_total excludes cached prompt tokens",
        "mainline llama.cpp removed kv_cache_usage_ratio (PR #13660)",
    ),
)

UNKNOWN = Dialect(
    key="unknown",
    engine="unknown",
    title="no known engine metrics",
    version_range="",
    model_label=None,
)

DIALECTS: tuple[Dialect, ...] = (VLLM_V1, VLLM_V0, SGLANG, TGI, TRITON_TRTLLM, TRITON, LLAMACPP)


# ---- vLLM version guess from the names present ---------------------------------------------------
VLLM_SAMPLED = (
    "0.6.6",
    "0.7.3",
    "0.8.5",
    "0.9.2",
    "0.10.2",
    "0.11.0",
    "0.12.0",
    "0.14.0",
    "0.17.0",
    "0.20.0",
    "0.25.0",
    "0.30.0",
    "0.33.0",
)
# Presence per sampled wheel (observability.md, appendix A; "_total" variants merged, hidden
# metrics counted as present). Only names whose presence narrows the version are listed.
_ALL = "1" * 13
VLLM_PRESENCE: Mapping[str, str] = {
    "admission_rejections": "0000000000001",
    "avg_generation_throughput_toks_per_s": "1000000000000",
    "avg_prompt_throughput_toks_per_s": "1000000000000",
    "corrupted_requests": "0000001111111",
    "cpu_cache_usage_perc": "1110000000000",
    "cpu_prefix_cache_hit_rate": "1110000000000",
    "engine_sleep_state": "0000001111111",
    "estimated_flops_per_gpu": "0000000011111",
    "estimated_read_bytes_per_gpu": "0000000011111",
    "estimated_write_bytes_per_gpu": "0000000011111",
    "external_prefix_cache_hits": "0000001111111",
    "external_prefix_cache_queries": "0000001111111",
    "gpu_cache_usage_perc": "1111110000000",
    "gpu_prefix_cache_hit_rate": "1110000000000",
    "gpu_prefix_cache_hits": "0111110000000",
    "gpu_prefix_cache_queries": "0111110000000",
    "inter_token_latency_seconds": "0000111111111",
    "kv_block_idle_before_evict_seconds": "0000001111111",
    "kv_block_lifetime_seconds": "0000001111111",
    "kv_block_reuse_gap_seconds": "0000001111111",
    "kv_cache_usage_perc": "0001111111111",
    "mm_cache_hits": "0000001111111",
    "mm_cache_queries": "0000001111111",
    "model_execute_time_milliseconds": "1110000000000",
    "model_forward_time_milliseconds": "1110000000000",
    "num_requests_kv_fetch_by_stage": "0000000000001",
    "num_requests_swapped": "1110000000000",
    "num_requests_waiting_by_reason": "0000000001111",
    "prefix_cache_hits": "0001111111111",
    "prefix_cache_queries": "0001111111111",
    "prompt_tokens_by_source": "0000000011111",
    "prompt_tokens_cached": "0000000011111",
    "prompt_tokens_cached_by_source": "0000000000001",
    "prompt_tokens_recomputed": "0000000010000",
    "request_num_preemptions": "0000000000011",
    "request_prefill_kv_computed_tokens": "0000000111111",
    "request_time_per_output_token_seconds": "0000011111111",
    "spec_decode_draft_acceptance_rate": "1111000000000",
    "spec_decode_efficiency": "1111000000000",
    "spec_decode_num_accepted_tokens_per_pos": "0011111111111",
    "spec_decode_num_drafts": "0011111111111",
    "spec_decode_num_emitted_tokens": "1111000000000",
    "time_in_queue_requests": "1110000000000",
    "time_per_output_token_seconds": "1111111100000",
    "tokens": "1100000000000",
    "watermark_requests": "0000000000001",
    "num_requests_running": _ALL,
    "num_requests_waiting": _ALL,
}
_SUFFIX_RE = re.compile(r"(_bucket|_sum|_count|_created)$")


def _vllm_base(name: str) -> str:
    base = _SUFFIX_RE.sub("", name.removeprefix("vllm:"))
    return base.removesuffix("_total")


def vllm_version_range(names: Iterable[str]) -> tuple[str, list[str]]:
    """Narrow the vLLM version from the names present; returns (range, evidence).

    Presence only (absence proves little: labelled series appear after the first request, and
    optional features export nothing until enabled). A range like ">0.30.0" means "newer than
    the last sampled wheel that lacks one of these names".
    """
    present = sorted({_vllm_base(n) for n in names if n.startswith("vllm:")} & set(VLLM_PRESENCE))
    cols = set(range(len(VLLM_SAMPLED)))
    for base in present:
        cols &= {i for i, c in enumerate(VLLM_PRESENCE[base]) if c == "1"}
    if not cols:
        spans = {
            b: [VLLM_SAMPLED[i] for i, c in enumerate(VLLM_PRESENCE[b]) if c == "1"]
            for b in present
        }
        newest_start = max(present, key=lambda b: VLLM_PRESENCE[b].index("1"))
        oldest_end = min(present, key=lambda b: VLLM_PRESENCE[b].rindex("1"))
        return (
            "mixed",
            [
                f"names from incompatible versions: {newest_start} (first in "
                f"{spans[newest_start][0]}) and {oldest_end} (last in {spans[oldest_end][-1]})"
            ],
        )
    lo, hi = min(cols), max(cols)
    parts = []
    if lo > 0:
        parts.append(f">{VLLM_SAMPLED[lo - 1]}")
    if hi < len(VLLM_SAMPLED) - 1:
        parts.append(f"<{VLLM_SAMPLED[hi + 1]}")
    evidence = [
        f"{b}: sampled in {_span(VLLM_PRESENCE[b])}" for b in present if "0" in VLLM_PRESENCE[b]
    ]
    return (", ".join(parts) or "any"), evidence


def _span(bits: str) -> str:
    first, last = bits.index("1"), bits.rindex("1")
    return f"{VLLM_SAMPLED[first]}..{VLLM_SAMPLED[last]}"


# ---- detection -----------------------------------------------------------------------------------
_PREFIXES = (
    ("vllm:", "vllm"),
    ("nv_trt_llm_", "triton-trtllm"),
    ("sglang:", "sglang"),
    ("tgi_", "tgi"),
    ("llamacpp:", "llamacpp"),
    ("nv_inference_", "triton"),
)
_V0_ONLY = (
    "vllm:num_requests_swapped",
    "vllm:cpu_cache_usage_perc",
    "vllm:avg_prompt_throughput_toks_per_s",
    "vllm:gpu_prefix_cache_hit_rate",
    "vllm:time_in_queue_requests",
)


def _labels_of(snapshot: Snapshot, prefix: str) -> set[str]:
    out: set[str] = set()
    for name, labels in snapshot.samples:
        if name.startswith(prefix):
            out.update(k for k, _ in labels)
    return out


def detect_dialect(snapshot: Snapshot) -> Dialect:
    """The dialect whose prefix has the most series, refined by version markers.

    A Triton server hosting vLLM exposes both ``vllm:`` and ``nv_inference_`` series; vLLM wins
    (it has the token and latency series) and keeps Triton's GPU gauge via ``gpu_busy``.
    """
    names = snapshot.names()
    counts = {key: 0 for _, key in _PREFIXES}
    for n in names:
        for prefix, key in _PREFIXES:
            if n.startswith(prefix):
                counts[key] += 1
                break
    if counts["vllm"]:
        rng, _ = vllm_version_range(names)
        labels = _labels_of(snapshot, "vllm:")
        v0 = any(n in names for n in _V0_ONLY) or (
            "engine" not in labels and "vllm:kv_cache_usage_perc" not in names
        )
        base = VLLM_V0 if v0 else VLLM_V1
        if "model_name" not in labels and "model" in labels:  # Triton's vllm_backend
            base = replace(base, model_label="model", title=base.title + " via Triton")
        return replace(base, version_range=rng if rng != "any" else base.version_range)
    if counts["triton-trtllm"]:
        return TRITON_TRTLLM
    best = max(counts, key=lambda k: counts[k])
    if counts[best] == 0:
        return UNKNOWN
    dialect = {d.key: d for d in DIALECTS}[best]
    sglang_labels = _labels_of(snapshot, "sglang:") if dialect is SGLANG else set()
    if "model_name" not in sglang_labels and "name" in sglang_labels:  # v0.3-era {name="<model>"}
        dialect = replace(dialect, model_label="name", version_range="<=0.3 ({name=} label)")
    return dialect


# ---- selection -----------------------------------------------------------------------------------
def _keep(labels: Labels, metric: Metric) -> bool:
    d = dict(labels)
    for label, values in metric.only:
        if d.get(label) not in values:
            return False
    return all(d.get(label) not in values for label, values in metric.exclude)


def select(
    snapshot: Snapshot, metric: Metric, model: tuple[str, str] | None = None
) -> dict[Labels, float]:
    """The series of ``metric`` in ``snapshot`` (``x`` / ``x_total`` tolerant), filtered by its
    label rules and, for model-scoped metrics, by ``model = (label, value)``."""
    match = {model[0]: model[1]} if model and metric.model_scoped else None
    if metric.kind == "counter":
        found = snapshot.counter_series(metric.name, match)
    else:
        found = snapshot.series(metric.series_name, match)
    kept = {labels: v for labels, v in found.items() if _keep(labels, metric)}
    if not metric.dedupe:
        return kept
    out: dict[Labels, float] = {}
    for labels, v in kept.items():
        key = frozenset((k, x) for k, x in labels if k not in metric.dedupe)
        out[key] = v if key not in out or math.isnan(out[key]) else max(out[key], v)
    return out


def promql_dedupe(expr: str, metric: Metric) -> str:
    """Wrap ``expr`` so duplicate series (``Metric.dedupe``) count once, as ``select`` does."""
    if not metric.dedupe:
        return expr
    return f"max without ({', '.join(metric.dedupe)}) ({expr})"


def promql_selector(metric: Metric, selector: str, model: tuple[str, str] | None = None) -> str:
    """``name{selector, label rules}`` for the same series ``select`` would pick."""
    parts = [selector.strip().strip("{}").strip()] if selector.strip().strip("{}").strip() else []
    if model and metric.model_scoped:
        parts.append(f'{model[0]}="{_esc(model[1])}"')
    parts += [f'{label}=~"{"|".join(map(re.escape, values))}"' for label, values in metric.only]
    parts += [f'{label}!~"{"|".join(map(re.escape, values))}"' for label, values in metric.exclude]
    return "{" + ",".join(parts) + "}"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')
