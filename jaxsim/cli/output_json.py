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

__all__ = ["SCHEMA", "STRATEGY_COLUMNS", "METRIC_COLUMNS", "summary_json", "write_output_json"]

SCHEMA = "jaxsim-output-json/1"
# strategy -> (key -> record column); key order as the original writes them.
_BASE = ("return", "sharpe", "final_day", "avg_daily_return", "annual_return")
STRATEGY_COLUMNS: dict[str, dict[str, str]] = {
    "simple": dict(
        zip(
            _BASE,
            (
                "simple_strategy_return",
                "simple_strategy_sharpe",
                "simple_strategy_finalday",
                "simple_strategy_avg_daily_return",
                "simple_strategy_annual_return",
            ),
        )
    ),
    "all_signals": dict(
        zip(
            _BASE,
            (
                "all_signals_strategy_return",
                "all_signals_strategy_sharpe",
                "all_signals_strategy_finalday",
                "all_signals_strategy_avg_daily_return",
                "all_signals_strategy_annual_return",
            ),
        )
    ),
    "buy_hold": dict(
        zip(
            _BASE,
            (
                "buy_hold_return",
                "buy_hold_sharpe",
                "buy_hold_finalday",
                "buy_hold_avg_daily_return",
                "buy_hold_annual_return",
            ),
        )
    ),
    "unprofit_shutdown": dict(
        zip(
            _BASE,
            (
                "unprofit_shutdown_return",
                "unprofit_shutdown_sharpe",
                "unprofit_shutdown_finalday",
                "unprofit_shutdown_avg_daily_return",
                "unprofit_shutdown_annual_return",
            ),
        )
    ),
    "entry_takeprofit": dict(
        zip(
            _BASE,
            (
                "entry_takeprofit_return",
                "entry_takeprofit_sharpe",
                "entry_takeprofit_finalday",
                "entry_takeprofit_avg_daily_return",
                "entry_takeprofit_annual_return",
            ),
        )
    ),
    "highlow": dict(
        zip(
            _BASE,
            (
                "highlow_return",
                "highlow_sharpe",
                "highlow_finalday_return",
                "highlow_avg_daily_return",
                "highlow_annual_return",
            ),
        )
    ),
}
for _name in ("maxdiff", "maxdiffalwayson"):
    STRATEGY_COLUMNS[_name] = {
        **dict(
            zip(
                _BASE,
                (
                    f"{_name}_return",
                    f"{_name}_sharpe",
                    f"{_name}_finalday_return",
                    f"{_name}_avg_daily_return",
                    f"{_name}_annual_return",
                ),
            )
        ),
        "turnover": f"{_name}_turnover",
        "baseline_return": f"{_name}_baseline_return",
        "optimized_return": f"{_name}_optimized_return",
        "adjusted_return": f"{_name}_return",  # the adjusted return is what *_return holds
    }
# record prefix of each strategy (for the added forecasted_pnl key)
_PREFIX = {"simple": "simple_strategy", "all_signals": "all_signals_strategy"}
METRIC_COLUMNS = (
    "close_val_loss",
    "high_val_loss",
    "low_val_loss",
    "walk_forward_oos_sharpe",
    "walk_forward_turnover",
    "walk_forward_maxdiff_sharpe",
    "walk_forward_maxdiffalwayson_sharpe",
)
# jaxsim's own additions to "metrics" (the original's keys come first, unchanged)
_EXTRA_METRICS = ("walk_forward_highlow_sharpe", "walk_forward_entry_takeprofit_sharpe")


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
    for name, columns in STRATEGY_COLUMNS.items():
        entry = {key: _mean(records, column) for key, column in columns.items()}
        entry["forecasted_pnl"] = _mean(records, f"{_PREFIX.get(name, name)}_forecasted_pnl")  # jaxsim
        strategies[name] = entry
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
    """Write :func:`summary_json` to ``path`` atomically (temporary file, fsync, rename)."""
    data = json.dumps(summary_json(result, label=label, generated_at=generated_at), indent=2).encode()
    return write_file(path, data + b"\n")
