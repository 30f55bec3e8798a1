"""Forecasted P&L (docs/backtest.md#forecasted-pnl): the rules (< 4 values, negative mean, model, fallbacks), values
equal to the same forecast computed by hand (row order for legacy, docs/deviations.md#forecasted-pnl-order;
chronological for walk-forward), 256 draws for short series, a tiny random Toto, and the backtest's ForecastRet column
(computed inside the one compiled program)."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import forecasters
from jaxsim.engine.forecasted_pnl import PNL_KEY_SALT, forecasted_pnl
from jaxsim.forecast import Forecaster, register_forecaster
from jaxsim.forecast.interface import SERIES_FEW_DRAWS as FEW_DRAWS
from jaxsim.sim.strategy_table import STRATEGIES

S = 512
KEY = jax.random.key(7)


def _noisy_last(context, valid, key):
    """Draws around the last valid value (= the newest context entry), with key-dependent noise."""
    return context[-1] + 0.01 * jax.random.normal(key, (S,))


NOISY_LAST = forecasters.from_function(_noisy_last, num_samples=S)


def _series(seed=0, n=10):
    """(1, 8, n) positive-mean series with distinct values; strategy 2 has NaNs (6 finite values)."""
    rng = np.random.default_rng(seed)
    series = 0.01 + 0.005 * rng.standard_normal((1, 8, n))
    series[0, 2, [1, 4, 5, 8]] = np.nan
    return series


def _by_hand(series_row, j, chronological, draws_used=S):
    values = series_row[np.isfinite(series_row)]
    values = values[::-1] if chronological else values
    context = np.concatenate([np.zeros(len(series_row) - len(values)), values]).astype(np.float32)
    valid = np.arange(len(series_row)) >= len(series_row) - len(values)
    key = jax.random.fold_in(jax.random.fold_in(KEY, PNL_KEY_SALT), j)
    draws = np.asarray(_noisy_last(jnp.asarray(context), jnp.asarray(valid), key))
    assert context[-1] == np.float32(values[-1])
    return float(np.median(draws[:draws_used]))


@pytest.mark.parametrize("chronological", [False, True])
def test_model_path_equals_the_median_of_the_forecasters_draws(chronological):
    series = _series()
    values, sources = forecasted_pnl(NOISY_LAST, series, KEY[None], chronological=chronological)
    assert values.shape == (1, 8) and (sources == "model").all()
    for j in range(8):
        want = _by_hand(series[0, j], j, chronological, FEW_DRAWS if j == 2 else S)
        np.testing.assert_allclose(values[0, j], want, rtol=1e-6, atol=1e-9)
    # legacy (row order) forecasts from the OLDEST row, walk-forward from the newest; noise is 0.01/sqrt(S)
    finite = series[0, 0]
    if chronological:
        assert abs(values[0, 0] - finite[0]) < 3e-3
    else:
        assert abs(values[0, 0] - finite[-1]) < 3e-3
    # deterministic; another key gives other draws
    again, _ = forecasted_pnl(NOISY_LAST, series, KEY[None], chronological=chronological)
    np.testing.assert_array_equal(again, values)
    other, _ = forecasted_pnl(NOISY_LAST, series, jax.random.key(8)[None], chronological=chronological)
    assert not np.array_equal(other, values)


class _Boom(Exception):
    pass


def _raises(context, valid, key):
    raise _Boom("a broken forecaster")


SENTINEL = 123.0


def _sentinel(context, valid, key):
    return jnp.full((S,), SENTINEL)


def test_few_values_and_negative_mean_give_the_mean_whatever_the_model_says():
    # The model runs inside the program on every series; the mean rules are masks, so its draws must
    # not leak into the strategies they do not apply to.
    series = _series()
    series[0, 0] = -np.abs(series[0, 0])  # negative mean
    series[0, 1, 3:] = np.nan  # 3 finite values
    series[0, 3, :] = np.nan  # no value at all
    series[0, 4, 2] = np.inf
    others = list(range(5, 8))
    series[0, others] = -np.abs(series[0, others])
    series[0, 2] = -np.abs(series[0, 2])
    values, sources = forecasted_pnl(
        forecasters.from_function(_sentinel, num_samples=S), series, KEY[None], chronological=False
    )
    assert (
        list(sources[0])
        == ["mean_negative", "mean_few_values", "mean_negative", "mean_few_values", "model"] + ["mean_negative"] * 3
    )
    for j in (0, 1, 2, 5, 6, 7):
        row = series[0, j]
        np.testing.assert_allclose(values[0, j], row[np.isfinite(row)].mean(), rtol=1e-12)
    assert values[0, 4] == SENTINEL  # the inf is dropped; 9 finite values, positive mean: the model
    assert np.isnan(values[0, 3])  # the mean of no values, as the original's pandas mean
    assert series[0, 4, 2] == np.inf


def test_a_forecaster_that_raises_is_an_error_not_a_silent_mean():
    with pytest.raises(_Boom):
        forecasted_pnl(forecasters.from_function(_raises, num_samples=S), _series(), KEY[None], chronological=False)


@register_forecaster
class _NeedsFrames(Forecaster):
    params: Any = ()
    kind = "kronos"


def test_fallbacks_unsupported_forecaster_and_nonfinite_model_output():
    series = _series()
    mean = np.nanmean(series, axis=-1)
    values, sources = forecasted_pnl(_NeedsFrames(), series, KEY[None], chronological=False)
    assert (sources == "mean_unsupported_forecaster").all()
    np.testing.assert_allclose(values, mean, rtol=1e-12)
    nan_model = forecasters.from_function(lambda c, v, k: jnp.full((S,), jnp.nan), num_samples=S)
    values, sources = forecasted_pnl(nan_model, series, KEY[None], chronological=False)
    assert (sources == "mean_model_nonfinite").all()
    np.testing.assert_allclose(values, mean, rtol=1e-12)


def test_point_forecasters_naive_and_historical_mean():
    series = _series()
    values, sources = forecasted_pnl(forecasters.naive(), series, KEY[None], chronological=False)
    assert (sources == "model").all() and (values == 0).all()
    values, _ = forecasted_pnl(forecasters.historical_mean(), series, KEY[None], chronological=True)
    np.testing.assert_allclose(values, np.nanmean(series, axis=-1), rtol=1e-5)


def test_batch_of_stocks_equals_one_stock_at_a_time():
    series = np.concatenate([_series(0), _series(1), _series(2)])
    keys = jax.vmap(lambda i: jax.random.fold_in(KEY, i))(jnp.arange(3, dtype=jnp.uint32))
    values, _ = forecasted_pnl(NOISY_LAST, series, keys, chronological=False)
    for b in range(3):
        alone, _ = forecasted_pnl(NOISY_LAST, series[b : b + 1], keys[b : b + 1], chronological=False)
        np.testing.assert_allclose(values[b], alone[0], rtol=1e-6)


def test_tiny_random_toto_pads_each_series_to_its_patch_multiple():
    from jaxsim.models.toto import forecast as toto_forecast
    from jaxsim.models.toto import model as toto_model

    config = toto_model.TOTO_SMALL  # patch 8: 10 values are left-padded to 16
    params = jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(1))
    fc = forecasters.toto(config=config, params=params, num_samples=32)  # replaced by 512 draws
    series = _series()

    @jax.jit
    def alone(ctx, valid, k):
        mix = toto_forecast.next_step_mixture(params, config, ctx[None], valid[None])
        return toto_forecast.sample_mixture(k, mix, S)[0]

    with jax.default_matmul_precision("highest"):
        values, sources = forecasted_pnl(fc, series, KEY[None], chronological=True)
        assert (sources == "model").all()
        for j in (0, 2):
            row = series[0, j]
            values_j = row[np.isfinite(row)][::-1].astype(np.float32)
            # 10 values: the official padding (16). 6 values (j = 2): the padding of N = 10 values, 16,
            # where the official forecaster would pad to 8 (documented deviation)
            ctx, valid = toto_forecast.left_pad(
                np.concatenate([np.full(10 - len(values_j), np.nan, np.float32), values_j]), config.patch_size
            )
            assert len(ctx) == 16 and valid.sum() == len(values_j)
            key = jax.random.fold_in(jax.random.fold_in(KEY, PNL_KEY_SALT), j)
            draws = np.asarray(alone(jnp.asarray(ctx), jnp.asarray(valid), key))
            want = np.median(draws[:FEW_DRAWS] if j == 2 else draws)
            np.testing.assert_allclose(values[0, j], want, rtol=1e-4, atol=1e-5)


def test_backtest_broadcasts_forecasted_pnl_and_reports_forecast_ret(daily_dir):
    from jaxsim.data.prices import load_prices
    from jaxsim.engine.forecasted_pnl import strategy_series
    from jaxsim.optimize import grid_optimizer
    from jaxsim.shell.api import backtest
    from jaxsim.shell.plan import stock_key

    aem = load_prices(daily_dir / "AEM.csv", symbol="AEM")
    opt = grid_optimizer(11)
    result = backtest(aem, NOISY_LAST, n_sims=8, key=KEY, optimizer=opt, protocol="walk_forward")
    rec, summary = result.records, result.summary
    assert list(summary.columns) == ["Return", "Sharpe", "AnnualRet", "ForecastRet", "FinalDay"]
    prefixes = [p for _, p, *_ in STRATEGIES]
    series = strategy_series({c: rec[c].to_numpy() for c in rec}, prefixes)[None]
    # the stock's key (the run key folded with its symbol) drives its forecasted P&L
    want, sources = forecasted_pnl(NOISY_LAST, series, stock_key(KEY, "AEM")[None], chronological=True)
    for j, (name, prefix, *_) in enumerate(STRATEGIES):
        column = rec[f"{prefix}_forecasted_pnl"].to_numpy()
        assert (column == column[0]).all()  # broadcast to every row
        np.testing.assert_allclose(column[0], want[0, j], rtol=1e-6)
        np.testing.assert_allclose(summary.loc[name, "ForecastRet"], column.mean(), rtol=1e-6)
        assert result.metadata["forecasted_pnl_source"][name] == sources[0, j]
    assert result.metadata["forecasted_pnl_order"] == "chronological"
    assert "ForecastRet" in result.summary_text()
    again = backtest(aem, NOISY_LAST, n_sims=8, key=KEY, optimizer=opt, protocol="walk_forward")
    np.testing.assert_array_equal(again.summary["ForecastRet"].to_numpy(), summary["ForecastRet"].to_numpy())
