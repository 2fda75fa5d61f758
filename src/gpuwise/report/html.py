"""The policy comparison as one self-contained HTML file (inline SVG, no network, no script deps).

It opens with the story (``gpuwise.report.story``): the moment that tests the policies, what
each did in it, and every policy's replicas and p95 TTFT on shared axes with the moment shaded,
so that a reader sees the spike before the table. Per policy: replicas ready / starting / warm
over time against the load (the replicas the load needs at the SLO), the engines' queue depth,
and p95 TTFT over time; for all: the cost / attainment frontier with the oracle's cost, and the
results table. A few lines of inline script only record each figure's rendered size on the page
(``data-rendered``), which the tests read back from a headless browser.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

import numpy as np

from gpuwise.report.compare import ANCHORS, Comparison, PolicyRow
from gpuwise.report.story import Story, tell
from gpuwise.report.svg import PALETTE, Series, line_chart, scatter
from gpuwise.sim.autoscale import AutoscaleRun
from gpuwise.sim.results import grouped_percentiles

BIN_S = 10.0  # figures plot 10-second bins

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left} .figs{display:flex;flex-wrap:wrap;gap:8px}
.note{font-size:12px;color:#555;max-width:900px} .reason{font-family:monospace;font-size:11px}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var figs = document.querySelectorAll('svg.chart'), ok = 0;
  figs.forEach(function (s) {
    var r = s.getBoundingClientRect();
    s.setAttribute('data-rendered', Math.round(r.width) + 'x' + Math.round(r.height));
    if (r.width > 0 && r.height > 0 && s.querySelectorAll('polyline,circle').length > 0) ok++;
  });
  document.body.setAttribute('data-figures', figs.length);
  document.body.setAttribute('data-figures-drawn', ok);
});
"""


def _binned(run: AutoscaleRun, field: str, how: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    t = np.array([s.t_s for s in run.signals])
    v = np.array([getattr(s, field) for s in run.signals], dtype=float)
    if t.size == 0:
        return t, v
    k = np.floor((t - 1e-9) / BIN_S).astype(np.int64)
    nb = int(k.max()) + 1
    keep = ~np.isnan(v)
    cnt = np.bincount(k[keep], minlength=nb)
    if how == "max":
        out = np.full(nb, -np.inf)
        np.maximum.at(out, k[keep], v[keep])
        out[cnt == 0] = np.nan
    else:
        s = np.bincount(k[keep], weights=v[keep], minlength=nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
    return (np.arange(nb) + 1) * BIN_S, out


def _ttft_p95(run: AutoscaleRun) -> tuple[np.ndarray, np.ndarray]:
    r = run.requests
    has = r.ok & ~np.isnan(r.first_token_s)
    if not has.any():
        return np.zeros(0), np.zeros(0)
    k = np.floor(r.first_token_s[has] / BIN_S).astype(np.int64)
    nb = int(k.max()) + 1
    p = grouped_percentiles(k, r.ttft_s[has], nb, (95,))[:, 0]
    return (np.arange(nb) + 1) * BIN_S, p


def policy_figures(c: Comparison, name: str) -> list[str]:
    """The three time-series figures of one policy."""
    run = c.runs[name]
    t, ready = _binned(run, "replicas_ready")
    _, starting = _binned(run, "replicas_starting")
    _, warm = _binned(run, "replicas_warm")
    _, rate = _binned(run, "arrival_rate_rps")
    lim = c.calibration.replica_max_rps  # replicas the load needs at one replica's limit
    need = rate / lim if lim > 0 else rate * np.nan
    reps = line_chart(
        [
            Series("ready", t, ready, PALETTE[0], width=2.0),
            Series("starting", t, starting, PALETTE[3]),
            Series("warm pool", t, warm, PALETTE[2]),
            Series("load (replicas needed)", t, need, "#444", dash="4 3"),
        ],
        title=f"{name}: replicas against load",
        x_label="time (s)",
        y_label="replicas",
    )
    _, queue = _binned(run, "queue_depth", "max")
    q = line_chart(
        [Series("waiting requests (max per 10 s)", t, queue, PALETTE[1])],
        title=f"{name}: queue depth",
        x_label="time (s)",
        y_label="requests",
    )
    tt, p95 = _ttft_p95(run)
    hl = []
    if c.slo and c.slo.get("ttft_s"):
        hl.append((float(c.slo["ttft_s"]), f"TTFT SLO {c.slo['ttft_s']:g} s", "#d62728"))
    ttft = line_chart(
        [Series("p95 TTFT", tt, p95, PALETTE[4])],
        title=f"{name}: p95 TTFT (10 s bins)",
        x_label="time (s)",
        y_label="seconds (log)",
        hlines=hl,
        log_y=True,
    )
    return [reps, q, ttft]


def _color(c: Comparison, policy: str) -> str:
    """One color per policy, the same in every figure (its row's place in the table)."""
    names = [r.policy for r in c.rows]
    return PALETTE[names.index(policy) % len(PALETTE)]


def story_section(c: Comparison, story: Story) -> list[str]:
    """The moment that tests the policies, told first: what happens, what each policy did in
    it, and two figures with every policy on the same axes and the moment shaded."""
    w0, w1 = story.window_s
    rows = []
    order = sorted(story.moments, key=lambda m: (m.missed, c.row(m.policy).cost_usd))
    for m in order:
        r = c.row(m.policy)
        if not math.isfinite(m.short_s):
            short, back = "never", "-"
        else:
            short = f"{m.short_s:,.0f} s"
            back = (
                f"{m.ready_for_peak_s:,.0f} s ({m.ready_for_peak_s - m.short_s:,.0f} s short)"
                if math.isfinite(m.ready_for_peak_s)
                else f"not in the window (at most {m.peak_ready})"
            )
        share = m.missed / m.requests if m.requests else 0.0
        rows.append(
            f"<tr><td>{escape(m.policy)}</td><td>{escape(short)}</td><td>{escape(back)}</td>"
            f"<td>{m.missed:,} of {m.requests:,} ({share:.1%})</td><td>{m.failed:,}</td>"
            f"<td>{r.slo_attainment:.2%}</td><td>${r.cost_usd:,.2f}</td></tr>"
        )
    n = story.peak_replicas
    tbl = (
        f"<table><tr><th>policy</th><th>fewer than {n} ready from</th><th>{n} ready again at</th>"
        f"<th>requests in the window outside the SLO</th><th>of them failed or timed out</th>"
        f"<th>whole run: inside SLO</th><th>whole run: cost</th></tr>{''.join(rows)}</table>"
    )
    shown = [r.policy for r in c.rows if r.policy == "gpuwise" or r.policy in ANCHORS]
    shown += [r.policy for r in c.rows if r.policy == "oracle"]
    span = [(w0, w1, "the moment", "#ff7f0e")]
    any_run = c.runs[shown[0]] if shown else next(iter(c.runs.values()))
    t, rate = _binned(any_run, "arrival_rate_rps")
    lim = c.calibration.replica_max_rps
    series = [Series("load (replicas needed)", t, rate / lim if lim > 0 else rate, "#444", "4 3")]
    lat = []
    for name in shown:
        tr, ready = _binned(c.runs[name], "replicas_ready")
        wide = 2.4 if name == "gpuwise" else 1.2
        dash = "2 2" if name == "oracle" else ""
        series.append(Series(name, tr, ready, _color(c, name), dash, wide))
        tt, p95 = _ttft_p95(c.runs[name])
        lat.append(Series(name, tt, p95, _color(c, name), dash, wide))
    hl = []
    if c.slo and c.slo.get("ttft_s"):
        hl.append((float(c.slo["ttft_s"]), f"TTFT SLO {c.slo['ttft_s']:g} s", "#d62728"))
    # a policy that overshoots far (KEDA's refills to the maximum) would flatten the rest
    top = 0.0
    for x in series:
        top = max(top, float(np.nanmax(x.ys)) if len(x.ys) and np.isfinite(x.ys).any() else 0.0)
    cut = 2.5 * max(story.peak_replicas, 1)
    y_max = cut if top > cut else None
    figs = [
        line_chart(
            series,
            title="ready replicas of each policy against the load"
            + (f" (axis cut at {cut:.0f}; higher drawn at the top)" if y_max else ""),
            y_max=y_max,
            x_label="time (s)",
            y_label="replicas",
            width=960,
            height=260,
            spans=span,
        ),
        line_chart(
            lat,
            title="p95 TTFT of each policy (10 s bins)",
            x_label="time (s)",
            y_label="seconds (log)",
            width=960,
            height=260,
            hlines=hl,
            log_y=True,
            spans=span,
        ),
    ]
    return [
        "<h2>The story</h2>",
        f"<p>{escape(story.event)} The window shaded below, {w0:,.0f}-{w1:,.0f} s, runs from "
        f"then to one lead time (and a minute to drain) after the load reached its new level: "
        f"the time any policy needs to answer it.</p>",
        f"<p><b>{escape(story.headline)}</b></p>" if story.headline else "",
        tbl,
        f"<div class='figs'>{''.join(figs)}</div>",
    ]


def frontier(c: Comparison) -> str:
    pts = [(r.policy, r.cost_usd, r.slo_attainment, _color(c, r.policy)) for r in c.rows]
    vl = []
    for r in c.rows:
        if r.policy == "oracle":
            vl.append((r.cost_usd, "oracle cost (lower bound)", "#555"))
    return scatter(
        pts,
        title="cost / SLO attainment frontier (up and left is better)",
        x_label="cost of the run (USD)",
        y_label="requests inside the SLO",
        vlines=vl,
    )


def _cell(v: float, kind: str) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "-"
    match kind:
        case "pct":
            return f"{v:.2%}"
        case "s":
            return f"{v:.2f}"
        case "usd":
            return f"${v:,.2f}"
        case "x":
            return f"{v:.2f}x"
        case "f1":
            return f"{v:,.1f}"
    return f"{v:,}"


COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("policy", "policy", ""),
    ("inside SLO", "slo_attainment", "pct"),
    ("TTFT ok", "ttft_attainment", "pct"),
    ("TPOT ok", "tpot_attainment", "pct"),
    ("failed", "failed", "n"),
    ("timed out", "timed_out", "n"),
    ("retried", "retried", "n"),
    ("TTFT p95 s", "ttft_p95_s", "s"),
    ("TTFT p99 s", "ttft_p99_s", "s"),
    ("GPU-h", "gpu_hours", "f1"),
    ("cost", "cost_usd", "usd"),
    ("vs oracle", "cost_vs_oracle", "x"),
    ("$/1M tok", "usd_per_1m_tokens", "usd"),
    ("$/1M in SLO", "usd_per_1m_tokens_in_slo", "usd"),
    ("scale events", "scale_events", "n"),
)


def table(rows: list[PolicyRow]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h, _, _ in COLUMNS)
    body = []
    for r in rows:
        cells = []
        for _, key, kind in COLUMNS:
            v = getattr(r, key)
            cells.append(f"<td>{escape(v if kind == '' else _cell(v, kind))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(c: Comparison, command: str = "") -> str:
    """The whole report as a string (one file, nothing fetched)."""
    cal = c.calibration
    slo = ", ".join(f"{k} {v}" for k, v in c.slo.items() if v is not None) if c.slo else "none set"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gpuwise: policies on {escape(c.scenario)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Autoscaling policies on '{escape(c.scenario)}' ({escape(c.spec)} / "
        f"{escape(c.deployment)})</h1>",
        f"<p class='note'>{escape(c.scenario_description)}. {c.duration_s:,.0f} s of arrivals, "
        f"seed {c.seed}; scale-up lead time {c.cold_lead_s:.0f} s from scratch, "
        f"{c.warm_lead_s:.0f} s from the warm pool; {escape(c.pricing)} at "
        f"${c.usd_per_gpu_hour:.2f}/GPU-hour; SLO {escape(slo)}. A load test of one replica "
        f"keeps 99% of requests inside the SLO up to {cal.replica_max_rps:.2f} req/s (the "
        f"capacity model says {cal.replica_model_rps:.2f}); the anchors' targets are what it "
        f"shows at {cal.replica_slo_rps / cal.replica_max_rps:.0%} of that, "
        f"{cal.replica_slo_rps:.2f} req/s: "
        f"{cal.concurrency:.1f} requests in flight, KV usage {cal.kv_usage:.0%}.</p>",
    ]
    if command:
        parts.append(f"<p class='note'>Command: <code>{escape(command)}</code></p>")
    story = tell(c)
    if story is not None:
        parts += story_section(c, story)
    parts += ["<h2>Results</h2>", table(c.rows)]
    if any(r.policy == "gpuwise" for r in c.rows):
        dom = c.dominance()
        items = "".join(f"<li>{escape(k)}: {escape(v)}</li>" for k, v in dom.items())
        parts.append(f"<p class='note'>gpuwise against each policy (Pareto):</p><ul>{items}</ul>")
    parts += ["<h2>Cost and attainment</h2>", f"<div class='figs'>{frontier(c)}</div>"]
    for r in c.rows:
        run = c.runs[r.policy]
        parts.append(f"<h2>{escape(r.policy)}</h2>")
        parts.append(f"<div class='figs'>{''.join(policy_figures(c, r.policy))}</div>")
        if run.fault_log:
            parts.append("<p class='note'>Faults: " + escape("; ".join(run.fault_log)) + "</p>")
        dec = run.decisions
        changes = [d for i, d in enumerate(dec) if i == 0 or d.desired != dec[i - 1].desired]
        if changes:
            lines = "".join(
                f"<div class='reason'>{d.t_s:,.0f} s -> {d.desired}: {escape(d.reason)}</div>"
                for d in changes[:12]
            )
            more = f" (first 12 of {len(changes)})" if len(changes) > 12 else ""
            parts.append(
                f"<details><summary>decisions that changed the target{more}</summary>"
                f"{lines}</details>"
            )
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_html(c: Comparison, path: str | Path, command: str = "") -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(render_html(c, command), encoding="utf-8")
    tmp.replace(p)
    return p
