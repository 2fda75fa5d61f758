"""Per-request timings and their summary: pure arithmetic, no I/O (tested on synthetic data).

Definitions (those of vLLM's and most serving benchmarks):

* TTFT: from sending the request to the first streamed event carrying a token.
* ITL: the gaps between successive tokens. An event may carry several tokens (the server held
  back bytes of a partial character, or its API process fell behind the engine and coalesced
  outputs); when the server says how many (vLLM's ``token_ids``), the event's gap is spread
  evenly over its tokens, else the event counts as one token.
* TPOT: (e2e - TTFT) / (output tokens - 1), per request; undefined for one-token outputs.
* e2e: from sending to the end of the stream.
* send lag: how late a request left compared with its scheduled (open-loop) time.

Every request ends in one outcome; only ``ok`` requests count toward latency statistics, the
others are counted by kind.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "OUTCOMES",
    "BenchSummary",
    "Dist",
    "RequestRecord",
    "dist",
    "summarize",
]

# ok: the stream ended normally with at least one token.
# connect: nothing accepted the connection (refused, unreachable, unresolvable host).
# disconnect: the connection broke after it was made (reset, ReadError, protocol error).
# timeout: no complete answer within the per-request timeout (connect, read or total).
# http_4xx / http_5xx: the server answered with an error status.
# bad_response: a 200 answer that was not a valid stream of completion events.
# cancelled: still running when the run's time bound ended it.
# error: anything else (a bug or an exotic failure; the message says which).
OUTCOMES = (
    "ok",
    "connect",
    "disconnect",
    "timeout",
    "http_4xx",
    "http_5xx",
    "bad_response",
    "cancelled",
    "error",
)


@dataclass
class RequestRecord:
    """One request's plan and what happened to it; times are seconds from the run's start."""

    index: int
    input_tokens: int  # asked for (the prompt is built to be about this long)
    output_tokens: int  # max_tokens sent, with ignore_eos so it is also the length produced
    scheduled_s: float | None = None  # open loop: when it was due; closed loop: None
    sent_s: float | None = None
    first_token_s: float | None = None
    end_s: float | None = None
    token_times_s: list[float] = field(default_factory=list, repr=False)
    prompt_tokens: int | None = None  # as the server counted them (final usage chunk)
    completion_tokens: int | None = None  # usage, else the tokens the events carried
    outcome: str = "pending"
    http_status: int | None = None
    error: str | None = None

    @property
    def send_lag_s(self) -> float | None:
        if self.scheduled_s is None or self.sent_s is None:
            return None
        return self.sent_s - self.scheduled_s

    @property
    def ttft_s(self) -> float | None:
        if self.first_token_s is None or self.sent_s is None:
            return None
        return self.first_token_s - self.sent_s

    @property
    def e2e_s(self) -> float | None:
        if self.end_s is None or self.sent_s is None:
            return None
        return self.end_s - self.sent_s

    @property
    def itl_s(self) -> list[float]:
        t = self.token_times_s
        return [b - a for a, b in zip(t, t[1:], strict=False)]

    @property
    def tpot_s(self) -> float | None:
        n = self.completion_tokens
        ttft, e2e = self.ttft_s, self.e2e_s
        if n is None or n < 2 or ttft is None or e2e is None:
            return None
        return (e2e - ttft) / (n - 1)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, with the derived latencies (rounded to microseconds)."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 6)

        return {
            "index": self.index,
            "outcome": self.outcome,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "scheduled_s": r(self.scheduled_s),
            "sent_s": r(self.sent_s),
            "send_lag_s": r(self.send_lag_s),
            "ttft_s": r(self.ttft_s),
            "tpot_s": r(self.tpot_s),
            "e2e_s": r(self.e2e_s),
            "itl_s": [round(x, 6) for x in self.itl_s],
            "http_status": self.http_status,
            "error": self.error,
        }


@dataclass(frozen=True)
class Dist:
    """Distribution of one latency, in seconds; all None when there were no values."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None


def dist(values: Iterable[float | None]) -> Dist:
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not x.size:
        return Dist(0, None, None, None, None, None, None)
    p50, p90, p95, p99 = np.percentile(x, [50, 90, 95, 99])
    return Dist(
        int(x.size),
        float(x.mean()),
        float(p50),
        float(p90),
        float(p95),
        float(p99),
        float(x.max()),
    )


@dataclass(frozen=True)
class BenchSummary:
    scheduled: int  # requests the schedule (or the closed loop's budget) held
    sent: int
    ok: int
    outcomes: dict[str, int]  # by kind, ok included; only kinds that occurred
    duration_s: float  # first send to last end (the window the throughputs are over)
    throughput_rps: float  # successful requests per second
    output_tokens_per_s: float  # of successful requests
    input_tokens_per_s: float
    ttft_s: Dist
    tpot_s: Dist
    itl_s: Dist
    e2e_s: Dist
    send_lag_s: Dist
    mean_prompt_tokens: float | None
    mean_completion_tokens: float | None
    first_error: str | None = None

    @property
    def errors(self) -> int:
        return self.sent - self.ok


def summarize(records: Sequence[RequestRecord], scheduled: int | None = None) -> BenchSummary:
    """Statistics over the successful requests; every outcome counted by kind."""
    sent = [r for r in records if r.sent_s is not None]
    ok = [r for r in records if r.outcome == "ok"]
    outcomes = Counter(r.outcome for r in sent)
    starts = [r.sent_s for r in sent if r.sent_s is not None]
    ends = [r.end_s for r in sent if r.end_s is not None]
    duration = (max(ends) - min(starts)) if starts and ends else 0.0
    duration = max(duration, 0.0)
    out_tokens = sum(r.completion_tokens or 0 for r in ok)
    in_tokens = sum(
        (r.prompt_tokens if r.prompt_tokens is not None else r.input_tokens) for r in ok
    )
    prompts = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    completions = [r.completion_tokens for r in ok if r.completion_tokens is not None]
    first_error = next((r.error for r in sent if r.outcome != "ok" and r.error), None)
    return BenchSummary(
        scheduled=len(records) if scheduled is None else scheduled,
        sent=len(sent),
        ok=len(ok),
        outcomes={k: outcomes[k] for k in OUTCOMES if outcomes.get(k)},
        duration_s=duration,
        throughput_rps=len(ok) / duration if duration > 0 else 0.0,
        output_tokens_per_s=out_tokens / duration if duration > 0 else 0.0,
        input_tokens_per_s=in_tokens / duration if duration > 0 else 0.0,
        ttft_s=dist(r.ttft_s for r in ok),
        tpot_s=dist(r.tpot_s for r in ok),
        itl_s=dist(x for r in ok for x in r.itl_s),
        e2e_s=dist(r.e2e_s for r in ok),
        send_lag_s=dist(r.send_lag_s for r in sent),
        mean_prompt_tokens=float(np.mean(prompts)) if prompts else None,
        mean_completion_tokens=float(np.mean(completions)) if completions else None,
        first_error=first_error,
    )
