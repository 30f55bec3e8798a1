"""Forecast-seed uncertainty: the cost of K seeds in one program, and how much results move with the seed.

    PYTHONPATH=. python benchmarks/bench_seeds.py [--seeds 8] [--symbols AAPL,AEM,NIO] [--sims all]

For the first symbol (a bundled sample or a file of the shared data), runs the embedded default model at
``--sims`` with ``n_seeds=1`` and ``n_seeds=K`` side by side in one process: compile (first call minus
the warm time) and warm time (median of ``--reps``), and their ratio. Then, for every symbol, the K-seed
run's spread of the walk-forward Return [%] and Sharpe Ratio per strategy, and the pooled verdict.
Prints a Markdown table per part; the device and the load average are printed first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import jax

import jaxsim
from jaxsim import forecasters

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "daily"


def _prices(symbol: str):
    path = DATA / f"{symbol}.csv"
    return jaxsim.load_prices(path, symbol=symbol) if path.exists() else jaxsim.sample(symbol)


def _timed(fn, reps: int):
    t0 = time.perf_counter()
    first = fn()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    w = statistics.median(warm)
    return first, cold - w, w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--symbols", default="AAPL,AEM,NIO")
    ap.add_argument("--sims", default="all")
    ap.add_argument("--samples", type=int, default=3072)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    sims = args.sims if args.sims == "all" else int(args.sims)
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; load average {os.getloadavg()[0]:.1f}")
    model = forecasters.default(num_samples=args.samples)
    symbols = args.symbols.split(",")
    p = _prices(symbols[0])
    cost = {}
    for k in (1, args.seeds):
        run = lambda k=k: jaxsim.backtest(p, model, n_sims=sims, protocol="walk_forward", n_seeds=k)
        _, compile_s, warm_s = _timed(run, args.reps)
        cost[k] = (compile_s, warm_s)
    (c1, w1), (ck, wk) = cost[1], cost[args.seeds]
    print(f"\n{symbols[0]}, N={sims}, {args.samples} draws, walk_forward")
    print("| seeds | compile s | warm s |\n|---|---|---|")
    print(f"| 1 | {c1:.1f} | {w1:.2f} |\n| {args.seeds} | {ck:.1f} | {wk:.2f} |")
    print(f"| ratio | {ck / c1:.2f}x | {wk / w1:.2f}x |")
    print(f"\nSpread over {args.seeds} seeds (walk_forward, N={sims}): Return [%] / Sharpe Ratio, mean [min, max]")
    print("| symbol | strategy | Return [%] | Sharpe Ratio |\n|---|---|---|---|")
    verdicts = {}
    for sym in symbols:
        r = jaxsim.backtest(_prices(sym), model, n_sims=sims, protocol="walk_forward", n_seeds=args.seeds)
        spread = r.seed_spread()
        for name in r.summary.index:
            cells = [spread.loc[(name, s)] for s in ("Return [%]", "Sharpe Ratio")]
            text = [f"{c['mean']:+.1f} [{c['min']:+.1f}, {c['max']:+.1f}]" for c in cells[:1]]
            text += [f"{c['mean']:+.2f} [{c['min']:+.2f}, {c['max']:+.2f}]" for c in cells[1:]]
            print(f"| {sym} | {name} | {text[0]} | {text[1]} |")
        verdicts[sym] = r.seed_verdict()
    for sym, v in verdicts.items():
        print(f"\n{sym}: {v}")


if __name__ == "__main__":
    main()
