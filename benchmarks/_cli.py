"""The benchmarks' one rule for bad input: a UserError (an unknown scenario, a spec that does
not validate, a duration of zero) is one line on stderr and exit code 2, as from ``gpuwise``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from gpuwise.errors import UserError


def run(main: Callable[[], object]) -> None:
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def positive(text: str) -> float:
    """An argparse type: a finite number above 0 (argparse reports anything else, exit 2)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number above 0")
    return x


def positives(text: str) -> list[float]:
    """A comma-separated list of positive numbers (argparse reports anything else, exit 2)."""
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers"
        ) from None
    if not out or not all(math.isfinite(x) and x > 0 for x in out):
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more numbers above 0")
    return out
