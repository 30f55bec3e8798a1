"""The ``jaxsim`` command line: ``jaxsim data show``, ``jaxsim data samples``, ``jaxsim backtest``,
``jaxsim bench``.

A thin shell: flags map onto library arguments, library errors (:class:`~jaxsim.errors.JaxsimError`)
become a one-line ``error: ...`` on stderr with exit code 2, and no logic lives here.

Exit codes: 0 success; 1 ``data show`` found data that ``load_prices`` would reject; 2 usage or
library error (bad flags, unreadable or invalid data, missing backtest engine).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from jaxsim import __version__
from jaxsim.config import PROTOCOLS, BacktestConfig
from jaxsim.errors import JaxsimError

__all__ = ["MODELS", "cmd_data_show", "cmd_data_samples", "backtest_config", "run_backtest", "build_parser",
           "cmd_bench", "main"]

MODELS = ("default", "naive", "historical-mean", "toto", "kronos")


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
    from importlib.resources import as_file

    path = _resolve_source(args.source)
    if path is None:
        with as_file(sample_dir() / f"{args.source.upper()}.csv.gz") as p:
            s = describe_prices(p, symbol=args.source.upper(), adjusted=args.adjusted, clean=args.clean)
        origin = f"bundled sample {args.source.upper()}"
    else:
        s = describe_prices(path, symbol=args.symbol, adjusted=args.adjusted, clean=args.clean)
        origin = str(path)
    out = print
    out(f"symbol:     {s.symbol}")
    out(f"source:     {origin} ({'adjusted' if args.adjusted else 'raw'} prices)")
    out(f"rows:       {s.rows}")
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
    if errors:
        out("verdict:    rejected by load_prices (use --clean to see what cleaning would repair)")
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


def _load_series(args) -> list:
    """The price series a backtest runs on: ``--csv``, ``--symbols`` + ``--data-dir``, or a sample."""
    from jaxsim.data.prices import load_prices, sample

    if args.csv:
        return [load_prices(args.csv, adjusted=args.adjusted)]
    if args.symbols:
        data_dir = Path(args.data_dir or ".")
        series = []
        for sym in [s.strip() for s in args.symbols.split(",") if s.strip()]:
            candidates = [data_dir / f"{name}{ext}" for name in dict.fromkeys((sym, sym.upper(), sym.lower()))
                          for ext in (".csv", ".csv.gz", ".parquet")]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise FileNotFoundError(f"no price file for {sym} in {data_dir} (looked for {sym}.csv/.csv.gz/.parquet)")
            series.append(load_prices(found, symbol=sym.upper(), adjusted=args.adjusted))
        return series
    return [sample(args.symbol, adjusted=args.adjusted)]


def _make_forecaster(forecasters, args):
    """The forecaster of ``--model``; ``--samples`` is its draws per context (Toto) or averaged
    sample paths (Kronos' ``sample_count``)."""
    name = args.model
    samples = {} if args.samples is None else {"num_samples": args.samples}
    if name in ("naive", "historical-mean") and args.samples is not None:
        raise JaxsimError(f"--samples does not apply to --model {name} (a point forecaster)")
    if name == "default":
        return forecasters.default(**samples)  # the embedded model trained by jaxsim (weights/jaxsim-toto-tiny)
    if name == "naive":
        return forecasters.naive()
    if name == "historical-mean":
        return forecasters.historical_mean()
    if name == "toto":
        if not args.weights:
            raise JaxsimError("--model toto needs --weights DIR (a converted Toto weight folder)")
        return forecasters.toto(args.weights, **samples)
    if not (args.weights and args.tokenizer):
        raise JaxsimError("--model kronos needs --weights DIR and --tokenizer DIR")
    options = {} if args.samples is None else {"sample_count": args.samples}
    return forecasters.kronos(args.weights, args.tokenizer, **options)


def backtest_config(args) -> BacktestConfig:
    """The :class:`~jaxsim.config.BacktestConfig` of the ``backtest`` flags (the seed is ``--seed``)."""
    return BacktestConfig(n_sims=args.sims, protocol=args.protocol, max_context=getattr(args, "max_context", None),
                          seed=args.seed)


def run_backtest(args) -> int:
    """Backtest the selected series, print each summary table, optionally save the results.

    One series runs :func:`jaxsim.engine.api.backtest`; several (``--symbols``) run one multi-stock
    call, :func:`jaxsim.engine.api.backtest_many` (stock i uses ``fold_in(key(seed), i)``). For each
    stock it prints the original's "Backtest summary for SYM (N simulations)" table (Strategy,
    Return, Sharpe, AnnualRet, ForecastRet, FinalDay), row 0's ``MaxDiff: baseline=... optimized=...`` and
    ``MaxDiffAlwaysOn`` lines and the best strategy; ``--out DIR`` writes records.csv, summary.csv,
    metadata.json and equity.png (in DIR/SYMBOL for several stocks). ``--symbols`` with ``--out`` is
    a resumable chunked run instead (:func:`_run_symbols`, :func:`jaxsim.engine.runs.run_many`).
    """
    try:
        from jaxsim import forecasters
        from jaxsim.engine.api import backtest, backtest_many
    except ImportError as e:
        print(f"error: the backtest engine is not available in this installation ({e})", file=sys.stderr)
        return 2
    from jaxsim.data.prices import check_history

    distributed = _start_distributed(args)  # before any JAX computation (the forecaster's weights)
    forecaster = _make_forecaster(forecasters, args)
    config = backtest_config(args)
    if args.symbols and args.out:
        return _run_symbols(args, forecaster, config, distributed)
    series = _load_series(args)
    for prices in series:
        check_history(prices, args.sims)
    if len(series) == 1:
        results = {series[0].symbol: backtest(series[0], forecaster, config, symbol=series[0].symbol)}
    else:
        results = backtest_many(series, forecaster, config)
    for symbol, result in results.items():
        print(result.summary_text())
        print()
        if args.out:
            out = Path(args.out) if len(results) == 1 else Path(args.out) / symbol
            result.save(out)
            print(f"saved to {out}")
    return 0


def _start_distributed(args):
    """``--distributed``: join the multi-process run (:mod:`jaxsim.engine.distributed`), else None."""
    given = {k: getattr(args, k, None) for k in ("coordinator", "num_processes", "process_id")}
    if not getattr(args, "distributed", False):
        if any(v is not None for v in given.values()):
            raise JaxsimError("--coordinator/--num-processes/--process-id need --distributed")
        return None
    if not (args.symbols and args.out):
        raise JaxsimError("--distributed needs --symbols and --out (a resumable run folder shared by the processes)")
    from jaxsim.engine.distributed import DistributedConfig, initialize

    config = DistributedConfig.from_env(**given)
    initialize(config)
    return config


def _run_symbols(args, forecaster, config, distributed=None) -> int:
    """``--symbols`` with ``--out``: a resumable chunked run (:func:`jaxsim.engine.runs.run_many`).

    Each stock is written to ``OUT/<SYMBOL>/`` once complete; re-running the same command skips the
    finished stocks. Exit code 1 when any stock failed (each failure is listed).
    """
    from jaxsim.engine.runs import run_many

    data_dir = Path(args.data_dir or ".")
    sources = {}
    for sym in dict.fromkeys(s.strip() for s in args.symbols.split(",") if s.strip()):
        candidates = [data_dir / f"{name}{ext}" for name in dict.fromkeys((sym, sym.upper(), sym.lower()))
                      for ext in (".csv", ".csv.gz", ".parquet")]
        sources[sym.upper()] = next((c for c in candidates if c.is_file()), candidates[0])
    report = run_many(sources, args.out, forecaster=forecaster, config=config, chunk_size=args.chunk_size,
                      adjusted=args.adjusted, progress=True, distributed=distributed)
    for sym in report.done:
        print(f"{sym}: written to {Path(args.out) / sym}")
    for sym, error in report.failed.items():
        print(f"{sym}: FAILED: {error}", file=sys.stderr)
    print(f"{len(report.done)} written, {len(report.skipped)} already complete, {len(report.failed)} failed "
          f"(manifest: {Path(args.out) / 'manifest.json'})")
    return 1 if report.failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``jaxsim`` command."""
    parser = argparse.ArgumentParser(prog="jaxsim", description="JAX walk-forward stock backtester.")
    parser.add_argument("--version", action="version", version=f"jaxsim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO) to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect price data").add_subparsers(dest="data_command", required=True)
    show = data.add_parser("show", help="summary and problems of a price file or bundled sample")
    show.add_argument("source", metavar="PATH_OR_SAMPLE", help="a .csv/.csv.gz/.parquet file or a sample symbol")
    show.add_argument("--adjusted", action="store_true", help="use split/dividend-adjusted prices")
    show.add_argument("--clean", action="store_true", help="show the data after load_prices(clean=True)")
    show.add_argument("--symbol", help="symbol name (default: the file stem)")
    show.set_defaults(func=cmd_data_show)
    samples = data.add_parser("samples", help="list the bundled sample series")
    samples.set_defaults(func=cmd_data_samples)

    bt = sub.add_parser("backtest", help="walk-forward backtest of one or more symbols")
    bt.add_argument("symbol", nargs="?", default="AAPL", metavar="SYMBOL", help="bundled sample (default AAPL)")
    src = bt.add_mutually_exclusive_group()
    src.add_argument("--csv", metavar="PATH", help="price file instead of a bundled sample")
    src.add_argument("--symbols", metavar="A,B,C", help="several symbols read from --data-dir")
    bt.add_argument("--data-dir", metavar="DIR", help="folder of <SYMBOL>.csv files for --symbols")
    bt.add_argument("--adjusted", action="store_true", help="use split/dividend-adjusted prices")
    bt.add_argument("--model", choices=MODELS, default="default", help="forecaster (default: the embedded one)")
    bt.add_argument("--weights", metavar="DIR", help="converted model weight folder (toto, kronos)")
    bt.add_argument("--tokenizer", metavar="DIR", help="converted Kronos tokenizer folder")
    bt.add_argument("--sims", type=int, default=50, metavar="N", help="number of simulations (default 50)")
    bt.add_argument("--samples", type=int, metavar="S", help="forecast samples per context (Toto draws; Kronos "
                    "sample paths averaged; default: the model's own, 3072 for Toto)")
    bt.add_argument("--protocol", choices=PROTOCOLS, default="legacy", help="legacy (the original) or walk_forward")
    bt.add_argument("--out", metavar="DIR", help="write results to DIR (with --symbols: a resumable run, "
                    "one folder per symbol; re-running skips finished symbols)")
    bt.add_argument("--max-context", type=int, metavar="C", help="cap the forecast context at C returns "
                    "(default: the whole history, as the original)")
    bt.add_argument("--chunk-size", type=int, default=64, metavar="K",
                    help="stocks per compiled batch with --symbols (default 64)")
    bt.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    dist = bt.add_argument_group("across processes (jax.distributed; see README 'Across machines')")
    dist.add_argument("--distributed", action="store_true", help="one of several processes sharing the --symbols "
                      "run in --out (same command on every host; flags default to JAX_COORDINATOR_ADDRESS, "
                      "JAX_NUM_PROCESSES, JAX_PROCESS_ID, else jax's SLURM/MPI detection)")
    dist.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address and a free port")
    dist.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    dist.add_argument("--process-id", type=int, metavar="I", help="this process's id, 0..N-1")
    bt.set_defaults(func=run_backtest)

    bench = sub.add_parser("bench", help="benchmarks that need only the package (tables + PNG plots)")
    bench.add_argument("suite", nargs="?", default="all", choices=("e2e", "scaling", "optimizer", "all"),
                       help="e2e: jaxsim side of the end-to-end settings; scaling: time/memory sweeps; "
                            "optimizer: jitted MaxDiff optimisers (default: all)")
    bench.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run of a few minutes)")
    bench.add_argument("--out", metavar="DIR", default="bench-results", help="output folder (default bench-results)")
    bench.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                       help="bfloat16: bf16 weights and bf16 matmul precision (meant for GPUs)")
    bench.set_defaults(func=cmd_bench)
    _add_weight_commands(sub)
    return parser


def _add_weight_commands(sub) -> None:
    """``jaxsim weights ...`` and ``jaxsim train`` (implemented in :mod:`jaxsim.cli.weights`)."""
    from jaxsim.cli.weights import add_commands

    add_commands(sub)


def cmd_bench(args) -> int:
    """``jaxsim bench``: run package-only benchmark suites, print their markdown, write files to --out.

    The comparison against the PyTorch reference needs its own environment: ``benchmarks/bench_e2e.py``.
    """
    from jaxsim.bench import suites as bench_suites

    suites = bench_suites.SUITES if args.suite == "all" else (args.suite,)
    for name in suites:
        result = bench_suites.run_suite(name, args.out, quick=args.quick, dtype=args.dtype)
        print(result["markdown"])
    print(f"written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxsim`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    if getattr(args, "data_dir", None) and not getattr(args, "symbols", None):
        parser.error("--data-dir is only used with --symbols")
    if getattr(args, "sims", 1) < 1 or (getattr(args, "samples", None) or 1) < 1:
        parser.error("--sims and --samples must be >= 1")
    try:
        return args.func(args)
    except (JaxsimError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
