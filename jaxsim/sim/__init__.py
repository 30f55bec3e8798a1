"""The math of one simulation: the profit function and its surrogate, metrics, the eight
strategies and their table, MaxDiff, diagnostics and :func:`~jaxsim.sim.simulation.evaluate_simulation`
that ties them into one record. Everything here is written for one simulation and vmapped by the engine.

The names below load on first use (PEP 562): importing ``jaxsim.sim.strategy_table`` (plain data, read
by the command line's parser) must not import JAX.
"""

import importlib

_LAZY = {
    "SimulationInputs": "jaxsim.sim.simulation",
    "StrategyConfig": "jaxsim.sim.simulation",
    "evaluate_simulation": "jaxsim.sim.simulation",
}

__all__ = ["SimulationInputs", "StrategyConfig", "evaluate_simulation"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'jaxsim.sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
