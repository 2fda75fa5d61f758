"""One Kubernetes Deployment per fleet group, running vLLM with the plan's engine arguments.

Why each piece is there:
- node selector and toleration: the plan priced a GPU type, so the pod must land on it (GPU
  feature discovery's ``nvidia.com/gpu.product`` label; AMD's node labeller's product name);
- readiness on ``/health``: no traffic before the weights are loaded; liveness on ``/health``
  with a long initial delay, since a 70B model takes minutes to load;
- preStop drain and a grace period longer than the longest request: a scale-down or rollout
  must let running generations finish (the hook waits until vLLM reports nothing running or
  waiting, so the endpoint is removed first and in-flight requests complete);
- PodDisruptionBudget: a node drain takes one replica at a time;
- Service per model (selecting every group that serves it, packed pods included) and a KEDA
  ScaledObject per group on the queue of waiting requests (``sum(...)``, since the Prometheus
  scaler needs one series), with a threshold sized from the planned capacity.

A packed GPU is one pod with one container that starts one vLLM server per model on its own
port: Kubernetes hands a GPU to one container, so engines sharing it must share the container.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpuwise.errors import UserError
from gpuwise.plan.api import Plan
from gpuwise.plan.candidates import EngineConfig
from gpuwise.plan.fleet import FleetGroup
from gpuwise.resolve import ResolvedSpec

VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"
ROCM_VLLM_IMAGE = "rocm/vllm:latest"
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
FIRST_PORT = 8000
SERVICE_PORT = 8000
PRESTOP_POLL_S = 2

# GPU feature discovery's nvidia.com/gpu.product values (NVIDIA GPU operator / GFD), and the AMD
# node labeller's amd.com/gpu.product-name, per catalog GPU.
GPU_PRODUCT_LABEL: dict[str, tuple[str, str]] = {
    "h100-sxm": ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
    "h100-pcie": ("nvidia.com/gpu.product", "NVIDIA-H100-PCIe"),
    "h200": ("nvidia.com/gpu.product", "NVIDIA-H200"),
    "b200": ("nvidia.com/gpu.product", "NVIDIA-B200"),
    "a100-80gb": ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"),
    "a100-40gb": ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB"),
    "l40s": ("nvidia.com/gpu.product", "NVIDIA-L40S"),
    "l4": ("nvidia.com/gpu.product", "NVIDIA-L4"),
    "a10g": ("nvidia.com/gpu.product", "NVIDIA-A10G"),
    "t4": ("nvidia.com/gpu.product", "Tesla-T4"),
    "mi300x": ("amd.com/gpu.product-name", "AMD_Instinct_MI300X"),
}

# Public AWQ int4 checkpoints for catalog models (int4 weights need a pre-quantized checkpoint).
INT4_CHECKPOINTS: dict[str, str] = {
    "llama-3.1-8b": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
    "llama-3.1-70b": "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
    "llama-3.1-405b": "hugging-quants/Meta-Llama-3.1-405B-Instruct-AWQ-INT4",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct-AWQ",
    "qwen2.5-72b": "Qwen/Qwen2.5-72B-Instruct-AWQ",
}


@dataclass(frozen=True)
class EngineArgs:
    """One vLLM server of a pod: its deployment, port and command-line arguments."""

    deployment: str
    served_name: str
    port: int
    args: tuple[str, ...]
    notes: tuple[str, ...]


def _dns(name: str, limit: int = 63) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if len(s) > limit:
        h = hashlib.sha1(s.encode()).hexdigest()[:6]
        s = s[: limit - 7].rstrip("-") + "-" + h
    return s


def port_name(deployment: str) -> str:
    """A container port name (<= 15 chars) that is the same for every pod serving a model."""
    return "v" + hashlib.sha1(deployment.encode()).hexdigest()[:10]


def vllm_args(
    hf_id: str, model_key: str, e: EngineConfig, served: list[str], port: int
) -> tuple[list[str], list[str]]:
    """vLLM's server arguments for one engine, and notes a human must read."""
    notes: list[str] = []
    model = hf_id
    quant: list[str] = []
    if e.weight_dtype == "fp8":
        quant = ["--quantization", "fp8"]  # online per-tensor fp8 from the 16-bit checkpoint
    elif e.weight_dtype == "int4":
        model = INT4_CHECKPOINTS.get(model_key, hf_id)
        quant = ["--quantization", "awq_marlin"]
        notes.append(
            f"int4 weights need an AWQ checkpoint of {hf_id}"
            + (f"; using {model}" if model != hf_id else "; replace --model with one")
        )
    elif e.weight_dtype == "int8":
        quant = ["--quantization", "int8_per_channel_weight_only"]
    dtype = "float16" if e.weight_dtype == "fp16" else "bfloat16"
    args = [
        "--model",
        model,
        "--served-model-name",
        *served,
        "--port",
        str(port),
        "--tensor-parallel-size",
        str(e.tp),
        "--dtype",
        dtype,
        *quant,
        "--kv-cache-dtype",
        "fp8" if e.kv_dtype == "fp8" else "auto",
        "--max-num-seqs",
        str(e.max_num_seqs),
        "--max-num-batched-tokens",
        str(max(e.max_num_batched_tokens, e.max_num_seqs)),
        "--gpu-memory-utilization",
        f"{e.gpu_memory_utilization:.2f}",
        "--max-model-len",
        str(e.max_model_len),
    ]
    return args, notes


def _group_name(plan: Plan, gi: int, g: FleetGroup) -> str:
    c = g.candidate
    who = "pack" if c.packed else c.members[0].deployment
    return _dns(f"{who}-{c.gpu}-{c.pricing}-g{gi}", 50)


def engine_args(plan: Plan, resolved: ResolvedSpec) -> dict[str, list[EngineArgs]]:
    """Per group name, the vLLM servers its pods run."""
    out: dict[str, list[EngineArgs]] = {}
    for gi, g in enumerate(plan.fleet.groups):
        name = _group_name(plan, gi, g)
        servers = []
        for k, m in enumerate(g.candidate.members):
            rd = resolved.deployment(m.deployment)
            served = [_dns(f"{m.deployment}-g{gi}"), m.deployment]
            args, notes = vllm_args(rd.model.hf_id, rd.model.name, m.engine, served, FIRST_PORT + k)
            servers.append(
                EngineArgs(m.deployment, served[0], FIRST_PORT + k, tuple(args), tuple(notes))
            )
        out[name] = servers
    return out


def _longest_request_s(plan: Plan, resolved: ResolvedSpec, deployment: str) -> float:
    """A bound on one request's duration: the slowest prompt plus its longest output."""
    check = plan.verification.check(deployment)
    slo = resolved.deployment(deployment).slo
    tpot = max(check.tpot_p95_s if check else 0.0, (slo.tpot_s if slo and slo.tpot_s else 0.0))
    ttft = max(check.ttft_p95_s if check else 0.0, (slo.ttft_s if slo and slo.ttft_s else 0.0))
    e2e = max(check.e2e_p95_s if check else 0.0, (slo.e2e_s if slo and slo.e2e_s else 0.0))
    mm = resolved.deployment(deployment).perf.memory.max_model_len
    return max(e2e * 2.0, ttft + tpot * mm * 0.5, 30.0)


_PROBE = (
    "import sys, urllib.request\n"
    "for p in sys.argv[1:]:\n"
    "    urllib.request.urlopen(f'http://127.0.0.1:{p}/health', timeout=5)\n"
)
_DRAIN = (
    "import re, sys, time, urllib.request\n"
    "deadline = time.time() + float(sys.argv[1])\n"
    "while time.time() < deadline:\n"
    "    busy = 0.0\n"
    "    for p in sys.argv[2:]:\n"
    "        try:\n"
    "            text = urllib.request.urlopen(f'http://127.0.0.1:{p}/metrics', timeout=5).read()\n"
    "        except OSError:\n"
    "            continue\n"
    "        for line in text.decode().splitlines():\n"
    "            if re.match(r'vllm:num_requests_(running|waiting)\\{', line):\n"
    "                busy += float(line.rsplit(' ', 1)[1])\n"
    "    if busy == 0:\n"
    "        break\n"
    f"    time.sleep({PRESTOP_POLL_S})\n"
)


def _container(
    group: str, servers: list[EngineArgs], gpu_vendor: str, gpus: int, grace_s: int
) -> dict[str, Any]:
    ports = [s.port for s in servers]
    image = VLLM_IMAGE if gpu_vendor == "nvidia" else ROCM_VLLM_IMAGE
    resource = "nvidia.com/gpu" if gpu_vendor == "nvidia" else "amd.com/gpu"
    if len(servers) == 1:
        command = ["python3", "-m", "vllm.entrypoints.openai.api_server"]
        args = list(servers[0].args)
        probe: dict[str, Any] = {
            "httpGet": {"path": "/health", "port": port_name(servers[0].deployment)}
        }
    else:
        # one server per model, in the background; the container ends when any of them does
        lines = ["set -e"]
        for s in servers:
            quoted = " ".join(_sh(a) for a in s.args)
            lines.append(f"python3 -m vllm.entrypoints.openai.api_server {quoted} &")
        lines.append("wait -n")
        lines.append("exit 1")
        command = ["/bin/bash", "-c"]
        args = ["\n".join(lines)]
        probe = {"exec": {"command": ["python3", "-c", _PROBE, *map(str, ports)]}}
    return {
        "name": "vllm",
        "image": image,
        "command": command,
        "args": args,
        "ports": [
            {"name": port_name(s.deployment), "containerPort": s.port, "protocol": "TCP"}
            for s in servers
        ],
        "resources": {
            "limits": {resource: gpus},
            "requests": {resource: gpus},
        },
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {
            **probe,
            "initialDelaySeconds": 600,
            "periodSeconds": 15,
            "failureThreshold": 4,
            "timeoutSeconds": 10,
        },
        "startupProbe": {**probe, "periodSeconds": 10, "failureThreshold": 180},
        "lifecycle": {
            "preStop": {
                "exec": {
                    "command": [
                        "python3",
                        "-c",
                        _DRAIN,
                        str(max(grace_s - 10, 5)),
                        *map(str, ports),
                    ]
                }
            }
        },
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
        "env": [
            {
                "name": "HF_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": "hf-token", "key": "token", "optional": True}
                },
            }
        ],
    }


def _sh(a: str) -> str:
    return a if re.fullmatch(r"[A-Za-z0-9._/:=-]+", a) else "'" + a.replace("'", "'\\''") + "'"


def manifests(
    plan: Plan, resolved: ResolvedSpec, namespace: str = "default"
) -> dict[str, list[dict[str, Any]]]:
    """Manifests per file name: one file per group, plus one Service per model."""
    servers_by_group = engine_args(plan, resolved)
    files: dict[str, list[dict[str, Any]]] = {}
    for gi, g in enumerate(plan.fleet.groups):
        name = _group_name(plan, gi, g)
        servers = servers_by_group[name]
        c = g.candidate
        gpu = resolved.catalog.gpu(c.gpu)
        label_key, label_value = GPU_PRODUCT_LABEL.get(
            c.gpu, ("nvidia.com/gpu.product", gpu.display_name.replace(" ", "-"))
        )
        grace = int(
            math.ceil(max(_longest_request_s(plan, resolved, m.deployment) for m in c.members) + 15)
        )
        labels = {
            "app.kubernetes.io/name": "vllm",
            "app.kubernetes.io/managed-by": "gpuwise",
            "gpuwise.dev/group": name,
        }
        pod_labels = {**labels, **{f"gpuwise.dev/serves-{s.deployment}": "true" for s in servers}}
        node_selector = {label_key: label_value}
        if c.pricing == "spot":
            node_selector["karpenter.sh/capacity-type"] = "spot"
        taint = "nvidia.com/gpu" if gpu.vendor == "nvidia" else "amd.com/gpu"
        notes = [n for s in servers for n in s.notes]
        annotations = {
            "gpuwise.dev/plan": f"{plan.spec_name}: {g.replicas} replica(s) of {c.key}",
            "gpuwise.dev/usd-per-hour": f"{g.usd_per_hour:.4f}",
        }
        if notes:
            annotations["gpuwise.dev/notes"] = "; ".join(notes)
        if c.packed:
            annotations["gpuwise.dev/packed"] = ", ".join(
                f"{m.deployment}: {m.engine.gpu_memory_utilization:.2f} of memory, "
                f"{m.compute_share:.0%} of compute (time-shared)"
                for m in c.members
            )
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {
                "replicas": g.replicas,
                "selector": {"matchLabels": {"gpuwise.dev/group": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "terminationGracePeriodSeconds": grace,
                        "nodeSelector": node_selector,
                        "tolerations": [
                            {"key": taint, "operator": "Exists", "effect": "NoSchedule"}
                        ],
                        "containers": [_container(name, servers, gpu.vendor, c.gpus, grace)],
                        "volumes": [
                            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}
                        ],
                    },
                },
            },
        }
        pdb = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            # maxUnavailable 1, not minAvailable: with one replica a minAvailable of 1 would block
            # every node drain forever
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"gpuwise.dev/group": name}}},
        }
        files[f"{name}.yaml"] = [
            deployment,
            pdb,
            _scaled_object(plan, resolved, g, name, servers, namespace),
        ]
    for d in plan.demands:
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": _dns(d.deployment),
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/name": "vllm",
                    "app.kubernetes.io/managed-by": "gpuwise",
                },
            },
            "spec": {
                "type": "ClusterIP",
                "selector": {f"gpuwise.dev/serves-{d.deployment}": "true"},
                "ports": [
                    {
                        "name": "http",
                        "port": SERVICE_PORT,
                        "targetPort": port_name(d.deployment),
                        "protocol": "TCP",
                    }
                ],
            },
        }
        files[f"service-{_dns(d.deployment)}.yaml"] = [svc]
    return files


def _scaled_object(
    plan: Plan,
    resolved: ResolvedSpec,
    g: FleetGroup,
    name: str,
    servers: list[EngineArgs],
    namespace: str,
) -> dict[str, Any]:
    """KEDA scaling on the waiting queue, one trigger per model in the pod (KEDA takes the max).

    Threshold: the waiting requests one replica can have while its TTFT still fits, i.e. its
    planned rate at capacity times half the TTFT target (at least 1). KEDA's default metric type
    AverageValue then asks for ceil(total waiting / threshold) replicas.
    """
    triggers = []
    for s in servers:
        m = g.candidate.member(s.deployment)
        assert m is not None
        rd = resolved.deployment(s.deployment)
        ttft = rd.slo.ttft_s if rd.slo and rd.slo.ttft_s else 2.0
        load = g.load_of(s.deployment)
        cap = (load.rate_rps / load.load) if load and load.load > 0 else max(m.capacity_rps)
        threshold = max(1, int(cap * ttft * 0.5))
        triggers.append(
            {
                "type": "prometheus",
                "name": _dns(f"waiting-{s.deployment}", 50),
                "metadata": {
                    "serverAddress": PROMETHEUS_URL,
                    "query": f'sum(vllm:num_requests_waiting{{model_name="{s.served_name}"}})',
                    "threshold": str(threshold),
                    "ignoreNullValues": "true",
                },
            }
        )
    trough = 1.0
    for s in servers:
        t = resolved.deployment(s.deployment).deployment.traffic
        if t is not None and t.arrival.kind == "diurnal" and t.arrival.peak_rps > 0:
            trough = min(trough, t.arrival.trough_rps / t.arrival.peak_rps)
    min_rep = max(1, math.ceil(g.replicas * trough))
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "minReplicaCount": min_rep,
            "maxReplicaCount": max(g.replicas * 2, g.replicas + 2),
            "triggers": triggers,
        },
    }


def write_manifests(
    plan: Plan, resolved: ResolvedSpec, out_dir: str | Path, namespace: str = "default"
) -> list[Path]:
    """Write one multi-document YAML file per group and per Service; returns the paths."""
    if not plan.verification.ok:  # plan() never returns one; a guard for hand-built plans
        raise UserError("refusing to write manifests for a plan that failed its simulation")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, docs in manifests(plan, resolved, namespace).items():
        p = out / fname
        header = f"# generated by gpuwise plan ({plan.spec_name}); verified in simulation\n"
        p.write_text(header + yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
        written.append(p)
    return sorted(written)
