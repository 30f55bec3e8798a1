"""The math of one simulation: the profit function and its surrogate, metrics, the eight
strategies, MaxDiff, diagnostics and :func:`~jaxsim.sim.simulation.evaluate_simulation` that ties
them into one record. Everything here is written for one simulation and vmapped by the engine."""

from jaxsim.sim.simulation import SimulationInputs, StrategyConfig, evaluate_simulation

__all__ = ["SimulationInputs", "StrategyConfig", "evaluate_simulation"]
