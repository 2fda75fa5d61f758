"""The command line as a user runs it: real processes, real exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwise", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_perf_llama_8b_on_h100() -> None:
    r = run("perf", "llama-3.1-8b", "--gpu", "h100-sxm")
    assert r.returncode == 0, r.stderr
    assert "16.06 GB total" in r.stdout
    assert "128.0 KiB" in r.stdout
    assert "decode batch 1: memory" in r.stdout and "prefill 2048 tokens: compute" in r.stdout


def test_perf_70b_does_not_fit_on_one_h100_but_at_tp2() -> None:
    r = run("perf", "llama-3.1-70b", "--gpu", "H100 SXM 80GB")
    assert "does not fit" in r.stdout and "fits at tp 2" in r.stdout
    r2 = run("perf", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "2", "--json")
    assert r2.returncode == 0
    doc = json.loads(r2.stdout)
    assert doc["fits"] is True and doc["tp"] == 2
    assert doc["kv_bytes_per_token"] == 80 * 8 * 128 * 2 * 2


def test_catalog_lists_with_json() -> None:
    for what in ("gpus", "models", "prices"):
        r = run("catalog", what, "--json")
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)) >= 10


def test_validate_example_prints_defaults() -> None:
    r = run("validate", "examples/three-models.yaml")
    assert r.returncode == 0, r.stderr
    assert "spec is valid" in r.stdout and "gpuwise default" not in r.stdout.split("code-8b")[0]
    doc = json.loads(run("validate", "examples/three-models.yaml", "--json").stdout)
    assert [d["name"] for d in doc["deployments"]] == ["assistant-70b", "code-8b", "summarizer-phi"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("perf", "llama-3.1-8b", "--gpu", "h10-sxm"), "did you mean 'h100-sxm'"),
        (("perf", "lama-3.1-8b", "--gpu", "h100-sxm"), "did you mean"),
        (("perf", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "3"), "--tp 3"),
        (("validate", "no/such/spec.yaml"), "no such spec file"),
        (("perf", "llama-3.1-8b", "--gpu", "h100-sxm", "--profile", "nope"), "built-in"),
    ],
)
def test_user_errors_exit_2_without_traceback(args: tuple[str, ...], needle: str) -> None:
    r = run(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_invalid_spec_names_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "deployments:\n  - name: chat\n    model: llama-3.1-8b\n    gpu: h100-sxm\n"
        "    traffic:\n      arrival: {kind: poisson, rate_rps: -3}\n"
        "      input_tokens: {kind: fixed, tokens: 10}\n"
        "      output_tokens: {kind: fixed, tokens: 10}\n"
    )
    r = run("validate", str(bad))
    assert r.returncode == 2
    assert "deployments[0].traffic.arrival.rate_rps" in r.stderr
    assert "Traceback" not in r.stderr
