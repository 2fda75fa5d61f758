"""Save real `/metrics` texts of the local engine for parser tests (not collected by pytest).

    .venv/bin/python tests/e2e/capture_expositions.py [OUT_DIR]

Starts one replica (max-num-seqs 4) through `LocalFleet`, saves its exposition fresh (no request
yet), under load (12 clients, so requests wait) and idle again after the load, then stops it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
from engine_load import closed_loop, gauge

from gpuwise.live.local_engine import VLLM_VERSION, LocalFleet

OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "expositions"


def scrape(url: str) -> str:
    return httpx.get(url, timeout=5.0, trust_env=False).text


def main(out_dir: Path = OUT_DIR) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"vllm-{VLLM_VERSION}-cpu-tiny"
    with LocalFleet(1, max_num_seqs=4) as fleet:
        replica = fleet.replicas[0]
        print(f"replica ready in {replica.ready_s:.1f} s on {replica.base_url}")
        texts = {"fresh": scrape(replica.metrics_url)}

        async def queue_visible() -> bool:
            text = scrape(replica.metrics_url)
            if (gauge(text, "vllm:num_requests_waiting") or 0) > 0 and (
                gauge(text, "vllm:num_requests_running") or 0
            ) > 0:
                texts["load"] = text
                return True
            return False

        report = asyncio.run(
            closed_loop(
                replica.base_url,
                concurrency=12,
                max_tokens=400,
                max_requests=120,
                deadline_s=40.0,
                stop=queue_visible,
                stop_poll_s=0.1,
            )
        )
        print(f"load: {len(report.results)} requests, {len(report.errors)} errors")
        if "load" not in texts:
            print("never saw a waiting request; no load exposition", file=sys.stderr)
            return 1
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            text = scrape(replica.metrics_url)
            if gauge(text, "vllm:num_requests_running") == 0:
                texts["idle"] = text
                break
            time.sleep(0.2)
    for kind, text in texts.items():
        path = out_dir / f"{prefix}-{kind}.txt"
        path.write_text(text)
        print(f"wrote {path} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR))
