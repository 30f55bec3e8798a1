"""Full-history backtests: the prefix-shared Toto path against the per-context path, side by side.

``jaxsim bench full_history`` (the bundled AAPL sample) and ``benchmarks/bench_full_history.py``
(AEM, 1,560 rows) call :func:`full_history_suite`. For each N (``all`` = every origin with at
least ``min_context`` returns) it measures in one process, one after the other:

* end to end: ``jaxsim.backtest(prices, toto, n_sims=N)`` warm wall time and compile time, on the
  prefix path (no context cap) and on the per-context path (a context cap of T rows, which never
  binds: the same forecasts, taken per context);
* stages, each its own compiled program: forecast passes of each path (mixtures only), draws +
  summary (today's chunked sampler, shared by both paths), the old draws (jax.random's sampler
  over every entry at once, then point and band: what the per-context path ran before the prefix
  work), the simulation stage (strategies, optimizer, forecasted P&L: the naive forecaster's
  backtest) and host time (end-to-end wall minus the program);
* the floor (P classes x targets full-length passes in one batched forward), forward FLOP rates
  against the measured matmul peak, XLA's temporaries and the process' peak RSS.

Per-context runs predicted (forward FLOPs at the rate measured at the previous N) to take longer
than ``per_context_max_s`` are extrapolated and marked so.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxsim
from jaxsim.bench import harness
from jaxsim.bench.models import TOTO_BENCH_SMALL, precision, toto_forecaster
from jaxsim.config import BacktestConfig
from jaxsim.data.prices import as_prices, sample
from jaxsim.forecast import forecasters
from jaxsim.forecast.aggregate import aggregate as aggregate_fn
from jaxsim.forecast.aggregate import band, parse_aggregation
from jaxsim.forecast.forecasters import DRAW_CHUNK
from jaxsim.forecast.grid import ContextGroup, ForecastGrid, context_groups
from jaxsim.forecast.interface import context_keys, origin_realised, summarize_draws
from jaxsim.forecast.prefix import prefix_plan
from jaxsim.models.toto import forecast as toto_forecast
from jaxsim.models.toto.forecast import replace_extreme_values
from jaxsim.models.toto.model import TOTO_BASE
from jaxsim.shell import plan

__all__ = ["full_history_suite", "report"]

TARGETS = ("close", "high", "low")
AGGREGATE = "trimmed_mean_10"


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _old_draws_summary(forecaster, keys, mixture, aggregate):
    """The per-context path's draws before the prefix work: jax.random's categorical and gamma over
    all (X, O, S) draws in one vmap, then point and band of jnp.sort-ed draws."""
    spec = parse_aggregation(aggregate)
    s_count = forecaster.num_samples

    def one(key, m):
        k_cat, k_norm, k_gamma = jax.random.split(key, 3)
        comp = jax.random.categorical(k_cat, jnp.log(m.weights)[None, :], axis=-1, shape=(s_count,))
        df, mu, sc = m.df[comp], m.loc[comp], m.scale[comp]
        y = mu + sc * jax.random.normal(k_norm, (s_count,)) / jnp.sqrt(2.0 * jax.random.gamma(k_gamma, df / 2.0) / df)
        return replace_extreme_values(m.affine_loc + m.affine_scale * y)

    flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), mixture)
    draws = jax.vmap(one)(keys.reshape(-1), flat)
    return jax.vmap(lambda s: aggregate_fn(s, spec))(draws), jax.vmap(band)(draws)


def full_history_suite(
    out_dir,
    *,
    quick: bool = False,
    dtype: str = "float32",
    prices=None,
    config=None,
    sims=("50", "500", "all"),
    samples: int | None = None,
    per_context_max_s: float = 900.0,
    stock: str | None = None,
) -> dict:
    """Run the comparison and write ``full_history.{json,md,png}`` under ``out_dir``.

    Args:
      out_dir: output folder.
      quick: a smoke run (small random Toto, 256 draws, N = 50 and all on a 400-row tail).
      dtype: ``float32`` or ``bfloat16`` (weights and matmul precision).
      prices: the stock (default: the bundled AAPL sample).
      config: Toto config (default Toto Base; quick: the bench's small config).
      sims: the N values (ints as strings, or ``"all"``).
      samples: draws per origin (default 3,072; quick 256).
      per_context_max_s: extrapolate per-context runs predicted to take longer.
      stock: a name for the tables.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prices = sample("AAPL") if prices is None else as_prices(prices)
    if quick:
        prices = prices.tail(400)
        sims = ("50", "all")
    stock = stock or prices.symbol or "stock"
    config = config or (TOTO_BENCH_SMALL if quick else TOTO_BASE)
    samples = samples or (256 if quick else 3072)
    fc = toto_forecaster(config, num_samples=samples, dtype=dtype)
    n_rows = len(prices)
    base = BacktestConfig(n_sims=50, protocol="legacy")
    env = harness.environment()
    before = _uptime()
    peak = harness.matmul_peak(n=2048)
    prep = plan.prepare_stock(prices, base)
    stock_arrays = jax.tree.map(lambda a: jnp.asarray(a[0]), plan.stock_arrays(fc, [prep]))

    # floor: P classes x targets full-length passes, one batched forward
    p = config.patch_size
    full = math.ceil((n_rows - 3) / p) * p
    rows_n = p * len(TARGETS)
    ret = np.diff(np.log(np.asarray(prices.close, np.float64)))  # a plausible full-length context
    one, one_valid = toto_forecast.left_pad(ret[-(n_rows - 3) :].astype(np.float32), p)
    ctx = jnp.broadcast_to(jnp.asarray(one), (rows_n, full))
    val = jnp.broadcast_to(jnp.asarray(one_valid), (rows_n, full))
    last = np.full(rows_n, full // p - 1)
    with precision(dtype):
        floor_t, _ = harness.time_compiled(
            jax.jit(lambda pr, c, v: toto_forecast.prefix_step_mixtures(pr, config, c, v, np.arange(rows_n), last)),
            fc.params,
            ctx,
            val,
            repeats=1,
        )
    floor_gflop = rows_n * harness.toto_forward_flops(config, full) / 1e9

    def pc_flops(grid):
        return len(TARGETS) * sum(
            g.size * harness.toto_forward_flops(config, g.length) for g in context_groups(grid, p)
        )

    def prefix_flops(grid):
        total = 0
        for ps in prefix_plan(grid, p):
            body = harness.toto_forward_flops(config, ps.length, unembed_tokens=0)
            head = harness.toto_forward_flops(config, ps.length, unembed_tokens=1) - body
            total += len(TARGETS) * (len(ps.row_origins) * body + ps.served.size * head)
        return total

    rows, rate = [], None
    naive = forecasters.naive()
    for label in sims:
        n = base.replace(n_sims="all").sims_for(n_rows) if label == "all" else int(label)
        n_arg = "all" if label == "all" else n
        grid = ForecastGrid(n_rows, n)
        grid_pc = ForecastGrid(n_rows, n, max_context=n_rows)  # never binds: per-context path, same contexts
        assert fc.forecast_path(grid) == "prefix" and fc.forecast_path(grid_pc) == "per-context"
        row = dict(
            n=label,
            n_sims=n,
            origins=grid.n_origins,
            prefix_passes=len(TARGETS) * sum(len(ps.row_origins) for ps in prefix_plan(grid, p)),
            per_context_passes=len(TARGETS) * grid.n_origins,
            prefix_gflop=prefix_flops(grid) / 1e9,
            per_context_gflop=pc_flops(grid) / 1e9,
        )
        with precision(dtype):
            t, _ = harness.time_compiled(
                jax.jit(lambda pr, s, g=grid: dataclasses.replace(fc, params=pr).mixtures(s, g, TARGETS)),
                fc.params,
                stock_arrays,
                repeats=1,
            )
            mixture = t.output
            row.update(prefix_passes_s=t.run_s, prefix_passes_compile_s=t.compile_s)
            predicted = None if rate is None else row["per_context_gflop"] / rate
            extrapolate = predicted is not None and 3 * predicted > per_context_max_s  # stage + end to end
            if extrapolate:
                row.update(per_context_passes_s=predicted, per_context_note="extrapolated")
            else:
                t, _ = harness.time_compiled(
                    jax.jit(lambda pr, s, g=grid_pc: dataclasses.replace(fc, params=pr).mixtures(s, g, TARGETS)),
                    fc.params,
                    stock_arrays,
                    repeats=1,
                )
                rate = row["per_context_gflop"] / t.run_s
                # largest deviation of each mixture field relative to that field's largest magnitude
                err = max(
                    float(jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(a)), 1e-30))
                    for a, b in zip(t.output, mixture)
                )
                row.update(
                    per_context_passes_s=t.run_s,
                    per_context_passes_compile_s=t.compile_s,
                    per_context_note="measured",
                    mixture_max_err=err,
                )
            del t
            keys = context_keys(jax.random.key(0), grid, TARGETS, ContextGroup(0, grid.n_origins, 0))
            realised = origin_realised(stock_arrays, grid, TARGETS)
            t, compiled = harness.time_compiled(
                jax.jit(lambda k, m, y: summarize_draws(fc._draw_one, k, m, AGGREGATE, DRAW_CHUNK, y)),
                keys,
                mixture,
                realised,
                repeats=1,
            )
            row.update(
                draws_s=t.run_s,
                draws_compile_s=t.compile_s,
                draws_temp_mib=harness.program_memory(compiled)["temp_mib"],
            )
            t, _ = harness.time_compiled(
                jax.jit(lambda k, m: _old_draws_summary(fc, k, m, AGGREGATE)), keys, mixture, repeats=1
            )
            row.update(old_draws_s=t.run_s)
            del t, mixture
            sim = harness.time_call(lambda: jaxsim.backtest(prices, naive, n_sims=n_arg, protocol="legacy"), repeats=1)
            row.update(sim_stage_s=sim.output.metadata["seconds"])
            e2e = harness.time_call(lambda: jaxsim.backtest(prices, fc, n_sims=n_arg, protocol="legacy"), repeats=1)
            assert e2e.output.metadata["forecast_path"] == "prefix"
            row.update(
                prefix_wall_s=e2e.run_s,
                prefix_compile_s=e2e.compile_s,
                host_s=e2e.run_s - e2e.output.metadata["seconds"],
                rss_mib=harness.peak_rss_mib(),
            )
            if extrapolate:
                row.update(
                    per_context_wall_s=row["per_context_passes_s"]
                    + row["draws_s"]
                    + row["sim_stage_s"]
                    + row["host_s"],
                    per_context_wall_note="passes extrapolated",
                )
            else:
                e2e_pc = harness.time_call(
                    lambda: jaxsim.backtest(prices, fc, n_sims=n_arg, max_context=n_rows, protocol="legacy"), repeats=1
                )
                assert e2e_pc.output.metadata["forecast_path"] == "per-context"
                row.update(
                    per_context_wall_s=e2e_pc.run_s,
                    per_context_compile_s=e2e_pc.compile_s,
                    per_context_wall_note="measured",
                )
                del e2e_pc
            del e2e, sim
        row["prefix_stage_s"] = row["prefix_passes_s"] + row["draws_s"]
        row["per_context_stage_s"] = row["per_context_passes_s"] + row["draws_s"]
        row["old_stage_s"] = row["per_context_passes_s"] + row["old_draws_s"]
        row["passes_x"] = row["per_context_passes_s"] / row["prefix_passes_s"]
        row["stage_x"] = row["per_context_stage_s"] / row["prefix_stage_s"]
        row["old_stage_x"] = row["old_stage_s"] / row["prefix_stage_s"]
        row["prefix_over_floor"] = row["prefix_passes_s"] / floor_t.run_s
        row["prefix_peak_frac"] = row["prefix_gflop"] * 1e9 / row["prefix_passes_s"] / peak["flops_per_s"]
        row["flop_ratio"] = row["per_context_gflop"] / row["prefix_gflop"]
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    first = rows[0]
    for row in rows:
        row["wall_vs_first"] = row["prefix_wall_s"] / first["prefix_wall_s"]
    payload = dict(
        env=env,
        uptime_before=before,
        uptime_after=_uptime(),
        stock=stock,
        n_rows=n_rows,
        config="Toto Base random weights" if config == TOTO_BASE else repr(config),
        dtype=dtype,
        samples=samples,
        targets=TARGETS,
        draw_chunk=DRAW_CHUNK,
        sim_chunk=base.sim_chunk,
        matmul_peak=peak,
        floor=dict(
            passes=rows_n,
            padded_length=full,
            run_s=floor_t.run_s,
            compile_s=floor_t.compile_s,
            gflop=floor_gflop,
            peak_frac=floor_gflop * 1e9 / floor_t.run_s / peak["flops_per_s"],
        ),
        rows=rows,
    )
    harness.write_json(out_dir / "full_history.json", payload)
    return report(out_dir / "full_history.json")


COLUMNS = [
    ("n", "N", ""),
    ("n_sims", "sims", "d"),
    ("prefix_passes", "prefix passes", "d"),
    ("per_context_passes", "per-ctx passes", "d"),
    ("per_context_passes_s", "per-ctx passes (s)", ".2f"),
    ("per_context_note", "per-ctx", ""),
    ("prefix_passes_s", "prefix passes (s)", ".2f"),
    ("draws_s", "draws+summary (s)", ".2f"),
    ("old_draws_s", "old draws+agg (s)", ".2f"),
    ("sim_stage_s", "strategies+optimizer (s)", ".2f"),
    ("host_s", "host (s)", ".2f"),
    ("per_context_wall_s", "per-ctx wall (s)", ".1f"),
    ("prefix_wall_s", "prefix wall (s)", ".1f"),
    ("wall_vs_first", "wall / first N", ".2f"),
    ("passes_x", "passes x", ".1f"),
    ("stage_x", "forecast stage x", ".1f"),
    ("old_stage_x", "vs old stage x", ".1f"),
    ("flop_ratio", "FLOP ratio", ".1f"),
    ("prefix_over_floor", "prefix/floor", ".2f"),
    ("prefix_peak_frac", "prefix % peak", ".0%"),
    ("prefix_compile_s", "prefix compile (s)", ".0f"),
]


def report(path) -> dict:
    """Markdown table and time-vs-N plot from ``full_history.json``; returns the suite result."""
    path = Path(path)
    data = json.loads(path.read_text())
    rows, floor, peak = data["rows"], data["floor"], data["matmul_peak"]
    last = rows[-1]
    text = "\n".join(
        [
            f"# Full history: prefix-shared vs per-context Toto ({data['stock']}, {data['n_rows']} rows)",
            "",
            f"{data['config']}, {data['dtype']}, targets {', '.join(data['targets'])}, "
            f"{data['samples']} draws per origin, "
            "default optimizer; one warm run per cell, compile times apart. Walls are `jaxsim.backtest` end to end; "
            "the per-context path is the same backtest with a context cap of T rows (never binding). Stages are "
            "separate programs: forecast stage = passes + draws+summary (the same chunked sampler on both paths); "
            "'old' = the per-context passes + jax.random's sampler over all draws at once and point/band, what the "
            "per-context path ran before. `extrapolated`: the per-context run was predicted too long and estimated "
            "from the previous N's FLOP rate.",
            "",
            harness.markdown_table(rows, COLUMNS),
            f"Floor: {floor['passes']} full-length passes (padded length {floor['padded_length']}): "
            f"{floor['run_s']:.2f} s, "
            f"{floor['gflop']:.0f} GFLOP, {floor['peak_frac']:.0%} of the measured matmul peak "
            f"({peak['flops_per_s'] / 1e9:.1f} GFLOP/s, 2048^2 float32). "
            f"Draws+summary program at N={last['n']}: XLA temp "
            f"{last['draws_temp_mib']:.0f} MiB; process peak RSS {last['rss_mib']:.0f} MiB.",
            "",
            f"Load before: `{data['uptime_before']}`; after: `{data['uptime_after']}`",
            "",
            harness.header_markdown(data["env"]),
            "",
        ]
    )
    md = path.with_suffix(".md")
    md.write_text(text)
    xs = [r["n_sims"] for r in rows]
    harness.plot_lines(
        path.with_suffix(".png"),
        [
            dict(
                series={
                    "per-context": (xs, [r["per_context_wall_s"] for r in rows]),
                    "prefix-shared": (xs, [r["prefix_wall_s"] for r in rows]),
                },
                xlabel="simulations N",
                ylabel="warm wall time (s)",
                logx=True,
                title="backtest end to end",
            ),
            dict(
                series={
                    "per-context passes": (xs, [r["per_context_passes_s"] for r in rows]),
                    "prefix passes": (xs, [r["prefix_passes_s"] for r in rows]),
                    "draws+summary": (xs, [r["draws_s"] for r in rows]),
                    "old draws+agg": (xs, [r["old_draws_s"] for r in rows]),
                    "strategies+optimizer": (xs, [r["sim_stage_s"] for r in rows]),
                },
                xlabel="simulations N",
                ylabel="s",
                logx=True,
                title="stages",
            ),
        ],
        title=f"{data['stock']} {data['n_rows']} rows, {data['config']}, {data['samples']} draws",
        footer=harness.header_markdown(data["env"]),
        ncols=2,
    )
    return dict(rows=rows, markdown=text, paths=[str(md), str(path), str(path.with_suffix(".png"))])
