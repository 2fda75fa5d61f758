"""The policy comparison: its table, its JSON, and an HTML report that renders in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from gpuwise.report import Comparison, compare_policies, render_html, write_html
from gpuwise.report.story import find_rise, tell
from gpuwise.resolve import resolve_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "autoscale-chat.yaml"


@cache
def small() -> Comparison:
    r = resolve_spec(SPEC)
    return compare_policies(
        r,
        scenario="double-in-5-min",
        policies=["gpuwise", "hpa", "knative-kpa", "oracle", "fixed-peak"],
        duration_s=600.0,
        seed=0,
        lead_time_s=120.0,
    )


def test_rows_account_for_every_request_and_the_oracle_is_the_unit() -> None:
    c = small()
    assert [r.policy for r in c.rows] == ["gpuwise", "hpa", "knative-kpa", "oracle", "fixed-peak"]
    n = c.rows[0].requests
    for r in c.rows:
        assert r.requests == n
        assert r.ok + r.rejected + r.failed + r.timed_out == n
        assert 0.0 <= r.slo_attainment <= min(r.ttft_attainment, r.tpot_attainment) <= 1.0
        assert r.cost_usd > 0 and r.gpu_hours > 0
    assert c.row("oracle").cost_vs_oracle == pytest.approx(1.0)
    assert c.cold_lead_s == pytest.approx(120.0)
    dom = c.dominance()
    assert set(dom) == {"hpa", "knative-kpa", "fixed-peak"}


def test_an_extra_policy_runs_under_the_same_rules_as_the_named_ones() -> None:
    # the same HPA, passed as an object under another name, gives the named run's row exactly:
    # same requests, lifecycle, starting fleet and observe-only window
    from gpuwise.errors import UserError
    from gpuwise.policy import HpaPolicy

    c = small()
    again = HpaPolicy(metric="kv_usage", target=c.calibration.kv_usage)
    kw = dict(duration_s=600.0, seed=0, lead_time_s=120.0)
    seen: list[str] = []
    r = resolve_spec(SPEC)
    e = compare_policies(
        r,
        scenario="double-in-5-min",
        policies=["oracle"],
        extra_policies={"hpa again": again},
        configure=lambda name, p: seen.append(name) or p,
        **kw,
    )
    assert seen == ["oracle"]  # configure sees the named policies, not the extra objects
    assert [x.policy for x in e.rows] == ["oracle", "hpa again"]
    mine, named = e.row("hpa again").as_dict(), c.row("hpa").as_dict()
    assert mine.pop("policy") == "hpa again" and named.pop("policy") == "hpa"
    assert mine == named
    with pytest.raises(UserError, match="hpa"):
        compare_policies(
            r, scenario="double-in-5-min", policies=["hpa"], extra_policies={"hpa": again}, **kw
        )


def test_every_policy_is_configured_from_one_load_test_that_meets_the_slo() -> None:
    # the anchors' targets are measured at 80% of the load-tested limit, where one replica
    # keeps the SLO (not at the capacity model's, which is optimistic); the oracle plans at
    # the limit itself
    c = small()
    cal = c.calibration
    assert cal.replica_slo_rps == pytest.approx(0.8 * cal.replica_max_rps)
    assert cal.replica_max_rps < cal.replica_model_rps
    assert cal.slo_attainment is not None and cal.slo_attainment >= 0.99
    gw = c.runs["gpuwise"].decisions[-1].reason
    assert "(load test x0.9)" in gw


def test_html_is_self_contained() -> None:
    html = render_html(small(), "gpuwise compare-policies ...")
    # the story's two figures, the frontier, then three figures per policy
    assert html.count("<svg") == 2 + 1 + 3 * 5
    assert "<th>$/1M in SLO</th>" in html  # the tool's one number is in the table
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|url\(http", html)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_find_rise_locates_a_step_and_ignores_a_flat_load() -> None:
    # 10 req/s for 600 s, then 40 req/s: the one-minute mean climbs over the minute after 600 s
    rng = np.random.default_rng(0)
    a = np.sort(np.concatenate([rng.uniform(0, 600, 6000), rng.uniform(600, 1200, 24000)]))
    rise = find_rise(a, 1200.0)
    assert rise is not None
    assert 590 <= rise.start_s <= 620 and 640 <= rise.end_s <= 670
    assert rise.from_rps == pytest.approx(10, rel=0.15) and rise.to_rps > 0.9 * 40 * 0.9
    assert find_rise(np.sort(rng.uniform(0, 1200, 12000)), 1200.0) is None


def test_the_story_tells_what_each_policy_did_in_the_moment() -> None:
    c = small()
    story = tell(c)
    assert story is not None
    # double-in-5-min over 600 s: the ramp starts a third of the way in
    assert 150 <= story.event_s <= 260
    assert {m.policy for m in story.moments} == {r.policy for r in c.rows}
    w0, w1 = story.window_s
    for m in story.moments:
        run = c.runs[m.policy]
        req = run.requests
        arrived = int(((req.arrival_s >= w0) & (req.arrival_s < w1)).sum())
        assert arrived <= m.requests and 0 <= m.failed <= m.missed <= m.requests
        missed = int((~req.slo_met(run.slo)).sum())
        assert m.missed <= missed
        if m.ready_for_peak_s == m.ready_for_peak_s:  # not NaN: it was short first
            assert m.short_s <= m.ready_for_peak_s
    g = c.row("gpuwise")
    assert f"{g.slo_attainment:.2%}" in story.headline and f"${g.cost_usd:,.2f}" in story.headline


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        if os.environ.get("GPUWISE_E2E"):
            pytest.fail("chromium missing: run bash scripts/chromium.sh install")
        pytest.skip("chromium not installed (bash scripts/chromium.sh install)")
    page = write_html(small(), tmp_path / "report.html")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    dom = subprocess.run(
        [browser, *flags, f"--user-data-dir={tmp_path / 'profile1'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    figures = int(re.search(r'data-figures="(\d+)"', dom).group(1))
    drawn = int(re.search(r'data-figures-drawn="(\d+)"', dom).group(1))
    assert figures == 18 and drawn == figures
    assert "The story" in dom and "Pareto-dominates" in dom
    sizes = re.findall(r'data-rendered="(\d+)x(\d+)"', dom)
    assert len(sizes) == figures
    assert all(int(w) > 0 and int(h) > 0 for w, h in sizes)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            *flags,
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank page compresses to a few kB; charts do not


def test_cli_compare_policies_json(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpuwise",
            "compare-policies",
            str(SPEC),
            "--scenario",
            "flash-crowd-5x",
            "--policies",
            "gpuwise,keda,oracle",
            "--duration",
            "300",
            "--lead-time",
            "120",
            "--report",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert [r["policy"] for r in doc["rows"]] == ["gpuwise", "keda", "oracle"]
    assert doc["scenario"] == "flash-crowd-5x" and doc["report"] == str(out)
    assert "keda" in doc["dominance"]
    assert out.is_file() and out.read_text().count("<svg") == 2 + 1 + 3 * 3


def test_cli_compare_policies_table_shows_every_digit_of_the_json(tmp_path: Path) -> None:
    """The people's table is the JSON's numbers, none cut to fit a width (piped, as in CI)."""
    args = [sys.executable, "-m", "gpuwise", "compare-policies", str(SPEC)]
    args += ["--scenario", "flash-crowd-5x", "--policies", "gpuwise,knative-kpa,generic-ops"]
    args += ["--duration", "300", "--lead-time", "120"]
    runs = [
        subprocess.run(a, capture_output=True, text=True, timeout=300, cwd=ROOT)
        for a in (args, [*args, "--json"])
    ]
    assert all(p.returncode == 0 for p in runs), runs[0].stderr + runs[1].stderr
    table, doc = runs[0].stdout, json.loads(runs[1].stdout)
    assert "…" not in table and "$/1M" in table and "in SLO" in table
    for r in doc["rows"]:
        line = next(x for x in table.splitlines() if x.strip().startswith(r["policy"] + " "))
        cells = line.split()
        assert cells[1] == f"{r['slo_attainment']:.2%}"
        assert cells[-2] == f"${r['usd_per_1m_tokens_in_slo']:,.2f}"
        assert cells[-1] == f"{r['scale_events']:,}"


def test_cli_compare_policies_rejects_unknown_names() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "gpuwise", "compare-policies", str(SPEC), "--policies", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert p.returncode == 2
    assert "unknown policy nope" in p.stderr
