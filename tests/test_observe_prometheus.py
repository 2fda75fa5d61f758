"""signals_from_prometheus against a real Prometheus scraping recorded vLLM expositions.

A tiny local HTTP server serves the real vLLM 0.32.0 captures as ``/metrics`` (the "fresh" one,
then the "idle" one, as if the engine had served 12 requests in between), and Debian's
Prometheus scrapes it every second. This checks the PromQL, the name discovery and the
quantile arithmetic against Prometheus itself, without the engine; the engine-backed test is in
tests/e2e.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gpuwise.observe import PrometheusClient, signals_from_prometheus

pytestmark = [pytest.mark.prometheus]

DATA = Path(__file__).parent / "data" / "expositions"
FRESH = (DATA / "vllm-0.32.0-cpu-tiny-fresh.txt").read_bytes()
IDLE = (DATA / "vllm-0.32.0-cpu-tiny-idle.txt").read_bytes()
WAIT_S = 30.0


def _serve(body: Callable[[], bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            data = body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return httpd, f"127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def prometheus_over_recordings(tmp_path: Path) -> Iterator[tuple[PrometheusClient, dict]]:
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        if os.environ.get("GPUWISE_E2E") == "1":
            pytest.fail("GPUWISE_E2E=1 but prometheus is not installed", pytrace=False)
        pytest.skip("prometheus is not installed (scripts/prometheus.sh install)")
    from gpuwise.live.prometheus_server import start_prometheus, stop_prometheus

    state = {"body": FRESH}
    httpd, target = _serve(lambda: state["body"])
    server = start_prometheus([target], run_dir=tmp_path, scrape_interval_s=1.0)
    client = PrometheusClient(server.base_url, timeout_s=5.0)
    try:
        yield client, state
    finally:
        client.close()
        stop_prometheus(server)
        httpd.shutdown()
        httpd.server_close()


def _wait_for(client: PrometheusClient, promql: str, ok: Callable[[float], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        res = client.query(promql)
        if res and ok(res[0][1]):
            return
        time.sleep(0.25)
    pytest.fail(f"Prometheus never answered {promql} as expected in {WAIT_S} s")


def test_signals_from_real_prometheus_match_its_own_promql(prometheus_over_recordings) -> None:
    client, state = prometheus_over_recordings
    total = 'vllm:generation_tokens_total{job="vllm"}'
    _wait_for(client, total, lambda v: v == 0.0)  # "fresh" scraped
    time.sleep(1.2)  # a second fresh sample, so the window holds the increase from zero
    state["body"] = IDLE
    _wait_for(client, total, lambda v: v == 4800.0)  # "idle" scraped

    obs = signals_from_prometheus(client, 'job="vllm"', window_s=30.0)
    assert obs.dialect.key == "vllm-v1" and obs.dialect.version_range == ">0.30.0"
    assert not obs.unreadable, obs.unreadable
    [s] = obs.signals
    assert s.deployment == "tiny" and s.interval_s == 30.0
    assert s.replicas_ready == 1.0
    assert (s.queue_depth, s.running, s.kv_usage, s.kv_usage_max) == (0.0, 0.0, 0.0, 0.0)
    assert s.output_tokens_per_s > 0 and s.completed_rps > 0 and s.errors_per_s == 0.0
    # rate() extrapolates every series of one scrape by the same factor, so ratios are exact
    assert s.output_tokens_per_s / s.completed_rps == pytest.approx(4800 / 12)
    assert s.prompt_tokens_per_s / s.completed_rps == pytest.approx(72 / 12)
    # bucket increases fresh -> idle: 4 in (0.02, 0.04], 4 in (0.5, 0.75], 4 in (0.75, 1.0]
    assert s.ttft_p50_s == pytest.approx(0.625)  # rank 6: 0.5 + 0.25 * (6 - 4) / 4
    assert s.ttft_p95_s == pytest.approx(0.9625)  # rank 11.4: 0.75 + 0.25 * (11.4 - 8) / 4
    for q, field in ((0.5, "ttft_p50_s"), (0.95, "ttft_p95_s"), (0.95, "e2e_p95_s")):
        name = "time_to_first_token" if field.startswith("ttft") else "e2e_request_latency"
        [(_, theirs)] = client.query(
            f"histogram_quantile({q}, sum by (le) "
            f'(rate(vllm:{name}_seconds_bucket{{job="vllm"}}[30s])))'
        )
        assert getattr(s, field) == pytest.approx(theirs), field
    assert math.isnan(s.gpu_busy)
    assert any("tiny: gpu_busy: vLLM exports no GPU utilisation" in m for m in obs.missing)
    assert any("no DCGM exporter series" in n for n in obs.notes)

    now = time.time()
    [(labels, points)] = client.query_range(total, now - 5, now, 1)
    assert labels["job"] == "vllm" and points[-1][1] == 4800.0


def test_a_selector_matching_nothing_is_reported(prometheus_over_recordings) -> None:
    client, _ = prometheus_over_recordings
    obs = signals_from_prometheus(client, 'job="nope"', window_s=30.0)
    assert obs.signals == [] and obs.dialect.key == "unknown"
    assert 'no engine series match {job="nope"}' in obs.unreadable[0]
