"""Live-world measurement: ``gpuwise bench`` (a load generator for OpenAI-compatible endpoints)
and ``gpuwise calibrate`` (fit a perf profile to a live engine).

This package does network I/O (httpx, asyncio); the pure layers (policy, perf, sim, plan, doctor,
cost) never import it. Its arrival schedules come from :mod:`gpuwise.workload`, so a benchmark
replays exactly what the simulator simulates for the same spec and seed.
"""

from gpuwise.bench.metrics import BenchSummary, Dist, RequestRecord, summarize
from gpuwise.bench.prompts import TokenFit, prompt_text
from gpuwise.bench.runner import (
    BenchConfig,
    BenchError,
    BenchResult,
    ServerInfo,
    Session,
    normalize_endpoint,
    run_bench,
)
from gpuwise.bench.schedule import (
    Schedule,
    schedule_from_csv,
    schedule_from_spec,
    schedule_poisson,
)
from gpuwise.bench.sse import SSEDecoder, sse_events

__all__ = [
    "BenchConfig",
    "BenchError",
    "BenchResult",
    "BenchSummary",
    "Dist",
    "RequestRecord",
    "SSEDecoder",
    "Schedule",
    "ServerInfo",
    "Session",
    "TokenFit",
    "normalize_endpoint",
    "prompt_text",
    "run_bench",
    "schedule_from_csv",
    "schedule_from_spec",
    "schedule_poisson",
    "sse_events",
    "summarize",
]
