"""The ``jaxsim`` command line: ``jaxsim data show|samples|clean``, ``jaxsim backtest``, ``jaxsim bench``.

A thin shell: flags map onto library arguments, every ``backtest`` argument is checked before any
data is loaded or anything compiles (:mod:`jaxsim.cli.validate`), library errors
(:class:`~jaxsim.errors.JaxsimError`) become a one-line ``error: ...`` on stderr, Ctrl-C / SIGTERM
stop cleanly (:mod:`jaxsim.cli.signals`), and compiled programs are kept in the user's cache folder
(:mod:`jaxsim.engine.compilation`; ``--cache-dir``, ``--no-cache``).

Exit codes: 0 ok; 1 some stocks failed (the others are written), or ``data show`` found data that
``load_prices`` would reject; 2 bad input (flags, paths, price data, missing backtest engine);
130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import sys
import time
from importlib.resources import as_file
from pathlib import Path

from jaxsim import __version__
from jaxsim.cli.clean import add_clean_command
from jaxsim.cli.feedback import compile_reporter
from jaxsim.cli.hyperparams import read_hyperparams
from jaxsim.cli.models import MODELS, make_forecaster
from jaxsim.cli.output_json import write_output_json
from jaxsim.cli.portfolio_commands import (
    add_portfolio_commands,
    add_portfolio_flag,
    check_portfolio_flag,
    write_portfolio,
)
from jaxsim.cli.report_command import add_report_command
from jaxsim.cli.signals import EXIT_INTERRUPTED, MESSAGE, Interrupted, graceful_interrupts
from jaxsim.cli.stats_commands import add_compare_parser, print_verdict
from jaxsim.cli.validate import (
    EXIT_CODES_HELP,
    RESAMPLE_CHOICES,
    RESAMPLE_HELP,
    check_model_flags,
    sims_arg,
    validate_backtest,
)
from jaxsim.cli.weights import add_commands
from jaxsim.config import ALL_SIMS, DEFAULT_LENGTH_BUCKET, LIKE_ORIGINAL, PROTOCOLS, BacktestConfig
from jaxsim.errors import ConfigError, JaxsimError

# deferred: the function-local imports (jaxsim.data.prices, the engine, the bench, pandas) run when a command
# needs them, so that building the parser (`jaxsim --help`) loads neither pandas nor JAX

__all__ = [
    "MODELS",
    "cmd_data_show",
    "cmd_data_samples",
    "apply_default_settings",
    "backtest_config",
    "run_backtest",
    "seed_spread_text",
    "stock_line",
    "cross_stock_table",
    "build_parser",
    "OneLineParser",
    "cmd_bench",
    "main",
]


def _resolve_source(spec: str):
    """A path when ``spec`` names an existing file, else a bundled sample symbol (case-insensitive)."""
    from jaxsim.data.prices import available_samples

    if Path(spec).exists():
        return Path(spec)
    if spec.upper() in available_samples():
        return None
    raise FileNotFoundError(f"{spec!r} is neither a file nor a bundled sample ({', '.join(available_samples())})")


def cmd_data_show(args) -> int:
    """Print a summary and every problem of one price source; exit 1 when it would be rejected."""
    from jaxsim.data.prices import describe_prices, sample_dir

    path = _resolve_source(args.source)
    if path is None:
        with as_file(sample_dir() / f"{args.source.upper()}.csv.gz") as p:
            s = describe_prices(
                p, symbol=args.source.upper(), adjusted=args.adjusted, clean=args.clean, resample=args.resample
            )
        origin = f"bundled sample {args.source.upper()}"
    else:
        s = describe_prices(path, symbol=args.symbol, adjusted=args.adjusted, clean=args.clean, resample=args.resample)
        origin = str(path)
    out = print
    out(f"symbol:     {s.symbol}")
    out(f"source:     {origin} ({'adjusted' if args.adjusted else 'raw'} prices)")
    out(
        f"rows:       {s.rows}"
        + (f" ({len(s.prices)} daily bars after --resample)" if args.resample and s.prices else "")
    )
    out(f"dates:      {s.first_date} .. {s.last_date}" if s.first_date is not None else "dates:      none readable")
    if s.order != "ascending":
        out(f"order:      {s.order} dates (load_prices sorts them ascending)")
    if s.last_close is not None:
        out(f"last close: {s.last_close:.4f} ({s.last_date})")
    if s.prices is not None:
        p = s.prices
        out(f"columns:    Open, High, Low, Close{', Volume' if p.volume is not None else ''}")
        if p.cleaning is not None:
            out(str(p.cleaning))
    errors = [p for p in s.problems if p.fatal]
    warnings = [p for p in s.problems if not p.fatal]
    if not s.problems:
        out("problems:   none")
    else:
        out(f"problems:   {len(errors)} error(s), {len(warnings)} warning(s)")
        for p in errors:
            out(f"  error: {p}")
        for p in warnings:
            out(f"  warning: {p}")
    if errors and any(p.kind == "intraday_bars" for p in errors):
        out("verdict:    rejected by load_prices: intraday bars (--resample 1D aggregates them to daily bars)")
        return 1
    if errors:
        out(
            "verdict:    rejected by load_prices (--clean shows what cleaning would repair; "
            "`jaxsim data clean IN OUT` writes the cleaned file)"
        )
        return 1
    out("verdict:    ok")
    return 0


def cmd_data_samples(args) -> int:
    """List the bundled sample series with their sizes and date ranges."""
    from jaxsim.data.prices import available_samples, sample

    for sym in available_samples():
        p = sample(sym)
        print(f"{sym:6s} {len(p):6d} rows  {p.dates[0]} .. {p.dates[-1]}  last close {float(p.close[-1]):.2f}")
    return 0


def _make_forecaster(args, hyper=None):
    """The forecaster of ``--model`` (or of ``best/<SYMBOL>.json`` with ``--hyperparams``).

    ``--samples`` is its draws per context (Toto) or averaged sample paths (Kronos' ``sample_count``);
    with ``--hyperparams`` the symbol's files supply them (Toto: num_samples; Kronos: temperature,
    top_p, top_k, sample_count, max_context, clip) unless ``--samples`` is given.
    """
    name = _model_of(args, hyper)
    samples = args.samples
    if hyper is not None and samples is None and name in ("default", "toto"):
        samples = hyper.toto["num_samples"]
    kronos_options = hyper.kronos_options() if hyper is not None and name == "kronos" else None
    return make_forecaster(
        name, weights=args.weights, tokenizer=args.tokenizer, samples=samples, kronos_options=kronos_options
    )


def _model_of(args, hyper) -> str:
    """``--model``; with ``--hyperparams`` and no explicit model, the one ``best/`` picks (its Toto is
    ``--weights`` when given, else the embedded Toto-architecture default)."""
    if hyper is None or args.model != "default":
        return args.model
    if hyper.model == "kronos":
        return "kronos"
    return "toto" if args.weights else "default"


def apply_default_settings(args) -> None:
    """Fill ``--sims`` and ``--protocol`` when not given: the full history, walk-forward (the defaults of
    :class:`~jaxsim.config.BacktestConfig`), or the original's 50 simulations, legacy
    (:data:`~jaxsim.config.LIKE_ORIGINAL`) with ``--like-original``, ``--hyperparams`` or ``--output-json``
    (whose users compare with the original's numbers). Explicit flags win."""
    like = bool(getattr(args, "like_original", False) or getattr(args, "hyperparams", None))
    like = like or bool(getattr(args, "output_json", None))
    defaults = LIKE_ORIGINAL if like else {"n_sims": ALL_SIMS, "protocol": "walk_forward"}
    if getattr(args, "sims", None) is None:
        args.sims = defaults["n_sims"]
    if getattr(args, "protocol", None) is None:
        args.protocol = defaults["protocol"]


def backtest_config(args, hyper=None) -> BacktestConfig:
    """The :class:`~jaxsim.config.BacktestConfig` of the ``backtest`` flags (the seed is ``--seed``).

    With ``--hyperparams`` a Toto-family model takes the symbol's ``aggregate``.
    """
    bucket = getattr(args, "length_bucket", DEFAULT_LENGTH_BUCKET)
    apply_default_settings(args)
    config = BacktestConfig(
        n_sims=args.sims,
        protocol=args.protocol,
        n_seeds=getattr(args, "seeds", 1),
        max_context=getattr(args, "max_context", None),
        seed=args.seed,
        length_bucket=None if bucket == 0 else bucket,
    )
    if hyper is not None and _model_of(args, hyper) in ("default", "toto"):
        config = config.replace(aggregate=hyper.toto["aggregate"])
    return config


def _warn(lines) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


def _hyper(args, symbol):
    """The symbol's :class:`~jaxsim.cli.hyperparams.HyperParams` (None without ``--hyperparams``)."""
    if getattr(args, "hyperparams", None) is None:
        return None

    hyper = read_hyperparams(args.hyperparams, symbol)
    check_model_flags(args, model=_model_of(args, hyper))
    print(f"hyperparams: {hyper.describe()}", file=sys.stderr)
    return hyper


def _print_cleaning(prices) -> None:
    report = prices.cleaning
    print(
        f"{prices.symbol}: " + (str(report) if report is not None else f"cleaning: no changes ({len(prices)} rows)"),
        file=sys.stderr,
    )


def _caching(args):
    """The compilation caches (on by default in the user's cache folder) and the elapsed-time line
    while a program compiles, for the duration of the command."""
    from jaxsim.engine.compilation import CacheSettings, caching

    settings = CacheSettings(getattr(args, "cache_dir", None), not getattr(args, "no_cache", False))
    return caching(settings, compile_reporter())


def _process_zero(args) -> bool:
    """Whether this process writes the run-wide files (always, unless a ``--distributed`` peer)."""
    if getattr(args, "distributed_config", None) is None:
        return True
    import jax

    return jax.process_index() == 0


def _start_distributed(args):
    """``--distributed``: join the multi-process run (:mod:`jaxsim.shell.distributed`), else None."""
    given = {k: getattr(args, k, None) for k in ("coordinator", "num_processes", "process_id")}
    if not getattr(args, "distributed", False):
        if any(v is not None for v in given.values()):
            raise JaxsimError("--coordinator/--num-processes/--process-id need --distributed")
        return None
    if not (args.symbols and args.out):
        raise JaxsimError("--distributed needs --symbols and --out (a resumable run folder shared by the processes)")
    from jaxsim.shell.distributed import DistributedConfig, initialize

    config = DistributedConfig.from_env(**given)
    initialize(config)
    return config


def run_backtest(args) -> int:
    """Backtest the selected series, print each summary table, optionally save the results.

    Every argument is checked first (:func:`jaxsim.cli.validate.validate_backtest`), then one series
    runs :func:`jaxsim.shell.api.backtest`; several (``--symbols``) run
    :func:`jaxsim.shell.api.backtest_many`, or with ``--out`` the resumable
    :func:`jaxsim.shell.runs.run_many`. Stock s always uses the key ``stock_key(key(seed), s)``,
    whichever of them runs it. For one stock it prints the original's "Backtest summary for SYM (N
    simulations)" table, row 0's ``MaxDiff`` lines and the best strategy; ``--out DIR`` writes
    records.csv, summary.csv, metadata.json, the tables, report.html and equity.png (docs/output.md);
    ``--output-json PATH`` the original's JSON
    summary (docs/cli-json.md). Several stocks print one line each as they finish, then a
    cross-stock table.
    """
    from jaxsim.data.prices import available_samples

    apply_default_settings(args)
    files = validate_backtest(args, available_samples=available_samples())
    check_portfolio_flag(args)
    try:
        from jaxsim import forecasters  # noqa: F401  (the engine and its forecasters are importable)
        from jaxsim.shell.api import backtest  # noqa: F401
    except ImportError as e:
        print(f"error: the backtest engine is not available in this installation ({e})", file=sys.stderr)
        return 2
    args.distributed_config = _start_distributed(args)  # before any JAX computation
    with _caching(args), graceful_interrupts() as stop:
        if files is not None:
            code = _run_symbols(args, files, stop)
            # from the run folder: every finished stock, this run's and earlier ones'; in a distributed run
            # process 0, whose run returns after the final barrier and the merge (jaxsim.shell.runs)
            if args.portfolio and code != EXIT_INTERRUPTED and _process_zero(args):
                write_portfolio(args.out, args.portfolio, window=70, equity=100_000.0)
            return code
        return _run_one(args, stop)


def _run_one(args, stop) -> int:
    import jax

    from jaxsim.data.prices import as_prices, check_history
    from jaxsim.report.checks import setup_warnings
    from jaxsim.shell.api import backtest

    prices = as_prices(
        args.csv if args.csv else args.symbol.upper(), adjusted=args.adjusted, clean=args.clean, resample=args.resample
    )
    if args.clean:
        _print_cleaning(prices)
    hyper = _hyper(args, prices.symbol)
    forecaster = _make_forecaster(args, hyper)
    config = backtest_config(args, hyper)
    n_sims = config.sims_for(len(prices))
    check_history(prices, n_sims, config.min_context if args.sims == "all" else 1)
    _warn(
        setup_warnings(
            len(prices), n_sims, protocol=args.protocol, max_context=config.max_context, symbol=prices.symbol
        )
    )
    stop.check()
    result = backtest(prices, forecaster, config, symbol=prices.symbol)
    stop.check()
    print(result.summary_text(units=not args.like_original))  # --like-original: the original's fractions
    print_verdict(result, seed=args.seed)
    if len(result.seeds) > 1:
        print(seed_spread_text(result))
        print(result.seed_verdict(jax.random.key(args.seed)))
    print()
    if args.out:
        result.save(args.out, prices=prices)  # with the prices: the report's MaxDiff heatmap and fill prices
        print(f"saved to {args.out} (open {Path(args.out) / 'report.html'})")
    if args.output_json:
        write_output_json(args.output_json, result, label=args.output_label)
        print(f"JSON summary written to {args.output_json}")
    return 0


def seed_spread_text(result) -> str:
    """Each strategy's Return [%] and Sharpe Ratio as mean [min, max] over the forecast seeds."""
    spread = result.seed_spread()
    rows = []
    for name in result.summary.index:
        cells = []
        for stat in ("Return [%]", "Sharpe Ratio"):
            if (name, stat) in spread.index:
                r = spread.loc[(name, stat)]
                cells.append(f"{stat} {r['mean']:+.2f} [{r['min']:+.2f}, {r['max']:+.2f}]")
        rows.append(f"  {name:18s} " + "   ".join(cells))
    n = len(result.seeds)
    return "\n".join([f"Over {n} forecast seeds (mean [min, max]; seed_spread.csv with --out):", *rows])


def stock_line(symbol: str, result, seconds: float | None = None) -> str:
    """One stock's cross-stock line: best strategy and the mean Return of each strategy."""
    s = result.summary
    rets = "  ".join(f"{name} {100 * s.loc[name, 'Return']:+.2f}%" for name in s.index)
    took = f"  ({seconds:.1f} s)" if seconds is not None else ""
    best = 100 * s.loc[result.best_strategy, "Return"]
    return f"{symbol}: best {result.best_strategy} ({best:+.2f}%)  |  mean six-day Return: {rets}{took}"


def cross_stock_table(results) -> str:
    """Mean Return per strategy (columns) for each stock (rows), plus its best strategy.

    ``results``: symbol -> a :class:`~jaxsim.report.result.BacktestResult`, or a ``(summary frame,
    best strategy)`` pair read back from a stock folder (:func:`_saved_summary`)."""
    import pandas as pd

    def row(r):
        summary, best = (r.summary, r.best_strategy) if hasattr(r, "summary") else r
        return {**summary["Return"].to_dict(), "best": best}

    rows = {sym: row(r) for sym, r in results.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "Symbol"
    return "Mean six-day Return [%] per strategy\n" + frame.to_string(float_format=lambda v: f"{100 * v:.2f}")


def _saved_summary(folder: Path):
    """``(summary frame, best strategy)`` of a finished stock folder of a run, or None when unreadable."""
    import pandas as pd

    try:
        summary = pd.read_csv(folder / "summary.csv", index_col=0)
        best = json.loads((folder / "metadata.json").read_text())["best_strategy"]
    except (OSError, ValueError, KeyError):
        return None
    return (summary, best) if "Return" in summary.columns else None


def _run_symbols(args, files, stop) -> int:
    """``--symbols``: one line per stock as it finishes, then the cross-stock table.

    With ``--out`` a resumable chunked run (:func:`jaxsim.shell.runs.run_many`): each stock is
    written to ``OUT/<SYMBOL>/`` once complete and re-running the same command skips the finished
    stocks. Exit code 1 when any stock failed (each failure is listed).
    """
    symbols = list(files)
    hypers = {s: _hyper(args, s) for s in symbols} if getattr(args, "hyperparams", None) else {}
    settings = {
        s: (_model_of(args, h), h.toto if _model_of(args, h) != "kronos" else h.kronos) for s, h in hypers.items()
    }
    if len({repr(v) for v in settings.values()}) > 1:
        raise ConfigError(
            "--hyperparams gives these symbols different settings ("
            + "; ".join(f"{s}: {m} {v}" for s, (m, v) in settings.items())
            + "); run each setting separately"
        )
    hyper = next(iter(hypers.values()), None)
    forecaster = _make_forecaster(args, hyper)
    config = backtest_config(args, hyper)
    results, t0 = {}, [time.monotonic()]

    def finished(symbol, result):
        print(stock_line(symbol, result, time.monotonic() - t0[0]), flush=True)
        t0[0] = time.monotonic()
        if args.output_json:
            write_output_json(str(args.output_json).replace("{symbol}", symbol), result)
        results[symbol] = result

    def plan(groups):
        n = sum(len(m) for m in groups.values())
        if n == 0:
            return
        rows = sorted({g[0] for g in groups})
        print(
            f"{n} stock(s) in {len(groups)} program shape(s) (rows {', '.join(map(str, rows))}): "
            f"{len(groups)} backtest program(s) to compile (fewer when cached)",
            file=sys.stderr,
            flush=True,
        )

    if args.out:
        from jaxsim.shell.runs import run_many

        report = run_many(
            files,
            args.out,
            forecaster=forecaster,
            config=config,
            chunk_size=args.chunk_size,
            adjusted=args.adjusted,
            clean=args.clean,
            resample=args.resample,
            plots=args.plots,
            progress=False,
            on_result=finished,
            on_plan=plan,
            should_stop=stop,
            distributed=getattr(args, "distributed_config", None),
        )
        for sym, error in report.failed.items():
            print(f"{sym}: FAILED: {error}", file=sys.stderr)
        # a resumed run's table holds every finished stock, read back from its folder, as stocks.csv does
        saved = {s: _saved_summary(Path(args.out) / s) for s in report.skipped}
        table = {s: results.get(s, saved.get(s)) for s in files if results.get(s, saved.get(s)) is not None}
        if table:
            print()
            print(cross_stock_table(table))
        print(
            f"{len(report.done)} written, {len(report.skipped)} already complete, {len(report.failed)} failed "
            f"(manifest: {Path(args.out) / 'manifest.json'}; report: {Path(args.out) / 'index.html'})"
        )
        stop.check()
        return 1 if report.failed else 0
    from jaxsim.data.prices import as_prices, check_history
    from jaxsim.report.checks import setup_warnings
    from jaxsim.shell.api import backtest_many

    series = []
    for sym, path in files.items():
        prices = as_prices(path, symbol=sym, adjusted=args.adjusted, clean=args.clean, resample=args.resample)
        if args.clean:
            _print_cleaning(prices)
        n_sims = config.sims_for(len(prices))
        check_history(prices, n_sims, config.min_context if args.sims == "all" else 1)
        _warn(setup_warnings(len(prices), n_sims, protocol=args.protocol, max_context=config.max_context, symbol=sym))
        series.append(prices)
    backtest_many(  # a group smaller than --chunk-size runs as one batch, not padded to K
        series,
        forecaster,
        config,
        chunk_size=args.chunk_size,
        progress=False,
        on_result=finished,
        on_plan=plan,
        should_stop=stop,
    )
    stop.check()
    print()
    print(cross_stock_table(results))
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, without the usage block: a mistyped flag or command names the
    closest valid one (``jaxsim backtest: error: unrecognized argument --simz (did you mean --sims?)``).

    Exit code 2, as argparse's own errors.
    """

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)  # for error(): which command ran
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        parser = _command_parser(self, getattr(self, "_argv", []))
        self.exit(2, f"{parser.prog}: error: {_with_suggestions(message, parser)} (see {parser.prog} --help)\n")


def _subcommands(parser: argparse.ArgumentParser) -> dict:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices if actions else {}


def _command_parser(parser: argparse.ArgumentParser, argv) -> argparse.ArgumentParser:
    """The (sub)parser of the command ``argv`` names, e.g. ``jaxsim backtest``'s for ``backtest --simz 3``."""
    for token in argv:
        sub = _subcommands(parser).get(token)
        if sub is not None:
            parser = sub
    return parser


def _with_suggestions(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with the closest valid flag after each unknown one, and the closest choice after an
    invalid choice."""
    if message.startswith("unrecognized arguments: "):
        flags = [o for a in parser._actions for o in a.option_strings]
        parts = []
        for token in message[len("unrecognized arguments: ") :].split():
            close = difflib.get_close_matches(token.split("=")[0], flags, n=1) if token.startswith("-") else []
            parts.append(f"{token} (did you mean {close[0]}?)" if close else token)
        return f"unrecognized argument{'s' if len(parts) > 1 else ''} " + ", ".join(parts)
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        close = difflib.get_close_matches(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)), n=1)
        if close:
            return f"{message}; did you mean {close[0]}?"
    return message


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``jaxsim`` command (:class:`OneLineParser`; its subcommands inherit it)."""
    parser = OneLineParser(prog="jaxsim", description="JAX walk-forward stock backtester.", epilog=EXIT_CODES_HELP)
    parser.add_argument("--version", action="version", version=f"jaxsim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO) to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect price data").add_subparsers(dest="data_command", required=True)
    show = data.add_parser("show", help="summary and problems of a price file or bundled sample")
    show.add_argument("source", metavar="PATH_OR_SAMPLE", help="a .csv/.csv.gz/.parquet file or a sample symbol")
    show.add_argument("--adjusted", action="store_true", help="use split/dividend-adjusted prices")
    show.add_argument("--clean", action="store_true", help="show the data after load_prices(clean=True)")
    show.add_argument("--resample", type=str.upper, choices=RESAMPLE_CHOICES, help=RESAMPLE_HELP)
    show.add_argument("--symbol", help="symbol name (default: the file stem)")
    show.set_defaults(func=cmd_data_show)
    samples = data.add_parser("samples", help="list the bundled sample series")
    samples.set_defaults(func=cmd_data_samples)

    add_clean_command(data)

    bt = sub.add_parser(
        "backtest",
        help="walk-forward backtest of one or more symbols",
        epilog=EXIT_CODES_HELP,
        description="Walk-forward backtest of a bundled sample, a price file, or several symbols "
        "from a folder. Every argument is checked before anything is computed.",
    )
    bt.add_argument("symbol", nargs="?", default="AAPL", metavar="SYMBOL", help="bundled sample (default AAPL)")
    src = bt.add_mutually_exclusive_group()
    src.add_argument("--csv", metavar="PATH", help="price file instead of a bundled sample")
    src.add_argument("--symbols", metavar="A,B,C", help="several symbols read from --data-dir")
    bt.add_argument("--data-dir", metavar="DIR", help="folder of <SYMBOL>.csv files for --symbols")
    bt.add_argument("--adjusted", action="store_true", help="use split/dividend-adjusted prices")
    bt.add_argument("--resample", type=str.upper, choices=RESAMPLE_CHOICES, help=RESAMPLE_HELP)
    bt.add_argument("--model", choices=MODELS, default="default", help="forecaster (default: the embedded one)")
    bt.add_argument("--weights", metavar="DIR", help="converted model weight folder (toto, kronos)")
    bt.add_argument("--tokenizer", metavar="DIR", help="converted Kronos tokenizer folder")
    bt.add_argument(
        "--sims",
        type=sims_arg,
        metavar="N",
        help="number of simulations, or 'all' (the default): every origin with at least 64 context "
        "returns, the full history (--like-original: 50)",
    )
    bt.add_argument(
        "--samples",
        type=int,
        metavar="S",
        help="forecast samples per context (Toto draws; Kronos "
        "sample paths averaged; default: the model's own, 3072 for Toto)",
    )
    bt.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="walk_forward (the default: MaxDiff fitted on earlier days only) or legacy (the original's "
        "in-sample fit; --like-original)",
    )
    bt.add_argument(
        "--like-original",
        action="store_true",
        help="the original's settings: --protocol legacy --sims 50 (its summary table, number for number; "
        "also the default with --hyperparams or --output-json); explicit flags still win",
    )
    bt.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="K",
        help="forecast seeds --seed .. --seed+K-1 in one compiled program (default 1); prints the spread of "
        "each strategy's statistics over the seeds, and the verdict holds only if it holds for every seed",
    )
    bt.add_argument(
        "--out",
        metavar="DIR",
        help="write results to DIR (with --symbols: a resumable run, "
        "one folder per symbol; re-running skips finished symbols)",
    )
    bt.add_argument(
        "--max-context",
        type=int,
        metavar="C",
        help="cap the forecast context at C returns (default: the whole history, as the original)",
    )
    bt.add_argument(
        "--length-bucket",
        type=int,
        default=DEFAULT_LENGTH_BUCKET,
        metavar="B",
        help=f"run each stock on a program of a multiple of B rows, so stocks of different lengths share "
        f"one compile; results equal the exact-length run to float rounding (default {DEFAULT_LENGTH_BUCKET}; "
        "0: exact lengths)",
    )
    bt.add_argument(
        "--chunk-size",
        type=int,
        default=64,
        metavar="K",
        help="stocks per compiled batch with --symbols (default 64; 1: the single-stock programs, shared with "
        "`jaxsim backtest SYMBOL` runs, about 13%% slower on a CPU)",
    )
    bt.add_argument(
        "--seed",
        type=int,
        default=0,
        help="PRNG seed (default 0); stock S uses fold_in(key(seed), crc32(S)) whichever way it is run",
    )
    bt.add_argument(
        "--clean",
        action="store_true",
        help="clean the prices in memory first (as `jaxsim data clean`) and print what changed",
    )
    bt.add_argument("--force", action="store_true", help="allow --out to replace another symbol's results")
    bt.add_argument("--plots", action="store_true", help="with --symbols --out: also write equity.png per stock")
    bt.add_argument(
        "--hyperparams",
        metavar="DIR",
        help="the original's hyperparams folder: best/<SYM>.json picks "
        "toto or kronos, kronos/<SYM>.json and toto/<SYM>.json supply their settings",
    )
    bt.add_argument(
        "--output-json",
        metavar="PATH",
        help="write the original's JSON summary (docs/cli-json.md); with --symbols PATH must contain {symbol}",
    )
    bt.add_argument("--output-label", metavar="L", help="write L instead of the symbol in --output-json")
    bt.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="keep compiled programs in DIR (default $XDG_CACHE_HOME/jaxsim/xla or ~/.cache/jaxsim/xla)",
    )
    bt.add_argument("--no-cache", action="store_true", help="do not read or write compiled programs on disk")
    dist = bt.add_argument_group("across processes (jax.distributed; see README 'Across machines')")
    dist.add_argument(
        "--distributed",
        action="store_true",
        help="one of several processes sharing the --symbols "
        "run in --out (same command on every host; flags default to JAX_COORDINATOR_ADDRESS, "
        "JAX_NUM_PROCESSES, JAX_PROCESS_ID, else jax's SLURM/MPI detection)",
    )
    dist.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address and a free port")
    dist.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    dist.add_argument("--process-id", type=int, metavar="I", help="this process's id, 0..N-1")
    add_portfolio_flag(bt)
    bt.set_defaults(func=run_backtest)
    add_compare_parser(sub)
    add_report_command(sub)
    add_portfolio_commands(sub)

    bench = sub.add_parser("bench", help="benchmarks that need only the package (tables + PNG plots)")
    bench.add_argument(
        "suite",
        nargs="?",
        default="all",
        choices=("e2e", "scaling", "optimizer", "full_history", "compile", "all"),
        help="e2e: jaxsim side of the end-to-end settings; scaling: time/memory sweeps; "
        "optimizer: jitted MaxDiff optimisers; full_history: prefix-shared vs per-context Toto at "
        "N = 50, 500, all; compile: first-call trace/lower/XLA/run, HLO ops by program part, "
        "command line and universe with a cold and warm cache, fresh processes (default: all)",
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run of a few minutes)")
    bench.add_argument("--out", metavar="DIR", default="bench-results", help="output folder (default bench-results)")
    bench.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16: bf16 weights and bf16 matmul precision (meant for GPUs)",
    )
    bench.add_argument(
        "--tree",
        action="append",
        metavar="PATH",
        help="compile: a jaxsim checkout to measure (repeat to compare trees side by side, e.g. a worktree "
        "of the base commit and this one; default: this checkout)",
    )
    bench.add_argument(
        "--data-dir",
        metavar="DIR",
        help="compile: folder of <SYMBOL>.csv daily files for the universe scenario "
        "(default ../shared/data/daily beside the checkout; skipped when absent)",
    )
    bench.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="K",
        help="compile: measure each scenario K times, trees alternating (default 1)",
    )
    bench.set_defaults(func=cmd_bench)
    _add_weight_commands(sub)
    return parser


def _add_weight_commands(sub) -> None:
    """``jaxsim weights ...`` and ``jaxsim train`` (implemented in :mod:`jaxsim.cli.weights`)."""
    add_commands(sub)


def cmd_bench(args) -> int:
    """``jaxsim bench``: run package-only benchmark suites, print their markdown, write files to --out.

    The comparison against the PyTorch reference needs its own environment: ``benchmarks/bench_e2e.py``.
    """
    from jaxsim.bench import suites as bench_suites

    suites = bench_suites.SUITES if args.suite == "all" else (args.suite,)
    for name in suites:
        result = bench_suites.run_suite(
            name,
            args.out,
            quick=args.quick,
            dtype=args.dtype,
            trees=args.tree,
            data_dir=args.data_dir,
            rounds=args.rounds,
        )
        print(result["markdown"])
    print(f"written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxsim`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr
    )

    try:
        return args.func(args)
    except (Interrupted, KeyboardInterrupt):
        print(MESSAGE, file=sys.stderr)
        return EXIT_INTERRUPTED
    except (JaxsimError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
