"""jaxsim: a JAX-native walk-forward backtester driven by time-series foundation models.

Importing the package does no JAX computation and reads no files.
"""

__version__ = "0.1.0"
