"""The embedded catalog of GPUs, model architectures and prices, each figure with its source.

Plans and bills are only as good as the numbers under them, so every figure here says where it
came from and when; users can add or correct entries with their own YAML files (same schema as
the embedded ones in `data/`), named by `load_catalog(extra_paths)` or by the `GPUWISE_CATALOG`
environment variable (paths separated by `os.pathsep`). Later files win over earlier ones, and
explicit paths over the environment.

    >>> from gpuwise.catalog import get_gpu, get_model, default_price
    >>> get_gpu("H100_SXM").memory_bytes
    85899345920
    >>> get_model("meta-llama/Llama-3.1-8B").num_kv_heads
    8
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import CatalogError
from ._names import build_index, normalize_name, suggest
from ._parse import PRICING_KINDS, LoadedCatalog, load_documents, read_embedded, read_user_file
from .types import AttentionKind, Gpu, ModelArch, Price, PricingKind, Source

__all__ = [
    "ENV_VAR",
    "AttentionKind",
    "Catalog",
    "CatalogError",
    "Gpu",
    "ModelArch",
    "Price",
    "PricingKind",
    "Source",
    "default_catalog",
    "default_price",
    "get_gpu",
    "get_model",
    "load_catalog",
]

ENV_VAR = "GPUWISE_CATALOG"

# A price row is "dated" when its date starts with a calendar date (not "undated (...)").
_DATED = re.compile(r"^\d{4}-\d{2}")


@dataclass(frozen=True)
class Catalog:
    """GPUs, models and prices by canonical id; lookups accept any alias, case and separators."""

    gpus: dict[str, Gpu]
    models: dict[str, ModelArch]
    prices: tuple[Price, ...]
    # What the price data lacks, in words, so a report can say why a default is missing.
    price_gaps: tuple[str, ...] = ()
    # The files this catalog was read from, embedded first, for provenance in reports.
    files: tuple[str, ...] = ()
    _gpu_index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _model_index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built here rather than by the loader so that a hand-made Catalog (tests) also resolves.
        gpu_index, _ = build_index(
            {g.name: (*g.aliases, g.display_name) for g in self.gpus.values()}
        )
        model_names = {
            m.name: (*m.aliases, m.hf_id, m.hf_id.rsplit("/", 1)[-1]) for m in self.models.values()
        }
        model_index, _ = build_index(model_names)
        object.__setattr__(self, "_gpu_index", gpu_index)
        object.__setattr__(self, "_model_index", model_index)

    def gpu(self, name: str) -> Gpu:
        """The GPU a user means by `name` ("H100 SXM 80GB", "h100_sxm", "h100-sxm"...)."""
        return self.gpus[self._resolve(name, self._gpu_index, "GPU", "gpus")]

    def model(self, name: str) -> ModelArch:
        """The model a user means by `name`: canonical id, alias or Hugging Face id."""
        return self.models[self._resolve(name, self._model_index, "model", "models")]

    def prices_for(self, gpu: str, pricing: PricingKind | None = None) -> tuple[Price, ...]:
        """Every known price of a GPU, cheapest first, optionally of one pricing kind only."""
        canonical = self.gpu(gpu).name
        _check_pricing(pricing)
        rows = [
            p
            for p in self.prices
            if p.gpu == canonical and (pricing is None or p.pricing == pricing)
        ]
        return tuple(sorted(rows, key=_price_order))

    def default_price(self, gpu: str, pricing: PricingKind = "on-demand") -> Price:
        """A representative price: the median dated offer, so no single outlier sets the bill.

        Among the GPU's rows of this pricing kind that are not historical and carry an observation
        date, sorted by (price, provider, offering, region), the median row is returned (the lower
        middle one for an even count), so the answer is always a real, citable offer and the same
        catalog always gives the same answer. Undated rows are used only when no dated row exists.
        """
        canonical = self.gpu(gpu).name
        _check_pricing(pricing)
        current = [p for p in self.prices_for(canonical, pricing) if not p.historical]
        dated = [p for p in current if _DATED.match(p.source.date)]
        pool = dated or current
        if not pool:
            raise CatalogError(
                f"no {pricing} price for GPU {canonical!r} in the catalog; set a price override "
                f"for this GPU in the spec (what you actually pay per GPU-hour), or add a "
                f"`prices:` row for it in a catalog file named by {ENV_VAR}"
            )
        return pool[(len(pool) - 1) // 2]

    def _resolve(self, name: str, index: dict[str, str], kind: str, listing: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise CatalogError(
                f"a {kind} name must be a non-empty text, not {name!r}; "
                f"list the known ones with `gpuwise catalog {listing}`"
            )
        canonical = index.get(normalize_name(name))
        if canonical is not None:
            return canonical
        hint = suggest(name, index)
        did_you_mean = f"; did you mean {hint!r}?" if hint else "."
        raise CatalogError(
            f"unknown {kind} {name!r}{did_you_mean} List the known ones with "
            f"`gpuwise catalog {listing}`, or add your own in a catalog file named by {ENV_VAR}."
        )


def _check_pricing(pricing: str | None) -> None:
    if pricing is not None and pricing not in PRICING_KINDS:
        raise CatalogError(
            f"unknown pricing kind {pricing!r}; use one of {', '.join(PRICING_KINDS)}"
        )


def _price_order(price: Price) -> tuple[float, str, str, str, str]:
    return (
        price.usd_per_gpu_hour,
        price.provider.casefold(),
        price.offering.casefold(),
        price.region.casefold(),
        price.source.date,
    )


def _env_paths() -> tuple[Path, ...]:
    raw = os.environ.get(ENV_VAR, "")
    return tuple(Path(part).expanduser() for part in raw.split(os.pathsep) if part.strip())


def _file_key(path: Path) -> tuple[str, int, int]:
    """Identity of a file's content for the cache: an edited file must be read again."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return (str(resolved), -1, -1)  # read_user_file reports the missing file
    return (str(resolved), stat.st_mtime_ns, stat.st_size)


def load_catalog(extra_paths: Sequence[Path | str] = ()) -> Catalog:
    """The embedded catalog, extended by the files in GPUWISE_CATALOG, then by `extra_paths`.

    Cached: the same files, unchanged on disk, give the same Catalog object without re-reading.
    """
    paths = (*_env_paths(), *(Path(p).expanduser() for p in extra_paths))
    return _load_cached(tuple(_file_key(p) for p in paths))


@functools.lru_cache(maxsize=32)
def _load_cached(file_keys: tuple[tuple[str, int, int], ...]) -> Catalog:
    documents = read_embedded()
    documents += [read_user_file(Path(key[0])) for key in file_keys]
    loaded: LoadedCatalog = load_documents(documents)
    return Catalog(
        gpus=loaded.gpus,
        models=loaded.models,
        prices=loaded.prices,
        price_gaps=loaded.price_gaps,
        files=loaded.files,
    )


def default_catalog() -> Catalog:
    """The catalog most callers want: embedded data plus the user's GPUWISE_CATALOG files."""
    return load_catalog()


def get_gpu(name: str) -> Gpu:
    """Shorthand for `default_catalog().gpu(name)`."""
    return default_catalog().gpu(name)


def get_model(name: str) -> ModelArch:
    """Shorthand for `default_catalog().model(name)`."""
    return default_catalog().model(name)


def default_price(gpu: str, pricing: PricingKind = "on-demand") -> Price:
    """Shorthand for `default_catalog().default_price(gpu, pricing)`."""
    return default_catalog().default_price(gpu, pricing)
