"""The simulation axis in chunks: one vmapped function, whatever N.

:func:`map_sims` is how the program runs a per-simulation function over its N simulations
(:mod:`jaxsim.engine.program`, :mod:`jaxsim.engine.walk_forward`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["map_sims"]


def map_sims(fn, xs, chunk: int):
    """``jax.vmap(fn)(xs)`` over the leading simulation axis, ``chunk`` simulations per step.

    N <= chunk is exactly one vmap (the default N=50 program); a longer N is a ``lax.map`` over
    ``ceil(N / chunk)`` chunks of ``chunk`` vmapped simulations, so the stage's temporaries (the
    optimizer's candidate grids, per-day P&L) scale with the chunk, not N. The last chunk is filled
    up with copies of the first simulations and their results dropped: ``fn`` appears once in the
    program (``lax.map``'s own ``batch_size`` adds a second copy, vmapped over the remainder), and
    every simulation is computed in the same batch shape.
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    if n <= chunk:
        return jax.vmap(fn)(xs)
    steps = -(-n // chunk)
    pad = steps * chunk - n  # < chunk < n

    def split(x):
        x = jnp.concatenate([x, x[:pad]]) if pad else x
        return x.reshape((steps, chunk) + x.shape[1:])

    out = jax.lax.map(jax.vmap(fn), jax.tree.map(split, xs))
    return jax.tree.map(lambda y: y.reshape((steps * chunk,) + y.shape[2:])[:n], out)
