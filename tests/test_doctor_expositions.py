"""Recorded real expositions of several engines and versions: each parses into signals (or is
reported as unreadable) and the doctor gives the finding a person would expect from it.
Sources of every file: tests/data/expositions/SOURCES.md and README.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuwise.context import DeploymentContext, FleetContext
from gpuwise.doctor import diagnose
from gpuwise.observe import signals_from_files

DATA = Path(__file__).parent / "data/expositions"

# file -> (findings that must appear, findings that must not), for one snapshot of the engine
EXPECTED = {
    # vLLM 0.32.0 on the local CPU engine, 4 running and 8 waiting at max-num-seqs 4
    "vllm-0.32.0-cpu-tiny-load.txt": ({"queueing-saturated"}, set()),
    "vllm-0.32.0-cpu-tiny-idle.txt": ({"unmeasurable"}, {"queueing-saturated", "kv-pressure"}),
    "vllm-0.32.0-cpu-tiny-fresh.txt": ({"unmeasurable"}, {"queueing-saturated"}),
    # SGLang docs sample: 2,826 queued behind 162 running
    "sglang-docs-00b08c4-llama31-8b.txt": ({"queueing-saturated"}, set()),
    "sglang-0.5.10.post1-datadog-opt125m.txt": ({"unmeasurable"}, {"queueing-saturated"}),
    # old vLLM names (V0, 2024) read like new ones
    "vllm-v0-2024-datadog.txt": ({"unmeasurable"}, {"queueing-saturated"}),
    # TGI has no KV gauge and no TTFT: the doctor says so instead of guessing
    "tgi-datadog-payload-excerpt.txt": ({"unmeasurable"}, {"kv-pressure"}),
    "llamacpp-ik-2025-08-pr695.txt": ({"unmeasurable"}, {"queueing-saturated"}),
    # one request waiting while nothing runs is a stall, not a saturated engine
    "triton-trtllm-docs-assembled.txt": ({"unmeasurable"}, {"queueing-saturated"}),
    "triton-datadog-densenet-excerpt.txt": ({"unmeasurable"}, {"queueing-saturated"}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exposition_gives_the_expected_finding(name: str) -> None:
    obs = signals_from_files(None, [DATA / name], deployment="d", t_s=0.0)
    assert obs.signals, obs.unreadable
    names = {s.deployment for s in obs.signals}
    ctx = FleetContext({n: DeploymentContext(name=n, usd_per_gpu_hour=2.0) for n in names})
    if name.startswith("vllm-0.32.0"):
        ctx = FleetContext(
            {n: DeploymentContext(name=n, usd_per_gpu_hour=2.0, max_num_seqs=4) for n in names}
        )
    rules = {f.rule for f in diagnose(obs.signals, ctx).findings}
    must, must_not = EXPECTED[name]
    assert must <= rules, rules
    assert not (must_not & rules), rules


@pytest.mark.parametrize("name", ["dcgm-driver580-l4-idle.txt", "dcgm-driver590-t4-busy.txt"])
def test_gpu_metrics_alone_are_reported_unreadable_not_a_crash(name: str) -> None:
    obs = signals_from_files(None, [DATA / name], deployment="d", t_s=0.0)
    assert not obs.signals
    assert obs.unreadable


def test_every_recorded_file_is_covered() -> None:
    files = {p.name for p in DATA.glob("*.txt")}
    covered = set(EXPECTED) | {
        "dcgm-driver580-l4-idle.txt",
        "dcgm-driver590-t4-busy.txt",
        "dcgm-datadog-t4-pod-labels.txt",
        "vllm-triton-backend-readme-elided.txt",
    }
    assert files <= covered, files - covered
