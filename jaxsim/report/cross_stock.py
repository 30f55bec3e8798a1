"""The cross-stock table of a multi-stock run: one row per stock, read back from its folder.

Each stock folder written by :meth:`jaxsim.report.result.BacktestResult.save` (or
:func:`jaxsim.run_many`) holds ``stats.csv``, ``skill.csv``, ``uncertainty.json`` and
``metadata.json``; :func:`cross_stock_table` reads them (no recomputation) and
:func:`write_cross_stock_table` writes the table as ``<out_dir>/stocks.csv``.

Row of a stock: ``Best Strategy`` (the original's pick, docs/backtest.md#best-strategy), that
strategy's :data:`jaxsim.report.comparison.STAT_ROWS`, the close forecast's
:data:`jaxsim.report.comparison.SKILL_FIELDS` (prefixed ``Close``), ``Verdict``, ``DSR`` (of the
best-Sharpe pick), ``PBO``, ``N Sims``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from jaxsim.atomic import write_file
from jaxsim.report.comparison import SKILL_FIELDS, STAT_ROWS
from jaxsim.report.html import INDEX, REPORT, index_html

__all__ = ["TABLE", "stock_row", "cross_stock_table", "write_cross_stock_table", "write_index"]

TABLE = "stocks.csv"


def stock_row(folder: str | os.PathLike) -> dict | None:
    """The table row of one stock folder; None when it lacks the files (e.g. written by an older jaxsim)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "metadata.json").read_text())
        stats = pd.read_csv(folder / "stats.csv", index_col=0)
        unc = json.loads((folder / "uncertainty.json").read_text())
    except (OSError, ValueError):
        return None
    best = meta.get("best_strategy")
    row = {"Best Strategy": best}
    for label in STAT_ROWS:
        value = stats.loc[label, best] if best in stats.columns and label in stats.index else np.nan
        row[label] = pd.to_numeric(value, errors="coerce")
    skill_path = folder / "skill.csv"
    skill = pd.read_csv(skill_path, index_col=0) if skill_path.exists() else None
    for field in SKILL_FIELDS:
        ok = skill is not None and "close" in skill.index and field in skill.columns
        row[f"Close {field}"] = float(skill.loc["close", field]) if ok else np.nan
    row.update(
        {"Verdict": unc.get("verdict"), "DSR": unc.get("dsr"), "PBO": unc.get("pbo"), "N Sims": meta.get("n_sims")}
    )
    return row


def cross_stock_table(out_dir: str | os.PathLike, symbols=None) -> pd.DataFrame:
    """One row per stock folder of ``out_dir`` (``symbols``: those folders, in that order; default every
    sub-folder with a ``stats.csv``, sorted), index ``symbol``."""
    out = Path(out_dir)
    if symbols is None:
        symbols = sorted(
            p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "stats.csv").exists()
        )
    rows = {s: row for s in symbols if (row := stock_row(out / s)) is not None}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "symbol"
    return table


def write_cross_stock_table(out_dir: str | os.PathLike, symbols=None) -> Path:
    """Write :func:`cross_stock_table` to ``<out_dir>/stocks.csv`` atomically; returns the path."""
    path = Path(out_dir) / TABLE
    write_file(path, cross_stock_table(out_dir, symbols).to_csv().encode())
    return path


def write_index(out_dir: str | os.PathLike, symbols=None) -> Path:
    """Write the run's index page (:func:`jaxsim.report.html.index_html`: :func:`cross_stock_table`,
    each symbol linking to its ``report.html``) to ``<out_dir>/index.html`` atomically; returns the path."""
    out = Path(out_dir)
    table = cross_stock_table(out, symbols)
    notes = [] if len(table) else ["no finished stock in this folder yet"]
    missing = [s for s in table.index if not (out / s / REPORT).is_file()]
    if missing:
        notes.append(f"no {REPORT} yet for {', '.join(missing)} (`jaxsim report {out}` renders them)")
    path = out / INDEX
    write_file(path, index_html(table, title=f"jaxsim run: {out.resolve().name}", notes=notes).encode())
    return path
