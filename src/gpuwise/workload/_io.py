"""Reading user files so that every problem becomes a WorkloadError, never a traceback.

Trace and length files come from users' logs and are often a little broken (a truncated last line,
a stray header, an Excel export). The messages here name the file, the line and column, and what
to do, because the user fixes the file, not the code.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

import numpy as np

from gpuwise.errors import UserError

_GZIP_MAGIC = b"\x1f\x8b"


class WorkloadError(UserError):
    """A workload input the user must fix; the message names the file, the place and the fix."""


def file_key(path: Path) -> tuple[str, int, int]:
    """A cache key that changes when the file changes, so edited traces are re-read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise WorkloadError(
            f"{path}: no such file; check the path (relative paths in a spec are resolved "
            "against the spec file's folder)"
        ) from None
    except OSError as err:
        raise WorkloadError(f"{path}: cannot read the file ({err.strerror})") from None
    if not path.is_file():
        raise WorkloadError(f"{path}: not a regular file; give the path of a CSV or JSONL file")
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def read_text(path: Path) -> str:
    """The file's text; gzip is detected by its magic bytes so a renamed .gz still reads."""
    file_key(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise WorkloadError(f"{path}: cannot read the file ({err.strerror})") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise WorkloadError(
                f"{path}: the gzip data is damaged ({err}); copy the file again or decompress it"
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise WorkloadError(
            f"{path}: line {line}: the bytes are not UTF-8 text; save the file as UTF-8 "
            "(CSV or JSONL)"
        ) from None


@dataclass(frozen=True, eq=False)
class CsvTable:
    """A CSV file split into string columns, with each row's line number kept for messages."""

    path: Path
    header: tuple[str, ...]
    header_line: int  # 1-based
    line_numbers: np.ndarray  # 1-based line in the file of each data row
    columns: dict[str, tuple[str, ...]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.line_numbers)

    def find(self, *names: str) -> str | None:
        """The header's spelling of the first of ``names`` present, matched case-insensitively."""
        lower = {h.lower(): h for h in self.header}
        for name in names:
            if name.lower() in lower:
                return lower[name.lower()]
        return None

    def numbers(
        self, column: str, *, integer: bool, min_value: float | None = None, fix: str = ""
    ) -> np.ndarray:
        """One column as float64 (or int64), with the first bad cell named if any is wrong."""
        strings = self.columns[column]
        try:
            values = np.array(strings, dtype=np.float64)
        except ValueError:
            for k, s in enumerate(strings):
                try:
                    float(s)
                except ValueError:
                    self.fail(k, column, f"'{s}' is not a number", fix)
            raise  # pragma: no cover - numpy and float() disagree
        bad = ~np.isfinite(values)
        need = "a finite number"
        if integer:
            # Beyond 2**53 a float no longer holds every whole number: a corrupt cell, not data.
            bad |= (values != np.round(values)) | (np.abs(values) >= 2.0**53)
            need = "a whole number"
        if min_value is not None:
            bad |= values < min_value
            need += f" >= {min_value:g}"
        if bad.any():
            k = int(np.argmax(bad))
            self.fail(k, column, f"'{strings[k]}' is not {need}", fix)
        return values.astype(np.int64) if integer else values

    def fail(self, row: int, column: str, problem: str, fix: str) -> NoReturn:
        """Raise the error for one cell, by line and column as an editor shows them."""
        col = self.header.index(column) + 1
        where = f"line {int(self.line_numbers[row])}, column {col} ('{column}')"
        raise WorkloadError(f"{self.path}: {where}: {problem}" + (f"; {fix}" if fix else ""))


def read_csv_table(path: Path) -> CsvTable:
    """Parse once per file version; replay, rate curves and length sampling share the result."""
    return _read_csv_table_cached(path, file_key(path))


@lru_cache(maxsize=32)
def _read_csv_table_cached(path: Path, key: tuple[str, int, int]) -> CsvTable:
    del key  # only part of the cache key
    lines = read_text(path).splitlines()
    numbered = [i for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise WorkloadError(f"{path}: the file is empty; expected a CSV header line and rows")
    try:
        header = tuple(h.strip() for h in next(csv.reader([lines[numbered[0]]])))
        rows = list(csv.reader([lines[i] for i in numbered[1:]]))
    except csv.Error as err:
        raise WorkloadError(f"{path}: not a readable CSV file ({err})") from None
    if len(set(header)) != len(header):
        raise WorkloadError(f"{path}: line {numbered[0] + 1}: a column name appears twice")
    line_numbers = np.asarray(numbered[1:], dtype=np.int64) + 1
    widths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    wrong = np.flatnonzero(widths != len(header))
    if wrong.size:
        k = int(wrong[0])
        raise WorkloadError(
            f"{path}: line {int(line_numbers[k])}: {int(widths[k])} fields, but the header "
            f"has {len(header)} ({','.join(header)}); fix or delete that line"
        )
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return CsvTable(
        path, header, numbered[0] + 1, line_numbers, dict(zip(header, cols, strict=True))
    )


def env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None
