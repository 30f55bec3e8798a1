"""Toto-Open-Base-1.0 in Flax linen, read top to bottom: config, scaler, rotary/xPos, attention,
SwiGLU, layer, backbone, mixture head, and the full-sequence forward.

Follows the description in ``docs/models.md`` (the anchors cited below are its sections). Letters: B batch,
V variates, T time steps, P patch size, N = T/P patches, D model width, H heads, hd = D/H,
F MLP hidden width, K mixture components, L layers, s = spacewise_every_n_layers.

Parameters keep the torch shapes transposed (Dense kernels are ``(in, out)``) except the fused QKV
projection, whose output features are stored head-major ``(c, h, d)`` here; the converter permutes the
upstream ``(c, d, h)`` order once (docs/models.md#toto-layer, #toto-checkpoint). Layers are grouped in
``L/s`` blocks of ``[TIME x (s-1), SPACE]``; both levels are ``nn.scan``-ned so XLA compiles one layer
body per kind.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import ConfigError

__all__ = [
    "TotoConfig",
    "TOTO_BASE",
    "TOTO_SMALL",
    "causal_patch_stats",
    "clamp_bounds",
    "causal_patch_scaler",
    "scale_series",
    "rotary_xpos",
    "RMSNorm",
    "SwiGLU",
    "Attention",
    "Layer",
    "Block",
    "MixtureParams",
    "TotoModel",
    "init_toto",
    "param_shapes",
    "count_params",
    "patch_ids",
    "toto_forward",
]

Array = jax.Array


# ----------------------------------------------------------------------------------------------
# Configuration (docs/models.md#toto-config)


@dataclasses.dataclass(frozen=True)
class TotoConfig:
    """Hyper-parameters of a Toto backbone (hub ``config.json`` names where they exist)."""

    patch_size: int = 64
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_hidden_dim: int = 3072
    spacewise_every_n_layers: int = 12
    spacewise_first: bool = False
    k_components: int = 24
    dropout: float = 0.1  # training only; inference never drops
    stabilize_with_global: bool = True
    scale_factor_exponent: float = 10.0
    min_scale: float = 0.1  # fixed in upstream code
    rope_theta: float = 10000.0
    xpos_scale_base: float = 512.0
    norm_eps: float = 1e-8

    def __post_init__(self):
        problems = []
        if self.embed_dim % self.num_heads:
            problems.append(f"embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}")
        if (self.embed_dim // max(self.num_heads, 1)) % 2:
            problems.append("head_dim must be even (rotary pairs)")
        if self.spacewise_every_n_layers < 1 or self.num_layers % self.spacewise_every_n_layers:
            problems.append(
                f"num_layers {self.num_layers} not a multiple of spacewise_every_n_layers "
                f"{self.spacewise_every_n_layers}"
            )
        if problems:
            raise ConfigError("invalid TotoConfig: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def num_blocks(self) -> int:
        return self.num_layers // self.spacewise_every_n_layers

    @property
    def time_layers_per_block(self) -> int:
        return self.spacewise_every_n_layers - 1


TOTO_BASE = TotoConfig()  # Toto-Open-Base-1.0: 151,306,080 parameters
TOTO_SMALL = TotoConfig(
    patch_size=8,
    embed_dim=64,
    num_layers=4,
    num_heads=4,
    mlp_hidden_dim=128,
    spacewise_every_n_layers=2,
    k_components=3,
)  # test preset (docs/models.md#toto-config): 201,292


# ----------------------------------------------------------------------------------------------
# Causal patch std-mean scaler (docs/models.md#toto-scaler), float64-quality in float32


def _merge_stats(a, b):
    """Chan et al.'s pairwise merge of (count, mean, M2): associative, every term >= 0."""
    na, ma, qa = a
    nb, mb, qb = b
    n = na + nb
    inv = 1.0 / jnp.maximum(n, 1.0)
    delta = mb - ma
    return n, ma + delta * (nb * inv), qa + qb + delta * delta * (na * nb * inv)


def causal_patch_stats(x: Array, valid: Array, config: TotoConfig) -> tuple[Array, Array, Array]:
    """Causal per-patch statistics of one series, before the global-stabilisation clamp.

    For patch n, over all valid points up to its last step t = nP + P - 1: the mean mu_n, the
    min-scaled Bessel std sigma_n = sqrt(M2_n / max(c_n - 1, 1) + m), and the min-scaled population
    std sigma_g,n = sqrt(M2_n / max(c_n, 1) + m), which is the global statistic the clamp uses when
    the context ends with patch n. Every entry depends only on patches 0..n (prefix statistics).

    Upstream accumulates in float64. Here everything is float32 but exact-shift and merge based: the
    series is shifted by its first valid value r (loc is shift-equivariant, scale shift-invariant),
    each patch gets a two-pass mean and centred M2, and patches are combined with Chan's merge in an
    associative scan, whose terms are all non-negative. There is no catastrophic cancellation, so the
    error stays at float32 rounding level. Measured against float64 on 4096-step series (level 1e6
    random walk + noise, 1e5 + 1e-2 noise, 5e5 + unit noise; P = 8 and 64): loc within 4e-8 and
    scale within 1.5e-7 relative, where a plain float32 cumulative-sum formula is off by 13% to 3000x
    in scale. Pure JAX, so it runs inside any jit without x64.

    Args:
      x: values, shape ``(T,)``, T % P == 0, invalid entries already zero.
      valid: bool ``(T,)``.
      config: model config (P, m).

    Returns:
      ``(loc, sigma, sigma_global)``, each ``(N,)`` float32.
    """
    p = config.patch_size
    n_patches = x.shape[-1] // p
    x = x.astype(jnp.float32)
    w = valid.astype(jnp.float32)
    r = jnp.where(jnp.any(valid), x[jnp.argmax(valid)], 0.0)
    z = (w * (x - r)).reshape(n_patches, p)  # (N, P)
    w = w.reshape(n_patches, p)
    cnt = w.sum(-1)
    inv = 1.0 / jnp.maximum(cnt, 1.0)
    mean = z.sum(-1) * inv
    mean = mean + (w * (z - mean[:, None])).sum(-1) * inv  # second pass: corrected mean
    m2 = (w * jnp.square(z - mean[:, None])).sum(-1)
    c_n, mu_n, m2_n = jax.lax.associative_scan(_merge_stats, (cnt, mean, m2))  # (N,) each
    m = config.min_scale
    loc = jnp.where(c_n > 0, r + mu_n, 0.0)
    sigma = jnp.sqrt(m2_n / jnp.maximum(c_n - 1.0, 1.0) + m)
    sigma_global = jnp.sqrt(m2_n / jnp.maximum(c_n, 1.0) + m)
    return loc, sigma, sigma_global


def clamp_bounds(sigma_global: Array, config: TotoConfig) -> tuple[Array, Array]:
    """Global-stabilisation bounds [max(m, sigma_g 10^-e), sigma_g 10^e] for a global std sigma_g."""
    factor = 10.0**config.scale_factor_exponent
    return jnp.maximum(config.min_scale, sigma_global / factor), sigma_global * factor


def causal_patch_scaler(
    x: Array, valid: Array, config: TotoConfig, prefix_patches: Array | int | None = None
) -> tuple[Array, Array]:
    """Causal patch std-mean statistics of one series (:func:`causal_patch_stats`, then the clamp).

    For patch n the statistics are those of all valid points up to its last step t = nP + P - 1:
    mean mu and Bessel variance M2 / max(c - 1, 1), with sigma = sqrt(var + m) (min scale on the
    variance), clamped to [max(m, sigma_g 10^-e), sigma_g 10^e] by the population std sigma_g of the
    first ``prefix_patches`` patches (all patches when None).

    Args:
      x: values, shape ``(T,)``, T % P == 0, invalid entries already zero.
      valid: bool ``(T,)``.
      config: model config (P, m, e, global stabilisation).
      prefix_patches: number of leading patches for the global statistics (int, may be traced).

    Returns:
      ``(loc, scale)``, each ``(N,)`` float32: the statistics of each patch.
    """
    n_patches = x.shape[-1] // config.patch_size
    loc, sigma, sigma_global = causal_patch_stats(x, valid, config)
    if config.stabilize_with_global:
        g = n_patches - 1 if prefix_patches is None else jnp.asarray(prefix_patches) - 1
        lo, hi = clamp_bounds(sigma_global[g], config)
        sigma = jnp.clip(sigma, lo, hi)
    return loc, sigma


def scale_series(
    x: Array, valid: Array, config: TotoConfig, prefix_patches: Array | int | None = None
) -> tuple[Array, Array, Array]:
    """Sanitise and normalise ``(B, V, T)`` series: returns y, loc, scale, each ``(B, V, T)``.

    NaN/inf inputs become 0 and invalid before scaling (docs/backtest.md#kronos-in-the-original: upstream would turn
    every statistic NaN; this port deliberately differs on such bad input).
    """
    finite = jnp.isfinite(x)
    valid = valid & finite
    x = jnp.where(valid, x, 0.0).astype(jnp.float32)
    stats = jax.vmap(jax.vmap(lambda a, b: causal_patch_scaler(a, b, config, prefix_patches)))
    loc_p, scale_p = stats(x, valid)  # (B, V, N)
    p = config.patch_size
    loc = jnp.repeat(loc_p, p, axis=-1)
    scale = jnp.repeat(scale_p, p, axis=-1)
    return (x - loc) / scale, loc, scale


# ----------------------------------------------------------------------------------------------
# Rotary embedding with xPos (docs/models.md#toto-rotary)


def _rotary_tables(hd: int, theta: float):
    inv_freq = (1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)).astype(np.float32)
    xi = (np.arange(0, hd, 2).astype(np.float32) + np.float32(0.4 * hd)) / np.float32(1.4 * hd)
    return jnp.asarray(inv_freq), jnp.asarray(xi)


def rotary_xpos(q: Array, k: Array, offset: Array | int, config: TotoConfig) -> tuple[Array, Array]:
    """Interleaved rotary + xPos on ``(..., S, H, hd)`` queries and keys at positions offset..offset+S-1.

    Pair (2i, 2i+1) rotates by t * theta^(-2i/hd); feature j is then scaled by xi_{j mod hd/2}^{+p(t)}
    (queries) or ^{-p(t)} (keys), with p(t) = (t - floor(t_max / 2)) / 512 and t_max the last position
    of this call. The interleaved rotation with a half-concatenated scale is what upstream computes;
    the two features of a pair then get different scales, so q.k depends on the absolute positions,
    not only on their distance (by ~1e-3 relative per token of shift): ``offset`` may be one position
    per row ``(G,)`` (leading axis of q and k) to place each row's first real token at 0.
    """
    s, hd = q.shape[-3], q.shape[-1]
    inv_freq, xi = _rotary_tables(hd, config.rope_theta)
    offset = jnp.asarray(offset, jnp.float32)[..., None]  # () or (G,) -> (..., 1)
    t = jnp.arange(s, dtype=jnp.float32) + offset  # (..., S)
    angle = jnp.repeat(t[..., None] * inv_freq, 2, axis=-1)  # (..., S, hd): angle of pair j // 2
    power = (t - jnp.floor(t[..., -1:] / 2)) / config.xpos_scale_base  # (..., S)
    scale = jnp.concatenate([xi, xi]) ** power[..., None]  # (..., S, hd)
    cos, sin = jnp.cos(angle)[..., None, :], jnp.sin(angle)[..., None, :]  # (..., S, 1, hd)
    scale = scale[..., None, :]

    def rotate(a, sc):
        pairs = a.reshape(*a.shape[:-1], hd // 2, 2)
        half = jnp.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(a.shape)
        return a * cos * sc + half * sin * sc

    return rotate(q, scale), rotate(k, scale**-1.0)


# ----------------------------------------------------------------------------------------------
# Building blocks


class RMSNorm(nn.Module):
    """r(x) = x / sqrt(mean_D(x^2) + eps) * g, eps 1e-8, no bias (docs/models.md#toto-layer)."""

    eps: float = 1e-8

    @nn.compact
    def __call__(self, x):
        g = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        return x / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps) * g


class SwiGLU(nn.Module):
    """u = W12 z; silu(gate) * value with the gate in the first half; then W3 (docs/models.md#toto-layer)."""

    hidden: int
    out: int

    @nn.compact
    def __call__(self, z):
        a, b = jnp.split(nn.Dense(2 * self.hidden, name="w12")(z), 2, axis=-1)
        return nn.Dense(self.out, name="w3")(jax.nn.silu(a) * b)


def _attend(q, k, v, mask):
    """softmax(q k^T / sqrt(hd) + mask) v with q ``(G,S,H,hd)``, k/v ``(G,Tk,H,hd)``, mask ``(G|1,S,Tk)``."""
    scores = jnp.einsum("gshd,gthd->ghst", q, k) / math.sqrt(q.shape[-1])
    scores = jnp.where(mask[:, None], scores, -jnp.inf)
    return jnp.einsum("ghst,gthd->gshd", jax.nn.softmax(scores, axis=-1), v)


class Attention(nn.Module):
    """Fused-QKV multi-head attention along time (causal, rotary/xPos, optional KV cache) or space
    (bidirectional, id-group mask, no rotary)."""

    config: TotoConfig
    axis: str  # "time" | "space"

    @nn.compact
    def __call__(self, x, ids_p, offset, cache, patch_valid=None):
        c = self.config
        b, v, n, d = x.shape
        h, hd = c.num_heads, c.head_dim
        if self.axis == "time":
            seq = x.reshape(b * v, n, d)  # (BV, N, D)
        else:
            seq = x.transpose(0, 2, 1, 3).reshape(b * n, v, d)  # (BN, V, D)
        qkv = nn.Dense(3 * d, name="wQKV")(seq).reshape(*seq.shape[:2], 3, h, hd)
        q, k, val = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (G, S, H, hd)
        new_cache = cache
        if self.axis == "time":
            rows_offset = offset
            if patch_valid is not None:  # each row's first non-empty patch sits at position 0 (as unpadded)
                first = jnp.argmax(patch_valid.reshape(b * v, n), axis=-1)
                rows_offset = offset - first
            q, k = rotary_xpos(q, k, rows_offset, c)
            qpos = offset + jnp.arange(n)
            if cache is None:
                kpos = qpos
            else:  # write this call's rotated keys at [offset, offset+N); unfilled slots are masked
                ck = jax.lax.dynamic_update_slice_in_dim(cache[0], k.astype(cache[0].dtype), offset, 1)
                cv = jax.lax.dynamic_update_slice_in_dim(cache[1], val.astype(cache[1].dtype), offset, 1)
                new_cache, k, val = (ck, cv), ck, cv
                kpos = jnp.arange(ck.shape[1])
            mask = (kpos[None, :] <= qpos[:, None])[None]  # (1, N, Tk) causal
            if patch_valid is not None:  # whole padded patches are not keys (docs/models.md#toto-padded-patches)
                if cache is not None:
                    raise ValueError("patch_valid needs a full-sequence call (no KV cache)")
                key_ok = patch_valid.reshape(b * v, 1, n)
                mask = mask & (key_ok | (kpos[None, :] == qpos[:, None])[None])  # a padded query sees itself
        else:
            g = ids_p.transpose(0, 2, 1).reshape(b * n, v)  # (BN, V)
            mask = g[:, :, None] == g[:, None, :]  # (BN, V, V)
        out = _attend(q, k, val, mask).reshape(*seq.shape[:2], d)  # heads concatenated (h, d)
        out = nn.Dense(d, name="wO")(out)
        if self.axis == "time":
            out = out.reshape(b, v, n, d)
        else:
            out = out.reshape(b, n, v, d).transpose(0, 2, 1, 3)
        return out, new_cache


class Layer(nn.Module):
    """Pre-norm residual layer: h = x + Attn(RMSNorm1(x)); out = h + SwiGLU(RMSNorm2(h))."""

    config: TotoConfig
    axis: str

    @nn.compact
    def __call__(self, x, cache, ids_p, offset, patch_valid=None):
        c = self.config
        a, cache = Attention(c, self.axis, name="attention")(
            RMSNorm(c.norm_eps, name="norm1")(x), ids_p, offset, cache, patch_valid
        )
        x = x + a
        x = x + SwiGLU(c.mlp_hidden_dim, c.embed_dim, name="mlp")(RMSNorm(c.norm_eps, name="norm2")(x))
        return x, cache


class Block(nn.Module):
    """One block of the layer schedule: s-1 time-wise layers (scanned) and one space-wise layer."""

    config: TotoConfig

    @nn.compact
    def __call__(self, x, cache, ids_p, offset, patch_valid=None):
        c = self.config
        time = None
        if c.time_layers_per_block:
            time = nn.scan(
                Layer,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast),
                length=c.time_layers_per_block,
            )(c, "time", name="time")
        space = Layer(c, "space", name="space")
        if c.spacewise_first:
            x, _ = space(x, None, ids_p, offset)
        if time is not None:
            x, cache = time(x, cache, ids_p, offset, patch_valid)
        if not c.spacewise_first:
            x, _ = space(x, None, ids_p, offset)
        return x, cache


class MixtureParams(NamedTuple):
    """Student-T mixture in normalised space, each ``(..., K)``; weights are probabilities."""

    df: Array
    loc: Array
    scale: Array
    weights: Array


class TotoModel(nn.Module):
    """Patch embed -> L/s scanned blocks -> unembed (D -> P*D) -> mixture-of-Student-T head."""

    config: TotoConfig

    def setup(self):
        c = self.config
        self.patch_embed = nn.Dense(c.embed_dim)
        self.blocks = nn.scan(
            Block,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast),
            length=c.num_blocks,
        )(c)
        self.unembed = nn.Dense(c.patch_size * c.embed_dim)
        self.df = nn.Dense(c.k_components)
        self.loc_proj = nn.Dense(c.k_components)
        self.scale_proj = nn.Dense(c.k_components)
        self.mixture_weights = nn.Dense(c.k_components)

    def encode(self, y_patches, ids_p, offset=0, cache=None, patch_valid=None):
        """``(B,V,N,P)`` scaled patches and ``(B,V,N)`` ids -> hidden ``(B,V,N,D)`` and the new cache.

        ``cache`` is None (full causal pass) or ``(k, v)`` each ``(L/s, s-1, B*V, Tmax, H, hd)``,
        holding rotated/scaled keys; the call then writes its keys at position ``offset``.
        ``patch_valid`` (bool ``(B,V,N)``, full passes only): patches that hold no valid step are
        left out of time-wise attention as keys and each row's positions start at its first valid
        patch, so a context's output does not depend on how many whole padded patches precede it
        (None: every patch is a key and positions start at the row's start, as upstream).
        """
        h = self.patch_embed(y_patches)
        h, cache = self.blocks(h, cache, ids_p, jnp.asarray(offset, jnp.int32), patch_valid)
        return h, cache

    def head(self, z):
        """Mixture parameters for vectors ``(..., D)`` (docs/models.md#toto-mixture-head); eps = float32 machine
        epsilon."""
        eps = jnp.finfo(z.dtype).eps
        return MixtureParams(
            df=2.0 + jnp.maximum(jax.nn.softplus(self.df(z)), eps),
            loc=self.loc_proj(z),
            scale=jnp.maximum(jax.nn.softplus(self.scale_proj(z)), eps),
            weights=jax.nn.softmax(self.mixture_weights(z), axis=-1),
        )

    def output(self, h, substeps: int | None = None):
        """Unembed tokens ``(..., D)`` into their first ``substeps`` (default P) sub-steps, then the head.

        Only the needed columns of the unembed kernel (row order (p, d)) are multiplied.
        """
        c = self.config
        sub = c.patch_size if substeps is None else substeps
        if self.is_initializing():
            self.unembed(h)
        kernel = self.unembed.variables["params"]["kernel"][:, : sub * c.embed_dim]
        bias = self.unembed.variables["params"]["bias"][: sub * c.embed_dim]
        u = (h @ kernel + bias).reshape(*h.shape[:-1], sub, c.embed_dim)  # (..., sub, D)
        return self.head(u)

    def __call__(self, y_patches, ids_p):
        h, _ = self.encode(y_patches, ids_p)
        mix = self.output(h)  # (B, V, N, P, K)
        return jax.tree.map(lambda a: a.reshape(*a.shape[:2], -1, a.shape[-1]), mix)


# ----------------------------------------------------------------------------------------------
# Public functional API


def init_toto(config: TotoConfig, key: Array) -> dict:
    """Random parameters for ``config`` (tests, benchmarks)."""
    p = config.patch_size
    return TotoModel(config).init(key, jnp.zeros((1, 1, 1, p)), jnp.zeros((1, 1, 1), jnp.int32))["params"]


def param_shapes(config: TotoConfig) -> dict:
    """Shape tree of the parameters (no allocation)."""
    return jax.eval_shape(lambda k: init_toto(config, k), jax.random.key(0))


def count_params(params) -> int:
    return int(sum(np.prod(a.shape) for a in jax.tree.leaves(params)))


def patch_ids(ids: Array, patch: int) -> Array:
    """``(B,V,T)`` ids -> per-patch ids ``(B,V,N)`` (the id of each patch's first step)."""
    return ids[..., ::patch]


def toto_forward(
    params, config: TotoConfig, x: Array, valid: Array, ids: Array, prefix_len: int | None = None
) -> tuple[MixtureParams, Array, Array]:
    """Full-sequence forward (docs/models.md#toto-forward): ``x, valid, ids (B,V,T)`` with T % P == 0.

    Returns the mixture parameters for every output position ``(B,V,T,K)`` and the scaler's loc and
    scale ``(B,V,T)``; output position i predicts time i + P, unscaled with loc[i], scale[i].
    """
    p = config.patch_size
    b, v, t = x.shape
    if t % p:
        raise ConfigError(f"time axis {t} is not a multiple of the patch size {p}")
    prefix = None if prefix_len is None else prefix_len // p
    y, loc, scale = scale_series(x, valid, config, prefix)
    y_p = y.reshape(b, v, t // p, p)
    mix = TotoModel(config).apply({"params": params}, y_p, patch_ids(jnp.asarray(ids), p))
    return mix, loc, scale
