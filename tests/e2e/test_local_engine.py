"""End to end against a real vLLM replica and a real Prometheus (see conftest.py).

The tests share one replica and one Prometheus (session fixtures in conftest.py); the last
test starts and stops its own pair to check that stopping by PID leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from engine_load import closed_loop, gauge, stream_completion

from gpuwise.live.local_engine import (
    Replica,
    ensure_tiny_model,
    pid_alive,
    process_group_alive,
    start_replica,
    stop_replica,
)
from gpuwise.live.prometheus_server import PrometheusServer, start_prometheus, stop_prometheus

pytestmark = [pytest.mark.engine]

LOAD_CONCURRENCY = 12  # three times MAX_NUM_SEQS
LOAD_MAX_TOKENS = 400  # with a short prompt, inside max_model_len 512
LOAD_MAX_REQUESTS = 120
LOAD_DEADLINE_S = 40.0


def _prom_query(server: PrometheusServer, promql: str) -> list[dict]:
    response = httpx.get(f"{server.base_url}/api/v1/query", params={"query": promql}, timeout=5.0)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_streaming_completion_gives_exactly_max_tokens(replica: Replica) -> None:
    async def go():
        async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:
            return await stream_completion(client, replica.base_url, max_tokens=37)

    result = asyncio.run(go())
    assert result.error is None, result.error
    assert result.token_ids == 37
    assert result.usage_completion_tokens == 37
    assert result.finish_reason == "length"
    # An event may carry several tokens (held-back partial characters), never zero tokens.
    assert 1 <= result.chunks <= 37


def test_metrics_expose_the_scheduler_gauges(replica: Replica) -> None:
    text = httpx.get(replica.metrics_url, timeout=5.0).text
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
    ):
        assert gauge(text, name) is not None, f"{name} missing from /metrics"


@pytest.mark.prometheus
def test_prometheus_scrapes_the_replica(replica: Replica, prometheus: PrometheusServer) -> None:
    instance = f"127.0.0.1:{replica.port}"
    series = _prom_query(prometheus, "vllm:num_requests_running")
    assert [s["metric"]["instance"] for s in series] == [instance]
    up = _prom_query(prometheus, f'up{{instance="{instance}"}}')
    assert [s["value"][1] for s in up] == ["1"]


@pytest.mark.prometheus
def test_more_requests_than_seqs_queue_and_prometheus_sees_it(
    replica: Replica, prometheus: PrometheusServer
) -> None:
    """The saturation case later tests build on: 12 clients against max-num-seqs 4 must show up as
    waiting requests at a real scrape, not only in our own polling."""
    instance = f"127.0.0.1:{replica.port}"
    queue_promql = f'max_over_time(vllm:num_requests_waiting{{instance="{instance}"}}[1m])'
    seen_direct = {"waiting": 0.0, "running": 0.0}

    async def prometheus_saw_queue() -> bool:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            try:
                text = (await client.get(replica.metrics_url)).text
                for key in seen_direct:
                    value = gauge(text, f"vllm:num_requests_{key}") or 0.0
                    seen_direct[key] = max(seen_direct[key], value)
                response = await client.get(
                    f"{prometheus.base_url}/api/v1/query",
                    params={"query": queue_promql},
                )
                result = response.json()["data"]["result"]
            except (httpx.HTTPError, ValueError, KeyError):
                return False
        return bool(result) and float(result[0]["value"][1]) > 0

    report = asyncio.run(
        closed_loop(
            replica.base_url,
            concurrency=LOAD_CONCURRENCY,
            max_tokens=LOAD_MAX_TOKENS,
            max_requests=LOAD_MAX_REQUESTS,
            deadline_s=LOAD_DEADLINE_S,
            stop=prometheus_saw_queue,
        )
    )
    print(
        f"load: {len(report.results)} requests ({len(report.errors)} errors) in "
        f"{report.duration_s:.1f} s; direct max waiting {seen_direct['waiting']:.0f}, "
        f"running {seen_direct['running']:.0f}"
    )
    assert report.stopped_early, (
        f"Prometheus never saw a waiting request in {report.duration_s:.0f} s "
        f"(direct max waiting {seen_direct['waiting']}); errors: {report.errors[:3]}"
    )
    assert report.ok, f"no request succeeded: {report.errors[:3]}"
    assert all(r.token_ids == LOAD_MAX_TOKENS for r in report.ok)
    assert seen_direct["running"] <= 4


def test_stop_by_pid_leaves_no_process(e2e_run_dir: Path) -> None:
    """Starts its own replica and Prometheus, so the session's stay up for other test files."""
    own = start_replica(max_num_seqs=2, model_dir=ensure_tiny_model(), run_dir=e2e_run_dir)
    prom = start_prometheus([own.port], run_dir=e2e_run_dir)
    assert stop_prometheus(prom) in ("terminated", "killed")
    assert stop_replica(own) in ("terminated", "killed")
    for pid in (own.pid, prom.pid):
        assert not pid_alive(pid)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not process_group_alive(pid), f"a process of group {pid} outlived the stop"
    assert not own.pid_path.exists()
    assert not prom.pid_path.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{own.base_url}/health", timeout=2.0)
