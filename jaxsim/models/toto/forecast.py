"""Forecasting with Toto: next-step mixture, sampling, analytic mean, and autoregressive decoding.

Mirrors ``TotoForecaster`` (docs/models.md#toto-forecasting). For a horizon Hp <= P every sample chain of the reference
sees the same context, so one forward pass per context plus S draws from the last-step mixture gives
the reference's distribution (docs/models.md#toto-one-step-sampling) at a tiny fraction of its cost; this is what
:func:`next_step_mixture` + :func:`sample_mixture` do. Longer horizons decode patch by patch, either
with a KV cache that reproduces the reference's cached path (rotated keys cached with the xPos power
of the call that made them, docs/models.md#toto-rotary, #toto-decoding) or by full recomputation (the reference's
``use_kv_cache=False``). Mean mode feeds back the analytic mixture mean and is deterministic.
PRNG keys are explicit; nothing here reads global state.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import ConfigError
from jaxsim.models import sampling
from jaxsim.models.toto.model import TotoConfig, TotoModel, causal_patch_stats, clamp_bounds, patch_ids, scale_series

__all__ = [
    "Mixture",
    "replace_extreme_values",
    "mixture_mean",
    "sample_mixture",
    "left_pad",
    "next_step_mixture",
    "prefix_step_mixtures",
    "prefix_scale",
    "forecast",
]

Array = jax.Array
_EXTREME = float(np.finfo(np.float32).max) / 2


class Mixture(NamedTuple):
    """Predictive distribution X = affine_loc + affine_scale * Y, Y ~ sum_k w_k StudentT(df_k, loc_k, scale_k).

    df/loc/scale/weights have shape ``(..., K)``; affine_loc/affine_scale (the scaler's patch
    statistics) have shape ``(...)``.
    """

    df: Array
    loc: Array
    scale: Array
    weights: Array
    affine_loc: Array
    affine_scale: Array


def replace_extreme_values(x: Array) -> Array:
    """NaN, +/-inf and |x| >= float32_max / 2 become 0.0 (upstream ``replace_extreme_values``)."""
    return jnp.where(jnp.isfinite(x) & (jnp.abs(x) < _EXTREME), x, 0.0)


def mixture_mean(mixture: Mixture) -> Array:
    """E[X] = loc + scale * sum_k w_k mu_k (Student-T means exist since df > 2); extremes -> 0."""
    base = jnp.sum(mixture.weights * mixture.loc, axis=-1)
    return replace_extreme_values(base * mixture.affine_scale + mixture.affine_loc)


def sample_mixture(key: Array, mixture: Mixture, num_samples: int, fast: bool = True) -> Array:
    """Draw ``num_samples`` values per distribution: shape ``(..., S)`` float32.

    k ~ Cat(w); Z ~ N(0,1); C ~ Chi2(df_k) = 2 Gamma(df_k / 2); Y = mu_k + s_k Z / sqrt(C / df_k);
    X = affine_loc + affine_scale * Y; extreme values -> 0 (docs/models.md#toto-sampling). Drawing only the chosen
    component has the same law as torch's draw-all-then-gather. With ``fast`` (static) the categorical
    and gamma draws are :mod:`jaxsim.models.sampling`'s (jax's values bit for bit, several times faster
    on wide batches, about 3x the program size); without it they are jax.random's own (the same
    values: for a sampler that runs once per program, such as the forecasted P&L's 512 draws).
    """
    k_cat, k_norm, k_gamma = jax.random.split(key, 3)
    batch = mixture.weights.shape[:-1]
    shape = batch + (num_samples,)
    logits = jnp.log(mixture.weights)[..., None, :]  # (..., 1, K)
    if fast:
        comp = sampling.categorical(k_cat, logits, shape)
    else:
        comp = jax.random.categorical(k_cat, logits, axis=-1, shape=shape)
    comp = comp[..., None]  # (..., S, 1)

    def pick(a):
        return jnp.take_along_axis(jnp.broadcast_to(a[..., None, :], shape + a.shape[-1:]), comp, -1)[..., 0]

    df, mu, s = pick(mixture.df), pick(mixture.loc), pick(mixture.scale)
    z = jax.random.normal(k_norm, shape)
    chi2 = 2.0 * (sampling.gamma if fast else jax.random.gamma)(k_gamma, df / 2.0)
    y = mu + s * z / jnp.sqrt(chi2 / df)
    return replace_extreme_values(mixture.affine_loc[..., None] + mixture.affine_scale[..., None] * y)


def left_pad(context, patch: int):
    """Left-pad a 1-D context with zeros to a multiple of ``patch`` (at least one patch).

    Non-finite values count as missing (value 0, invalid). Works on NumPy (host) or JAX arrays.

    Returns:
      ``(values (Tpad,), valid (Tpad,))``.
    """
    xp = np if isinstance(context, np.ndarray) else jnp
    context = xp.asarray(context, dtype=xp.float32)
    length = context.shape[-1]
    pad = max(math.ceil(length / patch), 1) * patch - length
    valid = xp.isfinite(context)
    values = xp.where(valid, context, 0.0)
    return xp.pad(values, (pad, 0)), xp.pad(valid, (pad, 0))


def _patch_valid(valid: Array, patch: int) -> Array:
    """``(B, T)`` step validity -> ``(B, 1, T/P)``: the patches holding at least one valid step.

    The forecasters mask the others out of time-wise attention (:meth:`TotoModel.encode`): the
    official forecaster pads a context to the next multiple of P only, so it never has such patches,
    and masking them makes the output independent of any extra left padding (length buckets).
    """
    b, t = valid.shape
    return valid.reshape(b, 1, t // patch, patch).any(-1)


def _model_mixture(model_out, loc, scale) -> Mixture:
    return Mixture(model_out.df, model_out.loc, model_out.scale, model_out.weights, loc, scale)


def next_step_mixture(params, config: TotoConfig, context: Array, valid: Array) -> Mixture:
    """The predictive mixture of the step right after each context, one forward pass per context.

    Args:
      params: Toto parameters.
      config: model config (static).
      context: ``(B, T)`` univariate contexts left-padded with zeros, T % P == 0.
      valid: bool ``(B, T)``, False on pads.

    Returns:
      :class:`Mixture` with ``(B, K)`` components and ``(B,)`` affine loc/scale. Only the last token's
      first sub-step (output position T - P, which predicts time T) goes through unembed and head.
    """
    p = config.patch_size
    b, t = context.shape
    y, loc, scale = scale_series(context[:, None, :], valid[:, None, :], config)
    model = TotoModel(config)
    h, _ = model.apply(
        {"params": params},
        y.reshape(b, 1, t // p, p),
        jnp.zeros((b, 1, t // p), jnp.int32),
        patch_valid=_patch_valid(valid & jnp.isfinite(context), p),
        method=TotoModel.encode,
    )
    out = model.apply({"params": params}, h[:, 0, -1], 1, method=TotoModel.output)  # (B, 1, K)
    out = jax.tree.map(lambda a: a[:, 0], out)
    return _model_mixture(out, loc[:, 0, -1], scale[:, 0, -1])


def prefix_step_mixtures(
    params, config: TotoConfig, context: Array, valid: Array, rows, tokens
) -> tuple[Mixture, Array]:
    """Next-step mixtures of many prefixes of each context from ONE forward pass per context.

    Toto is causal at patch granularity: the scaler's patch statistics use points up to the end of
    each patch, time-wise attention is causal (the xPos factor of q.k depends only on the distance
    in a full-sequence call) and the space-wise layer mixes variates within a patch. So the hidden
    state of token n of a left-padded context equals that of the last token of its prefix ending
    with patch n, padded the same way; output position (n, sub-step 0) is that prefix's
    next-step mixture (:func:`next_step_mixture` on the prefix alone, up to float rounding).

    The one non-causal piece is the global-stabilisation clamp of the scale: the prefix ending with
    patch n clamps every one of its patches with its own global std sigma_g,n. Here the model input
    is scaled with the unclamped std, the returned affine scale is clamped with sigma_g,n (exact),
    and ``exact`` says where the prefix's clamp would leave every one of its patches unchanged, i.e.
    where the shared input equals the prefix's own input. The upper bound sigma_g,n 10^e cannot bind
    while the count c_n < 10^(2e) (sigma_j <= sqrt(c_n) sigma_g,n for j <= n); the lower bound
    max(m, sigma_g,n 10^-e) binds only when sigma_g,n > sqrt(m) 10^e (|x| of order 3e9 for Base).

    Args:
      params: Toto parameters.
      config: model config (static).
      context: ``(B, T)`` univariate contexts left-padded with zeros, T % P == 0.
      valid: bool ``(B, T)``, False on pads.
      rows: int ``(M,)`` (static or traced) row of each requested prefix.
      tokens: int ``(M,)`` index of the token that ends each prefix (prefix length (token+1) P).

    Returns:
      ``(mixture, exact)``: :class:`Mixture` with ``(M, K)`` components and ``(M,)`` affine loc/scale,
      and bool ``(M,)``. Only the M requested tokens go through unembed (first sub-step) and head.
    """
    p = config.patch_size
    b, t = context.shape
    finite = jnp.isfinite(context)
    valid = valid & finite
    x = jnp.where(valid, context, 0.0).astype(jnp.float32)
    loc_p, sigma_p, sigma_g = jax.vmap(lambda a, w: causal_patch_stats(a, w, config))(x, valid)  # (B, N)
    y = (x - jnp.repeat(loc_p, p, axis=-1)) / jnp.repeat(sigma_p, p, axis=-1)
    model = TotoModel(config)
    h, _ = model.apply(
        {"params": params},
        y.reshape(b, 1, t // p, p),
        jnp.zeros((b, 1, t // p), jnp.int32),
        patch_valid=_patch_valid(valid, p),
        method=TotoModel.encode,
    )  # (B, 1, N, D)
    rows, tokens = jnp.asarray(rows), jnp.asarray(tokens)
    out = model.apply({"params": params}, h[rows, 0, tokens], 1, method=TotoModel.output)  # (M, 1, K)
    out = jax.tree.map(lambda a: a[:, 0], out)
    scale, exact = prefix_scale(config, sigma_p, sigma_g, rows, tokens)
    return _model_mixture(out, loc_p[rows, tokens], scale), exact


def prefix_scale(config: TotoConfig, sigma: Array, sigma_global: Array, rows, tokens) -> tuple[Array, Array]:
    """Clamped scale of the prefixes ending at ``(rows, tokens)`` and whether their clamp is a no-op.

    Args:
      config: model config.
      sigma, sigma_global: ``(B, N)`` unclamped per-patch std and prefix global std
        (:func:`jaxsim.models.toto.model.causal_patch_stats`).
      rows, tokens: int ``(M,)``.

    Returns:
      ``(scale (M,), exact (M,) bool)``: exact where every patch 0..n of the prefix lies inside its
      clamp bounds (so clamping with them changes nothing).
    """
    rows, tokens = jnp.asarray(rows), jnp.asarray(tokens)
    scale = sigma[rows, tokens]
    if not config.stabilize_with_global:
        return scale, jnp.ones(rows.shape, bool)
    lo, hi = clamp_bounds(sigma_global[rows, tokens], config)
    top = jax.lax.cummax(sigma, axis=1)[rows, tokens]  # over the prefix's patches 0..n
    bottom = jax.lax.cummin(sigma, axis=1)[rows, tokens]
    return jnp.clip(scale, lo, hi), (bottom >= lo) & (top <= hi)


# ----------------------------------------------------------------------------------------------
# Autoregressive decoding


def _mean_draw(key, mixture: Mixture) -> Array:
    del key
    return mixture_mean(mixture)


def _sample_draw(key, mixture: Mixture) -> Array:
    return sample_mixture(key, mixture, 1)[..., 0]


def _decode(params, config: TotoConfig, x, valid, ids, n0: int, steps: int, key, draw, use_kv_cache: bool):
    """Generate ``steps`` patches after ``n0`` context patches; returns ``(B, V, steps * P)``.

    ``x, valid, ids``: ``(B, V, (n0 + steps) P)`` buffers with the context first and zeros after.
    The scaler always runs over the whole buffer with the global statistics from the first n0 patches
    (``scaling_prefix_length``); future slots are invalid so they never touch earlier statistics.
    """
    c = config
    p, model = c.patch_size, TotoModel(config)
    b, v, ttot = x.shape
    ntot = ttot // p
    ids_p = patch_ids(ids, p)  # (B, V, Ntot): future patches already carry the last id
    keys = jax.random.split(key, steps)

    def enc(y_p, ids_q, offset, cache):
        return model.apply({"params": params}, y_p, ids_q, offset, cache, method=TotoModel.encode)

    def emit(h_tok, loc_p, scale_p, k, x, valid, n):
        """Mixture of token n's P sub-steps -> values for patch n + 1, written into the buffers."""
        out = model.apply({"params": params}, h_tok, method=TotoModel.output)  # (B, V, P, K)
        mix = _model_mixture(
            out, jnp.broadcast_to(loc_p[..., None], (b, v, p)), jnp.broadcast_to(scale_p[..., None], (b, v, p))
        )
        vals = draw(k, mix)  # (B, V, P)
        x = jax.lax.dynamic_update_slice_in_dim(x, vals.astype(x.dtype), (n + 1) * p, axis=2)
        valid = jax.lax.dynamic_update_slice_in_dim(valid, jnp.ones((b, v, p), bool), (n + 1) * p, axis=2)
        return vals, x, valid

    def stats(x, valid):
        y, loc, scale = scale_series(x, valid, c, n0)
        return y.reshape(b, v, ntot, p), loc[..., ::p], scale[..., ::p]  # (B,V,Ntot,P), (B,V,Ntot)

    if use_kv_cache:
        shape = (c.num_blocks, c.time_layers_per_block, b * v, ntot, c.num_heads, c.head_dim)
        cache = (jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32)) if shape[1] else None
        y_p, loc_p, scale_p = stats(x, valid)
        h, cache = enc(y_p[:, :, :n0], ids_p[:, :, :n0], 0, cache)  # prefill: causal, offset 0
        first, x, valid = emit(h[:, :, -1], loc_p[:, :, n0 - 1], scale_p[:, :, n0 - 1], keys[0], x, valid, n0 - 1)

        def step(carry, inp):
            x, valid, cache = carry
            n, k = inp  # n: index of the newest patch, fed alone at rotary offset n
            y_p, loc_p, scale_p = stats(x, valid)
            y_new = jax.lax.dynamic_slice_in_dim(y_p, n, 1, axis=2)
            ids_new = jax.lax.dynamic_slice_in_dim(ids_p, n, 1, axis=2)
            h, cache = enc(y_new, ids_new, n, cache)
            vals, x, valid = emit(h[:, :, 0], loc_p[:, :, n], scale_p[:, :, n], k, x, valid, n)
            return (x, valid, cache), vals

        rest = (jnp.arange(n0, n0 + steps - 1), keys[1:])
        _, later = jax.lax.scan(step, (x, valid, cache), rest)
    else:
        # Full recomputation over the whole buffer: causal attention and the per-patch scaler make
        # future slots irrelevant, and in one call the xPos offset cancels in q.k, so this equals
        # re-running the growing sequence (reference use_kv_cache=False) up to float rounding.
        def step(carry, inp):
            x, valid = carry
            n, k = inp
            y_p, loc_p, scale_p = stats(x, valid)
            h, _ = enc(y_p, ids_p, 0, None)
            h_tok = jax.lax.dynamic_index_in_dim(h, n, axis=2, keepdims=False)
            vals, x, valid = emit(
                h_tok,
                jax.lax.dynamic_index_in_dim(loc_p, n, 2, False),
                jax.lax.dynamic_index_in_dim(scale_p, n, 2, False),
                k,
                x,
                valid,
                n,
            )
            return (x, valid), vals

        _, allv = jax.lax.scan(step, (x, valid), (jnp.arange(n0 - 1, n0 + steps - 1), keys))
        first, later = allv[0], allv[1:]
    gen = jnp.concatenate([first[None], later], axis=0)  # (steps, B, V, P)
    return gen.transpose(1, 2, 0, 3).reshape(b, v, steps * p)


@partial(jax.jit, static_argnames=("config", "prediction_length", "num_samples", "use_kv_cache", "samples_per_batch"))
def _forecast_padded(
    params,
    config: TotoConfig,
    x,
    valid,
    ids,
    key,
    *,
    prediction_length: int,
    num_samples: int | None,
    use_kv_cache: bool,
    samples_per_batch: int | None,
):
    p = config.patch_size
    b, v, t0 = x.shape
    n0, hp = t0 // p, prediction_length
    steps = math.ceil(hp / p)
    grow = lambda a, fill: jnp.concatenate(  # noqa: E731
        [a, jnp.broadcast_to(fill, (b, v, steps * p)).astype(a.dtype)], axis=2
    )
    xb, vb, ib = grow(x, 0.0), grow(valid, False), grow(ids, ids[..., -1:])
    if num_samples is None:
        mean = _decode(params, config, xb, vb, ib, n0, steps, key, _mean_draw, use_kv_cache)[..., :hp]
        return mean, None
    # docs/models.md#toto-one-step-sampling: all chains share the first patch's context -> one pass, S draws per step
    if hp <= p:
        y, loc, scale = scale_series(x, valid, config)
        model = TotoModel(config)
        h, _ = model.apply({"params": params}, y.reshape(b, v, n0, p), patch_ids(ids, p), method=TotoModel.encode)
        out = model.apply({"params": params}, h[:, :, -1], hp, method=TotoModel.output)  # (B,V,Hp,K)
        mix = _model_mixture(
            out, jnp.broadcast_to(loc[..., -1:], (b, v, hp)), jnp.broadcast_to(scale[..., -1:], (b, v, hp))
        )
        samples = sample_mixture(key, mix, num_samples)  # (B, V, Hp, S)
        return samples.mean(-1), samples
    # Hp > P: S independent chains, each with its own cache, in chunks of samples_per_batch
    spb = samples_per_batch or num_samples
    chunks = num_samples // spb

    def run_chunk(k):
        tile = lambda a: jnp.broadcast_to(a[None], (spb,) + a.shape).reshape((spb * b,) + a.shape[1:])  # noqa: E731
        gen = _decode(params, config, tile(xb), tile(vb), tile(ib), n0, steps, k, _sample_draw, use_kv_cache)
        return gen.reshape(spb, b, v, steps * p)[..., :hp]

    draws = jax.lax.map(run_chunk, jax.random.split(key, chunks))  # (chunks, spb, B, V, Hp)
    samples = draws.reshape(num_samples, b, v, hp).transpose(1, 2, 3, 0)
    return samples.mean(-1), samples


def forecast(
    params,
    config: TotoConfig,
    context,
    valid,
    ids,
    prediction_length: int,
    *,
    key=None,
    num_samples: int | None = None,
    use_kv_cache: bool = True,
    samples_per_batch: int | None = None,
):
    """Forecast ``prediction_length`` steps after each ``(B, V, T)`` context (``TotoForecaster.forecast``).

    Contexts are left-padded with zeros to a multiple of P (invalid; ids repeat the first column).
    Mean mode (``num_samples=None``) feeds back the analytic mean and is deterministic; sample mode
    needs ``key`` and returns S draws per step whose average is the mean (as upstream). For Hp <= P
    one pass serves all samples; longer horizons run S chains (``samples_per_batch`` at a time).
    Compiled once per (config, shapes, horizon, S, mode).

    Returns:
      ``(mean (B, V, Hp), samples (B, V, Hp, S) or None)``.
    """
    p = config.patch_size
    if prediction_length < 1:
        raise ConfigError(f"prediction_length must be >= 1, got {prediction_length}")
    if num_samples is not None:
        if key is None:
            raise ConfigError("sampling needs an explicit PRNG key")
        if samples_per_batch and num_samples % samples_per_batch:
            raise ConfigError(f"num_samples {num_samples} is not a multiple of samples_per_batch {samples_per_batch}")
    context = jnp.asarray(context, jnp.float32)
    valid = jnp.asarray(valid, bool) & jnp.isfinite(context)
    ids = jnp.broadcast_to(jnp.asarray(ids, jnp.int32), context.shape)
    pad = (-context.shape[-1]) % p
    if pad:
        context = jnp.pad(context, ((0, 0), (0, 0), (pad, 0)))
        valid = jnp.pad(valid, ((0, 0), (0, 0), (pad, 0)))
        ids = jnp.pad(ids, ((0, 0), (0, 0), (pad, 0)), mode="edge")
    context = jnp.where(valid, context, 0.0)
    return _forecast_padded(
        params,
        config,
        context,
        valid,
        ids,
        jax.random.key(0) if key is None else key,
        prediction_length=prediction_length,
        num_samples=num_samples,
        use_kv_cache=use_kv_cache,
        samples_per_batch=samples_per_batch,
    )
