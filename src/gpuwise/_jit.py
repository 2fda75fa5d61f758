"""Keep numba's on-disk caches honest.

numba's ``cache=True`` keys a compiled function on its own source file only, so a function that
inlines another module's code (the perf model's iteration formula, the engine's scheduler step)
keeps running stale machine code after that module changes. Each compiled module calls
``drop_stale_caches`` at import: it hashes every source its functions depend on and, when the
hash moved, flushes its compiled functions so they are rebuilt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def drop_stale_caches(tag: str, sources: Iterable[Path], functions: Mapping[str, Any]) -> None:
    """Flush the cached compiled ``functions`` (a module's globals) when ``sources`` changed."""
    compiled = [f for f in functions.values() if hasattr(getattr(f, "_cache", None), "flush")]
    if not compiled:
        return
    try:
        digest = hashlib.sha256(b"".join(Path(p).read_bytes() for p in sources)).hexdigest()
        cache_dir = Path(compiled[0]._cache._cache_path)  # noqa: SLF001 (numba has no API)
        stamp = cache_dir / f"gpuwise_{tag}_sources.sha256"
        if stamp.is_file() and stamp.read_text() == digest:
            return
        for f in compiled:
            f._cache.flush()  # noqa: SLF001
        cache_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except (OSError, AttributeError):
        pass  # a read-only install: numba then caches elsewhere or compiles each run
