"""Benchmarks: the timing and environment harness (:mod:`.harness`) and the suites behind ``jaxsim bench``."""

__all__: list[str] = []
