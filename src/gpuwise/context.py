"""What the doctor and the cost report need to know beyond the signals: prices, SLOs, limits.

Signals say what happened; a diagnosis needs to know what *should* happen (the SLO), what the
engine is allowed to do (its batch limit) and what each replica costs. This record carries those
facts, built from a resolved spec or given by hand for a fleet gpuwise did not plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuwise.spec import Slo

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class DeploymentContext:
    name: str
    usd_per_gpu_hour: float = float("nan")
    gpus_per_replica: int = 1
    slo: Slo | None = None
    max_num_seqs: int | None = None
    model: str = ""
    gpu: str = ""
    time_to_ready_s: float | None = None  # measured or predicted cold start of one replica

    @property
    def usd_per_replica_hour(self) -> float:
        return self.usd_per_gpu_hour * self.gpus_per_replica


@dataclass(frozen=True)
class FleetContext:
    deployments: dict[str, DeploymentContext] = field(default_factory=dict)

    def get(self, name: str) -> DeploymentContext:
        return self.deployments.get(name) or DeploymentContext(name=name)


def context_from_resolved(
    resolved: object, time_to_ready_s: dict[str, float] | None = None
) -> FleetContext:
    """Build a context from a ``gpuwise.resolve.ResolvedSpec`` (typed loosely to keep imports
    flowing downward: doctor does not import the resolver)."""
    out = {}
    for d in resolved.deployments:  # type: ignore[attr-defined]
        dep = d.deployment
        ttr = (time_to_ready_s or {}).get(dep.name)
        if ttr is None:
            ttr = d.perf.cold_start_s("network")
        out[dep.name] = DeploymentContext(
            name=dep.name,
            usd_per_gpu_hour=d.usd_per_gpu_hour,
            gpus_per_replica=dep.tp,
            slo=d.slo,
            max_num_seqs=dep.limits.max_num_seqs,
            model=d.model.name,
            gpu=d.gpu.name,
            time_to_ready_s=ttr,
        )
    return FleetContext(out)
