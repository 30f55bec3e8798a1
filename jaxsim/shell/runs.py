"""Resumable multi-stock runs: load, group, chunk, backtest, write each stock atomically, resume.

:func:`run_many` is the imperative shell around :func:`jaxsim.shell.api.backtest_many` for runs of
hundreds of stocks that write to disk and may be interrupted; the folder's bookkeeping (manifest,
``done.json``, lock, settings) is :mod:`jaxsim.shell.manifest`. Layout of ``out_dir``::

    manifest.json      run settings + per-stock status, rewritten atomically after every chunk
    <SYMBOL>/          one folder per finished stock, renamed into place only once complete:
        records.csv  summary.csv  metadata.json  daily.csv  equity.csv  trades.csv  stats.csv
        uncertainty.json  forecasts.csv  skill.csv  report.html  [equity.png]  done.json
    stocks.csv         the cross-stock table (jaxsim.report.cross_stock), rewritten after every run
    index.html         the run's report page: that table, linking to each <SYMBOL>/report.html
    .lock              advisory lock held while a run writes

Guarantees:

* A stock folder appears only complete: it is written as ``.<SYMBOL>.*.tmp`` and renamed; its last
  file, ``done.json``, lists the files with their sizes and sha256.
* Re-running with the same settings skips every stock whose folder is complete and never deletes,
  rewrites or touches it. A different setting (forecaster, N, key, ...) is refused, so one folder
  never mixes runs.
* A stock that fails (bad data, too short, a forecaster error) is recorded with its error in the
  manifest and the others go on; failed stocks are retried by the next run.
* Memory stays bounded: only one chunk's prices and results are alive at a time (a first pass keeps
  each stock's shape key, not its data).
* Stock ``s`` always uses the key ``fold_in(key, crc32(s))`` (:func:`jaxsim.shell.plan.stock_key`), the rule of
  every entry point, so the results do not depend on the chunk it lands in, on the other stocks, on
  whether the run was resumed, or on whether the stock ran alone (:func:`jaxsim.backtest`).
* ``should_stop`` (e.g. set by Ctrl-C) is checked between chunks: the run stops there with every
  finished stock in place; temporaries of a process killed mid-write are removed by the next run.

Stocks are grouped by (program rows, program N, crypto rule) so one compiled program serves a whole
group, and the groups run one after the other, so each distinct shape compiles once; every chunk of
a group is padded to one size (``chunk_size``, or the group's size when smaller), so the last chunk
compiles nothing new. The program rows are a stock's rows rounded up to ``config.length_bucket``
(default 512; docs/compilation.md#length-buckets): stocks of different lengths in one bucket share a
program, each with its exact-length results (to float rounding).

Across processes (``distributed=``, :mod:`jaxsim.shell.distributed`): each of P processes runs its
share of the stocks (:func:`~jaxsim.shell.distributed.split_stocks`) on its local devices, writes
its stock folders as above and its own part manifest ``.parts/part-<i>-of-<P>.json`` (atomically,
after every chunk); after a barrier process 0 merges the parts into ``manifest.json``. A stock's
result does not depend on P (its key is the symbol's; its batch holds its own group's stocks), so a
run resumes per stock with any process count. Its folder's bytes are the same at ``chunk_size=1``
(tested); with larger chunks a process's smaller length group can make a smaller batch, and results
then agree to float tolerance (as across batch sizes in one process).

At the end of a run (process 0 after the merge when distributed) ``stocks.csv`` is written, the
cross-stock table of the whole folder (:func:`jaxsim.report.cross_stock.write_cross_stock_table`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
from tqdm.auto import tqdm

from jaxsim.atomic import write_file
from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.data.prices import Prices, load_prices
from jaxsim.errors import ConfigError, JaxsimError
from jaxsim.report.cross_stock import write_cross_stock_table, write_index
from jaxsim.shell import api  # called as api.backtest_many: a replaced one is seen
from jaxsim.shell.distributed import (
    DistributedConfig,
    barrier,
    initialize,
    resolve_distributed,
    split_stocks,
    stock_rows,
)
from jaxsim.shell.manifest import (
    DONE,
    FORMAT,
    MANIFEST,
    PARTS,
    error_text,
    is_complete,
    json_bytes,
    locked,
    merge_parts,
    now,
    part_path,
    read_manifest,
    run_settings,
    strategy_identity,
    write_stock,
)
from jaxsim.shell.plan import prepare_stock, run_key, shape_key, stock_key, with_config_samples

__all__ = ["RunReport", "run_many", "DistributedConfig", "MANIFEST", "DONE", "PARTS", "is_complete", "read_manifest"]

log = logging.getLogger(__name__)

_BARRIERS = itertools.count()  # distinct barrier names for successive distributed runs of a process
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._^=-]*")


@dataclasses.dataclass(frozen=True)
class RunReport:
    """What one :func:`run_many` call did.

    Attributes:
      out_dir: the run folder.
      done: symbols written by this call, in input order.
      skipped: symbols already complete on disk (left untouched).
      failed: symbol -> error message (``"<ErrorType>: <message>"``) for every stock that failed.
      interrupted: ``should_stop`` stopped the run before every stock was done (a rerun resumes).
    """

    out_dir: Path
    done: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: dict[str, str]
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed


# ----------------------------------------------------------------------------------------------------
# Sources


def _symbol_of(source) -> str:
    if isinstance(source, Prices):
        return source.symbol
    if isinstance(source, (str, os.PathLike)):
        name = Path(source).name
        for suffix in (".csv.gz", ".csv", ".parquet", ".pq"):
            if name.lower().endswith(suffix):
                return name[: -len(suffix)].upper()
        return name.upper()
    raise ConfigError(
        f"run_many: cannot name a source of type {type(source).__name__}; pass a mapping symbol -> source"
    )


def _entries(sources) -> list[tuple[str, Any]]:
    if isinstance(sources, Mapping):
        entries = [(str(k), v) for k, v in sources.items()]
    else:
        entries = [(_symbol_of(s), s) for s in sources]
    names = [s for s, _ in entries]
    dup = sorted({s for s in names if names.count(s) > 1})
    if dup:
        raise ConfigError(f"run_many: duplicate symbols {dup}")
    return entries


def _load(symbol: str, source, adjusted: bool, clean: bool, resample=None):
    if not _SYMBOL.fullmatch(symbol):
        raise ConfigError(f"symbol {symbol!r} is not usable as a folder name (letters, digits, . _ ^ = -)")
    if isinstance(source, Prices):
        return source if source.symbol == symbol else dataclasses.replace(source, symbol=symbol, cleaning=None)
    return load_prices(source, symbol=symbol, adjusted=adjusted, clean=clean, resample=resample)


# ----------------------------------------------------------------------------------------------------
# The runner


@dataclasses.dataclass
class _Ledger:
    """What a process of a run has done so far, and where it records it (its manifest or its part)."""

    out: Path
    process: int
    count: int
    manifest: dict
    stocks: dict  # symbol -> entry: the manifest's (one process) or this process's part's
    done: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    failed: dict = dataclasses.field(default_factory=dict)

    def save(self) -> None:
        if self.count == 1:
            self.manifest["updated"] = now()
            write_file(self.out / MANIFEST, json_bytes(self.manifest))
        else:
            part = {
                "format": FORMAT,
                "process": self.process,
                "processes": self.count,
                "settings": self.manifest["settings"],
                "stocks": self.stocks,
                "done": self.done,
                "skipped": self.skipped,
                "updated": now(),
            }
            write_file(part_path(self.out, self.process, self.count), json_bytes(part))

    def fail(self, symbol: str, e: BaseException, stage: str) -> None:
        self.failed[symbol] = error_text(e)
        self.stocks[symbol] = {"status": "failed", "stage": stage, "error": self.failed[symbol], "at": now()}
        if self.count > 1:
            self.stocks[symbol]["process"] = self.process
        log.warning("%s failed (%s): %s", symbol, stage, self.failed[symbol])

    def finish(self, symbol: str, result) -> None:
        r = result.records
        self.stocks[symbol] = {
            "status": "done",
            "at": now(),
            "n_sims": int(len(r)),
            "first_sim_date": str(r["date"].iloc[-1].date()),
            "last_sim_date": str(r["date"].iloc[0].date()),
            "best_strategy": result.best_strategy,
        }
        self.done.append(symbol)
        self.failed.pop(symbol, None)


def _open_ledger(out: Path, settings: dict, process: int, count: int, mine: Sequence[str]) -> _Ledger:
    """Read (or start) the run's manifest, refuse other settings, remove stale temporaries."""
    manifest = read_manifest(out)
    if manifest is not None and manifest.get("settings") != settings:
        old = manifest.get("settings") or {}
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        raise ConfigError(
            f"{out} holds a run with other settings (differs in: {', '.join(diff)}); use a new out_dir to keep both"
        )
    manifest = manifest or {"format": FORMAT, "created": now(), "settings": settings, "stocks": {}}
    prefixes = None if count == 1 else tuple(f".{s}." for s in mine)  # others may be writing theirs
    for stale in out.glob(".*.tmp"):  # left by a process killed (or abandoned on Ctrl-C) mid-write
        if prefixes is not None and not stale.name.startswith(prefixes):
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                stale.unlink()
    stocks = manifest["stocks"] if count == 1 else {}  # a process's part holds only its own stocks
    return _Ledger(out, process, count, manifest, stocks)


def _scan(
    ledger: _Ledger, entries, config: BacktestConfig, adjusted: bool, clean: bool, forecaster=None, resample=None
) -> dict:
    """Pass 1: skip finished stocks; load each other one once, through the pipeline's
    :func:`~jaxsim.shell.plan.prepare_stock`, for validation and its shape group (its data is dropped).
    Returns ``{(program rows, program N, crypto): [symbols]}`` (length buckets,
    :func:`~jaxsim.shell.plan.program_shape`)."""
    known, groups = ledger.manifest["stocks"], {}
    for symbol, source in entries:
        if is_complete(ledger.out / symbol):
            ledger.skipped.append(symbol)
            if known.get(symbol, {}).get("status") != "done":  # written, manifest not yet updated
                ledger.stocks[symbol] = {"status": "done", "at": now(), "recovered": True}
            elif ledger.count > 1:
                ledger.stocks[symbol] = known[symbol]
            continue
        try:
            prep = prepare_stock(
                _load(symbol, source, adjusted, clean, resample),
                config,
                fee=config.fee,
                spread=config.spread,
                forecaster=forecaster,
            )
            groups.setdefault(shape_key(prep), []).append(symbol)
        except (JaxsimError, OSError) as e:
            ledger.fail(symbol, e, "load")
    return groups


def _run_groups(
    ledger: _Ledger,
    groups: dict,
    run_chunk,
    chunk_size: int,
    outputs: tuple,
    should_stop,
    bar,
    on_stock,
    on_result,
    prices_of=lambda symbol: None,
) -> bool:
    """Pass 2: each group in chunks of one padded size (one program per group); each finished stock's
    folder written atomically, the manifest saved after every chunk. Returns True when interrupted."""
    for members in groups.values():
        # every chunk of a group is padded to one size, so a group is one program: chunk_size,
        # or the whole group when it is smaller (a small group is not padded up to chunk_size)
        size = min(int(chunk_size), len(members))
        for j in range(0, len(members), size):
            if should_stop is not None and should_stop():
                return True
            chunk = members[j : j + size]
            try:
                results = run_chunk(chunk, size)
            except Exception as e:  # isolate the failing stock(s); same padded shape, no recompile
                log.warning("chunk of %d stocks failed (%s); retrying them one by one", len(chunk), error_text(e))
                results = {}
                for s in chunk:
                    try:
                        results.update(run_chunk([s], size))
                    except Exception as e1:
                        ledger.fail(s, e1, "backtest")
            for s in chunk:
                result = results.pop(s, None)
                if result is not None:
                    try:
                        folder = write_stock(ledger.out, s, result, *outputs, prices=prices_of(s))
                    except (JaxsimError, OSError) as e:
                        ledger.fail(s, e, "write")
                    else:
                        ledger.finish(s, result)
                        if on_stock is not None:
                            on_stock(s, folder)
                        if on_result is not None:
                            on_result(s, result)
                bar.update(1)
            del results
            ledger.save()
    return False


def _merge_processes(ledger: _Ledger, settings: dict, symbols: set) -> None:
    """Distributed: meet every process; process 0 folds the parts into the manifest and writes the
    cross-stock table; everyone meets again. Process 0's ledger then covers the whole run."""
    out, count = ledger.out, ledger.count
    calls = next(_BARRIERS)  # every process makes the same calls, so the names agree
    barrier(f"jaxsim.run_many.{calls}.parts:{out.resolve()}")
    if ledger.process == 0:
        with locked(out):
            merged, done_all, skipped_all = merge_parts(out, read_manifest(out) or ledger.manifest, count, settings)
            merged["updated"] = now()
            write_file(out / MANIFEST, json_bytes(merged))
            write_cross_stock_table(out)  # stocks.csv of the whole run
            write_index(out)  # index.html: the table, linking to each stock's report.html
        for i in range(count):
            with contextlib.suppress(OSError):
                part_path(out, i, count).unlink()
        with contextlib.suppress(OSError):
            (out / PARTS).rmdir()
        ledger.done[:], ledger.skipped[:] = list(done_all), list(skipped_all)
        failed = merged["stocks"].items()
        ledger.failed.update({s: v["error"] for s, v in failed if v.get("status") == "failed" and s in symbols})
    barrier(f"jaxsim.run_many.{calls}.merged:{out.resolve()}")


def run_many(
    sources: Mapping[str, Any] | Sequence[Any],
    out_dir: str | os.PathLike,
    *,
    forecaster,
    config: BacktestConfig | None = None,
    chunk_size: int = 64,
    key=None,
    adjusted: bool = False,
    clean: bool = False,
    resample: str | None = None,
    plots: bool = False,
    report: bool = True,
    progress: bool = False,
    on_stock: Callable[[str, Path], None] | None = None,
    on_result: Callable | None = None,
    on_plan: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    distributed: DistributedConfig | bool | None = None,
    **settings,
) -> RunReport:
    """Backtest many stocks into ``out_dir``, chunked, atomically written and resumable.

    Each stock's outputs go to ``out_dir/<SYMBOL>/`` (see the module docstring). Calling it again with
    the same arguments skips the finished stocks and retries the failed ones.

    Args:
      sources: mapping symbol -> source, or a sequence of sources (file paths named by their stem,
        or :class:`~jaxsim.data.prices.Prices` named by their symbol). A source is a path, a DataFrame or
        a ``Prices``.
      out_dir: run folder (created when missing; with ``distributed`` a folder every process sees).
      forecaster: from :mod:`jaxsim.forecast.forecasters`.
      config: a :class:`jaxsim.config.BacktestConfig`; ``**settings`` are its fields as keywords
        (as in :func:`jaxsim.shell.api.backtest`; fee/spread scalars or None for the per-symbol
        rule). The stock key rule is always ``"symbol"`` here (``stock_key="index"`` is refused).
      chunk_size: stocks per compiled batch (rounded up to the local device count); bounds memory.
        1 on one device: every program is :func:`~jaxsim.shell.api.backtest`'s for its length bucket
        (docs/compilation.md#shared-programs).
      key: PRNG key of the run (default ``jax.random.key(config.seed)``); stock s uses
        :func:`jaxsim.shell.plan.stock_key`.
      adjusted, clean, resample: passed to :func:`jaxsim.data.prices.load_prices` for path/DataFrame
        sources (``resample="1D"``: intraday bars aggregated to daily ones).
      plots: also write ``equity.png`` per stock (slower: ~0.3 s per stock); a tuple of plot kinds
        (``"equity"``, ``"fan"``, ``"bootstrap"``) writes one PNG each (:meth:`BacktestResult.files`).
      report: write ``report.html`` per stock (:mod:`jaxsim.report.html`; about 1 s per stock) and
        ``index.html``; False leaves the stock pages out (``jaxsim report OUT`` renders them later).
      progress: a tqdm bar over stocks (with ETA).
      on_stock: called as ``on_stock(symbol, folder)`` after each stock folder is in place (an
        exception from it stops the run; everything written so far stays).
      on_result: called as ``on_result(symbol, result)`` after each stock folder is in place.
      on_plan: called once with ``{(rows, crypto): [symbols]}``, the shape groups still to run (each
        compiles one program).
      should_stop: checked before every chunk; when it returns True the run stops there (manifest
        saved, ``RunReport.interrupted``) and a rerun resumes.
      distributed: run as one of P processes (:mod:`jaxsim.shell.distributed`): a
        :class:`~jaxsim.shell.distributed.DistributedConfig`, or True to take the coordinator,
        process count and id from ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
        ``JAX_PROCESS_ID`` or jax's cluster auto-detection (SLURM, ...). ``jax.distributed`` is
        started here unless it already is; it must start before any JAX computation, so build a
        forecaster with device parameters after :func:`jaxsim.shell.distributed.initialize`.
        ``on_plan`` sees this process's groups. An interrupted process skips the final barrier (the
        others are ended by ``jax.distributed``; a rerun completes the run).

    Returns:
      :class:`RunReport`: of this process's share; process 0's covers every stock of the run
      (``failed`` includes the other processes' failures).

    Raises:
      ConfigError: bad options, duplicate symbols, ``out_dir`` holding a run with other settings, or
        another process writing to ``out_dir``.
    """
    config = resolve_config(config, settings)
    if config.stock_key == "index":
        raise ConfigError(
            "run_many derives each stock's key from its symbol (stock_key='symbol'), so a resumed "
            "run does not depend on its chunks; stock_key='index' is not supported here"
        )
    if isinstance(config.fee, tuple) or isinstance(config.spread, tuple):
        raise ConfigError(
            "run_many takes one fee and one spread (or None for the per-symbol rule), not per-stock sequences"
        )
    if int(chunk_size) < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    dist = resolve_distributed(distributed)
    process, count = initialize(dist) if dist is not None else (0, 1)
    if config.n_seeds > 1 and key is not None:
        raise ConfigError(f"run_many: n_seeds={config.n_seeds} derives its keys from seed=; pass seed=, not key=")
    key = run_key(key, config)
    forecaster = with_config_samples(forecaster, config)
    everyone = entries = _entries(sources)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = run_settings(
        forecaster,
        key,
        n_sims=config.n_sims,
        protocol=config.protocol,
        targets=list(config.targets),
        num_samples=config.num_samples,
        aggregate=config.aggregate,
        fee=config.fee,
        spread=config.spread,
        max_context=config.max_context,
        optimizer=None if config.optimizer is None else repr(config.optimizer),
        adjusted=bool(adjusted),
        clean=bool(clean),
        **({"resample": resample} if resample else {}),  # absent when off: earlier run folders still match
        **({"min_context": config.min_context} if config.n_sims == "all" else {}),
        **({"n_seeds": config.n_seeds} if config.n_seeds > 1 else {}),  # absent at 1: earlier folders match
        **({"strategies": [strategy_identity(u) for u in config.strategies]} if config.strategies else {}),
    )
    if count > 1:
        share = set(split_stocks([s for s, _ in entries], [stock_rows(src) for _, src in entries], count)[process])
        entries = [(s, src) for s, src in entries if s in share]
        (out / PARTS).mkdir(exist_ok=True)
    sources_of = dict(entries)

    loaded = {}  # the current chunk's prices, for its stocks' reports (one chunk alive at a time)

    def run_chunk(chunk, size):
        loaded.clear()  # the previous chunk's prices go before this chunk's load
        prices = {s: _load(s, sources_of[s], adjusted, clean, resample) for s in chunk}
        loaded.update(prices)
        keys = [stock_key(key, s) for s in chunk]
        devices = jax.local_devices()
        return api.backtest_many(
            prices, forecaster, config, keys=keys, chunk_size=size, devices=devices, progress=False
        )

    with locked(out, ".lock" if count == 1 else f".lock-{process}-of-{count}"):
        ledger = _open_ledger(out, settings, process, count, [s for s, _ in entries])
        groups = _scan(ledger, entries, config, adjusted, clean, forecaster, resample)
        ledger.save()
        if on_plan is not None:
            on_plan({g: list(m) for g, m in groups.items()})
        desc = "stocks" if count == 1 else f"stocks [{process}/{count}]"
        total = sum(map(len, groups.values()))
        bar = tqdm(total=total, desc=desc, unit="stock", leave=False, disable=not progress)
        try:
            interrupted = _run_groups(
                ledger,
                groups,
                run_chunk,
                chunk_size,
                (plots, report),
                should_stop,
                bar,
                on_stock,
                on_result,
                loaded.get,
            )
        finally:
            bar.close()
            ledger.save()
        if count == 1:
            write_cross_stock_table(out)  # stocks.csv: one row per finished stock (this run's and earlier ones)
            write_index(out)  # index.html: the table, linking to each stock's report.html
    if count > 1 and not interrupted:  # every part is written: meet, then process 0 merges them
        _merge_processes(ledger, settings, {s for s, _ in everyone})
    order = [s for s, _ in everyone]
    return RunReport(
        out,
        tuple(s for s in order if s in ledger.done),
        tuple(s for s in order if s in ledger.skipped),
        {s: ledger.failed[s] for s in order if s in ledger.failed},
        interrupted,
    )
