"""Forecasting models (Toto, Kronos) as Flax modules, their configs and weight conversion."""

__all__: list[str] = []
