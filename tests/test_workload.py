"""gpuwise.workload: arrivals, lengths, traces, reproducibility, and errors users can act on.

Every random test is seeded, so the tolerances below are checked against fixed numbers, not luck.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuwise.spec import (
    DiurnalArrivals,
    EmpiricalLength,
    FixedLength,
    GammaArrivals,
    LognormalLength,
    PoissonArrivals,
    RampArrivals,
    TraceArrivals,
    Traffic,
    UniformLength,
)
from gpuwise.workload import (
    DATASETS,
    Requests,
    WorkloadError,
    arrival_times,
    concat,
    dataset_path,
    detect_format,
    empirical_values,
    generate,
    merge,
    peak_rate_rps,
    rate_at,
    read_azure_csv,
    read_csv_trace,
    read_mooncake_jsonl,
    read_trace,
    scale_rate,
)
from gpuwise.workload import traces as traces_mod

DATA = Path(__file__).parent / "data" / "workload"
MOONCAKE_HEAD = DATA / "mooncake_conversation_head200.jsonl"
SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
FIXED = {"input_tokens": FixedLength(tokens=100), "output_tokens": FixedLength(tokens=10)}


def traffic(arrival, **lengths) -> Traffic:
    return Traffic(arrival=arrival, **{**FIXED, **lengths})


def gaps_cv(t: np.ndarray) -> float:
    g = np.diff(t)
    return float(g.std() / g.mean())


def binned_rate(t: np.ndarray, lo: float, hi: float) -> float:
    return float(np.count_nonzero((t >= lo) & (t < hi)) / (hi - lo))


# ----------------------------------------------------------------------------- arrivals


def test_poisson_rate_and_cv():
    r = generate(traffic(PoissonArrivals(rate_rps=200)), 500.0, seed=1)
    assert len(r) == pytest.approx(100_000, rel=0.02)
    assert r.mean_rate_rps == pytest.approx(200, rel=0.02)
    assert gaps_cv(r.arrival_s) == pytest.approx(1.0, abs=0.02)
    assert r.arrival_s[0] >= 0 and r.arrival_s[-1] < 500.0
    assert r.arrival_s.dtype == np.float64 and r.input_tokens.dtype == np.int64


@pytest.mark.parametrize("cv", [0.5, 3.0])
def test_gamma_cv(cv):
    t = arrival_times(GammaArrivals(rate_rps=100, cv=cv), 2000.0, seed=2)
    assert t.size / 2000.0 == pytest.approx(100, rel=0.03)
    assert gaps_cv(t) == pytest.approx(cv, rel=0.05)


def test_diurnal_peak_and_trough_by_binning():
    a = DiurnalArrivals(peak_rps=100, trough_rps=10, period_s=1000, peak_at_s=250)
    t = arrival_times(a, 2000.0, seed=3)
    for peak in (250, 1250):
        assert binned_rate(t, peak - 10, peak + 10) == pytest.approx(100, rel=0.07)
    for trough in (750, 1750):
        assert binned_rate(t, trough - 10, trough + 10) == pytest.approx(10, rel=0.25)
    assert t.size / 2000.0 == pytest.approx(55, rel=0.02)  # the mean of the sinusoid
    assert rate_at(a, 250.0) == pytest.approx(100)
    assert rate_at(a, 750.0) == pytest.approx(10)
    np.testing.assert_allclose(rate_at(a, np.array([0.0, 500.0])), [55, 55], atol=1e-9)
    assert peak_rate_rps(a, 2000) == pytest.approx(100)
    # A window that ends before the crest peaks at its end.
    assert peak_rate_rps(a, 100) == pytest.approx(rate_at(a, 100.0), rel=1e-6)


def test_ramp_rate_before_during_after():
    a = RampArrivals(start_rps=10, end_rps=50, at_s=100, ramp_s=100)
    t = arrival_times(a, 400.0, seed=4)
    assert binned_rate(t, 0, 100) == pytest.approx(10, rel=0.12)
    assert binned_rate(t, 125, 175) == pytest.approx(30, rel=0.1)
    assert binned_rate(t, 200, 400) == pytest.approx(50, rel=0.05)
    assert rate_at(a, 150.0) == pytest.approx(30)
    assert peak_rate_rps(a, 400) == 50
    assert peak_rate_rps(a, 150) == pytest.approx(30, rel=1e-6)
    step = RampArrivals(start_rps=20, end_rps=5, at_s=50)
    ts = arrival_times(step, 200.0, seed=4)
    assert binned_rate(ts, 0, 50) == pytest.approx(20, rel=0.15)
    assert binned_rate(ts, 50, 200) == pytest.approx(5, rel=0.15)
    assert rate_at(step, np.array([-1.0, 49.9, 50.0])).tolist() == [0.0, 20.0, 5.0]
    assert peak_rate_rps(step, 200) == 20


def test_constant_rate_helpers():
    a = PoissonArrivals(rate_rps=7)
    assert rate_at(a, 3.0) == 7.0 and isinstance(rate_at(a, 3.0), float)
    assert rate_at(traffic(a), np.array([-1.0, 1.0])).tolist() == [0.0, 7.0]
    assert peak_rate_rps(a, 10) == 7


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["poisson", "gamma", "diurnal", "ramp"]),
    rate=st.floats(0.01, 300),
    duration=st.floats(0.01, 300),
    seed=st.integers(0, 2**63),
)
def test_arrivals_sorted_and_inside_window(kind, rate, duration, seed):
    a = {
        "poisson": PoissonArrivals(rate_rps=rate),
        "gamma": GammaArrivals(rate_rps=rate, cv=2.5),
        "diurnal": DiurnalArrivals(peak_rps=rate, trough_rps=rate / 3, period_s=duration / 2),
        "ramp": RampArrivals(start_rps=rate, end_rps=rate / 2 + 0.1, at_s=duration / 3),
    }[kind]
    r = generate(traffic(a), duration, seed)
    assert np.all(np.diff(r.arrival_s) >= 0)
    assert r.arrival_s.size == 0 or (r.arrival_s[0] >= 0 and r.arrival_s[-1] < duration)


def test_million_poisson_requests_are_fast():
    a = traffic(PoissonArrivals(rate_rps=1000))
    generate(a, 1.0, 0)  # warm imports
    start = time.perf_counter()
    r = generate(a, 1000.0, 0)
    elapsed = time.perf_counter() - start
    assert len(r) > 990_000
    assert elapsed < 1.0


# ----------------------------------------------------------------------------- reproducibility


SPECS = [
    traffic(PoissonArrivals(rate_rps=20)),
    traffic(GammaArrivals(rate_rps=20, cv=2)),
    traffic(DiurnalArrivals(peak_rps=30, trough_rps=1, period_s=100)),
    traffic(RampArrivals(start_rps=5, end_rps=40, at_s=50, ramp_s=30)),
    Traffic(
        arrival=TraceArrivals(path="azure-code", rate_scale=1.7),
        input_tokens=LognormalLength(mean=500, cv=2),
    ),
    Traffic(
        arrival=PoissonArrivals(rate_rps=20),
        input_tokens=EmpiricalLength(dataset="sharegpt"),
        output_tokens=EmpiricalLength(dataset="sharegpt"),
    ),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.arrival.kind)
def test_same_seed_same_bytes(spec):
    a, b = generate(spec, 200.0, seed=42), generate(spec, 200.0, seed=42)
    assert a == b
    for name in ("arrival_s", "input_tokens", "output_tokens"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    c = generate(spec, 200.0, seed=43)
    assert c.arrival_s.tobytes() != a.arrival_s.tobytes() or (
        c.input_tokens.tobytes() != a.input_tokens.tobytes()
    )


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.arrival.kind)
def test_longer_run_extends_shorter_one(spec):
    short, long = generate(spec, 100.0, seed=5), generate(spec, 250.0, seed=5)
    cut = long.slice_time(0.0, 100.0)
    assert short.arrival_s.tobytes() == cut.arrival_s.tobytes()
    assert short.input_tokens.tobytes() == cut.input_tokens.tobytes()
    assert short.output_tokens.tobytes() == cut.output_tokens.tobytes()


def test_lengths_do_not_move_arrivals():
    arrival = GammaArrivals(rate_rps=50, cv=2)
    a = generate(traffic(arrival), 100.0, seed=9)
    b = generate(
        Traffic(
            arrival=arrival,
            input_tokens=EmpiricalLength(dataset="arxiv-summarization"),
            output_tokens=LognormalLength(mean=200, cv=1.5),
        ),
        100.0,
        seed=9,
    )
    assert a.arrival_s.tobytes() == b.arrival_s.tobytes()
    # Changing only the output distribution keeps the inputs too.
    c = generate(
        Traffic(
            arrival=arrival,
            input_tokens=EmpiricalLength(dataset="arxiv-summarization"),
            output_tokens=UniformLength(low=1, high=9),
        ),
        100.0,
        seed=9,
    )
    assert b.input_tokens.tobytes() == c.input_tokens.tobytes()


def test_seed_must_be_a_natural_number():
    with pytest.raises(WorkloadError, match="seed"):
        generate(traffic(PoissonArrivals(rate_rps=1)), 10, seed=-1)
    with pytest.raises(WorkloadError, match="duration_s"):
        generate(traffic(PoissonArrivals(rate_rps=1)), 0, seed=1)
    with pytest.raises(WorkloadError, match="shorten the duration"):
        generate(traffic(PoissonArrivals(rate_rps=1e6)), 1e6, seed=1)


# ----------------------------------------------------------------------------- lengths


def lengths(dist, n=200_000, role="input", seed=11):
    spec = Traffic(
        arrival=PoissonArrivals(rate_rps=n / 100),
        input_tokens=dist,
        output_tokens=dist if role == "output" else FixedLength(tokens=1),
    )
    r = generate(spec, 100.0, seed)
    return r.output_tokens if role == "output" else r.input_tokens


def test_fixed_and_uniform_lengths():
    assert set(lengths(FixedLength(tokens=77), n=1000).tolist()) == {77}
    u = lengths(UniformLength(low=10, high=20))
    assert u.min() == 10 and u.max() == 20  # inclusive at both ends
    assert u.mean() == pytest.approx(15, rel=0.01)
    assert set(np.unique(u).tolist()) == set(range(10, 21))


@pytest.mark.parametrize("mean,cv", [(1000.0, 1.0), (200.0, 0.5)])
def test_lognormal_mean_and_cv(mean, cv):
    x = lengths(LognormalLength(mean=mean, cv=cv)).astype(np.float64)
    assert x.mean() == pytest.approx(mean, rel=0.02)
    assert x.std() / x.mean() == pytest.approx(cv, rel=0.05)


def test_lognormal_clips_to_one_and_max_tokens():
    x = lengths(LognormalLength(mean=50, cv=4, max_tokens=300), role="output")
    assert x.min() >= 1 and x.max() == 300


def test_empirical_dataset_keeps_pairs():
    spec = Traffic(
        arrival=PoissonArrivals(rate_rps=100),
        input_tokens=EmpiricalLength(dataset="sharegpt"),
        output_tokens=EmpiricalLength(dataset="sharegpt"),
    )
    r = generate(spec, 50.0, seed=3)
    rows = set(
        zip(
            empirical_values(EmpiricalLength(dataset="sharegpt"), "input").tolist(),
            empirical_values(EmpiricalLength(dataset="sharegpt"), "output").tolist(),
            strict=True,
        )
    )
    pairs = set(zip(r.input_tokens.tolist(), r.output_tokens.tolist(), strict=True))
    assert len(pairs) > 1000 and pairs <= rows


def test_empirical_matches_dataset_means():
    for name, in_mean, out_mean in [
        ("sharegpt", 2340.0, 438.7),
        ("arxiv-summarization", 2588.1, 291.4),
        ("azure-conv", 1154.7, 211.1),
        ("azure-code", 2047.8, 27.9),
    ]:
        d = EmpiricalLength(dataset=name)
        spec = Traffic(arrival=PoissonArrivals(rate_rps=1000), input_tokens=d, output_tokens=d)
        r = generate(spec, 100.0, seed=1)
        assert r.input_tokens.mean() == pytest.approx(in_mean, rel=0.03), name
        assert r.output_tokens.mean() == pytest.approx(out_mean, rel=0.04), name


def test_empirical_from_user_csv(tmp_path):
    f = tmp_path / "lens.csv"
    f.write_text("prompt,answer\n" + "".join(f"{i},{1000 + i}\n" for i in range(1, 51)))
    spec = Traffic(
        arrival=PoissonArrivals(rate_rps=50),
        input_tokens=EmpiricalLength(path=str(f), column="prompt"),
        output_tokens=EmpiricalLength(path=str(f), column="answer"),
    )
    r = generate(spec, 20.0, seed=0)
    assert np.all(r.output_tokens - r.input_tokens == 1000)  # rows kept together
    with pytest.raises(WorkloadError, match="set 'column'"):
        generate(spec.model_copy(update={"input_tokens": EmpiricalLength(path=str(f))}), 5.0, 0)
    with pytest.raises(WorkloadError, match="unknown length dataset 'nope'"):
        generate(spec.model_copy(update={"input_tokens": EmpiricalLength(dataset="nope")}), 5.0, 0)


def test_empirical_from_mooncake_jsonl():
    d = EmpiricalLength(path=str(MOONCAKE_HEAD))
    spec = Traffic(arrival=PoissonArrivals(rate_rps=50), input_tokens=d, output_tokens=d)
    r = generate(spec, 20.0, seed=0)
    m = read_mooncake_jsonl(MOONCAKE_HEAD)
    rows = set(zip(m.input_tokens.tolist(), m.output_tokens.tolist(), strict=True))
    assert set(zip(r.input_tokens.tolist(), r.output_tokens.tolist(), strict=True)) <= rows


# ----------------------------------------------------------------------------- traces


def test_embedded_datasets_exist_and_are_small():
    for name, ds in DATASETS.items():
        if ds.embedded:
            p = dataset_path(name)
            assert p.is_file() and p.stat().st_size < 1_000_000, name
    assert (dataset_path("azure-conv").parent / "SOURCES.md").is_file()
    with pytest.raises(WorkloadError, match="unknown dataset"):
        dataset_path("burstgpt")


def test_mooncake_dataset_not_shipped(monkeypatch, tmp_path):
    monkeypatch.setattr(traces_mod, "_SHARED_TRACES", tmp_path / "absent")
    monkeypatch.delenv(traces_mod.TRACES_DIR_ENV, raising=False)
    with pytest.raises(WorkloadError, match="GPUWISE_TRACES_DIR"):
        dataset_path("mooncake-conv")
    (tmp_path / "mooncake").mkdir()
    monkeypatch.setenv(traces_mod.TRACES_DIR_ENV, str(tmp_path))
    target = tmp_path / "mooncake" / "conversation_trace.jsonl"
    target.write_bytes(MOONCAKE_HEAD.read_bytes())
    assert dataset_path("mooncake-conv") == target


def test_azure_conv_embedded_trace():
    r = read_azure_csv(dataset_path("azure-conv"))
    assert len(r) == 19_366
    assert r.arrival_s[:4].tolist() == [0.0, 4.314579, 4.541877, 4.710427]
    assert r.arrival_s[-1] == pytest.approx(3501.721937)
    assert r.input_tokens[:3].tolist() == [374, 396, 879]
    assert r.output_tokens[:3].tolist() == [44, 109, 55]
    assert detect_format(dataset_path("azure-conv")) == "azure"
    assert len(read_trace(dataset_path("azure-code"))) == 8_819


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason="shared data not present")
def test_embedded_copies_match_shared_data():
    for name, rel in [
        ("azure-conv", "azure_llm_2023/AzureLLMInferenceTrace_conv.csv"),
        (
            "sharegpt",
            "length_distributions/sarathi_sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
        ),
    ]:
        assert (
            gzip.decompress(dataset_path(name).read_bytes()) == (SHARED_TRACES / rel).read_bytes()
        )


def test_trace_replay_scales():
    base = read_azure_csv(dataset_path("azure-conv"))
    plain = generate(Traffic(arrival=TraceArrivals(path="azure-conv")), 4000.0, seed=0)
    assert plain.arrival_s.tobytes() == base.arrival_s.tobytes()
    assert plain.input_tokens.tobytes() == base.input_tokens.tobytes()

    slow = generate(Traffic(arrival=TraceArrivals(path="azure-conv", time_scale=2)), 1e4, 0)
    np.testing.assert_array_equal(slow.arrival_s, base.arrival_s * 2)

    late = generate(Traffic(arrival=TraceArrivals(path="azure-conv", start_s=600)), 1e4, 0)
    assert len(late) == int(np.count_nonzero(base.arrival_s >= 600)) == 16_499
    assert late.arrival_s[0] >= 0 and late.arrival_s[0] < 1

    # load_spec makes paths absolute: a dataset name then arrives with the spec's folder.
    named = Traffic(arrival=TraceArrivals(path="/specs/prod/azure-conv"))
    assert generate(named, 4000.0, seed=0) == plain

    cut = generate(Traffic(arrival=TraceArrivals(path="azure-conv")), 600.0, 0)
    assert len(cut) == int(np.count_nonzero(base.arrival_s < 600))

    double = generate(Traffic(arrival=TraceArrivals(path="azure-conv", rate_scale=2)), 4000, 0)
    assert len(double) == 2 * len(base)
    assert np.isin(base.arrival_s, double.arrival_s).all()
    assert double.arrival_s[-1] < base.arrival_s[-1] + 5.0  # same duration, not compressed
    bins = np.arange(0, 3600, 300)
    ratio = np.histogram(double.arrival_s, bins)[0] / np.histogram(base.arrival_s, bins)[0]
    np.testing.assert_allclose(ratio, 2.0, rtol=0.02)  # same shape at twice the rate
    for factor in (0.5, 1.5, 3.25):
        r = generate(Traffic(arrival=TraceArrivals(path="azure-conv", rate_scale=factor)), 4e3, 0)
        assert len(r) == pytest.approx(factor * len(base), rel=0.02)
        ratio = np.histogram(r.arrival_s, bins)[0] / np.histogram(base.arrival_s, bins)[0]
        np.testing.assert_allclose(ratio, factor, rtol=0.12)


def test_trace_lengths_from_spec_or_file():
    spec = Traffic(arrival=TraceArrivals(path="azure-conv"), output_tokens=FixedLength(tokens=64))
    r = generate(spec, 300.0, seed=1)
    base = read_azure_csv(dataset_path("azure-conv")).slice_time(0, 300)
    assert r.input_tokens.tobytes() == base.input_tokens.tobytes()
    assert set(r.output_tokens.tolist()) == {64}


def test_trace_rate_curve():
    a = TraceArrivals(path="azure-conv", rate_scale=2)
    base = read_azure_csv(dataset_path("azure-conv")).arrival_s
    expected = np.count_nonzero((base >= 60) & (base < 120)) * 2 / 60
    assert rate_at(a, 90.0) == pytest.approx(expected)
    assert rate_at(a, 1e5) == 0.0
    curve = rate_at(a, np.arange(0, 3600, 60.0))
    assert peak_rate_rps(a, 3600) == pytest.approx(curve.max())
    assert rate_at(a, 90.0, bin_s=30.0) == pytest.approx(
        np.count_nonzero((base >= 90) & (base < 120)) * 2 / 30
    )


def test_mooncake_excerpt():
    r = read_mooncake_jsonl(MOONCAKE_HEAD)
    assert len(r) == 200
    assert r.arrival_s[0] == 0.0 and r.arrival_s[-1] == 72.0
    assert r.input_tokens[:3].tolist() == [6758, 7322, 7236]
    assert r.output_tokens[:3].tolist() == [500, 490, 794]
    assert detect_format(MOONCAKE_HEAD) == "mooncake"
    g = generate(Traffic(arrival=TraceArrivals(path=str(MOONCAKE_HEAD))), 100.0, 0)
    assert g.arrival_s.tobytes() == r.arrival_s.tobytes()


def test_generic_csv_traces(tmp_path):
    iso = tmp_path / "iso.csv"
    iso.write_text(
        "timestamp,prompt_tokens,completion_tokens\n"
        "2024-01-01T00:00:10.5,5,6\n2024-01-01T00:00:10,3,0\n\n2024-01-01T00:01:00Z,7,8\n"
    )
    r = read_trace(iso)
    assert r.arrival_s.tolist() == [0.0, 0.5, 50.0]  # sorted, relative to the earliest
    assert r.input_tokens.tolist() == [3, 5, 7]
    assert r.output_tokens.tolist() == [1, 6, 8]  # 0 generated tokens counts as 1

    ms = tmp_path / "ms.csv"
    ms.write_text("timestamp_ms,input_tokens,output_tokens\n1000,1,1\n3500,2,2\n")
    assert read_trace(ms).arrival_s.tolist() == [0.0, 2.5]

    times_only = tmp_path / "times.csv"
    times_only.write_text("arrival_s\n1.5\n2.5\n")
    with pytest.raises(WorkloadError, match="give traffic.input_tokens"):
        generate(Traffic(arrival=TraceArrivals(path=str(times_only))), 10.0, 0)
    r = generate(Traffic(arrival=TraceArrivals(path=str(times_only)), **FIXED), 10.0, 0)
    assert r.arrival_s.tolist() == [1.5, 2.5]  # arrival_s is kept as written


def test_csv_round_trip_is_exact(tmp_path):
    spec = Traffic(
        arrival=GammaArrivals(rate_rps=30, cv=2),
        input_tokens=LognormalLength(mean=300, cv=2),
        output_tokens=UniformLength(low=1, high=500),
    )
    r = generate(spec, 60.0, seed=8)
    f = tmp_path / "arrivals.csv"
    r.to_csv(f)
    assert f.read_text().splitlines()[0] == "arrival_s,input_tokens,output_tokens"
    back = Requests.from_csv(f, duration_s=60.0)
    assert back == r
    assert read_csv_trace(f).arrival_s.tobytes() == r.arrival_s.tobytes()


# ----------------------------------------------------------------------------- Requests


def test_requests_slice_merge_concat_scale():
    a = generate(traffic(PoissonArrivals(rate_rps=10)), 100.0, 1)
    b = generate(traffic(PoissonArrivals(rate_rps=5), input_tokens=FixedLength(tokens=7)), 50.0, 2)
    s = a.slice_time(20, 40)
    assert (
        s.start_s == 20 and s.duration_s == 20 and np.all((s.arrival_s >= 20) & (s.arrival_s < 40))
    )
    rb = a.slice_time(20, 40, rebase=True)
    np.testing.assert_allclose(rb.arrival_s, s.arrival_s - 20)
    assert rb.mean_rate_rps == s.mean_rate_rps == len(s) / 20

    m = merge(a, b)
    assert len(m) == len(a) + len(b) and m.duration_s == 100.0
    assert np.all(np.diff(m.arrival_s) >= 0)
    assert np.count_nonzero(m.input_tokens == 7) == len(b)

    c = concat(a, b)
    assert c.duration_s == 150.0 and len(c) == len(a) + len(b)
    np.testing.assert_array_equal(c.arrival_s[len(a) :], b.arrival_s + 100.0)

    d = scale_rate(a, 2.0, seed=3)
    assert len(d) == 2 * len(a) and d.duration_s == a.duration_s
    assert d.arrival_s[-1] < 100.0 and np.isin(a.arrival_s, d.arrival_s).all()
    assert scale_rate(a, 2.0, seed=3) == d
    half = scale_rate(a, 0.5, seed=3)
    assert len(half) == pytest.approx(len(a) / 2, rel=0.1)

    summ = a.summary()
    json.dumps(summ)
    assert summ["requests"] == len(a) and summ["input_tokens"]["mean"] == 100.0
    assert "n=" in repr(a)


def test_requests_are_validated_and_read_only():
    with pytest.raises(WorkloadError, match="sorted"):
        Requests(np.array([2.0, 1.0]), np.array([1, 1]), np.array([1, 1]))
    with pytest.raises(WorkloadError, match="output_tokens must be >= 1"):
        Requests(np.array([1.0]), np.array([1]), np.array([0]))
    with pytest.raises(WorkloadError, match="differ in length"):
        Requests(np.array([1.0]), np.array([1, 2]), np.array([1]))
    with pytest.raises(WorkloadError, match=">= 0"):
        Requests(np.array([-1.0]), np.array([1]), np.array([1]))
    src = np.array([1.0, 2.0])
    r = Requests(src, [3, 4], [5, 6])
    src[0] = 9.0  # the caller's array is copied, not aliased
    assert r.arrival_s[0] == 1.0
    with pytest.raises(ValueError):
        r.arrival_s[0] = 0.0
    assert len(Requests.empty()) == 0 and Requests.empty().mean_rate_rps == 0.0


# ----------------------------------------------------------------------------- bad files


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "name,text,fmt,pattern",
    [
        (
            "a.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,3,4\nyesterday,3,4\n",
            "azure",
            r"line 3, column 1 \('TIMESTAMP'\): 'yesterday' is not a date-time",
        ),
        (
            "b.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,3,four\n",
            "auto",
            r"line 2, column 3 \('GeneratedTokens'\): 'four' is not a number",
        ),
        ("c.csv", "arrival_s,input_tokens,output_tokens\n1,2,3\n4,5\n", "csv", r"line 3: 2 fields"),
        (
            "d.csv",
            "arrival_s,input_tokens,output_tokens\n1,2.5,3\n",
            "csv",
            r"line 2.*whole number",
        ),
        ("e.csv", "arrival_s,input_tokens,output_tokens\n-1,2,3\n", "csv", r"line 2.*>= 0"),
        ("f.csv", "when,input_tokens\n1,2\n", "csv", r"line 1: no time column"),
        ("g.csv", "\n\n", "csv", "empty"),
        ("h.csv", "a,b\n1,2\n", "azure", "TIMESTAMP,ContextTokens,GeneratedTokens"),
        (
            "i.jsonl",
            '{"timestamp": 0, "input_length": 1, "output_length": 1}\n{"timestamp": 5,\n',
            "auto",
            r"line 2, column \d+: not valid JSON",
        ),
        (
            "j.jsonl",
            '{"timestamp": 0, "input_length": 1}\n',
            "mooncake",
            r"line 1, field 'output_length': missing",
        ),
        (
            "k.jsonl",
            '{"timestamp": -4, "input_length": 1, "output_length": 1}\n',
            "auto",
            r"line 1, field 'timestamp'",
        ),
        ("l.jsonl", "", "mooncake", "no requests"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, name, text, fmt, pattern):
    p = write(tmp_path, name, text)
    with pytest.raises(WorkloadError, match=pattern) as err:
        generate(Traffic(arrival=TraceArrivals(path=str(p), format=fmt)), 100.0, 0)
    assert str(p) in str(err.value)


def test_missing_damaged_and_binary_files(tmp_path):
    with pytest.raises(WorkloadError, match=r"no such trace file.*azure-conv"):
        generate(Traffic(arrival=TraceArrivals(path=str(tmp_path / "nope.csv"))), 10.0, 0)
    bad_gz = tmp_path / "t.csv.gz"
    bad_gz.write_bytes(gzip.compress(b"arrival_s,input_tokens,output_tokens\n1,2,3\n")[:20])
    with pytest.raises(WorkloadError, match=r"t\.csv\.gz: the gzip data is damaged"):
        read_trace(bad_gz)
    binary = tmp_path / "t.csv"
    binary.write_bytes(b"arrival_s,input_tokens,output_tokens\n1,2,\xff\xfe\n")
    with pytest.raises(WorkloadError, match=r"t\.csv: line 2: the bytes are not UTF-8"):
        read_trace(binary)
    with pytest.raises(WorkloadError, match="not a regular file"):
        read_trace(tmp_path)
    good_gz = tmp_path / "ok.csv.gz"
    good_gz.write_bytes(gzip.compress(b"arrival_s,input_tokens,output_tokens\n1,2,3\n"))
    assert read_trace(good_gz).input_tokens.tolist() == [2]


def test_edited_trace_is_reread(tmp_path):
    p = write(tmp_path, "t.csv", "arrival_s,input_tokens,output_tokens\n1,2,3\n")
    assert len(read_trace(p)) == 1
    time.sleep(0.01)
    p.write_text("arrival_s,input_tokens,output_tokens\n1,2,3\n2,2,3\n")
    assert len(read_trace(p)) == 2


def test_spec_yaml_round_trip_reaches_workload():
    spec = Traffic.model_validate(
        {
            "arrival": {"kind": "ramp", "start_rps": 2, "end_rps": 4, "ramp_s": 300},
            "input_tokens": {"kind": "empirical", "dataset": "azure-conv"},
            "output_tokens": {"kind": "lognormal", "mean": 200, "cv": 1.2, "max_tokens": 2048},
        }
    )
    r = generate(spec, 600.0, seed=0)
    assert math.isclose(r.mean_rate_rps, (3 * 300 + 4 * 300) / 600, rel_tol=0.15)
    assert r.output_tokens.max() <= 2048
