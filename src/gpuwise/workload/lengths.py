"""Token lengths per request: fixed, uniform, lognormal, or sampled from real data.

Prompt and answer lengths are correlated in real workloads (a long document gets a long summary),
so when input and output come from the same dataset whole rows are sampled and each request keeps
a real (input, output) pair. Otherwise the two are drawn independently from their own streams.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from gpuwise.spec import EmpiricalLength, FixedLength, LognormalLength, UniformLength
from gpuwise.workload._io import WorkloadError
from gpuwise.workload.traces import DATASETS, dataset_path, length_column

LengthSpec = FixedLength | UniformLength | LognormalLength | EmpiricalLength
Role = Literal["input", "output"]

# Lognormal tails reach astronomic values at large cv; clip in float before the integer cast.
_MAX_TOKENS_FLOAT = float(2**40)


def empirical_source(dist: EmpiricalLength, role: Role) -> tuple[Path, str | None]:
    """The file and column a dataset name or path stands for."""
    if dist.dataset is not None:
        ds = DATASETS.get(dist.dataset)
        if ds is None:
            raise WorkloadError(
                f"unknown length dataset '{dist.dataset}'; known: {', '.join(sorted(DATASETS))} "
                "(or give 'path' and 'column' of your own CSV)"
            )
        default = ds.input_column if role == "input" else ds.output_column
        return dataset_path(ds.name), dist.column or default
    assert dist.path is not None  # the spec guarantees exactly one of dataset and path
    return Path(dist.path).expanduser(), dist.column


def empirical_values(dist: EmpiricalLength, role: Role) -> np.ndarray:
    """The observed lengths (read-only, >= 1) that an empirical distribution resamples."""
    path, column = empirical_source(dist, role)
    return length_column(path, column, role)


def sample_lengths(dist: LengthSpec, n: int, rng: np.random.Generator, role: Role) -> np.ndarray:
    """``n`` token counts (int64, >= 1) from one distribution."""
    if isinstance(dist, FixedLength):
        return np.full(n, dist.tokens, dtype=np.int64)
    if isinstance(dist, UniformLength):
        return rng.integers(dist.low, dist.high, size=n, endpoint=True, dtype=np.int64)
    if isinstance(dist, LognormalLength):
        # Parameterised by mean and cv because that is what people know about their traffic;
        # sigma^2 = ln(1 + cv^2) and mu = ln(mean) - sigma^2 / 2 give exactly that mean and cv.
        sigma2 = np.log1p(dist.cv**2)
        mu = np.log(dist.mean) - sigma2 / 2
        x = rng.lognormal(mu, np.sqrt(sigma2), size=n)
        hi = float(dist.max_tokens) if dist.max_tokens is not None else _MAX_TOKENS_FLOAT
        return np.clip(np.rint(x), 1.0, hi).astype(np.int64)
    if isinstance(dist, EmpiricalLength):
        values = empirical_values(dist, role)
        return values[rng.integers(0, values.size, size=n)]
    raise WorkloadError(f"unknown length distribution {dist!r}")  # pragma: no cover


def is_paired(input_dist: LengthSpec | None, output_dist: LengthSpec | None) -> bool:
    """Both lengths from the same file, in different columns: sample rows to keep the pairs."""
    if not (isinstance(input_dist, EmpiricalLength) and isinstance(output_dist, EmpiricalLength)):
        return False
    if input_dist.column is not None and input_dist.column == output_dist.column:
        return False
    p_in, _ = empirical_source(input_dist, "input")
    p_out, _ = empirical_source(output_dist, "output")
    return p_in.resolve() == p_out.resolve()


def sample_paired(
    input_dist: EmpiricalLength, output_dist: EmpiricalLength, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows drawn with replacement; both columns are indexed by the same rows."""
    inp = empirical_values(input_dist, "input")
    out = empirical_values(output_dist, "output")
    if inp.size != out.size:  # pragma: no cover - same file, so same rows
        raise WorkloadError("paired length columns differ in length")
    rows = rng.integers(0, inp.size, size=n)
    return inp[rows], out[rows]
