"""One scenario at several seeds: the spread table's numbers are the per-seed rows' numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpuwise.errors import UserError
from gpuwise.report import compare_policies
from gpuwise.report.seeds import across_seeds, parse_seeds
from gpuwise.resolve import resolve_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "autoscale-chat.yaml"
POLICIES = ["gpuwise", "hpa", "aibrix-apa", "oracle"]


def test_seeds_parse_lists_and_ranges_and_name_the_option_when_wrong() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("3-5, 1, 4") == [3, 4, 5, 1]
    for bad in ("x", "", "2-1", "-1", "1,,a"):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(bad)


def test_spread_is_the_rows_of_each_seed_and_counts_dominance_by_the_same_rule() -> None:
    r = resolve_spec(SPEC)
    comps = [
        compare_policies(
            r,
            scenario="flash-crowd-5x",
            policies=POLICIES,
            duration_s=300.0,
            seed=s,
            lead_time_s=120.0,
        )
        for s in (0, 1, 2)
    ]
    spread = {x.policy: x for x in across_seeds(comps)}
    assert list(spread) == POLICIES
    for name, x in spread.items():
        att = [c.row(name).slo_attainment for c in comps]
        usd = [c.row(name).cost_usd for c in comps]
        assert x.seeds == (0, 1, 2)
        assert x.slo_attainment_min == min(att) and x.slo_attainment_max == max(att)
        assert x.slo_attainment_mean == pytest.approx(sum(att) / 3)
        assert x.cost_usd_min == min(usd) and x.cost_usd_max == max(usd)
        if name in ("gpuwise", "oracle"):
            assert x.dominated_at is None and x.dominated_on_mean is None
        else:  # the single-seed table's verdict, seed by seed, and on the means
            want = tuple(c.seed for c in comps if c.dominance()[name] == "dominates")
            assert x.dominated_at == want
            g = spread["gpuwise"]
            assert x.dominated_on_mean == (
                g.slo_attainment_mean >= x.slo_attainment_mean
                and g.cost_usd_mean <= x.cost_usd_mean
                and (g.slo_attainment_mean, g.cost_usd_mean)
                != (x.slo_attainment_mean, x.cost_usd_mean)
            )
    # the seeds differ: a spread that is a single number would hide the draws it is about
    assert spread["aibrix-apa"].slo_attainment_min < spread["aibrix-apa"].slo_attainment_max
    with pytest.raises(ValueError):
        across_seeds(
            [
                comps[0],
                compare_policies(r, scenario="steady", policies=POLICIES, duration_s=120.0, seed=0),
            ]
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwise", "compare-policies", str(SPEC), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_cli_seeds_json_holds_every_seed_and_the_spread(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    p = _cli(
        "--scenario",
        "flash-crowd-5x",
        "--policies",
        ",".join(POLICIES),
        "--duration",
        "300",
        "--lead-time",
        "120",
        "--seeds",
        "0-1",
        "--report",
        str(out),
        "--json",
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["seeds"] == [0, 1]
    assert [c["seed"] for c in doc["comparisons"]] == [0, 1]
    hpa = next(x for x in doc["across_seeds"] if x["policy"] == "hpa")
    atts = [
        next(r for r in c["rows"] if r["policy"] == "hpa")["slo_attainment"]
        for c in doc["comparisons"]
    ]
    assert hpa["slo_attainment_min"] == min(atts) and hpa["slo_attainment_max"] == max(atts)
    assert doc["reports"] == [str(tmp_path / "r.seed0.html"), str(tmp_path / "r.seed1.html")]
    assert all(Path(x).read_text().count("<svg") == 2 + 1 + 3 * 4 for x in doc["reports"])


def test_cli_seed_and_seeds_together_is_a_clear_error() -> None:
    p = _cli("--seed", "1", "--seeds", "0,1")
    assert p.returncode == 2 and "--seed and --seeds" in p.stderr and "Traceback" not in p.stderr
    p = _cli("--seeds", "a-b")
    assert p.returncode == 2 and "--seeds 'a-b'" in p.stderr and "Traceback" not in p.stderr
