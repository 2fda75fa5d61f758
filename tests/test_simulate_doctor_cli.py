"""simulate -> doctor -> cost through the CLI: the simulated fleet is diagnosed like a live one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples/chat-8b-h100.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwise", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def flash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("flash")
    r = run(
        "simulate",
        str(SPEC),
        "--duration",
        "600",
        "--scenario",
        "flash-crowd-5x",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "requests inside the SLO" in r.stdout
    return out


def test_simulate_writes_the_three_files(flash: Path) -> None:
    assert {p.name for p in flash.iterdir()} >= {"requests.csv", "signals.csv", "summary.json"}
    doc = json.loads((flash / "summary.json").read_text())
    assert doc["deployments"]["chat"]["requests"] > 0


def test_doctor_finds_the_flash_crowd_queue(flash: Path) -> None:
    r = run("doctor", "--signals", str(flash / "signals.csv"), "--spec", str(SPEC), "--json")
    assert r.returncode == 0, r.stderr
    rules = {f["rule"]: f for f in json.loads(r.stdout)["findings"]}
    assert rules["queueing-saturated"]["severity"] == "high"
    assert rules["latency-tail-ttft"]["evidence"]["share_over_with_queue"] > 0.5


def test_cost_of_simulated_run_matches_hand_computation(flash: Path) -> None:
    r = run("cost", "--signals", str(flash / "signals.csv"), "--spec", str(SPEC), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)["deployments"][0]
    gpu_s = out_tokens = 0.0
    with (flash / "signals.csv").open() as f:
        for row in csv.DictReader(f):
            gpu_s += float(row["gpus"]) * float(row["interval_s"])
            out_tokens += float(row["output_tokens_per_s"]) * float(row["interval_s"])
    price = 3.99  # the example's catalog default for h100-sxm, printed by 'gpuwise validate'
    assert d["usd_per_gpu_hour"] == pytest.approx(price)
    assert d["usd_total"] == pytest.approx(gpu_s / 3600 * price)
    assert d["output_tokens"] == pytest.approx(out_tokens)


def test_doctor_needs_exactly_one_source() -> None:
    r = run("doctor")
    assert r.returncode == 2 and "exactly one source" in r.stderr
    r = run("cost", "--signals", "nope.csv", "--usd-per-gpu-hour", "2")
    assert r.returncode == 2 and "no such signals file" in r.stderr


def test_unknown_scenario_suggests() -> None:
    r = run("simulate", str(SPEC), "--scenario", "flash-crowd")
    assert r.returncode == 2 and "did you mean 'flash-crowd-5x'" in r.stderr
