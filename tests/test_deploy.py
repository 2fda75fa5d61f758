"""Kubernetes manifests of a proven plan, checked against the official schemas and vLLM's CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gpuwise.deploy import engine_args, manifests, write_manifests
from gpuwise.plan import plan
from gpuwise.resolve import resolve_spec

ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.30.0"  # the oldest Kubernetes still in upstream support when written
ENGINE_PY = ROOT / ".venv-engine" / "bin" / "python"

# KEDA's ScaledObject (keda.sh/v1alpha1) is a CRD, not in the Kubernetes schemas. No package on
# PyPI or npm ships its CRD schema in a form we can load without side effects (the one Python
# package with KEDA models registers a pytest plugin that breaks pytest), so this is the
# documented field set (keda.sh/docs/2.x/reference/scaledobject-spec and the Prometheus scaler
# page), closed with additionalProperties: false so a misspelt field fails.
KEDA_SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {"type": "object"},
                "advanced": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "authenticationRef": {"type": "object"},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "required": ["serverAddress", "query", "threshold"],
                                "propertyNames": {
                                    "enum": [
                                        "serverAddress",
                                        "query",
                                        "threshold",
                                        "activationThreshold",
                                        "namespace",
                                        "customHeaders",
                                        "ignoreNullValues",
                                        "queryParameters",
                                        "unsafeSsl",
                                    ]
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module", params=["thirty-k-fleet", "three-models"])
def planned(request):
    r = resolve_spec(ROOT / "examples" / f"{request.param}.yaml")
    p = plan(r)
    return r, p, manifests(p, r)


def _docs(files: dict) -> list[dict]:
    return [d for docs in files.values() for d in docs]


def test_kubernetes_objects_validate_against_official_schemas(planned) -> None:
    _, _, files = planned
    kinds = set()
    for doc in _docs(files):
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        kinds.add(doc["kind"])
    assert kinds == {"Deployment", "PodDisruptionBudget", "Service"}


def test_scaled_objects_have_keda_fields_and_sum_queries(planned) -> None:
    _, p, files = planned
    scaled = [d for d in _docs(files) if d["kind"] == "ScaledObject"]
    assert len(scaled) == len(p.fleet.groups)
    for so in scaled:
        jsonschema.validate(so, KEDA_SCALED_OBJECT)
        spec = so["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        for t in spec["triggers"]:
            q = t["metadata"]["query"]
            assert re.fullmatch(r'sum\(vllm:num_requests_waiting\{model_name="[a-z0-9-]+"\}\)', q)
            assert int(t["metadata"]["threshold"]) >= 1


def test_deployments_carry_what_a_gpu_pod_needs(planned) -> None:
    r, p, files = planned
    deps = [d for d in _docs(files) if d["kind"] == "Deployment"]
    assert len(deps) == len(p.fleet.groups)
    for d, g in zip(deps, p.fleet.groups, strict=True):
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        res = c["resources"]["limits"]
        assert res.get("nvidia.com/gpu", res.get("amd.com/gpu")) == g.candidate.gpus
        assert pod["nodeSelector"] and pod["tolerations"]
        for probe in ("readinessProbe", "livenessProbe"):
            text = str(c[probe])
            assert "/health" in text
        assert "preStop" in c["lifecycle"]
        longest = max(
            (ch.e2e_p95_s for ch in p.verification.checks if g.load_of(ch.deployment)),
            default=0,
        )
        assert pod["terminationGracePeriodSeconds"] > longest
        assert d["spec"]["replicas"] == g.replicas
    services = [d for d in _docs(files) if d["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} == {x.deployment for x in p.demands}


def test_emit_writes_yaml_files(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gpuwise", "plan", str(ROOT / "examples" / "thirty-k-fleet.yaml"),
         "--emit", "k8s", str(tmp_path / "k8s")],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "k8s").glob("*.yaml"))
    assert files and "wrote" in r.stdout
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if doc["kind"] != "ScaledObject":
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_write_refuses_an_unverified_plan(planned, tmp_path: Path) -> None:
    from dataclasses import replace

    from gpuwise.errors import UserError

    r, p, _ = planned
    bad = replace(p.verification.checks[0], ok=False)
    unverified = replace(p, verification=replace(p.verification, checks=(bad,)))
    with pytest.raises(UserError):
        write_manifests(unverified, r, tmp_path)


def _vllm_help() -> str:
    if not ENGINE_PY.exists():
        pytest.skip("the local engine venv (.venv-engine, scripts/engine.sh install) is absent")
    out = subprocess.run(
        [str(ENGINE_PY), "-m", "vllm.entrypoints.openai.api_server", "--help"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.skip(f"vLLM --help failed: {out.stderr[-300:]}")
    return out.stdout


@pytest.mark.engine
def test_vllm_accepts_every_emitted_argument(planned) -> None:
    r, p, _ = planned
    text = _vllm_help()
    flags = set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", text))
    choices = {
        m.group(1): set(m.group(2).split(","))
        for m in re.finditer(r"\[(--[a-z0-9-]+) \{([^}]+)\}\]", text)
    }
    quant = subprocess.run(
        [str(ENGINE_PY), "-c",
         "from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS as Q;"
         "print(' '.join(Q))"],
        capture_output=True, text=True, timeout=300,
    ).stdout.split()  # fmt: skip
    for servers in engine_args(p, r).values():
        for s in servers:
            args = list(s.args)
            for i, a in enumerate(args):
                if not a.startswith("--"):
                    continue
                assert a in flags, f"vLLM has no {a}"
                if a in choices:
                    assert args[i + 1] in choices[a], (a, args[i + 1])
                if a == "--quantization" and quant:
                    assert args[i + 1] in quant, args[i + 1]
