"""``--output-json PATH``: the original command line's JSON summary of one stock, plus jaxsim's fields.

The schema is documented in ``docs/cli-json.md``. The original's keys keep their names, nesting
and meaning (column means over the N simulations, ``null`` where a mean is missing or NaN); jaxsim
only adds keys: ``forecasted_pnl`` per strategy, ``label``, and the ``jaxsim`` object. One change of
value: the original asks for MaxDiff's baseline / optimized / adjusted returns under column names
the results never have, so it always writes ``null`` there; jaxsim writes the real means.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from jaxsim.atomic import write_file
from jaxsim.sim.strategy_table import STRATEGIES, WALK_FORWARD_SHARPE, Strategy

__all__ = ["SCHEMA", "STRATEGY_COLUMNS", "METRIC_COLUMNS", "summary_json", "write_output_json"]

SCHEMA = "jaxsim-output-json/1"
_BASE = ("return", "sharpe", "final_day", "avg_daily_return", "annual_return")


def _strategy_columns(s: Strategy) -> dict[str, str]:
    """Key -> record column of one strategy, in the order the original writes them; a fitted strategy
    (MaxDiff, always-on) adds its turnover and baseline / optimized / adjusted returns."""
    columns = dict(
        zip(
            _BASE,
            (s.field("return"), s.field("sharpe"), s.final_day, s.field("avg_daily_return"), s.field("annual_return")),
        )
    )
    if s.fit is not None:
        columns.update(
            turnover=s.field("turnover"),
            baseline_return=s.field("baseline_return"),
            optimized_return=s.field("optimized_return"),
            adjusted_return=s.field("return"),  # the adjusted return is what <prefix>_return holds
        )
    return columns


# strategy -> (key -> record column)
STRATEGY_COLUMNS: dict[str, dict[str, str]] = {s.name: _strategy_columns(s) for s in STRATEGIES}
# the original's "metrics" keys: the walk-forward Sharpe only of the fitted strategies
METRIC_COLUMNS = (
    "close_val_loss",
    "high_val_loss",
    "low_val_loss",
    "walk_forward_oos_sharpe",
    "walk_forward_turnover",
    *(s.walk_forward_sharpe for s in WALK_FORWARD_SHARPE if s.fit is not None),
)
# jaxsim's own additions to "metrics" (the original's keys come first, unchanged): the other walk-forward Sharpes
_EXTRA_METRICS = tuple(s.walk_forward_sharpe for s in WALK_FORWARD_SHARPE if s.fit is None)


def _mean(records, column: str) -> float | None:
    """Column mean as a float; None when the column is missing or the mean is not finite."""
    if column not in records:
        return None
    try:
        value = float(records[column].astype(float).mean())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _plain(value: Any):
    """JSON-safe: numpy scalars to Python, NaN/inf to None, containers recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def summary_json(result, *, label: str | None = None, generated_at: _dt.datetime | None = None) -> dict:
    """The JSON object of one :class:`~jaxsim.report.result.BacktestResult` (see docs/cli-json.md).

    Args:
      result: the backtest result.
      label: written as ``symbol`` instead of the result's symbol (the original's ``--output-label``).
      generated_at: timestamp (default now, UTC).
    """
    records = result.records
    when = (generated_at or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    strategies = {}
    for s in STRATEGIES:
        entry = {key: _mean(records, column) for key, column in STRATEGY_COLUMNS[s.name].items()}
        entry["forecasted_pnl"] = _mean(records, s.field("forecasted_pnl"))  # jaxsim
        strategies[s.name] = entry
    metrics = {column: _mean(records, column) for column in METRIC_COLUMNS + _EXTRA_METRICS}
    meta = dict(result.metadata)
    fitted = records["walk_forward_fitted"] if "walk_forward_fitted" in records else None
    extra = {
        "schema": SCHEMA,
        "symbol": result.symbol,
        "protocol": result.protocol,
        "best_strategy": result.best_strategy,
        "limit_prices": result.limit_prices,
        "first_simulation_date": str(records["date"].iloc[-1].date()) if len(records) else None,
        "last_simulation_date": str(records["date"].iloc[0].date()) if len(records) else None,
        "walk_forward_fitted_simulations": None if fitted is None else int(fitted.astype(bool).sum()),
        "metadata": meta,
    }
    try:
        from jaxsim import __version__

        extra["version"] = __version__
    except ImportError:  # pragma: no cover
        pass
    return _plain(
        {
            "symbol": label or result.symbol,
            "runs": int(len(records)),
            "generated_at": when.replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
            "strategies": strategies,
            "metrics": metrics,
            "label": label,
            "jaxsim": extra,
        }
    )


def write_output_json(path, result, *, label: str | None = None, generated_at=None) -> Path:
    """Write :func:`summary_json` to ``path`` atomically (temporary file, fsync, rename).

    Its folder is created when missing (a ``{symbol}`` template may put each stock in its own folder).
    """
    data = json.dumps(summary_json(result, label=label, generated_at=generated_at), indent=2).encode()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_file(path, data + b"\n")
