"""Request-size buckets, as Mélange uses them: the traffic mix split by input and output length.

Why buckets: a replica's sustainable rate depends on the sizes of the requests it serves (long
prompts cost prefill compute, long outputs hold KV and batch slots), and different GPU types win
on different sizes. Splitting a deployment's traffic into a few (input, output) cells lets the
fleet solver send each cell to the GPU type that serves it cheapest, and lets the capacity of a
replica that serves a mix be the load-weighted sum of its per-cell capacities (Mélange's linear
load assumption).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuwise.workload import Requests


@dataclass(frozen=True)
class Bucket:
    """One cell of the size mix: its share of requests and the sizes that set its capacity.

    ``input_edges_tokens``/``output_edges_tokens`` are half-open ``[lo, hi)`` ranges;
    ``mean_*`` set throughput (tokens per second of work), ``p_*`` (the SLO percentile inside the
    cell) set the latency a slow request in the cell sees.
    """

    index: int
    input_edges_tokens: tuple[float, float]
    output_edges_tokens: tuple[float, float]
    share: float
    rate_rps: float
    mean_input_tokens: float
    mean_output_tokens: float
    p_input_tokens: float
    p_output_tokens: float

    @property
    def label(self) -> str:
        def rng(e: tuple[float, float]) -> str:
            hi = "inf" if not np.isfinite(e[1]) else f"{e[1]:.0f}"
            return f"{e[0]:.0f}-{hi}"

        return f"in {rng(self.input_edges_tokens)} / out {rng(self.output_edges_tokens)}"


def _edges(values: np.ndarray, n: int) -> np.ndarray:
    """Quantile edges that give up to ``n`` non-empty, distinct cells (fewer for few values)."""
    qs = np.quantile(values, np.linspace(0.0, 1.0, n + 1)[1:-1]) if n > 1 else np.array([])
    inner = np.unique(np.ceil(qs))
    inner = inner[(inner > values.min()) & (inner <= values.max())]
    return np.concatenate([[0.0], inner, [np.inf]])


def size_buckets(
    requests: Requests,
    rate_rps: float,
    *,
    input_cells: int = 3,
    output_cells: int = 3,
    percentile: float = 95.0,
) -> list[Bucket]:
    """Split a traffic sample into (input, output) quantile cells, each with its share of rate.

    Empty cells are dropped; shares sum to 1. A fixed-length column yields one cell on that axis.
    """
    inp = np.asarray(requests.input_tokens, dtype=float)
    out = np.asarray(requests.output_tokens, dtype=float)
    if inp.size == 0:
        raise ValueError("a traffic sample with no requests has no size mix")
    ie, oe = _edges(inp, input_cells), _edges(out, output_cells)
    ii = np.searchsorted(ie, inp, side="right") - 1
    oi = np.searchsorted(oe, out, side="right") - 1
    buckets: list[Bucket] = []
    for a in range(len(ie) - 1):
        for b in range(len(oe) - 1):
            m = (ii == a) & (oi == b)
            k = int(m.sum())
            if k == 0:
                continue
            share = k / inp.size
            buckets.append(
                Bucket(
                    index=len(buckets),
                    input_edges_tokens=(float(ie[a]), float(ie[a + 1])),
                    output_edges_tokens=(float(oe[b]), float(oe[b + 1])),
                    share=share,
                    rate_rps=rate_rps * share,
                    mean_input_tokens=float(inp[m].mean()),
                    mean_output_tokens=float(out[m].mean()),
                    p_input_tokens=float(np.percentile(inp[m], percentile)),
                    p_output_tokens=float(np.percentile(out[m], percentile)),
                )
            )
    return buckets


def bucket_of(
    buckets: list[Bucket], input_tokens: np.ndarray, output_tokens: np.ndarray
) -> np.ndarray:
    """The bucket index of each request (nearest cell when a request falls in a dropped cell)."""
    inp = np.asarray(input_tokens, dtype=float)
    out = np.asarray(output_tokens, dtype=float)
    idx = np.full(inp.shape, -1, dtype=np.int64)
    for bk in buckets:
        (ilo, ihi), (olo, ohi) = bk.input_edges_tokens, bk.output_edges_tokens
        idx[(inp >= ilo) & (inp < ihi) & (out >= olo) & (out < ohi)] = bk.index
    missing = idx < 0
    if missing.any():
        centers = np.array([[b.mean_input_tokens, b.mean_output_tokens] for b in buckets])
        pts = np.log1p(np.stack([inp[missing], out[missing]], axis=1))
        d = ((pts[:, None, :] - np.log1p(centers)[None, :, :]) ** 2).sum(axis=2)
        idx[missing] = d.argmin(axis=1)
    return idx
