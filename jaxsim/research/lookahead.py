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
import functools

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


def _changes(a, b):
    same = (a == b) | (jnp.isnan(a) & jnp.isnan(b))
    return jnp.where(same, 0.0, jnp.where(jnp.isfinite(a - b), jnp.abs(a - b), jnp.inf))


def _run(forecaster, stock, prices, key, params, strategy, setup):
    """The views of ``prices`` (the stock's, perturbed or not) and the strategy's decisions on them."""
    views = stock_views(forecaster, stock._replace(prices=prices), key, setup)
    one = jax.tree.map(lambda a: a[0], views)
    structure = jax.tree.structure(jax.eval_shape(lambda v: strategy_output(strategy, v, params), one))
    return views, _decisions(strategy, views, params), structure


class _Params:
    """A strategy's parameters as a static argument: compared by value (tree structure, leaf types,
    dtypes, shapes and bytes), so they stay trace-time constants (a parameter may steer Python
    control flow, e.g. a crypto switch) and equal parameters reuse the compiled programs."""

    def __init__(self, tree):
        leaves, structure = jax.tree.flatten(tree)
        self.tree = tree
        self._key = (str(structure), tuple(_leaf_key(x) for x in leaves))

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _Params) and self._key == other._key


def _leaf_key(x):
    a = np.asarray(x)
    return type(x).__name__, a.dtype.str, a.shape, a.tobytes()


# Two programs per (strategy, parameters, view setup, shapes), compiled once whatever the call: the
# unperturbed run, and one cut's antithetic pair of perturbed runs (its largest change per simulation day).
@functools.partial(jax.jit, static_argnames=("strategy", "params", "setup"))
def _base_program(forecaster, stock, key, fee, spread, strategy, params, setup):
    params = params.tree
    views, base, structure = _run(forecaster, stock, stock.prices, key, params, strategy, setup)
    realised = jax.vmap(outcomes)(views.prices, views.prices_valid)
    return base, _day_pnl(strategy, base, realised, fee, spread, structure), realised


@functools.partial(jax.jit, static_argnames=("strategy", "params", "setup"))
def _cut_program(forecaster, stock, key, fee, spread, base, base_pnl, realised, cut, j, scale, strategy, params, setup):
    params = params.tree
    z = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, NOISE_SALT), j), stock.prices.shape)
    after = (jnp.arange(stock.prices.shape[0]) >= cut)[:, None]

    def one(sign):  # antithetic: a sign read from the future flips under one of them
        factor = jnp.where(after, jnp.exp(sign * scale * z), 1.0)
        _, dec, structure = _run(forecaster, stock, stock.prices * factor, key, params, strategy, setup)
        pnl = _day_pnl(strategy, dec, realised, fee, spread, structure)  # the perturbed orders, actual rows
        return jnp.maximum(_changes(dec, base).max(-1), _changes(pnl, base_pnl))

    return jnp.max(jax.lax.map(one, jnp.array([1.0, -1.0], jnp.float32)), 0)


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
    stock = jax.device_put(jax.tree.map(lambda a: a[0], plan.arrays([0])))
    shift = 1 if strategy.kind == "signals" else 0
    traded = grid.ends[:, None] - N_DAYS + np.arange(N_DAYS)[None, :] + shift  # (N, 6) row o of each day
    cuts = np.unique(traded) if cuts is None else np.asarray(cuts, int)
    fee, spread = np.float32(prep.fee), np.float32(prep.spread)
    params = strategy.params if params is None else params
    key = plan.keys[0]  # the backtest's forecasts; the perturbations use a key folded from it
    static = dict(strategy=strategy, params=_Params(params), setup=setup)
    base, base_pnl, realised = _base_program(forecaster, stock, key, fee, spread, **static)
    violations, checked = [], 0
    for j, c in enumerate(cuts):
        args = (base, base_pnl, realised, np.int32(c), np.uint32(j), np.float32(scale))
        change = np.asarray(_cut_program(forecaster, stock, key, fee, spread, *args, **static))
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
