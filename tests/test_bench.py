"""gpuwise.bench without an engine: schedules, SSE parsing, metrics, and a fake streaming server.

The fake server (tests/bench_fake_server.py) speaks just enough of the OpenAI API to run the real
client code end to end: preflight, token probes, streaming with awkward characters, injected
errors and dropped connections.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench_fake_server import ODD_TEXTS, FakeOpenAI
from gpuwise.bench import (
    BenchConfig,
    BenchError,
    RequestRecord,
    SSEDecoder,
    TokenFit,
    normalize_endpoint,
    prompt_text,
    run_bench,
    schedule_from_csv,
    schedule_from_spec,
    schedule_poisson,
    sse_events,
    summarize,
)
from gpuwise.bench.metrics import dist
from gpuwise.bench.prompts import NONCE_WORDS
from gpuwise.bench.schedule import Schedule, capped, fit_to_model_len
from gpuwise.errors import UserError
from gpuwise.spec import FixedLength, GammaArrivals, PoissonArrivals, Traffic, load_spec
from gpuwise.workload import Requests, generate

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name: bench-test
deployments:
  - name: chat
    model: llama-3.1-8b
    gpu: h100-sxm
    traffic:
      arrival: {kind: gamma, rate_rps: 5, cv: 2.0}
      input_tokens: {kind: lognormal, mean: 200, cv: 1.0, max_tokens: 1000}
      output_tokens: {kind: uniform, low: 10, high: 50}
  - name: idle
    model: llama-3.1-8b
    gpu: h100-sxm
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ schedules


def test_spec_schedule_is_exactly_the_simulators(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    sched = schedule_from_spec(path, None, 30.0, 7)
    traffic = load_spec(path).deployments[0].traffic
    expected = generate(traffic, 30.0, 7)
    assert sched.requests == expected  # byte-equal arrays and window
    assert np.array_equal(sched.send_times_s(), expected.arrival_s)
    assert "deployment chat" in sched.source and "seed 7" in sched.source
    # A different seed is a different schedule; the same seed again is the same one.
    assert schedule_from_spec(path, "chat", 30.0, 8).requests != expected
    assert schedule_from_spec(path, "chat", 30.0, 7).requests == expected


def test_quick_flags_schedule_is_generate_of_a_poisson_traffic() -> None:
    sched = schedule_poisson(3.5, 100, 20, 20.0, 11)
    traffic = Traffic(
        arrival=PoissonArrivals(rate_rps=3.5),
        input_tokens=FixedLength(tokens=100),
        output_tokens=FixedLength(tokens=20),
    )
    assert sched.requests == generate(traffic, 20.0, 11)


def test_caps_cut_the_schedule_without_moving_an_arrival() -> None:
    traffic = Traffic(
        arrival=GammaArrivals(rate_rps=10, cv=3),
        input_tokens=FixedLength(tokens=10),
        output_tokens=FixedLength(tokens=10),
    )
    full = generate(traffic, 60.0, 1)
    sched = Schedule(full, "x")
    by_count = capped(sched, 25, 60.0)
    assert np.array_equal(by_count.requests.arrival_s, full.arrival_s[:25])
    by_time = capped(sched, 10_000, 5.0)
    n = int(np.sum(full.arrival_s < 5.0))
    assert np.array_equal(by_time.requests.arrival_s, full.arrival_s[:n])


def test_spec_schedule_errors_are_user_errors(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    with pytest.raises(UserError, match="no deployment named 'nope'"):
        schedule_from_spec(path, "nope", 10, 0)
    with pytest.raises(UserError, match="has no traffic"):
        schedule_from_spec(path, "idle", 10, 0)


def test_arrivals_csv_replays_from_its_first_row(tmp_path: Path) -> None:
    req = Requests(np.array([100.0, 100.25, 101.5]), [5, 6, 7], [3, 2, 1])
    req.to_csv(tmp_path / "a.csv")
    sched = schedule_from_csv(tmp_path / "a.csv")
    assert sched.send_times_s().tolist() == [0.0, 0.25, 1.5]
    assert sched.requests.input_tokens.tolist() == [5, 6, 7]


def test_lengths_are_clamped_to_the_context() -> None:
    inp, out, changed = fit_to_model_len(np.array([10, 600, 400]), np.array([5, 5, 600]), 512)
    assert changed == 2
    assert np.all(inp + out <= 511)
    assert inp[0] == 10 and out[0] == 5 and out[1] == 5


# ------------------------------------------------------------------------------ SSE


def test_sse_splits_on_newline_only_and_keeps_u2028_inside_json() -> None:
    payload = json.dumps({"choices": [{"text": "a\u2028b\u2029c\u0085d\x1ce"}]}, ensure_ascii=False)
    body = f"data: {payload}\n\n: a comment\r\ndata: [DONE]\r\n\r\n"
    assert "\u2028" in body  # raw, unescaped, as a server may send it
    # str.splitlines() would cut the event apart; the decoder must not, whatever the chunking.
    assert len(body.splitlines()) > 4
    for size in (1, 2, 3, 7, len(body)):
        dec = SSEDecoder()
        events = []
        for i in range(0, len(body), size):
            events += dec.feed(body[i : i + size])
        events += dec.flush()
        assert events == [payload, "[DONE]"], size
        assert json.loads(events[0])["choices"][0]["text"] == "a\u2028b\u2029c\u0085d\x1ce"


def test_sse_multiline_data_and_unterminated_last_event() -> None:
    assert sse_events("data: a\ndata: b\n\nevent: x\ndata:c") == ["a\nb", "c"]
    assert sse_events("id: 1\nretry: 5\n\n") == []


# ------------------------------------------------------------------------------ metrics


def _rec(i: int, sent: float, first: float, times: list[float], n: int, **kw) -> RequestRecord:
    return RequestRecord(
        index=i,
        input_tokens=10,
        output_tokens=n,
        sent_s=sent,
        first_token_s=first,
        end_s=times[-1],
        token_times_s=times,
        completion_tokens=n,
        prompt_tokens=11,
        outcome="ok",
        **kw,
    )


def test_request_metrics_from_synthetic_timings() -> None:
    r = _rec(0, 1.0, 1.2, [1.2, 1.25, 1.35, 1.4], 4, scheduled_s=0.99)
    assert r.ttft_s == pytest.approx(0.2)
    assert r.e2e_s == pytest.approx(0.4)
    assert r.tpot_s == pytest.approx((0.4 - 0.2) / 3)
    assert r.itl_s == pytest.approx([0.05, 0.1, 0.05])
    assert r.send_lag_s == pytest.approx(0.01)
    one = _rec(1, 0.0, 0.1, [0.1], 1)
    assert one.tpot_s is None and one.itl_s == []


def test_summary_percentiles_throughput_and_outcomes() -> None:
    oks = [_rec(i, float(i), i + 0.1 * (i + 1), [i + 0.1 * (i + 1), i + 1.0], 2) for i in range(10)]
    bad = [
        RequestRecord(10, 10, 2, sent_s=3.0, end_s=3.1, outcome="http_5xx", error="HTTP 500"),
        RequestRecord(11, 10, 2, sent_s=4.0, end_s=4.0, outcome="connect", error="refused"),
        RequestRecord(12, 10, 2, sent_s=5.0, outcome="cancelled"),
    ]
    s = summarize(oks + bad, scheduled=20)
    ttfts = [0.1 * (i + 1) for i in range(10)]
    assert s.ttft_s.count == 10
    assert s.ttft_s.p50 == pytest.approx(np.percentile(ttfts, 50))
    assert s.ttft_s.p99 == pytest.approx(np.percentile(ttfts, 99))
    assert s.e2e_s.max == pytest.approx(1.0)
    assert s.outcomes == {"ok": 10, "connect": 1, "http_5xx": 1, "cancelled": 1}
    assert (s.sent, s.ok, s.errors, s.scheduled) == (13, 10, 3, 20)
    assert s.duration_s == pytest.approx(10.0)  # first send 0.0, last end 10.0
    assert s.throughput_rps == pytest.approx(1.0)
    assert s.output_tokens_per_s == pytest.approx(2.0)
    assert s.first_error == "HTTP 500"
    assert dist([]).p50 is None


# ------------------------------------------------------------------------------ prompts


def test_prompts_have_the_asked_words_and_distinct_openings() -> None:
    assert len(prompt_text(50, 3).split()) == 50
    assert len(prompt_text(1, 3).split()) == 1
    openings = {prompt_text(20, n)[:40] for n in range(2000)}
    assert len(openings) == 2000
    assert prompt_text(NONCE_WORDS + 5, 9) == prompt_text(NONCE_WORDS + 5, 9)
    fit = TokenFit.from_probes(8, 9, 40, 41)
    assert (fit.tokens_per_word, fit.overhead_tokens) == (1.0, 1.0)
    assert fit.words_for(128) == 127
    two = TokenFit.from_probes(8, 20, 40, 84)  # two tokens a word, four extra
    assert two.words_for(104) == 50


def test_endpoint_forms() -> None:
    for form in ("127.0.0.1:8000", "http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"):
        assert normalize_endpoint(form) == "http://127.0.0.1:8000"
    assert normalize_endpoint("https://gw.example/x/v1/completions") == "https://gw.example/x"
    with pytest.raises(UserError):
        normalize_endpoint("ftp://x")


# ------------------------------------------------------------------------------ fake server


def test_closed_loop_against_a_fake_server() -> None:
    with FakeOpenAI() as srv:
        res = run_bench(
            BenchConfig(
                srv.url,
                concurrency=4,
                input_tokens=20,
                output_tokens=6,
                max_requests=12,
                max_duration_s=20,
            )
        )
    s = res.summary
    assert s.outcomes == {"ok": 12}, s.first_error
    assert res.server.model == "fake" and res.server.max_model_len == 512
    assert res.server.token_fit.measured and res.server.token_fit.tokens_per_word == 1.0
    for r in res.records:
        # 19 words + BOS: the probes made the prompt exactly as long as asked.
        assert r.prompt_tokens == 20 and r.completion_tokens == 6
        assert len(r.itl_s) == 5  # one event per token, none lost to U+2028 splitting
    assert s.itl_s.count == 12 * 5 and s.tpot_s.count == 12
    doc = res.as_dict()
    json.dumps(doc)
    assert len(doc["requests"]) == 12 and doc["mode"] == "closed-loop"
    assert len(ODD_TEXTS) == 4


def test_open_loop_sends_at_the_scheduled_times() -> None:
    sched = schedule_poisson(40.0, 8, 3, 1.5, 5)
    expected = generate(
        Traffic(
            arrival=PoissonArrivals(rate_rps=40.0),
            input_tokens=FixedLength(tokens=8),
            output_tokens=FixedLength(tokens=3),
        ),
        1.5,
        5,
    )
    with FakeOpenAI() as srv:
        t = time.perf_counter()
        res = run_bench(BenchConfig(srv.url, schedule=sched, max_duration_s=1.5))
        wall = time.perf_counter() - t
    scheduled = [r.scheduled_s for r in res.records]
    assert scheduled == expected.arrival_s.tolist()  # the very floats generate() drew
    assert res.summary.outcomes == {"ok": len(expected)}
    lags = [r.send_lag_s for r in res.records]
    assert min(lags) >= 0.0
    assert res.summary.send_lag_s.p50 < 0.25  # generous: the CI box is shared
    assert wall < 10


def test_failures_are_outcomes_not_crashes() -> None:
    streams = 0

    def behaviour(_n: int, req: dict) -> str:
        nonlocal streams
        if not req.get("stream"):
            return "ok"  # the token probes
        streams += 1
        return {1: "500", 2: "drop", 3: "garbage", 4: "400"}.get(streams % 5, "ok")

    with FakeOpenAI(behaviour=behaviour) as srv:
        res = run_bench(
            BenchConfig(srv.url, concurrency=2, input_tokens=5, output_tokens=3, max_requests=10)
        )
    assert res.summary.outcomes == {
        "ok": 2,
        "disconnect": 2,
        "http_4xx": 2,
        "http_5xx": 2,
        "bad_response": 2,
    }
    assert res.summary.ttft_s.count == 2


def test_time_bounds_cancel_and_time_out() -> None:
    with FakeOpenAI(token_delay_s=0.2) as srv:
        res = run_bench(
            BenchConfig(
                srv.url,
                concurrency=2,
                input_tokens=5,
                output_tokens=50,
                max_requests=4,
                max_duration_s=0.3,
                drain_s=0.3,
            )
        )
        assert set(res.summary.outcomes) == {"cancelled"}
        assert res.summary.sent == 2
        res = run_bench(
            BenchConfig(
                srv.url,
                concurrency=1,
                input_tokens=5,
                output_tokens=50,
                max_requests=1,
                timeout_s=0.5,
            )
        )
        assert res.summary.outcomes == {"timeout": 1}


def test_preflight_errors_are_clear() -> None:
    with FakeOpenAI() as srv, pytest.raises(BenchError, match="model 'gpt' is not served"):
        run_bench(BenchConfig(srv.url, concurrency=1, model="gpt", max_requests=1))
    with FakeOpenAI(list_models=False) as srv:
        with pytest.raises(BenchError, match="pass --model"):
            run_bench(BenchConfig(srv.url, concurrency=1, max_requests=1))
        res = run_bench(BenchConfig(srv.url, concurrency=1, model="fake", max_requests=1))
        assert res.summary.ok == 1


def test_a_server_that_goes_away_is_an_error_not_a_crash() -> None:
    with FakeOpenAI() as srv, pytest.raises(BenchError, match="all 3 requests failed to connect"):
        run_bench(
            BenchConfig(srv.url, concurrency=1, max_requests=3, input_tokens=4),
            on_start=lambda _n: srv.stop_listening(),
        )


# ------------------------------------------------------------------------------ the CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwise", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_nothing_listening_is_exit_2_with_a_clear_message() -> None:
    port = free_port()
    r = _cli(f"http://127.0.0.1:{port}")
    assert r.returncode == 2, r.stdout + r.stderr
    assert (
        f"nothing answered at http://127.0.0.1:{port}/v1/completions: connection refused "
        "(is the server running?)"
    ) in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


def test_cli_json_and_table_against_a_fake_server(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        out = tmp_path / "b.json"
        r = _cli(
            srv.url, "--rate", "20", "--input-tokens", "8", "--output-tokens", "3",
            "--max-duration-s", "1", "--seed", "3", "--json", "--out", str(out),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert json.loads(out.read_text())["summary"] == doc["summary"]
        expected = schedule_poisson(20, 8, 3, 1.0, 3).requests.arrival_s.tolist()
        assert [q["scheduled_s"] for q in doc["requests"]] == [round(x, 6) for x in expected]
        assert doc["summary"]["outcomes"] == {"ok": len(expected)}
        r = _cli(srv.url, "--concurrency", "2", "--max-requests", "4", "--output-tokens", "4")
        assert r.returncode == 0, r.stderr
        for needle in ("TTFT", "TPOT", "ITL", "e2e", "p99", "ok 4", "req/s"):
            assert needle in r.stdout
        r = _cli(srv.url, "--rate", "1", "--concurrency", "2")
        assert r.returncode == 2 and "choose one load" in r.stderr


# ------------------------------------------------------------------------------ calibrate

EXPOSITIONS = ROOT / "tests" / "data" / "expositions"
CONFIGS = ROOT / "tests" / "data" / "config_json"
TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "head_dim": 32,
    "hidden_size": 128,
    "intermediate_size": 512,
    "max_position_embeddings": 2048,
    "model_type": "llama",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "tie_word_embeddings": False,
    "vocab_size": 2048,
}


def _catalog():
    from gpuwise.catalog import load_catalog

    return load_catalog((ROOT / "examples" / "local" / "cpu-tiny.catalog.yaml",))


def test_architecture_from_config_json_matches_the_catalog(tmp_path: Path) -> None:
    from gpuwise.bench.calibrate import load_model_config
    from gpuwise.catalog import get_model
    from gpuwise.perf.arch import param_counts

    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    tiny = load_model_config(folder)
    assert tiny.name == "tiny-llama" and tiny.attention == "mha"
    assert param_counts(tiny).total == _catalog().model("tiny").published_params
    cfg = CONFIGS / "meta-llama--Meta-Llama-3.1-8B.config.json"
    llama = load_model_config(cfg, "l8")
    assert param_counts(llama).total == get_model("llama-3.1-8b").published_params
    mixtral = load_model_config(CONFIGS / "mistralai--Mixtral-8x7B-v0.1.config.json", "mx")
    assert param_counts(mixtral).active == param_counts(get_model("mixtral-8x7b")).active
    with pytest.raises(UserError, match="latent attention"):
        load_model_config(CONFIGS / "deepseek-ai--DeepSeek-V3.config.json")
    with pytest.raises(UserError, match="no such file"):
        load_model_config(tmp_path / "nope")


def test_vllm_histograms_are_read_from_an_exposition() -> None:
    from gpuwise.bench.calibrate import H_ITER_TOKENS, H_ITL, H_PREFILL, _delta_mean, _histograms

    text = (EXPOSITIONS / "vllm-0.32.0-cpu-tiny-load.txt").read_text()
    h = _histograms(text)
    assert h[H_ITER_TOKENS] == (233.0, 53.0)
    assert h[H_ITL] == pytest.approx((0.2557487670001706, 205.0))
    assert h[H_PREFILL] == (0.0, 0.0)
    before = {H_ITL: (1.0, 100.0)}
    after = {H_ITL: (1.5, 300.0)}
    assert _delta_mean(before, after, H_ITL) == pytest.approx(0.0025)
    assert _delta_mean(before, before, H_ITL) is None  # nothing happened in between
    assert _delta_mean({}, after, H_ITL) is None


def test_decode_batch_is_token_weighted_and_ignores_idle_gaps() -> None:
    from gpuwise.bench.calibrate import _decode_batch

    def rec(i: int, first: float, end: float) -> RequestRecord:
        times = list(np.linspace(first, end, 11))
        return _rec(i, first - 0.01, first, times, 11)

    # One request after another, with idle gaps: every token saw a batch of one.
    assert _decode_batch([rec(0, 0.0, 1.0), rec(1, 2.0, 3.0)]) == pytest.approx(1.0)
    # Two fully overlapping requests: a batch of two.
    assert _decode_batch([rec(0, 0.0, 1.0), rec(1, 0.0, 1.0)]) == pytest.approx(2.0)
    # Half overlapping: half the tokens saw two.
    assert _decode_batch([rec(0, 0.0, 1.0), rec(1, 0.5, 1.5)]) == pytest.approx(1.5, abs=0.1)


def test_fit_parameters_drop_a_roof_that_never_binds() -> None:
    from gpuwise.bench.calibrate import fit_parameters
    from gpuwise.catalog import get_gpu, get_model
    from gpuwise.perf import Profile, ReplicaConfig
    from gpuwise.perf.calibrate import decode_sample, prefill_sample

    cat = _catalog()
    cpu = ReplicaConfig(model=cat.model("tiny"), gpu=cat.gpu("cpu-local"))
    samples = [prefill_sample(cpu, 64, 1, 0.002), decode_sample(cpu, 4, 96, 0.001)]
    fitted_like = Profile(compute_eff=0.3, compute_half_sat_flops=1.5e9, overhead_s=0.001)
    assert "memory_eff" not in fit_parameters(samples, fitted_like)
    h100 = ReplicaConfig(model=get_model("llama-3.1-8b"), gpu=get_gpu("h100-sxm"))
    samples = [prefill_sample(h100, 2048, 1, 0.1), decode_sample(h100, 8, 1000, 0.01)]
    assert fit_parameters(samples, Profile()) == (
        "compute_eff",
        "compute_half_sat_flops",
        "memory_eff",
        "overhead_s",
    )


def test_calibrate_against_a_fake_server_uses_client_timings(tmp_path: Path) -> None:
    from gpuwise.bench.calibrate import CalibrationPlan, calibrate
    from gpuwise.perf import load_profile

    plan = CalibrationPlan(
        concurrency=(1, 2, 4),
        prompt_tokens=(16, 64, 200, 1000),  # 1000 does not fit max_model_len 512: dropped
        decode_output_tokens=16,
        requests_per_prompt=2,
        requests_per_slot=2,
        warmup_requests=1,
    )
    cat = _catalog()
    with FakeOpenAI(token_delay_s=0.002) as srv:
        res = calibrate(
            srv.url,
            model=cat.model("tiny"),
            gpu=cat.gpu("cpu-local"),
            plan=plan,
            name="fake",
            engine_warmup_s=12.5,
            out=tmp_path / "fake.yaml",
        )
    assert not res.engine_metrics and any("client-side" in w for w in res.warnings)
    assert [s.kind for s in res.steps] == ["prefill"] * 3 + ["decode"] * 3
    assert all(s.source == "client" and s.measured_s > 0 for s in res.steps)
    prof = load_profile(tmp_path / "fake.yaml")
    assert prof.name == "fake" and prof.engine_warmup_s == 12.5
    assert prof.fit_error["samples"] == 6
    assert "prompts of 16, 64, 200 tokens" in prof.fitted_on
    json.dumps(res.as_dict())
