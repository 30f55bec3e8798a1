r"""Tune a user strategy's parameters by gradient, walk-forward: fitted on earlier simulations, reported on later ones.

Protocol (``"walk_forward"``, the one protocol): simulations are put in chronological order
``c = N-1-k`` (c = 0 the oldest). With ``n_fit = round(fit_fraction N)`` and ``windows = W``, the
simulations ``c >= n_fit - 1 + FIT_LAG`` are split into W consecutive test blocks; test block w
starting at ``s_w`` is scored with parameters fitted on the simulations ``c <= s_w - FIT_LAG`` (an
expanding window; all stocks pooled). Simulation k + 6 ends the day before simulation k's first
evaluation day (the gap of :mod:`jaxsim.engine.walk_forward`), so no day that a test simulation
scores, nor any row after its first day's open, entered the fit. Only test simulations are reported.

Objective: the mean daily smooth P&L over the fit simulations (x stocks x 6 days),

.. math::

    J_T(\theta) = \frac{1}{6 \sum w}\sum_{b, k} w_{b,k} \sum_i \widetilde{PnL}_{T}(\theta)_{b,k,i}

where the smooth P&L is the surrogate PF (:func:`jaxsim.sim.surrogate.soft_profit_values`) for
``"limits"`` strategies, annealed geometrically from ``temperatures[0]`` to ``temperatures[1]``,
and the E_cmp net return (smooth in the positions) for ``"signals"``. It is ascended with the optax
transform ``tx``; after every step the parameters are re-scored with the EXACT P&L and the best
exact in-sample point is kept (the surrogate only provides gradients).

One compile per (strategy, tx, steps, temperatures, shapes): the fit is a module-level jit with
hashable static arguments (build a custom ``tx`` once and reuse it: it is part of the key by
identity). Keys are explicit (the forecasts' key; the fit itself is deterministic).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from jaxsim.engine.walk_forward import FIT_LAG
from jaxsim.errors import ConfigError
from jaxsim.research.strategy_data import SimulationData, simulation_data
from jaxsim.sim.simulation import StrategyConfig
from jaxsim.sim.strategy import UserStrategy, day_pnl, outcomes, soft_day_pnl, strategy_fields, strategy_output

__all__ = ["TUNE_PROTOCOLS", "TuneResult", "default_tx", "walk_forward_windows", "tune", "trace_count"]

TUNE_PROTOCOLS = ("walk_forward",)
_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the tuning program has been traced in this process."""
    return _TRACES["count"]


@functools.cache
def default_tx():
    """adam(1e-2): one cached object, so repeated :func:`tune` calls reuse the compiled program."""
    return optax.adam(1e-2)


def walk_forward_windows(n_sims: int, fit_fraction: float = 0.5, windows: int = 1):
    """Fit and test masks over chronological simulations (see the module docstring).

    Returns:
      ``(fit, test)``: bool ``(W, N)`` in ROW order (index k, row 0 the most recent); each
      simulation is in at most one test block.
    """
    n_fit = int(round(float(fit_fraction) * n_sims))
    first_test = n_fit - 1 + FIT_LAG
    if n_fit < 1 or first_test + windows > n_sims:
        raise ConfigError(
            f"walk_forward tuning with {n_sims} simulations, fit_fraction={fit_fraction} and "
            f"windows={windows} leaves no test simulation: it needs n_sims >= "
            f"round(fit_fraction n_sims) + {FIT_LAG - 1} + windows (use more simulations)"
        )
    bounds = np.linspace(first_test, n_sims, windows + 1).round().astype(int)
    c = np.arange(n_sims)  # chronological index of column c
    fit = np.stack([c <= s - FIT_LAG for s in bounds[:-1]])
    test = np.stack([(c >= a) & (c < b) for a, b in zip(bounds[:-1], bounds[1:])])
    return fit[:, ::-1].copy(), test[:, ::-1].copy()  # to row order k = N-1-c


def _float_tree(params):
    # converted on the host and transferred: jnp.asarray would compile a conversion program per shape
    return jax.device_put(jax.tree.map(lambda x: np.asarray(x, np.float32), params))


def _sim_pnl(strategy, params, views, fees, spreads, *, temperature):
    """``(B, N)`` summed daily P&L per simulation: exact (temperature None) or smooth."""

    def one(v, fee, spread):
        realised = outcomes(v.prices, v.prices_valid)
        out = strategy_output(strategy, v, params)
        if temperature is None:
            pnl = day_pnl(strategy, out, realised, fee=fee, spread=spread)
        else:
            pnl = soft_day_pnl(strategy, out, realised, fee=fee, spread=spread, temperature=temperature)
        return jnp.sum(jnp.where(jnp.isfinite(pnl), pnl, 0.0))

    per_stock = jax.vmap(one, in_axes=(0, None, None))
    return jax.vmap(per_stock)(views, fees, spreads)


@functools.partial(jax.jit, static_argnames=("strategy", "tx", "steps", "temperatures"))
def _fit(params0, views, fees, spreads, weights, *, strategy, tx, steps, temperatures):
    _TRACES["count"] += 1  # Python side effect: once per trace
    t0, t1 = temperatures

    def objective(params, w, temperature):
        pnl = _sim_pnl(strategy, params, views, fees, spreads, temperature=temperature)
        return jnp.sum(w * pnl) / (6.0 * jnp.maximum(jnp.sum(w), 1.0))

    def window(w):
        def step(carry, t):
            params, state, best, best_value = carry
            temperature = t0 * (t1 / t0) ** (t / max(steps - 1, 1))
            value, grad = jax.value_and_grad(objective)(params, w, temperature)
            exact = objective(params, w, None)
            better = exact > best_value
            best = jax.tree.map(lambda a, b: jnp.where(better, a, b), params, best)
            best_value = jnp.where(better, exact, best_value)
            updates, state = tx.update(jax.tree.map(jnp.negative, grad), state, params)  # ascent
            params = jax.tree.map(lambda p, u: p + u, params, updates)
            return (params, state, best, best_value), (value, exact)

        init = (params0, tx.init(params0), params0, jnp.asarray(-jnp.inf, jnp.float32))
        (params, _, best, best_value), (soft, exact) = jax.lax.scan(step, init, jnp.arange(steps, dtype=jnp.float32))
        last = objective(params, w, None)  # the point after the last step is a candidate too
        better = last > best_value
        best = jax.tree.map(lambda a, b: jnp.where(better, a, b), params, best)
        return best, jnp.maximum(best_value, last), soft, exact

    return jax.vmap(window)(weights)


@functools.partial(jax.jit, static_argnames=("strategy", "config"))
def _score(params, views, fees, spreads, *, strategy, config):
    """Exact record fields ``(W, B, N)`` of every simulation under each window's parameters."""

    def one(p, v, fee, spread):
        return strategy_fields(strategy, v, p, fee=fee, spread=spread, config=config)

    per_stock = jax.vmap(one, in_axes=(None, 0, None, None))
    per_window = jax.vmap(per_stock, in_axes=(None, 0, 0, 0))
    return jax.vmap(per_window, in_axes=(0, None, None, None))(params, views, fees, spreads)


@dataclasses.dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
      strategy: the strategy with the LAST window's fitted parameters as its defaults (ready for
        :func:`jaxsim.backtest`).
      params: fitted parameters per window (leading axis W).
      initial_params: the starting parameters.
      objective: ``(W, steps)`` in-sample surrogate objective per step (mean daily smooth P&L).
      exact_objective: ``(W, steps)`` in-sample exact objective per step (re-scored).
      fitted_objective: ``(W,)`` in-sample exact objective of the kept parameters.
      fit_mask, test_mask: ``(W, N)`` bool in row order (row 0 the most recent simulation).
      records: symbol -> DataFrame of the OUT-OF-SAMPLE simulations only (newest first): ``date``,
        ``sim`` (k), ``window``, and the strategy's record fields.
      summary: per stock and pooled (``"all"``): mean Return, Sharpe, AnnualRet, FinalDay of the
        out-of-sample simulations.
    """

    strategy: UserStrategy
    params: Any
    initial_params: Any
    objective: np.ndarray
    exact_objective: np.ndarray
    fitted_objective: np.ndarray
    fit_mask: np.ndarray
    test_mask: np.ndarray
    records: dict
    summary: pd.DataFrame

    @property
    def test_sims(self) -> np.ndarray:
        """Row indices k of the out-of-sample simulations (newest first)."""
        return np.flatnonzero(self.test_mask.any(0))

    def window_params(self, w: int = -1):
        """The parameters fitted for window ``w``."""
        return jax.tree.map(lambda a: np.asarray(a)[w], self.params)

    def daily(self) -> pd.DataFrame:
        """Out-of-sample daily P&L per stock: each test simulation's final day (consecutive
        simulations' final days are consecutive trading days), chronological, dates x symbols."""
        name = self.strategy.name
        cols = {
            s: pd.Series(r[f"{name}_finalday"].to_numpy(np.float64), index=pd.DatetimeIndex(r["date"]))
            for s, r in self.records.items()
        }
        return pd.DataFrame(cols).sort_index()

    def plot(self, ax=None):
        """The in-sample objective per step (surrogate and exact); returns the matplotlib Figure."""
        from jaxsim.report.plots import PlotFigure  # deferred: matplotlib only when plotting

        fig = PlotFigure(figsize=(7, 4), layout="constrained") if ax is None else ax.figure  # labels never cut
        ax = fig.add_subplot() if ax is None else ax
        for w in range(self.objective.shape[0]):
            ax.plot(self.objective[w], label=f"surrogate, window {w}")
            ax.plot(self.exact_objective[w], ls="--", label=f"exact, window {w}")
        ax.set_xlabel("optax step")
        ax.set_ylabel("in-sample mean daily P&L")
        ax.set_title(f"tuning {self.strategy.name} (walk-forward, fit windows only)")
        ax.legend(fontsize=8)
        return fig


def _summary(records: dict, name: str) -> pd.DataFrame:
    cols = {
        "Return": f"{name}_return",
        "Sharpe": f"{name}_sharpe",
        "AnnualRet": f"{name}_annual_return",
        "FinalDay": f"{name}_finalday",
    }
    rows = {s: {k: r[v].mean() for k, v in cols.items()} for s, r in records.items()}
    pooled = pd.concat(list(records.values()))
    rows["all"] = {k: pooled[v].mean() for k, v in cols.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "symbol"
    return frame


def tune(
    strategy: UserStrategy,
    data,
    *,
    forecaster=None,
    tx=None,
    protocol: str = "walk_forward",
    steps: int = 200,
    temperatures=(1e-3, 1e-4),
    fit_fraction: float = 0.5,
    windows: int = 1,
    params=None,
    key=None,
    config=None,
    **settings,
) -> TuneResult:
    """Fit a user strategy's continuous parameters by gradient ascent, walk-forward (module docstring).

    Args:
      strategy: a :class:`~jaxsim.sim.strategy.UserStrategy` whose ``params`` are a pytree of floats.
      data: Prices (one, a list or a dict) with ``forecaster=``, or a
        :class:`~jaxsim.research.strategy_data.SimulationData` computed once by
        :func:`~jaxsim.research.strategy_data.simulation_data` (reuse forecasts across tunes).
      forecaster: needed when ``data`` are prices.
      tx: optax transform (default :func:`default_tx`, adam 1e-2).
      protocol: ``"walk_forward"``.
      steps: optax steps per window.
      temperatures: surrogate PF widths ``(T_0, T_1)`` (limits strategies).
      fit_fraction: share of the simulations (oldest first) in the first fit window.
      windows: number of consecutive test blocks (expanding fit windows).
      params: starting parameters (default ``strategy.params``).
      key: PRNG key of the forecasts (prices input); default ``jax.random.key(config.seed)``.
      config / **settings: backtest settings (``n_sims``, ``fee``, ...) for the prices input.

    Returns:
      :class:`TuneResult`.
    """
    if not isinstance(strategy, UserStrategy):
        raise ConfigError("tune needs a jaxsim.UserStrategy (see jaxsim.user_strategy)")
    if protocol not in TUNE_PROTOCOLS:
        raise ConfigError(f"tune protocol must be one of {TUNE_PROTOCOLS}, got {protocol!r}")
    if not isinstance(data, SimulationData):
        if forecaster is None:
            raise ConfigError("tune on prices needs forecaster=...; or pass jaxsim.simulation_data(prices, forecaster)")
        data = simulation_data(data, forecaster, config, key=key, draws=strategy.needs_draws, **settings)
    elif strategy.needs_draws and data.views.draws is None:
        raise ConfigError(
            f"strategy {strategy.name!r} needs draws: build the data with simulation_data(..., draws=True)"
        )
    start = strategy.params if params is None else params
    if start is None:
        raise ConfigError(f"strategy {strategy.name!r} has no parameters to tune")
    start = _float_tree(start)
    fit, test = walk_forward_windows(data.n_sims, fit_fraction, int(windows))
    # (W, B, N): a window's fit simulations of every stock, without a stock's padding (n_sims="all")
    weights = jax.device_put(np.asarray(fit[:, None, :] & data.valid[None], np.float32))
    views, fees, spreads = jax.device_put((data.views, data.fees, data.spreads))
    best, best_value, soft, exact = jax.device_get(
        _fit(
            start,
            views,
            fees,
            spreads,
            weights,
            strategy=strategy,
            tx=default_tx() if tx is None else tx,
            steps=int(steps),
            temperatures=tuple(float(t) for t in temperatures),
        )
    )

    fields = {}
    for crypto in sorted(set(bool(c) for c in data.crypto)):
        fields[crypto] = jax.device_get(
            _score(best, views, fees, spreads, strategy=strategy, config=StrategyConfig(crypto=crypto))
        )
    window_of = np.where(test.any(0), np.argmax(test, 0), -1)  # (N,) test window of each row
    records = {}
    for b, symbol in enumerate(data.symbols):
        f = fields[bool(data.crypto[b])]
        rows = np.flatnonzero((window_of >= 0) & data.valid[b])
        cols = {"date": pd.to_datetime(data.dates[b, rows]), "sim": rows, "window": window_of[rows]}
        for name, value in f.items():
            v = np.asarray(value)[window_of[rows], b, rows]
            cols[name] = v if v.ndim == 1 else [row.tolist() for row in v]
        records[symbol] = pd.DataFrame(cols)
    last = jax.tree.map(lambda a: np.asarray(a)[-1], best)
    return TuneResult(
        strategy.replace(params=last),
        best,
        start,
        np.asarray(soft),
        np.asarray(exact),
        np.asarray(best_value),
        fit,
        test,
        records,
        _summary(records, strategy.name),
    )
