"""``jaxsim portfolio RUN_DIR``, ``jaxsim plan --symbols ...`` and ``jaxsim backtest --portfolio [RULE]``.

* ``portfolio RUN_DIR [--rule R] [--window K] [--equity X] [--forecaster F]``: the walk-forward portfolio of a finished
  run folder (``jaxsim backtest --symbols ... --out DIR``), written into it: ``portfolio.csv``,
  ``weights.csv``, ``choices.csv``, ``plan.csv``, ``portfolio_stats.csv``, ``portfolio.json``
  (:meth:`jaxsim.portfolio.result.PortfolioResult.files`); prints the statistics and tomorrow's orders.
* ``plan --symbols A,B --data-dir DIR [--equity X] [--forecaster model|F]``: backtests the symbols
  (walk_forward) and prints tomorrow's orders, writing nothing.

``--forecaster F``: the forecasted P&L as of every day by forecaster F (``model``: the plan's own
``--model``) instead of the rule's point rule (docs/portfolio.md#forecast).
* ``backtest --symbols ... --out DIR --portfolio [RULE]``: the run, then ``portfolio DIR``.

Every argument is checked before anything is loaded or computed; a bad one is a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from jaxsim.cli.models import MODELS, make_forecaster
from jaxsim.cli.validate import UsageError, check_model_flags, check_sources

__all__ = [
    "RULE_NAMES",
    "add_portfolio_commands",
    "add_portfolio_flag",
    "check_portfolio_flag",
    "cmd_portfolio",
    "cmd_plan",
    "write_portfolio",
]

RULE_NAMES = ("original", "top_k", "inverse_vol", "score_proportional", "smooth")  # jaxsim.portfolio.rules.RULES
# forecasters of the daily forecasted P&L (jaxsim.cli.models names; Kronos does not forecast return series)
FORECASTER_NAMES = ("default", "naive", "historical-mean", "volatility")
PORTFOLIO_FILES = "portfolio.csv, weights.csv, choices.csv, plan.csv, portfolio_stats.csv, portfolio.json"


def _positive_float(flag):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{flag} must be > 0, got {text}")
        return value

    return parse


def _window(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--window must be an integer, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"--window must be >= 2, got {value}")
    return value


def _forecaster_flag(parser, names) -> None:
    parser.add_argument(
        "--forecaster",
        choices=names,
        metavar="F",
        help=f"forecast each strategy's P&L as of every day with F ({', '.join(names)}; docs/portfolio.md#forecast) "
        "instead of the rule's point rule (default: the point rule)",
    )


def _rule_flags(parser) -> None:
    parser.add_argument("--rule", choices=RULE_NAMES, default="original", help="the portfolio rule (default original)")
    parser.add_argument(
        "--window",
        type=_window,
        default=70,
        metavar="K",
        help="days of each strategy's rolling statistics (default 70)",
    )
    parser.add_argument(
        "--equity",
        type=_positive_float("--equity"),
        default=100_000.0,
        metavar="X",
        help="account size for the plan's share counts (default 100000)",
    )


def add_portfolio_flag(backtest_parser) -> None:
    """``--portfolio [RULE]`` on ``jaxsim backtest``."""
    backtest_parser.add_argument(
        "--portfolio",
        nargs="?",
        const="original",
        choices=RULE_NAMES,
        metavar="RULE",
        help=f"with --symbols --out: then the walk-forward portfolio of RULE (default original) into the run "
        f"folder ({PORTFOLIO_FILES}; docs/portfolio.md)",
    )


def check_portfolio_flag(args) -> None:
    """``--portfolio`` needs ``--symbols`` and ``--out`` (the portfolio reads the run folder; with
    ``--distributed`` process 0 computes it after the final barrier, from the merged folder)."""
    if getattr(args, "portfolio", None) is None:
        return
    if not getattr(args, "symbols", None) or not getattr(args, "out", None):
        raise UsageError("--portfolio needs --symbols and --out (it is computed from the run folder)")


def add_portfolio_commands(sub) -> None:
    """Add ``portfolio`` and ``plan`` to the ``jaxsim`` subcommands."""
    pf = sub.add_parser(
        "portfolio",
        help="the walk-forward portfolio of a finished multi-stock run folder",
        description="Replay a portfolio rule over every day of a run folder's out-of-sample backtests (one cash "
        f"pool) and write {PORTFOLIO_FILES} into it (docs/portfolio.md).",
    )
    pf.add_argument("dir", metavar="RUN_DIR", help="a folder written by jaxsim backtest --symbols ... --out RUN_DIR")
    _rule_flags(pf)
    _forecaster_flag(pf, FORECASTER_NAMES)
    pf.set_defaults(func=cmd_portfolio)

    plan = sub.add_parser(
        "plan",
        help="tomorrow's orders for several symbols",
        description="Backtest the symbols walk-forward and print the portfolio rule's orders for the next trading "
        "day (the replay's decision on that day; docs/portfolio.md#plan). Writes nothing.",
    )
    plan.add_argument("--symbols", metavar="A,B,C", required=True, help="the symbols, read from --data-dir")
    plan.add_argument("--data-dir", metavar="DIR", required=True, help="folder of <SYMBOL>.csv files")
    plan.add_argument("--model", choices=MODELS, default="default", help="forecaster (default: the embedded one)")
    plan.add_argument("--weights", metavar="DIR", help="converted model weight folder (toto, kronos)")
    plan.add_argument("--tokenizer", metavar="DIR", help="converted Kronos tokenizer folder")
    plan.add_argument(
        "--sims", type=int, default=70, metavar="N", help="simulations per stock (default 70, the live loop's)"
    )
    _rule_flags(plan)
    _forecaster_flag(plan, ("model",) + FORECASTER_NAMES)
    plan.set_defaults(func=cmd_plan)


def write_portfolio(run_dir, rule: str, window: int, equity: float, forecaster=None):
    """The portfolio of ``run_dir`` written into it; prints its statistics and plan. Returns it."""
    from jaxsim.portfolio.api import portfolio

    result = portfolio(Path(run_dir), rule, window=window, equity=equity, forecaster=forecaster)
    result.save(run_dir)
    _print(result)
    print(f"portfolio written to {run_dir} ({PORTFOLIO_FILES})")
    return result


def _print(result) -> None:
    stats = result.stats()
    rows = ["Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "CAGR [%]"]
    meta = result.metadata
    print(
        f"Portfolio ({meta['rule']}, window {meta['window']}, forecasted P&L: {meta.get('forecasted_pnl')}) "
        "vs equal-weight buy & hold:"
    )
    print(stats.loc[rows].to_string(float_format=lambda v: f"{v:.4f}"))
    print()
    _print_plan(result)


def _print_plan(result) -> None:
    plan = result.plan
    date = result.metadata["plan_date"]
    if plan.empty:
        print(f"Plan for {date}: no positions (every stock fails the rule)")
        return
    print(f"Plan for {date} (equity {result.metadata['plan_equity']:,.0f}):")
    shown = plan.drop(columns="date")
    if (shown["shares"] == shown["shares"].round()).all():  # whole shares: print them as integers
        shown = shown.assign(shares=shown["shares"].astype(int))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def cmd_portfolio(args) -> int:
    """``jaxsim portfolio RUN_DIR``."""
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"RUN_DIR {folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    if not any((p / "daily.csv").is_file() for p in folder.iterdir() if p.is_dir()):
        raise UsageError(
            f"RUN_DIR {folder} holds no stock folders with daily.csv (a jaxsim backtest --symbols --out run)"
        )
    forecaster = None if args.forecaster is None else make_forecaster(args.forecaster, flag="--forecaster")
    write_portfolio(folder, args.rule, args.window, args.equity, forecaster)
    return 0


def cmd_plan(args) -> int:
    """``jaxsim plan --symbols ... --data-dir DIR``."""
    if args.sims < 1:
        raise UsageError(f"--sims must be >= 1, got {args.sims}")
    args.csv = None
    args.samples = None
    files = check_sources(args)
    check_model_flags(args)
    from jaxsim.data.prices import as_prices, check_history
    from jaxsim.portfolio.api import portfolio
    from jaxsim.shell.api import backtest_many

    forecaster = make_forecaster(args.model, weights=args.weights, tokenizer=args.tokenizer)
    prices = {}
    for symbol, path in files.items():
        prices[symbol] = as_prices(path, symbol=symbol)
        check_history(prices[symbol], args.sims, 1)
    results = backtest_many(prices, forecaster, n_sims=args.sims, protocol="walk_forward", progress=False)
    daily = None  # the forecasted P&L as of every day: the point rule, or a forecaster's
    if args.forecaster == "model":
        daily = forecaster
    elif args.forecaster is not None:
        daily = make_forecaster(args.forecaster, flag="--forecaster")
    result = portfolio(results, args.rule, window=args.window, equity=args.equity, forecaster=daily)
    _print_plan(result)
    sys.stdout.flush()
    return 0
