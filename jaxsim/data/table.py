"""Raw price tables: reading files, matching column spellings, finding problems, explicit cleaning.

Private helpers behind :mod:`jaxsim.data.prices`. The "canonical frame" they pass around has one row per
input row, in input order, with columns ``date`` (datetime64 day, NaT when missing or unparseable),
``stamp`` (the full timestamp in its own time zone's wall time: intraday bars differ only there),
``open, high, low, close[, volume]`` (float64, NaN when missing or non-numeric), the masks
``bad_<field>`` (a value was present but not a number / not a date) and ``label`` (how error
messages name the row: its date and its file line or frame position).
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from jaxsim.errors import ConfigError, PriceDataError

__all__ = [
    "PRICE_FIELDS",
    "row_labels",
    "DataProblem",
    "CleaningReport",
    "read_table",
    "to_canonical",
    "find_problems",
    "clean_frame",
    "intraday_rows",
    "RESAMPLE_RULES",
    "RESAMPLE_HINT",
    "resample_rule",
    "resample_daily",
]

PRICE_FIELDS = ("open", "high", "low", "close")
RESAMPLE_RULES = ("1D",)  # bars finer than a day aggregate to daily bars; other frequencies are not supported
RESAMPLE_HINT = "aggregate them to daily bars with load_prices(..., resample='1D') or `--resample 1D`"
_SHOW = 5  # rows named in a message before "..."

# Normalised spelling (lower case, letters and digits only) -> canonical name.
_ALIASES = {
    "date": "date",
    "dates": "date",
    "timestamp": "date",
    "timestamps": "date",
    "time": "date",
    "datetime": "date",
    "day": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "vol": "volume",
    "adjopen": "adj_open",
    "adjustedopen": "adj_open",
    "adjhigh": "adj_high",
    "adjustedhigh": "adj_high",
    "adjlow": "adj_low",
    "adjustedlow": "adj_low",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "adjvolume": "adj_volume",
    "adjustedvolume": "adj_volume",
}
_SPELLINGS = "Date/date/timestamp (or a DatetimeIndex), Open/open/OPEN, High, Low, Close, optional Volume"


def row_labels(labels, idx) -> str:
    """``"3 rows: a, b, c"`` naming the first few rows of ``idx`` and the total count."""
    idx = list(idx)
    shown = ", ".join(str(labels[i]) for i in idx[:_SHOW])
    more = ", ..." if len(idx) > _SHOW else ""
    return f"{len(idx)} row{'s' if len(idx) != 1 else ''}: {shown}{more}"


@dataclasses.dataclass(frozen=True)
class DataProblem:
    """One kind of problem in a price table and every row that has it.

    Attributes:
      kind: short machine name, e.g. ``"high_below_low"``.
      message: what is wrong, e.g. ``"High below Low"``.
      rows: labels of all offending rows (date and file line or frame row).
      fatal: ``True`` for errors ``load_prices`` rejects, ``False`` for warnings.
    """

    kind: str
    message: str
    rows: tuple[str, ...]
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.message} in {row_labels(self.rows, range(len(self.rows)))}"


@dataclasses.dataclass(frozen=True)
class CleaningReport:
    """Every change ``clean=True`` made, in the order made.

    Attributes:
      rows_in: rows before cleaning.
      rows_out: rows after cleaning.
      changes: ``(action, row labels)`` pairs, e.g. ``("dropped: close is NaN", ("2020-01-03 (line 4)",))``.
    """

    rows_in: int
    rows_out: int
    changes: tuple[tuple[str, tuple[str, ...]], ...]

    def __str__(self) -> str:
        if not self.changes:
            return f"cleaning: no changes ({self.rows_in} rows)"
        lines = [f"cleaning: {self.rows_in} rows in, {self.rows_out} rows out"]
        lines += [f"- {action} in {row_labels(rows, range(len(rows)))}" for action, rows in self.changes]
        return "\n".join(lines)


def read_table(source) -> tuple[pd.DataFrame, int | None]:
    """Read ``source`` as strings (a path) or take it as is (a DataFrame).

    Returns the frame and the file line of its first data row (``None`` for a DataFrame).
    """
    if isinstance(source, pd.DataFrame):
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise PriceDataError(f"price source must be a file path or a pandas DataFrame; got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"price file not found: {path}")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            return pd.read_parquet(path), None
        except ImportError as e:
            raise PriceDataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow): {e}") from None
    if not name.endswith((".csv", ".csv.gz", ".txt")):
        raise PriceDataError(f"{path}: unsupported file type; use .csv, .csv.gz or .parquet")
    try:
        # Strings in, so that non-numeric cells are reported instead of silently becoming NaN.
        return pd.read_csv(path, dtype=str), 2  # line 1 is the header
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise PriceDataError(f"{path}: not a readable CSV: {e}") from None


def _match_columns(frame: pd.DataFrame, symbol: str) -> dict[str, object]:
    found: dict[str, list[object]] = {}
    for col in frame.columns:
        key = _ALIASES.get(re.sub(r"[^a-z0-9]", "", str(col).lower()))
        if key:
            found.setdefault(key, []).append(col)
    clash = {k: v for k, v in found.items() if len(v) > 1}
    if clash:
        raise PriceDataError(f"{symbol}: ambiguous columns, several spellings of one field: {clash}")
    return {k: v[0] for k, v in found.items()}


def _numeric(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a mask of cells that were present but not numbers."""
    raw = values.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(raw):
        return np.full(len(raw), np.nan), np.ones(len(raw), bool)
    num = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = num.isna().to_numpy() & raw.notna().to_numpy()
    return num.to_numpy(np.float64), bad


def _local_date(value):
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        return pd.NaT
    return t.tz_localize(None) if t.tzinfo is not None else t


def _parse_dates(raw: pd.Series) -> pd.Series:
    """datetime64 dates, NaT where unparseable; time zones dropped keeping the local calendar date."""
    with warnings.catch_warnings():  # "could not infer format": bad cells are reported as problems
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)  # pandas 2: mixed offsets (handled below)
        try:
            dates = pd.to_datetime(raw, errors="coerce")
        except (ValueError, TypeError):  # mixed UTC offsets (e.g. -05:00 and -04:00 across DST)
            dates = pd.Series([_local_date(v) for v in raw], dtype="datetime64[ns]")
    if not pd.api.types.is_datetime64_any_dtype(dates):
        dates = pd.Series([_local_date(v) for v in raw], dtype="datetime64[ns]")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)  # keep the exchange's local calendar date
    return dates.reset_index(drop=True)


def to_canonical(frame: pd.DataFrame, *, symbol: str, adjusted: bool, line_offset: int | None) -> pd.DataFrame:
    """Map ``frame``'s columns to the canonical frame (see module docstring); input is not modified."""
    cols = _match_columns(frame, symbol)
    if "date" in cols:
        raw_dates = frame[cols["date"]].reset_index(drop=True)
    elif (
        isinstance(frame.index, pd.DatetimeIndex)
        or _ALIASES.get(re.sub(r"[^a-z0-9]", "", str(frame.index.name).lower())) == "date"
    ):
        raw_dates = pd.Series(frame.index, dtype=object if not isinstance(frame.index, pd.DatetimeIndex) else None)
    else:
        raw_dates = None
    need = [f for f in PRICE_FIELDS if f not in cols]
    if need or raw_dates is None:
        missing = need + ([] if raw_dates is not None else ["date"])
        raise PriceDataError(
            f"{symbol}: missing column(s) {', '.join(missing)}; found columns {[str(c) for c in frame.columns]}"
            f" (index {type(frame.index).__name__}); accepted: {_SPELLINGS}"
        )

    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    dates = _parse_dates(raw_dates)
    out["date"] = dates.dt.floor("D").astype("datetime64[s]")
    out["stamp"] = dates.astype("datetime64[s]")
    out["bad_date"] = dates.isna().to_numpy() & raw_dates.notna().to_numpy()

    src = dict(cols)
    if adjusted:
        if all(f"adj_{f}" in cols for f in PRICE_FIELDS):
            src.update({f: cols[f"adj_{f}"] for f in PRICE_FIELDS})
            if "adj_volume" in cols:
                src["volume"] = cols["adj_volume"]
        elif "adj_close" not in cols:
            raise PriceDataError(
                f"{symbol}: adjusted=True needs adjusted columns (Adj. Open/High/Low/Close or Adj Close); "
                f"found {[str(c) for c in frame.columns]}"
            )
    for f in PRICE_FIELDS + (("volume",) if "volume" in src else ()):
        out[f], out[f"bad_{f}"] = _numeric(frame[src[f]])
    if adjusted and src["close"] == cols["close"]:
        # Yahoo layout: only Adj Close; scale O/H/L/C by the day's adjustment factor (volume stays raw).
        adj_close, bad_adj = _numeric(frame[cols["adj_close"]])
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = adj_close / out["close"].to_numpy()
        for f in PRICE_FIELDS:
            out[f] = out[f].to_numpy() * factor
            out[f"bad_{f}"] = out[f"bad_{f}"].to_numpy() | bad_adj

    where = (
        [f"line {i + line_offset}" for i in range(len(frame))]
        if line_offset is not None
        else [f"row {i}" for i in range(len(frame))]
    )
    # intraday rows are named by their time as well, so that a day's bars can be told apart
    date_text = (
        out["stamp"].dt.strftime("%Y-%m-%d %H:%M") if intraday_rows(out).any() else out["date"].dt.strftime("%Y-%m-%d")
    )
    out["label"] = [
        f"{d} ({w})" if isinstance(d, str) else f"{w} (date {r!r})" for d, w, r in zip(date_text, where, raw_dates)
    ]
    return out


def intraday_rows(canon: pd.DataFrame) -> np.ndarray:
    """Rows whose date holds several bars at different times of day: bars finer than a day."""
    known = canon["date"].notna() & canon["stamp"].notna()
    times = canon.loc[known].groupby("date")["stamp"].transform("nunique")
    mask = np.zeros(len(canon), bool)
    mask[np.flatnonzero(known.to_numpy())] = times.to_numpy() > 1
    return mask


def _masks(canon: pd.DataFrame, by: str = "date"):
    """(kind, message, mask, fatal) for every row check, in reporting order.

    ``by``: ``"date"`` (daily bars: one row per date, several bars on a date are intraday bars) or
    ``"stamp"`` (bars at their own times, before :func:`resample_daily`: one row per timestamp)."""
    c = {f: canon[f].to_numpy() for f in PRICE_FIELDS}
    fields = PRICE_FIELDS + (("volume",) if "volume" in canon else ())
    yield "bad_date", "unparseable date", canon["bad_date"].to_numpy(), True
    yield "missing_date", "missing date", canon["date"].isna().to_numpy() & ~canon["bad_date"].to_numpy(), True
    for f in fields:
        x, bad = canon[f].to_numpy(), canon[f"bad_{f}"].to_numpy()
        yield f"non_numeric_{f}", f"non-numeric {f}", bad, True
        yield f"missing_{f}", f"missing (NaN) {f}", np.isnan(x) & ~bad, True
        yield f"infinite_{f}", f"infinite {f}", np.isinf(x), True
        if f == "volume":
            yield "negative_volume", "negative volume", x < 0, True
        else:
            yield f"non_positive_{f}", f"zero or negative {f}", x <= 0, True
    yield "high_below_low", "High below Low", c["high"] < c["low"], True
    if by == "stamp":
        dup = canon["stamp"].duplicated(keep=False).to_numpy() & canon["stamp"].notna().to_numpy()
        yield "duplicate_date", "duplicate timestamp", dup, True
    else:
        intraday = intraday_rows(canon)
        dup = canon["date"].duplicated(keep=False).to_numpy() & canon["date"].notna().to_numpy() & ~intraday
        yield "intraday_bars", "intraday bars (several per date at different times)", intraday, True
        yield "duplicate_date", "duplicate date", dup, True
    # Only rows whose four prices are otherwise valid, so one bad cell is not reported twice.
    valid = np.all([np.isfinite(x) & (x > 0) for x in c.values()], axis=0) & (c["high"] >= c["low"])
    for f in ("open", "close"):
        outside = valid & ((c[f] > c["high"]) | (c[f] < c["low"]))
        yield f"{f}_outside_range", f"{f.capitalize()} outside [Low, High]", outside, False


def find_problems(canon: pd.DataFrame, by: str = "date") -> list[DataProblem]:
    """Every problem in the canonical frame (errors first in reporting order, then warnings); ``by`` as
    :func:`_masks` (``"stamp"``: intraday bars are expected, only repeated timestamps are duplicates)."""
    if len(canon) == 0:
        return [DataProblem("empty", "no data rows", (), True)]
    labels = canon["label"].to_numpy()
    probs = [DataProblem(kind, msg, tuple(labels[m]), fatal) for kind, msg, m, fatal in _masks(canon, by) if m.any()]
    return sorted(probs, key=lambda p: not p.fatal)


def clean_frame(canon: pd.DataFrame, by: str = "date", symbol: str = "") -> tuple[pd.DataFrame, CleaningReport]:
    """Repair what can be repaired and list every change (see ``load_prices(clean=True)``).

    Drops rows with bad/missing dates or bad/missing/infinite/non-positive prices or bad volume,
    drops duplicate dates (``by="stamp"``: duplicate timestamps) keeping the last occurrence in
    input order, swaps High/Low where High < Low, and widens High/Low to contain Open and Close.

    Raises:
      PriceDataError: ``by="date"`` and the frame holds intraday bars: keeping one bar per date would
        make wrong daily bars (a day's High and Low would be one hour's), so they are never dropped;
        :func:`resample_daily` aggregates them.
    """
    intraday = intraday_rows(canon)
    if by == "date" and intraday.any():
        days = canon.loc[intraday, "date"].nunique()
        raise PriceDataError(
            f"{symbol + ': ' if symbol else ''}intraday bars ({days} dates hold several bars at different "
            f"times, e.g. {row_labels(canon['label'].to_numpy(), np.flatnonzero(intraday)[:3])}); cleaning would "
            f"keep one bar per date and make wrong daily bars, so it refuses: {RESAMPLE_HINT}"
        )
    rows_in = len(canon)
    canon = canon.copy()
    changes = []
    labels = canon["label"].to_numpy()
    dropped = np.zeros(rows_in, bool)
    for kind, msg, mask, fatal in list(_masks(canon, by)):
        new = mask & ~dropped  # a row is reported under its first problem only
        if fatal and kind not in ("high_below_low", "duplicate_date") and new.any():
            changes.append((f"dropped rows: {msg}", tuple(labels[new])))
            dropped |= new
    canon = canon[~dropped].reset_index(drop=True)
    dup = canon[by].duplicated(keep="last").to_numpy()
    if dup.any():
        what = "timestamp" if by == "stamp" else "date"
        changes.append(
            (f"dropped rows: duplicate {what} (kept the last occurrence)", tuple(canon["label"].to_numpy()[dup]))
        )
        canon = canon[~dup].reset_index(drop=True)
    swap = (canon["high"] < canon["low"]).to_numpy()
    if swap.any():
        changes.append(("swapped High and Low: High below Low", tuple(canon["label"].to_numpy()[swap])))
        canon.loc[swap, ["high", "low"]] = canon.loc[swap, ["low", "high"]].to_numpy()
    hi = canon[["high", "open", "close"]].max(axis=1)
    lo = canon[["low", "open", "close"]].min(axis=1)
    widen = ((hi > canon["high"]) | (lo < canon["low"])).to_numpy()
    if widen.any():
        changes.append(("widened High/Low to contain Open/Close", tuple(canon["label"].to_numpy()[widen])))
        canon["high"], canon["low"] = hi, lo
    return canon, CleaningReport(rows_in, len(canon), tuple(changes))


def resample_rule(resample) -> str | None:
    """``resample`` checked: None, or ``"1D"`` (``"D"``, ``"1d"`` accepted)."""
    if resample is None:
        return None
    rule = str(resample).strip().upper()
    rule = "1D" if rule == "D" else rule
    if rule not in RESAMPLE_RULES:
        raise ConfigError(f"resample must be '1D' (daily bars from intraday ones) or None; got {resample!r}")
    return rule


def resample_daily(canon: pd.DataFrame) -> pd.DataFrame:
    """Aggregate valid bars (any frequency) to one bar per calendar date.

    Each date's bars, in time order: Open of the first, High the maximum, Low the minimum, Close of the
    last, Volume the sum. The date is the calendar date of each bar's timestamp in its own time zone
    (a ``-05:00`` or ``America/New_York`` stamp counts in New York's day, a naive or UTC one as
    written), i.e. bars stamped by their start time fall in their exchange day. Daily bars pass
    unchanged. Rows must already be valid (:func:`find_problems` with ``by="stamp"``).
    """
    frame = canon.sort_values(["date", "stamp"], kind="stable")
    grouped = frame.groupby("date", sort=True)
    how = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    daily = grouped.agg({f: how[f] for f in how if f in frame}).reset_index()
    bars = grouped.size().to_numpy()
    daily["stamp"] = daily["date"]
    daily["bad_date"] = False
    for f in PRICE_FIELDS + (("volume",) if "volume" in frame else ()):
        daily[f"bad_{f}"] = False
    text = daily["date"].dt.strftime("%Y-%m-%d")
    daily["label"] = [f"{d} ({n} bar{'s' if n != 1 else ''})" for d, n in zip(text, bars)]
    return daily
