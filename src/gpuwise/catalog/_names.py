"""Forgiving name lookup: users type "H100_SXM", "h100 sxm" or an HF id, and all should work."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """Case and separator differences never distinguish two catalog entries, so drop them."""
    return _SEPARATORS.sub("", name.strip().casefold())


def build_index(entries: Mapping[str, Iterable[str]]) -> tuple[dict[str, str], list[str]]:
    """Map every normalized name to its canonical id; also return the names claimed twice.

    `entries` maps canonical id -> all names that should find it (id, aliases, HF id...).
    """
    index: dict[str, str] = {}
    clashes: list[str] = []
    for canonical, names in entries.items():
        for name in (canonical, *names):
            key = normalize_name(name)
            if not key:
                continue
            owner = index.get(key)
            if owner is not None and owner != canonical:
                clashes.append(f"{name!r} names both {owner!r} and {canonical!r}")
                continue
            index[key] = canonical
    return index, clashes


def suggest(name: str, index: Mapping[str, str]) -> str | None:
    """The canonical id whose names look most like `name`, for a "did you mean" hint."""
    matches = difflib.get_close_matches(normalize_name(name), list(index), n=1, cutoff=0.6)
    return index[matches[0]] if matches else None
