"""The plan as terminal tables (rich renderables); the CLI prints them, nothing here prints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.table import Table
from rich.text import Text

from gpuwise.plan.api import Plan
from gpuwise.plan.fleet import HOURS_PER_MONTH, Fleet
from gpuwise.plan.verify import Verification


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _s(x: float) -> str:
    if x != x or x == float("inf"):
        return "-"
    return f"{x * 1e3:,.0f} ms" if x < 1 else f"{x:,.2f} s"


def _busy(fleet: Fleet, ver: Verification) -> float:
    tot = w = 0.0
    for c in ver.checks:
        n = sum(g.replicas for g in fleet.groups_of(c.deployment))
        tot += c.gpu_busy * n
        w += n
    return tot / w if w else 0.0


def fleet_table(title: str, fleet: Fleet, ver: Verification) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("replicas", "engine(s)", "pricing", "$/month", "load/capacity"):
        t.add_column(
            col, justify="right" if col in ("replicas", "$/month", "load/capacity") else "left"
        )
    for g in fleet.groups:
        engines = []
        for m in g.candidate.members:
            ld = g.load_of(m.deployment)
            share = f", {m.compute_share:.0%} of the GPU" if g.candidate.packed else ""
            rate = f" {ld.rate_rps:.3g} req/s" if ld else ""
            engines.append(f"{m.deployment}:{rate} on {m.engine.describe()}{share}")
        t.add_row(
            str(g.replicas),
            "\n".join(engines),
            g.candidate.pricing,
            _usd(g.usd_per_hour * HOURS_PER_MONTH),
            _pct(g.utilization),
        )
    return t


def check_table(title: str, ver: Verification) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("deployment", "scenario", "requests", "in SLO", "p95 TTFT", "p95 TPOT", "p95 e2e",
                "GPU busy", "verdict"):  # fmt: skip
        t.add_column(
            col, justify="left" if col in ("deployment", "scenario", "verdict") else "right"
        )
    for c in ver.checks:
        verdict = "meets SLO" if c.ok else f"misses {', '.join(c.failed_targets)}"
        t.add_row(
            c.deployment,
            c.scenario,
            f"{c.requests:,}",
            f"{c.attainment:.1%}",
            _s(c.ttft_p95_s),
            _s(c.tpot_p95_s),
            _s(c.e2e_p95_s),
            _pct(c.gpu_busy),
            verdict,
        )
    return t


def render(plan: Plan) -> Iterator[Any]:
    """Everything ``gpuwise plan`` prints, in order."""
    cur, p = plan.current, plan
    yield Text(f"Plan for {plan.spec_name}", style="bold")
    for d in plan.demands:
        yield Text(
            f"  {d.deployment}: {d.model}, sized for {d.rate_note}; mean "
            f"{d.mean_input_tokens:,.0f} in / {d.mean_output_tokens:,.0f} out tokens in "
            f"{d.buckets} size buckets; SLO {d.slo}"
        )
    yield Text("")
    saved = cur.fleet.usd_per_month - p.fleet.usd_per_month
    ok = "meets" if cur.verification.ok else "MISSES"
    yield Text(
        f"Current bill: {_usd(cur.fleet.usd_per_month)}/month on {cur.fleet.gpus} GPUs "
        f"({ok} its SLO in simulation; GPU busy {_pct(_busy(cur.fleet, cur.verification))}, "
        f"load/capacity {_pct(cur.fleet.utilization)})",
        style="bold",
    )
    yield Text(
        f"Planned bill: {_usd(p.fleet.usd_per_month)}/month on {p.fleet.gpus} GPUs "
        f"(saves {_usd(saved)}/month, {saved / cur.fleet.usd_per_month:.0%}; "
        f"GPU busy {_pct(_busy(p.fleet, p.verification))}, load/capacity "
        f"{_pct(p.fleet.utilization)}; verified in simulation)",
        style="bold green",
    )
    yield Text("")
    yield fleet_table("Planned fleet", p.fleet, p.verification)
    yield check_table("Simulation check of the planned fleet (at peak traffic)", p.verification)
    yield Text("")
    yield Text(
        "Recommendations, in order; each is priced against the one before (730 h/month) and is "
        "a fleet that passed its own simulation:",
        style="bold",
    )
    for i, r in enumerate(plan.recommendations, 1):
        saving = r.saving_usd_per_month
        verb = "saves" if saving >= 0 else "costs"
        yield Text(
            f"{i}. {r.title}: {verb} {_usd(abs(saving))}/month "
            f"({_usd(r.usd_per_month_before)} -> {_usd(r.usd_per_month_after)}); "
            f"load/capacity {_pct(r.utilization_before)} -> {_pct(r.utilization_after)}, "
            f"GPU busy {_pct(r.gpu_busy_before)} -> {_pct(r.gpu_busy_after)}",
            style="bold" if saving > 0 else "",
        )
        changed = [e for e in r.effects if e.after != e.before]
        if not changed:
            yield Text("     no change pays off at this step")
        for e in changed:
            yield Text(f"     {e.deployment}: {e.after}")
            yield Text(
                f"       p95 TTFT {_s(e.p95_ttft_before_s)} -> {_s(e.p95_ttft_after_s)}, "
                f"p95 TPOT {_s(e.p95_tpot_before_s)} -> {_s(e.p95_tpot_after_s)}, "
                f"{e.attainment_after:.1%} of requests inside the SLO",
                style="dim",
            )
        for w in r.warnings:
            yield Text(f"     warning: {w}", style="yellow")
    yield Text("")
    c = Table(title="Compared on the same traffic and SLOs", title_justify="left")
    for col in ("fleet", "$/month", "x plan", "GPUs", "GPU busy", "meets SLO (sim)"):
        c.add_column(col, justify="left" if col == "fleet" else "right")
    rows = [*plan.baselines]
    for b in rows:
        c.add_row(
            b.title + (f" [{b.note}]" if b.note else ""),
            _usd(b.fleet.usd_per_month),
            f"{b.fleet.usd_per_month / p.fleet.usd_per_month:.2f}",
            str(b.fleet.gpus),
            _pct(_busy(b.fleet, b.verification)),
            "yes" if b.verification.ok else "no",
        )
    c.add_row(
        "gpuwise plan",
        _usd(p.fleet.usd_per_month),
        "1.00",
        str(p.fleet.gpus),
        _pct(_busy(p.fleet, p.verification)),
        "yes" if p.verification.ok else "no",
        style="bold",
    )
    yield c
    s = p.stats
    yield Text(
        f"solver: {s.candidates} candidates, {s.variables} variables, {s.constraints} constraints; "
        f"MILP {s.solve_s:.2f} s over {s.rounds} round(s) of simulate-and-tighten; candidate "
        f"sweep {p.enumerate_s:.2f} s; whole plan with baselines {p.total_s:.1f} s",
        style="dim",
    )
