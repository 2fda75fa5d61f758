"""The load generator: open-loop arrivals or closed-loop concurrency against an OpenAI endpoint.

One asyncio event loop and one ``httpx.AsyncClient`` send every request; each is a streaming
``POST /v1/completions`` with ``max_tokens`` set to the request's output length and
``ignore_eos`` (a vLLM extension other servers ignore) so the length is exact. Streams are split
into events on "\\n" only (see ``sse``). A request never raises: refused and broken connections,
HTTP errors, timeouts and malformed streams are outcomes, counted by kind. What the run cannot
survive is an endpoint where nothing answers at all: the preflight (``GET /v1/models``, then
``/health``) turns that into a :class:`BenchError` with one clear sentence, and so does a run in
which every request failed to connect.

Everything is bounded: ``max_requests``, ``max_duration_s`` (no request is sent after it), and a
drain period after it (``drain_s``) at whose end requests still in flight are cancelled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import httpx
import numpy as np

from gpuwise.bench.metrics import BenchSummary, RequestRecord, summarize
from gpuwise.bench.prompts import TokenFit, prompt_text
from gpuwise.bench.schedule import Schedule, capped, fit_to_model_len
from gpuwise.bench.sse import SSEDecoder
from gpuwise.errors import UserError
from gpuwise.workload import Requests

__all__ = [
    "BenchConfig",
    "BenchError",
    "BenchResult",
    "ServerInfo",
    "Session",
    "normalize_endpoint",
    "run_bench",
]

DEFAULT_MAX_REQUESTS = 100
DEFAULT_MAX_DURATION_S = 60.0
DEFAULT_TIMEOUT_S = 60.0
PREFLIGHT_TIMEOUT_S = 10.0
PROBE_WORDS = (8, 40)  # two prompt lengths measure tokens per word and the server's overhead

ProgressFn = Callable[[RequestRecord], None]


class BenchError(UserError):
    """The endpoint cannot be benchmarked (nothing answers, wrong model, needs a key)."""


# --------------------------------------------------------------------------------------------------
# endpoint and server


def normalize_endpoint(endpoint: str) -> str:
    """The server's base URL: accepts ``host:port``, ``http://h:p``, ``.../v1``,
    ``.../v1/completions``; returns ``http://h:p`` (plus any path prefix of a gateway)."""
    url = endpoint.strip()
    if not url:
        raise UserError("the endpoint is empty; give e.g. http://127.0.0.1:8000")
    if "://" not in url:
        url = "http://" + url
    if not url.startswith(("http://", "https://")):
        raise UserError(f"endpoint '{endpoint}': only http:// and https:// URLs are supported")
    url = url.rstrip("/")
    for suffix in ("/v1/completions", "/v1/chat/completions", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
            break
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as err:
        raise UserError(f"endpoint '{endpoint}' is not a valid URL: {err}") from None
    return url


def describe_network_error(err: BaseException, timeout_s: float | None = None) -> str:
    """A few words a user understands: "connection refused", "no answer within 10 s"."""
    text = str(err) or type(err).__name__
    # httpx wraps the OS error (anyio's "All connection attempts failed" hides the errno).
    chain, seen = [], set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset"
    low = " ".join(str(e) for e in chain).lower()
    if isinstance(err, httpx.ConnectTimeout):
        return f"no connection within {timeout_s:g} s" if timeout_s else "connect timeout"
    if isinstance(err, httpx.TimeoutException):
        return f"connected, but no answer within {timeout_s:g} s" if timeout_s else "timeout"
    if "refused" in low:
        return "connection refused"
    if any(s in low for s in ("name or service", "nodename", "name resolution", "getaddrinfo")):
        return "cannot resolve the host name"
    if "unreachable" in low:
        return "network unreachable"
    if "reset" in low:
        return "connection reset"
    return f"{type(err).__name__}: {text}"


def nothing_answered(base_url: str, err: BaseException, timeout_s: float | None = None) -> str:
    return (
        f"nothing answered at {base_url}/v1/completions: "
        f"{describe_network_error(err, timeout_s)} (is the server running?)"
    )


@dataclass(frozen=True)
class ServerInfo:
    """What the preflight learned about the endpoint."""

    base_url: str
    model: str
    models: tuple[str, ...] = ()  # as listed by /v1/models ('' when not listed)
    max_model_len: int | None = None
    root: str | None = None  # vLLM: the model's path or hub id
    owned_by: str | None = None  # /v1/models "owned_by": "vllm" enables vLLM's extensions
    token_fit: TokenFit = field(default_factory=TokenFit)
    warnings: tuple[str, ...] = ()

    @property
    def is_vllm(self) -> bool:
        return (self.owned_by or "").lower() == "vllm"

    @property
    def completions_url(self) -> str:
        return f"{self.base_url}/v1/completions"

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:300]
        return str(body.get("message") or err)[:300]
    return str(body)[:300]


# --------------------------------------------------------------------------------------------------
# one request


def completion_body(
    model: str, prompt: str, max_tokens: int, *, stream: bool = True, token_ids: bool = False
) -> dict:
    """``token_ids`` asks vLLM to list the tokens of each event (an event may carry several
    when the API server falls behind the engine and coalesces them); only sent to vLLM."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": int(max_tokens),
        "ignore_eos": True,  # vLLM/SGLang extension: the exact length; others ignore it
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if token_ids:
        body["return_token_ids"] = True
    return body


def _on_event(rec: RequestRecord, payload: str, now_s: float) -> bool:
    """Apply one SSE payload to the record; True at "[DONE]". Raises ValueError if malformed."""
    if payload.strip() == "[DONE]":
        return True
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise ValueError(f"an event is not a JSON object: {payload[:80]!r}")
    if event.get("error"):
        err = event["error"]
        msg = err.get("message") if isinstance(err, dict) else err
        raise ValueError(f"the server reported an error mid-stream: {msg}")
    usage = event.get("usage")
    if isinstance(usage, dict):
        if usage.get("prompt_tokens") is not None:
            rec.prompt_tokens = int(usage["prompt_tokens"])
        if usage.get("completion_tokens") is not None:
            rec.completion_tokens = int(usage["completion_tokens"])
    for choice in event.get("choices") or ():
        text = choice.get("text") or ""
        ids = choice.get("token_ids")
        if isinstance(ids, list):
            k = len(ids)
            if k == 0:
                continue
        else:
            k = 1
            # A bare terminator (no text, a finish reason) after tokens is not a token.
            if not text and choice.get("finish_reason") and rec.token_times_s:
                continue
        if rec.first_token_s is None:
            rec.first_token_s = now_s
            rec.token_times_s.extend([now_s] * k)
        else:
            # k tokens in one event: spread them evenly over the gap since the previous event,
            # so per-token ITLs average to what the engine did (see metrics' module doc).
            prev = rec.token_times_s[-1]
            rec.token_times_s.extend(prev + (now_s - prev) * (j + 1) / k for j in range(k))
    return False


async def send_request(
    client: httpx.AsyncClient,
    info: ServerInfo,
    rec: RequestRecord,
    prompt: str,
    t0: float,
    timeout_s: float,
) -> RequestRecord:
    """Stream one completion into ``rec``; never raises except on cancellation."""
    body = completion_body(info.model, prompt, rec.output_tokens, token_ids=info.is_vllm)
    decoder = SSEDecoder()
    rec.sent_s = time.perf_counter() - t0
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", info.completions_url, json=body) as response:
                rec.http_status = response.status_code
                if response.status_code != 200:
                    await response.aread()
                    code = response.status_code
                    rec.outcome = (
                        "http_5xx" if code >= 500 else "http_4xx" if code >= 400 else "error"
                    )
                    rec.error = f"HTTP {code}: {_error_text(response)}"
                    return rec
                async for chunk in response.aiter_text():
                    now = time.perf_counter() - t0
                    for payload in decoder.feed(chunk):
                        _on_event(rec, payload, now)
                now = time.perf_counter() - t0
                for payload in decoder.flush():
                    _on_event(rec, payload, now)
        if not rec.token_times_s:
            rec.outcome, rec.error = "bad_response", "the stream ended without any token"
        else:
            if rec.completion_tokens is None:
                rec.completion_tokens = len(rec.token_times_s)
            rec.outcome = "ok"
    except (TimeoutError, httpx.TimeoutException) as err:
        rec.outcome = "timeout"
        rec.error = f"no complete answer within {timeout_s:g} s ({type(err).__name__})"
    except httpx.ConnectError as err:
        rec.outcome, rec.error = "connect", describe_network_error(err)
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.LocalProtocolError) as err:
        rec.outcome, rec.error = "disconnect", f"{type(err).__name__}: {err}"
    except ValueError as err:  # JSON that does not parse, an error event
        rec.outcome, rec.error = "bad_response", str(err)[:300]
    except Exception as err:  # noqa: BLE001 - a load generator counts failures, never crashes
        rec.outcome, rec.error = "error", f"{type(err).__name__}: {err}"[:300]
    finally:
        if rec.outcome != "pending":
            rec.end_s = time.perf_counter() - t0
    return rec


# --------------------------------------------------------------------------------------------------
# a session: client + preflight, then any number of load steps (bench runs one, calibrate several)


class Session:
    """An open client on one endpoint, preflighted; ``open_loop``/``closed_loop`` run load."""

    def __init__(
        self,
        endpoint: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_connections: int = 1000,
        probe_tokens: bool = True,
        salt: int | None = None,
    ) -> None:
        self.base_url = normalize_endpoint(endpoint)
        self.model = model
        self.probe = probe_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            headers=headers,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, connect=PREFLIGHT_TIMEOUT_S),
            trust_env=False,  # a benchmark of 127.0.0.1 must not go through an HTTP proxy
        )
        # Distinct prompt openings per run, so a rerun does not hit the previous run's prefixes.
        self.salt = random.SystemRandom().randrange(1 << 24) if salt is None else salt
        self._next_nonce = 0
        self.info: ServerInfo | None = None

    async def __aenter__(self) -> Session:
        try:
            self.info = await self._preflight()
        except BaseException:
            await self.client.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    # ---- preflight

    async def _preflight(self) -> ServerInfo:
        base = self.base_url
        warnings: list[str] = []
        models: list[dict[str, Any]] = []
        try:
            r = await self.client.get(f"{base}/v1/models", timeout=PREFLIGHT_TIMEOUT_S)
        except httpx.HTTPError as err:
            raise BenchError(nothing_answered(base, err, PREFLIGHT_TIMEOUT_S)) from None
        if r.status_code in (401, 403):
            raise BenchError(
                f"{base}/v1/models answered HTTP {r.status_code}: the endpoint wants "
                "credentials (pass --api-key)"
            )
        if r.status_code == 200:
            try:
                data = r.json().get("data") or []
                models = [m for m in data if isinstance(m, dict) and m.get("id")]
            except (ValueError, AttributeError):
                warnings.append(f"{base}/v1/models did not return a model list")
        else:
            try:
                h = await self.client.get(f"{base}/health", timeout=PREFLIGHT_TIMEOUT_S)
            except httpx.HTTPError as err:
                raise BenchError(nothing_answered(base, err, PREFLIGHT_TIMEOUT_S)) from None
            if h.status_code >= 500:
                raise BenchError(f"{base}/health answered HTTP {h.status_code}: not ready")
            warnings.append(f"{base}/v1/models answered HTTP {r.status_code}")
        ids = tuple(str(m["id"]) for m in models)
        model = self.model
        if model is None:
            if not ids:
                raise BenchError(
                    f"{base} does not list its models at /v1/models; pass --model NAME"
                )
            model = ids[0]
            if len(ids) > 1:
                warnings.append(f"the endpoint serves {', '.join(ids)}; using {model}")
        elif ids and model not in ids:
            served = ", ".join(ids)
            raise BenchError(f"model '{model}' is not served at {base} (it serves: {served})")
        entry = next((m for m in models if m.get("id") == model), {})
        max_len = entry.get("max_model_len")
        info = ServerInfo(
            base_url=base,
            model=model,
            models=ids,
            max_model_len=int(max_len) if isinstance(max_len, int | float) else None,
            root=str(entry["root"]) if entry.get("root") else None,
            owned_by=str(entry["owned_by"]) if entry.get("owned_by") else None,
            warnings=tuple(warnings),
        )
        if self.probe:
            fit, more = await self._probe_tokens(info)
            info = replace(info, token_fit=fit, warnings=info.warnings + more)
        return info

    async def _probe_tokens(self, info: ServerInfo) -> tuple[TokenFit, tuple[str, ...]]:
        """Two one-token completions measure the prompt tokens per word and the fixed part."""
        counts = []
        for words in PROBE_WORDS:
            body = completion_body(info.model, prompt_text(words, self._nonce()), 1, stream=False)
            try:
                r = await self.client.post(
                    info.completions_url, json=body, timeout=DEFAULT_TIMEOUT_S
                )
            except httpx.ConnectError as err:
                raise BenchError(nothing_answered(info.base_url, err)) from None
            except httpx.HTTPError as err:
                return TokenFit(), (f"token probe failed ({describe_network_error(err)})",)
            if 400 <= r.status_code < 500:
                raise BenchError(
                    f"{info.completions_url} refused a completion request: "
                    f"HTTP {r.status_code}: {_error_text(r)}"
                )
            try:
                counts.append(int(r.json()["usage"]["prompt_tokens"]))
            except (ValueError, KeyError, TypeError):
                return TokenFit(), (
                    f"token probe: no usage.prompt_tokens in the answer (HTTP {r.status_code}); "
                    "assuming one token per word plus one",
                )
        return TokenFit.from_probes(PROBE_WORDS[0], counts[0], PROBE_WORDS[1], counts[1]), ()

    def _nonce(self) -> int:
        self._next_nonce += 1
        return self.salt + self._next_nonce

    def prompt(self, input_tokens: int) -> str:
        assert self.info is not None
        return prompt_text(self.info.token_fit.words_for(input_tokens), self._nonce())

    # ---- load

    async def open_loop(
        self,
        schedule: Schedule,
        *,
        max_duration_s: float,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        drain_s: float | None = None,
        on_progress: ProgressFn | None = None,
    ) -> tuple[list[RequestRecord], float]:
        """Send each request at its scheduled time; returns the records and the wall time."""
        assert self.info is not None
        info = self.info
        due = schedule.send_times_s()
        inp, out = schedule.requests.input_tokens, schedule.requests.output_tokens
        records: list[RequestRecord] = []
        tasks: set[asyncio.Task[RequestRecord]] = set()
        t0 = time.perf_counter()
        for i in range(len(due)):
            at = float(due[i])
            if at >= max_duration_s:
                break
            rec = RequestRecord(i, int(inp[i]), int(out[i]), scheduled_s=at)
            prompt = self.prompt(rec.input_tokens)  # built before the wait, not after
            delay = at - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            records.append(rec)
            task = asyncio.create_task(send_request(self.client, info, rec, prompt, t0, timeout_s))
            if on_progress is not None:
                task.add_done_callback(lambda t: _report(t, on_progress))
            tasks.add(task)
        await _wait_until(tasks, t0 + max_duration_s + _drain_period(timeout_s, drain_s))
        return _finish(records), time.perf_counter() - t0

    async def closed_loop(
        self,
        *,
        concurrency: int,
        input_tokens: int,
        output_tokens: int,
        max_requests: int,
        max_duration_s: float,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        drain_s: float | None = None,
        on_progress: ProgressFn | None = None,
    ) -> tuple[list[RequestRecord], float]:
        """``concurrency`` workers, each sending its next request when the last one ended."""
        assert self.info is not None
        info = self.info
        records: list[RequestRecord] = []
        t0 = time.perf_counter()

        async def worker() -> None:
            while len(records) < max_requests and time.perf_counter() - t0 < max_duration_s:
                rec = RequestRecord(len(records), input_tokens, output_tokens)
                records.append(rec)
                await send_request(self.client, info, rec, self.prompt(input_tokens), t0, timeout_s)
                if on_progress is not None:
                    on_progress(rec)

        tasks = {asyncio.create_task(worker()) for _ in range(max(1, concurrency))}
        await _wait_until(tasks, t0 + max_duration_s + _drain_period(timeout_s, drain_s))
        return _finish(records), time.perf_counter() - t0


def _report(task: asyncio.Task[RequestRecord], fn: ProgressFn) -> None:
    if not task.cancelled() and task.exception() is None:
        fn(task.result())


def _drain_period(timeout_s: float, drain_s: float | None) -> float:
    """How long requests in flight may finish after the last send: by default one timeout."""
    return timeout_s if drain_s is None else drain_s


async def _wait_until(tasks: set[asyncio.Task[Any]], deadline: float) -> None:
    """Wait for ``tasks`` until the ``time.perf_counter()`` deadline; cancel what is left."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


def _finish(records: list[RequestRecord]) -> list[RequestRecord]:
    for rec in records:
        if rec.outcome == "pending":
            rec.outcome = "cancelled"
            rec.error = "still running when the run's time bound ended"
    return records


# --------------------------------------------------------------------------------------------------
# gpuwise bench


@dataclass(frozen=True)
class BenchConfig:
    """One ``gpuwise bench`` run. Give ``schedule`` (open loop) or ``concurrency`` (closed)."""

    endpoint: str
    schedule: Schedule | None = None
    concurrency: int | None = None
    input_tokens: int = 128  # closed loop only (a schedule carries its own lengths)
    output_tokens: int = 128
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    drain_s: float | None = None  # after max_duration_s; default timeout_s
    model: str | None = None
    api_key: str | None = None
    fit_model_len: bool = True  # clamp lengths that exceed the endpoint's max_model_len
    probe_tokens: bool = True

    def check(self) -> None:
        if (self.schedule is None) == (self.concurrency is None):
            raise UserError("give an arrival schedule or a --concurrency, not both and not none")
        if self.concurrency is not None and self.concurrency < 1:
            raise UserError("--concurrency must be at least 1")
        if self.max_requests < 1:
            raise UserError("--max-requests must be at least 1")
        if not self.max_duration_s > 0:
            raise UserError("--max-duration-s must be positive")
        if not self.timeout_s > 0:
            raise UserError("--timeout-s must be positive")
        if self.input_tokens < 1 or self.output_tokens < 1:
            raise UserError("--input-tokens and --output-tokens must be at least 1")


@dataclass
class BenchResult:
    config: BenchConfig
    server: ServerInfo
    mode: str  # "open-loop" | "closed-loop"
    source: str
    started_at: str  # ISO time, UTC
    wall_s: float
    records: list[RequestRecord]
    summary: BenchSummary
    clamped_requests: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self, *, requests: bool = True) -> dict[str, Any]:
        c = self.config
        out: dict[str, Any] = {
            "endpoint": self.server.completions_url,
            "model": self.server.model,
            "mode": self.mode,
            "source": self.source,
            "started_at": self.started_at,
            "wall_s": round(self.wall_s, 3),
            "limits": {
                "max_requests": c.max_requests,
                "max_duration_s": c.max_duration_s,
                "timeout_s": c.timeout_s,
                "concurrency": c.concurrency,
            },
            "server": {
                "models": list(self.server.models),
                "max_model_len": self.server.max_model_len,
                "root": self.server.root,
                "owned_by": self.server.owned_by,
            },
            "token_fit": asdict(self.server.token_fit),
            "clamped_requests": self.clamped_requests,
            "warnings": list(self.server.warnings) + self.warnings,
            "summary": asdict(self.summary),
        }
        if requests:
            out["requests"] = [r.as_dict() for r in self.records]
        return out


def run_bench(
    config: BenchConfig,
    *,
    on_start: Callable[[int], None] | None = None,
    on_progress: ProgressFn | None = None,
) -> BenchResult:
    """Run one benchmark to completion (bounded); see the module doc for what can raise."""
    config.check()
    return asyncio.run(_run_bench(config, on_start, on_progress))


async def _run_bench(
    config: BenchConfig,
    on_start: Callable[[int], None] | None,
    on_progress: ProgressFn | None,
) -> BenchResult:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    limit = max(16, config.concurrency or config.max_requests)
    async with Session(
        config.endpoint,
        model=config.model,
        api_key=config.api_key,
        max_connections=min(limit, 4096),
        probe_tokens=config.probe_tokens,
    ) as session:
        info = session.info
        assert info is not None
        warnings: list[str] = []
        clamped = 0
        if config.schedule is not None:
            sched = capped(config.schedule, config.max_requests, config.max_duration_s)
            if config.fit_model_len and info.max_model_len and len(sched.requests):
                r = sched.requests
                inp, out, clamped = fit_to_model_len(
                    r.input_tokens, r.output_tokens, info.max_model_len
                )
                if clamped:
                    warnings.append(
                        f"{clamped} request(s) longer than the endpoint's max_model_len "
                        f"{info.max_model_len} were shortened (arrival times unchanged)"
                    )
                    sched = Schedule(
                        Requests(r.arrival_s, inp, out, r.duration_s, r.start_s),
                        sched.source,
                        sched.origin_s,
                    )
            if on_start is not None:
                on_start(len(sched.requests))
            records, wall = await session.open_loop(
                sched,
                max_duration_s=config.max_duration_s,
                timeout_s=config.timeout_s,
                drain_s=config.drain_s,
                on_progress=on_progress,
            )
            mode, source, total = "open-loop", sched.source, len(sched.requests)
        else:
            assert config.concurrency is not None
            inp_t, out_t = config.input_tokens, config.output_tokens
            if config.fit_model_len and info.max_model_len:
                a, b, clamped = fit_to_model_len(
                    np.array([inp_t]), np.array([out_t]), info.max_model_len
                )
                if clamped:
                    warnings.append(
                        f"{inp_t}+{out_t} tokens exceed the endpoint's max_model_len "
                        f"{info.max_model_len}; sending {int(a[0])}+{int(b[0])}"
                    )
                    inp_t, out_t = int(a[0]), int(b[0])
            if on_start is not None:
                on_start(config.max_requests)
            records, wall = await session.closed_loop(
                concurrency=config.concurrency,
                input_tokens=inp_t,
                output_tokens=out_t,
                max_requests=config.max_requests,
                max_duration_s=config.max_duration_s,
                timeout_s=config.timeout_s,
                drain_s=config.drain_s,
                on_progress=on_progress,
            )
            mode = "closed-loop"
            source = f"closed loop, concurrency {config.concurrency}, {inp_t} in / {out_t} out"
            total = config.max_requests
    summary = summarize(records, scheduled=total)
    if records and all(r.outcome == "connect" for r in records):
        raise BenchError(
            f"nothing answered at {info.completions_url}: all {len(records)} requests failed "
            f"to connect ({records[0].error}) (is the server still running?)"
        )
    return BenchResult(
        config, info, mode, source, started, wall, records, summary, clamped, warnings
    )
