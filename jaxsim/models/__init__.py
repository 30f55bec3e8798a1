"""Forecasting models (Toto, Kronos) as Flax modules, their configs and weight conversion."""
