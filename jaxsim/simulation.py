"""One walk-forward simulation: inputs, static strategy config, and the per-simulation record.

Simulation k of a stock looks at its rows up to e = T-2-k (spec 1.2). Everything it needs after the
forecast step is packed in :class:`SimulationInputs` (7 forecasts per target, a 22-row price window);
:func:`evaluate_simulation` turns one such input into every numeric field of the result record of
spec 7.1 (scalars and small fixed-shape arrays). It is written for one simulation and batched with
``jax.vmap`` over simulations and stocks at the boundary.

Optimizer protocol (spec section 6; used by MaxDiff, :mod:`jaxsim.maxdiff`): an optimizer is a callable
``optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod, fee) -> (2,)`` returning
``(mh, ml)`` in ``[-0.03, 0.03]^2`` that (approximately) maximises
``sum_p sum_i PF(close, high, high_pred + mh, low, low_pred + ml, positions[p]; close_at_eod, fee)``.
``positions`` has shape ``(P, days)``: ``P = 1`` for MaxDiff entry/exit, ``P = 2`` for always-on (a buy
row of +1 and a sell row of -1, or 0 for crypto). ``close_at_eod`` is a static Python bool; all other
inputs are per-simulation ``(days,)`` vectors (vmap outside).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxsim.profit import CRYPTO_TRADING_FEE, TRADING_FEE

Array = jax.Array

PRICE_WINDOW = 22  # rows e-21..e: 20-day dollar volume, ATR-14 (15 rows), 8-row strategy window
N_PREDICTIONS = 7  # P_X[i] forecasts r_X[e-6+i], i = 0..6
N_DAYS = 6  # evaluation days t_i = e-6+i, i = 0..5
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
MULTIPLIER_BOUND = 0.03  # |mh|, |ml| <= 0.03 (spec 6)

# The ACTIVE crypto list of src/fixtures.py (spec 1.2). Other *USD symbols (e.g. DOGEUSD) are stocks here.
CRYPTO_SYMBOLS = frozenset({"BNBUSD", "BTCUSD", "ETHUSD", "PAXGUSD", "UNIUSD"})


def is_crypto(symbol: str) -> bool:
    """True for the five active crypto symbols of spec 1.2 (crypto fee, 365 days, no shorts)."""
    return symbol.upper() in CRYPTO_SYMBOLS


def default_fee(symbol: str) -> float:
    """Trading fee of a symbol: 0.0015 for the five crypto symbols, else 0.0005 (spec 1.2)."""
    return CRYPTO_TRADING_FEE if is_crypto(symbol) else TRADING_FEE


class SimulationInputs(NamedTuple):
    """Inputs of one walk-forward simulation k; e = its last row (T-2-k).

    Attributes:
      pred_close: ``(7,)`` P_C[i] = forecast of r_C[e-6+i], i = 0..6.
      pred_high: ``(7,)`` P_H (changes of the High series vs the previous High, spec 4).
      pred_low: ``(7,)`` P_L.
      band_close: ``(7,)`` P60-P40 band of the close draws (diagnostic ``close_ci_band``).
      prices: ``(W, 5)`` rows e-W+1..e of [open, high, low, close, volume], W = PRICE_WINDOW = 22.
      prices_valid: ``(W,)`` bool, False for rows before the start of the data.
    """

    pred_close: Array
    pred_high: Array
    pred_low: Array
    band_close: Array
    prices: Array
    prices_valid: Array


class Optimizer(Protocol):
    """Multiplier optimizer protocol (see the module docstring)."""

    def __call__(self, close: Array, high: Array, high_pred: Array, low: Array, low_pred: Array,
                 positions: Array, *, close_at_eod: bool, fee) -> Array: ...


@dataclasses.dataclass(frozen=True)
class StrategyConfig:
    """Static switches of the strategy stage (hashable; usable as a static jit argument).

    Attributes:
      crypto: crypto rules (no shorts, 365 days per year). The fee is passed separately.
      equity_volume: the original drops Volume for equities, so ``dollar_vol_20d`` is always 0 there;
        set True to compute it from the given volume anyway (a deliberate deviation).
    """

    crypto: bool = False
    equity_volume: bool = False

    @property
    def days_per_year(self) -> int:
        return 365 if self.crypto else 252


def evaluate_simulation(inputs: SimulationInputs, *, fee, spread, config: StrategyConfig,
                        optimizer: Optimizer) -> dict[str, Array]:
    """Every numeric per-simulation record field of spec 7.1 (filled in by the strategy modules)."""
    raise NotImplementedError("evaluate_simulation lands in the next commit")
