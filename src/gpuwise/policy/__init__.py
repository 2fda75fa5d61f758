"""Autoscaling and warm-pool policies: pure decision objects, the same in simulation and live.

``decide(now_s, signals_history, fleet_state) -> Decision(desired_replicas, warm_pool, reason)``;
see :mod:`gpuwise.policy.base`. The anchors' policies are reimplemented with their published
defaults (``reference/autoscaling.md`` (b)): Kubernetes HPA v2, Knative KPA, KEDA feeding an
HPA, AIBrix APA, Ray Serve; plus a fixed fleet, a perfect-foresight oracle, and gpuwise's own
SLO- and cold-start-aware policy (:class:`SloAwarePolicy`).
"""

from gpuwise.policy.apa import ApaPolicy
from gpuwise.policy.base import Decision, FleetState, Policy
from gpuwise.policy.capacity import ReplicaCapacity, TokenMix, steady_state
from gpuwise.policy.fixed import FixedPolicy, OraclePolicy
from gpuwise.policy.hpa import HpaBehavior, HpaCore, HpaPolicy, ScalingPolicy
from gpuwise.policy.keda import KedaPolicy
from gpuwise.policy.kpa import KpaPolicy
from gpuwise.policy.ray import RayServePolicy
from gpuwise.policy.slo import Seasonality, SloAwarePolicy

__all__ = [
    "ApaPolicy",
    "Decision",
    "FixedPolicy",
    "FleetState",
    "HpaBehavior",
    "HpaCore",
    "HpaPolicy",
    "KedaPolicy",
    "KpaPolicy",
    "OraclePolicy",
    "Policy",
    "RayServePolicy",
    "ReplicaCapacity",
    "ScalingPolicy",
    "Seasonality",
    "SloAwarePolicy",
    "TokenMix",
    "steady_state",
]
