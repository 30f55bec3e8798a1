"""Full one-stock backtest with Toto at the Base configuration (random weights): compile and warm time.

The setting of the original's default run (docs/backtest.md#overview, #rolling-origin-forecasts): N = 50 simulations, 3
targets (close, high, low), 3,072 draws per context, trimmed_mean_10, the whole history as context. The original needed
~290 s per stock on a GPU for this (224 Toto calls after its disk cache, 3,072 samples each).

    PYTHONPATH=. python benchmarks/bench_backtest.py [--symbol AEM] [--sims 50] [--samples 3072]
                                                     [--reps 3] [--max-context C] [--rows R]

Prints: rows, contexts per target, compile time (first call minus the warm median), warm time
(median of ``--reps`` calls), the forecast stage alone (warm), and the device.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from jaxsim import forecasters
from jaxsim.data.prices import load_prices
from jaxsim.forecast import StockArrays
from jaxsim.forecast.grid import ForecastGrid, context_groups
from jaxsim.models.toto.model import TOTO_BASE, init_toto
from jaxsim.shell.api import backtest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "daily"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbol", default="AEM")
    ap.add_argument("--data-dir", default=str(DATA))
    ap.add_argument("--sims", type=int, default=50)
    ap.add_argument("--samples", type=int, default=3072)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-context", type=int, default=None)
    ap.add_argument(
        "--rows",
        type=int,
        default=None,
        help="keep only the last ROWS rows (the original downloaded 4 years: ~1000 rows)",
    )
    args = ap.parse_args()

    prices = load_prices(Path(args.data_dir) / f"{args.symbol}.csv", symbol=args.symbol)
    if args.rows:
        keep = slice(len(prices) - args.rows, None)
        prices = prices[keep]
    params = init_toto(TOTO_BASE, jax.random.key(0))
    fc = forecasters.toto(config=TOTO_BASE, params=params, num_samples=args.samples)
    grid = ForecastGrid(len(prices), args.sims, args.max_context)
    groups = context_groups(grid, TOTO_BASE.patch_size)
    print(
        f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}; {args.symbol}: {len(prices)} rows, "
        f"N={args.sims}, {grid.n_origins} contexts per target in {len(groups)} padded-length group(s) "
        f"{[(g.size, g.length) for g in groups]}, S={args.samples}"
    )

    def run(key):
        return backtest(
            prices,
            fc,
            n_sims=args.sims,
            num_samples=args.samples,
            key=key,
            max_context=args.max_context,
            protocol="legacy",
        )

    t0 = time.perf_counter()
    first = run(jax.random.key(0))
    first_s = time.perf_counter() - t0
    warm = []
    for i in range(args.reps):
        t0 = time.perf_counter()
        run(jax.random.key(i + 1))
        warm.append(time.perf_counter() - t0)
    warm_s = statistics.median(warm)

    # forecast stage alone (Toto forwards + draws), warm
    table = np.stack([prices.open, prices.high, prices.low, prices.close, prices.volume], 1).astype(np.float32)
    stock = StockArrays(jax.numpy.asarray(table), jax.numpy.zeros((len(table), 0)))
    fjit = jax.jit(lambda f, s, k: f.forecast(s, grid, ("close", "high", "low"), k).samples)
    jax.block_until_ready(fjit(fc, stock, jax.random.key(0)))
    t0 = time.perf_counter()
    jax.block_until_ready(fjit(fc, stock, jax.random.key(1)))
    forecast_s = time.perf_counter() - t0

    # matmul FLOPs of the forward passes: 2 x (weights per token) x tokens, weights = 12 layers of
    # QKV, O, SwiGLU in/out (the head and unembed run on one position per context only)
    d, h = TOTO_BASE.embed_dim, TOTO_BASE.mlp_hidden_dim
    per_token = TOTO_BASE.num_layers * (3 * d * d + d * d + d * 2 * h + h * d) + TOTO_BASE.patch_size * d
    tokens = sum(3 * g.size * g.length // TOTO_BASE.patch_size for g in groups)
    flops = 2.0 * per_token * tokens
    print(
        f"first call {first_s:.1f} s -> compile ~{first_s - warm_s:.1f} s; warm {warm_s:.2f} s "
        f"(runs {', '.join(f'{w:.2f}' for w in warm)}); forecast stage warm {forecast_s:.2f} s "
        f"= {flops / 1e9:.0f} GFLOP of matmuls at {flops / forecast_s / 1e9:.0f} GFLOP/s"
    )
    print(first.summary_text())


if __name__ == "__main__":
    main()
