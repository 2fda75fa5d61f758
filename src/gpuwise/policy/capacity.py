"""How many requests per second one replica serves inside the SLO, from the performance model.

Why not a utilization proxy: GPU busy is ~100% whenever anything runs (continuous batching keeps
iterating), and KV usage or queue length depend on the token mix. What a replica can take is a
property of its iteration time, its limits and the mix, so gpuwise computes it.

The steady state of a continuous-batching engine at arrival rate ``lam`` (requests/s): every
iteration of length ``tau`` carries the decoding requests, ``B = lam * E[O] * tau`` of them
(Little's law: each decodes for ``O`` iterations), whose contexts sum to
``lam * tau * E[O*P + O^2/2]``, plus the prefill of the prompts that arrived meanwhile,
``lam * tau * E[P]`` tokens. The iteration time is the performance model's for that batch, so
``tau`` is a fixed point ``tau = T(tau)``; it exists while the engine keeps up, and its
disappearance is saturation. The replica's limit is the largest rate whose fixed point respects
``max_num_seqs``, the KV cache and the TPOT target; the policy then runs it at a utilization
below that limit so that the queueing tail stays inside the TTFT target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpuwise.perf.model import ReplicaPerf


@dataclass(frozen=True)
class TokenMix:
    """Moments of the (prompt P, output O) token counts of a deployment's requests."""

    mean_prompt: float
    mean_output: float
    mean_prompt_sq: float  # E[P^2]
    mean_output_sq: float  # E[O^2]
    mean_prompt_output: float  # E[P*O]

    @classmethod
    def from_samples(cls, prompt: np.ndarray, output: np.ndarray) -> TokenMix:
        p = np.asarray(prompt, dtype=float)
        o = np.asarray(output, dtype=float)
        if p.size == 0:
            raise ValueError("a token mix needs at least one request")
        return cls(
            float(p.mean()),
            float(o.mean()),
            float((p * p).mean()),
            float((o * o).mean()),
            float((p * o).mean()),
        )

    def rescaled(self, mean_prompt: float, mean_output: float) -> TokenMix:
        """The same shape (dispersion, correlation) with new means: an observed mix."""
        a = mean_prompt / self.mean_prompt if self.mean_prompt > 0 else 1.0
        b = mean_output / self.mean_output if self.mean_output > 0 else 1.0
        return TokenMix(
            self.mean_prompt * a,
            self.mean_output * b,
            self.mean_prompt_sq * a * a,
            self.mean_output_sq * b * b,
            self.mean_prompt_output * a * b,
        )


@dataclass(frozen=True)
class SteadyState:
    rate_rps: float
    iteration_s: float  # also the TPOT
    decode_batch: float
    kv_tokens: float
    saturated: bool


@dataclass(frozen=True)
class ReplicaCapacity:
    """One replica's limits, enough to evaluate :func:`steady_state` without the spec."""

    perf: ReplicaPerf
    max_num_seqs: int
    kv_capacity_tokens: int
    tpot_slo_s: float | None = None
    kv_fill_max: float = 0.9  # beyond this the engine preempts more than it serves

    def steady_state(self, rate_rps: float, mix: TokenMix) -> SteadyState:
        return steady_state(self.perf, rate_rps, mix)

    def max_rps(self, mix: TokenMix) -> float:
        """The highest rate whose steady state respects every limit (bisection)."""
        lo, hi = 0.0, 1.0
        while self._ok(hi, mix) and hi < 1e6:
            lo, hi = hi, hi * 2.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if self._ok(mid, mix):
                lo = mid
            else:
                hi = mid
        return lo

    def _ok(self, rate: float, mix: TokenMix) -> bool:
        s = self.steady_state(rate, mix)
        if s.saturated:
            return False
        if s.decode_batch > self.max_num_seqs:
            return False
        if s.kv_tokens > self.kv_fill_max * self.kv_capacity_tokens:
            return False
        return not (self.tpot_slo_s is not None and s.iteration_s > self.tpot_slo_s)


def steady_state(perf: ReplicaPerf, rate_rps: float, mix: TokenMix) -> SteadyState:
    """The fixed point of the mean iteration time at ``rate_rps`` (see module doc).

    Prompts are prefilled whole (one chunk each, as most are shorter than the token budget) in
    iterations that also carry the decoding batch, so those iterations are as slow as a prefill
    is; the rest of the time goes to decode-only iterations. With ``tau`` the mean iteration
    time, ``1/tau`` iterations per second each advance every decoding request by a token, so
    ``B = lam * E[O] * tau``, and time adds up to one second:
    ``lam * T_mix(B) + (1/tau - lam) * T_dec(B) = 1``.
    """
    lam = float(rate_rps)
    ctx_per_decode = (mix.mean_prompt_output + 0.5 * mix.mean_output_sq) / max(
        mix.mean_output, 1e-9
    )
    if lam <= 0:
        t1 = float(perf.decode_time_s(1, mix.mean_prompt))
        return SteadyState(0.0, t1, 0.0, 0.0, False)

    def times(tau: float) -> tuple[float, float, float]:
        b = lam * tau * mix.mean_output
        t_dec = float(
            perf.iteration_time_s(decode_seqs=b, decode_context_tokens=b * ctx_per_decode)
        )
        t_mix = float(
            perf.iteration_time_s(
                prefill_tokens=mix.mean_prompt,
                decode_seqs=b,
                decode_context_tokens=b * ctx_per_decode,
                prefill_seqs=1.0,
                prefill_attention_pairs=0.5 * mix.mean_prompt_sq,
            )
        )
        return b, t_dec, t_mix

    tau = float(perf.decode_time_s(1, mix.mean_prompt))
    saturated = True
    for _ in range(500):
        _, t_dec, t_mix = times(tau)
        spare = 1.0 - lam * t_mix
        if spare <= 0:
            break
        nxt = 1.0 / (lam + spare / t_dec)
        if abs(nxt - tau) <= 1e-9 * tau:
            tau = nxt
            saturated = False
            break
        tau = nxt
    b = lam * tau * mix.mean_output
    kv = b * ctx_per_decode + b
    return SteadyState(lam, tau, b, kv, saturated)


# ---------------------------------------------------------------- burstiness of the arrivals


@dataclass(frozen=True)
class BurstMargin:
    """The extra service rate a fleet needs so that bursts of arrivals do not break TTFT.

    ``excess_rps`` is added to the rate the fleet is sized for; ``window_s`` is the window that
    set it, ``spread_rps`` the standard deviation of the arrival rate over windows of that
    length (around their linear trend), and ``poisson_rps`` what a Poisson stream of the same
    rate would show there. ``rate_rps`` is the trend's rate at the end of the history.
    """

    excess_rps: float
    rate_rps: float
    window_s: float
    spread_rps: float
    poisson_rps: float

    @property
    def factor(self) -> float:
        """The needed service rate over the rate (1 when there is no margin or no rate)."""
        return (self.rate_rps + self.excess_rps) / self.rate_rps if self.rate_rps > 0 else 1.0


NO_BURST = BurstMargin(0.0, 0.0, 0.0, 0.0, 0.0)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def burst_margin(
    counts: np.ndarray,
    bin_s: float,
    windows_s: tuple[float, ...] = (5.0, 10.0, 30.0, 60.0),
    slack_s: float = 2.0,
    z: float = 2.33,
    trend: bool = True,
) -> BurstMargin:
    """The service rate, above the arrival rate, that absorbs a ``z``-sigma burst.

    ``counts`` are the arrivals in consecutive bins of ``bin_s`` (oldest first). For a window
    of ``w`` seconds, the arrivals in the sliding windows of the history are fitted with a line
    (the trend), whose value at the end is ``c``, the count the next window expects, and whose
    residuals have a standard deviation ``s`` (never below Poisson's ``sqrt(c)``: a short
    history underestimates the spread, and independent users arrive at least that irregularly).
    A fleet serving ``mu`` requests per second that meets ``c + z s`` arrivals in ``w`` seconds
    ends the window with a backlog of ``c + z s - mu w``, which it clears within ``slack_s`` (the
    TTFT a queued request may still spend waiting) when ``mu >= (c + z s) / (w + slack_s)``. The
    excess over the rate ``c / w`` is then ``(z s - slack_s c / w) / (w + slack_s)``: the
    burst, less what the slack absorbs, spread over the window. The margin is the largest
    excess over the windows, and never negative (the rate itself must be served).

    A Poisson stream at 30 rps asks for 0.6 rps (from the 60-s window); a stream whose counts
    vary several times more than Poisson's pays in proportion; one that bursts to 100 rps for a
    minute and then goes quiet keeps the margin for those bursts while it is quiet. With
    ``trend=False`` the centre is the history's mean (bursts that revert to it have no trend).
    """
    c_all = np.asarray(counts, dtype=float)
    if c_all.size < 3 or bin_s <= 0:
        return NO_BURST
    csum = np.concatenate([[0.0], np.cumsum(c_all)])
    best: BurstMargin | None = None
    for w in windows_s:
        k = max(1, int(round(w / bin_s)))
        n_win = c_all.size - k + 1
        if n_win < 3:
            continue
        w_s = k * bin_s
        sums = csum[k:] - csum[:-k]
        x = np.arange(n_win, dtype=float)
        a, b = np.polyfit(x, sums, 1) if trend else (0.0, float(sums.mean()))
        c = max(float(a * x[-1] + b), 0.0)
        resid = sums - (a * x + b)
        s = float(np.sqrt(np.sum(resid**2) / max(1, n_win - 2)))
        # the burst: the residuals' quantile at z (for a normal spread, z standard
        # deviations; a rare burst in a long quiet history shows at its height, which a
        # standard deviation would spread thin), never below Poisson's z * sqrt(c)
        burst = max(float(np.quantile(resid, _normal_cdf(z))), z * math.sqrt(c))
        excess = (burst - slack_s * c / w_s) / (w_s + slack_s)
        if best is None or excess > best.excess_rps:
            best = BurstMargin(excess, c / w_s, w_s, s / w_s, math.sqrt(c) / w_s)
    if best is None:
        return NO_BURST
    return BurstMargin(
        max(0.0, best.excess_rps),
        best.rate_rps,
        best.window_s,
        best.spread_rps,
        best.poisson_rps,
    )
