"""The doctor, cost and dashboards against a real vLLM fleet and a real Prometheus.

Three fleets a DevOps engineer meets: a saturated replica (more concurrent requests than
max-num-seqs), an over-provisioned fleet (three replicas, a trickle of load) and a healthy one.
The doctor runs as a user runs it, through the CLI, on live metrics.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from engine_load import closed_loop

from gpuwise.deploy.observability import grafana_dashboard, views_from_resolved
from gpuwise.live.local_engine import Replica, ensure_tiny_model, start_replica, stop_replica
from gpuwise.live.prometheus_server import PrometheusServer
from gpuwise.resolve import resolve_spec

pytestmark = [pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests/data/specs/tiny-local.yaml"
SELECTOR = '{model_name="tiny"}'


def gpuwise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpuwise", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


class Load:
    """Closed-loop load in a background thread, bounded in count and time."""

    def __init__(
        self, base_url: str, concurrency: int, max_tokens: int, max_requests: int, deadline_s: float
    ) -> None:
        self.report = None
        self.stop = threading.Event()  # set on exit: in-flight requests finish, no new ones
        self._t = threading.Thread(
            target=self._run,
            args=(base_url, concurrency, max_tokens, max_requests, deadline_s),
            daemon=True,
        )

    def _run(self, *a: object) -> None:
        url, c, t, n, d = a

        async def stop() -> bool:
            return self.stop.is_set()

        self.report = asyncio.run(
            closed_loop(
                url,
                concurrency=c,
                max_tokens=t,
                max_requests=n,
                deadline_s=d,
                stop=stop,
                stop_poll_s=0.2,
            )
        )

    def __enter__(self) -> Load:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._t.join(timeout=120)


def wait_for(url: str, metric: str, at_least: float, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    seen = 0.0
    while time.monotonic() < deadline:
        text = httpx.get(url, timeout=5.0).text
        seen = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(metric + "{")
        )
        if seen >= at_least:
            return seen
        time.sleep(0.5)
    return seen


def findings(doc: dict) -> dict[str, dict]:
    return {f["rule"]: f for f in doc["findings"]}


def test_saturated_replica_queueing_is_found(
    replica: Replica, prometheus: PrometheusServer
) -> None:
    # The tiny model serves ~8 such requests/s: the load is bounded by time and stopped as
    # soon as the doctor has answered.
    with Load(
        replica.base_url, concurrency=12, max_tokens=300, max_requests=600, deadline_s=45.0
    ) as load:
        assert wait_for(replica.metrics_url, "vllm:num_requests_waiting", 1, 30.0) >= 1
        time.sleep(6.0)  # let Prometheus (1 s scrapes) see several samples of the queue
        r = gpuwise(
            "doctor",
            "--prometheus",
            prometheus.base_url,
            "--selector",
            SELECTOR,
            "--window",
            "5",
            "--spec",
            str(SPEC),
            "--json",
        )
        mem = Path("/proc/meminfo").read_text()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "queueing-saturated" in findings(doc), r.stdout
    q = findings(doc)["queueing-saturated"]
    assert q["evidence"]["mean_waiting"] > 0
    assert q["evidence"]["running_share_of_max_num_seqs"] >= 0.9
    assert q["usd_per_month_at_stake"] > 0
    # the host-memory view a CPU-era dashboard shows stays green while requests queue
    total = int(mem.split("MemTotal:")[1].split()[0])
    avail = int(mem.split("MemAvailable:")[1].split()[0])
    assert avail / total > 0.2
    assert all(res.error is None for res in load.report.results)


def test_dashboard_queries_run_on_real_prometheus(
    replica: Replica, prometheus: PrometheusServer
) -> None:
    views = views_from_resolved(resolve_spec(SPEC))
    dash = grafana_dashboard(views)
    answered = 0
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "1m")
            body = httpx.get(
                f"{prometheus.base_url}/api/v1/query", params={"query": expr}, timeout=10.0
            ).json()
            assert body["status"] == "success", (panel["title"], expr, body)
            if "DCGM" not in expr and body["data"]["result"]:
                answered += 1
    assert answered >= 10  # every vLLM panel has data; DCGM has no exporter on a CPU machine


def test_healthy_fleet_has_no_high_findings(replica: Replica, prometheus: PrometheusServer) -> None:
    time.sleep(3.0)  # the queue of the previous test has drained
    with Load(replica.base_url, concurrency=2, max_tokens=64, max_requests=400, deadline_s=25.0):
        time.sleep(8.0)
        r = gpuwise(
            "doctor",
            "--prometheus",
            prometheus.base_url,
            "--selector",
            SELECTOR,
            "--window",
            "6",
            "--spec",
            str(SPEC),
            "--json",
        )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    high = [f for f in doc["findings"] if f["severity"] == "high"]
    assert not high, high


def test_over_provisioned_fleet_reports_idle_dollars(replica: Replica, e2e_run_dir: Path) -> None:
    extra = []
    try:
        for _ in range(2):
            extra.append(
                start_replica(max_num_seqs=4, model_dir=ensure_tiny_model(), run_dir=e2e_run_dir)
            )
        urls = [f"{x.base_url}/metrics" for x in [replica, *extra]]
        with Load(replica.base_url, concurrency=1, max_tokens=16, max_requests=60, deadline_s=20.0):
            args = ["doctor", "--window", "8", "--spec", str(SPEC), "--json"]
            for u in urls:
                args += ["--scrape", u]
            r = gpuwise(*args)
        cost = gpuwise(
            "cost",
            "--scrape",
            urls[0],
            "--scrape",
            urls[1],
            "--scrape",
            urls[2],
            "--window",
            "3",
            "--spec",
            str(SPEC),
            "--json",
        )
    finally:
        for x in extra:
            stop_replica(x)
    assert r.returncode == 0, r.stderr
    f = findings(json.loads(r.stdout))["over-provisioned"]
    assert f["evidence"]["replicas_ready"] == 3
    assert f["usd_per_month_at_stake"] > 0
    assert cost.returncode == 0, cost.stderr
    d = json.loads(cost.stdout)["deployments"][0]
    # three replicas of one L4 each, priced from the spec, over the scrape window
    assert d["gpu_hours_paid"] == pytest.approx(3 * d["window_s"] / 3600, rel=1e-6)
    assert d["usd_total"] == pytest.approx(d["gpu_hours_paid"] * d["usd_per_gpu_hour"])


def test_prometheus_down_is_a_clear_error() -> None:
    r = gpuwise("doctor", "--prometheus", "http://127.0.0.1:9", "--spec", str(SPEC))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "127.0.0.1:9" in r.stderr
