"""``gpuwise calibrate`` against the real local vLLM replica: a loadable profile, sane values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpuwise_cli import LOCAL_CATALOG, run_gpuwise

from gpuwise.catalog import load_catalog
from gpuwise.live.local_engine import Replica, pid_alive
from gpuwise.perf import ReplicaConfig, ReplicaPerf, load_profile

pytestmark = [pytest.mark.engine]


def test_calibrate_writes_a_profile_that_perf_accepts(replica: Replica, tmp_path: Path) -> None:
    if not pid_alive(replica.pid):
        pytest.fail(f"the shared replica (pid {replica.pid}) was stopped before this test")
    out = tmp_path / "profiles" / "e2e.yaml"
    r = run_gpuwise(
        "calibrate", replica.base_url, "--gpu", "cpu-local", "--catalog", str(LOCAL_CATALOG),
        "--concurrency", "1,2,4", "--prompt-tokens", "16,64,256", "--decode-output-tokens", "64",
        "--requests-per-prompt", "4", "--requests-per-slot", "3", "--name", "e2e",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    print(json.dumps({k: doc[k] for k in ("runtime_s", "api_overhead_s", "samples")}, indent=1))
    # The architecture came from the folder vLLM reports (its config.json), named like it.
    assert doc["model"] == "tiny-llama" and doc["engine_metrics"] is True
    assert doc["out_path"] == str(out)
    assert len(doc["samples"]) == 6 and all(s["measured_s"] > 0 for s in doc["samples"])

    prof = load_profile(out)
    assert prof.name == "e2e" and "gpuwise calibrate against" in prof.fitted_on
    assert 0 < prof.compute_eff <= 1 and 0 < prof.memory_eff <= 1
    assert 1e-5 < prof.overhead_s < 0.1  # a CPU engine iteration costs about a millisecond
    assert prof.fit_error["samples"] == 6
    assert prof.fit_error["median_abs_rel"] < 0.5

    # The profile predicts the engine it was fitted on: decode near the measured ITL.
    cat = load_catalog((LOCAL_CATALOG,))
    cfg = ReplicaConfig(model=cat.model("tiny"), gpu=cat.gpu("cpu-local"), max_num_seqs=4)
    perf = ReplicaPerf(cfg, prof)
    c1 = next(s for s in doc["steps"] if s["kind"] == "decode" and s["concurrency"] == 1)
    ratio = perf.decode_time_s(1, c1["context_tokens"]) / c1["measured_s"]
    assert 1 / 3 < ratio < 3, ratio

    r = run_gpuwise("perf", "tiny", "--gpu", "cpu-local", "--catalog", str(LOCAL_CATALOG),
                 "--profile", str(out), "--max-model-len", "512")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "(profile: e2e)" in r.stdout
