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
compiles nothing new. Without ``max_context`` every distinct history length is its own group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxsim import __version__
from jaxsim.config import BacktestConfig, resolve_config
from jaxsim.data.prices import Prices, load_prices
from jaxsim.engine import api  # called as api.backtest_many: a replaced one is seen
from jaxsim.engine.atomic import write_file, write_folder
from jaxsim.engine.cross_stock import write_cross_stock_table
from jaxsim.engine.api import stock_key
from jaxsim.errors import ConfigError, JaxsimError
from jaxsim.forecast.grid import ForecastGrid, trim_start
from jaxsim.sim.simulation import PRICE_WINDOW, is_crypto

__all__ = ["RunReport", "run_many", "stock_key", "is_complete", "read_manifest", "MANIFEST", "DONE"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DONE = "done.json"
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
        raise ConfigError(f"{final} exists but is not a complete stock folder (no valid {DONE}); "
                          "it is left untouched: move it away to recompute this stock")
    files = result.files(plot=plots)
    files[DONE] = _json_bytes({"symbol": symbol, "files": {
        n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()}})
    return write_folder(final, files)


@contextlib.contextmanager
def _locked(out: Path):
    """An advisory lock on ``out/.lock`` (released when the process ends, even when killed)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows): no lock
        yield
        return
    with open(out / ".lock", "a+") as f:
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
    raise ConfigError(f"run_many: cannot name a source of type {type(source).__name__}; pass a mapping "
                      "symbol -> source")


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
    leaves = jax.tree.leaves(getattr(forecaster, "params", None))
    if not leaves:
        return None
    h = hashlib.sha256()
    for leaf in leaves:
        a = np.asarray(leaf)
        h.update(str((a.shape, a.dtype)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _settings(forecaster, key, **options) -> dict:
    """What must match for a resumed run to be the same run (JSON-comparable)."""
    config = getattr(forecaster, "config", None)
    fn = getattr(forecaster, "fn", None)
    return json.loads(json.dumps({
        "jaxsim": __version__,
        "forecaster": {"kind": forecaster.kind, "class": type(forecaster).__name__,
                       "num_samples": forecaster.draws_per_context(),
                       "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else repr(config),
                       "fn": None if fn is None else f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}",
                       "params_sha256": _params_digest(forecaster)},
        "key": np.asarray(jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
                          else key).tolist(),
        **options}, default=str))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


# ----------------------------------------------------------------------------------------------------
# The runner


def run_many(sources: Mapping[str, Any] | Sequence[Any], out_dir: str | os.PathLike, *, forecaster,
             config: BacktestConfig | None = None, chunk_size: int = 64, key=None, adjusted: bool = False,
             clean: bool = False, plots: bool = False, progress: bool = False,
             on_stock: Callable[[str, Path], None] | None = None, on_result: Callable | None = None,
             on_plan: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
             **settings) -> RunReport:
    """Backtest many stocks into ``out_dir``, chunked, atomically written and resumable.

    Each stock's outputs go to ``out_dir/<SYMBOL>/`` (see the module docstring). Calling it again with
    the same arguments skips the finished stocks and retries the failed ones.

    Args:
      sources: mapping symbol -> source, or a sequence of sources (file paths named by their stem,
        or :class:`~jaxsim.data.prices.Prices` named by their symbol). A source is a path, a DataFrame or
        a ``Prices``.
      out_dir: run folder (created when missing).
      forecaster: from :mod:`jaxsim.forecast.forecasters`.
      config: a :class:`jaxsim.config.BacktestConfig`; ``**settings`` are its fields as keywords
        (as in :func:`jaxsim.engine.api.backtest`; fee/spread scalars or None for the per-symbol
        rule). The stock key rule is always ``"symbol"`` here (``stock_key="index"`` is refused).
      chunk_size: stocks per compiled batch (rounded up to the device count); bounds memory.
      key: PRNG key of the run (default ``jax.random.key(config.seed)``); stock s uses :func:`stock_key`.
      adjusted, clean: passed to :func:`jaxsim.data.prices.load_prices` for path/DataFrame sources.
      plots: also write ``equity.png`` per stock (slower: ~0.3 s per stock); a tuple of plot kinds
        (``"equity"``, ``"fan"``, ``"bootstrap"``) writes one PNG each (:meth:`BacktestResult.files`).
      progress: a tqdm bar over stocks.
      on_stock: called as ``on_stock(symbol, folder)`` after each stock folder is in place (an
        exception from it stops the run; everything written so far stays).
      on_result: called as ``on_result(symbol, result)`` after each stock folder is in place.
      on_plan: called once with ``{(rows, crypto): [symbols]}``, the shape groups still to run (each
        compiles one program).
      should_stop: checked before every chunk; when it returns True the run stops there (manifest
        saved, ``RunReport.interrupted``) and a rerun resumes.

    Returns:
      :class:`RunReport`.

    Raises:
      ConfigError: bad options, duplicate symbols, ``out_dir`` holding a run with other settings, or
        another process writing to ``out_dir``.
    """
    config = resolve_config(config, settings)
    if config.stock_key == "index":
        raise ConfigError("run_many derives each stock's key from its symbol (stock_key='symbol'), so a resumed "
                          "run does not depend on its chunks; stock_key='index' is not supported here")
    if isinstance(config.fee, tuple) or isinstance(config.spread, tuple):
        raise ConfigError("run_many takes one fee and one spread (or None for the per-symbol rule), "
                          "not per-stock sequences")
    if int(chunk_size) < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    key = jax.random.key(config.seed) if key is None else key
    forecaster = api.with_config_samples(forecaster, config)
    entries = _entries(sources)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_sims, max_context = config.n_sims, config.max_context
    settings = _settings(forecaster, key, n_sims=n_sims, protocol=config.protocol,
                         targets=list(config.targets), num_samples=config.num_samples,
                         aggregate=config.aggregate, fee=config.fee, spread=config.spread, max_context=max_context,
                         optimizer=None if config.optimizer is None else repr(config.optimizer),
                         adjusted=bool(adjusted), clean=bool(clean),
                         **({"min_context": config.min_context} if config.n_sims == "all" else {}))
    with _locked(out):
        manifest = read_manifest(out)
        if manifest is not None and manifest.get("settings") != settings:
            old = manifest.get("settings") or {}
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ConfigError(f"{out} holds a run with other settings (differs in: {', '.join(diff)}); "
                              "use a new out_dir to keep both")
        manifest = manifest or {"format": FORMAT, "created": _now(), "settings": settings, "stocks": {}}
        for stale in out.glob(".*.tmp"):  # left by a process killed (or abandoned on Ctrl-C) mid-write
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    stale.unlink()
        stocks: dict = manifest["stocks"]

        def save_manifest():
            manifest["updated"] = _now()
            write_file(out / MANIFEST, _json_bytes(manifest))

        done, skipped, failed = [], [], {}

        def fail(symbol, e, stage):
            failed[symbol] = _error(e)
            stocks[symbol] = {"status": "failed", "stage": stage, "error": failed[symbol], "at": _now()}
            log.warning("%s failed (%s): %s", symbol, stage, failed[symbol])

        # Pass 1: skip finished stocks; load the others once for validation and their shape key.
        sources_of, groups = dict(entries), {}
        for symbol, source in entries:
            if is_complete(out / symbol):
                skipped.append(symbol)
                if stocks.get(symbol, {}).get("status") != "done":  # written, manifest not yet updated
                    stocks[symbol] = {"status": "done", "at": _now(), "recovered": True}
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

        bar = tqdm(total=sum(map(len, groups.values())), desc="stocks", leave=False, disable=not progress)
        def run_chunk(chunk, size):
            prices = {s: _load(s, sources_of[s], adjusted, clean) for s in chunk}
            return api.backtest_many(prices, forecaster, config, keys=[stock_key(key, s) for s in chunk],
                                     chunk_size=size, progress=False)

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
                    chunk = members[j:j + size]
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
                            stocks[s] = {"status": "done", "at": _now(), "n_sims": int(len(r)),
                                         "first_sim_date": str(r["date"].iloc[-1].date()),
                                         "last_sim_date": str(r["date"].iloc[0].date()),
                                         "best_strategy": result.best_strategy}
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
        write_cross_stock_table(out)  # stocks.csv: one row per finished stock (this run's and earlier ones)
    order = [s for s, _ in entries]
    return RunReport(out, tuple(s for s in order if s in done), tuple(skipped),
                     {s: failed[s] for s in order if s in failed}, interrupted)

