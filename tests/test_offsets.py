"""MaxDiff's close-relative offsets as the original computes them: float64 prices, cast once.

``Prices`` keeps the float32 residuals of the float64 values it was built from, the engine appends
those of high, low and close to its price table, and the simulation computes the offsets from them
(docs/deviations.md#float64-offsets). These tests read the offsets the engine actually uses and
compare them with the float64 formula on the CSV values, bit for bit.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxsim.config import BacktestConfig
from jaxsim.data.prices import Prices, load_prices, price_table
from jaxsim.engine.walk_forward import limit_arguments
from jaxsim.errors import PriceDataError
from jaxsim.forecast import forecasters
from jaxsim.forecast.grid import ForecastGrid, price_windows
from jaxsim.layout import RESIDUAL_COLUMN, TABLE_COLUMNS
from jaxsim.shell.api import backtest
from jaxsim.shell.plan import prepare_stock
from jaxsim.sim.maxdiff import close_relative_offsets, host_close_relative_offsets, split_float64
from jaxsim.sim.simulation import PRICE_WINDOW, SimulationInputs, window_offsets

N = 12
SYMBOLS = ("AEM", "ALNY", "CART")


@dataclasses.dataclass(frozen=True)
class Spy:
    """An optimizer that returns the offsets of evaluation day ``day`` as its multipliers.

    With the naive forecaster fH = fL = 0, so its inputs are hp = kH and lp = -kL exactly: the
    recorded MaxDiff multipliers are then the offsets the program used."""

    day: int = 0

    def __call__(self, c, h, hp, l, lp, positions, *, close_at_eod, fee):
        del c, h, l, positions, close_at_eod, fee
        return jnp.stack([hp[self.day], -lp[self.day]])


def _csv(daily_dir, symbol):
    df = pd.read_csv(daily_dir / f"{symbol}.csv")
    return {k: df[k].to_numpy(np.float64) for k in ("open", "high", "low", "close")}


def test_load_prices_keeps_the_float64_residuals(daily_dir):
    raw = _csv(daily_dir, "AEM")
    p = load_prices(daily_dir / "AEM.csv", symbol="AEM")
    assert p.residuals.shape == (len(p), 4) and p.residuals.dtype == np.float32
    assert not p.residuals.flags.writeable
    for j, name in enumerate(("open", "high", "low", "close")):
        hi, lo = split_float64(raw[name])
        np.testing.assert_array_equal(getattr(p, name), hi)
        np.testing.assert_array_equal(p.residuals[:, j], lo, err_msg=name)
    # this data's high and low are not float32 values: the residuals carry real information
    assert (p.residuals[:, 1] != 0).mean() > 0.9 and (p.residuals[:, 2] != 0).mean() > 0.9


def test_derived_prices_carry_the_residuals(daily_dir):
    p = load_prices(daily_dir / "AEM.csv", symbol="AEM")
    np.testing.assert_array_equal(p.tail(100).residuals, p.residuals[-100:])
    np.testing.assert_array_equal(p[10:50].residuals, p.residuals[10:50])
    np.testing.assert_array_equal(dataclasses.replace(p, symbol="X").residuals, p.residuals)
    np.testing.assert_array_equal(
        price_table(p[-30:])[:, [RESIDUAL_COLUMN[x] for x in ("high", "low", "close")]], p.residuals[-30:, 1:]
    )
    assert len(TABLE_COLUMNS) == price_table(p).shape[1] == 8


def test_float32_prices_have_zero_residuals_and_bad_residuals_are_refused():
    rng = np.random.default_rng(0)
    close = (100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))).astype(np.float32)
    high, low = close * np.float32(1.01), close * np.float32(0.99)
    dates = np.arange(40).astype("datetime64[D]")
    p = Prices("F32", dates, close, high, low, close)
    np.testing.assert_array_equal(p.residuals, np.zeros((40, 4), np.float32))
    np.testing.assert_array_equal(price_table(p)[:, 5:], 0.0)
    with pytest.raises(PriceDataError, match="residuals must have shape"):
        Prices("F32", dates, close, high, low, close, residuals=np.zeros((40, 3)))


def test_five_column_windows_keep_the_float32_offsets():
    """Hand-built (W, 5) windows (the golden tests) compute the offsets as before: plain float32."""
    rng = np.random.default_rng(1)
    window = rng.uniform(50, 60, (PRICE_WINDOW, 5)).astype(np.float32)
    kh, kl = window_offsets(jnp.asarray(window))
    want = close_relative_offsets(window[-8:-2, 1], window[-8:-2, 2], window[-8:-2, 3])
    np.testing.assert_array_equal(kh, want[0])
    np.testing.assert_array_equal(kl, want[1])


@pytest.mark.parametrize("day", [0, 5])
def test_backtest_offsets_equal_the_float64_offsets(daily_dir, day):
    """The offsets the compiled program uses (read through a spy optimizer) are float32(float64
    |1 - H/C|) of the CSV values on every simulation; from float32 prices alone they would not be."""
    naive = forecasters.naive()
    plain_off = 0
    for symbol in SYMBOLS:
        raw = _csv(daily_dir, symbol)
        p = load_prices(daily_dir / f"{symbol}.csv", symbol=symbol)
        rec = backtest(p, naive, n_sims=N, optimizer=Spy(day), protocol="legacy").records
        rows = len(p) - 2 - np.arange(N) - 7 + day  # simulation k, day i: offsets of row e-7+i
        ref = host_close_relative_offsets(raw["high"], raw["low"], raw["close"])
        for name, want in zip(("high", "low"), ref):
            got = rec[f"maxdiffprofit_profit_{name}_multiplier"].to_numpy(np.float32)
            np.testing.assert_array_equal(got, want[rows], err_msg=f"{symbol} {name}")
        plain = close_relative_offsets(p.high[rows], p.low[rows], p.close[rows])
        plain_off += sum(int(np.sum(np.asarray(a) != b[rows])) for a, b in zip(plain, ref))
    assert plain_off > 0


def test_walk_forward_limit_arguments_use_the_float64_offsets(daily_dir):
    """The walk-forward re-scoring builds its offsets from the same windows (limit_arguments)."""
    raw = _csv(daily_dir, "ALNY")
    p = load_prices(daily_dir / "ALNY.csv", symbol="ALNY")
    config = BacktestConfig(n_sims=40, protocol="legacy")
    prep = prepare_stock(p, config)
    grid = ForecastGrid(len(prep.prices), config.n_sims, config.max_context)
    windows, valid = price_windows(jnp.asarray(prep.prices), grid, PRICE_WINDOW)
    zeros = jnp.zeros((config.n_sims, 7))
    inputs = SimulationInputs(zeros, zeros, zeros, zeros, windows, valid)
    (_, _, _, _, _, kh, kl, _, _), _ = jax.vmap(limit_arguments)(inputs)
    rows = prep.start + grid.ends[:, None] - 7 + np.arange(6)[None, :]
    ref = host_close_relative_offsets(raw["high"], raw["low"], raw["close"])
    np.testing.assert_array_equal(np.asarray(kh), ref[0][rows])
    np.testing.assert_array_equal(np.asarray(kl), ref[1][rows])
