"""The ``gpuwise`` command line: parse arguments, call one library function, render its result.

Every user error is a ``UserError``: printed as one message, exit code 2, no traceback. Every
command that prints a result accepts ``--json`` and then prints exactly one JSON document.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from gpuwise.errors import UserError

if TYPE_CHECKING:  # the commands import what they run when they run (a fast --help)
    from gpuwise.report import Comparison
    from gpuwise.report.seeds import SeedSpread

app = typer.Typer(
    name="gpuwise",
    help="A DevOps engineer for GPU model serving: plan, simulate, autoscale, diagnose, price.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="The embedded catalog: GPUs, models, prices (with sources).", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")

# Pipes and CI logs get 120 columns rather than rich's 80, so tables stay on one line each.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]
CatalogOpt = Annotated[
    list[Path] | None,
    typer.Option("--catalog", help="Extra catalog file (YAML) extending the embedded one."),
]


def user_errors(fn: F) -> F:
    """Turn a UserError into one clear line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", soft_wrap=True, markup=True, highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def _catalog(extra: list[Path] | None):  # noqa: ANN202 - Catalog imported lazily
    from gpuwise.catalog import load_catalog

    return load_catalog(tuple(extra or ()))


# ----------------------------------------------------------------------------- catalog


@catalog_app.command("gpus")
@user_errors
def catalog_gpus(json_out: JsonOpt = False, catalog: CatalogOpt = None) -> None:
    """GPU types: memory, bandwidth, dense FLOP/s, interconnect, power."""
    cat = _catalog(catalog)
    gpus = sorted(cat.gpus.values(), key=lambda g: g.name)
    if json_out:
        print_json(gpus)
        return
    t = Table(title="GPUs (dense tensor FLOP/s; sources: gpuwise catalog gpus --json)")
    for col in (
        "id",
        "name",
        "memory GB",
        "HBM TB/s",
        "bf16 TFLOP/s",
        "fp8 TFLOP/s",
        "int8 TOP/s",
        "link GB/s",
        "TDP W",
    ):
        t.add_column(col, justify="left" if col in ("id", "name") else "right")
    for g in gpus:
        f = g.flops_per_s

        def tf(key: str, f: dict[str, float] = f) -> str:
            return f"{f[key] / 1e12:,.0f}" if key in f else "-"

        t.add_row(
            g.name,
            g.display_name,
            f"{g.memory_bytes / 1e9:,.1f}",
            f"{g.memory_bandwidth_bytes_per_s / 1e12:.2f}",
            tf("bf16") if "bf16" in f else tf("fp16") + " (fp16)",
            tf("fp8"),
            tf("int8"),
            f"{g.interconnect_bytes_per_s / 1e9:,.0f} {g.interconnect_kind}",
            f"{g.tdp_w:,.0f}",
        )
    out.print(t)


@catalog_app.command("models")
@user_errors
def catalog_models(json_out: JsonOpt = False, catalog: CatalogOpt = None) -> None:
    """Model architectures: layers, hidden, heads, KV heads, experts, attention kind."""
    from gpuwise.perf.arch import kv_elements_per_token_per_layer, param_counts

    cat = _catalog(catalog)
    models = sorted(cat.models.values(), key=lambda m: m.name)
    if json_out:
        print_json(models)
        return
    t = Table(title="Models (architecture from each model's config.json)")
    for col in (
        "id",
        "hf id",
        "params B",
        "active B",
        "layers",
        "hidden",
        "heads",
        "kv heads",
        "head dim",
        "experts",
        "attention",
        "KV KiB/token (bf16)",
    ):
        t.add_column(col, justify="left" if col in ("id", "hf id", "attention") else "right")
    for m in models:
        p = param_counts(m)
        kv = kv_elements_per_token_per_layer(m) * m.num_layers * 2 / 1024
        t.add_row(
            m.name,
            m.hf_id,
            f"{p.total / 1e9:.1f}",
            f"{p.active / 1e9:.1f}",
            str(m.num_layers),
            str(m.hidden_size),
            str(m.num_heads),
            str(m.num_kv_heads),
            str(m.head_dim),
            f"{m.num_experts} (top {m.experts_per_token})" if m.is_moe else "-",
            m.attention.upper(),
            f"{kv:,.1f}",
        )
    out.print(t)


@catalog_app.command("prices")
@user_errors
def catalog_prices(
    gpu: Annotated[str | None, typer.Option(help="Only this GPU type.")] = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """GPU-hour prices by provider and pricing kind, each with the date it was observed."""
    cat = _catalog(catalog)
    prices = list(cat.prices)
    if gpu:
        g = cat.gpu(gpu)
        prices = [p for p in prices if p.gpu == g.name]
    prices.sort(key=lambda p: (p.gpu, p.pricing, p.usd_per_gpu_hour))
    if json_out:
        print_json(prices)
        return
    t = Table(title="Prices per GPU-hour (USD; default = median of dated rows per kind)")
    for col in ("gpu", "pricing", "$/GPU-h", "provider", "offering", "observed"):
        t.add_column(col, justify="right" if col == "$/GPU-h" else "left")
    for p in prices:
        t.add_row(
            p.gpu, p.pricing, f"{p.usd_per_gpu_hour:.2f}", p.provider, p.offering, p.source.date
        )
    out.print(t)


# ----------------------------------------------------------------------------- perf


@app.command()
@user_errors
def perf(
    model: Annotated[str, typer.Argument(help="Catalog model, e.g. llama-3.1-8b.")],
    gpu: Annotated[str, typer.Option("--gpu", help="Catalog GPU type, e.g. h100-sxm.")],
    tp: Annotated[int, typer.Option(help="Tensor-parallel degree.")] = 1,
    dtype: Annotated[str, typer.Option(help="Weights: bf16, fp16, fp8, int8, int4.")] = "bf16",
    kv_dtype: Annotated[str, typer.Option(help="KV cache: auto, bf16, fp8.")] = "auto",
    max_num_seqs: Annotated[int, typer.Option(help="Engine limit on running sequences.")] = 256,
    max_num_batched_tokens: Annotated[int, typer.Option(help="Tokens per iteration.")] = 8192,
    max_model_len: Annotated[int | None, typer.Option(help="Longest sequence to hold.")] = None,
    gpu_memory_utilization: Annotated[float, typer.Option(help="Share of GPU memory.")] = 0.9,
    profile: Annotated[str | None, typer.Option(help="Profile name or file.")] = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """One replica: memory fit, KV capacity, iteration time and throughput by batch and context."""
    from gpuwise.perf import ReplicaConfig, load_profile, summarize_replica
    from gpuwise.perf.model import TP_DEGREES, WEIGHT_DTYPES

    if dtype not in WEIGHT_DTYPES:
        raise UserError(f"--dtype '{dtype}': use one of {', '.join(WEIGHT_DTYPES)}")
    if kv_dtype not in ("auto", "bf16", "fp16", "fp8"):
        raise UserError(f"--kv-dtype '{kv_dtype}': use one of auto, bf16, fp16, fp8")
    if tp not in TP_DEGREES:
        raise UserError(f"--tp {tp}: use one of {', '.join(map(str, TP_DEGREES))}")
    if not 0 < gpu_memory_utilization <= 1:
        raise UserError("--gpu-memory-utilization must lie in (0, 1]")
    cat = _catalog(catalog)
    cfg = ReplicaConfig(
        model=cat.model(model),
        gpu=cat.gpu(gpu),
        tp=tp,
        weight_dtype=dtype,
        kv_dtype=kv_dtype,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
    )
    s = summarize_replica(cfg, load_profile(profile))
    if json_out:
        print_json(s)
        return
    head = f"{s.model} on {s.tp}x {s.gpu}, {s.weight_dtype} weights, {s.kv_dtype} KV cache"
    out.print(f"[bold]{head}[/]  (profile: {s.profile})")
    out.print(
        f"  weights          {s.weight_gb_total:,.2f} GB total, "
        f"{s.weight_gb_per_gpu:,.2f} GB per GPU"
    )
    out.print(
        f"  KV per token     {s.kv_bytes_per_token / 1024:,.1f} KiB "
        f"({s.kv_bytes_per_token_per_gpu / 1024:,.1f} KiB per GPU)"
    )
    if not s.fits:
        out.print(f"  [bold red]does not fit[/]: {s.not_fitting_reason}")
        return
    out.print(
        f"  KV cache         {s.kv_cache_gb_per_gpu:,.2f} GB per GPU = "
        f"{s.kv_capacity_tokens:,} tokens (max_model_len {s.max_model_len:,})"
    )
    seqs = ", ".join(f"{n:,} at {c:,} tokens" for c, n in s.max_concurrent_seqs.items())
    out.print(f"  max concurrent   {seqs}")
    out.print("  bound by         " + "; ".join(f"{k}: {v}" for k, v in s.regime.items()))
    loads = ", ".join(f"{v:,.0f} s from {k}" for k, v in s.load_s.items())
    out.print(f"  weight load      {loads}")
    t = Table(title="Decode: one iteration (ms) and output tokens/s, by batch and context")
    t.add_column("batch", justify="right")
    ctxs = sorted({d.context_tokens for d in s.decode})
    for c in ctxs:
        t.add_column(f"ctx {c:,}: ms", justify="right")
        t.add_column("tok/s", justify="right")
    for b in sorted({d.batch for d in s.decode}):
        row = [str(b)]
        for c in ctxs:
            d = next((d for d in s.decode if d.batch == b and d.context_tokens == c), None)
            if d is None:
                row += ["-", "-"]
            else:
                mark = "" if d.fits_in_kv else " (KV full)"
                row += [f"{d.step_ms:,.2f}", f"{d.output_tokens_per_s:,.0f}{mark}"]
        t.add_row(*row)
    out.print(t)
    pre = ", ".join(f"{n:,} tokens {ms:,.1f} ms" for n, ms in s.prefill_ms.items())
    out.print(f"  prefill (one prompt): {pre}")


# ----------------------------------------------------------------------------- validate


@app.command()
@user_errors
def validate(
    spec: Annotated[Path, typer.Argument(help="The fleet spec (YAML).")],
    profile: Annotated[str | None, typer.Option(help="Profile name or file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a spec and print what it means after defaults (and whether each replica fits)."""
    from gpuwise.resolve import resolve_spec

    r = resolve_spec(spec, profile=profile)
    if json_out:
        print_json(r.as_dict())
        return
    out.print(f"[bold]{r.spec.name}[/]: {len(r.deployments)} deployment(s), spec {spec}")
    for d in r.deployments:
        out.print()
        out.print(f"[bold]{d.deployment.name}[/]: {d.summary_line}")
        for line in d.detail_lines:
            out.print(f"  {line}")
    out.print()
    out.print("[green]spec is valid[/]")


# ----------------------------------------------------------------------------- bench


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:,.1f}"


def _seconds(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.2f}"


def _usd_or_dash(x: float) -> str:
    """A price per token is infinite when nothing was served (inside the SLO): show a dash."""
    return f"${x:,.2f}" if math.isfinite(x) else "-"


@app.command()
@user_errors
def bench(
    endpoint: Annotated[
        str, typer.Argument(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000.")
    ],
    spec: Annotated[
        Path | None, typer.Option(help="Open loop: replay this spec's deployment traffic.")
    ] = None,
    deployment: Annotated[str | None, typer.Option(help="Deployment of --spec.")] = None,
    rate: Annotated[float | None, typer.Option(help="Open loop: Poisson, requests/s.")] = None,
    arrivals: Annotated[
        Path | None, typer.Option(help="Open loop: an arrivals CSV to replay.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Closed loop: requests kept in flight (default 1).")
    ] = None,
    input_tokens: Annotated[
        int | None, typer.Option(help="Prompt tokens (--rate, --concurrency; default 128).")
    ] = None,
    output_tokens: Annotated[
        int | None, typer.Option(help="Output tokens (--rate, --concurrency; default 128).")
    ] = None,
    duration_s: Annotated[
        float | None,
        typer.Option(
            "--duration-s",
            "--duration",
            help="Schedule window, as simulate's --duration (default: --max-duration-s).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the schedule (as in simulate).")] = 0,
    max_requests: Annotated[int, typer.Option(help="Send at most this many.")] = 100,
    max_duration_s: Annotated[float, typer.Option(help="Send nothing after this.")] = 60.0,
    timeout_s: Annotated[float, typer.Option(help="Per-request limit.")] = 60.0,
    model: Annotated[
        str | None, typer.Option(help="Served model name (default: from /v1/models).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="GPUWISE_API_KEY", help="Bearer token, if needed.")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON document here.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Load an endpoint with streaming completions; TTFT, TPOT, ITL, e2e and errors by kind."""
    from gpuwise.bench import (
        BenchConfig,
        run_bench,
        schedule_from_csv,
        schedule_from_spec,
        schedule_poisson,
    )

    modes = [
        flag
        for flag, v in (
            ("--spec", spec),
            ("--rate", rate),
            ("--arrivals", arrivals),
            ("--concurrency", concurrency),
        )
        if v is not None
    ]
    if len(modes) > 1:
        raise UserError(f"choose one load: {' or '.join(modes)}, not several")
    if spec is None and deployment is not None:
        raise UserError("--deployment goes with --spec")
    if (spec is not None or arrivals is not None) and (input_tokens or output_tokens):
        raise UserError("--input-tokens/--output-tokens go with --rate or --concurrency")
    window = duration_s if duration_s is not None else max_duration_s
    schedule = None
    if spec is not None:
        schedule = schedule_from_spec(spec, deployment, window, seed)
    elif rate is not None:
        schedule = schedule_poisson(rate, input_tokens or 128, output_tokens or 128, window, seed)
    elif arrivals is not None:
        schedule = schedule_from_csv(arrivals)
    elif concurrency is None:
        concurrency = 1
    config = BenchConfig(
        endpoint=endpoint,
        schedule=schedule,
        concurrency=concurrency,
        input_tokens=input_tokens or 128,
        output_tokens=output_tokens or 128,
        max_requests=max_requests,
        max_duration_s=max_duration_s,
        timeout_s=timeout_s,
        model=model,
        api_key=api_key,
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=json_out or not err.is_terminal,
    )
    task_id = None

    def on_start(total: int) -> None:
        nonlocal task_id
        task_id = progress.add_task("requests", total=total)

    def on_progress(_rec: object) -> None:
        if task_id is not None:
            progress.advance(task_id)

    with progress:
        result = run_bench(config, on_start=on_start, on_progress=on_progress)
    doc = result.as_dict()
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if json_out:
        print_json(doc)
        return
    s = result.summary
    out.print(
        f"[bold]bench[/] {result.server.completions_url} (model {result.server.model}): "
        + (result.source if result.mode == "closed-loop" else f"open loop, {result.source}")
    )
    kinds = ", ".join(f"{k} {v}" for k, v in s.outcomes.items()) or "none"
    out.print(f"  requests   {s.sent} sent of {s.scheduled}: {kinds}")
    out.print(
        f"  throughput {s.throughput_rps:,.2f} req/s, {s.output_tokens_per_s:,.0f} output tok/s, "
        f"{s.input_tokens_per_s:,.0f} prompt tok/s over {s.duration_s:,.1f} s"
    )
    if s.mean_prompt_tokens is not None:
        mean_out = s.mean_completion_tokens or 0.0
        out.print(
            f"  tokens     prompt {s.mean_prompt_tokens:,.1f} (server count), "
            f"output {mean_out:,.1f} per request"
        )
    if s.send_lag_s.count and result.mode == "open-loop":
        lag = s.send_lag_s
        out.print(
            f"  send lag   mean {_ms(lag.mean)} ms, p99 {_ms(lag.p99)} ms, max {_ms(lag.max)} ms"
        )
    t = Table(title="Latency of successful requests (ms)")
    for col in ("metric", "mean", "p50", "p90", "p95", "p99", "max", "n"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for label, d in (("TTFT", s.ttft_s), ("TPOT", s.tpot_s), ("ITL", s.itl_s), ("e2e", s.e2e_s)):
        t.add_row(
            label,
            *(_ms(getattr(d, k)) for k in ("mean", "p50", "p90", "p95", "p99", "max")),
            str(d.count),
        )
    out.print(t)
    for w in doc["warnings"]:
        out.print(f"  [yellow]warning:[/] {w}")
    if s.first_error:
        out.print(f"  [red]first error:[/] {s.first_error}")
    if out_file is not None:
        out.print(f"  wrote {out_file}")


# ----------------------------------------------------------------------------- simulate


@app.command()
@user_errors
def simulate(
    spec: Annotated[Path, typer.Argument(help="The fleet spec (YAML).")],
    duration: Annotated[float, typer.Option("--duration", help="Seconds of arrivals.")] = 600.0,
    scenario: Annotated[
        str,
        typer.Option(
            help="Reshape each deployment's traffic: steady, double-in-5-min, "
            "flash-crowd-5x, diurnal-compressed, azure-conv, azure-code."
        ),
    ] = "steady",
    seed: Annotated[int, typer.Option(help="Seed for every random draw.")] = 0,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write requests.csv, signals.csv and summary.json here."),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="Profile name or file.")] = None,
    interval: Annotated[float, typer.Option(help="Signal interval, seconds.")] = 10.0,
    json_out: JsonOpt = False,
) -> None:
    """Simulate the fleet on its traffic (or a scenario) and summarize latency, SLO and cost."""
    from gpuwise.resolve import resolve_spec
    from gpuwise.sim import simulate as run_sim
    from gpuwise.workload.scenarios import get_scenario

    if not duration > 0:
        raise UserError("--duration must be > 0 seconds")
    sc = get_scenario(scenario)
    if sc.fault_events(duration):
        raise UserError(
            f"scenario '{sc.name}' injects faults into a fleet that scales; run it with "
            f"'gpuwise compare-policies {spec} --scenario {sc.name}'"
        )
    r = resolve_spec(spec, profile=profile)
    if sc.name != "steady":
        deployments = [
            d.model_copy(update={"traffic": sc.apply(d.traffic, duration)})
            if d.traffic is not None
            else d
            for d in r.spec.deployments
        ]
        from gpuwise.resolve import resolve

        r = resolve(r.spec.model_copy(update={"deployments": deployments}), r.path, r.profile)
    with (
        err.status(f"simulating {duration:,.0f} s of traffic ({sc.name})", spinner="dots")
        if not json_out
        else _nullcontext()
    ):
        result = run_sim(r, duration_s=duration, seed=seed, signal_interval_s=interval)
    if out_dir is not None:
        result.to_dir(out_dir)
    if json_out:
        print_json(
            {
                "scenario": sc.name,
                "duration_s": duration,
                "seed": seed,
                "deployments": {k: v.as_dict() for k, v in result.summaries.items()},
            }
        )
        return
    out.print(
        f"[bold]{r.spec.name}[/]: {duration:,.0f} s of arrivals, scenario {sc.name} "
        f"({sc.description}), seed {seed}, profile {r.profile.name}"
    )
    _render_sim_summaries(result.summaries, r)
    if out_dir is not None:
        out.print(f"wrote {out_dir}/requests.csv, signals.csv, summary.json")


def _nullcontext():  # noqa: ANN202
    import contextlib

    return contextlib.nullcontext()


def _render_sim_summaries(summaries: dict, resolved: Any) -> None:
    def ms(x: float | None) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 1e3:,.0f}"

    def pct(x: float | None) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"

    def usd(x: float | None) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"${x:,.2f}"

    t = Table(title="Per deployment (latencies in ms over served requests)")
    t.add_column("", justify="left")
    names = list(summaries)
    for n in names:
        t.add_column(n, justify="right")
    rows: list[tuple[str, Any]] = [
        ("replicas x GPUs", lambda s: f"{s.replicas} x {s.tp}"),
        ("requests (served / rejected)", lambda s: f"{s.requests:,} ({s.ok:,} / {s.rejected:,})"),
        (
            "TTFT p50 / p95 / p99",
            lambda s: f"{ms(s.ttft_p50_s)} / {ms(s.ttft_p95_s)} / {ms(s.ttft_p99_s)}",
        ),
        ("TPOT p50 / p95", lambda s: f"{ms(s.tpot_p50_s)} / {ms(s.tpot_p95_s)}"),
        ("end-to-end p50 / p95", lambda s: f"{ms(s.e2e_p50_s)} / {ms(s.e2e_p95_s)}"),
        ("SLO", lambda s: _slo_text(resolved, s.deployment)),
        ("requests inside the SLO", lambda s: pct(s.slo_attainment)),
        (
            "SLO percentile targets met",
            lambda s: (
                "-" if s.slo_targets_met is None else ("yes" if s.slo_targets_met else "[red]no[/]")
            ),
        ),
        (
            "input / output tokens per s",
            lambda s: f"{s.input_tokens_per_s:,.0f} / {s.output_tokens_per_s:,.0f}",
        ),
        ("mean running per replica", lambda s: f"{s.mean_running_per_replica:,.1f}"),
        ("GPU busy", lambda s: pct(s.gpu_busy)),
        ("KV usage mean / max", lambda s: f"{pct(s.kv_usage_mean)} / {pct(s.kv_usage_max)}"),
        ("preemptions", lambda s: f"{s.preemptions:,}"),
        ("GPU-hours (cost)", lambda s: f"{s.gpu_hours:,.2f} ({usd(s.cost_usd)})"),
        ("$ per 1M output tokens", lambda s: usd(s.usd_per_1m_output_tokens)),
        ("$ per 1M output tokens inside SLO", lambda s: usd(s.usd_per_1m_output_tokens_in_slo)),
    ]
    for label, fn in rows:
        t.add_row(label, *[fn(summaries[n]) for n in names])
    out.print(t)


def _slo_text(resolved: Any, name: str) -> str:
    from gpuwise.resolve import describe_slo

    return describe_slo(resolved.deployment(name).slo)


# ----------------------------------------------------------------------------- doctor and cost


SignalsOpt = Annotated[
    Path | None, typer.Option("--signals", help="signals.csv from 'gpuwise simulate --out DIR'.")
]
PromOpt = Annotated[str | None, typer.Option("--prometheus", help="Prometheus base URL.")]
SelectorOpt = Annotated[
    str, typer.Option("--selector", help="PromQL label selector of the engine series.")
]
ScrapeOpt = Annotated[
    list[str] | None, typer.Option("--scrape", help="An engine's /metrics URL (repeatable).")
]
WindowOpt = Annotated[float, typer.Option("--window", help="Seconds of history to read.")]
SpecOpt = Annotated[
    Path | None, typer.Option("--spec", help="Fleet spec: prices, SLOs, engine limits.")
]
PriceOpt = Annotated[
    float | None, typer.Option("--usd-per-gpu-hour", help="Price when no spec is given.")
]


def _observe(
    signals: Path | None,
    prometheus: str | None,
    selector: str,
    scrape: list[str] | None,
    window: float,
    deployment: str | None,
) -> tuple[list[Any], list[str]]:
    """Signals from exactly one source, and the notes on what could not be read."""
    from gpuwise.signals import read_signals_csv

    given = [x for x in (signals, prometheus, scrape) if x]
    if len(given) != 1:
        raise UserError("give exactly one source: --signals CSV, --prometheus URL, or --scrape URL")
    if signals is not None:
        if not signals.is_file():
            raise UserError(
                f"{signals}: no such signals file (write one with "
                "'gpuwise simulate SPEC --out DIR')"
            )
        rows = read_signals_csv(signals)
        if deployment:
            rows = [r for r in rows if r.deployment == deployment]
        return rows, []
    from gpuwise.observe import signals_from_prometheus, signals_from_scrape

    if prometheus is not None:
        obs = signals_from_prometheus(prometheus, selector, window, deployment=deployment)
    else:
        obs = signals_from_scrape(list(scrape or []), window, deployment=deployment)
    notes = [f"could not read: {u}" for u in obs.unreadable] + [
        f"not available: {m}" for m in obs.missing
    ]
    if not obs.signals:
        raise UserError("no signals could be read: " + "; ".join(notes or ["empty input"]))
    return list(obs.signals), notes


def _context(
    spec: Path | None,
    price: float | None,
    rows: list[Any],
    max_num_seqs: int | None,
    slo_ttft_s: float | None,
    slo_tpot_s: float | None,
) -> Any:
    from gpuwise.context import DeploymentContext, FleetContext, context_from_resolved
    from gpuwise.spec import Slo

    if spec is not None:
        from gpuwise.resolve import resolve_spec

        ctx = context_from_resolved(resolve_spec(spec))
        missing = sorted({r.deployment for r in rows} - set(ctx.deployments))
        if missing and len(ctx.deployments) == 1:  # a live fleet labelled by model, say
            only = next(iter(ctx.deployments.values()))
            from dataclasses import replace

            for m in missing:
                ctx.deployments[m] = replace(only, name=m)
        return ctx
    slo = (
        Slo(ttft_s=slo_ttft_s, tpot_s=slo_tpot_s)
        if slo_ttft_s is not None or slo_tpot_s is not None
        else None
    )
    return FleetContext(
        {
            name: DeploymentContext(
                name=name,
                usd_per_gpu_hour=price if price else float("nan"),
                slo=slo,
                max_num_seqs=max_num_seqs,
            )
            for name in {r.deployment for r in rows}
        }
    )


@app.command()
@user_errors
def doctor(
    signals: SignalsOpt = None,
    prometheus: PromOpt = None,
    selector: SelectorOpt = "",
    scrape: ScrapeOpt = None,
    window: WindowOpt = 60.0,
    spec: SpecOpt = None,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment.")] = None,
    usd_per_gpu_hour: PriceOpt = None,
    max_num_seqs: Annotated[int | None, typer.Option(help="Engine batch limit.")] = None,
    slo_ttft_s: Annotated[float | None, typer.Option(help="p95 TTFT target, s.")] = None,
    slo_tpot_s: Annotated[float | None, typer.Option(help="p95 TPOT target, s.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Diagnose a fleet from its metrics (live or simulated): findings, evidence, dollars."""
    from gpuwise.doctor import diagnose

    rows, notes = _observe(signals, prometheus, selector, scrape, window, deployment)
    ctx = _context(spec, usd_per_gpu_hour, rows, max_num_seqs, slo_ttft_s, slo_tpot_s)
    report = diagnose(rows, ctx, notes)
    if json_out:
        sys.stdout.write(report.to_json() + "\n")
        return
    if markdown:
        sys.stdout.write(report.to_markdown())
        return
    out.print(
        f"[bold]gpuwise doctor[/]: {len(report.findings)} finding(s) over "
        f"{report.window_s:,.0f} s, deployments {', '.join(report.deployments)}"
    )
    colors = {"high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
    for f in report.findings:
        money = (
            f"  [bold]${f.usd_per_month_at_stake:,.0f}/month at stake[/]"
            if f.usd_per_month_at_stake
            else ""
        )
        out.print()
        out.print(
            f"[{colors[f.severity]}]\\[{f.severity}][/] [bold]{f.deployment}: {f.title}[/]{money}"
        )
        out.print("  evidence: " + ", ".join(f"{k}={v}" for k, v in f.evidence.items()))
        out.print(f"  window:   {f.window}")
        out.print(f"  means:    {f.meaning}")
        out.print(f"  action:   {f.action}")
    if not report.findings:
        out.print("[green]no findings: the fleet looks healthy over this window[/]")
    for n in notes:
        out.print(f"[dim]note: {n}[/]")


@app.command()
@user_errors
def cost(
    signals: SignalsOpt = None,
    prometheus: PromOpt = None,
    selector: SelectorOpt = "",
    scrape: ScrapeOpt = None,
    window: WindowOpt = 3600.0,
    spec: SpecOpt = None,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment.")] = None,
    usd_per_gpu_hour: PriceOpt = None,
    output_token_weight: Annotated[
        float, typer.Option(help="GPU time of an output token in prompt tokens.")
    ] = 4.0,
    json_out: JsonOpt = False,
) -> None:
    """$ per 1M input and output tokens, GPU-hours used vs paid, and the idle share's dollars."""
    from gpuwise.cost import cost_report

    rows, notes = _observe(signals, prometheus, selector, scrape, window, deployment)
    if spec is None and usd_per_gpu_hour is None:
        raise UserError("give --spec SPEC or --usd-per-gpu-hour PRICE to price the fleet")
    ctx = _context(spec, usd_per_gpu_hour, rows, None, None, None)
    rep = cost_report(rows, ctx, output_token_weight=output_token_weight)
    if json_out:
        print_json(
            {
                "deployments": rep.deployments,
                "usd_total": rep.usd_total,
                "usd_per_month": rep.usd_per_month,
                "notes": notes,
            }
        )
        return
    t = Table(title="Cost over the window")
    for col in (
        "deployment",
        "window",
        "$/GPU-h",
        "GPU-h paid",
        "GPU-h busy",
        "idle",
        "$ total",
        "$ idle",
        "$/1M in",
        "$/1M out",
        "$/1M all",
        "$/month",
    ):
        t.add_column(col, justify="left" if col == "deployment" else "right")

    def f(x: float, fmt: str) -> str:
        return "-" if x != x else format(x, fmt)  # NaN: not measurable from this source

    for d in rep.deployments:
        t.add_row(
            d.deployment,
            f"{d.window_s:,.0f} s",
            f(d.usd_per_gpu_hour, ",.2f"),
            f(d.gpu_hours_paid, ",.3f"),
            f(d.gpu_hours_busy, ",.3f"),
            f(d.idle_share, ".0%"),
            f(d.usd_total, ",.2f"),
            f(d.usd_idle, ",.2f"),
            f(d.usd_per_1m_input_tokens, ",.3f"),
            f(d.usd_per_1m_output_tokens, ",.3f"),
            f(d.usd_per_1m_tokens, ",.3f"),
            f(d.usd_per_month, ",.0f"),
        )
    out.print(t)
    for n in notes:
        out.print(f"[dim]note: {n}[/]")


# ----------------------------------------------------------------------------- dashboards


@app.command()
@user_errors
def dashboards(
    spec: Annotated[Path, typer.Argument(help="The fleet spec (YAML).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the two files.")] = Path(
        "gpuwise-observability"
    ),
    json_out: JsonOpt = False,
) -> None:
    """Write a Grafana dashboard and Prometheus alert rules for the fleet (current vLLM names)."""
    from gpuwise.deploy.observability import (
        render_alert_rules,
        render_dashboard,
        views_from_resolved,
    )
    from gpuwise.resolve import resolve_spec

    r = resolve_spec(spec)
    views = views_from_resolved(r)
    files = {
        "grafana-dashboard.json": render_dashboard(views, f"gpuwise: {r.spec.name}"),
        "prometheus-alerts.yaml": render_alert_rules(views, f"gpuwise-{r.spec.name}"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        tmp = out_dir / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out_dir / name)
    paths = [str(out_dir / n) for n in files]
    if json_out:
        print_json({"files": paths, "deployments": [v.name for v in views]})
        return
    for p in paths:
        out.print(f"wrote {p}")
    out.print("check the rules with: promtool check rules " + paths[1])


# ----------------------------------------------------------------------------- calibrate


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UserError(f"{flag} '{text}': give whole numbers separated by commas") from None
    if not values or min(values) < 1:
        raise UserError(f"{flag} '{text}': give positive whole numbers separated by commas")
    return values


@app.command()
@user_errors
def calibrate(
    endpoint: Annotated[str, typer.Argument(help="The engine, e.g. http://127.0.0.1:8000.")],
    gpu: Annotated[str, typer.Option(help="Catalog GPU (hardware record) it runs on.")],
    model: Annotated[
        str | None, typer.Option(help="Catalog model (default: from the endpoint).")
    ] = None,
    model_config: Annotated[
        Path | None, typer.Option(help="Model folder or config.json giving the architecture.")
    ] = None,
    concurrency: Annotated[str, typer.Option(help="Decode steps' concurrency levels.")] = (
        "1,2,4,8"
    ),
    prompt_tokens: Annotated[
        str, typer.Option(help="Prefill steps' prompt lengths.")
    ] = "16,32,64,128,256,384",
    decode_prompt_tokens: Annotated[int, typer.Option(help="Decode steps' prompt.")] = 32,
    decode_output_tokens: Annotated[int, typer.Option(help="Decode steps' output.")] = 128,
    requests_per_prompt: Annotated[int, typer.Option(help="Requests per prefill step.")] = 8,
    requests_per_slot: Annotated[
        int, typer.Option(help="Decode step at concurrency c sends c x this.")
    ] = 4,
    rounds: Annotated[int, typer.Option(help="Repeat the sweep, interleaved (noisy hosts).")] = 1,
    timings: Annotated[
        str,
        typer.Option(
            "--from",
            help="client: fit what clients see (TTFT, TPOT; adds the per-request and "
            "per-sequence overheads); engine: fit the engine's /metrics iteration times.",
        ),
    ] = "client",
    prefill_gap_s: Annotated[
        float, typer.Option(help="--from client: seconds between prefill-step requests.")
    ] = 0.1,
    max_num_seqs: Annotated[
        int | None, typer.Option(help="The engine's batch limit (default: top concurrency).")
    ] = None,
    warmup_s: Annotated[
        float | None, typer.Option(help="Engine start to ready, seconds (cold starts).")
    ] = None,
    base_profile: Annotated[str, typer.Option(help="Profile whose other fields are kept.")] = (
        "default"
    ),
    name: Annotated[str, typer.Option(help="Name of the fitted profile.")] = "calibrated",
    note: Annotated[str, typer.Option(help="Appended to the profile's fitted_on.")] = "",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Profile YAML (default: profiles/NAME.yaml).")
    ] = None,
    served_model: Annotated[
        str | None, typer.Option(help="Served model name (default: from /v1/models).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="GPUWISE_API_KEY", help="Bearer token, if needed.")
    ] = None,
    json_out: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """Sweep a live engine, fit a perf profile to it, write the profile YAML (--profile)."""
    from gpuwise.bench.calibrate import CalibrationPlan, model_resolver
    from gpuwise.bench.calibrate import calibrate as run_calibration
    from gpuwise.perf import load_profile

    cat = _catalog(catalog)
    plan = CalibrationPlan(
        concurrency=_int_list(concurrency, "--concurrency"),
        prompt_tokens=_int_list(prompt_tokens, "--prompt-tokens"),
        decode_prompt_tokens=decode_prompt_tokens,
        decode_output_tokens=decode_output_tokens,
        requests_per_prompt=requests_per_prompt,
        requests_per_slot=requests_per_slot,
        rounds=rounds,
        timings=timings,
        prefill_gap_s=prefill_gap_s,
    )
    res = run_calibration(
        endpoint,
        model=model_resolver(cat, model, model_config),
        gpu=cat.gpu(gpu),
        plan=plan,
        base=load_profile(base_profile),
        name=name,
        max_num_seqs=max_num_seqs,
        engine_warmup_s=warmup_s,
        served_model=served_model,
        api_key=api_key,
        out=out_file or Path("profiles") / f"{name}.yaml",
        note=note,
        on_step=None if json_out else (lambda msg: err.print(f"  {msg}", highlight=False)),
    )
    if json_out:
        print_json(res.as_dict())
        return
    p = res.profile
    out.print(
        f"[bold]calibrated[/] {res.config.model.name} on {res.config.gpu.name} via "
        f"{res.endpoint} in {res.runtime_s:.1f} s "
        f"(timings from {'engine /metrics' if res.engine_metrics else 'the client'})"
    )
    t = Table(title="Iterations: measured and fitted (ms)")
    for col in ("step", "prompt", "batch", "context", "measured", "fitted", "error"):
        t.add_column(col, justify="left" if col == "step" else "right")
    for f in res.fits:
        t.add_row(
            f.kind,
            f"{f.prompt_tokens:,.0f}" if f.kind == "prefill" else "-",
            f"{f.batch:.2f}",
            f"{f.context_tokens:,.0f}" if f.kind == "decode" else "-",
            f"{f.measured_s * 1000:,.3f}",
            f"{f.predicted_s * 1000:,.3f}",
            f"{f.rel_error:+.1%}",
        )
    out.print(t)
    fe = p.fit_error
    out.print(
        f"  fit        median |error| {fe.get('median_abs_rel', 0):.1%}, "
        f"p90 {fe.get('p90_abs_rel', 0):.1%} over {fe.get('samples', 0):.0f} samples"
    )
    out.print(
        f"  profile    compute_eff {p.compute_eff:.3g}, compute_half_sat_flops "
        f"{p.compute_half_sat_flops:.3g}, memory_eff {p.memory_eff:.3g}, overhead "
        f"{p.overhead_s * 1000:.3g} ms, engine warm-up {p.engine_warmup_s:.3g} s"
    )
    if p.overhead_per_seq_s or p.request_overhead_s:
        out.print(
            f"  client     {p.overhead_per_seq_s * 1e6:.3g} us per sequence per iteration, "
            f"{p.request_overhead_s * 1000:.3g} ms per request outside the engine"
        )
    if res.api_overhead_s is not None:
        in_profile = "in the profile" if p.request_overhead_s else "not in the profile"
        out.print(
            f"  API        {res.api_overhead_s * 1000:.1f} ms between the client's and the "
            f"engine's TTFT (HTTP, tokenization; {in_profile})"
        )
    for w in res.warnings:
        out.print(f"  [yellow]warning:[/] {w}")
    out.print(f"  wrote      {res.out_path}  (use it with --profile {res.out_path})")


# ----------------------------------------------------------------------------- plan


@app.command()
@user_errors
def plan(
    spec: Annotated[Path, typer.Argument(help="The fleet spec (YAML).")],
    emit: Annotated[
        tuple[str, Path],
        typer.Option("--emit", help="Write manifests: '--emit k8s DIR' (Kubernetes + KEDA)."),
    ] = ("", Path()),
    quantize: Annotated[
        bool, typer.Option("--quantize/--no-quantize", help="Allow fp8 / int4 weights.")
    ] = True,
    packing: Annotated[
        bool, typer.Option("--packing/--no-packing", help="Allow several models per GPU.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the traffic samples and simulations.")] = 0,
    profile: Annotated[str | None, typer.Option(help="Profile name or file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The cheapest fleet that meets the SLOs, proven in simulation, tied to the bill."""
    from gpuwise.plan import PlanOptions
    from gpuwise.plan import plan as make_plan
    from gpuwise.plan.render import render
    from gpuwise.resolve import resolve_spec

    kind, emit_dir = emit
    if kind and kind != "k8s":
        raise UserError(f"--emit {kind}: the only target is 'k8s' (--emit k8s DIR)")
    r = resolve_spec(spec, profile=profile)
    p = make_plan(r, PlanOptions(quantize=quantize, packing=packing, seed=seed))
    written: list[Path] = []
    if kind == "k8s":
        from gpuwise.deploy import write_manifests

        written = write_manifests(p, r, emit_dir)
    if json_out:
        doc = p.as_dict()
        doc["manifests"] = [str(w) for w in written]
        print_json(doc)
        return
    for item in render(p):
        out.print(item)
    if written:
        out.print(f"wrote {len(written)} manifest file(s) to {emit_dir}")


# ----------------------------------------------------------------------------- compare-policies


@app.command("compare-policies")
@user_errors
def compare_policies_cmd(
    spec: Annotated[Path, typer.Argument(help="The fleet spec (YAML).")],
    scenario: Annotated[
        str,
        typer.Option(
            help="steady, double-in-5-min, flash-crowd-5x, diurnal-compressed, azure-conv, "
            "azure-code, node-failure-at-peak, spot-preemption-wave."
        ),
    ] = "double-in-5-min",
    policies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: gpuwise, hpa, knative-kpa, keda, aibrix-apa, ray-serve, "
            "fixed-peak, generic-ops, oracle (default: all)."
        ),
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds of arrivals.")] = 1800.0,
    seed: Annotated[
        int | None, typer.Option(help="Seed for every random draw (default 0).")
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Several seeds, e.g. 0,1,2 or 0-4: one comparison each, then the spread of "
            "every policy's results and at how many seeds gpuwise dominates it."
        ),
    ] = None,
    lead_time: Annotated[
        float | None,
        typer.Option("--lead-time", help="Median scale-up lead time in s (request to ready)."),
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Deployment to scale (default: the first).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write a self-contained HTML report here (with --seeds, one per seed: "
            "NAME.seedN.html).",
        ),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="Profile name or file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Autoscaling policies side by side through the lifecycle simulator: SLO, failures, cost."""
    from gpuwise.report import POLICIES, compare_policies, write_html
    from gpuwise.report.seeds import across_seeds, parse_seeds
    from gpuwise.resolve import resolve_spec

    names = [p.strip() for p in policies.split(",") if p.strip()] if policies else list(POLICIES)
    if seed is not None and seeds is not None:
        raise UserError("--seed and --seeds: give one of them")
    seed_list = parse_seeds(seeds) if seeds is not None else [0 if seed is None else seed]
    r = resolve_spec(spec, profile=profile)
    comps: list[Comparison] = []
    for s in seed_list:
        with (
            err.status(f"comparing {len(names)} policies on {scenario}, seed {s}", spinner="dots")
            if not json_out
            else _nullcontext()
        ):
            comps.append(
                compare_policies(
                    r,
                    scenario=scenario,
                    policies=names,
                    duration_s=duration,
                    seed=s,
                    lead_time_s=lead_time,
                    deployment=deployment,
                )
            )
    reports: list[Path] = []
    if report is not None:
        for c in comps:
            path = report
            if len(comps) > 1:
                path = report.with_name(f"{report.stem}.seed{c.seed}{report.suffix or '.html'}")
            write_html(c, path, " ".join(["gpuwise", *sys.argv[1:]]))
            reports.append(path)
    if len(comps) > 1:
        spread = across_seeds(comps)
        if json_out:
            print_json(
                {
                    "seeds": seed_list,
                    "across_seeds": [x.as_dict() for x in spread],
                    "comparisons": [c.as_dict() for c in comps],
                    "reports": [str(p) for p in reports],
                }
            )
            return
        _print_spread(comps[0], spread)
    else:
        c = comps[0]
        if json_out:
            doc = c.as_dict()
            doc["report"] = str(report) if report else None
            print_json(doc)
            return
        _print_comparison(c)
    for path in reports:
        out.print(f"wrote {path}")


def _fit_table(t: Table, cols: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    """Columns as wide as their values (headers wrap at their spaces): no digit is cut."""
    for i, col in enumerate(cols):
        widest = max([len(r[i]) for r in cells] + [len(w) for w in col.split()])
        t.add_column(
            col,
            justify="left" if i == 0 else "right",
            min_width=widest,
            overflow="fold",
        )
    for r in cells:
        t.add_row(*r)
    # piped output is a file or a log: give the table its whole width rather than 120 columns
    out.print(t, width=None if sys.stdout.isatty() else 200, crop=False)


def _print_comparison(c: Comparison) -> None:
    t = Table(
        title=f"{c.spec}/{c.deployment} on {c.scenario}: {c.duration_s:,.0f} s, seed {c.seed}, "
        f"lead time {c.cold_lead_s:.0f} s ({c.warm_lead_s:.0f} s warm)",
        box=box.SIMPLE_HEAD,
    )
    cols = (
        "policy",
        "in SLO",
        "TTFT ok",
        "TPOT ok",
        "failed",
        "timed out",
        "TTFT p95 s",
        "TTFT p99 s",
        "GPU-h",
        "cost",
        "vs oracle",
        "$/1M tok",
        "$/1M in SLO",
        "scale ev",
    )
    cells = [
        (
            row.policy,
            f"{row.slo_attainment:.2%}",
            f"{row.ttft_attainment:.2%}",
            f"{row.tpot_attainment:.2%}",
            f"{row.failed:,}",
            f"{row.timed_out:,}",
            _seconds(row.ttft_p95_s),
            _seconds(row.ttft_p99_s),
            f"{row.gpu_hours:,.2f}",
            f"${row.cost_usd:,.2f}",
            "-" if row.cost_vs_oracle != row.cost_vs_oracle else f"{row.cost_vs_oracle:.2f}x",
            _usd_or_dash(row.usd_per_1m_tokens),
            _usd_or_dash(row.usd_per_1m_tokens_in_slo),
            f"{row.scale_events:,}",
        )
        for row in c.rows
    ]
    _fit_table(t, cols, cells)
    if any(row.policy == "gpuwise" for row in c.rows):
        for name, verdict in c.dominance().items():
            out.print(f"  gpuwise vs {name}: {verdict}")


def _print_spread(first: Comparison, spread: Sequence[SeedSpread]) -> None:
    n = len(spread[0].seeds) if spread else 0
    seeds = ",".join(str(s) for s in spread[0].seeds) if spread else ""
    t = Table(
        title=f"{first.spec}/{first.deployment} on {first.scenario}: {first.duration_s:,.0f} s, "
        f"seeds {seeds}, lead time {first.cold_lead_s:.0f} s (mean and range over the seeds)",
        box=box.SIMPLE_HEAD,
    )
    cols = (
        "policy",
        "in SLO",
        "in SLO range",
        "cost",
        "cost range",
        "$/1M in SLO",
        "failed",
        "gpuwise dominates",
        "on the mean",
    )
    cells = []
    for x in spread:
        if x.dominated_at is None:
            verdict = ""
        else:
            missed = [s for s in x.seeds if s not in x.dominated_at]
            verdict = f"{len(x.dominated_at)} of {n} seeds" + (
                f" (not {','.join(map(str, missed))})" if missed else ""
            )
        cells.append(
            (
                x.policy,
                f"{x.slo_attainment_mean:.2%}",
                f"{x.slo_attainment_min:.2%}-{x.slo_attainment_max:.2%}",
                f"${x.cost_usd_mean:,.2f}",
                f"${x.cost_usd_min:,.2f}-{x.cost_usd_max:,.2f}",
                _usd_or_dash(x.usd_per_1m_tokens_in_slo_mean),
                f"{x.failed_mean:,.1f}",
                verdict,
                ""
                if x.dominated_on_mean is None
                else ("dominates" if x.dominated_on_mean else "no"),
            )
        )
    _fit_table(t, cols, cells)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
