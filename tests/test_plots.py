"""Figures (jaxsim.report.plots) and their inputs (jaxsim.report.plot_data): what each figure draws, that
nothing touches pyplot or the matplotlib backend, and that a figure shows as PNG in IPython."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import matplotlib
import numpy as np
import pandas as pd
import pytest
from report_helpers import equity_curves

from jaxsim.errors import ConfigError
from jaxsim.report import plot_data, plots
from jaxsim.report.result import BacktestResult
from jaxsim.sim.strategy_table import STRATEGIES
from jaxsim.stats.performance import max_drawdown

ROOT = Path(__file__).resolve().parents[1]
N = 12
DATES = pd.bdate_range("2024-01-02", periods=N)[::-1].to_numpy().astype("datetime64[D]")  # row 0 newest


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for _, prefix, final, _ in STRATEGIES:
        for metric in ("return", "sharpe", "avg_daily_return", "annual_return"):
            arrays[f"{prefix}_{metric}"] = rng.normal(0, 0.01, N).astype(np.float32)
        arrays[final] = rng.normal(0, 0.02, N).astype(np.float32)
    for name in ("maxdiff", "maxdiffalwayson"):
        arrays[f"{name}_baseline_return"] = rng.normal(0, 0.01, N).astype(np.float32)
        arrays[f"{name}_optimized_return"] = rng.normal(0, 0.01, N).astype(np.float32)
        arrays[f"{name}_close_at_eod"] = np.zeros(N, bool)
    for field in (
        "maxdiffprofit_profit_high_multiplier",
        "maxdiffprofit_profit_low_multiplier",
        "maxdiffalwayson_high_multiplier",
        "maxdiffalwayson_low_multiplier",
    ):
        arrays[field] = np.full(N, 0.001, np.float32)
    close = (100 * np.cumprod(1 + rng.normal(0, 0.01, N)))[::-1].astype(np.float32)
    arrays["close"] = close
    arrays["predicted_close"] = (close * (1 + rng.normal(0, 0.005, N))).astype(np.float32)
    arrays["close_ci_band"] = np.abs(rng.normal(0.01, 0.002, (N, 7))).astype(np.float32)
    return arrays


@pytest.fixture
def result():
    return BacktestResult.from_arrays("TEST", "legacy", _arrays(), DATES, {"forecaster": "naive", "fee": 0.0005})


@pytest.fixture(autouse=True)
def _no_pyplot_state():
    """Every test: the backend and pyplot's figure list are as before."""
    import matplotlib.pyplot as plt

    backend, figs = matplotlib.get_backend(), plt.get_fignums()
    yield
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == figs


def _daily(seed=1, cols=("a", "b", "c"), t=60):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.normal(0.0005, 0.015, (t, len(cols))), columns=list(cols), index=pd.bdate_range("2023-01-02", periods=t)
    )


def test_equity_figure_draws_equity_and_drawdown_per_strategy():
    daily = _daily()
    daily.iloc[5, 1] = np.nan  # a day without a value is flat
    close = pd.Series(
        100 * np.cumprod(1 + np.linspace(-0.01, 0.01, 61)), index=pd.bdate_range("2022-12-30", periods=61)
    )
    fig = plots.equity_figure(daily, close, title="t")
    assert isinstance(fig, plots.PlotFigure)
    ax, ax_dd = fig.axes
    assert [l.get_label() for l in ax.lines if not l.get_label().startswith("_")] == ["a", "b", "c", "buy & hold"]
    assert ax.get_ylabel() == "equity (start = 1)" and ax_dd.get_ylabel() == "drawdown [%]"
    equity = np.cumprod(1 + daily.fillna(0).to_numpy(), axis=0)
    dd_lines = [l for l in ax_dd.lines if l.get_label() in daily.columns]
    for j, (eq_line, dd_line) in enumerate(zip(ax.lines[:3], dd_lines)):
        np.testing.assert_allclose(eq_line.get_ydata(), equity[:, j], rtol=1e-12)
        # the drawdown panel's minimum is the series' max drawdown (stats.performance, in percent)
        mdd = float(
            max_drawdown(
                jax.numpy.asarray(daily.iloc[:, j].to_numpy()),
                jax.numpy.asarray(np.isfinite(daily.iloc[:, j].to_numpy())),
            )
        )
        np.testing.assert_allclose(np.min(dd_line.get_ydata()), 100 * mdd, rtol=1e-5)
    # buy-and-hold starts from the close before the first day
    hold = ax.lines[3].get_ydata()
    np.testing.assert_allclose(hold, close.iloc[1:].to_numpy() / close.iloc[0], rtol=1e-12)


def test_equity_figure_rejects_a_frame_without_dates():
    with pytest.raises(TypeError, match="DatetimeIndex"):
        plots.equity_figure(pd.DataFrame({"a": [0.01, 0.02]}))


def test_fan_figure_one_axes_per_target_with_both_bands():
    idx = pd.bdate_range("2024-01-01", periods=20)
    rng = np.random.default_rng(0)
    point = rng.normal(0, 0.01, 20)
    frame = pd.DataFrame(
        {
            "point": point,
            "q0.1": point - 0.02,
            "q0.5": point + 0.001,
            "q0.9": point + 0.02,
            "band": np.full(20, 0.004),
            "realised": rng.normal(0, 0.01, 20),
        },
        index=idx,
    )
    fig = plots.fan_figure({"close": frame, "high": frame[["point", "realised"]]})
    a_close, a_high = fig.axes
    assert (a_close.get_title(), a_high.get_title()) == ("close", "high")
    assert len(a_close.collections) == 2 and len(a_high.collections) == 0  # 10-90% and 40-60% bands
    lines = {l.get_label(): l for l in a_close.lines}
    np.testing.assert_allclose(lines["point forecast"].get_ydata(), 100 * point)
    np.testing.assert_allclose(lines["realised"].get_ydata(), 100 * frame["realised"].to_numpy())
    outer, inner = a_close.collections  # the 40-60% band is the median +- band / 2
    lo, hi = inner.get_paths()[0].vertices[:, 1].min(), inner.get_paths()[0].vertices[:, 1].max()
    np.testing.assert_allclose([lo, hi], [100 * (point + 0.001 - 0.002).min(), 100 * (point + 0.001 + 0.002).max()])
    with pytest.raises(ValueError, match="point"):
        plots.fan_figure({"close": frame[["realised"]]})


def test_heatmap_figure_marks_the_chosen_point_and_the_grid_max():
    g = np.linspace(-0.03, 0.03, 7)
    values = -((g[:, None] - 0.01) ** 2) - (g[None, :] + 0.02) ** 2
    fig = plots.heatmap_figure(g, g, values, (0.0123, -0.0187))
    ax, cbar = fig.axes
    assert ax.get_xlabel().startswith("mh") and ax.get_ylabel().startswith("ml")
    marks = {l.get_label().split()[0]: (l.get_xdata()[0], l.get_ydata()[0]) for l in ax.lines}
    assert marks["chosen"] == (0.0123, -0.0187)
    np.testing.assert_allclose(marks["grid"], (0.01, -0.02))
    np.testing.assert_array_equal(ax.collections[0].get_array().reshape(7, 7), values.T)
    with pytest.raises(ValueError, match="do not match"):
        plots.heatmap_figure(g, g[:3], values, (0, 0))


def test_bootstrap_figure_one_panel_per_strategy():
    rng = np.random.default_rng(0)
    samples = {"a": rng.normal(1, 0.5, 300), "b": np.full(300, np.nan), "c": np.zeros(300)}
    fig = plots.bootstrap_figure(samples, {"a": 1.1, "b": np.nan, "c": 0.0})
    assert len(fig.axes) == 3
    assert [ax.get_title(loc="left").split()[0] for ax in fig.axes] == ["a", "b", "c"]
    # 40 histogram bars and the shaded interval; nothing without a finite resample; no bars for a constant
    assert [len(ax.patches) for ax in fig.axes] == [41, 0, 1]
    assert fig.axes[0].lines[0].get_xdata()[0] == 1.1
    assert "no finite resample" in fig.axes[1].get_title(loc="left")


def test_a_figure_renders_as_png_in_ipython_without_matplotlib_integration():
    pytest.importorskip("IPython")
    from IPython.core.formatters import PNGFormatter

    fig = plots.equity_figure(_daily())
    png = PNGFormatter()(fig)  # no matplotlib printer registered: the figure's own _repr_png_
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_result_plots_from_the_records(result):
    fig = result.plot()
    assert len(fig.axes) == 2
    daily = plot_data.daily_returns(result)
    equity = np.cumprod(1 + daily.fillna(0).to_numpy(), axis=0)
    for j, line in enumerate(fig.axes[0].lines[: len(STRATEGIES)]):
        np.testing.assert_allclose(line.get_ydata(), equity[:, j], rtol=1e-12)
    if not hasattr(result, "daily"):  # the records' rule: chained final-day P&L
        np.testing.assert_allclose(equity, equity_curves(result.records).to_numpy(), rtol=1e-12)
    fan = result.plot("fan")
    frame = plot_data.forecast_frames(result)["close"]
    rec = result.records.iloc[::-1]
    c = rec["close"].to_numpy(np.float64)
    np.testing.assert_allclose(frame["point"], rec["predicted_close"].to_numpy(np.float64) / c - 1, rtol=1e-12)
    np.testing.assert_allclose(frame["realised"].iloc[1:], c[1:] / c[:-1] - 1, rtol=1e-12)
    assert np.isnan(frame["realised"].iloc[0])
    assert frame.index.is_monotonic_increasing and len(fan.axes) == 1
    with pytest.raises(ConfigError, match="kind"):
        result.plot("pie")
    with pytest.raises(ConfigError, match="prices="):
        result.plot("heatmap")


def test_adapters_prefer_the_results_own_frames(result):
    """A result with out-of-sample ``daily`` / ``closes`` / ``forecasts`` frames is plotted from them."""
    import types

    idx = pd.bdate_range("2024-01-02", periods=5)
    daily = pd.DataFrame({"simple": [0.01, np.nan, -0.02, 0.0, 0.01]}, index=idx)
    closes = pd.Series([10.0, 10.1, 10.2, 10.0, 10.0, 10.1], index=pd.bdate_range("2024-01-01", periods=6))
    cols = pd.MultiIndex.from_product(
        [["close", "high"], ["point", "q0.1", "q0.5", "q0.9", "band", "realised"]], names=["target", "field"]
    )
    forecasts = pd.DataFrame(np.arange(60.0).reshape(5, 12) / 1000, index=idx, columns=cols)
    fake = types.SimpleNamespace(daily=daily, closes=closes, forecasts=forecasts, records=result.records)
    assert plot_data.daily_returns(fake) is daily
    assert plot_data.benchmark_close(fake) is closes
    frames = plot_data.forecast_frames(fake)
    assert list(frames) == ["close", "high"]
    pd.testing.assert_frame_equal(frames["high"], forecasts["high"])
    fig = plots.fan_figure(frames)
    assert [len(ax.collections) for ax in fig.axes] == [2, 2]
    hold = plots.equity_figure(daily, closes).axes[0].lines[1].get_ydata()
    np.testing.assert_allclose(hold, closes.iloc[1:].to_numpy() / 10.0)


def test_files_write_the_requested_plots(result, tmp_path):
    files = result.files(plot=("equity", "fan"))
    assert {"equity.png", "fan.png"} <= set(files) and "bootstrap.png" not in files
    assert all(files[k][:8] == b"\x89PNG\r\n\x1a\n" for k in ("equity.png", "fan.png"))
    assert not any(k.endswith(".png") for k in result.files(plot=False))
    with pytest.raises(ConfigError, match="heatmap"):
        result.files(plot=("heatmap",))
    paths = result.save(tmp_path / "r", plots=("fan",))
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"fan.png", "metadata.json", "records.csv", "summary.csv"} <= names
    assert {n for n in names if n.endswith(".png")} == {"fan.png"}
    assert paths["fan"] == tmp_path / "r" / "fan.png"


def test_result_bootstrap_plot_uses_the_stats_bootstrap(result):
    daily = plot_data.daily_returns(result)
    key = jax.random.key(3)
    samples, estimates = plot_data.sharpe_bootstrap(daily, key, n_resamples=64)
    from jaxsim.stats.bootstrap import bootstrap_distribution

    x = jax.numpy.asarray(daily["maxdiff"].to_numpy(), jax.numpy.float32)
    ref, _ = bootstrap_distribution(key, x, n_resamples=64)
    np.testing.assert_allclose(samples["maxdiff"], np.asarray(ref.sharpe), rtol=1e-5)
    r = daily["maxdiff"].to_numpy()
    r = r[np.isfinite(r)]  # days without a value are masked out
    np.testing.assert_allclose(estimates["maxdiff"], np.sqrt(252) * r.mean() / r.std(ddof=1), rtol=1e-4)
    fig = result.plot("bootstrap", key=key, n_resamples=64)
    assert len(fig.axes) == len(STRATEGIES)


@pytest.fixture(scope="module")
def real():
    import jaxsim
    from jaxsim import forecasters

    prices = jaxsim.sample("AAPL")
    return prices, jaxsim.backtest(
        prices, forecasters.historical_mean(), n_sims=8, key=jax.random.key(0), protocol="legacy"
    )


@pytest.mark.parametrize("strategy", ["maxdiff", "maxdiffalwayson"])
def test_heatmap_rebuilds_the_simulation_problem(real, strategy):
    prices, res = real
    for sim in (0, 5):
        land = plot_data.maxdiff_landscape(res, prices, sim=sim, strategy=strategy, resolution=21)
        # the exact objective at the recorded multipliers is the recorded six-day P&L: same problem
        np.testing.assert_allclose(land.chosen_value, land.recorded_value, rtol=1e-6, atol=1e-7)
        assert land.values.shape == (21, 21) and land.chosen_value >= land.values.max() - 1e-6
    fig = res.plot("heatmap", prices=prices, strategy=strategy, resolution=21)
    star = next(l for l in fig.axes[0].lines if l.get_label().startswith("chosen"))
    r = res.records.iloc[0]
    fields = plot_data.LANDSCAPE_FIELDS[strategy]
    np.testing.assert_allclose([star.get_xdata()[0], star.get_ydata()[0]], [r[fields[0]], r[fields[1]]])
    with pytest.raises(ConfigError, match="no row dated"):
        plot_data.maxdiff_problem(res, _short(prices))


def _short(prices):
    import dataclasses

    return dataclasses.replace(
        prices,
        dates=prices.dates[:-5],
        open=prices.open[:-5],
        high=prices.high[:-5],
        low=prices.low[:-5],
        close=prices.close[:-5],
        volume=None if prices.volume is None else prices.volume[:-5],
        cleaning=None,
        residuals=prices.residuals[:-5],
    )


def test_plain_process_backend_is_unchanged(tmp_path):
    """A fresh process that picked a backend keeps it, and pyplot is never imported by plotting or saving."""
    script = textwrap.dedent(f"""
        import sys
        import matplotlib
        matplotlib.use("svg")
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_plots import _arrays, DATES
        from jaxsim.report.result import BacktestResult
        r = BacktestResult.from_arrays("T", "legacy", _arrays(), DATES, {{"forecaster": "naive", "fee": 0.0005}})
        figs = [r.plot(), r.plot("fan")]
        r.save({str(tmp_path / "out")!r})
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        print("ok", len(figs))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("MPLBACKEND", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok", "2"]
    png = (tmp_path / "out" / "equity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
