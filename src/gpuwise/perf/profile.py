"""Efficiency profiles: the handful of fitted numbers that turn a roofline into a prediction.

Spec sheets give peak FLOP/s and bandwidth; real engines reach a fraction of them, lose time to
kernel launches and scheduling, and pay a latency on every tensor-parallel all-reduce. A profile
holds those fractions and latencies. They are fitted to measurements (``gpuwise.perf.calibrate``),
saved as a small YAML file, and accepted by every command with ``--profile``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from gpuwise.errors import UserError

PROFILE_DIR = Path(__file__).with_name("profiles")


class PerfError(UserError):
    """A configuration the perf model cannot evaluate (bad profile, model that does not fit)."""


@dataclass(frozen=True)
class Profile:
    """Efficiency factors of one engine on one kind of hardware.

    The compute efficiency saturates with the size of the matmuls each GPU runs: a GPU needs
    enough rows to fill its tensor cores, and a faster GPU needs more (``compute_half_sat`` is
    the per-GPU matmul size, in FLOPs per layer, at which half of ``compute_eff`` is reached, for
    a GPU of 312 dense TFLOP/s; it scales with the GPU's peak).
    """

    name: str = "default"
    description: str = ""
    compute_eff: float = 0.7  # share of dense peak FLOP/s reached by large matmuls
    compute_half_sat_flops: float = 2.0e9  # per-GPU per-layer matmul FLOPs at half saturation
    memory_eff: float = 0.8  # share of peak HBM bandwidth reached by weight/KV streaming
    overhead_s: float = 0.005  # fixed per-iteration cost (scheduler, launches, sampling)
    overhead_per_layer_s: float = 0.0  # per layer per iteration (kernel launches)
    # Per sequence per iteration: turning each sequence's new token into output (sampling
    # bookkeeping, detokenization, streaming it out). Negligible beside a GPU's matmuls; on a
    # CPU engine whose API server and clients share its cores it grows with the batch. Linear
    # in the batch, so the simulator's closed-form decode runs still hold.
    overhead_per_seq_s: float = 0.0
    # Per request, outside the engine's iterations: HTTP, admission and tokenization on the way
    # in, the last output's trip back to the client. It delays what a client sees (TTFT and
    # end-to-end) but costs the engine no iteration time. Fitted by client-side calibration;
    # 0 for profiles fitted on engine-side times (they predict what the engine measures).
    request_overhead_s: float = 0.0
    allreduce_latency_s: float = 2.0e-5  # per all-reduce per log2(TP) step at 300 GB/s links
    allreduce_bw_eff: float = 0.7  # share of link bandwidth reached by ring all-reduce
    activation_reserve_bytes: float = 1.0 * 2**30  # CUDA context, graphs, allocator slack
    # Cold start: pulling the image and warming the engine are not weight loading
    engine_warmup_s: float = 20.0
    fitted_on: str = ""  # what measurements produced these numbers
    fit_error: dict[str, float] = field(default_factory=dict)  # e.g. median abs rel error

    def to_yaml(self) -> str:
        return yaml.safe_dump({"profile": asdict(self)}, sort_keys=False)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(self.to_yaml(), encoding="utf-8")
        tmp.replace(p)  # nothing half-written if interrupted
        return p


_FIELDS = {f.name for f in fields(Profile)}


def profile_from_dict(data: Any, source: str) -> Profile:
    if not isinstance(data, dict) or not isinstance(data.get("profile"), dict):
        raise PerfError(f"{source}: a profile file must have a top-level 'profile' mapping")
    body = data["profile"]
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise PerfError(f"{source}: profile.{unknown[0]}: unknown field")
    out: dict[str, Any] = {}
    for f in fields(Profile):
        if f.name not in body:
            continue
        v = body[f.name]
        if f.name in ("name", "description", "fitted_on"):
            out[f.name] = str(v)
        elif f.name == "fit_error":
            out[f.name] = {str(k): float(x) for k, x in (v or {}).items()}
        else:
            try:
                out[f.name] = float(v)
            except (TypeError, ValueError):
                raise PerfError(f"{source}: profile.{f.name}: must be a number") from None
            if out[f.name] < 0:
                raise PerfError(f"{source}: profile.{f.name}: must not be negative")
    for name in ("compute_eff", "memory_eff", "allreduce_bw_eff"):
        if name in out and not 0 < out[name] <= 1:
            raise PerfError(f"{source}: profile.{name}: must lie in (0, 1]")
    return Profile(**out)


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path | None = None) -> Profile:
    """A built-in profile by name (``default``, ``cpu-tiny-llama``) or a profile file by path."""
    if name_or_path is None:
        name_or_path = "default"
    p = Path(name_or_path)
    if not p.is_file():
        builtin = PROFILE_DIR / f"{name_or_path}.yaml"
        if not builtin.is_file():
            raise PerfError(
                f"profile '{name_or_path}': no such file or built-in profile "
                f"(built-in: {', '.join(builtin_profiles())}; write one with 'gpuwise calibrate')"
            )
        p = builtin
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise PerfError(f"{p}: not valid YAML: {err}") from None
    return profile_from_dict(data, str(p))
