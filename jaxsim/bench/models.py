"""The models the benchmark suites time: Toto with seeded random weights, the small bench config,
and the matmul precision of a dtype (timings do not depend on weight values)."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

from jaxsim.forecast.forecasters import toto
from jaxsim.models.toto.model import TotoConfig, init_toto

__all__ = ["TOTO_BENCH_SMALL", "precision", "toto_forecaster"]


def _small_config():
    # Base's patch (64) so contexts have Base's token count; one time-wise and one space-wise layer.
    return TotoConfig(
        patch_size=64,
        embed_dim=64,
        num_layers=2,
        num_heads=2,
        mlp_hidden_dim=128,
        spacewise_every_n_layers=2,
        k_components=8,
    )


TOTO_BENCH_SMALL = _small_config()  # 355,808 parameters; benchmarks/reference_runner.py "small"


def precision(dtype: str):
    if dtype in ("bfloat16", "bf16"):
        return jax.default_matmul_precision("bfloat16")
    if dtype not in ("float32", "f32"):
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    return contextlib.nullcontext()


def toto_forecaster(config, *, num_samples: int, seed: int = 0, dtype: str = "float32", params=None):
    """A Toto forecaster with seeded random weights (or ``params``), cast to ``dtype``."""
    params = init_toto(config, jax.random.key(seed)) if params is None else params
    if dtype in ("bfloat16", "bf16"):
        params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    return toto(config=config, params=params, num_samples=num_samples)
