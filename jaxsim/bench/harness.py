"""Benchmark harness: environment header, compile-vs-run timing, memory, FLOP counts, tables, plots.

Everything a benchmark needs that does not depend on the ``benchmarks/`` scripts or a reference
environment lives here, so ``jaxsim bench`` works from an installed package. The suites themselves
(scaling sweeps, the jaxsim side of the end-to-end comparison) are in :mod:`jaxsim.bench.suites`.

Timing rule: a jitted program is lowered and compiled explicitly (the compile time), then the compiled
executable is called ``repeats`` times with ``jax.block_until_ready`` (the run time is the median).
Memory is XLA's own accounting of the compiled program (arguments + outputs + temporaries), which is
deterministic and per program, unlike the process's peak RSS (also reported, monotone over the run).

FLOPs count 2 per multiply-accumulate, as in docs/models.md#flop-counts.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import __version__

__all__ = [
    "environment",
    "header_markdown",
    "Timing",
    "time_compiled",
    "time_call",
    "peak_rss_mib",
    "program_memory",
    "toto_forward_flops",
    "matmul_peak",
    "markdown_table",
    "plot_lines",
    "plot_bars",
    "write_json",
]


# ----------------------------------------------------------------------------------------------
# Environment


def environment() -> dict[str, Any]:
    """Device, versions, date and machine load: the header every benchmark table carries."""

    def version(name):
        try:
            return importlib.metadata.version(name)
        except Exception:  # not installed
            return None

    devices = jax.devices()
    dev = devices[0]
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover - not on every OS
        load = None
    return dict(
        date_utc=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        jaxsim=__version__,
        jax=jax.__version__,
        jaxlib=version("jaxlib"),
        flax=version("flax"),
        numpy=np.__version__,
        python=sys.version.split()[0],
        backend=jax.default_backend(),
        device_kind=getattr(dev, "device_kind", str(dev)),
        device_count=len(devices),
        cpu_count=os.cpu_count(),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        loadavg=None if load is None else [round(x, 2) for x in load],
        xla_flags=os.environ.get("XLA_FLAGS", ""),
    )


def header_markdown(env: dict[str, Any], extra: str = "") -> str:
    """One italic line naming device, versions, date and load (put it under every table)."""
    load = env.get("loadavg")
    text = (
        f"_{env['device_count']} x {env['device_kind']} ({env['backend']}), {env['cpu_count']} CPUs; "
        f"jax {env['jax']}, jaxlib {env['jaxlib']}, flax {env['flax']}, numpy {env['numpy']}, "
        f"python {env['python']}, jaxsim {env['jaxsim']}; {env['date_utc']}"
    )
    if load:
        text += f"; load average {load[0]:.1f}"
    if env.get("xla_flags"):
        text += f"; XLA_FLAGS={env['xla_flags']}"
    return text + (f"; {extra}" if extra else "") + "_"


# ----------------------------------------------------------------------------------------------
# Timing and memory


@dataclasses.dataclass(frozen=True)
class Timing:
    """Compile time (s), median run time (s), every run (s), the output of the last run, and the
    median process CPU time of a run (s; all threads; robust to other processes on a shared machine)."""

    compile_s: float
    run_s: float
    runs: tuple[float, ...]
    output: Any = dataclasses.field(default=None, repr=False, compare=False)
    cpu_s: float = float("nan")


def time_compiled(jitted, *args, repeats: int = 3, static_kwargs: dict | None = None) -> tuple[Timing, Any]:
    """Lower + compile ``jitted`` explicitly (compile time), then time ``repeats`` warm calls.

    Args:
      jitted: a ``jax.jit`` function.
      *args: its dynamic arguments.
      repeats: warm calls; the run time is their median.
      static_kwargs: keyword arguments that are static for ``jitted``.

    Returns:
      ``(Timing, compiled)``; ``compiled`` is the XLA executable (see :func:`program_memory`).
    """
    static_kwargs = static_kwargs or {}
    t0 = time.perf_counter()
    compiled = jitted.lower(*args, **static_kwargs).compile()
    compile_s = time.perf_counter() - t0
    runs, out = [], None
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - t0)
    return Timing(compile_s, statistics.median(runs), tuple(runs), out), compiled


def time_call(fn: Callable[[], Any], repeats: int = 3) -> Timing:
    """Time a zero-argument callable: the first call (compile + run) and ``repeats`` warm calls.

    For functions that compile internally (e.g. :func:`jaxsim.shell.api.backtest`): ``compile_s`` is
    the first call minus the median warm call (an estimate; clipped at 0).
    """
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs, cpus = [], []
    for _ in range(max(repeats, 1)):
        t0, c0 = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    run = statistics.median(runs)
    return Timing(max(first - run, 0.0), run, tuple(runs), out, statistics.median(cpus))


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; monotone)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def program_memory(compiled) -> dict[str, float]:
    """XLA's memory accounting of a compiled program, in MiB (NaN where the backend reports none).

    ``peak_mib`` = arguments + outputs + temporaries - aliased (the program's live-buffer bound).
    On GPUs the device allocator's own peak (``peak_bytes_in_use``) is added when available.
    """
    nan = float("nan")
    out = dict(argument_mib=nan, output_mib=nan, temp_mib=nan, peak_mib=nan)
    try:
        ma = compiled.memory_analysis()
    except Exception:  # some backends do not implement it
        ma = None
    if ma is not None:
        mib = 1024.0 * 1024.0
        arg, outp = ma.argument_size_in_bytes / mib, ma.output_size_in_bytes / mib
        temp, alias = ma.temp_size_in_bytes / mib, getattr(ma, "alias_size_in_bytes", 0) / mib
        out.update(argument_mib=arg, output_mib=outp, temp_mib=temp, peak_mib=arg + outp + temp - alias)
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            out["device_peak_mib"] = stats["peak_bytes_in_use"] / (1024.0 * 1024.0)
    except Exception:  # CPU: no allocator statistics
        pass
    return out


# ----------------------------------------------------------------------------------------------
# FLOPs (docs/models.md#flop-counts; 2 FLOP per multiply-accumulate)


def toto_forward_flops(
    config, context_len: int, *, unembed_tokens: int = 1, substeps: int = 1, variates: int = 1
) -> int:
    """FLOPs of one Toto forward over a left-padded context (one batch row).

    Per token: patch embedding 2PD; per layer fused QKV 6D^2, output 2D^2, SwiGLU 6DF, attention
    4nD (time-wise: scores and values over the n patches, counted dense as XLA computes them;
    space-wise: over the V variates). Then ``unembed_tokens`` tokens go through the unembedding
    (2 D * substeps D) and the head (4 projections, 8 D K per sub-step). jaxsim's one-step forecast
    unembeds one token and one sub-step; the reference unembeds every token and all P sub-steps.

    Args:
      config: a ``TotoConfig``.
      context_len: padded context length (a multiple of P; rounded up otherwise).
      unembed_tokens: tokens sent through unembed + head (1 for jaxsim, n for the reference).
      substeps: sub-steps per unembedded token (1 for jaxsim's Hp = 1, P for the reference).
      variates: V.

    Returns:
      FLOPs (int).
    """
    p, d, f, k = config.patch_size, config.embed_dim, config.mlp_hidden_dim, config.k_components
    n = -(-int(context_len) // p)
    tokens = n * variates
    dense = 6 * d * d + 2 * d * d + 6 * d * f  # per token per layer
    n_space = config.num_blocks
    n_time = config.num_layers - n_space
    attn = n_time * 4 * n * d + n_space * 4 * variates * d  # per token
    body = tokens * (2 * p * d + config.num_layers * dense + attn)
    out = unembed_tokens * variates * substeps * (2 * d * d + 8 * d * k)
    return int(body + out)


def matmul_peak(n: int = 2048, dtype: str = "float32", repeats: int = 5) -> dict[str, float]:
    """Measured dense matmul throughput of the default device: ``jnp.dot`` of two ``(n, n)`` arrays.

    The peak is what the device can do, so the FASTEST of ``repeats`` calls is used (on a shared
    machine the median measures the other jobs too).

    Returns:
      dict with ``flops_per_s`` (2 n^3 / fastest time), ``seconds`` and the settings.
    """
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(k2, (n, n), jnp.float32).astype(dtype)
    dot = jax.jit(jnp.dot)
    timing, _ = time_compiled(dot, a, b, repeats=repeats)
    best = min(timing.runs)
    return dict(n=n, dtype=str(dtype), seconds=best, flops_per_s=2.0 * n**3 / best)


# ----------------------------------------------------------------------------------------------
# Output: markdown, plots, JSON


def _fmt(value, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:  # NaN
        return "n/a"
    if spec:
        return format(value, spec)
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A GitHub markdown table.

    Args:
      rows: dicts of values.
      columns: ``(key, header, format spec)`` per column, e.g. ``("run_s", "run (s)", ".3f")``.

    Returns:
      The table text (header, separator, one line per row), newline-terminated.
    """
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(key), spec) for key, _, spec in columns) + " |")
    return "\n".join(lines) + "\n"


def _pyplot():
    # deferred: pyplot with the Agg backend only once a benchmark draws (importing the harness picks no backend)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lines(path, panels: Sequence[dict], title: str = "", footer: str = "", ncols: int = 3) -> Path:
    """Save a row of line panels as PNG.

    Args:
      path: output file.
      panels: dicts with ``series`` (label -> (xs, ys)), ``xlabel``, ``ylabel``, optional ``logx``,
        ``logy``, ``title``; laid out ``ncols`` per row.
      title: figure title; footer: small text under the panels (device, versions, date).

    Returns:
      The path written.
    """
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter  # deferred with pyplot (see _pyplot)

    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        for label, (xs, ys) in panel["series"].items():
            ax.plot(xs, ys, marker="o", ms=3, label=label)
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.set_title(panel.get("title", ""), fontsize=10)
        if panel.get("logx"):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        if panel.get("logy"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(panel["series"]) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save_figure(plt, fig, path, footer, width=200)


def plot_bars(
    path,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    ylabel: str,
    title: str = "",
    footer: str = "",
    logy: bool = True,
    annotate: Sequence[str] | None = None,
) -> Path:
    """Save a bar chart (log scale by default) with optional per-bar annotations."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7.0, 1.8 * len(labels)), 4.6))
    bars = ax.bar(range(len(labels)), values, color=["#c44e52" if "reference" in x else "#4c72b0" for x in labels])
    for bar, text in zip(bars, annotate or []):
        if text.startswith("extrapolated"):  # extrapolated values are hatched, never mistaken for measurements
            bar.set_hatch("//")
            bar.set_alpha(0.6)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    for bar, text in zip(bars, annotate or []):
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save_figure(plt, fig, path, footer, width=150)


def _save_figure(plt, fig, path, footer: str, *, width: int) -> Path:
    """Footer (device and conditions), tight layout, PNG at 110 dpi; folders created."""
    if footer:
        fig.text(0.01, 0.005, textwrap.fill(footer, width), fontsize=6, alpha=0.7)
    fig.tight_layout(rect=(0, 0.06 if footer else 0, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(path, payload) -> Path:
    """Write ``payload`` as indented JSON (NaN allowed), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path
