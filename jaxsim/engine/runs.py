"""Resumable multi-stock runs: load, group, chunk, backtest, write each stock atomically, resume.

:func:`run_many` is the imperative shell around :func:`jaxsim.engine.api.backtest_many` for runs of
hundreds of stocks that write to disk and may be interrupted. Layout of ``out_dir``::

    manifest.json      run settings + per-stock status, rewritten atomically after every chunk
    <SYMBOL>/          one folder per finished stock, renamed into place only once complete:
        records.csv  summary.csv  metadata.json  daily.csv  stats.csv  uncertainty.json
        forecasts.csv  skill.csv  [equity.png]  done.json
    stocks.csv         the cross-stock table (jaxsim.engine.cross_stock), rewritten after every run
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
* Stock ``s`` always uses the key ``fold_in(key, crc32(s))`` (:func:`stock_key`), the rule of
  every entry point, so the results do not depend on the chunk it lands in, on the other stocks, on
  whether the run was resumed, or on whether the stock ran alone (:func:`jaxsim.backtest`).
* ``should_stop`` (e.g. set by Ctrl-C) is checked between chunks: the run stops there with every
  finished stock in place; temporaries of a process killed mid-write are removed by the next run.

Stocks are grouped by (rows the program reads, crypto rule) so one compiled program serves a whole
group, and the groups run one after the other, so each distinct shape compiles once; every chunk of
a group is padded to one size (``chunk_size``, or the group's size when smaller), so the last chunk
compiles nothing new. Without ``max_context`` every distinct history length is its own group (and
compile): Toto's output depends on a context's left padding, so stocks of different lengths cannot
share a program without changing their results; they are bucketed by exact length.

Across processes (``distributed=``, :mod:`jaxsim.engine.distributed`): each of P processes runs its
share of the stocks (:func:`~jaxsim.engine.distributed.split_stocks`) on its local devices, writes
its stock folders as above and its own part manifest ``.parts/part-<i>-of-<P>.json`` (atomically,
after every chunk); after a barrier process 0 merges the parts into ``manifest.json``. A stock's
result does not depend on P (its key is the symbol's; its batch holds its own group's stocks), so a
run resumes per stock with any process count. Its folder's bytes are the same at ``chunk_size=1``
(tested); with larger chunks a process's smaller length group can make a smaller batch, and results
then agree to float tolerance (as across batch sizes in one process).

At the end of a run (process 0 after the merge when distributed) ``stocks.csv`` is written, the
cross-stock table of the whole folder (:func:`jaxsim.engine.cross_stock.write_cross_stock_table`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxsim import __version__
from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.data.prices import Prices, load_prices
from jaxsim.engine import api  # called as api.backtest_many: a replaced one is seen
from jaxsim.engine.api import stock_key
from jaxsim.engine.atomic import write_file, write_folder
from jaxsim.engine.cross_stock import write_cross_stock_table
from jaxsim.engine.distributed import (
    DistributedConfig,
    barrier,
    initialize,
    resolve_distributed,
    split_stocks,
    stock_rows,
)
from jaxsim.errors import ConfigError, JaxsimError
from jaxsim.forecast.grid import ForecastGrid, trim_start
from jaxsim.sim.simulation import PRICE_WINDOW, is_crypto

__all__ = [
    "RunReport",
    "run_many",
    "stock_key",
    "is_complete",
    "read_manifest",
    "DistributedConfig",
    "MANIFEST",
    "DONE",
    "PARTS",
]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DONE = "done.json"
PARTS = ".parts"
_BARRIERS = itertools.count()  # distinct barrier names for successive distributed runs of a process
FORMAT = "jaxsim-run/1"
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


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a finished stock: ``done.json`` and every file it lists, sizes equal."""
    folder = Path(folder)
    try:
        done = json.loads((folder / DONE).read_text())
        return all((folder / name).stat().st_size == info["bytes"] for name, info in done["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    """The run manifest of ``out_dir`` (None when there is none). Raises ConfigError when unreadable."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable run manifest ({e}); move it away to start a new run") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a jaxsim run manifest (format {FORMAT!r} expected)")
    return manifest


# ----------------------------------------------------------------------------------------------------
# Files


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, default=str).encode()


def _write_stock(out: Path, symbol: str, result, plots: bool) -> Path:
    """Write one stock's folder ``out/symbol`` atomically (the files of ``BacktestResult.save`` and
    ``done.json`` last, listing them)."""
    final = out / symbol
    if final.exists():
        raise ConfigError(
            f"{final} exists but is not a complete stock folder (no valid {DONE}); "
            "it is left untouched: move it away to recompute this stock"
        )
    files = result.files(plot=plots)
    files[DONE] = _json_bytes(
        {
            "symbol": symbol,
            "files": {n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()},
        }
    )
    return write_folder(final, files)


@contextlib.contextmanager
def _locked(out: Path, name: str = ".lock"):
    """An advisory lock on ``out/<name>`` (released when the process ends, even when killed)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows): no lock
        yield
        return
    with open(out / name, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{out}: another run is writing to this folder") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------------------
# Sources and settings


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


def _load(symbol: str, source, adjusted: bool, clean: bool):
    if not _SYMBOL.fullmatch(symbol):
        raise ConfigError(f"symbol {symbol!r} is not usable as a folder name (letters, digits, . _ ^ = -)")
    if isinstance(source, Prices):
        return source if source.symbol == symbol else dataclasses.replace(source, symbol=symbol, cleaning=None)
    return load_prices(source, symbol=symbol, adjusted=adjusted, clean=clean)


def _params_digest(forecaster) -> str | None:
    return _tree_digest(getattr(forecaster, "params", None))


def _tree_digest(tree) -> str | None:
    """sha256 of a pytree's leaves (shapes, dtypes, bytes); None when it has none."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return None
    h = hashlib.sha256()
    for leaf in leaves:
        a = np.asarray(leaf)
        h.update(str((a.shape, a.dtype)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _strategy_identity(strategy) -> dict:
    """A user strategy as the settings name it: its fields, its function by name, its parameters by digest."""
    fn = strategy.fn
    return {
        "name": strategy.name,
        "kind": strategy.kind,
        "needs_draws": strategy.needs_draws,
        "close_at_eod": strategy.close_at_eod,
        "levels": strategy.levels,
        "fn": f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}",
        "params_sha256": _tree_digest(strategy.params),
    }


def _settings(forecaster, key, **options) -> dict:
    """What must match for a resumed run to be the same run (JSON-comparable)."""
    config = getattr(forecaster, "config", None)
    fn = getattr(forecaster, "fn", None)
    return json.loads(
        json.dumps(
            {
                "jaxsim": __version__,
                "forecaster": {
                    "kind": forecaster.kind,
                    "class": type(forecaster).__name__,
                    "num_samples": forecaster.draws_per_context(),
                    "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else repr(config),
                    "fn": None if fn is None else f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}",
                    "params_sha256": _params_digest(forecaster),
                },
                "key": np.asarray(
                    jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
                ).tolist(),
                **options,
            },
            default=str,
        )
    )


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


# ----------------------------------------------------------------------------------------------------
# The runner


def _part_path(out: Path, process: int, count: int) -> Path:
    return out / PARTS / f"part-{process}-of-{count}.json"


def _merge_parts(out: Path, manifest: dict, count: int, settings: dict) -> tuple[dict, set, set]:
    """Process 0, after the barrier: fold every process's part manifest into ``manifest``; returns it
    with the symbols the processes wrote and skipped."""
    done, skipped = set(), set()
    for i in range(count):
        path = _part_path(out, i, count)
        try:
            part = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: part manifest of process {i} unreadable after the barrier ({e})") from None
        if part.get("settings") != settings:
            raise ConfigError(f"{path}: process {i} ran with other settings; every process must get the same command")
        manifest["stocks"].update(part["stocks"])
        done.update(part.get("done", ()))
        skipped.update(part.get("skipped", ()))
    for symbol, entry in list(manifest["stocks"].items()):  # the disk is the truth about finished stocks
        if is_complete(out / symbol) and entry.get("status") != "done":
            manifest["stocks"][symbol] = {"status": "done", "at": _now(), "recovered": True}
    return manifest, done, skipped


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
    plots: bool = False,
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
        (as in :func:`jaxsim.engine.api.backtest`; fee/spread scalars or None for the per-symbol
        rule). The stock key rule is always ``"symbol"`` here (``stock_key="index"`` is refused).
      chunk_size: stocks per compiled batch (rounded up to the local device count); bounds memory.
      key: PRNG key of the run (default ``jax.random.key(config.seed)``); stock s uses :func:`stock_key`.
      adjusted, clean: passed to :func:`jaxsim.data.prices.load_prices` for path/DataFrame sources.
      plots: also write ``equity.png`` per stock (slower: ~0.3 s per stock); a tuple of plot kinds
        (``"equity"``, ``"fan"``, ``"bootstrap"``) writes one PNG each (:meth:`BacktestResult.files`).
      progress: a tqdm bar over stocks (with ETA).
      on_stock: called as ``on_stock(symbol, folder)`` after each stock folder is in place (an
        exception from it stops the run; everything written so far stays).
      on_result: called as ``on_result(symbol, result)`` after each stock folder is in place.
      on_plan: called once with ``{(rows, crypto): [symbols]}``, the shape groups still to run (each
        compiles one program).
      should_stop: checked before every chunk; when it returns True the run stops there (manifest
        saved, ``RunReport.interrupted``) and a rerun resumes.
      distributed: run as one of P processes (:mod:`jaxsim.engine.distributed`): a
        :class:`~jaxsim.engine.distributed.DistributedConfig`, or True to take the coordinator,
        process count and id from ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
        ``JAX_PROCESS_ID`` or jax's cluster auto-detection (SLURM, ...). ``jax.distributed`` is
        started here unless it already is; it must start before any JAX computation, so build a
        forecaster with device parameters after :func:`jaxsim.engine.distributed.initialize`.
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
    key = jax.random.key(config.seed) if key is None else key
    forecaster = api.with_config_samples(forecaster, config)
    entries = _entries(sources)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_sims, max_context = config.n_sims, config.max_context
    settings = _settings(
        forecaster,
        key,
        n_sims=n_sims,
        protocol=config.protocol,
        targets=list(config.targets),
        num_samples=config.num_samples,
        aggregate=config.aggregate,
        fee=config.fee,
        spread=config.spread,
        max_context=max_context,
        optimizer=None if config.optimizer is None else repr(config.optimizer),
        adjusted=bool(adjusted),
        clean=bool(clean),
        **({"min_context": config.min_context} if config.n_sims == "all" else {}),
        **({"strategies": [_strategy_identity(u) for u in config.strategies]} if config.strategies else {}),
    )
    everyone = entries
    sources_of_all = dict(entries)
    if count > 1:
        share = set(split_stocks([s for s, _ in entries], [stock_rows(src) for _, src in entries], count)[process])
        entries = [(s, src) for s, src in entries if s in share]
        (out / PARTS).mkdir(exist_ok=True)
    with _locked(out, ".lock" if count == 1 else f".lock-{process}-of-{count}"):
        manifest = read_manifest(out)
        if manifest is not None and manifest.get("settings") != settings:
            old = manifest.get("settings") or {}
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ConfigError(
                f"{out} holds a run with other settings (differs in: {', '.join(diff)}); use a new out_dir to keep both"
            )
        manifest = manifest or {"format": FORMAT, "created": _now(), "settings": settings, "stocks": {}}
        mine = None if count == 1 else tuple(f".{s}." for s, _ in entries)  # others may be writing theirs
        for stale in out.glob(".*.tmp"):  # left by a process killed (or abandoned on Ctrl-C) mid-write
            if mine is not None and not stale.name.startswith(mine):
                continue
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    stale.unlink()
        stocks: dict = manifest["stocks"] if count == 1 else {}  # a process's part holds only its own stocks
        part = {"format": FORMAT, "process": process, "processes": count, "settings": settings, "stocks": stocks}

        def save_manifest():
            if count == 1:
                manifest["updated"] = _now()
                write_file(out / MANIFEST, _json_bytes(manifest))
            else:
                part["updated"] = _now()
                write_file(_part_path(out, process, count), _json_bytes(part))

        done, skipped, failed = [], [], {}
        part.update(done=done, skipped=skipped)

        def fail(symbol, e, stage):
            failed[symbol] = _error(e)
            stocks[symbol] = {"status": "failed", "stage": stage, "error": failed[symbol], "at": _now()}
            if count > 1:
                stocks[symbol]["process"] = process
            log.warning("%s failed (%s): %s", symbol, stage, failed[symbol])

        # Pass 1: skip finished stocks; load the others once for validation and their shape key.
        sources_of, groups = dict(entries), {}
        known = manifest["stocks"]
        for symbol, source in entries:
            if is_complete(out / symbol):
                skipped.append(symbol)
                if known.get(symbol, {}).get("status") != "done":  # written, manifest not yet updated
                    stocks[symbol] = {"status": "done", "at": _now(), "recovered": True}
                elif count > 1:
                    stocks[symbol] = known[symbol]
                continue
            try:
                prices = _load(symbol, source, adjusted, clean)
                rows = len(prices)
                sims = config.sims_for(rows)  # n_sims="all": this stock's full history
                ForecastGrid(rows, sims, max_context)  # InsufficientHistoryError when too short
                shape = rows - trim_start(rows, sims, max_context, PRICE_WINDOW)
                groups.setdefault((shape, sims, is_crypto(symbol)), []).append(symbol)
            except (JaxsimError, OSError) as e:
                fail(symbol, e, "load")
        save_manifest()
        if on_plan is not None:
            on_plan({g: list(m) for g, m in groups.items()})

        bar = tqdm(
            total=sum(map(len, groups.values())),
            desc="stocks" if count == 1 else f"stocks [{process}/{count}]",
            unit="stock",
            leave=False,
            disable=not progress,
        )

        def run_chunk(chunk, size):
            prices = {s: _load(s, sources_of[s], adjusted, clean) for s in chunk}
            return api.backtest_many(
                prices,
                forecaster,
                config,
                keys=[stock_key(key, s) for s in chunk],
                chunk_size=size,
                devices=jax.local_devices(),
                progress=False,
            )

        interrupted = False
        try:
            for members in groups.values():
                # every chunk of a group is padded to one size, so a group is one program: chunk_size,
                # or the whole group when it is smaller (a small group is not padded up to chunk_size)
                size = min(int(chunk_size), len(members))
                for j in range(0, len(members), size):
                    if should_stop is not None and should_stop():
                        interrupted = True
                        break
                    chunk = members[j : j + size]
                    try:
                        results = run_chunk(chunk, size)
                    except Exception as e:  # isolate the failing stock(s); same padded shape, no recompile
                        log.warning("chunk of %d stocks failed (%s); retrying them one by one", len(chunk), _error(e))
                        results = {}
                        for s in chunk:
                            try:
                                results.update(run_chunk([s], size))
                            except Exception as e1:
                                fail(s, e1, "backtest")
                    for s in chunk:
                        if s not in results:
                            bar.update(1)
                            continue
                        result = results.pop(s)
                        try:
                            folder = _write_stock(out, s, result, plots)
                        except (JaxsimError, OSError) as e:
                            fail(s, e, "write")
                        else:
                            r = result.records
                            stocks[s] = {
                                "status": "done",
                                "at": _now(),
                                "n_sims": int(len(r)),
                                "first_sim_date": str(r["date"].iloc[-1].date()),
                                "last_sim_date": str(r["date"].iloc[0].date()),
                                "best_strategy": result.best_strategy,
                            }
                            done.append(s)
                            failed.pop(s, None)
                            if on_stock is not None:
                                on_stock(s, folder)
                            if on_result is not None:
                                on_result(s, result)
                        bar.update(1)
                    del results
                    save_manifest()
                if interrupted:
                    break
        finally:
            bar.close()
            save_manifest()
        if count == 1:
            write_cross_stock_table(out)  # stocks.csv: one row per finished stock (this run's and earlier ones)
    if count > 1 and not interrupted:  # every part is written: meet, then process 0 merges them
        calls = next(_BARRIERS)  # every process makes the same calls, so the names agree
        barrier(f"jaxsim.run_many.{calls}.parts:{out.resolve()}")
        if process == 0:
            with _locked(out):
                merged, done_all, skipped_all = _merge_parts(out, read_manifest(out) or manifest, count, settings)
                merged["updated"] = _now()
                write_file(out / MANIFEST, _json_bytes(merged))
                write_cross_stock_table(out)  # stocks.csv of the whole run
            for i in range(count):
                with contextlib.suppress(OSError):
                    _part_path(out, i, count).unlink()
            with contextlib.suppress(OSError):
                (out / PARTS).rmdir()
            done, skipped = list(done_all), list(skipped_all)
            failed.update(
                {
                    s: v["error"]
                    for s, v in merged["stocks"].items()
                    if v.get("status") == "failed" and s in sources_of_all
                }
            )
        barrier(f"jaxsim.run_many.{calls}.merged:{out.resolve()}")
    order = [s for s, _ in everyone]
    return RunReport(
        out,
        tuple(s for s in order if s in done),
        tuple(s for s in order if s in skipped),
        {s: failed[s] for s in order if s in failed},
        interrupted,
    )
