"""How fast the fleet simulator is, and how its cost grows with the number of requests.

Reference workload: Llama-2-70B on 2x A100 80GB (bf16, default profile and engine limits),
512-token prompts and 128-token outputs, Poisson arrivals at 70% of one replica's capacity; one
replica, and 8 replicas (least-outstanding router) at 8x the rate. Each case runs in its own
process, so that its peak RSS is its own; a small warm-up run first loads the compiled kernel,
so the timings are the simulation's, not numba's cache.

Capacity: the output tokens/s at the batch the KV cache allows is what a decode-only engine
would reach, but a 512-token prefill of a 70B model costs about as much GPU time as that
request's whole share of the decode batch, so a rate of 70% of the decode-only figure is an
overload (the queue grows without bound). The rate here is 70% of the capacity with prefill
counted: one prefill plus 128 decode steps' share of the KV-limited batch per request.

    python benchmarks/sim_speed.py                    # 10k, 100k, 1M requests
    python benchmarks/sim_speed.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PROMPT_TOKENS = 512
OUTPUT_TOKENS = 128
LOAD = 0.7
FLEET_REPLICAS = 8


def reference_spec(rate_rps: float, replicas: int) -> dict:
    return {
        "deployments": [
            {
                "name": "ref",
                "model": "llama-2-70b",
                "gpu": "a100-80gb",
                "tp": 2,
                "replicas": {"min": replicas, "max": replicas},
                "router": "least-outstanding",
                "slo": {"ttft_s": 2.0, "tpot_s": 0.15},
                "traffic": {
                    "arrival": {"kind": "poisson", "rate_rps": rate_rps},
                    "input_tokens": {"kind": "fixed", "tokens": PROMPT_TOKENS},
                    "output_tokens": {"kind": "fixed", "tokens": OUTPUT_TOKENS},
                },
            }
        ]
    }


def capacity() -> dict[str, float]:
    """One reference replica's capacity from the performance model (see the module doc)."""
    from gpuwise.resolve import resolve
    from gpuwise.spec import parse_spec

    perf = resolve(parse_spec(reference_spec(1.0, 1))).deployments[0].perf
    limits = perf.config
    mid_context = PROMPT_TOKENS + OUTPUT_TOKENS // 2
    batch = perf.memory.max_concurrent_seqs(
        PROMPT_TOKENS + OUTPUT_TOKENS, limits.max_num_seqs, limits.block_size
    )
    step_s = perf.decode_time_s(batch, mid_context)
    decode_tok_s = batch / step_s
    per_request_s = perf.prefill_time_s(PROMPT_TOKENS) + OUTPUT_TOKENS * step_s / batch
    return {
        "kv_batch": batch,
        "decode_step_s": step_s,
        "decode_only_output_tokens_per_s": decode_tok_s,
        "decode_only_rps": decode_tok_s / OUTPUT_TOKENS,
        "prefill_s": perf.prefill_time_s(PROMPT_TOKENS),
        "capacity_rps": 1.0 / per_request_s,
        "rate_rps": LOAD / per_request_s,
    }


def run_case(n: int, replicas: int, rate_rps: float, seed: int) -> dict:
    """One timed simulation, in this process (the parent starts one process per case)."""
    from gpuwise.resolve import resolve
    from gpuwise.sim import simulate
    from gpuwise.spec import parse_spec
    from gpuwise.workload import generate

    t0 = time.perf_counter()
    rs = resolve(parse_spec(reference_spec(rate_rps * replicas, replicas)))
    traffic = rs.deployments[0].deployment.traffic
    assert traffic is not None
    simulate(rs, duration_s=200.0 / (rate_rps * replicas), seed=seed)  # load the kernel
    startup_s = time.perf_counter() - t0
    duration_s = n / (rate_rps * replicas)
    reqs = generate(traffic, duration_s, seed)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    res = simulate(rs, duration_s=duration_s, seed=seed, requests={"ref": reqs})
    cpu_s = time.process_time() - cpu0
    wall_s = time.perf_counter() - wall0
    s, st = res.summaries["ref"], res.stats["ref"]
    return {
        "requests": len(reqs),
        "replicas": replicas,
        "rate_rps": rate_rps * replicas,
        "duration_s": duration_s,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "requests_per_cpu_s": len(reqs) / cpu_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "startup_s": startup_s,
        "steps": st.steps,
        "iterations": st.iterations,
        "iterations_per_step": st.iterations / max(st.steps, 1),
        "gpu_busy": s.gpu_busy,
        "mean_batch_size": s.mean_batch_size,
        "ttft_p95_s": s.ttft_p95_s,
        "tpot_p95_s": s.tpot_p95_s,
        "slo_attainment": s.slo_attainment,
        "preemptions": s.preemptions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "sim_speed.json"))
    ap.add_argument("--case", help=argparse.SUPPRESS)  # n,replicas,rate: run one case, print JSON
    args = ap.parse_args()
    if args.case:
        n, replicas, rate = args.case.split(",")
        print(json.dumps(run_case(int(n), int(replicas), float(rate), args.seed)))
        return

    cap = capacity()
    print(
        f"reference replica: KV batch {cap['kv_batch']}, decode-only "
        f"{cap['decode_only_output_tokens_per_s']:.0f} output tok/s "
        f"({cap['decode_only_rps']:.2f} req/s); with {PROMPT_TOKENS}-token prefills "
        f"{cap['capacity_rps']:.2f} req/s; simulated at {LOAD:.0%}: {cap['rate_rps']:.3f} req/s"
    )
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = []
    header = (
        f"{'replicas':>8} {'requests':>10} {'wall s':>8} {'CPU s':>8} {'req/CPU-s':>10} "
        f"{'peak RSS MB':>11} {'iter/step':>9} {'busy':>5} {'TTFT p95':>8}"
    )
    print(header)
    for replicas in (1, FLEET_REPLICAS):
        for n in sizes:
            env = dict(os.environ, PYTHONHASHSEED="0")
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--case",
                    f"{n},{replicas},{cap['rate_rps']!r}",
                    "--seed",
                    str(args.seed),
                ],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{replicas:>8} {row['requests']:>10,} {row['wall_s']:>8.2f} "
                f"{row['cpu_s']:>8.2f} {row['requests_per_cpu_s']:>10,.0f} "
                f"{row['peak_rss_mb']:>11.0f} {row['iterations_per_step']:>9.2f} "
                f"{row['gpu_busy']:>5.2f} {row['ttft_p95_s']:>8.3f}",
                flush=True,
            )
    scaling = {}
    for replicas in (1, FLEET_REPLICAS):
        mine = [r for r in rows if r["replicas"] == replicas]
        if len(mine) >= 2:
            lo, hi = mine[0], mine[-1]
            per_lo = lo["cpu_s"] / lo["requests"]
            per_hi = hi["cpu_s"] / hi["requests"]
            allowance = math.log(hi["requests"]) / math.log(lo["requests"])
            scaling[str(replicas)] = {
                "from_requests": lo["requests"],
                "to_requests": hi["requests"],
                "cpu_per_request_ratio": per_hi / per_lo,
                "n_log_n_allowance": allowance,
            }
            print(
                f"{replicas} replica(s): CPU per request at {hi['requests']:,} vs "
                f"{lo['requests']:,}: x{per_hi / per_lo:.2f} (n log n allows x{allowance:.2f})"
            )
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"capacity": cap, "load": LOAD, "cases": rows, "scaling": scaling}
    out_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
