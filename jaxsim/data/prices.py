"""Daily OHLC(V) prices: the `Prices` container, loading, validation, cleaning, history checks.

This is the imperative shell in front of every backtest: files and pandas frames come in, one small
frozen container of float32 numpy arrays goes out. Nothing here touches JAX.

Rules (README "Price data"):

* Columns are matched case- and punctuation-insensitively (``Open``/``open``/``OPEN``,
  ``Date``/``date``/``timestamp``, ``Adj. Close``/``adj_close``); dates may also be the index.
* Rows are sorted ascending by date (newest-first files such as Quandl's WIKI-AAPL.csv are common);
  sorting is logged, not reported as a problem.
* Anything else that is wrong (missing columns, unparseable dates, non-numeric, NaN/inf, zero or
  negative prices, negative volume, High < Low, duplicate dates, no rows) raises
  :class:`~jaxsim.errors.PriceDataError` naming every problem with its rows (dates and file lines).
  Nothing is dropped or filled unless ``clean=True`` is passed; then every change is listed in a
  :class:`CleaningReport` attached to the result as ``Prices.cleaning``.
* Open or Close outside [Low, High] is a *warning*, not an error: vendors' adjusted series carry
  rounding-level violations, and the backtest only needs High >= Low. ``clean=True`` widens High/Low.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import pandas as pd

from jaxsim.data.table import (
    RESAMPLE_HINT,
    CleaningReport,
    DataProblem,
    clean_frame,
    find_problems,
    read_table,
    resample_daily,
    resample_rule,
    row_labels,
    to_canonical,
)
from jaxsim.errors import ConfigError, InsufficientHistoryError, PriceDataError
from jaxsim.layout import RESIDUAL_COLUMNS, TABLE_COLUMNS

__all__ = [
    "Prices",
    "price_table",
    "PriceSummary",
    "CleaningReport",
    "DataProblem",
    "load_prices",
    "describe_prices",
    "required_rows",
    "check_history",
    "sample",
    "available_samples",
    "sample_dir",
    "as_prices",
    "frame_symbol",
]

log = logging.getLogger(__name__)

_PRICE_FIELDS = ("open", "high", "low", "close")

# Walk-forward geometry (docs/backtest.md#walk-forward-geometry, #required-rows): simulation k ends at row T-2-k and
# forecasts 7 rolling origins; over N simulations the origins are t in [T-N-7, T-2], each with context r[1..t-1].
_ORIGINS = 7


def required_rows(n_sims: int, min_context: int = 1) -> int:
    """Number of daily rows a walk-forward backtest of ``n_sims`` simulations needs.

    Simulation k (k = 0..N-1) uses rows 0..T-2-k and forecasts at 7 rolling origins, so all N
    simulations together forecast at origins t in [T-N-7, T-2]. Origin t's context is the returns
    r[1..t-1] (t-1 values). Asking the earliest origin for at least ``min_context`` returns gives

    .. math:: T \\ge N + 8 + \\text{min\\_context}.

    Args:
      n_sims: number of simulations N (>= 1).
      min_context: fewest context returns the earliest origin may see (>= 1).

    Returns:
      The minimal row count T.
    """
    if int(n_sims) < 1 or int(min_context) < 1:
        raise ConfigError(f"n_sims and min_context must be >= 1; got n_sims={n_sims}, min_context={min_context}")
    return int(n_sims) + _ORIGINS + 1 + int(min_context)


def check_history(prices: Prices, n_sims: int, min_context: int = 1) -> None:
    """Raise if ``prices`` is too short for ``n_sims`` simulations (see :func:`required_rows`).

    Args:
      prices: the loaded series.
      n_sims: number of simulations N.
      min_context: fewest context returns the earliest forecast origin may see.

    Raises:
      InsufficientHistoryError: with the required and the available row counts in the message.
    """
    need = required_rows(n_sims, min_context)
    have = len(prices)
    if have < need:
        span = f" ({prices.dates[0]} .. {prices.dates[-1]})" if have else ""
        raise InsufficientHistoryError(
            f"{prices.symbol}: {n_sims} simulations with at least {min_context} context return(s) need "
            f"{need} rows (N + 8 + min_context), but only {have} rows are available{span}"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Prices:
    """One symbol's daily OHLC(V) series as float32 numpy arrays, checked on construction.

    Construct it with :func:`load_prices` or :func:`jaxsim.sample`; building one by hand runs the
    same checks, so an instance always satisfies: 1-D arrays of one length T >= 1, dates strictly
    ascending (hence unique), prices finite and > 0, High >= Low, volume finite and >= 0. Arrays are
    copied to the canonical dtypes and made read-only.

    Attributes:
      symbol: ticker or name, e.g. ``"AAPL"``.
      dates: ``datetime64[D]``, shape ``(T,)``, ascending.
      open, high, low, close: float32, shape ``(T,)``.
      volume: float32, shape ``(T,)``, or ``None`` when the source has no volume.
      cleaning: what ``clean=True`` changed, or ``None`` when nothing was cleaned.
      residuals: float32, shape ``(T, 4)``: ``x - float32(x)`` of the given open, high, low, close
        (columns in that order), so ``float64(x) ~ hi + lo`` to ~2^-48 relative; zeros for float32
        input. The engine computes MaxDiff's offsets from them as the original does in float64
        (docs/deviations.md#float64-offsets). Leave it None to compute it from the given arrays;
        derived series (slices, :meth:`tail`, ``dataclasses.replace``) pass it on, so replacing the
        price arrays needs ``residuals=`` for the new ones (or None).
    """

    symbol: str
    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None = None
    cleaning: CleaningReport | None = dataclasses.field(default=None, repr=False)
    residuals: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        def frozen(a, dtype):
            a = np.array(a, dtype=dtype, copy=True)
            a.flags.writeable = False
            return a

        if not isinstance(self.symbol, str) or not self.symbol:
            raise PriceDataError(f"symbol must be a non-empty string; got {self.symbol!r}")
        try:
            dates = frozen(self.dates, "datetime64[D]")
        except (ValueError, TypeError) as e:
            raise PriceDataError(f"{self.symbol}: dates cannot be read as datetime64[D]: {e}") from None
        object.__setattr__(self, "dates", dates)
        given = {name: getattr(self, name) for name in _PRICE_FIELDS}
        for name in _PRICE_FIELDS + (("volume",) if self.volume is not None else ()):
            try:
                object.__setattr__(self, name, frozen(getattr(self, name), np.float32))
            except (ValueError, TypeError) as e:
                raise PriceDataError(f"{self.symbol}: {name} is not numeric: {e}") from None
        if self.residuals is None:
            with np.errstate(invalid="ignore", over="ignore"):  # non-finite prices are reported below
                lo = [np.asarray(given[f], np.float64) - getattr(self, f).astype(np.float64) for f in _PRICE_FIELDS]
            one_length = lo[0].ndim == 1 and len({x.shape for x in lo}) == 1
            residuals = np.stack(lo, axis=-1) if one_length else np.zeros((0, len(lo)))  # bad shapes: reported below
        else:
            residuals = self.residuals
        try:
            object.__setattr__(self, "residuals", frozen(residuals, np.float32))
        except (ValueError, TypeError) as e:
            raise PriceDataError(f"{self.symbol}: residuals are not numeric: {e}") from None
        self._validate()

    def _validate(self):
        fields = ("dates",) + _PRICE_FIELDS + (("volume",) if self.volume is not None else ())
        shapes = {f: getattr(self, f).shape for f in fields}
        if any(len(s) != 1 for s in shapes.values()) or len(set(shapes.values())) != 1:
            raise PriceDataError(f"{self.symbol}: fields must be 1-D arrays of one length; got shapes {shapes}")
        if self.residuals.shape != (len(self.dates), len(_PRICE_FIELDS)):
            raise PriceDataError(
                f"{self.symbol}: residuals must have shape ({len(self.dates)}, {len(_PRICE_FIELDS)}) "
                f"(open, high, low, close); got {self.residuals.shape} (slice with prices[a:b], "
                f"or pass residuals= or None when replacing the price arrays)"
            )
        if len(self.dates) == 0:
            raise PriceDataError(f"{self.symbol}: no rows")
        labels = [str(d) for d in self.dates]
        bad = []

        def flag(mask, what):
            idx = np.flatnonzero(mask)
            if idx.size:
                bad.append(f"{what}: {row_labels(labels, idx)}")

        flag(np.isnat(self.dates), "missing dates")
        flag(np.r_[False, self.dates[1:] <= self.dates[:-1]], "dates not strictly ascending (unsorted or duplicate)")
        for name in _PRICE_FIELDS:
            x = getattr(self, name)
            flag(~np.isfinite(x), f"{name} is NaN or infinite")
            flag(np.isfinite(x) & (x <= 0), f"{name} is zero or negative")
        flag(self.high < self.low, "high below low")
        if self.volume is not None:
            flag(~np.isfinite(self.volume), "volume is NaN or infinite")
            flag(self.volume < 0, "volume is negative")
        if bad:
            raise PriceDataError(f"{self.symbol}: invalid prices: " + "; ".join(bad))

    def __len__(self) -> int:
        return int(self.dates.shape[0])

    def __getitem__(self, index: slice) -> Prices:
        """Rows ``index`` (a slice, e.g. ``prices[-500:]``) as a new ``Prices``."""
        if not isinstance(index, slice):
            raise TypeError("Prices supports slicing only, e.g. prices[-500:]")
        vol = None if self.volume is None else self.volume[index]
        return Prices(
            self.symbol,
            self.dates[index],
            self.open[index],
            self.high[index],
            self.low[index],
            self.close[index],
            vol,
            residuals=self.residuals[index],
        )

    def tail(self, n: int) -> Prices:
        """The last ``n`` rows (all rows when ``n >= len(self)``)."""
        if n < 1:
            raise ConfigError(f"tail(n) needs n >= 1; got {n}")
        return self[-n:]

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with a ``DatetimeIndex`` named ``Date`` and columns Open/High/Low/Close[/Volume].

        The columns are the float32 values: loading the frame again gives zero :attr:`residuals`;
        ``attrs["symbol"]`` is :attr:`symbol`."""
        cols = {"Open": self.open, "High": self.high, "Low": self.low, "Close": self.close}
        if self.volume is not None:
            cols["Volume"] = self.volume
        frame = pd.DataFrame(cols, index=pd.DatetimeIndex(self.dates.astype("datetime64[ns]"), name="Date"))
        frame.attrs["symbol"] = self.symbol  # loading the frame again keeps the name (and the draws)
        return frame

    def __repr__(self) -> str:
        vol = "" if self.volume is None else " +volume"
        return f"Prices({self.symbol!r}, {len(self)} rows, {self.dates[0]} .. {self.dates[-1]}{vol})"


def price_table(prices: Prices) -> np.ndarray:
    """The ``(T, 8)`` float32 table the backtest program runs on (:data:`jaxsim.layout.TABLE_COLUMNS`):
    open, high, low, close, volume (0 when absent), then the :attr:`Prices.residuals` of high, low and
    close (docs/deviations.md#float64-offsets)."""
    volume = prices.volume if prices.volume is not None else np.zeros_like(prices.close)
    columns = {"open": prices.open, "high": prices.high, "low": prices.low, "close": prices.close, "volume": volume}
    residual = dict(zip(_PRICE_FIELDS, prices.residuals.T))
    columns.update({name: residual[name[:-3]] for name in RESIDUAL_COLUMNS})
    return np.stack([columns[c] for c in TABLE_COLUMNS], axis=1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class PriceSummary:
    """What :func:`describe_prices` found: a short summary plus every problem (``jaxsim data show``).

    Attributes:
      symbol: the symbol the data would load as.
      rows: number of data rows read (before any cleaning).
      first_date, last_date: date range of the parseable dates (``None`` when there are none).
      last_close: close on ``last_date`` (``None`` when unknown or not numeric).
      problems: every problem found, errors and warnings.
      order: ``"ascending"``, ``"descending"`` (e.g. Quandl WIKI files) or ``"unsorted"`` input
        order of the dates; ``load_prices`` sorts ascending in every case.
      prices: the loaded series when the data has no errors, else ``None``.
    """

    symbol: str
    rows: int
    first_date: np.datetime64 | None
    last_date: np.datetime64 | None
    last_close: float | None
    problems: tuple[DataProblem, ...]
    order: str
    prices: Prices | None

    @property
    def ok(self) -> bool:
        """True when ``load_prices`` would accept the data (warnings allowed)."""
        return not any(p.fatal for p in self.problems)


# column names (ignoring case and punctuation) that carry a frame's symbol
_SYMBOL_COLUMNS = ("symbol", "ticker")


def frame_symbol(frame: pd.DataFrame) -> str:
    """The name a DataFrame carries: ``frame.attrs["symbol"]``, else the one value of its ``symbol`` /
    ``ticker`` column, else a string ``frame.name``.

    The name picks the stock's PRNG key (so its draws) and its crypto rule, so a frame without one
    is refused rather than run under a made-up name (a CSV file gets its stem, and the same file read
    with ``pd.read_csv`` and ``symbol=`` its stem gives the same draws).

    Raises:
      PriceDataError: no name, or a symbol column with several values.
    """
    named = frame.attrs.get("symbol")
    if isinstance(named, str) and named.strip():
        return named.strip()
    for col in frame.columns:
        if re.sub(r"[^a-z0-9]", "", str(col).lower()) in _SYMBOL_COLUMNS:
            values = [str(v) for v in pd.unique(frame[col].dropna()) if str(v).strip()]
            if len(values) == 1:
                return values[0].strip()
            if len(values) > 1:
                shown = ", ".join(values[:3]) + (", ..." if len(values) > 3 else "")
                raise PriceDataError(
                    f"the frame's {col!r} column holds {len(values)} symbols ({shown}): pass one symbol's "
                    "rows (a dict name -> frame for several stocks)"
                )
    name = getattr(frame, "name", None)  # a column called "name" is a Series, not a name
    if isinstance(name, str) and name.strip():
        return name.strip()
    raise PriceDataError(
        "the DataFrame has no symbol: pass symbol='NAME' (a dict name -> frame for several stocks) or set "
        "df.attrs['symbol']; the name picks the stock's draws and its fee rule"
    )


def _symbol_for(source, symbol: str | None) -> str:
    if symbol:
        return str(symbol)
    if isinstance(source, pd.DataFrame):
        return frame_symbol(source)
    if isinstance(source, (str, os.PathLike)):
        name = Path(source).name
        for suffix in (".csv.gz", ".csv", ".parquet", ".pq"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        return name.upper()
    return "UNKNOWN"


def _build(canon: pd.DataFrame, symbol: str, report: CleaningReport | None) -> Prices:
    canon = canon.sort_values("date", kind="stable")
    vol = canon["volume"].to_numpy(np.float64) if "volume" in canon else None
    return Prices(
        symbol,
        canon["date"].to_numpy("datetime64[D]"),
        *(canon[f].to_numpy(np.float64) for f in _PRICE_FIELDS),
        volume=vol,
        cleaning=report,
    )


def _canonical(source, symbol: str, adjusted: bool, clean: bool, resample):
    """The checked canonical frame (daily when ``resample``), its problems, the cleaning report and the
    number of rows read."""
    rule = resample_rule(resample)
    table, line_offset = read_table(source)
    canon = to_canonical(table, symbol=symbol, adjusted=adjusted, line_offset=line_offset)
    rows = len(canon)
    by = "stamp" if rule else "date"  # resampling: intraday bars are expected, one row per timestamp
    report = None
    if clean:
        canon, report = clean_frame(canon, by=by, symbol=symbol)
    problems = find_problems(canon, by=by)
    if rule and not any(p.fatal for p in problems):
        canon = resample_daily(canon)
        problems += [p for p in find_problems(canon) if p.fatal]  # none expected; never silently passed
    return canon, problems, report, rows


def load_prices(
    source, *, symbol: str | None = None, adjusted: bool = False, clean: bool = False, resample: str | None = None
) -> Prices:
    """Load one symbol's daily OHLC(V) from a file or a DataFrame, strictly validated.

    Reads ``.csv``, ``.csv.gz`` or ``.parquet`` files, or takes a DataFrame (dates in a column or
    the index). Column names are matched ignoring case and punctuation: Open/open/OPEN,
    Date/date/timestamp (or a DatetimeIndex), Volume optional. Rows are sorted ascending by date.

    Args:
      source: a path (``str`` or ``PathLike``) or a ``pandas.DataFrame``; the frame is not modified.
      symbol: name for the series; defaults to the file stem upper-cased, or for a frame to the name
        it carries (:func:`frame_symbol`: ``df.attrs["symbol"]``, a one-valued ``symbol`` column or
        ``df.name``; a frame without one is refused).
      adjusted: use split/dividend-adjusted prices: the ``Adj. Open/High/Low/Close[/Volume]``
        columns when present (Quandl WIKI layout), else scale Open/High/Low/Close by
        ``Adj Close / Close`` (Yahoo layout; volume stays raw). Default: raw prices, as the original
        backtester used.
      clean: repair instead of rejecting: drop rows with unparseable dates or non-numeric, missing,
        infinite or non-positive prices (or negative volume), drop duplicate dates keeping the last,
        swap High/Low where High < Low, widen High/Low to contain Open/Close. The changes are logged
        and attached as ``Prices.cleaning``. Intraday bars are never cleaned into daily ones (an error
        points to ``resample``); with ``resample`` cleaning applies to the bars before they are
        aggregated (duplicate timestamps, not dates, are dropped).
      resample: ``"1D"``: aggregate bars finer than a day (hourly, 5-minute, ...) to daily bars, by
        the calendar date of each bar's timestamp in its own time zone: Open of the day's first bar,
        High the maximum, Low the minimum, Close of the last bar, Volume the sum (README "Intraday
        data"). Daily data passes unchanged. Default None: several bars on one date are an error
        naming them as intraday bars.

    Returns:
      A validated :class:`Prices`.

    Raises:
      PriceDataError: naming every problem and its rows (first few dates/lines plus a count).
      FileNotFoundError: when the path does not exist.
    """
    symbol = _symbol_for(source, symbol)
    canon, problems, report, _ = _canonical(source, symbol, adjusted, clean, resample)
    if report is not None and report.changes:
        log.warning("%s: cleaning changed the data:\n%s", symbol, report)
    errors = [p for p in problems if p.fatal]
    if errors:
        repairable = [p for p in errors if p.kind != "intraday_bars"]  # cleaning never makes daily bars
        hint = (
            ""
            if clean or not repairable
            else (
                " (to repair what can be repaired: `jaxsim data clean IN OUT` writes a cleaned file, "
                "`jaxsim backtest --clean` cleans in memory, load_prices(..., clean=True))"
            )
        )
        if len(repairable) < len(errors):
            hint += f" ({RESAMPLE_HINT})"
        raise PriceDataError(f"{symbol}: " + "; ".join(str(p) for p in errors) + hint)
    for p in problems:
        log.warning("%s: %s", symbol, p)
    if not canon["date"].is_monotonic_increasing:
        log.info("%s: dates were not ascending; rows sorted by date", symbol)
    return _build(canon, symbol, report)


def describe_prices(
    source, *, symbol: str | None = None, adjusted: bool = False, clean: bool = False, resample: str | None = None
) -> PriceSummary:
    """Summarise a price source and list every problem without raising on bad rows.

    Same arguments as :func:`load_prices`. Structural errors (unreadable file, missing columns)
    still raise :class:`~jaxsim.errors.PriceDataError`, and so does cleaning intraday bars without
    ``resample``.
    """
    symbol = _symbol_for(source, symbol)
    canon, problems, report, rows = _canonical(source, symbol, adjusted, clean, resample)
    problems = tuple(problems)
    dates = pd.to_datetime(canon["date"], errors="coerce").dropna()
    first = last = last_close = None
    if len(dates):
        first, last = (
            dates.min().to_datetime64().astype("datetime64[D]"),
            dates.max().to_datetime64().astype("datetime64[D]"),
        )
        close = pd.to_numeric(canon.loc[dates.idxmax(), "close"], errors="coerce")
        last_close = float(close) if np.ndim(close) == 0 and np.isfinite(close) else None
    order = (
        "ascending"
        if canon["date"].is_monotonic_increasing
        else "descending"
        if canon["date"].is_monotonic_decreasing
        else "unsorted"
    )
    prices = _build(canon, symbol, report) if not any(p.fatal for p in problems) else None
    return PriceSummary(symbol, rows, first, last, last_close, problems, order, prices)


def sample_dir():
    """The folder of the bundled samples (an ``importlib.resources`` Traversable: use
    ``importlib.resources.as_file`` on a file in it for a real path)."""
    return files("jaxsim.data") / "sample_data"


def available_samples() -> tuple[str, ...]:
    """Symbols of the bundled sample series, sorted (e.g. ``("AAPL", "GOOG", "IBM", "MSFT")``).

    The samples are real daily OHLCV from Quandl's public-domain WIKI prices as redistributed by
    the bokeh-sampledata package (see ``jaxsim/data/sample_data/PROVENANCE.md``).
    """
    return tuple(sorted(p.name[: -len(".csv.gz")] for p in sample_dir().iterdir() if p.name.endswith(".csv.gz")))


def sample(symbol: str = "AAPL", *, adjusted: bool = False) -> Prices:
    """A bundled sample series, loaded and validated like any file (works offline).

    Args:
      symbol: one of :func:`available_samples` (case-insensitive); default ``"AAPL"``
        (3,270 rows, 2000-03-01 .. 2013-03-01).
      adjusted: scale Open/High/Low/Close by the source's ``Adj Close / Close`` (split- and
        dividend-adjusted); default raw, split-unadjusted prices (AAPL's 2:1 split on
        2005-02-28 shows as a -50% day).

    Returns:
      The sample as :class:`Prices`.

    Raises:
      ConfigError: for an unknown symbol, listing the available ones.
    """
    sym = str(symbol).upper()
    names = available_samples()
    if sym not in names:
        raise ConfigError(f"no bundled sample {symbol!r}; available samples: {', '.join(names)}")
    with as_file(sample_dir() / f"{sym}.csv.gz") as path:
        return load_prices(path, symbol=sym, adjusted=adjusted)


def as_prices(
    source, *, symbol: str | None = None, adjusted: bool = False, clean: bool = False, resample: str | None = None
) -> Prices:
    """Whatever names a price series, as :class:`Prices`: what ``jaxsim.backtest`` accepts.

    Args:
      source: a :class:`Prices` (returned as is, renamed when ``symbol`` is given), a DataFrame, a
        path to a .csv/.csv.gz/.parquet file, or the name of a bundled sample (``"AAPL"``,
        case-insensitive; an existing file of that name wins).
      symbol, adjusted, clean, resample: as in :func:`load_prices` (``adjusted``/``clean``/``resample``
        do not apply to a ``Prices``, which is already validated daily data).

    Raises:
      PriceDataError: invalid data, or a folder given as a file; FileNotFoundError: a path that is
      neither a file nor a sample name; ConfigError: ``adjusted=True`` with a ``Prices``.
    """
    if isinstance(source, Prices):
        if adjusted:
            raise ConfigError("adjusted=True needs the raw file or frame; a Prices is already loaded")
        resample_rule(resample)  # a bad value is an error whatever the source
        if symbol and symbol != source.symbol:
            return Prices(
                str(symbol),
                source.dates,
                source.open,
                source.high,
                source.low,
                source.close,
                source.volume,
                source.cleaning,
                residuals=source.residuals,  # the float64 offsets of the given prices stay
            )
        return source
    if isinstance(source, pd.DataFrame):
        return load_prices(source, symbol=symbol, adjusted=adjusted, clean=clean, resample=resample)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise PriceDataError(f"{path} is a folder, not a price file (give one .csv/.csv.gz/.parquet file)")
        if path.exists():
            return load_prices(path, symbol=symbol, adjusted=adjusted, clean=clean, resample=resample)
        name = str(source).upper()
        if isinstance(source, str) and name in available_samples():
            with as_file(sample_dir() / f"{name}.csv.gz") as p:
                return load_prices(p, symbol=symbol or name, adjusted=adjusted, clean=clean, resample=resample)
        raise FileNotFoundError(
            f"{source!r} is neither a price file nor a bundled sample ({', '.join(available_samples())})"
        )
    raise PriceDataError(
        f"cannot read prices from a {type(source).__name__}; give a Prices, a DataFrame, a file "
        "path or a bundled sample name"
    )
