"""Portfolio rules as frozen, hashable values: which strategy each stock trades, which stocks, what weight.

Every rule reads the same per-day inputs, computed by :mod:`jaxsim.portfolio.core` from data up to
the previous close: per (stock, strategy) rolling statistics of the out-of-sample daily P&L over the
last ``window`` values, and the forecasted P&L (docs/portfolio.md#forecast).

* :class:`Original`: the original live loop's rule (docs/portfolio.md#original, the spec's steps 1-7):
  entry gate with its soft bypass, strategy choice by forecasted P&L, composite score, keep those
  > 0 (at most 10, filled up to 4), kelly_lite sizing, drawdown scaling, 60% cap, leverage 1.
* :class:`TopK`: the ``k`` best stocks by score (each on its best-scoring strategy), equal weight.
* :class:`InverseVol`: the same selection, weights proportional to 1 / volatility.
* :class:`ScoreProportional`: the same selection, weights proportional to the score, capped.
* :class:`Smooth`: softmax / sigmoid relaxation of score-proportional top-K selection with a
  temperature: every weight is a smooth function of the rule's parameters (gradient tuning).

A rule splits into a *skeleton* (its structural fields: window, counts, score name; hashable, one
compiled program per skeleton) and *params*, its float fields as a dict of arrays that flow through the
compiled program as traced values, so they can be vmapped or differentiated (:func:`split_rule`).
"""

from __future__ import annotations

import dataclasses

from jaxsim.errors import ConfigError

__all__ = [
    "SCORES",
    "FORECAST_POINTS",
    "Original",
    "TopK",
    "InverseVol",
    "ScoreProportional",
    "Smooth",
    "RULES",
    "rule_from_name",
    "split_rule",
]

SCORES = ("sharpe", "return", "forecast")  # per-(stock, strategy) score of the generic rules
# the forecasted P&L's point forecast of the window (docs/portfolio.md#forecast)
FORECAST_POINTS = ("mean", "last", "zero")


def _check_common(rule) -> None:
    if not (isinstance(rule.window, int) and rule.window >= 2):
        raise ConfigError(f"window must be an int >= 2, got {rule.window!r}")
    if rule.forecast_point not in FORECAST_POINTS:
        raise ConfigError(f"forecast_point must be one of {FORECAST_POINTS}, got {rule.forecast_point!r}")
    if not 0 < rule.leverage <= 1:
        raise ConfigError(f"leverage must be in (0, 1] (one cash pool, no borrowing), got {rule.leverage}")


def _check_selection(rule) -> None:
    _check_common(rule)
    if rule.score not in SCORES:
        raise ConfigError(f"score must be one of {SCORES}, got {rule.score!r}")
    if not (isinstance(rule.k, int) and rule.k >= 1):
        raise ConfigError(f"k must be an int >= 1, got {rule.k!r}")
    if not (isinstance(rule.min_samples, int) and rule.min_samples >= 1):
        raise ConfigError(f"min_samples must be an int >= 1, got {rule.min_samples!r}")


@dataclasses.dataclass(frozen=True)
class Original:
    """The original loop's rule (/work/shared/specs/portfolio.md; docs/portfolio.md#original).

    Gate per strategy (all must hold): average return in bps >= max(expected cost in bps +
    ``cost_margin_bps``, ``min_return_bps`` (stocks) / ``min_return_bps_crypto``); Sharpe >=
    ``min_sharpe``; samples >= ``min_samples`` (``min_samples_crypto``); max drawdown >=
    ``max_drawdown``; turnover > ``high_turnover`` needs Sharpe >= ``high_turnover_sharpe``. A strategy
    failing the gate is still allowed when its forecasted P&L is > 0 (soft bypass).
    """

    window: int = 70
    forecast_point: str = "mean"
    max_positions: int = 10
    min_positions: int = 4
    cost_margin_bps: float = 10.0
    min_return_bps: float = 15.0
    min_return_bps_crypto: float = 40.0
    min_sharpe: float = 0.5
    min_samples: float = 120.0
    min_samples_crypto: float = 60.0
    max_drawdown: float = -0.08
    high_turnover: float = 2.0
    high_turnover_sharpe: float = 0.8
    spread_cap_bps: float = 50.0
    kelly_scale: float = 0.2
    kelly_cap: float = 0.15
    drawdown_trigger: float = -0.05
    drawdown_scale: float = 0.5
    half_kelly: float = 0.5
    max_weight: float = 0.6
    leverage: float = 1.0

    def __post_init__(self):
        _check_common(self)
        if not (isinstance(self.max_positions, int) and isinstance(self.min_positions, int)):
            raise ConfigError("max_positions and min_positions must be ints")
        if not 0 <= self.min_positions <= self.max_positions:
            raise ConfigError(
                f"need 0 <= min_positions <= max_positions, got {self.min_positions} and {self.max_positions}"
            )
        if not 0 < self.max_weight <= 1:
            raise ConfigError(f"max_weight must be in (0, 1], got {self.max_weight}")


@dataclasses.dataclass(frozen=True)
class TopK:
    """The ``k`` stocks with the best positive score, each on its best-scoring strategy (among those with
    at least ``min_samples`` values in the window), ``leverage / k`` each (cash for empty places)."""

    k: int = 4
    score: str = "sharpe"
    window: int = 70
    min_samples: int = 10
    forecast_point: str = "mean"
    leverage: float = 1.0

    def __post_init__(self):
        _check_selection(self)


@dataclasses.dataclass(frozen=True)
class _CappedSelection:
    """:class:`TopK`'s selection with weights summing to ``leverage``, each capped at ``max_weight``
    (the excess stays in cash): the settings :class:`InverseVol` and :class:`ScoreProportional` share."""

    k: int = 4
    score: str = "sharpe"
    window: int = 70
    min_samples: int = 10
    forecast_point: str = "mean"
    max_weight: float = 0.6
    leverage: float = 1.0

    def __post_init__(self):
        _check_selection(self)


@dataclasses.dataclass(frozen=True)
class InverseVol(_CappedSelection):
    """:class:`TopK`'s selection; weights proportional to 1 / the chosen strategy's daily volatility,
    summing to ``leverage``, each capped at ``max_weight`` (the excess stays in cash)."""


@dataclasses.dataclass(frozen=True)
class ScoreProportional(_CappedSelection):
    """:class:`TopK`'s selection; weights proportional to the (positive) score, summing to
    ``leverage``, each capped at ``max_weight`` (the excess stays in cash)."""


@dataclasses.dataclass(frozen=True)
class Smooth:
    """A differentiable relaxation of score-proportional selection.

    Per stock, the strategy mix is ``softmax(score / temperature)`` over strategies (one-hot as the
    temperature goes to 0); the stock's score is the mix's score; its weight is
    ``leverage * softmax(stock score / temperature) * sigmoid((stock score - threshold) / temperature)``
    over the stocks trading that day, so the weights sum to at most ``leverage``. Strategies with
    fewer than ``min_samples`` values are left out (a mask, not a parameter).
    """

    score: str = "sharpe"
    window: int = 70
    min_samples: int = 10
    forecast_point: str = "mean"
    temperature: float = 0.5
    threshold: float = 0.0
    leverage: float = 1.0
    k: int = 1  # unused by the relaxation; kept so every generic rule has the same structural fields

    def __post_init__(self):
        _check_selection(self)
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")


RULES = {"original": Original, "top_k": TopK, "inverse_vol": InverseVol, "score_proportional": ScoreProportional}
RULES["smooth"] = Smooth


def rule_from_name(rule, **overrides):
    """A rule value from a rule or its name (``"original"``, ``"top_k"``, ``"inverse_vol"``,
    ``"score_proportional"``, ``"smooth"``), with field ``overrides``."""
    if isinstance(rule, tuple(RULES.values())):
        return dataclasses.replace(rule, **overrides) if overrides else rule
    if rule not in RULES:
        raise ConfigError(f"unknown portfolio rule {rule!r}; choose one of {sorted(RULES)}")
    names = {f.name for f in dataclasses.fields(RULES[rule])}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ConfigError(f"rule {rule!r} has no setting {bad[0]!r}; its settings: {sorted(names)}")
    return RULES[rule](**overrides)


def split_rule(rule):
    """``(skeleton, params)``: the rule's kind and structural fields as a hashable
    ``(name, ((field, value), ...))`` (the compiled program's static part) and its float fields as a
    dict name -> float (traced values)."""
    fields = dataclasses.fields(rule)
    floats = {f.name: float(getattr(rule, f.name)) for f in fields if f.type == "float"}
    name = next(n for n, cls in RULES.items() if type(rule) is cls)
    return (name, tuple((f.name, getattr(rule, f.name)) for f in fields if f.type != "float")), floats
