"""Discrete-event fleet simulation: continuous-batching engines, routers, signals, costs.

``simulate(resolved, duration_s=..., seed=...)`` runs every deployment of a resolved spec and
returns a :class:`SimResult` (per-request records, summaries with the SLO attainment and the
cost per million tokens served inside the SLO, and the canonical signals at a fixed interval).
"""

from gpuwise.sim.fleet import SimError, simulate, simulate_deployment
from gpuwise.sim.results import (
    DeploymentRequests,
    DeploymentSummary,
    EngineStats,
    SimResult,
    write_requests_csv,
)
from gpuwise.sim.router import ROUTERS

__all__ = [
    "ROUTERS",
    "DeploymentRequests",
    "DeploymentSummary",
    "EngineStats",
    "SimError",
    "SimResult",
    "simulate",
    "simulate_deployment",
    "write_requests_csv",
]
