"""Build the offline HuggingFace-style profiling cache that Vidur 0.0.26 reads.

The PyPI wheel ships no profiling data and downloads it from HuggingFace datasets at run time,
which fails offline. ``huggingface_hub.snapshot_download`` with ``HF_HUB_OFFLINE=1`` resolves a
dataset from a local cache laid out as ``datasets--<org>--<name>/refs/main`` (a 40-hex revision
id H) and ``snapshots/H/<files>``. This script lays the shared Vidur CSVs out that way (as in
/work/shared/reference/simulators.md, "Running Vidur here"), xz-compressed, for the one complete
offline profile set: Llama-2-70B, TP 2, A100, network ``a100_dgx``. Usage:

    python benchmarks/vidur/make_cache.py [--shared ../shared/data] [--cache DIR]

Then run Vidur with ``--random_forrest_execution_time_predictor_config_cache_dir DIR`` and the
dataset names printed at the end (``local/llama-2-70b-hf-a100``, ``local/a100-dgx``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHARED = ROOT.parent / "shared" / "data"
DEFAULT_CACHE = ROOT / "benchmarks" / "out" / "vidur_cache"

COMPUTE_DATASET = "local/llama-2-70b-hf-a100"
NETWORK_DATASET = "local/a100-dgx"

# (dataset id, files in the shared profiling folder, config.json contents)
DATASETS = (
    (
        COMPUTE_DATASET,
        "compute",
        {
            "mlp.csv.xz": "compute/a100/meta-llama/Llama-2-70b-hf/mlp.csv",
            "attention.csv.xz": "compute/a100/meta-llama/Llama-2-70b-hf/attention.csv",
        },
        {"model": "meta-llama/Llama-2-70b-hf", "device_sku": "a100"},
    ),
    (
        NETWORK_DATASET,
        "network",
        {
            "all_reduce.csv.xz": "network/a100_dgx/all_reduce.csv",
            "send_recv.csv.xz": "network/a100_dgx/send_recv.csv",
        },
        {"sku": "a100_dgx"},
    ),
)


def _revision(sources: dict[str, Path], config: dict) -> str:
    """A stable 40-hex revision id: the SHA-1 of the inputs, so a changed CSV is a new snapshot."""
    h = hashlib.sha1()
    h.update(json.dumps(config, sort_keys=True).encode())
    for name in sorted(sources):
        h.update(name.encode())
        h.update(sources[name].read_bytes())
    return h.hexdigest()


def build_cache(shared: Path, cache: Path) -> dict[str, str]:
    """Write the two datasets under ``cache/profiling_data/{compute,network}``; return ids."""
    prof = shared / "benchmarks" / "vidur_profiling"
    if not prof.is_dir():
        raise SystemExit(f"{prof}: no Vidur profiling folder (give --shared PATH/TO/shared/data)")
    out: dict[str, str] = {}
    for dataset, kind, files, config in DATASETS:
        sources = {dst: prof / src for dst, src in files.items()}
        missing = [str(p) for p in sources.values() if not p.is_file()]
        if missing:
            raise SystemExit(f"missing profiling CSVs: {', '.join(missing)}")
        org, name = dataset.split("/")
        repo = cache / "profiling_data" / kind / f"datasets--{org}--{name}"
        rev = _revision(sources, config)
        snap = repo / "snapshots" / rev
        snap.mkdir(parents=True, exist_ok=True)
        for dst, src in sources.items():
            target = snap / dst
            if not target.is_file():
                tmp = target.with_suffix(".tmp")
                tmp.write_bytes(lzma.compress(src.read_bytes(), preset=6))
                tmp.replace(target)
        (snap / "config.json").write_text(json.dumps(config), encoding="utf-8")
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(rev, encoding="utf-8")
        out[dataset] = str(snap)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--shared",
        type=Path,
        default=DEFAULT_SHARED,
        help="the shared data folder (holds benchmarks/vidur_profiling)",
    )
    ap.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="Vidur cache_dir to build (default benchmarks/out/vidur_cache)",
    )
    args = ap.parse_args(argv)
    for dataset, snap in build_cache(args.shared.resolve(), args.cache.resolve()).items():
        print(f"{dataset}: {snap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
