"""The ``walk_forward`` protocol: MaxDiff multipliers and eod policy fitted without look-ahead.

In the original (``legacy``) every simulation fits MaxDiff's multipliers (mh, ml) and its
close-at-eod policy on the very six days it is scored on, so the "adjusted" numbers contain
look-ahead (docs/deviations.md#kept-in-sample-fit). Here simulation k (last row e, evaluation days t_i = e-6..e-1)
instead uses the multipliers and eod policy that simulation ``k + 6`` fitted in-sample on ITS six days
e-12..e-7. Those days all precede simulation k's first evaluation day e-6, and simulation k+6 only
saw data up to row e-6 (its forecasts and prices end there), so nothing simulation k scores was used
to choose its parameters. The same holds for MaxDiff always-on with its own (mh, ml, eod).

Simulation k then re-scores both strategies with those parameters held fixed (no optimisation on
its own days): base and final P&L, the adjusted metrics (baseline + 0.3 * optimised), limit prices
``predicted_high (1 + mh)`` and ``predicted_low (1 + ml)``. The six oldest simulations
(k >= N-6) have no earlier window inside the run: they get the default (mh, ml) = (0, 0), eod False,
and ``walk_forward_fitted`` False. Every other record field (the six other strategies, diagnostics)
does not fit anything and is the same as in ``legacy``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.forecast.returns import window_returns
from jaxsim.sim import maxdiff
from jaxsim.sim.simulation import N_DAYS, SimulationInputs, StrategyConfig, window_offsets

__all__ = ["FIT_LAG", "walk_forward_records", "limit_arguments"]

Array = jax.Array

# Simulation k takes its parameters from simulation k + 6, whose evaluation days e-12..e-7 end the
# day before simulation k's first evaluation day e-6.
FIT_LAG = N_DAYS


def limit_arguments(inputs: SimulationInputs):
    """The MaxDiff inputs of one simulation, as :func:`jaxsim.sim.simulation.evaluate_simulation` builds them.

    Returns:
      ``(args, enough_history)``: ``args = (aC, aH, aL, fH, fL, kH, kL, high_price, low_price)``.
    """
    f32 = jnp.float32
    prices = jnp.asarray(inputs.prices, f32)
    valid = jnp.asarray(inputs.prices_valid, bool)
    high, low, close = prices[:, 1], prices[:, 2], prices[:, 3]
    ph, pl = jnp.asarray(inputs.pred_high, f32), jnp.asarray(inputs.pred_low, f32)
    r_close, r_high, r_low = (window_returns(x, valid) for x in (close, high, low))
    ac, ah, al = r_close[-7:-1], r_high[-7:-1], r_low[-7:-1]  # rows e-6..e-1
    k_high, k_low = window_offsets(prices)
    high_price, low_price = high[-1] * (1.0 + ph[-1]), low[-1] * (1.0 + pl[-1])
    args = (ac, ah, al, ph[:N_DAYS], pl[:N_DAYS], k_high, k_low, high_price, low_price)
    return args, jnp.sum(valid) >= N_DAYS + 2


def _fixed(mults: Array):
    """An optimizer that ignores its problem and returns ``mults`` (parameters fitted elsewhere)."""

    def optimizer(*_args, close_at_eod, fee):
        del close_at_eod, fee
        return mults

    return optimizer


def _rescore(strategy, args, enough, mults, eod, *, fee, config: StrategyConfig):
    """Score one strategy with fixed multipliers under the fixed (dynamic) eod policy."""
    kw = dict(
        fee=fee,
        optimizer=_fixed(mults),
        crypto=config.crypto,
        days_per_year=config.days_per_year,
        enough_history=enough,
    )
    off = strategy(*args, close_at_eod=False, **kw)
    on = strategy(*args, close_at_eod=True, **kw)
    return jax.tree.map(lambda a, b: jnp.where(eod, b, a), off, on)


def walk_forward_records(
    inputs: SimulationInputs, records: dict, *, fee, config: StrategyConfig, optimizer=None, chunk: int | None = None
) -> dict[str, Array]:
    """Replace the MaxDiff and always-on fields of ``legacy`` records with out-of-sample ones.

    Args:
      inputs: the :class:`SimulationInputs` of all N simulations (leading axis N).
      records: the legacy records (``(N, ...)`` arrays), whose in-sample fits are the source.
      fee: trading fee (dynamic scalar). config: static strategy config.
      optimizer: unused (the fits come from ``records``); accepted for a uniform call.
      chunk: re-score this many simulations per step (lax.map) when N exceeds it (None: one vmap).

    Returns:
      The replaced fields plus ``walk_forward_fitted`` (bool ``(N,)``), ``walk_forward_source``
      (int ``(N,)``, the simulation whose fit was used, -1 for none).
    """
    del optimizer
    n = records["maxdiff_return"].shape[0]
    source = np.arange(n) + FIT_LAG
    fitted = source < n
    src = np.minimum(source, n - 1)
    have = jnp.asarray(fitted)

    def take(name):
        return jnp.where(have, records[name][src], jnp.zeros_like(records[name][src]))

    md_mults = jnp.stack(
        [take("maxdiffprofit_profit_high_multiplier"), take("maxdiffprofit_profit_low_multiplier")], -1
    )
    md_eod = take("maxdiff_close_at_eod").astype(bool)
    ao_mults = jnp.stack([take("maxdiffalwayson_high_multiplier"), take("maxdiffalwayson_low_multiplier")], -1)
    ao_eod = take("maxdiffalwayson_close_at_eod").astype(bool)

    def one(sim_inputs, md_m, md_e, ao_m, ao_e):
        args, enough = limit_arguments(sim_inputs)
        out = _rescore(maxdiff.maxdiff_strategy, args, enough, md_m, md_e, fee=fee, config=config)
        out.update(_rescore(maxdiff.maxdiff_always_on_strategy, args, enough, ao_m, ao_e, fee=fee, config=config))
        return out

    xs = (inputs, md_mults, md_eod, ao_mults, ao_eod)
    if chunk is None or n <= chunk:
        out = jax.vmap(one)(*xs)
    else:  # bounded memory at long N (same per-simulation function)
        out = jax.lax.map(lambda a: one(*a), xs, batch_size=int(chunk))
    out["walk_forward_fitted"] = have
    out["walk_forward_source"] = jnp.asarray(np.where(fitted, source, -1), jnp.int32)
    return out
