"""The HTML report of a backtest: one self-contained page per stock, an index page per multi-stock run.

A page is rendered by Jinja2 from the templates in ``jaxsim/report/templates`` and from the files of
a result (:meth:`jaxsim.report.result.BacktestResult.files`: ``metadata.json``, ``stats.csv``,
``uncertainty.json``, ``skill.csv``, ``trades.csv``, ...), never from a recomputation, so a live
result (:meth:`~jaxsim.report.result.BacktestResult.report`) and a saved folder (``jaxsim report
DIR``, :func:`folder_report`) give the same page. Figures are embedded as base64 PNG; the page loads
nothing from the network (no script, no remote URL) and prints on A4/Letter (``@media print``).

Sections of a stock page: header (stock, dates, protocol, forecaster, stock key, simulations),
verdict, statistics per strategy (units in the row labels), uncertainty (bootstrap intervals, PSR,
DSR, PBO), equity and drawdown, forecast fan chart and skill, the MaxDiff objective heatmap (needs
the prices the backtest ran on), trades, and the original's summary table. A section whose input
is missing (a folder written by an older jaxsim, a heatmap without prices) says so instead.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from jaxsim.atomic import write_file

__all__ = [
    "REPORT",
    "INDEX",
    "FIGURES",
    "report_html",
    "index_html",
    "read_folder",
    "folder_report",
    "write_folder_report",
    "flat_forecasts",
    "nested_forecasts",
]

REPORT = "report.html"
INDEX = "index.html"
# figure name -> (file the CLI may have written, section heading)
FIGURES = {"equity": "equity.png", "fan": "fan.png", "heatmap": "heatmap.png"}
MAX_TRADE_ROWS = 300  # the page shows the newest ones; trades.csv has them all
# the folder files a page reads (figures aside)
_INPUTS = (
    "metadata.json",
    "summary.csv",
    "stats.csv",
    "uncertainty.json",
    "skill.csv",
    "trades.csv",
    "daily.csv",
    "forecasts.csv",
    "records.csv",
)


@functools.cache
def _environment():
    import jinja2  # deferred: only pages need it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jaxsim.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    return env


def _num(value, digits: int = 4) -> str:
    """A table cell: numbers to ``digits`` significant digits, NaN as an en dash, the rest as text."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "–"
        if v == int(v) and abs(v) < 1e12:
            return f"{int(v):,}"
        return f"{v:,.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.{digits - 1}e}"
    text = str(value).strip()
    if text in ("nan", "NaN", "NaT", "None", ""):
        return "–"
    try:  # a number read back as text (a CSV column mixing dates and numbers)
        return _num(float(text), digits)
    except ValueError:
        pass
    return text.removesuffix(" 00:00:00")  # dates and day counts of whole days


def _table(frame: pd.DataFrame, index_name: str | None = None, digits: Mapping[str, int] | None = None) -> dict:
    """A frame as ``{"columns": [...], "rows": [[...], ...]}`` of display strings (index first);
    ``digits``: significant digits of some columns (default 4)."""
    columns = [index_name if index_name is not None else (frame.index.name or "")] + [str(c) for c in frame.columns]
    places = [(digits or {}).get(str(c), 4) for c in frame.columns]
    rows = [
        [_num(i)] + [_num(v, d) for v, d in zip(row, places)]
        for i, row in zip(frame.index, frame.itertuples(index=False))
    ]
    return {"columns": columns, "rows": rows}


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def flat_forecasts(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The forecasts frame (date x (target, field)) with flat ``<target>_<field>`` columns, for CSV."""
    flat = forecasts.copy()
    flat.columns = [f"{t}_{f}" for t, f in forecasts.columns]
    return flat


def nested_forecasts(flat: pd.DataFrame) -> pd.DataFrame:
    """:func:`flat_forecasts` undone: ``<target>_<field>`` columns back to (target, field) (fields hold no ``_``)."""
    nested = flat.copy()
    nested.columns = pd.MultiIndex.from_tuples(
        [tuple(c.rsplit("_", 1)) for c in flat.columns], names=["target", "field"]
    )
    return nested


def _csv(files: Mapping[str, bytes], name: str, **kw) -> pd.DataFrame | None:
    data = files.get(name)
    if data is None:
        return None
    return pd.read_csv(io.BytesIO(data), **kw)


def _uncertainty_tables(unc: dict) -> dict:
    """The uncertainty section: one row per strategy, each bootstrapped statistic's estimate and
    interval, then its PSR and whether the mean's interval lies above zero."""
    level = unc.get("level", 0.95)
    boot = unc.get("bootstrap") or {}
    selection = unc.get("selection") or {}
    stats, blocks = [], None
    for stat, by_strategy in boot.items():
        if all("lower" in v for v in by_strategy.values()):
            stats.append(stat)
        else:  # the block length: a setting of the resampling, no interval
            blocks = ", ".join(f"{name} {_num(v.get('estimate'), 3)}" for name, v in by_strategy.items())
    names = list(dict.fromkeys([n for stat in stats for n in boot[stat]] + list(selection)))
    columns = ["strategy", *(f"{stat}: estimate [{level:.0%} interval]" for stat in stats)]
    columns += ["Sharpe (daily)", "PSR", "mean above 0"]
    rows = []
    for name in names:
        row = [name]
        for stat in stats:
            v = boot[stat].get(name, {})
            row.append(f"{_num(v.get('estimate'))} [{_num(v.get('lower'))}, {_num(v.get('upper'))}]")
        sel = selection.get(name, {})
        row += [_num(sel.get("Sharpe (daily)")), _num(sel.get("PSR")), _num(sel.get("Beats Zero"))]
        rows.append(row)
    return {
        "level": f"{level:.0%}",
        "table": {"columns": columns, "rows": rows} if names else None,
        "block_lengths": blocks,
        "best": unc.get("best"),
        "dsr": _num(unc.get("dsr")),
        "sr0": _num(unc.get("sr0")),
        "n_trials": unc.get("n_trials"),
        "pbo": _num(unc.get("pbo")),
        "n_blocks": unc.get("n_blocks"),
        "in_sample": unc.get("in_sample") or [],
        "spa": _spa_table(unc.get("spa") or []),
        "spa_rule": unc.get("spa_rule"),
    }


def _spa_table(tests: list[dict]) -> dict | None:
    """One row per benchmark of the SPA / StepM tests (uncertainty.json's ``spa``)."""
    if not tests:
        return None
    columns = ["benchmark", "SPA p-value [lower, upper]", "StepM: beat it", "tested", "not tested", "days", "bootstrap"]
    rows = [
        [
            t.get("benchmark"),
            f"{_num(t.get('pvalue'))} [{_num(t.get('lower'))}, {_num(t.get('upper'))}]",
            ", ".join(t.get("superior") or []) or "none",
            ", ".join(t.get("models") or []),
            ", ".join(t.get("left_out") or []) or "–",
            _num(t.get("n_days")),
            f"{t.get('reps')} resamples, blocks of {t.get('block_size')}, seed {t.get('seed')}",
        ]
        for t in tests
    ]
    return {"columns": columns, "rows": rows}


def _seed_text(meta: dict) -> str:
    """The forecast seed, or the seeds of an ``n_seeds`` run (this page shows the first)."""
    seed, k = meta.get("seed", "?"), meta.get("n_seeds", 1)
    if isinstance(seed, int) and k > 1:
        return f"{seed} (of {k} seeds {seed}..{seed + k - 1}: seed_spread.csv)"
    return str(seed)


def _key_text(meta: dict) -> str:
    key = meta.get("stock_key")
    if key is None:
        return "not recorded"
    return "[" + ", ".join(str(k) for k in np.asarray(key).ravel().tolist()) + "]"


def report_html(files: Mapping[str, bytes], figures: Mapping[str, bytes] | None = None, notes=()) -> str:
    """The stock page from a result's files (``name -> bytes``, as :meth:`BacktestResult.files` or a
    folder gives them) and its figures (``"equity"``, ``"fan"``, ``"heatmap"`` -> PNG bytes; a missing
    one is named in the page). ``notes``: lines shown under the header (e.g. what a folder lacks)."""
    figures = dict(figures or {})
    notes = list(notes)
    meta = json.loads(files["metadata.json"]) if "metadata.json" in files else {}
    unc = json.loads(files["uncertainty.json"]) if "uncertainty.json" in files else None
    stats = _csv(files, "stats.csv", index_col=0)
    summary = _csv(files, "summary.csv", index_col=0)
    skill = _csv(files, "skill.csv", index_col=0)
    trades = _csv(files, "trades.csv")
    daily = _csv(files, "daily.csv", index_col=0, parse_dates=True)
    for name, what in (("stats.csv", "statistics"), ("uncertainty.json", "uncertainty"), ("trades.csv", "trades")):
        if name not in files:
            notes.append(f"{name} is not in this folder (written by an older jaxsim?): no {what} section.")

    sim_dates = None
    if daily is not None and len(daily):
        sim_dates = f"{daily.index[0].date()} .. {daily.index[-1].date()} ({len(daily)} days)"
    header = [
        ("Stock", meta.get("symbol") or "?"),
        ("Data", f"{meta.get('first_date', '?')} .. {meta.get('last_date', '?')} ({_num(meta.get('n_rows'))} rows)"),
        ("Out-of-sample days", sim_dates or "–"),
        ("Protocol", meta.get("protocol", "?")),
        (
            "Forecaster",
            f"{meta.get('forecaster_label', meta.get('forecaster', '?'))} "
            f"(targets: {', '.join(meta.get('targets', []))})",
        ),
        ("Seed", _seed_text(meta)),
        ("Simulations", _num(meta.get("n_sims"))),
        ("Draws per context", _num(meta.get("num_samples"))),
        ("Stock key", _key_text(meta)),
        ("Fee / spread", f"{_num(meta.get('fee'))} per side / {_num(meta.get('spread'))}"),
        ("Periods per year", "365 (crypto)" if meta.get("crypto") else "252"),
    ]

    trade_table, trade_note = None, None
    if trades is not None:
        n = len(trades)
        shown = trades.iloc[::-1].head(MAX_TRADE_ROWS)  # newest first on the page: what a trader checks
        trade_table = _table(shown.set_index("strategy"), "strategy", {"entry_price": 6, "exit_price": 6})
        trade_note = (
            f"{n} round trips; newest first"
            + (f", the newest {MAX_TRADE_ROWS} shown" if n > MAX_TRADE_ROWS else "")
            + " (trades.csv holds them all, oldest first)."
        )
    skill_table = None
    if skill is not None:
        skill_table = _table(skill.drop(columns=[c for c in skill.columns if c.startswith("PIT")]), "target")

    missing_fig = {
        "equity": "no daily P&L to draw",
        "fan": "the program returned no forecasts",
        "heatmap": "drawn only with the prices the backtest ran on (the CLI passes them; in Python "
        "result.report(path, prices=prices))",
    }
    context = {
        "title": f"{meta.get('symbol') or 'backtest'}: jaxsim report",
        "symbol": meta.get("symbol") or "?",
        "header": header,
        "notes": notes,
        "verdict": unc.get("verdict") if unc else None,
        "best_strategy": meta.get("best_strategy"),
        "stats": _table(stats, "") if stats is not None else None,
        "uncertainty": _uncertainty_tables(unc) if unc else None,
        "figures": {k: _png_uri(v) for k, v in figures.items()},
        "missing_figures": {k: v for k, v in missing_fig.items() if k not in figures},
        "skill": skill_table,
        "trades": trade_table,
        "trade_note": trade_note,
        "summary": _table(summary, "Strategy") if summary is not None else None,
        "version": meta.get("jaxsim_version") or _version(),
    }
    return _environment().get_template("report.html.j2").render(**context)


def _version() -> str:
    from jaxsim import __version__

    return __version__


def index_html(table: pd.DataFrame, title: str = "jaxsim run", notes=()) -> str:
    """The index page of a multi-stock run: the cross-stock table (:func:`jaxsim.report.cross_stock.cross_stock_table`),
    each symbol linking to ``<symbol>/report.html``."""
    verdicts = [(str(s), str(v)) for s, v in table["Verdict"].items()] if "Verdict" in table else []
    table = table.drop(columns=["Verdict"], errors="ignore")  # a sentence each: listed under the table
    rows = []
    for symbol, row in table.iterrows():
        rows.append({"symbol": str(symbol), "href": f"{symbol}/{REPORT}", "cells": [_num(v) for v in row.tolist()]})
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            title=title,
            columns=[str(c) for c in table.columns],
            rows=rows,
            notes=list(notes),
            n_stocks=len(table),
            verdicts=verdicts,
            version=_version(),
        )
    )


# ---------------------------------------------------------------------------------------------------- folders


def read_folder(folder: str | os.PathLike) -> dict[str, bytes]:
    """The files of a stock folder a page reads (those present)."""
    folder = Path(folder)
    return {name: (folder / name).read_bytes() for name in _INPUTS if (folder / name).is_file()}


def _figures_from_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """Equity and fan figures redrawn from ``daily.csv`` / ``records.csv`` / ``forecasts.csv``."""
    from jaxsim.report import plots  # deferred: matplotlib

    meta = json.loads(files.get("metadata.json", b"{}"))
    name = meta.get("symbol") or ""
    out = {}
    daily = _csv(files, "daily.csv", index_col=0, parse_dates=True)
    if daily is not None and len(daily):
        records = _csv(files, "records.csv", parse_dates=["date"])
        bench = None
        if records is not None and "close" in records:
            bench = records.set_index("date")["close"].sort_index()
        fig = plots.equity_figure(daily, bench, title=f"{name} equity per strategy ({meta.get('protocol', '?')})")
        out["equity"] = plots.figure_png(fig)
    forecasts = None
    if "forecasts.csv" in files:
        lines = files["forecasts.csv"].splitlines()
        two_rows = len(lines) > 1 and lines[1].startswith(b"field,")  # written by jaxsim before flat columns
        forecasts = _csv(files, "forecasts.csv", index_col=0, header=[0, 1] if two_rows else 0)
        if not two_rows:
            forecasts = nested_forecasts(forecasts)
        forecasts.index = pd.to_datetime(forecasts.index)
    if forecasts is not None and len(forecasts.columns):
        frames = {str(t): forecasts[t] for t in dict.fromkeys(forecasts.columns.get_level_values(0))}
        fig = plots.fan_figure(frames, title=f"{name} one-step forecasts ({meta.get('forecaster', '?')})")
        out["fan"] = plots.figure_png(fig)
    return out


def folder_report(folder: str | os.PathLike) -> str:
    """The page of a saved stock folder: its files, the PNGs saved there, the missing figures redrawn
    from its CSVs (the heatmap needs the prices: only a saved ``heatmap.png`` shows one)."""
    folder = Path(folder)
    files = read_folder(folder)
    if "metadata.json" not in files:
        raise FileNotFoundError(f"{folder} has no metadata.json: not a jaxsim result folder")
    figures = {k: (folder / f).read_bytes() for k, f in FIGURES.items() if (folder / f).is_file()}
    drawn = {k: v for k, v in _figures_from_files(files).items() if k not in figures}
    figures.update(drawn)
    notes = [f"Rendered from the saved folder {folder.resolve().name}/."]
    if drawn:
        notes.append(f"Redrawn from its CSV files: {', '.join(sorted(drawn))} figure(s).")
    return report_html(files, figures, notes)


def write_folder_report(folder: str | os.PathLike) -> Path:
    """Render :func:`folder_report` into ``<folder>/report.html`` (atomically); returns the path."""
    path = Path(folder) / REPORT
    write_file(path, folder_report(folder).encode())
    return path
