"""Validate the replica performance model against Splitwise's measured Llama-2-70B times.

Fits the profile on the A100 rows only, then reports the error on the H100 rows as held out.
Prints a table and writes JSON; with ``--write-profile`` it also stores the fitted profile as the
built-in default. Usage:

    python benchmarks/perf_validation.py [--splitwise PATH] [--out benchmarks/out/perf.json]
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from gpuwise.catalog import get_gpu, get_model
from gpuwise.perf.calibrate import (
    IterationSample,
    decode_sample,
    fit_profile,
    prefill_sample,
    relative_errors,
)
from gpuwise.perf.model import ReplicaConfig
from gpuwise.perf.profile import PROFILE_DIR, Profile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPLITWISE = ROOT.parent / "shared/data/benchmarks/splitwise/perf_model.csv"
HARDWARE = {"a100-80gb": "a100-80gb", "h100-80gb": "h100-sxm"}


def load_samples(path: Path) -> dict[str, list[IterationSample]]:
    """Average repeated runs; one prefill and one decode sample per (hw, tp, prompt, batch, out)."""
    groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    with path.open() as f:
        for r in csv.DictReader(f):
            if r["model"] != "llama2-70b" or r["hardware"] not in HARDWARE:
                continue
            key = (
                r["hardware"],
                int(r["tensor_parallel"]),
                int(r["prompt_size"]),
                int(r["batch_size"]),
                int(r["token_size"]),
            )
            groups[key].append((float(r["prompt_time"]), float(r["token_time"])))
    model = get_model("llama-2-70b")
    out: dict[str, list[IterationSample]] = defaultdict(list)
    for (hw, tp, prompt, batch, tokens), runs in sorted(groups.items()):
        cfg = ReplicaConfig(
            model=model,
            gpu=get_gpu(HARDWARE[hw]),
            tp=tp,
            max_model_len=16384,
            max_num_batched_tokens=max(8192, prompt * batch),
        )
        prompt_s = float(np.mean([p for p, _ in runs])) / 1e3
        token_s = float(np.mean([t for _, t in runs])) / 1e3
        out[hw].append(prefill_sample(cfg, prompt, batch, prompt_s))
        # Mean context over the decode phase: the prompt plus half the generated tokens.
        out[hw].append(decode_sample(cfg, batch, prompt + tokens / 2.0, token_s))
    return out


def error_table(samples: list[IterationSample], profile: Profile) -> list[dict]:
    errs = relative_errors(samples, profile)
    rows = []
    for s, e in zip(samples, errs, strict=True):
        rows.append(
            {
                "gpu": s.config.gpu.name,
                "tp": s.config.tp,
                "kind": s.kind,
                "tokens": s.prefill_tokens or s.decode_seqs,
                "context": s.decode_context_tokens / max(s.decode_seqs, 1),
                "measured_ms": round(s.measured_s * 1e3, 2),
                "predicted_ms": round((1 + e) * s.measured_s * 1e3, 2),
                "rel_error": round(float(e), 4),
            }
        )
    return rows


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    out = {}
    for kind in ("prefill", "decode"):
        e = np.abs([r["rel_error"] for r in rows if r["kind"] == kind])
        out[kind] = {
            "n": int(e.size),
            "median_abs_rel": float(np.median(e)),
            "p90_abs_rel": float(np.percentile(e, 90)),
            "max_abs_rel": float(e.max()),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splitwise", type=Path, default=DEFAULT_SPLITWISE)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/perf_validation.json")
    ap.add_argument(
        "--write-profile",
        action="store_true",
        help="store the A100 fit as the built-in 'default' profile",
    )
    args = ap.parse_args()
    data = load_samples(args.splitwise)
    train, held = data["a100-80gb"], data["h100-80gb"]
    prof = fit_profile(
        train,
        Profile(),
        name="default",
        description="Roofline efficiencies fitted on Splitwise Llama-2-70B A100 (TP 2/4/8) "
        "prompt and per-token times; H100 rows held out.",
        fitted_on="Splitwise perf_model.csv (Mutinifni/splitwise-sim@8f99e7d), "
        "llama2-70b a100-80gb rows only",
    )
    rows_train, rows_held = error_table(train, prof), error_table(held, prof)
    s_train, s_held = summarize(rows_train), summarize(rows_held)
    print(f"fitted profile: { {k: v for k, v in prof.__dict__.items() if k != 'description'} }")
    print()
    print("| set | kind | n | median abs err | p90 abs err | max abs err |")
    print("|---|---|---|---|---|---|")
    for name, s in (("A100 (fit)", s_train), ("H100 (held out)", s_held)):
        for kind, v in s.items():
            print(
                f"| {name} | {kind} | {v['n']} | {v['median_abs_rel']:.1%} | "
                f"{v['p90_abs_rel']:.1%} | {v['max_abs_rel']:.1%} |"
            )
    print()
    print("H100 held-out rows by TP and kind (median abs err):")
    for tp in (2, 4, 8):
        for kind in ("prefill", "decode"):
            e = [abs(r["rel_error"]) for r in rows_held if r["tp"] == tp and r["kind"] == kind]
            print(f"  tp {tp} {kind:7s} {np.median(e):6.1%}  (n={len(e)})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "profile": prof.__dict__,
                "fit": s_train,
                "held_out": s_held,
                "rows": rows_train + rows_held,
            },
            indent=1,
        )
    )
    print(f"\nwrote {args.out}")
    if args.write_profile:
        print(f"wrote {prof.save(PROFILE_DIR / 'default.yaml')}")


if __name__ == "__main__":
    main()
