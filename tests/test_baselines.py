"""Baselines a skeptic accepts and a stock's name: the volatility forecaster's CRPS and coverage on a
Gaussian series, compare's legacy verdict, ``backtest`` without a forecaster, and the naming rules of
DataFrames (the name picks the PRNG key, so the CLI and the API draw alike for one file).

Cheap: the volatility forecaster runs outside any backtest program, the rest stop before compute."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import properscoring
import pytest

import jaxsim
from jaxsim.data.prices import price_table
from jaxsim.errors import PriceDataError
from jaxsim.forecast.forecasters import TotoForecaster, gaussian_quantile_draws
from jaxsim.forecast.grid import ForecastGrid
from jaxsim.forecast.interface import StockArrays, origin_realised
from jaxsim.report.evaluation import IN_SAMPLE_LEGACY, uncertainty
from jaxsim.shell import api
from jaxsim.shell.plan import make_plan

SIGMA, ROWS, WINDOW = 0.015, 1200, 20


@pytest.fixture(scope="module")
def gaussian():
    """Closes whose simple returns are i.i.d. N(0, SIGMA^2), the volatility forecasts of every origin
    of their full history (one target: close), the realised returns and each origin's window sigma."""
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0, SIGMA, ROWS)
    close = 100 * np.cumprod(1 + returns)
    frame = pd.DataFrame(
        {"Open": close, "High": close * 1.01, "Low": close * 0.99, "Close": close},
        index=pd.bdate_range("2010-01-04", periods=ROWS, name="Date"),
    )
    prices = jaxsim.load_prices(frame, symbol="GAUSS")
    table = price_table(prices)
    grid = ForecastGrid(ROWS, ROWS - 40)  # origins 33 .. T-2: at least 32 context returns each
    stock = StockArrays(jnp.asarray(table[:, :5]), jnp.zeros((ROWS, 0), jnp.float32))
    draws = np.asarray(jaxsim.forecasters.volatility(WINDOW).forecast(stock, grid, ("close",), None).samples[0])
    realised = np.asarray(origin_realised(stock, grid, ("close",))[0], np.float64)
    closes = table[:, 3].astype(np.float64)
    r = np.r_[np.nan, closes[1:] / closes[:-1] - 1]  # r[t], the return the origin t forecasts
    sigma = np.array([np.std(r[t - WINDOW : t], ddof=1) for t in grid.origins])
    return draws, realised, sigma


def test_quantile_draws_are_symmetric_gaussian_quantiles():
    z = np.asarray(gaussian_quantile_draws(7))
    np.testing.assert_array_equal(z, -z[::-1])  # exactly: a symmetric aggregation is 0
    assert z[3] == 0.0
    from scipy.stats import norm

    np.testing.assert_allclose(z, norm.ppf((np.arange(7) + 0.5) / 7), rtol=1e-5)
    assert len(gaussian_quantile_draws(8)) == 8 and 0.0 not in np.asarray(gaussian_quantile_draws(8))


def test_volatility_draws_are_the_rolling_window_gaussian(gaussian):
    draws, _, sigma = gaussian
    assert draws.shape == (ROWS - 34, 511)
    # the largest draw is sigma times the top quantile: sigma is the window's sample std (ddof 1)
    np.testing.assert_allclose(draws[:, -1] / float(gaussian_quantile_draws(511)[-1]), sigma, rtol=1e-4)
    np.testing.assert_array_equal(draws, -draws[:, ::-1])


def test_volatility_crps_is_the_gaussian_crps(gaussian):
    draws, y, sigma = gaussian
    crps = properscoring.crps_ensemble(y, draws)
    # the quantile ensemble scores as the Gaussian it stands for, day by day
    np.testing.assert_allclose(crps.mean(), properscoring.crps_gaussian(y, 0.0, sigma).mean(), rtol=1e-3)
    # and a well-specified N(0, s^2) forecast has expected CRPS s/sqrt(pi) (E|X-Y| - E|X-X'|/2 with
    # both 2s/sqrt(pi)); the 20-day estimate of s costs a little: within 5% on 1,166 days
    assert crps.mean() == pytest.approx(SIGMA / np.sqrt(np.pi), rel=0.05)
    assert crps.mean() < np.abs(y).mean()  # beats the zero forecast's CRPS (its absolute error)


def test_volatility_intervals_cover_their_level(gaussian):
    draws, y, _ = gaussian
    for level in (0.8, 0.9):
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=-1)
        coverage = np.mean((y >= lo) & (y <= hi))
        assert coverage == pytest.approx(level, abs=0.03), level  # binomial s.e. ~0.009 at n = 1,166


def test_volatility_is_a_frozen_config_and_checks_its_window():
    a, b = jaxsim.forecasters.volatility(), jaxsim.forecasters.volatility(window=20)
    assert a == b and hash(a) == hash(b) and a.kind == "volatility" and a.draws_per_context() == 511
    assert jaxsim.forecasters.volatility(window=60) != a
    assert a.with_draws_per_context(101).num_samples == 101
    with pytest.raises(jaxsim.errors.ConfigError, match="window must be >= 2"):
        jaxsim.forecasters.volatility(window=1)


def test_the_legacy_verdict_judges_only_out_of_sample_strategies():
    rng = np.random.default_rng(1)
    daily = pd.DataFrame(rng.normal(0.0, 0.01, (120, 4)), columns=["simple", "buy_hold", *IN_SAMPLE_LEGACY])
    daily["maxdiff"] = np.abs(daily["maxdiff"]) + 0.01  # fitted on the days it is scored on: always wins
    daily.attrs["in_sample"] = list(IN_SAMPLE_LEGACY)
    unc = uncertainty(jax.random.key(0), daily, n_resamples=200)
    assert unc.verdict.startswith("no strategy beats zero at 95% (4 strategies tried; maxdiff, maxdiffalwayson")
    assert "fitted in sample, not tested" in unc.verdict
    daily.attrs["in_sample"] = []  # walk_forward: maxdiff is judged, and wins
    assert uncertainty(jax.random.key(0), daily, n_resamples=200).verdict.startswith("maxdiff beats zero at 95%")


def test_compare_runs_the_three_baselines_by_default(monkeypatch):
    from jaxsim.cli.app import build_parser
    from jaxsim.shell import compare as compare_module

    ran = []

    def fake_backtest(prices, forecaster, config, *, key, symbol):
        ran.append((forecaster.kind, config.protocol))
        raise _Stop

    monkeypatch.setattr(compare_module, "backtest", fake_backtest)
    with pytest.raises(_Stop):
        jaxsim.compare("AAPL", {}, n_sims=5, protocol="legacy")
    assert compare_module.BASELINES == ("naive", "historical-mean", "volatility") and ran == [("naive", "legacy")]
    models = dict(compare_module._baselines())
    assert [f.kind for f in models.values()] == ["naive", "historical_mean", "volatility"]
    assert build_parser().parse_args(["compare"]).models == "default,naive,historical-mean,volatility"


class _Stop(Exception):
    """Raised by a stand-in to stop a run before it computes."""


def test_backtest_without_a_forecaster_runs_the_embedded_default(monkeypatch):
    seen = []

    def fake_plan(prices, forecaster, config, **kw):
        seen.append(forecaster)
        raise _Stop

    monkeypatch.setattr(api, "make_plan", fake_plan)
    calls = (
        lambda: jaxsim.backtest("IBM", n_sims=5, protocol="legacy"),
        lambda: jaxsim.backtest_many(["IBM"], n_sims=5, protocol="legacy"),
    )
    for call in calls:
        with pytest.raises(_Stop):
            call()
    default = jaxsim.forecasters.default()
    for f in seen:
        assert isinstance(f, TotoForecaster) and f.config == default.config and f.num_samples == 3072


@pytest.fixture(scope="module")
def aaa_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("named") / "aaa.csv"
    jaxsim.sample("IBM").tail(60).to_frame().to_csv(path)
    return path


def _stock_key(source, **kw):
    config = jaxsim.BacktestConfig(n_sims=5, protocol="legacy")
    plan = make_plan(source, jaxsim.forecasters.naive(), config, **kw)
    return plan.names[0], np.asarray(jax.random.key_data(plan.keys[0])).tolist()


def test_a_frame_is_named_as_the_cli_names_its_file(aaa_csv, monkeypatch):
    from jaxsim.cli.app import main

    ran = []

    def fake_backtest(prices, forecaster, config, *, symbol):
        ran.append(_stock_key(prices, symbol=symbol))
        raise _Stop

    monkeypatch.setattr(api, "backtest", fake_backtest)
    with pytest.raises(_Stop):
        main(["backtest", "--csv", str(aaa_csv), "--model", "naive", "--sims", "5", "--protocol", "legacy"])
    cli = ran[0]
    assert cli[0] == "AAA"  # the file stem, upper-cased
    assert _stock_key(aaa_csv) == _stock_key(str(aaa_csv)) == cli  # the API on the path: the same key
    frame = pd.read_csv(aaa_csv)
    assert _stock_key(frame, symbol="AAA") == cli
    frame.attrs["symbol"] = "AAA"
    assert _stock_key(frame) == cli
    assert _stock_key(pd.read_csv(aaa_csv).assign(Symbol="AAA")) == cli  # a one-valued symbol column
    assert _stock_key({"AAA": pd.read_csv(aaa_csv)}) == cli  # the mapping key names it
    unnamed = pd.read_csv(aaa_csv)
    for run in (
        lambda: jaxsim.backtest(unnamed, jaxsim.forecasters.naive(), n_sims=5, protocol="legacy"),
        lambda: jaxsim.backtest_many([unnamed], jaxsim.forecasters.naive(), n_sims=5, protocol="legacy"),
    ):
        with pytest.raises(PriceDataError, match=r"^the DataFrame has no symbol: pass symbol='NAME'"):
            run()
