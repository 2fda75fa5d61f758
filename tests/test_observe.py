"""gpuwise.observe: recorded real expositions -> Signals, window arithmetic, failure modes.

Every exposition under tests/data/expositions is a real capture (see SOURCES.md there); the
expected numbers below are computed by hand from the values in those files.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuwise.errors import UserError
from gpuwise.observe import (
    ObserveError,
    PrometheusClient,
    ReplicaWindow,
    detect_dialect,
    histogram_quantile,
    observe_window,
    parse_exposition,
    read_exposition,
    signals_from_files,
    signals_from_prometheus,
    signals_from_scrape,
)
from gpuwise.observe.dialects import vllm_version_range
from gpuwise.observe.window import counter_delta, histogram_delta

DATA = Path(__file__).parent / "data" / "expositions"
VLLM_FRESH = DATA / "vllm-0.32.0-cpu-tiny-fresh.txt"
VLLM_LOAD = DATA / "vllm-0.32.0-cpu-tiny-load.txt"
VLLM_IDLE = DATA / "vllm-0.32.0-cpu-tiny-idle.txt"
VLLM_V0 = DATA / "vllm-v0-2024-datadog.txt"
INF = math.inf


def snap(path: Path, t_s: float = math.nan, **target: str):
    s, problems = read_exposition(str(path), t_s=t_s, target=target or None)
    assert s is not None and not problems, problems
    return s


def finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)


# ---- every recorded exposition ------------------------------------------------------------------
# file -> (dialect key, number of deployments, expected values of the end-file signals)
RECORDED = {
    "vllm-0.32.0-cpu-tiny-fresh.txt": ("vllm-v1", 1, {"queue_depth": 0.0, "kv_usage": 0.0}),
    "vllm-0.32.0-cpu-tiny-load.txt": ("vllm-v1", 1, {"queue_depth": 8.0, "running": 4.0}),
    "vllm-0.32.0-cpu-tiny-idle.txt": ("vllm-v1", 1, {"running": 0.0}),
    "vllm-v0-2024-datadog.txt": ("vllm-v0", 1, {"kv_usage": 0.0, "running": 0.0}),
    "vllm-triton-backend-readme-elided.txt": ("vllm-v0", 1, {}),
    "sglang-docs-00b08c4-llama31-8b.txt": (
        "sglang",
        1,
        {"queue_depth": 2826.0, "running": 162.0, "kv_usage": 0.28},
    ),
    "sglang-0.5.10.post1-datadog-opt125m.txt": ("sglang", 1, {"kv_usage": 0.25}),
    "tgi-datadog-payload-excerpt.txt": ("tgi", 1, {"queue_depth": 0.0, "running": 0.0}),
    "triton-datadog-densenet-excerpt.txt": ("triton", 8, {"queue_depth": 0.0, "gpu_busy": 0.0}),
    "triton-trtllm-docs-assembled.txt": (
        "triton-trtllm",
        1,
        {"queue_depth": 1.0, "running": 0.0, "kv_usage": 0.4875},
    ),
    "llamacpp-ik-2025-08-pr695.txt": (
        "llamacpp",
        1,
        {"queue_depth": 0.0, "running": 0.0, "kv_usage": 0.491063},
    ),
}


def test_every_engine_file_in_the_data_dir_is_covered() -> None:
    engine_files = {p.name for p in DATA.glob("*.txt") if not p.name.startswith("dcgm-")}
    assert engine_files <= set(RECORDED), engine_files - set(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_exposition_gives_signals(name: str) -> None:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{name} not captured here")
    key, n_deployments, expected = RECORDED[name]
    obs = signals_from_files([path], [path], window_s=10.0)  # same file twice: a quiet window
    assert obs.dialect.key == key
    assert len(obs.signals) == n_deployments
    for s in obs.signals:
        assert s.replicas_ready == 1.0
        assert s.interval_s == 10.0
        # no change between the two scrapes: every rate the engine can give is exactly zero
        for rate in ("prompt_tokens_per_s", "output_tokens_per_s", "completed_rps"):
            v = getattr(s, rate)
            assert math.isnan(v) or v == 0.0, (rate, v)
    first = obs.signals[0]
    for field, value in expected.items():
        assert getattr(first, field) == pytest.approx(value), field
    # every NaN of a field the dialect cannot give is explained
    for field, _why in obs.dialect.unavailable.items():
        if math.isnan(getattr(first, field)):
            assert any(f": {field}: " in m for m in obs.missing), field
    single = signals_from_files(None, [path])
    assert single.dialect.key == key
    assert any("one scrape per replica" in n for n in single.notes)


def test_elided_doc_listing_reports_its_dots_and_reads_the_rest() -> None:
    obs = signals_from_files(None, [DATA / "vllm-triton-backend-readme-elided.txt"])
    dots = [u for u in obs.unreadable if "'...'" in u]
    assert len(dots) == 6 and all(" line " in u for u in dots)
    assert [s.deployment for s in obs.signals] == ["vllm_model"]  # Triton's `model` label
    assert "via Triton" in obs.dialect.title


def test_dcgm_only_input_is_named_as_such() -> None:
    obs = signals_from_files(None, [DATA / "dcgm-driver580-l4-idle.txt"])
    assert obs.signals == [] and "DCGM" in obs.unreadable[0]


# ---- dialects and vLLM versions -----------------------------------------------------------------
def test_vllm_version_is_narrowed_from_names() -> None:
    assert detect_dialect(snap(VLLM_IDLE)).version_range == ">0.30.0"
    assert detect_dialect(snap(VLLM_V0)).version_range == "<0.7.3"
    rng, why = vllm_version_range(["vllm:num_requests_swapped", "vllm:prompt_tokens_recomputed"])
    assert rng == "mixed" and "incompatible" in why[0]
    assert vllm_version_range(["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"])[0] == (
        ">0.8.5, <0.12.0"
    )


def _renamed(text: str, pairs: dict[str, str]) -> str:
    for old, new in pairs.items():
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(
    ("path", "pairs"),
    [
        (
            VLLM_V0,  # V0 names -> their 0.10+ replacements
            {
                "vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc",
                "vllm:time_per_output_token_seconds": "vllm:inter_token_latency_seconds",
            },
        ),
        (
            VLLM_IDLE,  # 0.32 names -> the pre-0.10 ones
            {
                "vllm:kv_cache_usage_perc": "vllm:gpu_cache_usage_perc",
                "vllm:inter_token_latency_seconds": "vllm:time_per_output_token_seconds",
            },
        ),
    ],
)
def test_old_and_new_vllm_names_give_the_same_signals(path: Path, pairs: dict[str, str]) -> None:
    text = path.read_text()
    assert all(old in text for old in pairs)
    a, _ = parse_exposition(text, t_s=100.0)
    b, _ = parse_exposition(_renamed(text, pairs), t_s=100.0)
    sa = observe_window([ReplicaWindow("r", None, a)]).signals[0].as_dict()
    sb = observe_window([ReplicaWindow("r", None, b)]).signals[0].as_dict()
    assert finite(sa["kv_usage"]) and finite(sa["tpot_p95_s"])
    assert sa == pytest.approx(sb, nan_ok=True)


def test_v0_histogram_cap_is_flagged_when_a_quantile_lands_in_inf() -> None:
    # SGLang <=0.4 docs sample: 8,495 of 11,008 TTFTs above the 30 s top bucket
    obs = signals_from_files(None, [DATA / "sglang-docs-00b08c4-llama31-8b.txt"])
    s = obs.signals[0]
    assert s.ttft_p50_s == s.ttft_p95_s == 30.0
    assert any("ttft_p95_s lies in the +Inf bucket" in n and "30 s" in n for n in obs.notes)
    assert s.e2e_p95_s == 60.0 and any("e2e_p95_s lies in the +Inf" in n for n in obs.notes)


def test_tgi_token_counters_come_from_histogram_sums() -> None:
    path = DATA / "tgi-datadog-payload-excerpt.txt"
    start, _ = parse_exposition(
        path.read_text()
        .replace("tgi_request_input_length_sum 662", "tgi_request_input_length_sum 600")
        .replace("tgi_request_count 111", "tgi_request_count 100")
    )
    end = snap(path)
    obs = observe_window([ReplicaWindow("r", start, end)], window_s=2.0)
    s = obs.signals[0]
    assert s.prompt_tokens_per_s == pytest.approx(31.0)  # (662 - 600) / 2
    assert s.arrival_rate_rps == pytest.approx(5.5)  # tgi_request_count, not derived
    assert math.isnan(s.kv_usage) and any(": kv_usage: TGI" in m for m in obs.missing)


def test_engines_without_histograms_give_means_from_counter_pairs() -> None:
    llama = signals_from_files(None, [DATA / "llamacpp-ik-2025-08-pr695.txt"])
    assert llama.extra["default"]["mean_tpot_s"] == pytest.approx(3544.27 / 3469)
    assert any("over the engine's lifetime" in n for n in llama.notes)
    triton = signals_from_files(None, [DATA / "triton-datadog-densenet-excerpt.txt"])
    assert triton.extra["densenet_onnx"]["mean_e2e_s"] == pytest.approx(1.327965 / 3)
    assert "simple" not in triton.extra  # no request succeeded: no mean


def test_sglang_tensor_parallel_ranks_count_once() -> None:
    text = (DATA / "sglang-0.5.10.post1-datadog-opt125m.txt").read_text()
    later = text.replace(
        'sglang:generation_tokens_total{model_name="facebook/opt-125m",tp_rank="0"} 32',
        'sglang:generation_tokens_total{model_name="facebook/opt-125m",tp_rank="0"} 132',
    ).replace(
        'sglang:num_queue_reqs{model_name="facebook/opt-125m",tp_rank="0"} 0',
        'sglang:num_queue_reqs{model_name="facebook/opt-125m",tp_rank="0"} 7',
    )

    def both_ranks(t: str) -> str:  # what a TP=2 server would add: rank 1 reporting the same
        lines = [
            x.replace('tp_rank="0"', 'tp_rank="1"') for x in t.splitlines() if 'tp_rank="0"' in x
        ]
        return t + "\n".join(lines) + "\n"

    start, _ = parse_exposition(both_ranks(text), t_s=0.0)
    end, _ = parse_exposition(both_ranks(later), t_s=10.0)
    s = observe_window([ReplicaWindow("r", start, end)]).signals[0]
    assert s.output_tokens_per_s == pytest.approx(100 / 10)  # not 200 / 10
    assert s.queue_depth == 7.0  # not 14


# ---- robustness ---------------------------------------------------------------------------------
def test_truncated_file_is_read_up_to_the_cut(tmp_path: Path) -> None:
    text = VLLM_LOAD.read_text()
    cut = text.index('vllm:kv_cache_usage_perc{engine="0"') + 30  # mid-line
    path = tmp_path / "truncated.txt"
    path.write_text(text[:cut])
    obs = signals_from_files(None, [path])
    assert any("truncated.txt line" in u for u in obs.unreadable)
    assert obs.signals and obs.signals[0].queue_depth == 8.0  # read before the cut
    assert math.isnan(obs.signals[0].kv_usage)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        bytes(range(256)) * 8,
        b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
        b"vllm:num_requests_waiting{model_name=tiny 3\n",
        b'{"status": "ok"}',
    ],
    ids=["empty", "binary", "html", "bad-labels", "json"],
)
def test_garbage_is_reported_not_raised(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.txt"
    path.write_bytes(content)
    obs = signals_from_files([path], [path], window_s=5.0)
    assert obs.unreadable, obs
    assert not obs.ok


def test_missing_file_and_unpaired_replicas_are_reported(tmp_path: Path) -> None:
    obs = signals_from_files(
        [tmp_path / "nope.txt"], [VLLM_IDLE, tmp_path / "gone.txt"], window_s=5.0
    )
    assert any("nope.txt: cannot read" in u for u in obs.unreadable)
    assert any("gone.txt: cannot read" in u for u in obs.unreadable)
    assert obs.signals[0].replicas_ready == 1.0


# ---- histogram quantiles -------------------------------------------------------------------------
def test_quantile_matches_hand_computation() -> None:
    b = {0.1: 10.0, 0.5: 30.0, 1.0: 40.0, INF: 40.0}
    # rank 20 of 40 falls in (0.1, 0.5] holding 20: 0.1 + 0.4 * (20 - 10) / 20
    assert histogram_quantile(0.5, b).value == pytest.approx(0.3)
    # rank 38 in (0.5, 1.0] holding 10: 0.5 + 0.5 * (38 - 30) / 10
    assert histogram_quantile(0.95, b).value == pytest.approx(0.9)
    assert histogram_quantile(0.99, b).value == pytest.approx(0.98)
    # first bucket interpolates from zero: 1.0 * 2 / 4
    assert histogram_quantile(0.5, {1.0: 4.0, INF: 4.0}).value == pytest.approx(0.5)


def test_quantile_in_inf_bucket_returns_top_finite_bound_and_flags_it() -> None:
    q = histogram_quantile(0.95, {1.0: 5.0, 2.0: 6.0, INF: 10.0})
    assert q.value == 2.0 and q.capped
    assert not histogram_quantile(0.5, {1.0: 5.0, 2.0: 6.0, INF: 10.0}).capped


def test_quantile_without_data_or_inf_bucket_is_nan() -> None:
    assert math.isnan(histogram_quantile(0.5, {1.0: 0.0, INF: 0.0}).value)
    assert math.isnan(histogram_quantile(0.5, {1.0: 3.0, 2.0: 4.0}).value)  # no +Inf
    assert math.isnan(histogram_quantile(0.5, {}).value)
    with pytest.raises(ValueError):
        histogram_quantile(1.5, {1.0: 1.0, INF: 1.0})


@given(
    st.lists(st.floats(0.001, 1000.0), min_size=1, max_size=12, unique=True),
    st.lists(st.integers(0, 50), min_size=13, max_size=13),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_quantile_is_monotonic_and_inside_the_buckets(bounds, counts, q1, q2) -> None:
    bounds = sorted(bounds)
    cum, total = {}, 0.0
    for b, c in zip(bounds + [INF], counts, strict=False):
        total += c
        cum[b] = total
    lo, hi = histogram_quantile(min(q1, q2), cum), histogram_quantile(max(q1, q2), cum)
    if total == 0:
        assert math.isnan(lo.value) and math.isnan(hi.value)
        return
    assert lo.value <= hi.value + 1e-9
    assert lo.value >= 0.0 and hi.value <= bounds[-1]


def test_non_positive_windows_are_user_errors() -> None:
    with pytest.raises(UserError, match="window must be positive"):
        signals_from_scrape(["http://127.0.0.1:1/metrics"], window_s=0)
    with pytest.raises(ObserveError, match="window must be positive"):
        signals_from_prometheus("http://127.0.0.1:1", 'job="x"', window_s=-5)


def test_window_ttft_quantiles_match_hand_computation() -> None:
    # load -> idle: TTFT bucket deltas are 4 in (0.5, 0.75] and 4 in (0.75, 1.0]; 8 in all
    obs = observe_window([ReplicaWindow("r", snap(VLLM_LOAD, 10), snap(VLLM_IDLE, 30))])
    s = obs.signals[0]
    assert s.ttft_p50_s == pytest.approx(0.75)  # rank 4: 0.5 + 0.25 * 4 / 4
    assert s.ttft_p95_s == pytest.approx(0.975)  # rank 7.6: 0.75 + 0.25 * 3.6 / 4
    assert s.ttft_p99_s == pytest.approx(0.995)


# ---- counters and rates --------------------------------------------------------------------------
def test_counter_delta_handles_resets_and_new_series() -> None:
    a = frozenset({("r", "a")})
    b = frozenset({("r", "b")})
    assert counter_delta({a: 10.0}, {a: 25.0}) == (15.0, False)
    assert counter_delta({a: 100.0}, {a: 30.0}) == (30.0, True)  # restarted: counts from 0
    assert counter_delta({a: 10.0}, {a: 12.0, b: 5.0}) == (7.0, False)  # b appeared
    assert counter_delta(None, {a: 4.0}) == (4.0, False)


def test_histogram_delta_of_a_reset_series_is_its_end_buckets() -> None:
    def s(le: str) -> frozenset:
        return frozenset({("le", le)})

    start = {s("1"): 10.0, s("+Inf"): 12.0}
    assert histogram_delta(start, {s("1"): 15.0, s("+Inf"): 20.0}) == ({1.0: 5.0, INF: 8.0}, False)
    assert histogram_delta(start, {s("1"): 2.0, s("+Inf"): 3.0}) == ({1.0: 2.0, INF: 3.0}, True)
    # Triton's millisecond buckets become seconds
    assert histogram_delta(None, {s("500"): 1.0, s("+Inf"): 1.0}, 0.001)[0] == {0.5: 1.0, INF: 1.0}


def test_window_rates_match_hand_computation() -> None:
    obs = signals_from_files([VLLM_LOAD], [VLLM_IDLE], window_s=20.0, t_s=1000.0)
    s = obs.signals[0]
    assert s.t_s == 1000.0 and s.deployment == "tiny"
    assert s.prompt_tokens_per_s == pytest.approx((72 - 24) / 20)
    assert s.output_tokens_per_s == pytest.approx((4800 - 209) / 20)
    assert s.completed_rps == pytest.approx(12 / 20)  # finished_reason="length"
    assert s.errors_per_s == 0.0 and s.preemptions_per_s == 0.0
    # no arrival counter in vLLM: finished (12) + change in queued+running (0 - 12) = 0
    assert s.arrival_rate_rps == pytest.approx(0.0)
    up = signals_from_files([VLLM_FRESH], [VLLM_LOAD], window_s=10.0).signals[0]
    assert up.arrival_rate_rps == pytest.approx((0 + 12) / 10)


def test_counter_reset_in_a_window_is_handled() -> None:
    # the replica restarted during the window: idle (4800 tokens) -> load (209 tokens)
    obs = observe_window([ReplicaWindow("r", snap(VLLM_IDLE, 0), snap(VLLM_LOAD, 10))])
    s = obs.signals[0]
    assert s.output_tokens_per_s == pytest.approx(209 / 10)
    assert s.ttft_p50_s == pytest.approx(0.03)  # the 4 TTFTs since restart, all in (0.02, 0.04]
    assert any("reset" in n for n in obs.notes)


def test_replicas_are_summed_and_kv_is_mean_and_max() -> None:
    a = ReplicaWindow("a", snap(VLLM_FRESH, 0), snap(VLLM_LOAD, 20))
    b = ReplicaWindow("b", snap(VLLM_LOAD, 0), snap(VLLM_IDLE, 20))
    dead = ReplicaWindow("c", None, None)
    s = observe_window([a, b, dead]).signals[0]
    assert s.replicas_ready == 2.0
    assert s.queue_depth == 8.0 and s.running == 4.0
    assert s.prompt_tokens_per_s == pytest.approx((24 + 48) / 20)
    assert s.kv_usage == pytest.approx(0.003910068426197455 / 2)
    assert s.kv_usage_max == pytest.approx(0.003910068426197455)


# ---- GPUs from DCGM -----------------------------------------------------------------------------
def test_dcgm_prefers_gr_engine_active_and_keeps_gpu_util_as_extra() -> None:
    obs = signals_from_files(
        [VLLM_LOAD],
        [VLLM_IDLE],
        window_s=20.0,
        dcgm_paths=[DATA / "dcgm-driver590-t4-busy.txt"],
    )
    s = obs.signals[0]
    assert s.gpu_busy == pytest.approx(0.156205) and s.gpus == 1.0
    assert obs.extra["tiny"]["gpu_util"] == pytest.approx(0.91)
    assert obs.extra["tiny"]["gpu_memory_used_bytes"] == 5120 * 2**20
    assert obs.extra["tiny"]["gpu_power_w"] == pytest.approx(68.244)
    assert any("no pod labels" in n for n in obs.notes)


def test_dcgm_is_joined_to_replicas_by_pod() -> None:
    dcgm = [DATA / "dcgm-datadog-t4-pod-labels.txt"]
    ours = signals_from_files(
        None, [VLLM_IDLE], targets=[{"pod": "bar", "namespace": "foo"}], dcgm_paths=dcgm
    )
    assert ours.signals[0].gpu_busy == 0.0 and ours.signals[0].gpus == 1.0
    other = signals_from_files(
        None, [VLLM_IDLE], targets=[{"pod": "x", "namespace": "foo"}], dcgm_paths=dcgm
    )
    assert math.isnan(other.signals[0].gpu_busy)
    assert any("pod labels (x)" in m for m in other.missing)
    unknown = signals_from_files(None, [VLLM_IDLE], dcgm_paths=dcgm)
    assert any("pods are unknown" in m for m in unknown.missing)


def test_vllm_on_cpu_reports_gpu_busy_unavailable() -> None:
    obs = signals_from_files([VLLM_LOAD], [VLLM_IDLE], window_s=20.0)
    assert math.isnan(obs.signals[0].gpu_busy)
    assert any("gpu_busy: vLLM exports no GPU utilisation" in m for m in obs.missing)


# ---- direct scrape -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """A tiny local HTTP server; ``handle(path, n)`` returns (status, body, delay_s)."""

    def __init__(self, handle) -> None:
        calls: dict[str, int] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                n = calls[self.path] = calls.get(self.path, 0) + 1
                status, body, delay = handle(self.path, n)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (the timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory() -> Iterator:
    servers: list[_Server] = []

    def make(handle) -> _Server:
        servers.append(_Server(handle))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_scrape_window_with_a_dead_replica(server_factory) -> None:
    texts = [VLLM_LOAD.read_bytes(), VLLM_IDLE.read_bytes()]
    srv = server_factory(lambda path, n: (200, texts[min(n, 2) - 1], 0.0))
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    obs = signals_from_scrape([f"{srv.url}/metrics", dead], window_s=0.3, timeout_s=2.0)
    s = obs.signals[0]
    assert obs.dialect.key == "vllm-v1"
    assert s.replicas_ready == 1.0
    assert 0.25 < s.interval_s < 2.0
    assert s.output_tokens_per_s == pytest.approx((4800 - 209) / s.interval_s)
    assert sum(dead in u and "did not answer" in u for u in obs.unreadable) == 2  # start and end


def test_scrape_of_a_slow_replica_names_the_timeout(server_factory) -> None:
    srv = server_factory(lambda path, n: (200, VLLM_IDLE.read_bytes(), 1.0))
    obs = signals_from_scrape([f"{srv.url}/metrics"], window_s=0.1, timeout_s=0.2)
    assert obs.signals == []
    assert any("did not answer within 0.2 s" in u for u in obs.unreadable)


# ---- Prometheus client failures -----------------------------------------------------------------
def test_prometheus_not_listening_is_a_clear_user_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ObserveError) as info:
        signals_from_prometheus(url, 'job="vllm"', 30.0, timeout_s=1.0, retries=0)
    msg = str(info.value)
    assert isinstance(info.value, UserError)
    assert msg.startswith(f"Prometheus at {url} ")
    assert "is it running? check --prometheus" in msg
    assert "Traceback" not in msg and "\n" not in msg


def test_slow_prometheus_names_the_timeout(server_factory) -> None:
    srv = server_factory(lambda path, n: (200, b'{"status":"success","data":{}}', 1.0))
    t0 = time.monotonic()
    with pytest.raises(ObserveError) as info:
        PrometheusClient(srv.url, timeout_s=0.2, retries=1, backoff_s=0.05).query("up")
    assert str(info.value) == (
        f"Prometheus at {srv.url} did not answer within 0.2 s; is it running? check --prometheus"
    )
    assert time.monotonic() - t0 < 1.5


def test_rejected_query_is_reported_with_prometheus_words(server_factory) -> None:
    body = b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}'
    srv = server_factory(lambda path, n: (400, body, 0.0))
    with pytest.raises(ObserveError, match="rejected 'up{': bad_data: parse error at char 3"):
        PrometheusClient(srv.url, retries=0).query("up{")


def test_prometheus_answers_are_parsed(server_factory) -> None:
    vector = (
        b'{"status":"success","data":{"resultType":"vector","result":['
        b'{"metric":{"le":"+Inf"},"value":[1.5,"3"]},{"metric":{"le":"1"},"value":[1.5,"NaN"]}]}}'
    )
    matrix = (
        b'{"status":"success","data":{"resultType":"matrix","result":['
        b'{"metric":{"job":"vllm"},"values":[[1,"0"],[2,"4"]]}]}}'
    )
    srv = server_factory(lambda path, n: (200, matrix if "range" in path else vector, 0.0))
    client = PrometheusClient(srv.url)
    res = client.query("sum by (le) (x)", at=1.5)
    assert res[0] == ({"le": "+Inf"}, 3.0) and math.isnan(res[1][1])
    assert client.query_range("x", 1, 2, 1) == [({"job": "vllm"}, [(1.0, 0.0), (2.0, 4.0)])]
    client.close()
