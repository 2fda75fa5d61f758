"""What every ``observe`` entry point returns: signals plus an honest account of the gaps."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuwise.observe.dialects import UNKNOWN, Dialect
from gpuwise.signals import Signals

__all__ = ["Observation"]


@dataclass
class Observation:
    """Signals per deployment, the dialect they were read in, and what could not be read.

    * ``unreadable``: input that was there but could not be used (a replica that did not
      answer, a garbage line, a Prometheus query that failed);
    * ``missing``: a signal the input cannot provide, with the reason (``"tiny: kv_usage: TGI
      exports no KV-cache usage gauge"``), so a NaN in ``signals`` is never unexplained;
    * ``notes``: how a value was derived or where it is only a bound (a quantile that landed in
      the ``+Inf`` bucket);
    * ``extra``: per deployment, GPU facts the canonical record has no field for
      (``gpu_memory_used_bytes``, ``gpu_power_w``).
    """

    signals: list[Signals]
    dialect: Dialect = UNKNOWN
    unreadable: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when at least one deployment has signals and nothing was unreadable."""
        return bool(self.signals) and not self.unreadable

    def as_dict(self) -> dict:
        return {
            "dialect": {
                "key": self.dialect.key,
                "engine": self.dialect.engine,
                "title": self.dialect.title,
                "version_range": self.dialect.version_range,
            },
            "signals": [s.as_dict() for s in self.signals],
            "unreadable": list(self.unreadable),
            "missing": list(self.missing),
            "notes": list(self.notes),
            "extra": {k: dict(v) for k, v in self.extra.items()},
        }
