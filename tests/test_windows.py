"""Forecast grid geometry (docs/backtest.md#walk-forward-geometry, #rolling-origin-forecasts): origins, slicing,
left-padded contexts, groups, trimming."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.errors import InsufficientHistoryError
from jaxsim.forecast.grid import (
    ForecastGrid,
    context_groups,
    gather_contexts,
    price_windows,
    sim_forecast_index,
    trim_start,
)


def test_origins_are_the_n_plus_6_targets_of_all_simulations():
    grid = ForecastGrid(n_rows=100, n_sims=12)
    assert grid.n_origins == 18
    np.testing.assert_array_equal(grid.origins, np.arange(100 - 12 - 7, 99))
    # the union over simulations k of their targets e-6..e (e = T-2-k), docs/backtest.md#rolling-origin-forecasts
    wanted = sorted({e - 6 + i for e in (100 - 2 - np.arange(12)) for i in range(7)})
    np.testing.assert_array_equal(grid.origins, wanted)


def test_simulation_k_reads_the_forecasts_of_rows_e_minus_6_to_e():
    grid = ForecastGrid(n_rows=90, n_sims=9)
    index = sim_forecast_index(grid)
    assert index.shape == (9, 7)
    for k in range(9):
        e = 90 - 2 - k
        np.testing.assert_array_equal(grid.origins[index[k]], np.arange(e - 6, e + 1))


def test_too_short_history_raises_typed_error():
    ForecastGrid(n_rows=12 + 9, n_sims=12)  # T = N + 9 is the minimum (one context return)
    with pytest.raises(InsufficientHistoryError, match="T >= N \\+ 9"):
        ForecastGrid(n_rows=12 + 8, n_sims=12)


def _left_padded(r, t, length, cap=None):
    """Reference: context r[1..t-1] (capped), left-padded with zeros to ``length``."""
    ctx = r[1:t] if cap is None else r[max(1, t - cap) : t]
    pad = length - len(ctx)
    return np.concatenate([np.zeros(pad), ctx]), np.concatenate([np.zeros(pad, bool), np.ones(len(ctx), bool)])


@pytest.mark.parametrize("cap", [None, 70])
def test_groups_pad_each_context_to_its_own_multiple_of_64(cap):
    # origins t = 120..139 have lengths 119..138: padded to 128 (t <= 129) and 192
    grid = ForecastGrid(n_rows=141, n_sims=14, max_context=cap)
    rng = np.random.default_rng(0)
    returns = rng.normal(size=(2, 141)).astype(np.float32)
    groups = context_groups(grid, 64)
    assert [g.start for g in groups] == [0] + [g.stop for g in groups[:-1]]
    assert groups[-1].stop == grid.n_origins
    if cap is None:
        assert [g.length for g in groups] == [128, 192]
    else:
        assert [g.length for g in groups] == [128]
    for g in groups:
        ctx, valid = gather_contexts(jnp.asarray(returns), grid, g)
        assert ctx.shape == (2, g.size, g.length)
        for j in range(g.size):
            t = grid.origins[g.start + j]
            n = grid.context_lengths()[g.start + j]
            assert g.length == math.ceil(n / 64) * 64
            for x in range(2):
                want, want_valid = _left_padded(returns[x], t, g.length, cap)
                np.testing.assert_array_equal(np.asarray(ctx[x, j]), want.astype(np.float32))
                np.testing.assert_array_equal(np.asarray(valid[j]), want_valid)


def test_single_group_pads_to_the_longest_context():
    grid = ForecastGrid(n_rows=60, n_sims=10)
    (g,) = context_groups(grid, None)
    assert (g.start, g.stop, g.length) == (0, 16, 60 - 3)  # last origin T-2 has T-3 returns


def test_price_windows_mask_rows_before_the_data():
    grid = ForecastGrid(n_rows=30, n_sims=10)
    prices = np.arange(30 * 5, dtype=np.float32).reshape(30, 5) + 1
    win, valid = price_windows(jnp.asarray(prices), grid, 22)
    for k in range(10):
        e = 28 - k
        rows = np.arange(e - 21, e + 1)
        np.testing.assert_array_equal(np.asarray(valid[k]), rows >= 0)
        np.testing.assert_array_equal(np.asarray(win[k])[rows >= 0], prices[rows[rows >= 0]])
        assert np.all(np.asarray(win[k])[rows < 0] == 0)


def test_trim_start_keeps_every_row_a_capped_run_reads():
    t, n, cap, w = 500, 20, 100, 22
    s = trim_start(t, n, cap, w)
    grid = ForecastGrid(t, n, cap)
    first_return_row = grid.origins[0] - cap  # earliest context return, needs the price before it
    assert s == first_return_row - 1
    assert s <= grid.ends[-1] - w + 1
    assert trim_start(t, n, None, w) == 0
    assert trim_start(40, 10, 30, w) == 0  # never negative
