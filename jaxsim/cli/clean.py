"""``jaxsim data clean IN OUT``: repair a price file and write the result, with the report.

Cleaning is :func:`jaxsim.data.prices.load_prices` with ``clean=True`` (drop unreadable rows and
duplicate dates, swap High/Low where inverted, widen High/Low to contain Open/Close); the report
lists every change with its rows. Intraday bars (several per date) are never cut to one per date:
without ``--resample 1D`` the command refuses them (exit 2), with it they are cleaned as bars and
aggregated to daily bars. The output is written atomically and never over the input's
folder entry unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxsim.cli.validate import RESAMPLE_CHOICES, RESAMPLE_HELP
from jaxsim.errors import ConfigError

__all__ = ["add_clean_command", "cmd_data_clean"]


def add_clean_command(data_sub) -> argparse.ArgumentParser:
    """Add ``clean`` to the ``jaxsim data`` subcommands."""
    clean = data_sub.add_parser(
        "clean",
        help="repair a price file and write the cleaned copy",
        description="Repair what load_prices(clean=True) can repair and write the result "
        "as CSV; prints every change. Exit 0 when written, 2 on bad input.",
    )
    clean.add_argument("source", metavar="IN", help="a .csv/.csv.gz/.parquet file or a bundled sample")
    clean.add_argument("dest", metavar="OUT", help="the cleaned CSV to write (.csv, or .csv.gz compressed)")
    clean.add_argument("--adjusted", action="store_true", help="write split/dividend-adjusted prices")
    clean.add_argument("--resample", type=str.upper, choices=RESAMPLE_CHOICES, help=RESAMPLE_HELP)
    clean.add_argument("--symbol", help="symbol name (default: the file stem)")
    clean.add_argument("--force", action="store_true", help="replace OUT when it exists")
    clean.set_defaults(func=cmd_data_clean)
    return clean


def cmd_data_clean(args) -> int:
    """Load ``IN`` with cleaning, print the report, write ``OUT``; returns the exit code."""
    # deferred: pandas and numpy; the parser imports this module
    from jaxsim.data.prices import as_prices
    from jaxsim.data.writing import save_prices

    dest = Path(args.dest)
    if dest.is_dir():
        raise ConfigError(f"OUT {dest} is a folder; give a file name, e.g. {dest / 'cleaned.csv'}")
    if not dest.parent.is_dir():
        raise ConfigError(f"OUT {dest}: the folder {dest.parent} does not exist")
    if dest.exists() and not args.force:
        raise ConfigError(f"OUT {dest} exists; use --force to replace it")
    if not dest.name.lower().endswith((".csv", ".csv.gz")):
        raise ConfigError(f"OUT {dest}: the cleaned file is CSV; name it .csv or .csv.gz")
    prices = as_prices(args.source, symbol=args.symbol, adjusted=args.adjusted, clean=True, resample=args.resample)
    report = prices.cleaning
    print(str(report) if report is not None else f"cleaning: no changes ({len(prices)} rows)")
    if args.resample:
        print(f"resampled to {len(prices)} daily bars (open first, high max, low min, close last, volume sum)")
    save_prices(prices, dest)
    print(f"wrote {len(prices)} rows ({prices.dates[0]} .. {prices.dates[-1]}) to {dest}")
    return 0
