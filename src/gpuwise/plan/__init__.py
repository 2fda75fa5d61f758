"""The cheapest fleet that meets the SLOs, proven in simulation.

``plan(resolved) -> Plan``: candidates (candidates.py) with analytic capacities per request-size
bucket (buckets.py, capacity.py), a mixed-integer program over them (milp.py), simulation and
tightening until proven (planner.py, verify.py), the baselines it is compared with
(baselines.py) and the ladder of recommendations tied to the bill (recommend.py).
"""

from gpuwise.plan.api import DemandSummary, Plan, fleet_dict, plan
from gpuwise.plan.candidates import PlanError, PlanOptions
from gpuwise.plan.fleet import HOURS_PER_MONTH, Fleet, FleetGroup

__all__ = [
    "HOURS_PER_MONTH",
    "DemandSummary",
    "Fleet",
    "FleetGroup",
    "Plan",
    "PlanError",
    "PlanOptions",
    "fleet_dict",
    "plan",
]
