"""Scrape engines' ``/metrics`` directly, twice, a window apart.

For a fleet without Prometheus (a laptop, a CI job, the local fleet before its Prometheus is up)
the only way to see *recent* behaviour is to scrape each replica at the start and at the end of
a window and difference the counters. All replicas are scraped concurrently so their snapshots
describe the same instant. A replica that does not answer is an outcome (it is recorded and the
others still count), never an exception: a dead replica is exactly what a diagnosis must see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from gpuwise.errors import UserError
from gpuwise.observe.exposition import Snapshot, parse_exposition

__all__ = ["scrape", "scrape_once"]

MAX_WORKERS = 16


def _fetch(
    client: httpx.Client, url: str, target: Mapping[str, str], clock: Callable[[], float]
) -> tuple[Snapshot | None, list[str]]:
    try:
        resp = client.get(url)
    except httpx.TimeoutException:
        timeout = client.timeout.read or client.timeout.connect
        return None, [f"{url}: did not answer within {timeout:g} s"]
    except httpx.ConnectError as exc:
        return None, [f"{url}: did not answer ({_reason(exc)})"]
    except httpx.HTTPError as exc:
        return None, [f"{url}: {type(exc).__name__}: {exc}"]
    t_s = clock()
    if resp.status_code != 200:
        return None, [f"{url}: HTTP {resp.status_code} {resp.reason_phrase}"]
    return parse_exposition(resp.text, t_s=t_s, source=url, target=target)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused: nothing listening?"
    return text


def scrape_once(
    urls: Sequence[str],
    *,
    timeout_s: float = 5.0,
    targets: Sequence[Mapping[str, str]] | None = None,
    client: httpx.Client | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[list[Snapshot | None], list[str]]:
    """One concurrent scrape of every URL; (snapshot or None per URL, problems)."""
    if not urls:
        return [], []
    own = client is None
    # trust_env=False: a proxy from the environment must not intercept a replica's /metrics.
    c = client or httpx.Client(timeout=timeout_s, trust_env=False)
    tgts = list(targets) if targets is not None else [{} for _ in urls]
    try:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(urls))) as pool:
            results = list(
                pool.map(lambda ut: _fetch(c, ut[0], ut[1], clock), zip(urls, tgts, strict=True))
            )
    finally:
        if own:
            c.close()
    snaps = [s for s, _ in results]
    problems = [p for _, ps in results for p in ps]
    return snaps, problems


def scrape(
    urls: Sequence[str],
    window_s: float,
    timeout_s: float = 5.0,
    *,
    targets: Sequence[Mapping[str, str]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> tuple[list[Snapshot | None], list[Snapshot | None], list[str]]:
    """Scrape every URL now and again ``window_s`` later.

    Returns (start snapshots, end snapshots, errors), the snapshot lists aligned with ``urls``
    (None where a replica did not answer). ``targets`` gives each replica's identity labels
    (``pod``, ``namespace``) for the DCGM join.
    """
    if not window_s > 0:
        raise UserError(f"the scrape window must be positive, got {window_s:g} s")
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        t0 = clock()
        start, errors = scrape_once(
            urls, timeout_s=timeout_s, targets=targets, client=client, clock=clock
        )
        sleep(max(0.0, window_s - (clock() - t0)))
        end, more = scrape_once(
            urls, timeout_s=timeout_s, targets=targets, client=client, clock=clock
        )
    return start, end, [f"start: {e}" for e in errors] + [f"end: {e}" for e in more]
