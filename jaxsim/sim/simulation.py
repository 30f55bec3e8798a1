"""One walk-forward simulation: inputs, static strategy config, and the per-simulation record.

Simulation k of a stock looks at its rows up to e = T-2-k (docs/backtest.md#walk-forward-geometry). Everything it needs
after the forecast step is packed in :class:`SimulationInputs` (7 forecasts per target, a 22-row price window);
:func:`evaluate_simulation` turns one such input into every numeric field of the result record of
docs/backtest.md#record-fields (scalars and small fixed-shape arrays). It is written for one simulation and batched with
``jax.vmap`` over simulations and stocks at the boundary.

Optimizer protocol (docs/backtest.md#multiplier-search; used by MaxDiff, :mod:`jaxsim.sim.maxdiff`): an optimizer is a
callable ``optimizer(close, high, high_pred, low, low_pred, positions, *, close_at_eod, fee) -> (2,)`` returning
``(mh, ml)`` in ``[-0.03, 0.03]^2`` that (approximately) maximises
``sum_p sum_i PF(close, high, high_pred + mh, low, low_pred + ml, positions[p]; close_at_eod, fee)``.
``positions`` has shape ``(P, days)``: ``P = 1`` for MaxDiff entry/exit, ``P = 2`` for always-on (a buy
row of +1 and a sell row of -1, or 0 for crypto). ``close_at_eod`` is a static Python bool; all other
inputs are per-simulation ``(days,)`` vectors (vmap outside). An optimizer whose ``traced_eod`` attribute
is True (the optax and exact optimizers) also accepts a traced bool scalar: the simulation then fits all
four problems (MaxDiff and always-on, each under both policies) in one vmapped call
(:func:`jaxsim.sim.maxdiff.fit_multipliers`); any other is called once per problem.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxsim.errors import ConfigError
from jaxsim.forecast.returns import window_returns
from jaxsim.layout import ORIGINS_PER_SIM, PRICE_COLUMN, PRICE_COLUMNS, RESIDUAL_COLUMN, TABLE_COLUMNS
from jaxsim.sim import diagnostics, maxdiff, strategies
from jaxsim.sim.profit import CRYPTO_TRADING_FEE, TRADING_FEE
from jaxsim.sim.scoring import RecordFunction, Scoring, SimulationDays
from jaxsim.sim.strategy_table import OOS_PREFIX, STRATEGIES, Strategy

__all__ = [
    "PRICE_WINDOW",
    "N_DAYS",
    "CRYPTO_SYMBOLS",
    "is_crypto",
    "default_fee",
    "SimulationInputs",
    "Optimizer",
    "StrategyConfig",
    "window_offsets",
    "RECORDS",
    "simulation_days",
    "simulation_fields",
    "evaluate_simulation",
]

Array = jax.Array

PRICE_WINDOW = 22  # rows e-21..e: 20-day dollar volume, ATR-14 (15 rows), 8-row strategy window
N_DAYS = 6  # evaluation days t_i = e-6+i, i = 0..5 (P_X[i] forecasts r_X[e-6+i], i = 0..6)

# The ACTIVE crypto list of src/fixtures.py (docs/backtest.md#crypto-rules). Other *USD symbols (e.g. DOGEUSD)
# are stocks here.
CRYPTO_SYMBOLS = frozenset({"BNBUSD", "BTCUSD", "ETHUSD", "PAXGUSD", "UNIUSD"})


def is_crypto(symbol: str) -> bool:
    """True for the five active crypto symbols of docs/backtest.md#crypto-rules (crypto fee, 365 days, no shorts)."""
    return symbol.upper() in CRYPTO_SYMBOLS


def default_fee(symbol: str) -> float:
    """Trading fee of a symbol: 0.0015 for the five crypto symbols, else 0.0005 (docs/backtest.md#crypto-rules)."""
    return CRYPTO_TRADING_FEE if is_crypto(symbol) else TRADING_FEE


class SimulationInputs(NamedTuple):
    """Inputs of one walk-forward simulation k; e = its last row (T-2-k).

    Attributes:
      pred_close: ``(7,)`` P_C[i] = forecast of r_C[e-6+i], i = 0..6.
      pred_high: ``(7,)`` P_H (changes of the High series vs the previous High, docs/backtest.md#strategy-notation).
      pred_low: ``(7,)`` P_L.
      band_close: ``(7,)`` P60-P40 band of the close draws (diagnostic ``close_ci_band``).
      prices: ``(W, 5)`` rows e-W+1..e of [open, high, low, close, volume], W = PRICE_WINDOW = 22, or
        ``(W, 8)`` with the residual columns of :data:`jaxsim.layout.TABLE_COLUMNS` (the engine's table).
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

    def __call__(
        self,
        close: Array,
        high: Array,
        high_pred: Array,
        low: Array,
        low_pred: Array,
        positions: Array,
        *,
        close_at_eod: bool,
        fee,
    ) -> Array: ...


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


def _check_shapes(inputs: SimulationInputs) -> None:
    for name in ("pred_close", "pred_high", "pred_low", "band_close"):
        shape = jnp.shape(getattr(inputs, name))
        if shape != (ORIGINS_PER_SIM,):
            raise ConfigError(f"SimulationInputs.{name} must have shape ({ORIGINS_PER_SIM},), got {shape}")
    shape = jnp.shape(inputs.prices)
    if len(shape) != 2 or shape[1] not in (len(PRICE_COLUMNS), len(TABLE_COLUMNS)) or shape[0] < 20:
        raise ConfigError(f"SimulationInputs.prices must have shape (W >= 20, 5 or 8), got {shape}")
    if jnp.shape(inputs.prices_valid) != shape[:1]:
        raise ConfigError(
            f"SimulationInputs.prices_valid must have shape {shape[:1]}, got {jnp.shape(inputs.prices_valid)}"
        )


def window_offsets(prices: Array) -> tuple[Array, Array]:
    """MaxDiff's close-relative offsets (kH, kL) of rows e-7..e-2 of a ``(W, 5 | 8)`` price window.

    With the residual columns (8) they equal the original's float64 values cast to float32
    (docs/deviations.md#float64-offsets); a 5-column window gives the plain float32 offsets.
    """
    rows = prices[-8:-2]  # window index j holds row e-W+1+j
    h, l, c = (rows[:, PRICE_COLUMN[x]] for x in ("high", "low", "close"))
    if prices.shape[-1] == len(PRICE_COLUMNS):
        return maxdiff.close_relative_offsets(h, l, c)
    h_lo, l_lo, c_lo = (rows[:, RESIDUAL_COLUMN[x]] for x in ("high", "low", "close"))
    return maxdiff.close_relative_offsets(h, l, c, high_lo=h_lo, low_lo=l_lo, close_lo=c_lo)


# table row -> the function that scores it: the RECORDS of the module that implements its math
RECORDS: dict[Strategy, RecordFunction] = {**strategies.RECORDS, **maxdiff.RECORDS}


def simulation_days(inputs: SimulationInputs) -> SimulationDays:
    """What the strategies score of one simulation (docs/backtest.md#strategy-notation, #maxdiff).

    From the price window (rows e-W+1..e): aX = r_X[e-6..e-1] (the actual movements), R = r_C[e-5..e]
    (``actual_returns``), the close-relative offsets kH, kL of rows e-7..e-2 and the predicted prices
    X[e] (1 + P_X[6]) (Toto semantics, docs/deviations.md#kept-predicted-price); forecasts fX = P_X[0..5].
    """
    f32 = jnp.float32
    prices = jnp.asarray(inputs.prices, f32)
    valid = jnp.asarray(inputs.prices_valid, bool)
    high, low, close = prices[:, 1], prices[:, 2], prices[:, 3]
    pc, ph, pl = (jnp.asarray(x, f32) for x in (inputs.pred_close, inputs.pred_high, inputs.pred_low))
    r_close, r_high, r_low = (window_returns(x, valid) for x in (close, high, low))
    k_high, k_low = window_offsets(prices)
    # window index j holds row e-W+1+j, so rows e-6..e-1 are [-7:-1] and e-5..e are [-6:]
    return SimulationDays(
        close_pred=pc[:N_DAYS],
        high_pred=ph[:N_DAYS],
        low_pred=pl[:N_DAYS],
        actual_close=r_close[-7:-1],
        actual_high=r_high[-7:-1],
        actual_low=r_low[-7:-1],
        returns=r_close[-6:],
        k_high=k_high,
        k_low=k_low,
        high_price=high[-1] * (1.0 + ph[-1]),
        low_price=low[-1] * (1.0 + pl[-1]),
        enough_history=jnp.sum(valid) >= N_DAYS + 2,
    )


def evaluate_simulation(
    inputs: SimulationInputs,
    *,
    fee,
    spread,
    config: StrategyConfig = StrategyConfig(),
    optimizer: Optimizer,
) -> dict[str, Array]:
    """Every numeric per-simulation record field of docs/backtest.md#record-fields for one simulation:
    :func:`simulation_fields` without the out-of-sample ones."""
    fields = simulation_fields(inputs, fee=fee, spread=spread, config=config, optimizer=optimizer)
    return {k: v for k, v in fields.items() if not k.startswith(OOS_PREFIX)}


def simulation_fields(
    inputs: SimulationInputs,
    *,
    fee,
    spread,
    config: StrategyConfig = StrategyConfig(),
    optimizer: Optimizer,
) -> dict[str, Array]:
    r"""Every numeric per-simulation record field of docs/backtest.md#record-fields for one simulation,
    and the strategies' out-of-sample fields of their final day (what the program returns; the
    record fields alone are :func:`evaluate_simulation`).

    From the price window (rows e-W+1..e) it derives, as
    docs/backtest.md#return-transform, #diagnostics, #strategy-notation, #maxdiff, the strategies' days
    (:func:`simulation_days`), the last prices X[e], ATR-14 and the 20-day dollar volume; ``predicted_X`` = X[e]
    (1 + P_X[6]) (Toto semantics, docs/deviations.md#kept-predicted-price). Every strategy of
    :data:`jaxsim.sim.strategy_table.STRATEGIES` is scored by its :data:`RECORDS` function; none mutates its
    inputs (docs/deviations.md#no-inplace-fee-mutation not reproduced).

    Fields (scalars unless noted): ``close``, ``predicted_close``, ``predicted_high``,
    ``predicted_low``, ``toto_expected_move_pct`` and ``raw_expected_move_pct`` (= P_C[6], a fraction
    as in the original), ``kronos_expected_move_pct`` (0: Kronos diagnostics are not run),
    ``calibrated_expected_move_pct``, ``calibration_slope``, ``calibration_intercept``,
    ``realized_volatility_pct``, ``dollar_vol_20d``, ``atr_pct_14``, ``spread_bps_estimate``,
    ``{close,high,low}_val_loss``, ``close_ci_band`` (7,), the strategy fields of
    :mod:`jaxsim.sim.strategies` and :mod:`jaxsim.sim.maxdiff` (``maxdiffprofit_profit_values`` and
    ``maxdiffalwayson_profit_values`` are (6,)), and the strategies' out-of-sample fields of their final day
    (``oos_position_<prefix>``, ``oos_finalday_<prefix>``, the day trades' ``oos_exit_<prefix>`` /
    ``oos_entry_<prefix>``, :mod:`jaxsim.engine.oos`: kept out of the records).

    Args:
      inputs: one :class:`SimulationInputs`.
      fee: trading fee (dynamic scalar; :func:`default_fee` gives the original's).
      spread: SPREAD, the ask/bid ratio (dynamic scalar; 1.05 when no quote was cached).
      config: static :class:`StrategyConfig`.
      optimizer: multiplier optimizer (static; the program passes its setup's, by default
        :func:`jaxsim.optimize.default_optimizer`).

    Returns:
      dict of float32 / int32 / bool arrays; ``jax.vmap`` it over simulations and stocks.
    """
    _check_shapes(inputs)
    f32 = jnp.float32
    prices = jnp.asarray(inputs.prices, f32)
    valid = jnp.asarray(inputs.prices_valid, bool)
    high, low, close, volume = prices[:, 1], prices[:, 2], prices[:, 3], prices[:, 4]
    pc = jnp.asarray(inputs.pred_close, f32)
    days = simulation_days(inputs)
    ac, ah, al, actual_returns = days.actual_close, days.actual_high, days.actual_low, days.returns
    fc, fh, fl = days.close_pred, days.high_pred, days.low_pred

    slope, intercept, calibrated = diagnostics.calibration(pc, actual_returns)
    use_volume = config.crypto or config.equity_volume
    record: dict[str, Array] = {
        "close": close[-1],
        "predicted_close": close[-1] * (1.0 + pc[-1]),
        "predicted_high": days.high_price,
        "predicted_low": days.low_price,
        "toto_expected_move_pct": pc[-1],
        "kronos_expected_move_pct": jnp.zeros((), f32),
        "raw_expected_move_pct": pc[-1],
        "calibrated_expected_move_pct": calibrated,
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "realized_volatility_pct": diagnostics.realized_volatility_pct(actual_returns),
        "dollar_vol_20d": (diagnostics.dollar_volume_20d(close, volume, valid) if use_volume else jnp.zeros((), f32)),
        "atr_pct_14": diagnostics.atr_pct_14(high, low, close, valid),
        "spread_bps_estimate": diagnostics.spread_bps_estimate(spread),
        "close_val_loss": diagnostics.val_loss(ac, fc),
        "high_val_loss": diagnostics.val_loss(ah, fh),
        "low_val_loss": diagnostics.val_loss(al, fl),
        "close_ci_band": jnp.asarray(inputs.band_close, f32),
    }
    rules = maxdiff.fit_rules(days, Scoring(fee, spread, config.crypto, config.days_per_year, optimizer))
    for strategy in STRATEGIES:
        record.update(RECORDS[strategy](days, rules))
    return record
