"""Workload: when requests arrive and how long they are, reproducibly from a seed.

The simulator, the load generator (``gpuwise bench``) and the planner draw their requests here,
so that the same spec and seed mean the same schedule everywhere. See :func:`generate`.
"""

from gpuwise.workload._io import WorkloadError
from gpuwise.workload.arrivals import (
    ArrivalSpec,
    arrival_times,
    peak_rate_rps,
    rate_at,
    scale_rate,
    stream_rng,
)
from gpuwise.workload.generate import generate
from gpuwise.workload.lengths import empirical_values, sample_lengths
from gpuwise.workload.schedule import Requests, concat, merge
from gpuwise.workload.traces import (
    DATASETS,
    Dataset,
    dataset_path,
    detect_format,
    read_azure_csv,
    read_csv_trace,
    read_mooncake_jsonl,
    read_trace,
)

__all__ = [
    "DATASETS",
    "ArrivalSpec",
    "Dataset",
    "Requests",
    "WorkloadError",
    "arrival_times",
    "concat",
    "dataset_path",
    "detect_format",
    "empirical_values",
    "generate",
    "merge",
    "peak_rate_rps",
    "rate_at",
    "read_azure_csv",
    "read_csv_trace",
    "read_mooncake_jsonl",
    "read_trace",
    "sample_lengths",
    "scale_rate",
    "stream_rng",
]
