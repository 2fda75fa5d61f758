"""Reports: autoscaling policies compared side by side, as a table and a self-contained HTML file.

``compare_policies(resolved, scenario=...)`` runs the policies through the lifecycle simulator;
``write_html(comparison, path)`` writes the figures (inline SVG, no network);
``across_seeds(comparisons)`` folds one scenario's comparisons at several seeds into a spread.
"""

from gpuwise.report.compare import (
    ANCHORS,
    BASELINES,
    POLICIES,
    Calibration,
    Comparison,
    PolicyRow,
    compare_policies,
)
from gpuwise.report.html import render_html, write_html
from gpuwise.report.seeds import SeedSpread, across_seeds

__all__ = [
    "ANCHORS",
    "BASELINES",
    "POLICIES",
    "Calibration",
    "Comparison",
    "PolicyRow",
    "SeedSpread",
    "across_seeds",
    "compare_policies",
    "render_html",
    "write_html",
]
