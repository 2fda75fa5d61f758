"""The gpuwise CLI as a user runs it, for the e2e tests: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CATALOG = ROOT / "examples" / "local" / "cpu-tiny.catalog.yaml"  # the tiny CPU model


def run_gpuwise(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwise", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
