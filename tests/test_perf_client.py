"""What a client sees beyond the engine: per-sequence output processing and per-request latency.

A profile fitted on client-side timings (``gpuwise calibrate --from client``) carries two terms an
engine-side fit leaves at 0: ``overhead_per_seq_s`` (every sequence that produces a token costs
output processing in that iteration) and ``request_overhead_s`` (HTTP, tokenization and the trip
back, outside the engine). Both must leave every existing prediction unchanged at 0, and the
simulator must use them exactly as the perf model does.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpuwise.catalog import get_gpu, get_model, load_catalog
from gpuwise.perf import PerfError, Profile, ReplicaConfig, ReplicaPerf, load_profile
from gpuwise.perf.calibrate import decode_sample, fit_profile, predict, prefill_sample
from gpuwise.perf.model import COEFF_FIELDS, iteration_time_from_coeffs
from gpuwise.resolve import ResolvedDeployment, resolve
from gpuwise.sim.engine import decode_run_time
from gpuwise.spec import parse_spec
from test_sim import random_requests, reference_sim, run, spec_dict

EXAMPLE_CATALOG = (
    Path(__file__).resolve().parents[1] / "examples" / "local" / "cpu-tiny.catalog.yaml"
)
SEQ_S = 2e-4
REQUEST_S = 0.05


def _perf(profile: Profile) -> ReplicaPerf:
    cfg = ReplicaConfig(get_model("llama-3.1-8b"), get_gpu("h100-sxm"))
    return ReplicaPerf(cfg, profile)


def _deployment(profile: Profile) -> ResolvedDeployment:
    return resolve(parse_spec(spec_dict()), profile=profile).deployments[0]


def test_zero_terms_change_no_prediction() -> None:
    base = load_profile()
    assert base.overhead_per_seq_s == 0.0 and base.request_overhead_s == 0.0
    p = _perf(base)
    assert COEFF_FIELDS[-1] == "seq_s" and p.coeff_vector()[-1] == 0.0
    assert p.request_overhead_s == 0.0
    # bit for bit: the added terms are exact zeros
    p2 = _perf(replace(base, overhead_per_seq_s=0.0, request_overhead_s=0.0))
    assert p2.decode_time_s(32, 900) == p.decode_time_s(32, 900)
    assert p2.decode_run_time_s(32, 900, 50) == p.decode_run_time_s(32, 900, 50)


def test_per_seq_overhead_counts_every_sequence_that_produces_a_token() -> None:
    base = load_profile()
    p0, p1 = _perf(base), _perf(replace(base, overhead_per_seq_s=SEQ_S))
    assert p1.decode_time_s(16, 500) - p0.decode_time_s(16, 500) == pytest.approx(16 * SEQ_S)
    # a mixed iteration: 3 prompts finishing their prefill and 10 decodes
    kw = dict(prefill_tokens=600, decode_seqs=10, decode_context_tokens=5000, prefill_seqs=3)
    assert p1.iteration_time_s(**kw) - p0.iteration_time_s(**kw) == pytest.approx(13 * SEQ_S)
    # one prompt by default, and nothing at all for an empty batch
    assert p1.prefill_time_s(256) - p0.prefill_time_s(256) == pytest.approx(SEQ_S)
    assert p1.iteration_time_s() == 0.0
    # the closed form of a decode run still equals the sum of its iterations
    loop = sum(p1.decode_time_s(16, 500 + i) for i in range(200))
    assert p1.decode_run_time_s(16, 500, 200) == pytest.approx(loop, rel=1e-9)


def test_kernel_formulas_include_the_per_seq_term() -> None:
    p = _perf(replace(load_profile(), overhead_per_seq_s=SEQ_S))
    k = p.coeff_vector()
    got = iteration_time_from_coeffs(k, 300.0, 0.0, 7.0, 7000.0, 2.0, 300.0 * 150.0)
    want = p.iteration_time_s(300, 0, 7, 7000, 2, 300 * 150)
    assert got == pytest.approx(want, rel=1e-12)
    assert decode_run_time(k, 8.0, 8.0 * 600, 40) == pytest.approx(
        p.decode_run_time_s(8, 600, 40), rel=1e-12
    )


def test_simulator_matches_the_step_by_step_reference_with_both_terms() -> None:
    prof = replace(load_profile(), overhead_per_seq_s=SEQ_S, request_overhead_s=REQUEST_S)
    rd = _deployment(prof)
    reqs = random_requests(300, 3.0, seed=5)
    kv = rd.perf.memory.kv_capacity_blocks
    got, _, _, stats = run(reqs, kv=kv, rd=rd)
    want = reference_sim(reqs, rd, kv)  # engine times: no request overhead in there
    np.testing.assert_array_equal(got.outcome, want["outcome"])
    np.testing.assert_allclose(got.admitted_s, want["admitted_s"], rtol=1e-9, equal_nan=True)
    for key in ("first_token_s", "finish_s"):
        np.testing.assert_allclose(
            getattr(got, key) - REQUEST_S, want[key], rtol=1e-9, atol=1e-9, err_msg=key
        )
    assert stats.steps < stats.iterations  # decode runs were fast-forwarded


def test_request_overhead_delays_what_the_client_sees_and_nothing_else() -> None:
    base = load_profile()
    reqs = random_requests(300, 3.0, seed=9)
    a, sa, _, _ = run(reqs, rd=_deployment(base))
    b, sb, _, _ = run(reqs, rd=_deployment(replace(base, request_overhead_s=REQUEST_S)))
    np.testing.assert_array_equal(a.admitted_s, b.admitted_s)  # the engine's timeline
    np.testing.assert_allclose(b.ttft_s - a.ttft_s, REQUEST_S, rtol=1e-9)
    np.testing.assert_allclose(b.e2e_s - a.e2e_s, REQUEST_S, rtol=1e-9)
    np.testing.assert_allclose(b.tpot_s, a.tpot_s, rtol=1e-9)
    assert sb.ttft_p50_s == pytest.approx(sa.ttft_p50_s + REQUEST_S)
    assert sb.mean_batch_size == pytest.approx(sa.mean_batch_size, rel=1e-12)


def test_client_calibration_recovers_the_request_and_sequence_terms() -> None:
    """TTFT samples at concurrency 1 (one request overhead each) and TPOT samples at several
    batches tell the per-request latency from the per-iteration and per-sequence costs."""
    cat = load_catalog((EXAMPLE_CATALOG,))
    cfg = ReplicaConfig(model=cat.model("tiny"), gpu=cat.gpu("cpu-local"), max_num_seqs=8)
    truth = Profile(
        compute_eff=0.3,
        compute_half_sat_flops=1.2e9,
        overhead_s=1.0e-3,
        overhead_per_seq_s=8e-5,
        request_overhead_s=4e-3,
    )
    samples = [
        prefill_sample(cfg, p, 1, 1.0, request_overheads=1) for p in (16, 32, 64, 128, 256, 384)
    ] + [decode_sample(cfg, b, 96, 1.0) for b in (1, 2, 4, 8)]
    measured = predict(samples, truth)
    samples = [replace(s, measured_s=float(m)) for s, m in zip(samples, measured, strict=True)]
    fit = ("compute_eff", "overhead_s", "overhead_per_seq_s", "request_overhead_s")
    fitted = fit_profile(samples, replace(Profile(), compute_half_sat_flops=1.2e9), fit=fit)
    assert fitted.request_overhead_s == pytest.approx(4e-3, rel=0.02)
    assert fitted.overhead_per_seq_s == pytest.approx(8e-5, rel=0.05)
    assert fitted.overhead_s == pytest.approx(1e-3, rel=0.05)
    assert fitted.fit_error["median_abs_rel"] < 1e-3


def test_profile_files_carry_the_new_fields(tmp_path) -> None:
    prof = Profile(name="c", overhead_per_seq_s=1e-4, request_overhead_s=3e-3)
    assert load_profile(prof.save(tmp_path / "c.yaml")) == prof
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile:\n  request_overhead_s: -1\n")
    with pytest.raises(PerfError, match="request_overhead_s"):
        load_profile(bad)


# ------------------------------------------------------------------------------ gpuwise calibrate


def _step(kind: str, c: int, prompt: float, measured: float, overheads: float, batch: float):
    from gpuwise.bench.calibrate import StepMeasurement

    return StepMeasurement(
        kind=kind,
        concurrency=c,
        requests=8,
        ok=8,
        prompt_tokens=prompt,
        output_tokens=2.0 if kind == "prefill" else 128.0,
        batch=batch,
        context_tokens=0.0 if kind == "prefill" else prompt + 64.0,
        measured_s=measured,
        source="client",
        client_ttft_s=measured if kind == "prefill" else None,
        client_tpot_s=measured if kind == "decode" else None,
        engine_prefill_s=None,
        engine_itl_s=None,
        engine_queue_s=None,
        engine_ttft_s=None,
        engine_tokens_per_iteration=None,
        wall_s=1.0,
        request_overheads=overheads,
    )


def test_client_steps_fit_the_request_overhead_and_keep_the_half_saturation() -> None:
    """Client timings: a prefill step is a TTFT (one request overhead); the fit recovers it and
    leaves compute_half_sat_flops (an intercept it cannot tell from the overheads) alone."""
    from gpuwise.bench.calibrate import FIT_CLIENT, _samples, fit_steps

    cat = load_catalog((EXAMPLE_CATALOG,))
    cfg = ReplicaConfig(model=cat.model("tiny"), gpu=cat.gpu("cpu-local"), max_num_seqs=8)
    truth = replace(
        load_profile(), compute_eff=0.35, overhead_s=9e-4, overhead_per_seq_s=2e-5,
        request_overhead_s=6e-3,
    )  # fmt: skip
    perf = ReplicaPerf(cfg, truth)
    steps = []
    for rnd in range(3):  # rounds: the median of each step is taken
        noise = (1.0, 1.3, 0.98)[rnd]  # one slow round must not move the fit
        for p in (16, 64, 128, 256, 384):
            steps.append(_step("prefill", 1, p, noise * (perf.prefill_time_s(p) + 6e-3), 1.0, 1))
        for b in (1, 2, 4, 8):
            t = perf.decode_time_s(b, 32 + 64)
            steps.append(_step("decode", b, 32, noise * t, 0.0, float(b)))
    samples = _samples(cfg, steps)
    assert [s.request_overheads for s in samples] == [1.0] * 5 + [0.0] * 4
    assert "compute_half_sat_flops" not in FIT_CLIENT
    fitted = fit_steps(samples, load_profile(), FIT_CLIENT)
    assert fitted.request_overhead_s == pytest.approx(6e-3, rel=0.02)
    assert fitted.overhead_s == pytest.approx(9e-4, rel=0.05)
    assert fitted.compute_half_sat_flops == load_profile().compute_half_sat_flops
    # on a CPU the bandwidth roof never binds: memory_eff keeps the base value
    assert fitted.memory_eff == load_profile().memory_eff


def test_a_coefficient_pinned_to_a_bound_is_dropped() -> None:
    from gpuwise.bench.calibrate import _at_bound

    assert _at_bound(replace(Profile(), memory_eff=0.05), "memory_eff")
    assert _at_bound(replace(Profile(), compute_eff=1.0), "compute_eff")
    assert not _at_bound(replace(Profile(), memory_eff=0.3), "memory_eff")
    # an additive overhead the data say is absent is measured, not pinned
    assert not _at_bound(replace(Profile(), overhead_per_seq_s=0.0), "overhead_per_seq_s")


def test_plan_capacity_kernel_uses_the_per_seq_term() -> None:
    """The planner's compiled kernel calls the same formula; a stale numba cache compiled before
    the per-sequence term existed would silently drop it (plan/capacity.py caches on disk)."""
    from gpuwise.plan.capacity import _steady_iteration

    p = _perf(replace(load_profile(), overhead_per_seq_s=1e-2))
    c = p.coeff_vector()
    lam, i, o, t = 5.0, 500.0, 200.0, 0.05
    b, ps = lam * o * t, lam * t
    want = p.iteration_time_s(lam * i * t, 0.0, b, b * (i + 0.5 * o), ps, ps * i * i * 0.5)
    assert _steady_iteration(c, lam, i, o, t) == pytest.approx(want, rel=1e-12)
