"""Kubernetes manifests for a proven plan: vLLM Deployments, Services, PDBs, KEDA ScaledObjects.

``manifests(plan, resolved) -> list[dict]`` builds them as plain dicts (validated in the tests
against the official Kubernetes schemas with kubernetes-validate, and the ScaledObject against
KEDA's CRD types); ``write_manifests`` writes one YAML file per fleet group.
"""

from gpuwise.deploy.k8s import (
    VLLM_IMAGE,
    EngineArgs,
    engine_args,
    manifests,
    vllm_args,
    write_manifests,
)

__all__ = ["VLLM_IMAGE", "EngineArgs", "engine_args", "manifests", "vllm_args", "write_manifests"]
