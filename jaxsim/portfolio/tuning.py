"""``jaxsim.tune_portfolio``: fit a portfolio rule's continuous settings by optax on earlier days, report later ones.

The replay is causal (the decision for day d reads data up to d-1 only), so one replay over every day
serves both parts: the objective reads the fit days' returns only (the earliest ``fit_fraction`` of the
calendar), and the test days' returns come from the same replay with the fitted settings, never seen by
the fit. The rule must be differentiable in the tuned settings: :class:`~jaxsim.portfolio.rules.Smooth`
(temperature, threshold, leverage); the hard rules' weights are step functions of their thresholds
(zero gradients), so they are refused.

Positive settings (temperature, leverage) are fitted through their logarithm; leverage is clipped to
(0, 1] after each step (one cash pool).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from jaxsim.errors import ConfigError
from jaxsim.portfolio.api import load_stocks
from jaxsim.portfolio.core import PortfolioInputs, replay
from jaxsim.portfolio.inputs import build_inputs
from jaxsim.portfolio.rules import Smooth, rule_from_name, split_rule

__all__ = ["PortfolioTuneResult", "tune_portfolio"]

_POSITIVE = ("temperature", "leverage")


@dataclasses.dataclass(frozen=True)
class PortfolioTuneResult:
    """The fitted rule and its numbers.

    Attributes:
      rule: the rule with the fitted settings (pass it to :func:`jaxsim.portfolio`).
      start: the rule it started from.
      split: the first test day (the fit used the days before it).
      table: rows ``fit`` and ``test``, columns ``start`` and ``tuned``: the annualised Sharpe ratio of
        the replay's daily returns on those days.
      history: the objective (the fit days' annualised Sharpe) per step.
    """

    rule: Smooth
    start: Smooth
    split: pd.Timestamp
    table: pd.DataFrame
    history: np.ndarray


def _sharpe(daily, mask, periods):
    n = mask.sum()
    mean = jnp.where(mask, daily, 0.0).sum() / n
    var = jnp.where(mask, (daily - mean) ** 2, 0.0).sum() / (n - 1)
    return mean / jnp.sqrt(var + 1e-18) * jnp.sqrt(periods)


def tune_portfolio(
    results,
    rule="smooth",
    *,
    tune=("temperature", "threshold"),
    fit_fraction: float = 0.5,
    steps: int = 100,
    learning_rate: float = 0.05,
    **rule_settings,
) -> PortfolioTuneResult:
    """Fit ``tune`` (settings of a :class:`~jaxsim.portfolio.rules.Smooth` rule) to maximise the portfolio's
    annualised Sharpe ratio on the earliest ``fit_fraction`` of the days, by ``steps`` Adam steps of
    ``learning_rate``; report the fit and the later test days (module docstring).

    Args:
      results: as :func:`jaxsim.portfolio`'s (a dict symbol -> BacktestResult, or a run folder).
      rule: ``"smooth"`` or a :class:`~jaxsim.portfolio.rules.Smooth` value (the start).
      tune: the settings to fit, among ``temperature``, ``threshold``, ``leverage``.
      **rule_settings: the rule's other settings (``window``, ``score``, ...).
    """
    rule = rule_from_name(rule, **rule_settings)
    if not isinstance(rule, Smooth):
        raise ConfigError(f"tune_portfolio fits a differentiable rule (smooth); {type(rule).__name__} has no gradient")
    bad = [t for t in tune if t not in ("temperature", "threshold", "leverage")]
    if bad or not tune:
        raise ConfigError(f"tune must name settings among temperature, threshold, leverage; got {list(tune)}")
    if not 0 < fit_fraction < 1:
        raise ConfigError(f"fit_fraction must be in (0, 1), got {fit_fraction}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ConfigError(f"steps must be an int >= 1, got {steps!r}")
    stocks = load_stocks(results)
    inputs, labels = build_inputs(stocks)
    n_fit = int(len(labels.dates) * fit_fraction)
    if n_fit < 2 or len(labels.dates) - n_fit < 2:
        raise ConfigError(f"{len(labels.dates)} days are too few to split at fit_fraction {fit_fraction}")
    skeleton, params = split_rule(rule)
    periods = 365.0 if bool(np.all(inputs.crypto)) else 252.0

    with jax.enable_x64(True):
        arrays = PortfolioInputs(*(None if a is None else jnp.asarray(a) for a in inputs))
        fixed = {k: jnp.float64(v) for k, v in params.items() if k not in tune}
        fit_mask = jnp.arange(len(labels.dates)) < n_fit

        def settings(free):
            out = dict(fixed)
            for name, value in free.items():
                out[name] = jnp.exp(value) if name in _POSITIVE else value
            if "leverage" in out:
                out["leverage"] = jnp.minimum(out["leverage"], 1.0)
            return out

        def sharpe(free, mask):
            return _sharpe(replay(arrays, settings(free), skeleton).daily, mask, periods)

        free = {n: jnp.float64(np.log(params[n]) if n in _POSITIVE else params[n]) for n in tune}
        tx = optax.adam(learning_rate)

        @jax.jit
        def step(free, state):
            value, grads = jax.value_and_grad(lambda f: -sharpe(f, fit_mask))(free)
            updates, state = tx.update(grads, state, free)
            free = optax.apply_updates(free, updates)
            if "leverage" in free:  # at most 1: one cash pool
                free["leverage"] = jnp.minimum(free["leverage"], 0.0)
            return free, state, -value

        start_free, state, history = free, tx.init(free), []
        for _ in range(steps):
            free, state, value = step(free, state)
            history.append(float(value))
        scores = jax.jit(lambda f: (sharpe(f, fit_mask), sharpe(f, ~fit_mask)))
        before, after = jax.device_get(scores(start_free)), jax.device_get(scores(free))
        fitted = {k: float(v) for k, v in jax.device_get(settings(free)).items() if k in tune}

    tuned = dataclasses.replace(rule, **fitted)
    table = pd.DataFrame(
        {"start": [float(before[0]), float(before[1])], "tuned": [float(after[0]), float(after[1])]},
        index=pd.Index(["fit", "test"], name="days"),
    )
    return PortfolioTuneResult(tuned, rule, labels.dates[n_fit], table, np.asarray(history))
