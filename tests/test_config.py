"""BacktestConfig (one hashable value for every setting, accepted by the three entry points), the
forecaster's own sample count, forecasted P&L from inside the one compiled program, the strategy
table and the single definition of the shared constants."""

import jax
import numpy as np
import pandas as pd
import pytest

import jaxsim
from jaxsim import forecasters
from jaxsim.config import PROTOCOLS, BacktestConfig, resolve_config
from jaxsim.data.prices import load_prices
from jaxsim.engine.forecasted_pnl import SOURCES
from jaxsim.engine.program import run_program, trace_count
from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ForecastGrid
from jaxsim.optimize import grid_optimizer
from jaxsim.shell import plan
from jaxsim.shell.runs import run_many
from jaxsim.sim.strategy_table import BEST_TIE_ORDER, STRATEGIES, strategy

OPT = grid_optimizer(11)
KEY = jax.random.key(7)
S = 512


def _noisy_last(context, valid, key):
    return context[-1] + 0.01 * jax.random.normal(key, (S,))


NOISY_LAST = forecasters.from_function(_noisy_last, num_samples=S)


@pytest.fixture(scope="module")
def aem(daily_dir):
    return load_prices(daily_dir / "AEM.csv", symbol="AEM")


@pytest.fixture(scope="module")
def alny(daily_dir):
    return load_prices(daily_dir / "ALNY.csv", symbol="ALNY")


# --- the config value ---------------------------------------------------------------------------


def test_config_is_hashable_equal_by_value_and_normalised():
    a = BacktestConfig(n_sims=10, targets=["close", "low"], fee=[0.001, None], optimizer=OPT, protocol="legacy")
    b = BacktestConfig(n_sims=10, targets=("close", "low"), fee=(0.001, None), optimizer=OPT, protocol="legacy")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.targets == ("close", "low") and a.fee == (0.001, None)
    assert a != BacktestConfig(n_sims=11, targets=("close", "low"), fee=(0.001, None), optimizer=OPT, protocol="legacy")
    assert (
        BacktestConfig(n_sims=50, protocol="legacy").targets == ("close", "high", "low")
        and BacktestConfig(n_sims=50, protocol="legacy").num_samples is None
    )
    assert (
        a.replace(n_sims=3).n_sims == 3
        and a.fee_of(1) is None
        and BacktestConfig(fee=0.002, n_sims=50, protocol="legacy").fee_of(5) == 0.002
    )
    assert set(PROTOCOLS) == {"legacy", "walk_forward"}


@pytest.mark.parametrize(
    "bad",
    [
        dict(n_sims=0),
        dict(protocol="lgacy"),
        dict(targets=("high",)),
        dict(targets=("close", "volume")),
        dict(max_context=0),
        dict(num_samples=0),
        dict(stock_key="crc"),
        dict(fee="cheap"),
    ],
)
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        BacktestConfig(**bad)


def test_keywords_and_config_agree_or_raise():
    c = BacktestConfig(n_sims=10, protocol="legacy")
    assert resolve_config(c, {"n_sims": 10}) is c
    assert resolve_config(None, {"n_sims": 10, "protocol": "legacy"}) == c
    with pytest.raises(ConfigError, match="n_sims"):
        resolve_config(c, {"n_sims": 11})
    with pytest.raises(ConfigError, match="unknown backtest settings"):
        resolve_config(None, {"n_simz": 10})


def test_backtest_with_config_equals_keywords_and_conflicts_raise(aem):
    cfg = BacktestConfig(n_sims=8, optimizer=OPT, protocol="walk_forward", max_context=256)
    by_config = jaxsim.backtest(aem, forecasters.naive(), config=cfg, key=KEY)
    by_keywords = jaxsim.backtest(
        aem, forecasters.naive(), n_sims=8, optimizer=OPT, protocol="walk_forward", max_context=256, key=KEY
    )
    pd.testing.assert_frame_equal(by_config.records, by_keywords.records)
    pd.testing.assert_frame_equal(by_config.summary, by_keywords.summary)
    with pytest.raises(ConfigError):
        jaxsim.backtest(aem, forecasters.naive(), config=cfg, n_sims=9)
    # seed is the key rule when no key is passed
    seeded = jaxsim.backtest(aem, NOISY_LAST, config=cfg.replace(seed=7))
    keyed = jaxsim.backtest(aem, NOISY_LAST, config=cfg, key=jax.random.key(7))
    pd.testing.assert_frame_equal(seeded.records, keyed.records)


def test_backtest_many_and_run_many_accept_the_config(aem, alny, tmp_path):
    cfg = BacktestConfig(n_sims=8, optimizer=OPT, max_context=128, protocol="legacy")
    stocks = {"AEM": aem, "ALNY": alny}
    by_config = jaxsim.backtest_many(stocks, forecasters.naive(), cfg, key=KEY, progress=False)
    by_keywords = jaxsim.backtest_many(
        stocks,
        forecasters.naive(),
        n_sims=8,
        optimizer=OPT,
        max_context=128,
        key=KEY,
        progress=False,
        protocol="legacy",
    )
    for s in stocks:
        pd.testing.assert_frame_equal(by_config[s].records, by_keywords[s].records)
    # the "symbol" key rule of a config is run_many's rule
    by_symbol = jaxsim.backtest_many(stocks, NOISY_LAST, cfg.replace(stock_key="symbol"), key=KEY, progress=False)
    a = run_many(stocks, tmp_path / "a", forecaster=NOISY_LAST, config=cfg, key=KEY, chunk_size=2)
    b = run_many(
        stocks,
        tmp_path / "b",
        forecaster=NOISY_LAST,
        n_sims=8,
        optimizer=OPT,
        max_context=128,
        key=KEY,
        chunk_size=2,
        protocol="legacy",
    )
    assert a.done == b.done == ("AEM", "ALNY")
    for s in stocks:
        assert (tmp_path / "a" / s / "summary.csv").read_bytes() == (tmp_path / "b" / s / "summary.csv").read_bytes()
        written = pd.read_csv(tmp_path / "a" / s / "summary.csv", index_col=0)
        np.testing.assert_allclose(written["Return"].to_numpy(), by_symbol[s].summary["Return"].to_numpy(), rtol=1e-6)
    with pytest.raises(ConfigError, match="stock_key"):
        run_many(stocks, tmp_path / "c", forecaster=NOISY_LAST, config=cfg.replace(stock_key="index"))


# --- the forecaster's own sample count ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_toto():
    from jaxsim.models.toto import model as toto_model

    config = toto_model.TOTO_SMALL
    return config, jax.jit(toto_model.init_toto, static_argnums=0)(config, jax.random.key(1))


def test_toto_num_samples_is_honoured(aem, tiny_toto):
    config, params = tiny_toto
    f256 = forecasters.toto(config=config, params=params, num_samples=256)
    f3072 = forecasters.toto(config=config, params=params, num_samples=3072)
    assert f256.draws_per_context() == 256 and f3072.draws_per_context() == 3072
    cfg = BacktestConfig(n_sims=5, optimizer=OPT, max_context=64, protocol="legacy")
    r256 = jaxsim.backtest(aem, f256, cfg, key=KEY)
    assert r256.metadata["num_samples"] == 256 and r256.metadata["num_samples_override"] is None
    # the draws themselves: 256 per context, the same 256 the forecaster draws alone
    prep = plan.prepare_stock(aem, cfg, forecaster=NOISY_LAST)  # a user function: its exact length
    stock = jax.tree.map(np.asarray, plan.stock_arrays(f256, [prep]))
    stock = type(stock)(*(a[0] for a in stock))
    grid = ForecastGrid(len(prep.prices), cfg.n_sims, cfg.max_context)
    # (traced for its shape: run op by op its thousands of small programs would each compile)
    draws = jax.eval_shape(lambda f, s, k: f.forecast(s, grid, cfg.targets, k).samples, f256, stock, KEY)
    assert draws.shape == (3, grid.n_origins, 256)
    r3072 = jaxsim.backtest(aem, f3072, cfg, key=KEY)
    assert r3072.metadata["num_samples"] == 3072
    assert not np.allclose(r256.records["predicted_close"], r3072.records["predicted_close"])
    # an explicit override is applied and recorded: it equals the forecaster built with that count
    overridden = jaxsim.backtest(aem, f3072, cfg.replace(num_samples=256), key=KEY)
    assert overridden.metadata["num_samples"] == 256 and overridden.metadata["num_samples_override"] == 256
    pd.testing.assert_frame_equal(overridden.records, r256.records)
    pd.testing.assert_frame_equal(jaxsim.backtest(aem, f256, cfg, key=KEY).records, r256.records)


def test_forecasters_answer_by_methods():
    naive = forecasters.naive()
    assert naive.draws_per_context() is None and not naive.needs_calendar_features()
    assert naive.forecasts_return_series() and naive.calendar_features(np.arange(3)).shape == (3, 0)
    assert NOISY_LAST.draws_per_context() == S
    with pytest.raises(ConfigError, match="draw count"):
        NOISY_LAST.with_draws_per_context(8)  # the user function decides its draws
    with pytest.raises(ConfigError, match="draw count"):
        plan.with_config_samples(naive, BacktestConfig(num_samples=8, n_sims=50, protocol="legacy"))


def test_cli_samples_builds_the_forecaster_with_that_count():
    from jaxsim.cli.app import _make_forecaster, backtest_config, build_parser

    args = build_parser().parse_args(["backtest", "--samples", "64", "--sims", "7", "--seed", "3"])
    assert _make_forecaster(args).draws_per_context() == 64
    assert backtest_config(args) == BacktestConfig(n_sims=7, seed=3)  # walk_forward: the default
    args = build_parser().parse_args(["backtest", "--model", "naive", "--samples", "64"])
    with pytest.raises(jaxsim.errors.JaxsimError, match="--samples"):
        _make_forecaster(args)


# --- forecasted P&L inside the program ------------------------------------------------------------

# ForecastRet of AEM (n_sims=8, key 7, grid_optimizer(11), the noisy-last function forecaster) from the
# implementation before forecasted P&L moved into the program (a second jitted call after a host trip).
GOLDEN = {
    "legacy": {
        "values": [
            -0.004972955182893202,
            -0.0011270998802501708,
            -0.00875944021390751,
            -0.0040489822677045595,
            -0.006245692624361254,
            -0.033430733717978,
            -0.0024318036157637835,
            -0.0030159554444253445,
        ],
        "sources": {
            "simple": "mean_negative",
            "all_signals": "mean_negative",
            "buy_hold": "mean_negative",
            "unprofit_shutdown": "mean_negative",
            "entry_takeprofit": "mean_negative",
            "highlow": "mean_negative",
            "maxdiff": "model",
            "maxdiffalwayson": "model",
        },
    },
    "walk_forward": {
        "values": [
            -0.004972955182893202,
            -0.0011270998802501708,
            -0.00875944021390751,
            -0.0040489822677045595,
            -0.006245692624361254,
            -0.033430733717978,
            -0.0011889597226399928,
            -0.0036835252863056667,
        ],
        "sources": {
            "simple": "mean_negative",
            "all_signals": "mean_negative",
            "buy_hold": "mean_negative",
            "unprofit_shutdown": "mean_negative",
            "entry_takeprofit": "mean_negative",
            "highlow": "mean_negative",
            "maxdiff": "mean_negative",
            "maxdiffalwayson": "mean_negative",
        },
    },
}


@pytest.mark.parametrize("protocol", ["legacy", "walk_forward"])
def test_forecasted_pnl_equals_the_previous_implementation(aem, protocol):
    # the golden values were made with KEY as the stock's own key: pass it as such (explicit keys=)
    result = jaxsim.backtest_many(
        {"AEM": aem}, NOISY_LAST, n_sims=8, keys=[KEY], optimizer=OPT, protocol=protocol, progress=False
    )["AEM"]
    want = GOLDEN[protocol]
    np.testing.assert_allclose(result.summary["ForecastRet"].to_numpy(), want["values"], rtol=1e-5, atol=1e-8)
    assert result.metadata["forecasted_pnl_source"] == want["sources"]


def test_forecasted_pnl_comes_out_of_the_one_compiled_program(aem):
    cfg = BacktestConfig(n_sims=6, optimizer=OPT, max_context=96, protocol="walk_forward")
    before = trace_count()
    result = jaxsim.backtest(aem, NOISY_LAST, cfg, key=KEY)
    assert trace_count() - before == 1 and result.metadata["compiled"]
    # the program's own outputs hold the broadcast columns and the source codes
    prep = plan.prepare_stock(aem, cfg, forecaster=NOISY_LAST)  # a user function: its exact length
    records, codes = jax.device_get(
        run_program(
            NOISY_LAST,
            plan.stock_arrays(NOISY_LAST, [prep]),
            [prep.fee],
            [prep.spread],
            plan.stock_key(KEY, "AEM")[None],
            plan.make_setup(prep, cfg),
        )
    )
    assert codes.shape == (1, len(STRATEGIES)) and codes.dtype == np.int32
    assert trace_count() - before == 1  # same setup: no retrace
    for j, s in enumerate(STRATEGIES):
        column = records[f"{s.prefix}_forecasted_pnl"][0]
        assert column.shape == (6,) and (column == column[0]).all()
        np.testing.assert_array_equal(result.records[f"{s.prefix}_forecasted_pnl"].to_numpy(), column)
        assert result.metadata["forecasted_pnl_source"][s.name] == SOURCES[codes[0, j]]


# --- the strategy table and the constants -------------------------------------------------------


def test_strategy_table_is_consistent(aem):
    names = [s.name for s in STRATEGIES]
    assert len(STRATEGIES) == 8 and len(set(names)) == 8 and len({s.prefix for s in STRATEGIES}) == 8
    assert BEST_TIE_ORDER == ("highlow", "entry_takeprofit", "maxdiff", "all_signals", "simple")
    assert [s.name for s in STRATEGIES if s.best_candidate] == [
        "simple",
        "all_signals",
        "entry_takeprofit",
        "highlow",
        "maxdiff",
    ]
    assert strategy("maxdiff").final_day == "maxdiff_finalday_return"
    with pytest.raises(KeyError):
        strategy("nope")
    result = jaxsim.backtest(aem, forecasters.naive(), n_sims=8, optimizer=OPT, max_context=128, protocol="legacy")
    assert list(result.summary.index) == names
    for s in STRATEGIES:
        for field in ("return", "sharpe", "avg_daily_return", "annual_return", "forecasted_pnl"):
            assert f"{s.prefix}_{field}" in result.records
        assert s.final_day in result.records


def test_shared_constants_are_defined_once():
    from jaxsim.cli import app
    from jaxsim.engine import program
    from jaxsim.forecast import grid, interface
    from jaxsim.layout import ORIGINS_PER_SIM, PRICE_COLUMN, PRICE_COLUMNS
    from jaxsim.optimize import objective as multipliers
    from jaxsim.sim import maxdiff, metrics, profit, simulation, strategies

    assert multipliers.BOUND is profit.MULTIPLIER_BOUND and maxdiff.MULTIPLIER_BOUND is profit.MULTIPLIER_BOUND
    assert program.PROTOCOLS is PROTOCOLS and app.PROTOCOLS is PROTOCOLS
    assert plan.DEFAULT_SPREAD is metrics.DEFAULT_SPREAD and strategies.DEFAULT_SPREAD is metrics.DEFAULT_SPREAD
    assert interface.PRICE_COLUMN is PRICE_COLUMN and simulation.PRICE_COLUMNS is PRICE_COLUMNS
    assert grid.ORIGINS_PER_SIM is ORIGINS_PER_SIM and simulation.ORIGINS_PER_SIM is ORIGINS_PER_SIM
    assert [PRICE_COLUMNS[i] for i in PRICE_COLUMN.values()] == list(PRICE_COLUMN)
