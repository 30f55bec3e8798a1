r"""Faster forms of jax's threefry-based samplers that return the same bits.

Toto's sampler draws 3,072 Student-T mixture values per origin (docs/models.md#toto-sampling); at
every trading day of a long history that is ~14 M draws per stock, and jax's samplers spend most
of that time on work whose result is thrown away or recomputed:

* threefry2x32, the hash behind every draw and key split, is lowered on CPU as a rolled loop of 5
  iterations (to keep compiles short), so each iteration reads and writes the whole batch.
  :func:`random_bits` and what is built on it (:func:`split`, :func:`uniform`, :func:`normal`,
  :func:`gumbel`) compute the same hash unrolled (one fused elementwise kernel) on the raw
  ``uint32[..., 2]`` data of threefry keys, with one broadcast of each key and constant per hash,
  under vmap too (its own batching rule), and where a lane hashes two independent keys in a row
  (gamma's first round) as one hash over stacked counters (:func:`split_and_uniform`): a program
  holds fewer ops per draw site.
* ``categorical`` is ``argmax(gumbel + logits)``; XLA:CPU lowers an argmax over a short minor axis
  (K = 24 components) to a slow variadic reduction. :func:`first_argmax` computes the same index
  (the first maximum; the first NaN if any) from a max and a min.
* ``gamma`` is a Marsaglia-Tsang rejection loop vmapped over every lane: the batched while loop
  runs until its slowest lane accepts and redraws for every lane each round, although ~96% accept
  in the first. :func:`gamma` runs the first round over all lanes, then only the few lanes still
  rejecting, gathered into a small batch (:func:`lane_while`).

Each lane runs exactly jax's sequence of key splits, draws and float32 operations, so the values
are jax's bit for bit (tests/test_sampling.py compares with the installed jax: a jax release that
changes its algorithm fails there, not silently). Keys of other PRNGs fall back to jax.random.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching, lax

__all__ = [
    "threefry2x32",
    "random_bits",
    "split",
    "uniform",
    "split_and_uniform",
    "normal",
    "gumbel",
    "first_argmax",
    "categorical",
    "lane_while",
    "gamma",
]

Array = jax.Array
_LANES_PER_SLOT = 16  # lanes still looping after one round get 1/16 of the batch per step


# ---------------------------------------------------------------------------------------------
# threefry2x32 on raw key data, unrolled (the same hash and counter layout as jax's threefry keys)

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry_rounds(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """The 20 rounds on uint32 arrays whose shapes broadcast (trailing axes aligned), written with
    one broadcast of each key and each constant for the whole hash."""
    shape = jnp.broadcast_shapes(k0.shape, k1.shape, x0.shape, x1.shape)

    def full(a):
        return a if a.shape == shape else lax.broadcast_in_dim(a, shape, tuple(range(len(shape) - a.ndim, len(shape))))

    consts = {}

    def const(v):
        if v not in consts:
            consts[v] = lax.broadcast_in_dim(np.uint32(v), shape, ())
        return consts[v]

    k2 = lax.bitwise_xor(lax.bitwise_xor(k0, k1), lax.broadcast_in_dim(np.uint32(0x1BD11BDA), k0.shape, ()))
    ks = tuple(full(k) for k in (k0, k1, k2))
    x0, x1 = lax.add(full(x0), ks[0]), lax.add(full(x1), ks[1])
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = lax.add(x0, x1)
            x1 = lax.bitwise_or(lax.shift_left(x1, const(r)), lax.shift_right_logical(x1, const(32 - r)))
            x1 = lax.bitwise_xor(x0, x1)
        x0 = lax.add(x0, ks[(i + 1) % 3])
        # (x1 + k) + (i + 1) as jax; x1 + (k + (i + 1)) is the same bits but compiles ~1.5x slower on XLA:CPU
        x1 = lax.add(lax.add(x1, ks[(i + 2) % 3]), const(i + 1))
    return x0, x1


@custom_batching.custom_vmap
def _threefry(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    return _threefry_rounds(k0, k1, x0, x1)


@_threefry.def_vmap
def _threefry_vmap(axis_size, in_batched, *args):
    """Under vmap the batch axis becomes an ordinary leading axis of every operand (unbatched ones
    broadcast to it), so the rounds see plain arrays: vmap's rules would broadcast each constant of
    the hash again at every use."""
    rank = max(a.ndim - int(b) for a, b in zip(args, in_batched))

    def lead(a, batched):
        if not batched:
            a = lax.broadcast_in_dim(a, (axis_size,) + a.shape, tuple(range(1, a.ndim + 1)))
        return a.reshape((axis_size,) + (1,) * (rank + 1 - a.ndim) + a.shape[1:])

    return _threefry(*(lead(a, b) for a, b in zip(args, in_batched))), (True, True)


def threefry2x32(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    r"""Threefry-2x32 with 20 rounds (Salmon et al. 2011), as jax: key schedule
    :math:`(k_0, k_1, k_0 \oplus k_1 \oplus \mathtt{0x1BD11BDA})`, injected after every 4 rounds.

    Operands are uint32 arrays whose shapes broadcast (trailing axes aligned); returns the two
    output words in the broadcast shape. The rounds are unrolled (one fused kernel; a rolled loop
    over the 5 blocks, as jax lowers it on CPU, made the default backtest's warm run 1.7x slower)."""
    return _threefry(*(jnp.asarray(a, jnp.uint32) for a in (k0, k1, x0, x1)))


def _counters(shape):
    """jax's partitionable counters: the flat index of each element as (high, low) 32-bit words."""
    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(f"random_bits: {size} values exceed 2^32 counters")
    low = lax.iota(jnp.uint32, size).reshape(shape) if shape else jnp.zeros((), jnp.uint32)
    return jnp.zeros_like(low), low


def random_bits(key_data: Array, shape: tuple[int, ...]) -> Array:
    """``jax.random.bits(key, shape)`` (uint32) for the threefry key whose data is ``key_data`` ``(2,)``."""
    hi, lo = _counters(tuple(shape))
    y0, y1 = threefry2x32(key_data[0], key_data[1], hi, lo)
    return y0 ^ y1


def split(key_data: Array, num: int) -> Array:
    """``jax.random.split`` on key data: ``(num, 2)`` uint32."""
    hi, lo = _counters((num,))
    return jnp.stack(threefry2x32(key_data[0], key_data[1], hi, lo), axis=-1)


def _uniform_bits(bits: Array, minval=0.0, maxval=1.0) -> Array:
    """jax's uniform floats from uint32 ``bits``: 23 mantissa bits of a float in [1, 2), minus 1, scaled."""
    f32 = jnp.float32
    minval, maxval = jnp.asarray(minval, f32), jnp.asarray(maxval, f32)
    floats = lax.bitcast_convert_type((bits >> jnp.uint32(9)) | jnp.uint32(0x3F800000), f32) - f32(1.0)
    return lax.max(minval, floats * (maxval - minval) + minval)


def uniform(key_data: Array, shape=(), minval=0.0, maxval=1.0) -> Array:
    """``jax.random.uniform`` (float32): 23 random mantissa bits of a float in [1, 2), minus 1, scaled."""
    return _uniform_bits(random_bits(key_data, tuple(shape)), minval, maxval)


def split_and_uniform(split_keys: Array, num: int, draw_keys: Array) -> tuple[Array, Array]:
    """``split(k, num)`` of every lane's ``split_keys[i]`` and ``uniform(k)`` (a scalar) of every lane's
    ``draw_keys[i]`` (both ``(n, 2)`` key data), as ONE hash over ``(n, num + 1)`` counters.

    Returns ``(n, num, 2)`` keys and ``(n,)`` float32 uniforms, the bits of the separate calls.
    """
    n = split_keys.shape[0]

    def words(w):  # (n, num + 1): the split key's word for the num split counters, then the draw key's
        return jnp.concatenate([jnp.broadcast_to(split_keys[:, w : w + 1], (n, num)), draw_keys[:, w : w + 1]], axis=1)

    low = jnp.concatenate([lax.iota(jnp.uint32, num), jnp.zeros((1,), jnp.uint32)])
    y0, y1 = threefry2x32(words(0), words(1), jnp.zeros_like(low), low)
    keys = jnp.stack([y0[:, :num], y1[:, :num]], axis=-1)
    return keys, _uniform_bits(y0[:, num] ^ y1[:, num])


def normal(key_data: Array, shape=()) -> Array:
    """``jax.random.normal`` (float32): ``sqrt(2) erfinv(u)``, u uniform on (-1, 1)."""
    low = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
    return np.float32(np.sqrt(2)) * lax.erf_inv(uniform(key_data, shape, low, 1.0))


def gumbel(key_data: Array, shape) -> Array:
    """``jax.random.gumbel`` (float32, the default low-dynamic-range mode): ``-log(-log u)``."""
    tiny = np.finfo(np.float32).tiny
    return -jnp.log(-jnp.log(uniform(key_data, shape, tiny, 1.0)))


def _threefry_data(key):
    """The raw data of a threefry key under jax's (default) partitionable counter layout, or None
    (another PRNG or the legacy layout: use jax.random then)."""
    if str(jax.random.key_impl(key)) != "threefry2x32" or not jax.config.jax_threefry_partitionable:
        return None
    return jax.random.key_data(key)


def first_argmax(x: Array, axis: int = -1) -> Array:
    """``jnp.argmax(x, axis)``: index of the first maximum, or of the first NaN where there is one."""
    axis = axis % x.ndim
    top = jnp.max(x, axis=axis, keepdims=True)  # NaN wherever a NaN is present
    index = lax.broadcasted_iota(jnp.int32, x.shape, axis)
    hit = (x == top) | jnp.isnan(x)
    return jnp.min(jnp.where(hit, index, x.shape[axis]), axis=axis)


def categorical(key: Array, logits: Array, shape: tuple[int, ...]) -> Array:
    """``jax.random.categorical(key, logits, axis=-1, shape=shape)`` for ``logits`` whose batch
    shape (all but the last axis) has ``len(shape)`` axes: Gumbel-max with :func:`first_argmax`."""
    if logits.ndim - 1 != len(shape):
        raise ValueError(f"logits {logits.shape} need {len(shape)} batch axes for shape {shape}")
    full = tuple(shape) + logits.shape[-1:]
    data = _threefry_data(key)
    if data is None or logits.dtype != jnp.float32 or jax.config.jax_high_dynamic_range_gumbel:
        noise = jax.random.gumbel(key, full, logits.dtype)
    else:
        noise = gumbel(data, full)
    return first_argmax(noise + logits, axis=-1)


def lane_while(cond, body, state, slots: int, first=None):
    """``jax.vmap(lambda s: lax.while_loop(cond, body, s))(state)`` over the leading axis of the
    pytree ``state``, run as one round on every lane, then rounds on the lanes still looping only,
    ``slots`` of them at a time (gathered by index, scattered back). Same values lane by lane.

    ``first``: the batched form of ``body`` for the all-lanes round (default ``jax.vmap(body)``).
    """
    n = jax.tree.leaves(state)[0].shape[0]
    slots = max(1, min(int(slots), n))
    step = jax.vmap(body) if first is None else first
    check = jax.vmap(cond)
    going = check(state)
    state = jax.tree.map(
        lambda new, old: jnp.where(going.reshape((n,) + (1,) * (old.ndim - 1)), new, old), step(state), state
    )

    def more(carry):
        return jnp.any(carry[1])

    def rest(carry):
        st, going = carry
        index = jnp.nonzero(going, size=slots, fill_value=n)[0]  # n: an unused slot
        sub = jax.tree.map(lambda a: a[jnp.minimum(index, n - 1)], st)
        sub = jax.vmap(lambda s: lax.while_loop(cond, body, s))(sub)
        st = jax.tree.map(lambda a, b: a.at[index].set(b, mode="drop"), st, sub)
        return st, check(st)

    return lax.while_loop(more, rest, (state, check(state)))[0]


def gamma(key: Array, alpha: Array) -> Array:
    r"""``jax.random.gamma(key, alpha)`` (float32, unit rate, same bits) for one key and any shape.

    Marsaglia-Tsang, as jax: per lane, :math:`d = \alpha' - 1/3`, :math:`c = 1/(3\sqrt d)`
    (:math:`\alpha' = \alpha + 1` below 1); draw :math:`x \sim N(0,1)` until :math:`v = (1 + cx)^3 > 0`,
    :math:`U \sim U(0,1)`, accept when :math:`U < 1 - 0.0331x^4` or
    :math:`\log U < x^2/2 + d(1 - v + \log v)`; return :math:`d v` (times :math:`U'^{1/\alpha}` below 1).
    """
    alpha = jnp.asarray(alpha, jnp.float32)
    shape = alpha.shape
    root = _threefry_data(key)
    lanes = alpha.reshape(-1)
    n = lanes.shape[0]
    if root is None or n == 0:  # another PRNG: jax's own sampler
        return jax.random.gamma(key, alpha)
    data = split(root, n)  # (n, 2): the per-lane keys jax uses
    one, third = jnp.float32(1.0), jnp.float32(1.0 / 3.0)
    boosted = lanes >= one
    a = jnp.where(boosted, lanes, lanes + one)
    d = a - third
    c = third / jnp.sqrt(d)
    slots = max(1, n // _LANES_PER_SLOT)

    def normal_cond(s):
        return s[2] <= 0.0

    def normal_body(s):
        k, _, _, c_lane = s
        k, sub = split(k, 2)
        x = normal(sub)
        return k, x, one + x * c_lane, c_lane

    def accept_cond(s):
        _, x2, v3, u, d_lane, _ = s
        return (u >= one - jnp.float32(0.0331) * (x2 * x2)) & (
            jnp.log(u) >= x2 * jnp.float32(0.5) + d_lane * ((one - v3) + jnp.log(v3))
        )

    def lane_round(s):  # one round of one lane (the gathered rounds)
        k, _, _, _, d_lane, c_lane = s
        k, x_key, u_key = split(k, 3)
        _, x, v, _ = lax.while_loop(normal_cond, normal_body, (x_key, jnp.float32(0.0), jnp.float32(-1.0), c_lane))
        return k, x * x, (v * v) * v, uniform(u_key), d_lane, c_lane

    pairs = jax.vmap(lambda k: split(k, 2))(data)
    lane_key, boost_key = pairs[:, 0], pairs[:, 1]
    # the first round's split of lane_key and the boost draw from boost_key: one hash
    first_keys, u_boost = split_and_uniform(lane_key, 3, boost_key)

    def all_lanes_round(s):  # lane_round on the start state, every lane at once, the normal redraws gathered
        _, _, _, _, d_all, c_all = s
        k, x_key, u_key = first_keys[:, 0], first_keys[:, 1], first_keys[:, 2]
        normal_keys, u = split_and_uniform(x_key, 2, u_key)  # the first normal round's split, and U

        def first_normal(_):  # normal_body on the start state (x_key, 0, -1, c) of every lane
            x = jax.vmap(normal)(normal_keys[:, 1])
            return normal_keys[:, 0], x, one + x * c_all, c_all

        zeros = jnp.zeros_like(d_all)
        _, x, v, _ = lane_while(normal_cond, normal_body, (x_key, zeros, zeros - one, c_all), slots, first_normal)
        return k, x * x, (v * v) * v, u, d_all, c_all

    # the initial state (X, V, U) = (0, 1, 2) always enters jax's loop
    start = (lane_key, jnp.zeros_like(d), jnp.ones_like(d), jnp.full_like(d, 2.0), d, c)
    state = lane_while(accept_cond, lane_round, start, slots, first=all_lanes_round)
    v3 = state[2]
    boost = jnp.where(boosted, one, lax.pow(one - u_boost, one / lanes))
    return ((d * v3) * boost).reshape(shape)
