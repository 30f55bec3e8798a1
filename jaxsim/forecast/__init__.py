"""Forecasts at every origin of the walk-forward grid.

:mod:`.returns` (prices -> the returns a forecaster sees), :mod:`.interface` (what a forecaster
answers), :mod:`.grid` (the origins and their contexts), :mod:`.aggregate` (draws -> point and band),
:mod:`.forecasters` (naive, historical mean, volatility, user function, Toto, the embedded default),
:mod:`.prefix` (Toto's prefix-shared passes over an expanding context) and :mod:`.kronos_forecaster`.
"""

from jaxsim.forecast.forecasters import (
    FunctionForecaster,
    HistoricalMeanForecaster,
    NaiveForecaster,
    TotoForecaster,
    VolatilityForecaster,
    default,
    from_function,
    historical_mean,
    kronos,
    naive,
    toto,
    volatility,
)
from jaxsim.forecast.grid import ForecastGrid
from jaxsim.forecast.interface import (
    TARGET_IDS,
    Forecast,
    Forecaster,
    StockArrays,
    context_keys,
    point_and_band,
    register_forecaster,
)

__all__ = [
    "naive",
    "historical_mean",
    "volatility",
    "from_function",
    "toto",
    "kronos",
    "default",
    "Forecaster",
    "Forecast",
    "StockArrays",
    "ForecastGrid",
    "register_forecaster",
    "context_keys",
    "point_and_band",
    "TARGET_IDS",
    "NaiveForecaster",
    "HistoricalMeanForecaster",
    "FunctionForecaster",
    "TotoForecaster",
    "VolatilityForecaster",
]
