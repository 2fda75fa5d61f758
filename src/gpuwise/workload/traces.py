"""Trace files and embedded datasets: Azure LLM 2023 CSV, Mooncake JSONL and a generic CSV.

Readers return times in seconds. Traces stamped with wall-clock datetimes (Azure, ISO timestamps)
are made relative to their first row, because replay starts the trace at time 0; traces that
already carry relative times (Mooncake, ``arrival_s``) keep them, so a slice written by gpuwise
reads back unchanged.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from gpuwise.workload._io import (
    CsvTable,
    WorkloadError,
    env_path,
    file_key,
    read_csv_table,
    read_text,
)
from gpuwise.workload.schedule import Requests

TraceFormat = Literal["auto", "azure", "mooncake", "csv"]

_DATA_DIR = Path(__file__).resolve().parent / "data"
# A development checkout keeps large shared data beside the repository (../shared/data).
_SHARED_TRACES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "traces"
TRACES_DIR_ENV = "GPUWISE_TRACES_DIR"

INPUT_COLUMNS = (
    "input_tokens",
    "input_length",
    "prompt_tokens",
    "ContextTokens",
    "num_prefill_tokens",
    "input_len",
)
OUTPUT_COLUMNS = (
    "output_tokens",
    "output_length",
    "completion_tokens",
    "GeneratedTokens",
    "num_decode_tokens",
    "output_len",
)
_TIME_COLUMNS = ("arrival_s", "timestamp_s", "timestamp_ms", "timestamp", "time_s", "time")
_MAX_EXACT = float(2**53)  # larger counts or times are not exact in float64: a corrupt file
_CSV_FIX = "the file needs a time column (arrival_s or timestamp) and input_tokens,output_tokens"


@dataclass(frozen=True)
class Dataset:
    """A named length distribution or trace that specs can refer to without a path."""

    name: str
    file: str
    embedded: bool
    format: Literal["azure", "mooncake", "csv"]
    input_column: str
    output_column: str
    has_timestamps: bool
    description: str


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "sharegpt",
            "sarathi_sharegpt_8k_filtered_stats_llama2_tokenizer.csv.gz",
            True,
            "csv",
            "num_prefill_tokens",
            "num_decode_tokens",
            False,
            "ShareGPT chat lengths (Llama-2 tokenizer, <= 8k total), from Sarathi-Serve",
        ),
        Dataset(
            "arxiv-summarization",
            "vidur_arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv.gz",
            True,
            "csv",
            "num_prefill_tokens",
            "num_decode_tokens",
            False,
            "arXiv summarization lengths (Llama-2 tokenizer), from Vidur",
        ),
        Dataset(
            "azure-conv",
            "AzureLLMInferenceTrace_conv.csv.gz",
            True,
            "azure",
            "ContextTokens",
            "GeneratedTokens",
            True,
            "Azure LLM inference 2023, conversation (CC-BY-4.0; Splitwise, ISCA 2024)",
        ),
        Dataset(
            "azure-code",
            "AzureLLMInferenceTrace_code.csv.gz",
            True,
            "azure",
            "ContextTokens",
            "GeneratedTokens",
            True,
            "Azure LLM inference 2023, code completion (CC-BY-4.0; Splitwise, ISCA 2024)",
        ),
        Dataset(
            "mooncake-conv",
            "mooncake/conversation_trace.jsonl",
            False,
            "mooncake",
            "input_length",
            "output_length",
            True,
            "Mooncake FAST'25 conversation trace (Apache-2.0); not shipped, read from shared data",
        ),
    )
}


def dataset_path(name: str) -> Path:
    """Where a named dataset lives; the Mooncake trace is looked up outside the package."""
    ds = DATASETS.get(name)
    if ds is None:
        raise WorkloadError(
            f"unknown dataset '{name}'; known datasets: {', '.join(sorted(DATASETS))}"
        )
    if ds.embedded:
        return _DATA_DIR / ds.file
    candidates = []
    env = env_path(TRACES_DIR_ENV)
    if env is not None:
        candidates += [env / ds.file, env / Path(ds.file).name]
    candidates.append(_SHARED_TRACES / ds.file)
    for c in candidates:
        if c.is_file():
            return c
    raise WorkloadError(
        f"dataset '{name}' is not shipped with gpuwise (too large); download "
        "FAST25-release/traces/conversation_trace.jsonl from github.com/kvcache-ai/Mooncake and "
        f"set {TRACES_DIR_ENV} to its folder, or give the file's path instead"
    )


def resolve_trace_path(path: str | Path) -> Path:
    """A trace path, or the name of a timestamped dataset (``azure-conv``) when no such file.

    ``load_spec`` makes paths absolute, so a bare dataset name arrives as ``/spec/dir/azure-conv``:
    the last path component is what is matched, and only when that file does not exist.
    """
    p = Path(path).expanduser()
    if p.exists():
        return p
    ds = DATASETS.get(p.name)
    if ds is not None and ds.has_timestamps:
        return dataset_path(ds.name)
    named = ", ".join(n for n, d in DATASETS.items() if d.has_timestamps)
    raise WorkloadError(
        f"{p}: no such trace file; check arrival.path (relative paths are resolved against the "
        f"spec's folder), or name an embedded trace: {named}"
    )


# ----------------------------------------------------------------------------- parsed traces


@dataclass(frozen=True, eq=False)
class Trace:
    """A trace as read: sorted times and, when the file has them, token counts."""

    path: Path
    arrival_s: np.ndarray
    input_tokens: np.ndarray | None
    output_tokens: np.ndarray | None

    def to_requests(self) -> Requests:
        if self.input_tokens is None or self.output_tokens is None:
            raise WorkloadError(
                f"{self.path}: the trace has no token-count columns; give traffic.input_tokens "
                "and traffic.output_tokens in the spec, or add input_tokens,output_tokens columns"
            )
        return Requests(self.arrival_s, self.input_tokens, self.output_tokens)


def _sorted_trace(
    path: Path, t: np.ndarray, inp: np.ndarray | None, out: np.ndarray | None
) -> Trace:
    """Sort by time (stable, so ties keep file order) and freeze; logs are not always sorted."""
    if t.size and not (np.all(np.isfinite(t)) and t.min() >= 0):
        raise WorkloadError(
            f"{path}: the times overflow or fall before 0 after conversion to seconds; check the "
            "time column's values and units"
        )
    if t.size and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t = t[order]
        inp = inp[order] if inp is not None else None
        out = out[order] if out is not None else None
    if out is not None:
        # A request always yields at least one token; 0 in a log means it failed or was cancelled.
        out = np.maximum(out, 1)
    for a in (t, inp, out):
        if a is not None:
            a.setflags(write=False)
    return Trace(path, t, inp, out)


def detect_format(path: str | Path) -> Literal["azure", "mooncake", "csv"]:
    """By extension first, then by the first line, so renamed files still work."""
    p = Path(path)
    return _detect_format_cached(p, file_key(p))


@lru_cache(maxsize=32)
def _detect_format_cached(
    path: Path, key: tuple[str, int, int]
) -> Literal["azure", "mooncake", "csv"]:
    del key
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "mooncake"
    first = next((ln for ln in read_text(path).splitlines() if ln.strip()), "")
    if first.lstrip().startswith("{"):
        return "mooncake"
    cols = {c.strip().lower() for c in first.split(",")}
    if {"timestamp", "contexttokens", "generatedtokens"} <= cols:
        return "azure"
    return "csv"


def load_trace(path: str | Path, format: TraceFormat = "auto") -> Trace:
    """Read a trace file (cached per file version) with possibly missing length columns."""
    p = Path(path)
    key = file_key(p)
    fmt = detect_format(p) if format == "auto" else format
    return _load_trace_cached(p, fmt, key)


@lru_cache(maxsize=16)
def _load_trace_cached(path: Path, fmt: str, key: tuple[str, int, int]) -> Trace:
    del key
    if fmt == "azure":
        return _read_azure(path)
    if fmt == "mooncake":
        return _read_mooncake(path)
    if fmt == "csv":
        return _read_generic_csv(path)
    raise WorkloadError(f"{path}: unknown trace format '{fmt}'; use auto, azure, mooncake or csv")


def read_trace(path: str | Path, format: TraceFormat = "auto") -> Requests:
    """Any supported trace as Requests; the file must carry token counts."""
    return load_trace(path, format).to_requests()


def read_azure_csv(path: str | Path) -> Requests:
    """Azure LLM inference 2023 (``TIMESTAMP,ContextTokens,GeneratedTokens``).

    Times become seconds after the first row, because replay starts a trace at time 0.
    """
    return load_trace(path, "azure").to_requests()


def read_mooncake_jsonl(path: str | Path) -> Requests:
    """Mooncake JSONL: ``timestamp`` (ms), ``input_length``, ``output_length``.

    ``hash_ids`` (prefix-cache block ids) may be present or absent; they are not used here.
    """
    return load_trace(path, "mooncake").to_requests()


def read_csv_trace(path: str | Path) -> Requests:
    """Generic CSV: ``arrival_s`` (kept) or ``timestamp`` (made relative), and token columns."""
    return load_trace(path, "csv").to_requests()


_EARLIEST = np.datetime64("1700-01-01", "us")
_LATEST = np.datetime64("2250-01-01", "us")  # inside datetime64[ns]'s range (1678-2262)
_MAX_SPAN_US = 200 * 365 * 86_400 * 10**6  # int64 nanoseconds overflow at 292 years


def _datetimes_to_s(table: CsvTable, column: str, fix: str) -> np.ndarray:
    """Wall-clock stamps to seconds after the earliest, keeping Azure's 100 ns digit.

    Parsed first at microseconds, whose range is vast, to reject absurd years that would silently
    wrap around at nanoseconds; then at nanoseconds. Stamps with a UTC offset are converted to UTC
    by numpy (its warning is silenced), so relative times stay right when a log changes offset.
    """
    strings = [s.strip().removesuffix("Z") for s in table.columns[column]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            coarse = np.array(strings, dtype="datetime64[us]")
        except ValueError:
            for k, s in enumerate(strings):
                try:
                    np.datetime64(s, "us")
                except ValueError:
                    table.fail(
                        k, column, f"'{s}' is not a date-time such as 2023-11-16 18:15:46.68", fix
                    )
            raise  # pragma: no cover
        if not coarse.size:
            return np.empty(0)
        bad = np.isnat(coarse) | (coarse < _EARLIEST) | (coarse > _LATEST)
        if bad.any():
            k = int(np.argmax(bad))
            table.fail(k, column, f"'{strings[k]}' is missing or outside 1700-2250", fix)
        span_us = (coarse - coarse.min()).astype(np.int64)
        if span_us.max() > _MAX_SPAN_US:
            k = int(np.argmax(span_us))
            table.fail(k, column, f"'{strings[k]}' is over 200 years after the earliest time", fix)
        stamps = np.array(strings, dtype="datetime64[ns]")
    ns = (stamps - stamps.min()).astype(np.int64)
    return ns.astype(np.float64) / 1e9


def _read_azure(path: Path) -> Trace:
    table = read_csv_table(path)
    cols = [table.find(c) for c in ("TIMESTAMP", "ContextTokens", "GeneratedTokens")]
    if None in cols:
        raise WorkloadError(
            f"{path}: line {table.header_line}: header is {','.join(table.header)}; Azure traces "
            "have the columns TIMESTAMP,ContextTokens,GeneratedTokens (or use format: csv)"
        )
    fix = "fix or delete that line"
    tcol, icol, ocol = (c for c in cols if c is not None)
    t = _datetimes_to_s(table, tcol, fix)
    inp = table.numbers(icol, integer=True, min_value=0, fix=fix)
    out = table.numbers(ocol, integer=True, min_value=0, fix=fix)
    return _sorted_trace(path, t, inp, out)


def _read_generic_csv(path: Path) -> Trace:
    table = read_csv_table(path)
    tcol = table.find(*_TIME_COLUMNS)
    if tcol is None:
        raise WorkloadError(
            f"{path}: line {table.header_line}: no time column in header "
            f"{','.join(table.header)}; {_CSV_FIX}"
        )
    if tcol.lower() == "arrival_s":
        t = table.numbers(tcol, integer=False, min_value=0, fix="arrival_s is seconds >= 0")
    else:
        try:
            t = table.numbers(tcol, integer=False)
            if tcol.lower() == "timestamp_ms":
                t = t / 1000.0
        except WorkloadError:
            if tcol.lower() not in ("timestamp", "time"):
                raise
            t = _datetimes_to_s(table, tcol, "timestamps must be numbers or ISO date-times")
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
                t = t - t.min() if t.size else t
    icol, ocol = table.find(*INPUT_COLUMNS), table.find(*OUTPUT_COLUMNS)
    fix = "token counts must be whole numbers >= 0"
    inp = table.numbers(icol, integer=True, min_value=0, fix=fix) if icol else None
    out = table.numbers(ocol, integer=True, min_value=0, fix=fix) if ocol else None
    return _sorted_trace(path, t, inp, out)


def _read_mooncake(path: Path) -> Trace:
    fix = 'each line must be a JSON object like {"timestamp": 0, "input_length": 10, ' + (
        '"output_length": 5}'
    )
    t: list[float] = []
    inp: list[int] = []
    out: list[int] = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise WorkloadError(
                f"{path}: line {lineno}, column {err.colno}: not valid JSON ({err.msg}); {fix}"
            ) from None
        if not isinstance(rec, dict):
            raise WorkloadError(f"{path}: line {lineno}: not a JSON object; {fix}")
        for key, dest, minimum in (
            ("timestamp", t, 0),
            ("input_length", inp, 0),
            ("output_length", out, 0),
        ):
            v = rec.get(key)
            ok = _valid_number(v, minimum, integer=key != "timestamp")
            if not ok:
                what = "missing" if v is None else f"{str(v)[:40]!r} is not a valid value"
                raise WorkloadError(f"{path}: line {lineno}, field '{key}': {what}; {fix}")
            dest.append(v)
    if not t:
        raise WorkloadError(f"{path}: the file has no requests; {fix}")
    return _sorted_trace(
        path,
        np.asarray(t, dtype=np.float64) / 1000.0,
        np.asarray(inp, dtype=np.int64),
        np.asarray(out, dtype=np.int64),
    )


def _valid_number(v: object, minimum: float, *, integer: bool) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        x = float(v)
    except OverflowError:
        return False
    return math.isfinite(x) and minimum <= x < _MAX_EXACT and (not integer or x.is_integer())


# ----------------------------------------------------------------------------- length columns


def length_column(path: Path, column: str | None, role: Literal["input", "output"]) -> np.ndarray:
    """One token-count column of a CSV or JSONL file, clipped to >= 1, cached per file version."""
    return _length_column_cached(path, column, role, file_key(path))


@lru_cache(maxsize=32)
def _length_column_cached(
    path: Path, column: str | None, role: str, key: tuple[str, int, int]
) -> np.ndarray:
    del key
    aliases = INPUT_COLUMNS if role == "input" else OUTPUT_COLUMNS
    if detect_format(path) == "mooncake":
        trace = load_trace(path, "mooncake")
        by_name = {
            "input_length": trace.input_tokens,
            "input_tokens": trace.input_tokens,
            "output_length": trace.output_tokens,
            "output_tokens": trace.output_tokens,
        }
        name = (column or f"{role}_length").lower()
        if name not in by_name:
            raise WorkloadError(
                f"{path}: JSONL traces have input_length and output_length, not '{column}'; "
                "set 'column' to one of them"
            )
        values = by_name[name]
        assert values is not None
    else:
        table = read_csv_table(path)
        name = table.find(column) if column is not None else table.find(*aliases)
        if name is None:
            wanted = f"column '{column}'" if column else f"{role}-length column"
            raise WorkloadError(
                f"{path}: no {wanted} (columns: {','.join(table.header)}); set 'column' in the "
                "spec to one of them"
            )
        values = table.numbers(name, integer=True, min_value=0, fix="lengths are token counts")
    if not values.size:
        raise WorkloadError(f"{path}: column '{name}' has no rows to sample lengths from")
    out = np.maximum(values, 1)
    out.setflags(write=False)
    return out
