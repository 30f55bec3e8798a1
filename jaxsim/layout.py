"""The array layout every layer shares: the columns of a price row and the forecasts of a simulation.

Pure Python (no JAX, no numpy), so the data layer, the configuration and the command line can
import it without loading an array library.
"""

__all__ = ["PRICE_COLUMNS", "PRICE_COLUMN", "RESIDUAL_COLUMNS", "RESIDUAL_COLUMN", "TABLE_COLUMNS", "ORIGINS_PER_SIM"]

# Columns of the (T, 5) price array a backtest runs on (volume 0 when the data has none).
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
# Column of each forecastable price series (the forecast targets) in that array.
PRICE_COLUMN = {name: PRICE_COLUMNS.index(name) for name in ("open", "high", "low", "close")}
# The engine's (T, 8) table appends the float32 residuals x - float32(x) of the float64 high, low and
# close (MaxDiff's offsets are computed from them as in float64, docs/deviations.md#float64-offsets).
RESIDUAL_COLUMNS = ("high_lo", "low_lo", "close_lo")
TABLE_COLUMNS = PRICE_COLUMNS + RESIDUAL_COLUMNS
# Column of each residual in that table, by the price it belongs to.
RESIDUAL_COLUMN = {name[:-3]: TABLE_COLUMNS.index(name) for name in RESIDUAL_COLUMNS}
# Simulation k (last row e) uses the one-step forecasts of r_X[e-6..e]: 7 rolling origins.
ORIGINS_PER_SIM = 7
