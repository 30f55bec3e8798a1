"""The walk-forward portfolio over a real universe: its cost against the universe run, and its verdict.

    PYTHONPATH=. python benchmarks/bench_portfolio.py [--stocks 42] [--samples 3072] [--out DIR]
    PYTHONPATH=. python benchmarks/bench_portfolio.py --synthetic 500   # the portfolio stage alone

Part 1 (the shared daily data, ``../shared/data/daily``): every stock at its full history
(``n_sims="all"``, ``walk_forward``) with the embedded default model, one ``backtest_many`` call (its
wall time, compiles included, and the warm time of its programs measured again); then
``jaxsim.portfolio(results, rule)`` for the ``original`` and ``top_k`` rules, cold (first call: its
compile) and warm. Prints the stage's share of the universe run, and the statistics of the portfolio,
of the universe's equal-weight buy & hold and of each stock's own best strategy in hindsight (the
median over stocks of the best column of ``stats()``: a bound no rule can know in advance).

Part 2 (``--synthetic S``): the replay alone on S stocks x 1,500 days x 8 strategies of random P&L
(``jaxsim.portfolio.core``), cold and warm, and the peak memory of the process. Device and load
average are printed first; ``--out`` also writes the equity plot (PNG) and the tables.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import jaxsim
from jaxsim import forecasters

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "daily"
ROWS = ["Return [%]", "Return (Ann.) [%]", "Sharpe Ratio", "Max. Drawdown [%]"]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def universe(args) -> None:
    files = sorted(DATA.glob("*.csv"))[: args.stocks]
    if not files:
        raise SystemExit(f"no daily data in {DATA}")
    prices = {f.stem: jaxsim.load_prices(f, symbol=f.stem) for f in files}
    model = forecasters.default(num_samples=args.samples)
    run = lambda: jaxsim.backtest_many(prices, model, n_sims="all", protocol="walk_forward", progress=False)
    results, cold = _timed(run)
    _, warm = _timed(run)
    days = sum(r.n_sims for r in results.values())
    print(f"\n## Universe: {len(results)} stocks, {days} stock-days, walk_forward, N=all, {args.samples} draws")
    print("| stage | cold s | warm s | share of the universe run (cold / warm) |\n|---|---|---|---|")
    print(f"| universe backtest_many | {cold:.1f} | {warm:.1f} | 100% |")
    ports = {}
    for rule in ("original", "top_k"):
        ports[rule], c = _timed(lambda rule=rule: jaxsim.portfolio(results, rule))
        _, w = _timed(lambda rule=rule: jaxsim.portfolio(results, rule))
        print(f"| portfolio({rule!r}) | {c:.2f} | {w:.2f} | {100 * c / cold:.1f}% / {100 * w / warm:.1f}% |")
    table = {f"portfolio ({rule})": p.stats()["portfolio"] for rule, p in ports.items()}
    table["equal-weight buy & hold"] = ports["original"].stats()["equal_weight"]
    best = pd.DataFrame({s: r.stats().loc[ROWS].astype(float).max(axis=1) for s, r in results.items()})
    print("\n| | " + " | ".join(ROWS) + " |\n|---|" + "---|" * len(ROWS))
    for name, col in table.items():
        print(f"| {name} | " + " | ".join(f"{float(col[r]):.2f}" for r in ROWS) + " |")
    print(
        "| each stock's best strategy in hindsight (median over stocks, per row) | "
        + " | ".join(f"{best.loc[r].median():.2f}" for r in ROWS)
        + " |"
    )
    for rule, p in ports.items():
        print(f"\n{rule}: {p.uncertainty(jax.random.key(0)).verdict}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        from jaxsim.report.plots import figure_png

        (out / "portfolio_42.png").write_bytes(figure_png(ports["original"].plot()))
        ports["original"].save(out / "original")


def synthetic(args) -> None:
    from jaxsim.portfolio.api import run_replay
    from jaxsim.portfolio.core import PortfolioInputs
    from jaxsim.portfolio.rules import Original, TopK

    n, days, strategies = args.synthetic, 1500, 8
    rng = np.random.default_rng(0)
    pnl = rng.normal(0.0003, 0.015, (days, n, strategies))
    listed = np.arange(days)[:, None] >= rng.integers(0, days // 2, n)[None, :]  # staggered first dates
    pnl[~listed] = np.nan
    inputs = PortfolioInputs(
        pnl=pnl,
        known=pnl,
        series=pnl + rng.normal(0, 0.002, pnl.shape),
        trading=listed,
        edge=np.abs(rng.normal(0.5, 0.3, (days, n))),
        sigma=np.abs(rng.normal(2.0, 0.5, (days, n))),
        fee=np.full(n, 0.0005),
        spread_bps=np.full(n, 5.0),
        crypto=np.zeros(n, bool),
        active_next=np.ones(n, bool),
    )
    print(f"\n## The replay alone: {n} stocks x {days} days x {strategies} strategies (synthetic P&L)")
    print("| rule | cold s | warm s |\n|---|---|---|")
    for rule in (Original(), TopK()):
        _, c = _timed(lambda rule=rule: run_replay(inputs, rule))
        _, w = _timed(lambda rule=rule: run_replay(inputs, rule))
        print(f"| {type(rule).__name__} | {c:.2f} | {w:.2f} |")
    print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stocks", type=int, default=42)
    ap.add_argument("--samples", type=int, default=3072)
    ap.add_argument("--synthetic", type=int, default=0, help="only the replay, on S synthetic stocks")
    ap.add_argument("--out", help="write the equity plot and the original rule's files here")
    args = ap.parse_args()
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; load average {os.getloadavg()[0]:.1f}")
    synthetic(args) if args.synthetic else universe(args)


if __name__ == "__main__":
    main()
