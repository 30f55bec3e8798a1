"""The ``walk_forward`` protocol: MaxDiff multipliers and eod policy fitted without look-ahead.

In the original (``legacy``) every simulation fits MaxDiff's multipliers (mh, ml) and its
close-at-eod policy on the very six days it is scored on, so the "adjusted" numbers contain
look-ahead (docs/deviations.md#kept-in-sample-fit). Here simulation k (last row e, evaluation days t_i = e-6..e-1)
instead uses the multipliers and eod policy that simulation ``k + 6`` fitted in-sample on ITS six days
e-12..e-7. Those days all precede simulation k's first evaluation day e-6, and simulation k+6 only
saw data up to row e-6 (its forecasts and prices end there), so nothing simulation k scores was used
to choose its parameters. The same holds for MaxDiff always-on with its own (mh, ml, eod): every
strategy with fitted multipliers (:data:`jaxsim.sim.strategy_table.FITTED`) is treated alike.

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

from jaxsim.engine.chunks import map_sims
from jaxsim.sim import maxdiff
from jaxsim.sim.simulation import N_DAYS, SimulationInputs, StrategyConfig, simulation_days
from jaxsim.sim.strategy_table import FITTED

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
    days = simulation_days(inputs)
    return maxdiff.limit_inputs(days), days.enough_history


def _rescore(strategy, args, enough, mults, eod, *, fee, config: StrategyConfig):
    """Score one strategy with fixed multipliers under the fixed (dynamic) eod policy: both policies'
    records, selected (each policy's sums as ``legacy`` computes them)."""
    kw = dict(
        fee=fee,
        optimizer=None,
        crypto=config.crypto,
        days_per_year=config.days_per_year,
        enough_history=enough,
        multipliers=mults,
    )
    off = strategy(*args, close_at_eod=False, **kw)
    on = strategy(*args, close_at_eod=True, **kw)
    return jax.tree.map(lambda a, b: jnp.where(eod, b, a), off, on)


def walk_forward_records(
    inputs: SimulationInputs,
    records: dict,
    *,
    fee,
    config: StrategyConfig,
    optimizer=None,
    chunk: int | None = None,
    n_real: Array | None = None,
) -> dict[str, Array]:
    """Replace the fields of the fitted strategies (MaxDiff, always-on) of ``legacy`` records with
    out-of-sample ones.

    Args:
      inputs: the :class:`SimulationInputs` of all N simulations (leading axis N).
      records: the legacy records (``(N, ...)`` arrays), whose in-sample fits are the source.
      fee: trading fee (dynamic scalar). config: static strategy config.
      optimizer: unused (the fits come from ``records``); accepted for a uniform call.
      chunk: re-score this many simulations per step (lax.map) when N exceeds it (None: one vmap).
      n_real: only simulations k < n_real are real (dynamic; a length bucket's masked simulations
        follow them, :func:`jaxsim.engine.program.real_sims`); None: all N.

    Returns:
      The replaced fields plus ``walk_forward_fitted`` (bool ``(N,)``), ``walk_forward_source``
      (int ``(N,)``, the simulation whose fit was used, -1 for none).
    """
    del optimizer
    n = records[FITTED[0].field("return")].shape[0]
    source = np.arange(n) + FIT_LAG
    src = np.minimum(source, n - 1)
    have = jnp.asarray(source < n) if n_real is None else jnp.asarray(source) < n_real

    def take(name):
        return jnp.where(have, records[name][src], jnp.zeros_like(records[name][src]))

    # per fitted strategy, the (mh, ml) and eod policy simulation k + FIT_LAG chose
    mults = tuple(jnp.stack([take(s.fit.high_multiplier), take(s.fit.low_multiplier)], -1) for s in FITTED)
    eods = tuple(take(s.field("close_at_eod")).astype(bool) for s in FITTED)

    def one(sim_inputs, sim_mults, sim_eods):
        args, enough = limit_arguments(sim_inputs)
        out = {}
        for s, m, eod in zip(FITTED, sim_mults, sim_eods):
            out.update(_rescore(maxdiff.FITTED_FUNCTIONS[s], args, enough, m, eod, fee=fee, config=config))
        return out

    xs = (inputs, mults, eods)
    out = map_sims(lambda a: one(*a), xs, n if chunk is None else int(chunk))  # bounded memory at long N
    out["walk_forward_fitted"] = have
    out["walk_forward_source"] = jnp.where(have, jnp.asarray(source, jnp.int32), -1)
    return out
