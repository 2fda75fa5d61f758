"""Catalog YAML files to typed records.

Every file, embedded or the user's, goes through the same checks, so a mistake in a user's file
is reported the same way as one in ours: the file, the field path, what is wrong and what to do.
User files extend the embedded catalog or override single fields of its entries, which is why
entries are first collected as drafts and only turned into frozen records once every file is in.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, get_args

import yaml

from ._errors import CatalogError
from ._names import build_index, normalize_name, suggest
from .types import AttentionKind, Gpu, ModelArch, Price, PricingKind, Source

SCHEMA_VERSION = 1
EMBEDDED_FILES = ("gpus.yaml", "models.yaml", "prices.yaml")
TOP_LEVEL_KEYS = frozenset(
    {"schema_version", "gpus", "models", "prices", "gaps", "excluded", "notes"}
)

PRECISIONS = ("bf16", "fp16", "fp8", "int8", "fp4")
VENDORS = ("nvidia", "amd", "intel")
INTERCONNECT_KINDS = ("nvlink", "pcie", "infinity-fabric")
PRICING_KINDS: tuple[str, ...] = get_args(PricingKind)
ATTENTION_KINDS: tuple[str, ...] = get_args(AttentionKind)

# Units a figure may be written in, by dimension, as multiples of the field's own unit.
# Decimal prefixes are decimal (GB = 1e9), binary ones binary (GiB = 2**30): sources mix both.
_UNITS: dict[str, dict[str, float]] = {
    "memory": {
        "bytes": 1,
        "KiB": 2**10,
        "MiB": 2**20,
        "GiB": 2**30,
        "TiB": 2**40,
        "KB": 1e3,
        "MB": 1e6,
        "GB": 1e9,
        "TB": 1e12,
    },
    "bandwidth": {
        "bytes/s": 1,
        "MB/s": 1e6,
        "GB/s": 1e9,
        "TB/s": 1e12,
        "MiB/s": 2**20,
        "GiB/s": 2**30,
    },
    "compute": {"FLOP/s": 1, "GFLOPS": 1e9, "TFLOPS": 1e12, "TOPS": 1e12, "PFLOPS": 1e15},
    "power": {"W": 1, "kW": 1e3},
}
# Units are matched without regard to case: "gib" and "GiB" are the same unit to a reader.
_UNIT_FACTORS = {
    dimension: {unit.casefold(): factor for unit, factor in units.items()}
    for dimension, units in _UNITS.items()
}

_GPU_FIGURES = {
    "memory_bytes": "memory",
    "memory_bandwidth_bytes_per_s": "bandwidth",
    "interconnect_bytes_per_s": "bandwidth",
    "tdp_w": "power",
}
_GPU_KEYS = frozenset(
    {*_GPU_FIGURES, "display_name", "vendor", "aliases", "interconnect_kind", "flops_per_s"}
)
_FIGURE_KEYS = frozenset({"value", "unit", "source", "date"})

_MODEL_REQUIRED_INTS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
)
_MODEL_OPTIONAL_INTS = (
    "num_experts",
    "experts_per_token",
    "moe_intermediate_size",
    "shared_experts",
    "first_k_dense",
    "kv_lora_rank",
    "q_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "published_params",
    "published_active_params",
)
_MODEL_BOOLS = ("tie_embeddings", "qkv_bias")
_MODEL_FIGURES = (*_MODEL_REQUIRED_INTS, *_MODEL_OPTIONAL_INTS, *_MODEL_BOOLS, "attention")
_MODEL_KEYS = frozenset({*_MODEL_FIGURES, "hf_id", "aliases", "source", "date", "sources"})

_PRICE_KEYS = frozenset(
    {
        "gpu",
        "provider",
        "offering",
        "pricing",
        "usd_per_gpu_hour",
        "usd_per_instance_hour",
        "gpus_per_instance",
        "region",
        "date",
        "source",
        "via",
        "note",
        "derived",
        "historical",
    }
)
_NOT_STATED = "(not stated)"
# An instance price and a per-GPU price given together must agree this closely (rounding only).
_PRICE_AGREEMENT = 0.01


@dataclass(frozen=True)
class _Where:
    """Which file a value came from, so that every error can point at it."""

    label: str
    user: bool

    def fail(self, path: str, problem: str) -> NoReturn:
        hint = (
            "fix the file, or drop it from GPUWISE_CATALOG or the catalog paths passed to gpuwise"
            if self.user
            else "this is a bug in gpuwise's embedded catalog; please report it"
        )
        where = f"{self.label}: {path}" if path else self.label
        raise CatalogError(f"{where}: {problem}; {hint}")

    @property
    def default_source(self) -> Source:
        return Source(source=self.label, date="undated")


@dataclass
class _GpuDraft:
    name: str
    origins: list[str]
    display_name: str | None = None
    vendor: str | None = None
    interconnect_kind: str | None = None
    aliases: list[str] = field(default_factory=list)
    figures: dict[str, tuple[float, Source]] = field(default_factory=dict)
    flops: dict[str, tuple[float, Source]] = field(default_factory=dict)


@dataclass
class _ModelDraft:
    name: str
    origins: list[str]
    hf_id: str | None = None
    aliases: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedCatalog:
    """Everything read from the catalog files, checked and merged, ready for lookups."""

    gpus: dict[str, Gpu]
    models: dict[str, ModelArch]
    prices: tuple[Price, ...]
    price_gaps: tuple[str, ...]
    files: tuple[str, ...]


# ------------------------------------------------------------------------------------ reading


def read_embedded() -> list[tuple[_Where, dict[str, Any]]]:
    data_dir = resources.files("gpuwise.catalog").joinpath("data")
    documents = []
    for name in EMBEDDED_FILES:
        where = _Where(label=f"embedded catalog file {name}", user=False)
        text = data_dir.joinpath(name).read_text(encoding="utf-8")
        documents.append((where, _parse_document(text, where)))
    return documents


def read_user_file(path: Path) -> tuple[_Where, dict[str, Any]]:
    where = _Where(label=f"catalog file {path}", user=True)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where.fail("", "the file does not exist (check the path)")
    except OSError as exc:
        where.fail("", f"cannot be read ({exc.strerror or exc})")
    return where, _parse_document(text, where)


def _parse_document(text: str, where: _Where) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        where.fail("", f"is not valid YAML ({problem}{at})")
    if data is None:
        return {}
    if not isinstance(data, dict):
        where.fail("", "must be a mapping with any of the keys gpus, models, prices")
    unknown = sorted(str(key) for key in data if key not in TOP_LEVEL_KEYS)
    if unknown:
        where.fail(
            unknown[0], f"unknown key (expected some of {', '.join(sorted(TOP_LEVEL_KEYS))})"
        )
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        where.fail("schema_version", f"is {version!r}; this gpuwise reads {SCHEMA_VERSION}")
    return data


# ------------------------------------------------------------------------------------ scalars


def _mapping(raw: Any, path: str, where: _Where) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        where.fail(path, f"must be a mapping, not {type(raw).__name__}")
    return raw


def _check_keys(raw: Mapping[str, Any], allowed: frozenset[str], path: str, where: _Where) -> None:
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        where.fail(
            f"{path}.{unknown[0]}", f"unknown field (expected one of {', '.join(sorted(allowed))})"
        )


def _text(raw: Any, path: str, where: _Where) -> str:
    # YAML reads an unquoted 2026-11-09 as a date; a date is still a fine text value here.
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if not isinstance(raw, str) or not raw.strip():
        where.fail(path, "must be a non-empty text")
    return raw.strip()


def _number(raw: Any, path: str, where: _Where) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        where.fail(path, f"must be a number, not {raw!r}")
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        where.fail(path, f"must be a positive number, not {raw!r}")
    return value


def _int(raw: Any, path: str, where: _Where, *, positive: bool) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        where.fail(path, f"must be a whole number, not {raw!r}")
    if raw < 0 or (positive and raw == 0):
        where.fail(path, f"must be {'positive' if positive else 'zero or more'}, not {raw}")
    return raw


def _bool(raw: Any, path: str, where: _Where) -> bool:
    if not isinstance(raw, bool):
        where.fail(path, f"must be true or false, not {raw!r}")
    return raw


def _choice(raw: Any, choices: Sequence[str], path: str, where: _Where) -> str:
    value = _text(raw, path, where)
    if value not in choices:
        where.fail(path, f"is {value!r}; expected one of {', '.join(choices)}")
    return value


def _names(raw: Any, path: str, where: _Where) -> list[str]:
    if not isinstance(raw, list):
        where.fail(path, "must be a list of names")
    return [_text(item, f"{path}[{i}]", where) for i, item in enumerate(raw)]


def _source(raw: Mapping[str, Any], path: str, where: _Where, default: Source) -> Source:
    """The source and date of one figure; the embedded catalog must state both."""
    if not where.user:
        for key in ("source", "date"):
            if key not in raw:
                where.fail(
                    f"{path}.{key}", "missing: every embedded figure names its source and date"
                )
    source = _text(raw["source"], f"{path}.source", where) if "source" in raw else default.source
    date = _text(raw["date"], f"{path}.date", where) if "date" in raw else default.date
    return Source(source=source, date=date)


def _figure(
    raw: Any, dimension: str, path: str, where: _Where, default: Source
) -> tuple[float, Source]:
    """A measured quantity in the field's own unit, from a bare number or {value, unit, ...}."""
    if not isinstance(raw, dict):
        if not where.user:
            where.fail(path, "must be {value, unit, source, date} in the embedded catalog")
        return _number(raw, path, where), default
    _check_keys(raw, _FIGURE_KEYS, path, where)
    if "value" not in raw:
        where.fail(f"{path}.value", "missing")
    value = _number(raw["value"], f"{path}.value", where)
    if "unit" in raw:
        unit = _text(raw["unit"], f"{path}.unit", where)
        factor = _UNIT_FACTORS[dimension].get(unit.casefold())
        if factor is None:
            where.fail(
                f"{path}.unit",
                f"unknown {dimension} unit {unit!r} "
                f"(expected one of {', '.join(_UNITS[dimension])})",
            )
        value *= factor
    return value, _source(raw, path, where, default)


# ------------------------------------------------------------------------------------ entries


def _entry_source(raw: Mapping[str, Any], path: str, where: _Where) -> Source:
    """An entry-wide source and date, inherited by every figure that names none of its own."""
    default = where.default_source
    source = _text(raw["source"], f"{path}.source", where) if "source" in raw else default.source
    date = _text(raw["date"], f"{path}.date", where) if "date" in raw else default.date
    return Source(source=source, date=date)


def _apply_gpu(draft: _GpuDraft, raw: Any, path: str, where: _Where) -> None:
    entry = _mapping(raw, path, where)
    _check_keys(entry, _GPU_KEYS, path, where)
    default = where.default_source
    if "display_name" in entry:
        draft.display_name = _text(entry["display_name"], f"{path}.display_name", where)
    if "vendor" in entry:
        draft.vendor = _choice(entry["vendor"], VENDORS, f"{path}.vendor", where)
    if "interconnect_kind" in entry:
        draft.interconnect_kind = _choice(
            entry["interconnect_kind"], INTERCONNECT_KINDS, f"{path}.interconnect_kind", where
        )
    if "aliases" in entry:
        for alias in _names(entry["aliases"], f"{path}.aliases", where):
            if alias not in draft.aliases:
                draft.aliases.append(alias)
    for name, dimension in _GPU_FIGURES.items():
        if name in entry:
            draft.figures[name] = _figure(entry[name], dimension, f"{path}.{name}", where, default)
    if "flops_per_s" in entry:
        flops = _mapping(entry["flops_per_s"], f"{path}.flops_per_s", where)
        _check_keys(flops, frozenset(PRECISIONS), f"{path}.flops_per_s", where)
        for precision, figure in flops.items():
            draft.flops[precision] = _figure(
                figure, "compute", f"{path}.flops_per_s.{precision}", where, default
            )


def _apply_model(draft: _ModelDraft, raw: Any, path: str, where: _Where) -> None:
    entry = _mapping(raw, path, where)
    _check_keys(entry, _MODEL_KEYS, path, where)
    default = _entry_source(entry, path, where)
    if "hf_id" in entry:
        draft.hf_id = _text(entry["hf_id"], f"{path}.hf_id", where)
    if "aliases" in entry:
        for alias in _names(entry["aliases"], f"{path}.aliases", where):
            if alias not in draft.aliases:
                draft.aliases.append(alias)
    overrides: dict[str, Source] = {}
    if "sources" in entry:
        sources = _mapping(entry["sources"], f"{path}.sources", where)
        _check_keys(sources, frozenset(_MODEL_FIGURES), f"{path}.sources", where)
        for name, item in sources.items():
            item_path = f"{path}.sources.{name}"
            item = _mapping(item, item_path, where)
            _check_keys(item, frozenset({"source", "date"}), item_path, where)
            overrides[name] = _source(item, item_path, where, default)
    for name in _MODEL_FIGURES:
        if name not in entry:
            continue
        item_path = f"{path}.{name}"
        raw_value = entry[name]
        source = overrides.get(name, default)
        if isinstance(raw_value, dict):
            _check_keys(raw_value, frozenset({"value", "source", "date"}), item_path, where)
            if "value" not in raw_value:
                where.fail(f"{item_path}.value", "missing")
            source = _source(raw_value, item_path, where, source)
            raw_value = raw_value["value"]
            item_path = f"{item_path}.value"
        if name == "attention":
            value: Any = _choice(raw_value, ATTENTION_KINDS, item_path, where)
        elif name in _MODEL_BOOLS:
            value = _bool(raw_value, item_path, where)
        else:
            value = _int(raw_value, item_path, where, positive=name in _MODEL_REQUIRED_INTS)
        draft.values[name] = value
        draft.sources[name] = source
    for name in overrides:
        if name not in entry and name not in draft.values:
            where.fail(
                f"{path}.sources.{name}", "names the source of a field the entry does not set"
            )
        if name not in entry:
            draft.sources[name] = overrides[name]


def _gpu_names(draft: _GpuDraft) -> list[str]:
    return [*(draft.aliases), *([draft.display_name] if draft.display_name else [])]


def _model_names(draft: _ModelDraft) -> list[str]:
    names = list(draft.aliases)
    if draft.hf_id:
        names += [draft.hf_id, draft.hf_id.rsplit("/", 1)[-1]]
    return names


def _resolve_key(key: Any, path: str, where: _Where, index: Mapping[str, str]) -> tuple[str, bool]:
    """The canonical id an entry key refers to, and whether it names an existing entry."""
    name = _text(key, path, where)
    existing = index.get(normalize_name(name))
    if existing is not None:
        return existing, True
    return name.casefold(), False


# ------------------------------------------------------------------------------------ finishing


def _finish_gpu(draft: _GpuDraft) -> Gpu:
    where = _Where(label=" and ".join(draft.origins), user=True)
    path = f"gpus.{draft.name}"
    missing = [name for name in ("vendor", "interconnect_kind") if getattr(draft, name) is None]
    missing += [name for name in _GPU_FIGURES if name not in draft.figures]
    if missing:
        where.fail(
            f"{path}.{missing[0]}",
            "missing: a GPU needs "
            + ", ".join(sorted(_GPU_FIGURES))
            + ", vendor and interconnect_kind",
        )
    if not ({"bf16", "fp16"} & draft.flops.keys()):
        where.fail(
            f"{path}.flops_per_s", "needs at least bf16 or fp16, the rate the perf model uses"
        )
    sources = {name: figure[1] for name, figure in draft.figures.items()}
    sources.update({f"flops_per_s.{p}": figure[1] for p, figure in draft.flops.items()})
    return Gpu(
        name=draft.name,
        display_name=draft.display_name or draft.name,
        vendor=draft.vendor or "",
        memory_bytes=int(round(draft.figures["memory_bytes"][0])),
        memory_bandwidth_bytes_per_s=draft.figures["memory_bandwidth_bytes_per_s"][0],
        flops_per_s={p: draft.flops[p][0] for p in PRECISIONS if p in draft.flops},
        interconnect_bytes_per_s=draft.figures["interconnect_bytes_per_s"][0],
        interconnect_kind=draft.interconnect_kind or "",
        tdp_w=draft.figures["tdp_w"][0],
        aliases=tuple(draft.aliases),
        sources=sources,
    )


def _finish_model(draft: _ModelDraft) -> ModelArch:
    where = _Where(label=" and ".join(draft.origins), user=True)
    path = f"models.{draft.name}"
    if draft.hf_id is None:
        where.fail(f"{path}.hf_id", "missing: name the model's Hugging Face id")
    for name in (*_MODEL_REQUIRED_INTS, "attention"):
        if name not in draft.values:
            where.fail(
                f"{path}.{name}",
                "missing: a model needs " + ", ".join(_MODEL_REQUIRED_INTS) + " and attention",
            )
    values = draft.values
    if values["num_heads"] % values["num_kv_heads"]:
        where.fail(f"{path}.num_kv_heads", "must divide num_heads")
    if values.get("experts_per_token", 0) > values.get("num_experts", 0):
        where.fail(f"{path}.experts_per_token", "exceeds num_experts")
    if values.get("num_experts", 0) and not values.get("moe_intermediate_size", 0):
        where.fail(f"{path}.moe_intermediate_size", "missing: an MoE model needs its expert width")
    if values["attention"] == "mla" and not values.get("kv_lora_rank", 0):
        where.fail(f"{path}.kv_lora_rank", "missing: MLA attention needs kv_lora_rank")
    return ModelArch(
        name=draft.name,
        hf_id=draft.hf_id,
        aliases=tuple(draft.aliases),
        sources=dict(draft.sources),
        **values,
    )


def _parse_price(
    raw: Any, path: str, where: _Where, gpu_index: Mapping[str, str]
) -> tuple[tuple[str, ...], Price]:
    row = _mapping(raw, path, where)
    _check_keys(row, _PRICE_KEYS, path, where)
    for key in ("gpu", "provider", "pricing", "date"):
        if key not in row:
            where.fail(f"{path}.{key}", "missing")
    if not where.user and "source" not in row:
        where.fail(f"{path}.source", "missing: every embedded price names its source")
    gpu_name = _text(row["gpu"], f"{path}.gpu", where)
    gpu = gpu_index.get(normalize_name(gpu_name))
    if gpu is None:
        hint = suggest(gpu_name, gpu_index)
        where.fail(
            f"{path}.gpu",
            f"unknown GPU {gpu_name!r}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + " (add the GPU under gpus: first, or use a name from `gpuwise catalog gpus`)",
        )
    pricing = _choice(row["pricing"], PRICING_KINDS, f"{path}.pricing", where)
    notes = [_text(row["note"], f"{path}.note", where)] if "note" in row else []
    derived = _text(row["derived"], f"{path}.derived", where) if "derived" in row else None
    per_gpu = (
        _number(row["usd_per_gpu_hour"], f"{path}.usd_per_gpu_hour", where)
        if "usd_per_gpu_hour" in row
        else None
    )
    if "usd_per_instance_hour" in row or "gpus_per_instance" in row:
        for key in ("usd_per_instance_hour", "gpus_per_instance"):
            if key not in row:
                where.fail(
                    f"{path}.{key}",
                    "missing: an instance price needs both the price and the GPU count",
                )
        per_instance = _number(row["usd_per_instance_hour"], f"{path}.usd_per_instance_hour", where)
        count = _int(row["gpus_per_instance"], f"{path}.gpus_per_instance", where, positive=True)
        implied = per_instance / count
        if per_gpu is None:
            per_gpu = implied
            derived = f"{per_instance:g} USD per instance-hour / {count} GPUs"
        elif abs(per_gpu - implied) > _PRICE_AGREEMENT * implied:
            where.fail(
                f"{path}.usd_per_gpu_hour",
                f"{per_gpu:g} disagrees with usd_per_instance_hour / gpus_per_instance "
                f"= {implied:g}",
            )
        else:
            notes.append(f"instance: {per_instance:g} USD/hour for {count} GPUs")
    if per_gpu is None:
        where.fail(
            f"{path}.usd_per_gpu_hour",
            "missing: give it, or usd_per_instance_hour and gpus_per_instance",
        )
    if derived:
        notes.append(f"derived per-GPU price: {derived}")
    if "via" in row:
        notes.append(f"via {_text(row['via'], f'{path}.via', where)}")
    source = Source(
        source=_text(row["source"], f"{path}.source", where) if "source" in row else where.label,
        date=_text(row["date"], f"{path}.date", where),
    )
    provider = _text(row["provider"], f"{path}.provider", where)
    offering = (
        _text(row["offering"], f"{path}.offering", where) if "offering" in row else _NOT_STATED
    )
    region = _text(row["region"], f"{path}.region", where) if "region" in row else _NOT_STATED
    historical = (
        _bool(row["historical"], f"{path}.historical", where) if "historical" in row else False
    )
    price = Price(
        gpu=gpu,
        provider=provider,
        offering=offering,
        pricing=pricing,  # type: ignore[arg-type]  # checked against PricingKind above
        usd_per_gpu_hour=per_gpu,
        region=region,
        source=source,
        note="; ".join(notes),
        historical=historical,
    )
    key = (gpu, provider.casefold(), offering.casefold(), pricing, region.casefold())
    return key, price


def load_documents(documents: Sequence[tuple[_Where, dict[str, Any]]]) -> LoadedCatalog:
    """Merge parsed files, embedded first, later files extending or overriding earlier ones."""
    gpu_drafts: dict[str, _GpuDraft] = {}
    model_drafts: dict[str, _ModelDraft] = {}
    price_rows: list[tuple[_Where, str, Any]] = []
    gaps: list[str] = []
    for where, data in documents:
        gpus = _mapping(data.get("gpus", {}) or {}, "gpus", where)
        gpu_index, _ = build_index({k: _gpu_names(d) for k, d in gpu_drafts.items()})
        for key, raw in gpus.items():
            name, exists = _resolve_key(key, f"gpus.{key}", where, gpu_index)
            draft = gpu_drafts.get(name) if exists else None
            if draft is None:
                draft = gpu_drafts[name] = _GpuDraft(name=name, origins=[])
            if where.label not in draft.origins:
                draft.origins.append(where.label)
            _apply_gpu(draft, raw, f"gpus.{key}", where)
        models = _mapping(data.get("models", {}) or {}, "models", where)
        model_index, _ = build_index({k: _model_names(d) for k, d in model_drafts.items()})
        for key, raw in models.items():
            name, exists = _resolve_key(key, f"models.{key}", where, model_index)
            model_draft = model_drafts.get(name) if exists else None
            if model_draft is None:
                model_draft = model_drafts[name] = _ModelDraft(name=name, origins=[])
            if where.label not in model_draft.origins:
                model_draft.origins.append(where.label)
            _apply_model(model_draft, raw, f"models.{key}", where)
        rows = data.get("prices", []) or []
        if not isinstance(rows, list):
            where.fail("prices", "must be a list of price rows")
        price_rows += [(where, f"prices[{i}]", row) for i, row in enumerate(rows)]
        raw_gaps = data.get("gaps", []) or []
        gaps += _names(raw_gaps, "gaps", where)

    gpus = {name: _finish_gpu(draft) for name, draft in gpu_drafts.items()}
    models = {name: _finish_model(draft) for name, draft in model_drafts.items()}
    gpu_index, clashes = build_index({k: _gpu_names(d) for k, d in gpu_drafts.items()})
    if clashes:
        origins = " and ".join(sorted({o for d in gpu_drafts.values() for o in d.origins}))
        raise CatalogError(
            f"GPU names clash in {origins}: {clashes[0]}; rename or drop one of them"
        )
    _, model_clashes = build_index({k: _model_names(d) for k, d in model_drafts.items()})
    if model_clashes:
        origins = " and ".join(sorted({o for d in model_drafts.values() for o in d.origins}))
        raise CatalogError(
            f"model names clash in {origins}: {model_clashes[0]}; rename or drop one of them"
        )
    prices: dict[tuple[str, ...], Price] = {}
    for where, path, raw in price_rows:
        key, price = _parse_price(raw, path, where, gpu_index)
        prices[key] = price
    return LoadedCatalog(
        gpus=gpus,
        models=models,
        prices=tuple(prices.values()),
        price_gaps=tuple(gaps),
        files=tuple(where.label for where, _ in documents),
    )
