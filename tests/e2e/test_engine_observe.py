"""gpuwise.observe against the real local vLLM replica and a real Prometheus scraping it.

Named to sort before test_local_engine.py, whose last test stops the shared replica.
"""

from __future__ import annotations

import asyncio
import math
import time

import httpx
import pytest
from engine_load import closed_loop, gauge

from gpuwise.live.local_engine import Replica
from gpuwise.live.prometheus_server import PrometheusServer
from gpuwise.observe import PrometheusClient, signals_from_prometheus, signals_from_scrape

pytestmark = [pytest.mark.engine, pytest.mark.prometheus]

REQUESTS = 8
MAX_TOKENS = 24
SCRAPED_TIMEOUT_S = 30.0


def test_observe_reads_the_real_engine_through_prometheus_and_directly(
    replica: Replica, prometheus: PrometheusServer
) -> None:
    t0 = time.time()
    report = asyncio.run(
        closed_loop(
            replica.base_url,
            concurrency=4,
            max_tokens=MAX_TOKENS,
            max_requests=REQUESTS,
            deadline_s=120.0,
        )
    )
    assert len(report.ok) == REQUESTS, report.errors[:3]
    instance = f'instance="127.0.0.1:{replica.port}"'
    direct = gauge(
        httpx.get(replica.metrics_url, timeout=5.0, trust_env=False).text,
        "vllm:generation_tokens_total",
    )
    client = PrometheusClient(prometheus.base_url, timeout_s=5.0)
    deadline = time.monotonic() + SCRAPED_TIMEOUT_S
    while time.monotonic() < deadline:  # until Prometheus holds the post-load counters
        res = client.query(f"vllm:generation_tokens_total{{{instance}}}")
        if res and res[0][1] == direct:
            break
        time.sleep(0.25)
    else:
        pytest.fail(f"Prometheus never scraped generation_tokens_total = {direct}")
    window_s = float(math.ceil(time.time() - t0) + 2)

    obs = signals_from_prometheus(client, instance, window_s)
    assert obs.dialect.key == "vllm-v1", obs.dialect
    assert not obs.unreadable, obs.unreadable
    [s] = obs.signals
    print(f"\nsignals over {window_s:g} s: {s}")
    assert s.deployment == "tiny" and s.replicas_ready == 1.0
    assert s.queue_depth == 0.0 and s.running == 0.0
    assert s.completed_rps > 0 and s.errors_per_s == 0.0
    # every request generated exactly MAX_TOKENS (ignore_eos); rate() extrapolation is per
    # series, hence the tolerance
    assert s.output_tokens_per_s / s.completed_rps == pytest.approx(MAX_TOKENS, rel=0.1)
    assert math.isfinite(s.ttft_p50_s) and s.ttft_p50_s <= s.ttft_p95_s <= s.ttft_p99_s
    [(_, theirs)] = client.query(
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(vllm:time_to_first_token_seconds_bucket{{{instance}}}[{window_s:g}s])))"
    )
    assert s.ttft_p95_s == pytest.approx(theirs)
    assert math.isnan(s.gpu_busy)
    assert any("gpu_busy: vLLM exports no GPU utilisation" in m for m in obs.missing)
    client.close()

    scraped = signals_from_scrape([replica.metrics_url], window_s=1.0, timeout_s=5.0)
    assert scraped.dialect.key == "vllm-v1" and not scraped.unreadable
    [d] = scraped.signals
    assert d.replicas_ready == 1.0 and d.queue_depth == 0.0 and d.completed_rps == 0.0
