"""The spec: the shipped examples validate; each kind of mistake names its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuwise.resolve import resolve_spec
from gpuwise.spec import SpecError, load_spec, parse_spec

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.yaml"))

MINIMAL = """
deployments:
  - name: chat
    model: llama-3.1-8b
    gpu: h100-sxm
    traffic:
      arrival: {kind: poisson, rate_rps: 5}
      input_tokens: {kind: fixed, tokens: 512}
      output_tokens: {kind: fixed, tokens: 128}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_resolve(path: Path) -> None:
    r = resolve_spec(path)
    assert r.deployments
    for d in r.deployments:
        assert d.perf.memory.fits
        assert d.usd_per_gpu_hour > 0


def test_defaults_after_validation(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))
    d = spec.deployments[0]
    assert d.engine == "vllm" and d.tp == 1 and d.weight_dtype == "bf16"
    assert d.limits.max_num_seqs == 256 and d.limits.block_size == 16
    assert d.replicas.start == 1 and d.pricing == "on-demand"
    assert d.kv_dtype_resolved == "bf16"


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (("rate_rps: 5", "rate_rps: -1"), "deployments[0].traffic.arrival.rate_rps"),
        (("rate_rps: 5", "rate: 5"), "deployments[0].traffic.arrival"),
        (("    gpu: h100-sxm\n", "    gpu: h100-sxm\n    tp: 3\n"), "power of two"),
        (
            ("    gpu: h100-sxm\n", "    gpu: h100-sxm\n    weight_dtype: fp7\n"),
            "deployments[0].weight_dtype",
        ),
        (("    gpu: h100-sxm\n", "    gpu: h100-sxm\n    colour: red\n"), "unknown field"),
        (("tokens: 128", "tokens: 0"), "output_tokens.tokens"),
        (("  - name: chat", "  - name: Chat_1"), "deployments[0].name"),
    ],
)
def test_invalid_specs_name_the_field(tmp_path: Path, mutation, expected: str) -> None:
    text = MINIMAL.replace(*mutation)
    assert text != MINIMAL
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, text))
    assert expected in str(e.value)
    assert str(tmp_path / "spec.yaml") in str(e.value)


def test_missing_rate_is_named(tmp_path: Path) -> None:
    text = MINIMAL.replace("{kind: poisson, rate_rps: 5}", "{kind: poisson}")
    with pytest.raises(SpecError, match=r"deployments\[0\]\.traffic\.arrival\.rate_rps: required"):
        load_spec(write(tmp_path, text))


def test_yaml_syntax_error_has_line_number(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="line 4"):
        load_spec(write(tmp_path, "deployments:\n  - name: a\n    model: x\n  gpu: [unclosed\n"))


def test_unknown_gpu_and_model_suggest(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"deployments\[0\]\.gpu: .*did you mean 'h100-sxm'"):
        resolve_spec(write(tmp_path, MINIMAL.replace("gpu: h100-sxm", "gpu: h100-sxn")))
    with pytest.raises(SpecError, match=r"deployments\[0\]\.model: .*llama-3.1-8b"):
        resolve_spec(write(tmp_path, MINIMAL.replace("model: llama-3.1-8b", "model: lama-3.1-8b")))


def test_model_that_does_not_fit_says_what_would(tmp_path: Path) -> None:
    text = MINIMAL.replace("model: llama-3.1-8b", "model: llama-3.1-70b")
    with pytest.raises(SpecError, match=r"deployments\[0\] \(chat\).*does not fit.*tp 2"):
        resolve_spec(write(tmp_path, text))


def test_lengths_required_without_trace() -> None:
    data = {
        "deployments": [
            {
                "name": "a",
                "model": "m",
                "gpu": "g",
                "traffic": {"arrival": {"kind": "poisson", "rate_rps": 1}},
            }
        ]
    }
    with pytest.raises(SpecError, match="input_tokens and output_tokens are required"):
        parse_spec(data)


def test_trace_paths_resolve_against_spec_folder(tmp_path: Path) -> None:
    text = MINIMAL.replace("{kind: poisson, rate_rps: 5}", "{kind: trace, path: traces/t.csv}")
    spec = load_spec(write(tmp_path, text))
    assert spec.deployments[0].traffic.arrival.path == str(tmp_path / "traces/t.csv")


def test_price_override_wins(tmp_path: Path) -> None:
    text = MINIMAL + "prices:\n  - {gpu: H100_SXM, pricing: on-demand, usd_per_gpu_hour: 1.5}\n"
    r = resolve_spec(write(tmp_path, text))
    assert r.deployments[0].usd_per_gpu_hour == 1.5
    assert r.deployments[0].price_source == "spec override"


def test_duplicate_deployment_names(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="used twice"):
        load_spec(write(tmp_path, "deployments:\n" + MINIMAL.split("deployments:\n")[1] * 2))
