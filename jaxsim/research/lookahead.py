r"""A guard rail for user strategies: perturb the future, the past decisions and P&L must not change.

Definition. Day i of simulation k trades on row ``o = e_k - 6 + i`` (``"limits"``, ``"day_trades"``: orders placed
before its open, filled on its high/low/close) or earns ``R_i`` over row ``o = e_k - 5 + i``
(``"signals"``: a position taken at the close of row o-1). For every cut row c, the stock's rows
``>= c`` (open, high, low, close, volume) are multiplied by random factors ``exp(scale z)``, then
by the antithetic ``exp(-scale z)``, and the whole pipeline reruns for each (forecaster included:
forecasts whose contexts reach row c change as they should). Then for every (k, i) with ``o <= c``,
under both perturbations:

* the strategy's output of day i (positions; for limits also the levels) must be unchanged, and
* so must its P&L of day i scored on the ORIGINAL prices of row o (PF for limits, the day-trade
  rules with their side-switch fees for day_trades; for signals
  ``s_i R_i - |s_i - s_{i-1}| (fee + |1 - SPREAD|/2)``, without E_cmp's mixed-fee factor, which
  looks at all six days by construction).

A strategy that reads the row it trades on before the open (e.g. the day's own low) changes when
c = o and is flagged; the built-ins pass. The antithetic pair catches decisions that only read the
sign of a perturbed quantity (e.g. the sign of the day's own return): one of the two moves it across
zero unless the quantity is larger than the perturbation both ways.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.config import resolve_config
from jaxsim.errors import ConfigError
from jaxsim.forecast.grid import ForecastGrid
from jaxsim.research.strategy_data import ViewSetup, stock_views
from jaxsim.shell.plan import make_plan
from jaxsim.sim.simulation import N_DAYS
from jaxsim.sim.strategy import UserStrategy, day_pnl, outcomes, strategy_output

__all__ = ["LookaheadError", "LookaheadReport", "check_no_lookahead", "NOISE_SALT"]

NOISE_SALT = 0x4C4F4F4B  # "LOOK": the perturbations' key, folded from the stock's forecast key


class LookaheadError(AssertionError):
    """A strategy's past decisions or P&L changed when only future rows were perturbed."""


@dataclasses.dataclass(frozen=True)
class LookaheadReport:
    """Result of :func:`check_no_lookahead`.

    Attributes:
      ok: no violation.
      violations: ``(cut row, simulation k, day i, max |change|)`` tuples (at most 20 kept).
      n_checked: (cut, simulation, day) triples checked.
    """

    ok: bool
    violations: tuple
    n_checked: int


def _decisions(strategy, views, params):
    """(N, 6, F): the F arrays of each simulation's output (positions; levels and positions)."""
    out = jax.vmap(lambda v: strategy_output(strategy, v, params))(views)
    return jnp.stack(jax.tree.leaves(out), -1)


def _day_pnl(strategy, decisions, realised, fee, spread, structure):
    """(N, 6) P&L of each day from its own decisions on the given realised outcomes."""
    if strategy.kind != "signals":  # order kinds: a day's P&L is its own orders on its own row
        out = jax.tree.unflatten(structure, [decisions[..., j] for j in range(decisions.shape[-1])])
        return jax.vmap(lambda o, r: day_pnl(strategy, o, r, fee=fee, spread=spread))(out, realised)
    s = decisions[..., 0]
    prev = jnp.concatenate([jnp.zeros_like(s[:, :1]), s[:, :-1]], -1)
    return s * realised.returns - jnp.abs(s - prev) * (fee + jnp.abs(1.0 - spread) / 2)


@jax.jit
def _changes(a, b):
    same = (a == b) | (jnp.isnan(a) & jnp.isnan(b))
    return jnp.where(same, 0.0, jnp.where(jnp.isfinite(a - b), jnp.abs(a - b), jnp.inf))


def check_no_lookahead(
    strategy: UserStrategy,
    prices,
    *,
    forecaster,
    params=None,
    n_sims: int | str | None = None,
    scale: float = 0.05,
    cuts=None,
    key=None,
    atol: float = 1e-6,
    raise_on_failure: bool = True,
    config=None,
    **settings,
) -> LookaheadReport:
    """Check that ``strategy`` never reads rows at or after the row it trades on (module docstring).

    Args:
      strategy: the :class:`~jaxsim.sim.strategy.UserStrategy` to check.
      prices: one stock's prices (a :class:`~jaxsim.data.prices.Prices`, DataFrame, path or sample name).
      forecaster: the forecaster whose outputs the strategy reads (e.g. ``jaxsim.forecasters.naive()``).
      params: parameters to check at (default ``strategy.params``).
      n_sims: simulations to check (an integer or ``"all"``; default the config's, or 10 without one).
      scale: size of the multiplicative perturbation (log-normal, ``exp(+-scale z)``).
      cuts: rows to cut at (default every row traded by some simulation day).
      key: the run's PRNG key (default ``jax.random.key(config.seed)``): the forecasts use the stock's
        key as :func:`jaxsim.backtest` does (:func:`jaxsim.shell.plan.make_plan`), the perturbations a
        key folded from it.
      atol: largest change tolerated (float32 noise).
      raise_on_failure: raise :class:`LookaheadError` naming the first violations.
      config / **settings: backtest settings (``targets``, ``aggregate``, ``fee``, ...).

    Returns:
      :class:`LookaheadReport`.
    """
    if not isinstance(strategy, UserStrategy):
        raise ConfigError("check_no_lookahead needs a jaxsim.UserStrategy")
    if n_sims is not None:
        settings = {"n_sims": n_sims, **settings}
    elif config is None:
        settings = {"n_sims": 10, **settings}  # a check, not a backtest: ten simulations by default
    config = resolve_config(config, settings)
    # exact lengths: these views build their own grids from each stock's rows (no length buckets)
    plan = make_plan(prices, forecaster, config.replace(length_bucket=None), key=key, caller="check_no_lookahead")
    forecaster, prep = plan.forecaster, plan.stocks[0]
    grid = ForecastGrid(len(prep.prices), prep.n_sims, config.max_context)
    setup = ViewSetup(grid, config.targets, config.aggregate, strategy.needs_draws)
    stock = jax.tree.map(lambda a: jnp.asarray(a[0]), plan.arrays([0]))
    shift = 1 if strategy.kind == "signals" else 0
    traded = grid.ends[:, None] - N_DAYS + np.arange(N_DAYS)[None, :] + shift  # (N, 6) row o of each day
    cuts = np.unique(traded) if cuts is None else np.asarray(cuts, int)
    fee, spread = jnp.float32(prep.fee), jnp.float32(prep.spread)
    params = strategy.params if params is None else params
    forecast_key = plan.keys[0]  # the backtest's forecasts
    noise_key = jax.random.fold_in(forecast_key, NOISE_SALT)

    @jax.jit
    def run(prices):
        views = stock_views(forecaster, stock._replace(prices=prices), forecast_key, setup)
        return views, _decisions(strategy, views, params)

    base_views, base = run(stock.prices)
    structure = jax.tree.structure(
        jax.eval_shape(lambda v: strategy_output(strategy, jax.tree.map(lambda a: a[0], v), params), base_views)
    )
    realised = jax.vmap(outcomes)(base_views.prices, base_views.prices_valid)
    base_pnl = _day_pnl(strategy, base, realised, fee, spread, structure)
    rows = np.arange(len(prep.prices))
    violations, checked = [], 0
    for j, c in enumerate(cuts):
        z = jax.random.normal(jax.random.fold_in(noise_key, j), stock.prices.shape)
        change = 0.0
        for sign in (1.0, -1.0):  # antithetic: a sign read from the future flips under one of them
            factor = jnp.where(jnp.asarray(rows >= c)[:, None], jnp.exp(sign * scale * z), 1.0)
            _, dec = run(stock.prices * factor)
            pnl = _day_pnl(strategy, dec, realised, fee, spread, structure)  # the perturbed orders, actual rows
            change = np.maximum(change, np.asarray(_changes(dec, base)).max(-1))
            change = np.maximum(change, np.asarray(_changes(pnl, base_pnl)))
        mask = traded <= c
        checked += int(mask.sum())
        bad = np.argwhere(mask & (change > atol))
        violations += [(int(c), int(k), int(i), float(change[k, i])) for k, i in bad]
    report = LookaheadReport(not violations, tuple(violations[:20]), checked)
    if violations and raise_on_failure:
        first = ", ".join(f"row {c}: sim {k} day {i} changed by {d:.3g}" for c, k, i, d in violations[:5])
        raise LookaheadError(
            f"strategy {strategy.name!r} reads the future: {len(violations)} decisions or P&L "
            f"values of days trading at or before a perturbed row changed ({first})"
        )
    return report
