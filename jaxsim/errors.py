"""Typed errors raised by jaxsim.

Every error names the problem (and, for price data, the offending rows) so that bad input never
turns into silent garbage. All inherit from :class:`JaxsimError`, which is a ``ValueError``.
"""

__all__ = ["JaxsimError", "PriceDataError", "InsufficientHistoryError", "CheckpointError", "ConfigError"]


class JaxsimError(ValueError):
    """Base class of every error jaxsim raises on purpose."""


class PriceDataError(JaxsimError):
    """Price data is malformed: missing columns, non-numeric, NaN/inf, non-positive, High < Low,
    unsorted or duplicate dates."""


class InsufficientHistoryError(JaxsimError):
    """Fewer rows than the requested simulations and context need."""


class CheckpointError(JaxsimError):
    """A checkpoint or converted weight folder is corrupt, truncated or does not match its config."""


class ConfigError(JaxsimError):
    """An option or configuration value is invalid (unknown aggregation spec, bad bounds, ...)."""
