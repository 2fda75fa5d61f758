"""Read serving metrics and turn them into canonical ``Signals``.

Three sources, one result type (``Observation``):

* ``signals_from_files`` - saved expositions (``curl .../metrics > f``), one or two per replica;
* ``signals_from_scrape`` - engines' ``/metrics`` scraped directly at both ends of a window;
* ``signals_from_prometheus`` - a Prometheus server's HTTP API (``rate``, ``avg_over_time``).

Engines: vLLM (V0 and V1 names), SGLang, TGI, Triton (with the TensorRT-LLM backend), llama.cpp;
GPU busy from the DCGM exporter joined to the engine pods. Unknown or partial input never raises:
it is reported in ``Observation.unreadable`` / ``missing``. Only a Prometheus that cannot be
reached at all raises ``ObserveError`` (a ``UserError``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

from gpuwise.observe.dialects import DIALECTS, Dialect, detect_dialect
from gpuwise.observe.exposition import Snapshot, parse_exposition, read_exposition
from gpuwise.observe.observation import Observation
from gpuwise.observe.prometheus import ObserveError, PrometheusClient
from gpuwise.observe.prometheus import signals_from_prometheus as _from_prometheus
from gpuwise.observe.scrape import scrape, scrape_once
from gpuwise.observe.window import ReplicaWindow, histogram_quantile, observe_window

__all__ = [
    "DIALECTS",
    "Dialect",
    "Observation",
    "ObserveError",
    "PrometheusClient",
    "ReplicaWindow",
    "Snapshot",
    "detect_dialect",
    "histogram_quantile",
    "observe_window",
    "parse_exposition",
    "read_exposition",
    "scrape",
    "scrape_once",
    "signals_from_files",
    "signals_from_prometheus",
    "signals_from_scrape",
]

PathLike = str | os.PathLike[str]


def _read_all(
    paths: Sequence[PathLike], t_s: float, targets: Sequence[Mapping[str, str]] | None
) -> tuple[list[Snapshot | None], list[str]]:
    snaps, problems = [], []
    for i, p in enumerate(paths):
        target = targets[i] if targets and i < len(targets) else None
        snap, more = read_exposition(os.fspath(p), t_s=t_s, target=target)
        snaps.append(snap)
        problems += more
    return snaps, problems


def signals_from_files(
    paths_start: Sequence[PathLike] | None,
    paths_end: Sequence[PathLike],
    *,
    window_s: float | None = None,
    t_s: float | None = None,
    deployment: str | None = None,
    model: str | None = None,
    targets: Sequence[Mapping[str, str]] | None = None,
    dcgm_paths: Sequence[PathLike] = (),
) -> Observation:
    """Signals from saved expositions, one file per replica at each end of the window.

    ``paths_start[i]`` and ``paths_end[i]`` are the same replica; with no start files (or
    ``None``) only gauges and lifetime quantiles can be read. Files carry no time, so rates need
    ``window_s``. ``targets[i]`` gives replica ``i``'s pod and namespace for the DCGM join;
    ``dcgm_paths`` are DCGM exporter expositions read at the end of the window.
    """
    start_paths = list(paths_start or [])
    end_paths = list(paths_end)
    t_end = math.nan if t_s is None else t_s
    t_start = t_end - window_s if (window_s is not None and t_s is not None) else math.nan
    ends, problems = _read_all(end_paths, t_end, targets)
    starts, more = _read_all(start_paths, t_start, targets)
    problems += more
    if start_paths and len(start_paths) != len(end_paths):
        problems.append(
            f"{len(start_paths)} start files for {len(end_paths)} end files: pairing by position"
        )
    dcgm, more = _read_all(list(dcgm_paths), t_end, None)
    problems += more
    replicas = [
        ReplicaWindow(os.fspath(end_paths[i]), starts[i] if i < len(starts) else None, e)
        for i, e in enumerate(ends)
    ]
    return observe_window(
        replicas,
        deployment=deployment,
        model=model,
        window_s=window_s,
        t_s=t_s,
        dcgm=[d for d in dcgm if d is not None],
        unreadable=problems,
    )


def signals_from_scrape(
    urls: Sequence[str],
    window_s: float,
    *,
    timeout_s: float = 5.0,
    deployment: str | None = None,
    model: str | None = None,
    targets: Sequence[Mapping[str, str]] | None = None,
    dcgm_urls: Sequence[str] = (),
) -> Observation:
    """Scrape every replica's ``/metrics`` now and ``window_s`` later; Signals per deployment.

    A replica that does not answer is reported in ``unreadable`` and left out; the window's
    length is measured from the scrape times. DCGM exporters are scraped at the end.
    """
    start, end, errors = scrape(urls, window_s, timeout_s, targets=targets)
    dcgm, more = scrape_once(list(dcgm_urls), timeout_s=timeout_s)
    replicas = [ReplicaWindow(u, s, e) for u, s, e in zip(urls, start, end, strict=True)]
    return observe_window(
        replicas,
        deployment=deployment,
        model=model,
        dcgm=[d for d in dcgm if d is not None],
        unreadable=errors + more,
    )


def signals_from_prometheus(
    prometheus: str | PrometheusClient,
    deployment_selector: str,
    window_s: float,
    at: float | None = None,
    *,
    deployment: str | None = None,
    model: str | None = None,
    timeout_s: float = 5.0,
    retries: int = 2,
) -> Observation:
    """Signals from a Prometheus server (URL or client) for series matching the selector.

    Raises ``ObserveError`` when Prometheus cannot be reached or answers too slowly.
    """
    if isinstance(prometheus, PrometheusClient):
        return _from_prometheus(
            prometheus, deployment_selector, window_s, at, deployment=deployment, model=model
        )
    with PrometheusClient(prometheus, timeout_s=timeout_s, retries=retries) as client:
        return _from_prometheus(
            client, deployment_selector, window_s, at, deployment=deployment, model=model
        )
