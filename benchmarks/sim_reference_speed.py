"""What numba buys: the compiled simulator kernel against the pure-Python reference scheduler.

The reference (``reference_sim`` in tests/test_sim.py) runs vLLM v1's scheduler one iteration at
a time and is what the kernel's per-request times are checked against; both run the reference
workload (Llama-2-70B, TP 2, A100, 512/128 tokens, Poisson at 70% of capacity) here.

    python benchmarks/sim_reference_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_sim as T  # noqa: E402  (the reference lives with the tests that use it)
from gpuwise.workload import Requests  # noqa: E402


def main() -> None:
    rd = T.ref_deployment()
    print(
        "| requests | kernel CPU s | kernel req/CPU-s | reference CPU s | reference req/CPU-s "
        "| ratio |"
    )
    print("|---|---|---|---|---|---|")
    for n in (1000, 3000):
        rng = np.random.default_rng(0)
        arr = np.cumsum(rng.exponential(1.0 / T.RATE_70, n))
        reqs = Requests(arr, np.full(n, 512), np.full(n, 128), duration_s=float(arr[-1]) + 1e-3)
        T.run(reqs)  # load the compiled kernel first
        c0 = time.process_time()
        T.run(reqs)
        c1 = time.process_time()
        T.reference_sim(reqs, rd, rd.perf.memory.kv_capacity_blocks)
        c2 = time.process_time()
        k, r = c1 - c0, c2 - c1
        print(f"| {n:,} | {k:.4f} | {n / k:,.0f} | {r:.2f} | {n / r:,.0f} | {r / k:.0f} |")


if __name__ == "__main__":
    main()
