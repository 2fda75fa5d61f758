"""``gpuwise bench`` against the real local vLLM replica (see conftest.py); bounded to seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpuwise.live.local_engine import Replica, pid_alive
from gpuwise.spec import load_spec
from gpuwise.workload import generate

pytestmark = [pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
SPEC = """
name: bench-e2e
deployments:
  - name: tiny
    model: llama-3.1-8b   # only the traffic matters to bench
    gpu: h100-sxm
    traffic:
      arrival: {kind: poisson, rate_rps: 8}
      input_tokens: {kind: fixed, tokens: 48}
      output_tokens: {kind: fixed, tokens: 24}
"""


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwise", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _live(replica: Replica) -> None:
    if not pid_alive(replica.pid):
        pytest.fail(f"the shared replica (pid {replica.pid}) was stopped before this test")


def test_closed_loop_table_and_every_request_succeeds(replica: Replica) -> None:
    _live(replica)
    r = _bench(
        replica.base_url, "--concurrency", "4", "--input-tokens", "32", "--output-tokens", "32",
        "--max-requests", "16", "--max-duration-s", "30",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    assert "ok 16" in r.stdout and "(model tiny)" in r.stdout
    for needle in ("TTFT", "TPOT", "ITL", "e2e", "p50", "p90", "p95", "p99", "output tok/s"):
        assert needle in r.stdout, needle
    # The prompt is built to the token: the server counted 32 (31 words and its BOS).
    assert "prompt 32.0 (server count), output 32.0" in r.stdout


def test_open_loop_replays_the_spec_schedule(replica: Replica, tmp_path: Path) -> None:
    _live(replica)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    r = _bench(
        replica.base_url, "--spec", str(spec), "--duration", "3", "--seed", "5",
        "--max-duration-s", "3", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    expected = generate(load_spec(spec).deployments[0].traffic, 3.0, 5)
    reqs = doc["requests"]
    assert [q["scheduled_s"] for q in reqs] == [round(t, 6) for t in expected.arrival_s.tolist()]
    assert doc["summary"]["outcomes"] == {"ok": len(expected)}
    assert all(q["prompt_tokens"] == 48 and q["completion_tokens"] == 24 for q in reqs)
    assert all(len(q["itl_s"]) == 23 for q in reqs)
    s = doc["summary"]
    assert 0 < s["ttft_s"]["p50"] < 5 and 0 < s["tpot_s"]["p50"] < 1
    lag = s["send_lag_s"]
    print(f"send lag p50 {lag['p50'] * 1e3:.2f} ms, p99 {lag['p99'] * 1e3:.2f} ms")
