"""One replica's speed and memory (see ``model``), and how its efficiencies are fitted."""

from gpuwise.perf.model import (
    DEFAULT_MAX_MODEL_LEN,
    STORAGE_BYTES_PER_S,
    MemoryReport,
    ReplicaConfig,
    ReplicaPerf,
)
from gpuwise.perf.profile import PerfError, Profile, builtin_profiles, load_profile
from gpuwise.perf.summary import ReplicaSummary, config_for, summarize_replica

__all__ = [
    "DEFAULT_MAX_MODEL_LEN",
    "STORAGE_BYTES_PER_S",
    "MemoryReport",
    "PerfError",
    "Profile",
    "ReplicaConfig",
    "ReplicaPerf",
    "ReplicaSummary",
    "builtin_profiles",
    "config_for",
    "load_profile",
    "summarize_replica",
]
