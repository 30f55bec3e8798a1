"""Full-history backtests (prefix-shared Toto): stage breakdown at N = 50, 500 and all, both paths.

    PYTHONPATH=. python benchmarks/bench_full_history.py [--sims 50 500 all] [--prefix-json PATH]
        [--skip-passes] [--out benchmarks/results]

Toto Base with random weights, AEM (1,560 rows), targets close/high/low, S = 3,072 draws per origin,
the default optimizer. Stages, each jitted, compiled apart and run once warm:

* forecast passes: ``prefix_mixtures`` at N=all (measured here unless ``--skip-passes``); the
  per-context and the N=50/500 prefix passes come from bench_prefix.py's results
  (benchmarks/results/prefix*.json: measured there, per-context N=all extrapolated there);
* draws + aggregation: new = ``summarize_draws`` (DRAW_CHUNK origin-target entries per step: point
  and band, no (X, N+6, S) array); old = all draws in one vmap then ``point_and_band`` (timed at
  N=50 only; at N=500/all the old draws come from prefix.json, aggregation scaled from N=50);
* strategies + optimizer (+ forecasted P&L): ``jaxsim.backtest`` with the naive forecaster (its
  forecast is free), program seconds; host = wall time of the call minus program seconds.

Both paths share the draws' keys and sampler and the whole simulation stage: the paths differ in
the passes only (and in the old path's unchunked draws). Peak memory: XLA's accounting of the
N=all simulation program and of the chunked draws program, and this process' peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jaxsim  # noqa: E402
from jaxsim import forecasters  # noqa: E402
from jaxsim.bench import harness  # noqa: E402
from jaxsim.config import BacktestConfig  # noqa: E402
from jaxsim.forecast.forecasters import DRAW_CHUNK  # noqa: E402
from jaxsim.forecast.grid import ContextGroup, ForecastGrid  # noqa: E402
from jaxsim.forecast.interface import context_keys, point_and_band, summarize_draws, target_returns  # noqa: E402
from jaxsim.forecast.prefix import prefix_mixtures  # noqa: E402
from jaxsim.models.toto import forecast as toto_forecast  # noqa: E402
from jaxsim.models.toto.model import TOTO_BASE, init_toto  # noqa: E402

TARGETS = ("close", "high", "low")
AGG = "trimmed_mean_10"


def timed(fn, *args):
    """(compile_s, run_s, compiled) of ``jax.jit(fn)`` on ``args`` (one warm run)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    return compile_s, time.perf_counter() - t0, compiled


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", nargs="+", default=["50", "500", "all"])
    ap.add_argument("--samples", type=int, default=3072)
    ap.add_argument("--prefix-json", default=str(ROOT / "benchmarks/results/prefix.json"))
    ap.add_argument("--skip-passes", action="store_true", help="take the N=all prefix passes from --prefix-json")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    args = ap.parse_args(argv)
    before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print("load before:", before, flush=True)
    prices = jaxsim.load_prices(ROOT.parent / "shared/data/daily/AEM.csv", symbol="AEM")
    t = len(prices.close)
    prev = {r["n"]: r for r in json.loads(Path(args.prefix_json).read_text())["results"]}
    config = TOTO_BASE
    params = jax.jit(init_toto, static_argnums=0)(config, jax.random.key(0))
    table = np.stack([prices.open, prices.high, prices.low, prices.close, np.zeros_like(prices.close)], 1)
    returns = target_returns(jnp.asarray(table, jnp.float32), TARGETS)
    key = jax.random.key(0)
    base = BacktestConfig()
    rows = []
    grid_all = ForecastGrid(t, base.replace(n_sims="all").sims_for(t))
    mix_fn = lambda pr, r: prefix_mixtures(pr, config, r, grid_all)  # noqa: E731
    if args.skip_passes:
        full_passes, full_mixture = None, jax.jit(mix_fn)(params, returns)
    else:
        c, r, compiled = timed(mix_fn, params, returns)
        full_passes, full_mixture = (c, r), compiled(params, returns)
    for label in args.sims:
        n = base.replace(n_sims=label).sims_for(t) if label == "all" else int(label)
        grid = ForecastGrid(t, n)
        row = dict(n=label, n_sims=n, origins=grid.n_origins)
        p = prev.get(label, {})
        row.update(per_context_passes_s=p.get("per_context_run_s"), per_context_note=p.get("per_context_note"),
                   per_context_passes_compile_s=p.get("per_context_compile_s"),
                   prefix_passes_s=p.get("prefix_run_s"), prefix_passes_compile_s=p.get("prefix_compile_s"),
                   prefix_passes_note="bench_prefix", old_draws_s=p.get("draws_run_s"))
        if label == "all" and full_passes is not None:
            row.update(prefix_passes_s=full_passes[1], prefix_passes_compile_s=full_passes[0],
                       prefix_passes_note="measured")
        # the recent origins' mixtures do not depend on N (tests/test_prefix.py): slice N=all's
        mixture = jax.tree.map(lambda a, o=grid.n_origins: a[:, -o:], full_mixture)
        print(label, "passes", row["prefix_passes_s"], flush=True)
        keys = context_keys(key, grid, TARGETS, ContextGroup(0, grid.n_origins, 0))

        def draw_one(k, m):
            return toto_forecast.sample_mixture(k, jax.tree.map(lambda a: a[None], m), args.samples)[0]

        new = lambda ks, m: summarize_draws(draw_one, ks, m, AGG, DRAW_CHUNK)  # noqa: E731
        c, r, compiled = timed(new, keys, mixture)
        row.update(draws_agg_s=r, draws_agg_compile_s=c, draws_memory=harness.program_memory(compiled))
        print(label, "draws+agg chunked", r, flush=True)
        if label == "50":
            def old(ks, m):
                flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), m)
                s = jax.vmap(draw_one)(ks.reshape(-1), flat).reshape(ks.shape + (args.samples,))
                from jaxsim.forecast.interface import Forecast
                return point_and_band(Forecast(samples=s), AGG)

            c_old, r_old, _ = timed(old, keys, mixture)
            row.update(old_draws_agg_s=r_old, old_draws_agg_note="measured")
            agg_per_entry = max(r_old - (row["old_draws_s"] or r_old), 0.0) / (3 * grid.n_origins)
        else:
            row.update(old_draws_agg_s=(row["old_draws_s"] or float("nan")) + agg_per_entry * 3 * grid.n_origins,
                       old_draws_agg_note="prefix.json draws + scaled aggregation")
        # simulation stage: the naive forecaster's forecast costs nothing
        naive = forecasters.naive()
        t0 = time.perf_counter()
        first = jaxsim.backtest(prices, naive, n_sims=label if label == "all" else n)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = jaxsim.backtest(prices, naive, n_sims=label if label == "all" else n)
        wall = time.perf_counter() - t0
        row.update(sim_stage_s=warm.metadata["seconds"], host_s=wall - warm.metadata["seconds"],
                   sim_compile_s=first_s - wall, sims=first.n_sims, rss_mib=harness.peak_rss_mib())
        print(label, "sim stage", row["sim_stage_s"], "compile", row["sim_compile_s"], flush=True)
        for path, passes, draws in (("per_context", row["per_context_passes_s"], row["old_draws_agg_s"]),
                                    ("prefix", row["prefix_passes_s"], row["draws_agg_s"])):
            row[f"{path}_total_s"] = (passes or float("nan")) + draws + row["sim_stage_s"] + row["host_s"]
        rows.append(row)
    after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    # simulation program memory at N=all (XLA accounting)
    cfg = base.replace(n_sims="all")
    from jaxsim.engine import api
    from jaxsim.engine.program import compiled_program
    prep = api.prepare_stock(prices, cfg, symbol="AEM")
    setup = api.make_setup(prep, cfg)
    naive = forecasters.naive()
    stocks = jax.tree.map(jnp.asarray, api.stock_arrays(naive, [prep]))
    mem = harness.program_memory(compiled_program.lower(naive, stocks, jnp.zeros(1), jnp.zeros(1), key[None],
                                                        setup=setup).compile())
    out = dict(env=harness.environment(), uptime_before=before, uptime_after=after, rows=rows,
               sim_program_memory_all=mem, draw_chunk=DRAW_CHUNK, sim_chunk=base.sim_chunk, samples=args.samples,
               stock="AEM", n_rows=t, config="TOTO_BASE random weights")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "full_history.json").write_text(json.dumps(out, indent=1, default=float))
    print(json.dumps(out, indent=1, default=float))


COLUMNS = [("n", "N", ""), ("n_sims", "sims", "d"), ("origins", "origins", "d"),
           ("per_context_passes_s", "per-ctx passes (s)", ".1f"), ("per_context_note", "per-ctx", ""),
           ("prefix_passes_s", "prefix passes (s)", ".1f"), ("prefix_passes_note", "prefix", ""),
           ("old_draws_agg_s", "old draws+agg (s)", ".1f"), ("draws_agg_s", "chunked draws+agg (s)", ".1f"),
           ("sim_stage_s", "strategies+optimizer (s)", ".1f"), ("host_s", "host (s)", ".2f"),
           ("per_context_total_s", "per-ctx total (s)", ".1f"), ("prefix_total_s", "prefix total (s)", ".1f"),
           ("forecast_x", "forecast stage x", ".1f"), ("sim_compile_s", "sim compile (s)", ".0f"),
           ("draws_agg_compile_s", "draws compile (s)", ".0f")]


def report(path):
    """Markdown table and time-vs-N plot from ``full_history.json``."""
    data = json.loads(Path(path).read_text())
    rows = data["rows"]
    for r in rows:
        r["forecast_x"] = ((r["per_context_passes_s"] + r["old_draws_agg_s"]) / (r["prefix_passes_s"] + r["draws_agg_s"]))
    mem = data["sim_program_memory_all"]
    text = (harness.markdown_table(rows, COLUMNS) +
            f"\nN=all simulation program (naive forecaster, sim_chunk {data['sim_chunk']}): XLA temp "
            f"{mem['temp_mib']:.0f} MiB, peak {mem['peak_mib']:.0f} MiB; chunked draws program at N=all: temp "
            f"{rows[-1]['draws_memory']['temp_mib']:.0f} MiB (the unchunked (X, N+6, S) float32 draws alone: "
            f"{3 * rows[-1]['origins'] * data['samples'] * 4 / 2**20:.0f} MiB); process peak RSS "
            f"{rows[-1]['rss_mib']:.0f} MiB.\n\nLoad before: `{data['uptime_before']}`; after: `{data['uptime_after']}`\n\n"
            + harness.header_markdown(data["env"]) + "\n")
    out = Path(path).with_suffix(".md")
    out.write_text("# Full history (prefix-shared Toto), AEM, Toto Base random weights, 3 targets, 3072 draws\n\n" + text)
    xs = [r["n_sims"] for r in rows]
    harness.plot_lines(Path(path).with_suffix(".png"), [
        dict(series={"per-context (old)": (xs, [r["per_context_total_s"] for r in rows]),
                     "prefix-shared": (xs, [r["prefix_total_s"] for r in rows])},
             xlabel="simulations N", ylabel="warm wall time (s)", logx=True, title="backtest, all stages"),
        dict(series={"per-context passes": (xs, [r["per_context_passes_s"] for r in rows]),
                     "prefix passes": (xs, [r["prefix_passes_s"] for r in rows]),
                     "old draws+agg": (xs, [r["old_draws_agg_s"] for r in rows]),
                     "chunked draws+agg": (xs, [r["draws_agg_s"] for r in rows]),
                     "strategies+optimizer": (xs, [r["sim_stage_s"] for r in rows])},
             xlabel="simulations N", ylabel="s", logx=True, title="stages")],
        title="AEM 1,560 rows, Toto Base (random), 3 targets, 3,072 draws",
        footer=harness.header_markdown(data["env"]))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--report":
        print(report(sys.argv[2]).read_text())
    else:
        main()
        print(report(Path(ROOT / "benchmarks/results/full_history.json")).read_text())
