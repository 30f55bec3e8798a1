"""Forecast stage, per-context path vs prefix-shared path, side by side in one run.

    PYTHONPATH=. python benchmarks/bench_prefix.py [--sims 50 500 all] [--samples 3072] [--reps 1]
        [--per-context-max-s 300] [--out benchmarks/results]

Toto Base with random weights, AEM (1,560 rows), targets close/high/low, S = 3,072 draws per origin.
For each N (``all`` = every origin with >= 64 context returns):

* per-context passes: one forward per unique origin context, grouped by padded length (what
  ``TotoForecaster.forecast`` runs), mixtures only;
* prefix passes: ``jaxsim.forecast.prefix.prefix_mixtures`` (one pass per length class and target);
* draws: S draws per origin from the mixtures with the per-context keys (the same sampler for both
  paths, so timed once per N); forecast stage = passes + draws.

Each program is jitted, compiled explicitly (compile time reported apart) and run ``reps`` times
(median). When the per-context run at some N is predicted (from the forward FLOPs and the rate
measured at the previous N) to exceed ``--per-context-max-s``, it is not run: its compile and run
times are extrapolated linearly (run time in forward FLOPs, compile time in the number of padded
lengths) and marked ``extrapolated``. The floor is P = 64 classes x 3 targets full-length passes
(one batched forward of 192 rows at the padded full length); the FLOP rates are compared with the
measured dense matmul peak. The machine may be shared: quote the load printed with the numbers.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jaxsim  # noqa: E402
from jaxsim.bench import harness  # noqa: E402
from jaxsim.forecast.grid import ContextGroup, ForecastGrid, context_groups, gather_contexts  # noqa: E402
from jaxsim.forecast.interface import context_keys, target_returns  # noqa: E402
from jaxsim.forecast.prefix import prefix_mixtures, prefix_plan  # noqa: E402
from jaxsim.models.toto import forecast as toto_forecast  # noqa: E402
from jaxsim.models.toto.model import TOTO_BASE, TOTO_SMALL, init_toto  # noqa: E402

TARGETS = ("close", "high", "low")


def per_context_mixtures(params, config, returns, grid):
    """What TotoForecaster.forecast runs before its draws: one forward per context, by padded length."""
    parts = []
    for group in context_groups(grid, config.patch_size):
        context, valid = gather_contexts(returns, grid, group)
        x, n, length = context.shape
        flat_valid = jnp.broadcast_to(valid[None], context.shape).reshape(x * n, length)
        mix = toto_forecast.next_step_mixture(params, config, context.reshape(x * n, length), flat_valid)
        parts.append(jax.tree.map(lambda a: a.reshape((x, n) + a.shape[1:]), mix))
    return jax.tree.map(lambda *a: jnp.concatenate(a, axis=1), *parts)


def draws(mixture, keys, num_samples):
    """The per-context sampler of TotoForecaster / prefix_forecast: ``(X, O, S)``."""
    def one(k, m):
        return toto_forecast.sample_mixture(k, jax.tree.map(lambda a: a[None], m), num_samples)[0]

    x, o = keys.shape
    flat = jax.tree.map(lambda a: a.reshape((x * o,) + a.shape[2:]), mixture)
    return jax.vmap(one)(keys.reshape(-1), flat).reshape(x, o, num_samples)


def per_context_flops(config, grid, n_targets):
    return n_targets * sum(group.size * harness.toto_forward_flops(config, group.length)
                           for group in context_groups(grid, config.patch_size))


def prefix_flops(config, grid, n_targets):
    total = 0
    for ps in prefix_plan(grid, config.patch_size):
        body = harness.toto_forward_flops(config, ps.length, unembed_tokens=0)
        head = harness.toto_forward_flops(config, ps.length, unembed_tokens=1) - body
        total += n_targets * (len(ps.row_origins) * body + ps.served.size * head)
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(ROOT.parent / "shared" / "data" / "daily" / "AEM.csv"))
    ap.add_argument("--sims", nargs="+", default=["50", "500", "all"])
    ap.add_argument("--samples", type=int, default=3072)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--per-context-max-s", type=float, default=300.0,
                    help="extrapolate a per-context run predicted to take longer than this (compile + run)")
    ap.add_argument("--min-context", type=int, default=64)
    ap.add_argument("--skip-floor", action="store_true", help="do not time the floor (a check run)")
    ap.add_argument("--config", choices=["base", "small"], default="base", help="small: a smoke test")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()

    env = harness.environment()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(harness.header_markdown(env), "\n", uptime, flush=True)
    config = TOTO_BASE if args.config == "base" else TOTO_SMALL
    prices = jaxsim.load_prices(args.csv)
    table = np.stack([prices.open, prices.high, prices.low, prices.close,
                      np.zeros_like(prices.close) if prices.volume is None else prices.volume], 1)
    n_rows = len(prices)
    returns = target_returns(jnp.asarray(table, jnp.float32), TARGETS)
    params = jax.jit(init_toto, static_argnums=0)(config, jax.random.key(0))
    key = jax.random.key(1)
    peak = harness.matmul_peak(n=2048)
    print(f"matmul peak {peak['flops_per_s'] / 1e9:.1f} GFLOP/s", flush=True)

    # floor: P classes x 3 targets, one batched forward each at the full padded length
    full = math.ceil((n_rows - 3) / config.patch_size) * config.patch_size
    rows = config.patch_size * len(TARGETS)
    one, one_valid = toto_forecast.left_pad(np.asarray(returns[0, 1:n_rows - 2]), config.patch_size)  # r[1..T-3]
    ctx = jnp.broadcast_to(jnp.asarray(one), (rows, full))
    val = jnp.broadcast_to(jnp.asarray(one_valid), (rows, full))
    last = np.full(rows, full // config.patch_size - 1)
    floor_fn = jax.jit(lambda p, c, v: toto_forecast.prefix_step_mixtures(p, config, c, v, np.arange(rows), last))
    floor_flops = rows * harness.toto_forward_flops(config, full)
    if args.skip_floor:
        floor_t = harness.Timing(float("nan"), float("nan"), ())
    else:
        floor_t, _ = harness.time_compiled(floor_fn, params, ctx, val, repeats=args.reps)
    print(f"floor: {rows} passes of {full}: {floor_t.run_s:.2f} s (compile {floor_t.compile_s:.1f} s)", flush=True)

    results, rate = [], None
    for n_arg in args.sims:
        n_sims = n_rows - 7 - 1 - args.min_context if n_arg == "all" else int(n_arg)
        grid = ForecastGrid(n_rows=n_rows, n_sims=n_sims)
        row = dict(n=n_arg, n_sims=n_sims, origins=grid.n_origins,
                   padded_lengths=len(context_groups(grid, config.patch_size)),
                   prefix_passes=sum(len(p.row_origins) for p in prefix_plan(grid, config.patch_size)) * len(TARGETS),
                   per_context_passes=grid.n_origins * len(TARGETS))
        row["per_context_gflop"] = per_context_flops(config, grid, len(TARGETS)) / 1e9
        row["prefix_gflop"] = prefix_flops(config, grid, len(TARGETS)) / 1e9

        fn = jax.jit(lambda p, r, g=grid: prefix_mixtures(p, config, r, g))
        t, _ = harness.time_compiled(fn, params, returns, repeats=args.reps)
        mixture = t.output
        row.update(prefix_compile_s=t.compile_s, prefix_run_s=t.run_s)
        print(f"N={n_arg}: prefix passes {t.run_s:.2f} s (compile {t.compile_s:.1f} s)", flush=True)

        keys = context_keys(key, grid, TARGETS, ContextGroup(0, grid.n_origins, 0))
        t, _ = harness.time_compiled(jax.jit(lambda m, k: draws(m, k, args.samples)), mixture, keys,
                                     repeats=args.reps)
        row.update(draws_compile_s=t.compile_s, draws_run_s=t.run_s)
        print(f"N={n_arg}: draws {t.run_s:.2f} s (compile {t.compile_s:.1f} s)", flush=True)
        del t

        predicted = None if rate is None else (row["per_context_gflop"] / rate[0]
                                               + row["padded_lengths"] * rate[1])
        if predicted is not None and predicted > args.per_context_max_s:
            row.update(per_context_run_s=row["per_context_gflop"] / rate[0],
                       per_context_compile_s=row["padded_lengths"] * rate[1], per_context_note="extrapolated")
            print(f"N={n_arg}: per-context extrapolated (predicted {predicted:.0f} s)", flush=True)
        else:
            fn = jax.jit(lambda p, r, g=grid: per_context_mixtures(p, config, r, g))
            t, _ = harness.time_compiled(fn, params, returns, repeats=args.reps)
            want = t.output
            err = float(jnp.max(jnp.abs(want.df - mixture.df) / want.df))
            row.update(per_context_compile_s=t.compile_s, per_context_run_s=t.run_s, per_context_note="measured",
                       max_rel_err_df=err)
            rate = (row["per_context_gflop"] / t.run_s, t.compile_s / row["padded_lengths"])
            print(f"N={n_arg}: per-context passes {t.run_s:.2f} s (compile {t.compile_s:.1f} s), "
                  f"prefix vs per-context df rel err {err:.1e}", flush=True)
            del t, want
        row["per_context_stage_s"] = row["per_context_run_s"] + row["draws_run_s"]
        row["prefix_stage_s"] = row["prefix_run_s"] + row["draws_run_s"]
        row["passes_speedup"] = row["per_context_run_s"] / row["prefix_run_s"]
        row["stage_speedup"] = row["per_context_stage_s"] / row["prefix_stage_s"]
        row["prefix_over_floor"] = row["prefix_run_s"] / floor_t.run_s
        row["prefix_peak_frac"] = row["prefix_gflop"] * 1e9 / row["prefix_run_s"] / peak["flops_per_s"]
        row["per_context_peak_frac"] = row["per_context_gflop"] * 1e9 / row["per_context_run_s"] / peak["flops_per_s"]
        results.append(row)

    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    env_after = harness.environment()
    floor = dict(passes=rows, padded_length=full, run_s=floor_t.run_s, compile_s=floor_t.compile_s,
                 gflop=floor_flops / 1e9, peak_frac=floor_flops / floor_t.run_s / peak["flops_per_s"])
    payload = dict(env=env, uptime_before=uptime, uptime_after=uptime_after, loadavg_after=env_after["loadavg"],
                   config=f"TOTO_{args.config.upper()} random weights", stock=Path(args.csv).stem, rows=n_rows,
                   targets=TARGETS,
                   samples=args.samples, reps=args.reps, matmul_peak=peak, floor=floor, results=results)
    args.out.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out / "prefix.json", payload)

    cols = [("n", "N", ""), ("origins", "origins", "d"), ("per_context_passes", "per-ctx passes", "d"),
            ("prefix_passes", "prefix passes", "d"), ("per_context_compile_s", "per-ctx compile (s)", ".1f"),
            ("per_context_run_s", "per-ctx passes (s)", ".2f"), ("per_context_note", "per-ctx", ""),
            ("prefix_compile_s", "prefix compile (s)", ".1f"), ("prefix_run_s", "prefix passes (s)", ".2f"),
            ("draws_run_s", "draws (s)", ".2f"), ("per_context_stage_s", "per-ctx stage (s)", ".2f"),
            ("prefix_stage_s", "prefix stage (s)", ".2f"), ("passes_speedup", "passes x", ".1f"),
            ("stage_speedup", "stage x", ".1f"), ("prefix_over_floor", "prefix/floor", ".2f"),
            ("prefix_peak_frac", "prefix % peak", ".0%"), ("per_context_peak_frac", "per-ctx % peak", ".0%")]
    footer = harness.header_markdown(env, f"after: {uptime_after}")
    md = [f"# Forecast stage: per-context vs prefix-shared (Toto {args.config}, random weights)", "",
          f"{Path(args.csv).stem}, {n_rows} rows, targets {', '.join(TARGETS)}, {args.samples} draws per origin, "
          f"median of {args.reps} warm run(s); compile times apart. Passes = mixtures only; stage = passes + "
          "draws (same sampler and keys on both paths). `extrapolated`: not run, estimated linearly from the "
          "previous N (run time in forward FLOPs, compile time in padded lengths).", "",
          harness.markdown_table(results, cols),
          f"Floor: {rows} full-length passes ({config.patch_size} classes x 3 targets, padded length {full}): "
          f"{floor_t.run_s:.2f} s run, {floor_t.compile_s:.1f} s compile, {floor['gflop']:.0f} GFLOP, "
          f"{floor['peak_frac']:.0%} of the measured matmul peak ({peak['flops_per_s'] / 1e9:.1f} GFLOP/s, "
          "2048^2 float32).", "", f"Load before: `{uptime}`", "", footer, ""]
    (args.out / "prefix.md").write_text("\n".join(md))
    xs = [r["n_sims"] for r in results]
    guessed = [r["n"] for r in results if r["per_context_note"] == "extrapolated"]
    per_ctx = "per-context" + (f" (extrapolated at N={', '.join(guessed)})" if guessed else "")
    harness.plot_lines(args.out / "prefix.png", [
        dict(series={per_ctx: (xs, [r["per_context_stage_s"] for r in results]),
                     "prefix-shared": (xs, [r["prefix_stage_s"] for r in results])},
             xlabel="N simulations", ylabel="forecast stage (s)", title="forecast stage (passes + draws)",
             logy=True),
        dict(series={per_ctx: (xs, [r["per_context_run_s"] for r in results]),
                     "prefix-shared": (xs, [r["prefix_run_s"] for r in results])},
             xlabel="N simulations", ylabel="forward passes (s)", title="forward passes only", logy=True),
    ], title="Toto Base forecast stage vs N (AEM, 3 targets)", footer=footer, ncols=2)
    print("\n".join(md))


if __name__ == "__main__":
    main()
