"""The ``jaxsim`` command line (building the parser imports no JAX)."""

from jaxsim.cli.app import main

__all__ = ["main"]
