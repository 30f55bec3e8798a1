"""Command-line pieces for out-of-sample statistics: the verdict line printed by ``jaxsim backtest``
and the ``jaxsim compare`` subcommand (:func:`jaxsim.shell.compare.compare`).

Kept out of :mod:`jaxsim.cli.app` so that module only wires them in (one call, one parser hook).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxsim.cli.feedback import compile_reporter, elapsed
from jaxsim.cli.models import MODELS, make_forecaster
from jaxsim.cli.validate import RESAMPLE_CHOICES, RESAMPLE_HELP, UsageError, prepare_out, sims_arg
from jaxsim.config import ALL_SIMS, PROTOCOLS, BacktestConfig
from jaxsim.errors import JaxsimError

# deferred: the function-local imports (JAX, pandas, the prices, the engine) run when a command needs them;
# the parser imports this module

__all__ = ["COMPARE_MODELS", "DEFAULT_COMPARE", "verdict_text", "print_verdict", "add_compare_parser", "cmd_compare"]

COMPARE_MODELS = MODELS
# the embedded model against jaxsim.shell.compare.BASELINES (persistence, drift, historical volatility)
DEFAULT_COMPARE = "default,naive,historical-mean,volatility"


def verdict_text(result, seed: int = 0, n_resamples: int = 1000) -> str:
    """``Verdict: ...`` of a result (:meth:`jaxsim.report.result.BacktestResult.uncertainty` with
    ``jax.random.key(seed)``): the verdict, the best-Sharpe strategy's DSR and the PBO."""
    import jax

    return str(result.uncertainty(jax.random.key(seed), n_resamples=n_resamples))


def print_verdict(result, seed: int = 0) -> None:
    """Print :func:`verdict_text` (called after each summary table of ``jaxsim backtest``)."""
    print(verdict_text(result, seed))


def add_compare_parser(sub) -> None:
    """Add ``jaxsim compare SYMBOL|--csv PATH [--models ...] [--sims N]`` to the subcommands."""
    cp = sub.add_parser("compare", help="compare forecasters on one stock (strategy stats and forecast skill)")
    cp.add_argument("symbol", nargs="?", default="AAPL", metavar="SYMBOL", help="bundled sample (default AAPL)")
    cp.add_argument("--csv", metavar="PATH", help="price file instead of a bundled sample")
    cp.add_argument("--adjusted", action="store_true", help="use split/dividend-adjusted prices")
    cp.add_argument("--resample", type=str.upper, choices=RESAMPLE_CHOICES, help=RESAMPLE_HELP)
    cp.add_argument(
        "--models",
        default=DEFAULT_COMPARE,
        metavar="A,B",
        help=f"forecasters to compare, from {','.join(COMPARE_MODELS)} (default: {DEFAULT_COMPARE}: the "
        "embedded model and the three baselines)",
    )
    cp.add_argument("--weights", metavar="DIR", help="converted weight folder for toto / kronos")
    cp.add_argument("--tokenizer", metavar="DIR", help="converted Kronos tokenizer folder")
    cp.add_argument(
        "--sims",
        type=sims_arg,
        default=ALL_SIMS,
        metavar="N",
        help="number of simulations, or 'all' (the default: the full history, as jaxsim backtest)",
    )
    cp.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="walk_forward",
        help="walk_forward (the default, as jaxsim backtest) or legacy (the original's in-sample MaxDiff fit)",
    )
    cp.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0), the same for every forecaster")
    cp.add_argument("--resamples", type=int, default=1000, metavar="R", help="bootstrap resamples (default 1000)")
    cp.add_argument("--out", metavar="PATH", help="also write the table as CSV to PATH")
    cp.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="keep compiled programs in DIR (default $XDG_CACHE_HOME/jaxsim/xla or ~/.cache/jaxsim/xla)",
    )
    cp.add_argument("--no-cache", action="store_true", help="do not read or write compiled programs on disk")
    cp.set_defaults(func=cmd_compare)


def _progress(name: str, i: int, n: int):
    """One line as each forecaster's backtest starts and one as it ends (never redrawn: the compile
    line of :mod:`jaxsim.cli.feedback` may show inside it)."""
    return elapsed(f"[{i}/{n}] backtest with {name}", tty=False)


def cmd_compare(args: argparse.Namespace) -> int:
    """Run :func:`jaxsim.shell.compare.compare` and print its table (one row per forecaster).

    Every argument is checked first (``--out`` created and written, before any compile); compiled
    programs come from the compile cache as in ``jaxsim backtest`` (``--cache-dir``, ``--no-cache``),
    and a line on stderr shows each forecaster's backtest as it starts and ends.
    """
    import jax
    import pandas as pd

    from jaxsim.data.prices import as_prices
    from jaxsim.engine.compilation import CacheSettings, caching
    from jaxsim.shell.compare import compare

    for flag, value in (("--sims", args.sims), ("--resamples", args.resamples)):
        if value != ALL_SIMS and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.csv is not None and not Path(args.csv).is_file():
        raise UsageError(f"--csv {args.csv}: {'not a file' if Path(args.csv).exists() else 'no such file'}")
    names = list(dict.fromkeys(m.strip() for m in args.models.split(",") if m.strip()))
    if not names:
        raise JaxsimError("--models is empty")
    models = {
        name: make_forecaster(name, weights=args.weights, tokenizer=args.tokenizer, flag="--models") for name in names
    }
    prices = as_prices(args.csv or args.symbol, adjusted=args.adjusted, resample=args.resample)
    prepare_out(args.out, file=True)  # after the checks that create nothing
    config = BacktestConfig(n_sims=args.sims, protocol=args.protocol, seed=args.seed)
    with caching(CacheSettings(args.cache_dir, not args.no_cache), compile_reporter()):
        result = compare(
            prices,
            models,
            config,
            key=jax.random.key(args.seed),
            baselines=False,
            n_resamples=args.resamples,
            progress=_progress,
        )
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 80):
        print(
            f"Forecaster comparison for {prices.symbol or args.csv or args.symbol} ({args.sims} simulations, "
            f"protocol {args.protocol}, seed {args.seed})"
        )
        print(result.table.drop(columns="Verdict").T.to_string(float_format=lambda v: f"{v:.4g}"))
        for name, line in result.table["Verdict"].items():
            print(f"{name}: {line}")
    if args.out:
        result.table.to_csv(args.out)
        print(f"saved to {args.out}")
    return 0
