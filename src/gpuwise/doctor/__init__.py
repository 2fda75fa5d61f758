"""Findings from signals: the rule, the evidence, what it means, the action, the dollars.

``diagnose`` runs every rule over each deployment's signal rows. It reads only the canonical
``Signals`` record, so a live fleet (through ``gpuwise.observe``) and a simulated one (through
``gpuwise.sim``) are diagnosed by the same code.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from gpuwise.context import FleetContext
from gpuwise.doctor.rules import RULES, SEVERITY_ORDER, Finding
from gpuwise.signals import Signals

__all__ = ["DoctorReport", "Finding", "diagnose"]


@dataclass(frozen=True)
class DoctorReport:
    findings: list[Finding]
    deployments: list[str]
    window_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> str:
        return self.findings[0].severity if self.findings else "none"

    def by_severity(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    def to_json(self) -> str:
        def clean(v: object) -> object:
            if isinstance(v, float) and math.isnan(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return json.dumps(clean(asdict(self)), indent=2)

    def to_markdown(self) -> str:
        lines = [f"# gpuwise doctor: {len(self.findings)} finding(s)", ""]
        if not self.findings:
            lines.append("No findings: the fleet looks healthy over this window.")
        for f in self.findings:
            money = (
                f" — ${f.usd_per_month_at_stake:,.0f}/month at stake"
                if f.usd_per_month_at_stake
                else ""
            )
            lines += [
                f"## [{f.severity}] {f.deployment}: {f.title}{money}",
                "",
                f"- rule: `{f.rule}`; window: {f.window}",
                "- evidence: " + ", ".join(f"{k}={v}" for k, v in f.evidence.items()),
                f"- what it means: {f.meaning}",
                f"- action: {f.action}",
                "",
            ]
        for n in self.notes:
            lines.append(f"> {n}")
        return "\n".join(lines) + "\n"


def diagnose(
    signals: Sequence[Signals], context: FleetContext | None = None, notes: Sequence[str] = ()
) -> DoctorReport:
    """Run every rule on each deployment's rows; findings sorted by severity, then dollars."""
    context = context or FleetContext()
    per: dict[str, list[Signals]] = defaultdict(list)
    for s in sorted(signals, key=lambda s: (s.deployment, s.t_s)):
        per[s.deployment].append(s)
    findings: list[Finding] = []
    window = 0.0
    for name, rows in per.items():
        window = max(window, rows[-1].t_s - rows[0].t_s + rows[0].interval_s)
        ctx = context.get(name)
        for rule in RULES:
            findings.extend(rule(rows, ctx))
    findings.sort(
        key=lambda f: (SEVERITY_ORDER[f.severity], -f.usd_per_month_at_stake, f.deployment, f.rule)
    )
    return DoctorReport(findings, sorted(per), window, list(notes))
