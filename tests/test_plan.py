"""The planner: capacities, the MILP, simulate-and-tighten, baselines, the $30K example, scale."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gpuwise.catalog import default_catalog
from gpuwise.perf import ReplicaConfig, ReplicaPerf
from gpuwise.plan import PlanError, PlanOptions, plan
from gpuwise.plan.buckets import bucket_of, size_buckets
from gpuwise.plan.candidates import Candidate, EngineConfig, Member
from gpuwise.plan.capacity import LIMIT_NAMES, RowInputs, batch_limit, capacity_table
from gpuwise.plan.milp import Infeasible, solve_fleet
from gpuwise.plan.planner import build_pool, prove
from gpuwise.resolve import resolve, resolve_spec
from gpuwise.spec import parse_spec
from gpuwise.workload import Requests

ROOT = Path(__file__).resolve().parents[1]
THIRTY_K = ROOT / "examples" / "thirty-k-fleet.yaml"
TEN = ROOT / "tests" / "data" / "plan-ten-by-ten.yaml"


def _row(model: str, gpu: str, tp: int = 1, dtype: str = "bf16", seqs: int = 256) -> RowInputs:
    c = default_catalog()
    cfg = ReplicaConfig(
        c.model(model), c.gpu(gpu), tp, dtype, max_num_seqs=seqs, max_model_len=8192
    )
    p = ReplicaPerf(cfg)
    return RowInputs(p.coeff_vector(), p.memory.kv_capacity_tokens, seqs, 8192, 0.1, 2.0, math.inf)


def _table(rows: list[RowInputs], i: float = 1000, o: float = 250):
    a = np.array
    return capacity_table(rows, a([i]), a([o]), a([3 * i]), a([2 * o]))


# ----------------------------------------------------------------------------- capacity


def test_capacity_orders_configurations_as_an_engineer_would() -> None:
    tab = _table(
        [
            _row("llama-3.1-8b", "h100-sxm"),
            _row("llama-3.1-8b", "h100-sxm", seqs=1),
            _row("llama-3.1-8b", "l4"),
            _row("llama-3.1-8b", "l4", dtype="int4"),
        ]
    )
    big, single, l4, l4_int4 = tab.rate_rps[:, 0]
    assert big > 10 * l4 > 0  # an H100 serves an 8B model far faster than an L4
    assert single < big / 50  # batch 1 wastes the GPU
    assert l4_int4 > l4  # int4 weights: less to read per token, more room for KV
    # at capacity every latency is inside the targets it was sized for
    assert np.all(tab.tpot_s[[0, 2, 3], 0] <= 0.1 + 1e-9)
    assert np.all(tab.ttft_s[:, 0] <= 2.0 + 1e-9)


def test_an_unreachable_tpot_has_zero_capacity_and_reports_the_floor() -> None:
    row = _row("llama-3.1-70b", "h100-sxm", tp=2)
    tight = RowInputs(row.coeffs, row.kv_capacity_tokens, 256, 8192, 0.005, 2.0, math.inf)
    tab = _table([tight])
    assert tab.rate_rps[0, 0] == 0
    assert LIMIT_NAMES[tab.limit[0, 0]] == "tpot"
    assert tab.zero_load_tpot_s[0, 0] > 0.005


def test_batch_limit_meets_tpot() -> None:
    row = _row("llama-3.1-8b", "h100-sxm")
    b = batch_limit(row.coeffs, 1125, 0.05, row.kv_capacity_tokens)
    assert b >= 16 and b % 8 == 0
    c = default_catalog()
    perf = ReplicaPerf(ReplicaConfig(c.model("llama-3.1-8b"), c.gpu("h100-sxm")))
    assert perf.decode_time_s(b, 1125) <= 0.05 < perf.decode_time_s(b + 8, 1125) + 0.05


def test_buckets_cover_the_sample() -> None:
    rng = np.random.default_rng(0)
    inp = rng.integers(10, 4000, 2000)
    out = rng.integers(5, 800, 2000)
    reqs = Requests(np.sort(rng.random(2000) * 100), inp, out, duration_s=100)
    bks = size_buckets(reqs, 20.0)
    assert 4 <= len(bks) <= 9
    assert sum(b.share for b in bks) == pytest.approx(1.0)
    assert sum(b.rate_rps for b in bks) == pytest.approx(20.0)
    idx = bucket_of(bks, inp, out)
    assert np.all(idx >= 0)
    for b in bks:
        assert np.mean(idx == b.index) == pytest.approx(b.share)


# ----------------------------------------------------------------------------- MILP


def _cand(key: str, dep: str, caps: tuple[float, ...], usd: float, pricing: str = "on-demand",
          gpus: int = 1) -> Candidate:  # fmt: skip
    e = EngineConfig("h100-sxm", gpus, "bf16", "auto", 64, 8192, 0.9, 8192)
    m = Member(dep, e, caps, (0.1,) * len(caps), (0.01,) * len(caps), 100_000)
    return Candidate(key, "h100-sxm", gpus, pricing, usd, (m,))  # type: ignore[arg-type]


class _D:
    """A stand-in Demand: the MILP only reads name, buckets, rate and min replicas."""

    def __init__(self, name: str, rates: list[float], min_replicas: int = 1) -> None:
        from types import SimpleNamespace

        self.name = name
        self.buckets = tuple(SimpleNamespace(rate_rps=r) for r in rates)
        self.rate_rps = sum(rates)
        self.min_replicas = min_replicas


def test_milp_mixes_gpu_types_per_bucket() -> None:
    # small requests are cheap on the small GPU, large ones only fit the big one (Mélange)
    d = _D("a", [10.0, 2.0])
    small = _cand("small", "a", (10.0, 0.0), 1.0)
    big = _cand("big", "a", (12.0, 2.0), 4.0)
    alloc = solve_fleet([d], [small, big])  # type: ignore[list-item]
    assert not isinstance(alloc, Infeasible)
    assert alloc.replicas == {"small": 1, "big": 1}
    assert alloc.usd_per_hour == pytest.approx(5.0)


def test_milp_spot_share_and_min_replicas() -> None:
    d = _D("a", [10.0], min_replicas=3)
    od = _cand("od", "a", (5.0,), 4.0)
    spot = _cand("spot", "a", (5.0,), 1.0, pricing="spot")
    alloc = solve_fleet([d], [od, spot], spot_max_share=0.5)  # type: ignore[list-item]
    assert not isinstance(alloc, Infeasible)
    served_spot = alloc.shares.get(("a", 0, "spot"), 0.0)
    assert served_spot <= 0.5 + 1e-9
    assert sum(alloc.replicas.values()) >= 3
    assert alloc.replicas["od"] >= 1


def test_milp_names_uncovered_buckets() -> None:
    res = solve_fleet([_D("a", [1.0, 1.0])], [_cand("c", "a", (5.0, 0.0), 1.0)])  # type: ignore[list-item]
    assert isinstance(res, Infeasible) and res.uncovered == {"a": [1]}


# ----------------------------------------------------------------------------- the $30K fleet


@pytest.fixture(scope="module")
def thirty_k():
    r = resolve_spec(THIRTY_K)
    return r, plan(r)


def test_thirty_k_fleet_current_bill_and_plan(thirty_k) -> None:
    _, p = thirty_k
    assert 28_000 <= p.current.fleet.usd_per_month <= 31_000
    assert p.current.verification.ok  # "serves fine"
    assert p.verification.ok
    assert p.fleet.usd_per_month < p.current.fleet.usd_per_month / 5
    # the generic-ops transplant costs at least 3x the plan
    assert p.transplant.verification.ok
    assert p.transplant.fleet.usd_per_month >= 3 * p.fleet.usd_per_month
    # never more than Mélange on the same inputs; packing makes it cheaper here
    assert p.fleet.usd_per_month <= p.melange.fleet.usd_per_month + 1e-6
    assert p.fleet.usd_per_month < p.melange.fleet.usd_per_month
    assert any(g.candidate.packed for g in p.fleet.groups)


def test_thirty_k_recommendations_add_up_to_the_saving(thirty_k) -> None:
    _, p = thirty_k
    recs = p.recommendations
    assert [r.key for r in recs][:1] == ["batching"]
    total = sum(r.saving_usd_per_month for r in recs)
    assert total == pytest.approx(p.current.fleet.usd_per_month - p.fleet.usd_per_month)
    batching = recs[0]
    assert batching.saving_usd_per_month > 0
    assert batching.utilization_after > batching.utilization_before
    for r in recs:
        if (
            any("int4" in e.after or "fp8" in e.after for e in r.effects)
            and r.key == "quantization"
        ):
            assert r.warnings and "quality" in r.warnings[0]
        for e in r.effects:
            assert e.p95_ttft_after_s > 0 and e.p95_tpot_after_s > 0


def test_every_printed_fleet_passed_its_simulation(thirty_k) -> None:
    _, p = thirty_k
    for c in p.verification.checks:
        assert c.ok and c.attainment >= c.percentile / 100 - 0.02
    for b in (p.melange, p.transplant):
        assert b.verification.ok


def test_plan_json_is_one_document() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gpuwise", "plan", str(THIRTY_K), "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["plan"]["verified"] is True
    assert doc["baselines"]["current"]["usd_per_month"] > doc["plan"]["usd_per_month"]
    assert doc["solver"]["milp_s"] < 5


def test_plan_prints_the_bills() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gpuwise", "plan", str(THIRTY_K)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for text in ("Current bill: $29,127/month", "Planned bill:", "saves", "batching limit",
                 "generic-ops transplant", "Mélange", "solver:"):  # fmt: skip
        assert text in r.stdout, text


# ----------------------------------------------------------------------------- errors


def _spec(tpot: float) -> dict:
    return {
        "name": "tight",
        "slo": {"percentile": 95, "ttft_s": 2.0, "tpot_s": tpot},
        "deployments": [
            {
                "name": "big-model",
                "model": "llama-3.1-70b",
                "gpu": "h100-sxm",
                "tp": 2,
                "traffic": {
                    "arrival": {"kind": "poisson", "rate_rps": 1},
                    "input_tokens": {"kind": "fixed", "tokens": 1000},
                    "output_tokens": {"kind": "fixed", "tokens": 200},
                },
            }
        ],
    }


def test_infeasible_slo_names_deployment_and_best_latency() -> None:
    r = resolve(parse_spec(_spec(0.001)))
    with pytest.raises(PlanError) as e:
        plan(r)
    msg = str(e.value)
    assert "big-model" in msg and "best achievable" in msg and "TPOT" in msg


def test_infeasible_slo_exits_2(tmp_path: Path) -> None:
    import yaml

    f = tmp_path / "tight.yaml"
    f.write_text(yaml.safe_dump(_spec(0.001)))
    r = subprocess.run(
        [sys.executable, "-m", "gpuwise", "plan", str(f)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 2
    assert "big-model" in r.stderr and "best achievable" in r.stderr
    assert "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- scale


def test_ten_models_ten_gpu_types_solve_under_5_s() -> None:
    r = resolve_spec(TEN)
    gpus = tuple(sorted(r.catalog.gpus))[:10]
    t0 = time.perf_counter()
    pool = build_pool(r, PlanOptions(gpus=gpus))
    p = prove("plan", r, pool, lambda c: True, spot_max_share=r.spec.spot_max_share, seed=0)
    wall = time.perf_counter() - t0
    per_round = p.stats.solve_s / p.stats.rounds
    print(f"10x10: sweep {pool.enumerate_s:.2f} s, MILP {per_round:.2f} s per round, {wall:.1f} s")
    assert len({g.candidate.gpu for g in p.fleet.groups}) >= 1 and p.verification.ok
    assert per_round < 5.0


def test_spot_share_makes_the_plan_cheaper_than_melange() -> None:
    spec = {
        "name": "spot",
        "slo": {"percentile": 95, "ttft_s": 2.0, "tpot_s": 0.1},
        "pricing_allowed": ["on-demand", "spot"],
        "spot_max_share": 0.5,
        "deployments": [
            {
                "name": "chat",
                "model": "llama-3.1-8b",
                "gpu": "h100-sxm",
                "traffic": {
                    "arrival": {"kind": "poisson", "rate_rps": 120},
                    "input_tokens": {
                        "kind": "lognormal",
                        "mean": 800,
                        "cv": 1.0,
                        "max_tokens": 4000,
                    },
                    "output_tokens": {
                        "kind": "lognormal",
                        "mean": 200,
                        "cv": 0.8,
                        "max_tokens": 1000,
                    },
                },
            }
        ],
    }
    p = plan(resolve(parse_spec(spec)), PlanOptions(gpus=("h100-sxm",), quantize=False))
    assert p.verification.ok
    assert p.fleet.usd_per_month < p.melange.fleet.usd_per_month
    spot_rate = sum(
        g.load_of("chat").rate_rps for g in p.fleet.groups if g.candidate.pricing == "spot"
    )
    assert 0 < spot_rate <= 0.5 * 120 + 1e-6
    assert p.recommendations[-1].key == "pricing" and p.recommendations[-1].saving_usd_per_month > 0
