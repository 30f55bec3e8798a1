"""Test-only helpers of the report tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jaxsim.sim.strategy_table import with_user


def equity_curves(records: pd.DataFrame, user: tuple | list = ()) -> pd.DataFrame:
    """Chronological equity per strategy: cumprod(1 + final-day P&L) over simulations, oldest first.

    Consecutive simulations' final days are consecutive trading days, so the final-day fields form a
    daily P&L series without overlap (for entry/take-profit and highlow the field is the 6-day
    average, docs/deviations.md#kept-finalday-average).
    """
    chrono = records.iloc[::-1]
    curves = {s.name: np.cumprod(1.0 + chrono[s.final_day].to_numpy(np.float64)) for s in with_user(user)}
    return pd.DataFrame(curves, index=pd.DatetimeIndex(chrono["date"]))
