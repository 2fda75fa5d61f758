"""Prometheus text exposition -> a flat, immutable snapshot of samples.

Every engine (vLLM, SGLang, TGI, Triton, llama.cpp) and the DCGM exporter speak the same text
format, so one parser serves them all. The parsing itself is `prometheus_client`'s; this module
adds what a diagnosis tool needs on top of it:

* a **flat** view keyed by ``(sample name, labels)``, because the window arithmetic (deltas,
  sums over replicas) works on individual series, not on metric families;
* **recovery** from partial input: a truncated file or a doc listing with ``...`` lines must
  still yield the series that *can* be read, with each unreadable line reported, never an
  exception (the parser aborts at the first bad line, so we re-parse block by block, then line
  by line);
* series names **as exposed**: `prometheus_client` renames a counter sample ``x`` to ``x_total``
  when the ``# TYPE`` says counter (TGI's ``tgi_request_success``), but Prometheus stores it as
  ``x``; the snapshot keeps the exposed name so the same name works in PromQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "Labels",
    "SeriesKey",
    "Snapshot",
    "parse_exposition",
    "read_exposition",
]

Labels = frozenset[tuple[str, str]]
SeriesKey = tuple[str, Labels]

_NAME_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_created")
MAX_REPORTED_LINES = 20  # a garbage file must not bury the report in thousands of lines


def _matches(labels: Labels, match: Mapping[str, str] | None) -> bool:
    if not match:
        return True
    d = dict(labels)
    return all(d.get(k) == v for k, v in match.items())


def _name_variants(name: str) -> tuple[str, ...]:
    """A counter may be exposed as ``x`` (TGI, Triton) or ``x_total`` (prometheus_client)."""
    if name.endswith("_total"):
        return (name, name[: -len("_total")])
    return (name, name + "_total")


@dataclass(frozen=True)
class Snapshot:
    """All samples of one scrape of one target at wall time ``t_s`` (NaN when unknown).

    ``target`` holds the labels that identify the scraped replica itself (``pod``,
    ``namespace``, ``instance``): in Prometheus they are added by service discovery, for a file
    or a direct scrape the caller supplies them. They are what joins DCGM GPU series to engine
    replicas.
    """

    t_s: float
    samples: Mapping[SeriesKey, float]
    source: str = ""
    target: Mapping[str, str] = field(default_factory=dict)

    # ---- lookups -------------------------------------------------------------------------------
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.samples)

    def has(self, name: str) -> bool:
        names = self.names()
        return any(v in names for v in _name_variants(name))

    def series(self, name: str, match: Mapping[str, str] | None = None) -> dict[Labels, float]:
        """Series of exactly ``name`` (no suffix tolerance) whose labels include ``match``."""
        return {
            labels: v
            for (n, labels), v in self.samples.items()
            if n == name and _matches(labels, match)
        }

    def counter_series(
        self, name: str, match: Mapping[str, str] | None = None
    ) -> dict[Labels, float]:
        """Series of a counter, whichever of ``x`` / ``x_total`` the exposition used."""
        for variant in _name_variants(name):
            found = self.series(variant, match)
            if found:
                return found
        return {}

    def sum(self, name: str, match: Mapping[str, str] | None = None) -> float | None:
        """Sum of the matching series, NaN values skipped; None when no series matches.

        None (not 0) for absence matters: "no requests waiting" and "this engine does not
        export a queue gauge" lead to different diagnoses.
        """
        found = self.series(name, match) or self.counter_series(name, match)
        if not found:
            return None
        vals = [v for v in found.values() if not math.isnan(v)]
        return math.fsum(vals) if vals else None

    def values(self, name: str, match: Mapping[str, str] | None = None) -> list[float]:
        found = self.series(name, match) or self.counter_series(name, match)
        return [v for v in found.values() if not math.isnan(v)]

    def counter(self, name: str, match: Mapping[str, str] | None = None) -> float | None:
        """Total of a counter over matching series (``x`` or ``x_total``)."""
        found = self.counter_series(name, match)
        if not found:
            return None
        return math.fsum(v for v in found.values() if not math.isnan(v))

    def buckets(self, name: str, match: Mapping[str, str] | None = None) -> dict[float, float]:
        """Histogram ``name`` (base name): upper bound ``le`` -> cumulative count, summed over
        the matching series (e.g. over ``engine`` or ``finished_reason`` labels)."""
        out: dict[float, float] = {}
        for labels, v in self.series(name + "_bucket", match).items():
            le = dict(labels).get("le")
            if le is None or math.isnan(v):
                continue
            try:
                bound = float(le)
            except ValueError:
                continue
            out[bound] = out.get(bound, 0.0) + v
        return dict(sorted(out.items()))

    def label_values(self, label: str, names: Iterable[str]) -> set[str]:
        """Values of ``label`` on any series of the given names (e.g. the models served)."""
        wanted = set(names)
        out = set()
        for n, labels in self.samples:
            if n in wanted or any(n == w + s for w in wanted for s in _HISTOGRAM_SUFFIXES):
                v = dict(labels).get(label)
                if v is not None:
                    out.add(v)
        return out


# ---- parsing ------------------------------------------------------------------------------------
def _exposed_names(text: str) -> set[str]:
    out = set()
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _NAME_RE.match(line)
        if m:
            out.add(m.group(1))
    return out


def _blocks(lines: list[str]) -> Iterator[tuple[int, list[str], list[tuple[int, str]]]]:
    """Split into metric-family blocks: (first line number, header comments, sample lines)."""
    header: list[str] = []
    body: list[tuple[int, str]] = []
    start = 1
    for i, line in enumerate(lines, start=1):
        if line.startswith("#"):
            if body:
                yield start, header, body
                header, body, start = [], [], i
            header.append(line)
        elif line.strip():
            body.append((i, line))
    if header or body:
        yield start, header, body


def _parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append((s.name, dict(s.labels), float(s.value)))
    return out


def parse_exposition(
    text: str,
    *,
    t_s: float = math.nan,
    source: str = "",
    target: Mapping[str, str] | None = None,
) -> tuple[Snapshot, list[str]]:
    """Parse an exposition; returns the snapshot and what could not be read (never raises).

    Each unreadable line is reported as ``"<source> line N: <text>: <reason>"``.
    """
    where = source or "exposition"
    problems: list[str] = []
    if not text.strip():
        return Snapshot(t_s, {}, source, dict(target or {})), [f"{where}: empty exposition"]
    if "\x00" in text:
        text = text.replace("\x00", "")
        problems.append(f"{where}: contains NUL bytes (binary data?)")
    exposed = _exposed_names(text)
    raw: list[tuple[str, dict[str, str], float]] = []
    try:
        raw = _parse(text)
    except Exception:  # the parser raises several types; recover below
        raw = []
        bad: list[str] = []
        for _start, header, body in _blocks(text.splitlines()):
            block = "\n".join(header + [line for _, line in body]) + "\n"
            try:
                raw.extend(_parse(block))
                continue
            except Exception:
                pass
            type_lines = [h for h in header if h.startswith("# TYPE")]
            for lineno, line in body:
                try:
                    raw.extend(_parse("\n".join(type_lines + [line]) + "\n"))
                except Exception as exc:
                    shown = line if len(line) <= 80 else line[:77] + "..."
                    bad.append(f"{where} line {lineno}: {shown!r}: {exc}")
        problems.extend(bad[:MAX_REPORTED_LINES])
        if len(bad) > MAX_REPORTED_LINES:
            problems.append(f"{where}: {len(bad) - MAX_REPORTED_LINES} more unreadable lines")
    samples: dict[SeriesKey, float] = {}
    for name, labels, value in raw:
        if name not in exposed and name.endswith("_total") and name[:-6] in exposed:
            name = name[:-6]  # undo prometheus_client's counter rename (see module doc)
        samples[(name, frozenset(labels.items()))] = value
    if not samples and not problems:
        problems.append(f"{where}: no samples (only comments?)")
    return Snapshot(t_s, samples, source, dict(target or {})), problems


def read_exposition(
    path: str, *, t_s: float = math.nan, target: Mapping[str, str] | None = None
) -> tuple[Snapshot | None, list[str]]:
    """Read a saved exposition file; a missing or undecodable file is a problem, not a crash."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return None, [f"{path}: cannot read: {exc.strerror or exc}"]
    text = data.decode("utf-8", errors="replace")
    problems = []
    if "\ufffd" in text:
        problems.append(f"{path}: not valid UTF-8 (undecodable bytes replaced)")
    snap, more = parse_exposition(text, t_s=t_s, source=path, target=target)
    return snap, problems + more
