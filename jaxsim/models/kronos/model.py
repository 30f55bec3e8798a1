"""Kronos (tokenizer + autoregressive predictor) as Flax linen modules, read top to bottom.

Kronos turns a window of normalised OHLCV+amount rows into pairs of discrete tokens (s1 coarse, s2 fine)
with a causal transformer auto-encoder and a binary spherical quantizer (BSQ), then predicts the next
pair with a decoder-only transformer: s1 from the trunk, s2 from a dependency layer that attends from
the sampled s1 back over the trunk's context. Everything follows ``docs/models.md``
(#kronos-blocks, #kronos-tokenizer, #kronos-predictor).

Modules take one example (``(T, D)`` arrays, no batch axis) and are vmapped by the caller. Attention
layers write their (RoPE-rotated) keys and values into a caller-supplied buffer and attend causally over
it plus an optional shared prefix, so the same code serves a full window (a fresh buffer), a prefill
whose keys/values are kept, and KV-cache decoding of a few new tokens after a prefix shared by all
samples (docs/models.md#kronos-kv-cache).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "ROPE_BASE",
    "RMS_EPS",
    "DEP_HEADS",
    "TIME_TABLES",
    "KronosConfig",
    "KronosTokenizerConfig",
    "KRONOS_MINI",
    "KRONOS_SMALL",
    "KRONOS_BASE",
    "TOKENIZER_2K",
    "TOKENIZER_BASE",
    "KRONOS_PRESETS",
    "TOKENIZER_PRESETS",
    "PAIRING",
    "RMSNorm",
    "rope_inv_freq",
    "apply_rope",
    "attend",
    "SelfAttention",
    "SwiGLU",
    "Block",
    "block_stack",
    "empty_kv",
    "ids_to_codes",
    "codes_to_ids",
    "KronosTokenizer",
    "HierarchicalEmbedding",
    "TemporalEmbedding",
    "CrossAttention",
    "DependencyLayer",
    "DualHead",
    "Kronos",
    "init_kronos",
    "init_tokenizer",
    "count_params",
]

Array = jax.Array
ROPE_BASE = 10000.0
RMS_EPS = 1e-5
DEP_HEADS = 4  # the dependency layer always has 4 heads, whatever n_heads is (docs/models.md#kronos-dependency-layer)
TIME_TABLES = (("minute", 60), ("hour", 24), ("weekday", 7), ("day", 32), ("month", 13))


# --------------------------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class KronosConfig:
    """Predictor hyper-parameters (the inference-relevant keys of the hub's config.json)."""

    name: str = "kronos-small"
    d_model: int = 512
    n_layers: int = 8
    n_heads: int = 8
    ff_dim: int = 1024
    s1_bits: int = 10
    s2_bits: int = 10

    @property
    def vocab_s1(self) -> int:
        return 2**self.s1_bits

    @property
    def vocab_s2(self) -> int:
        return 2**self.s2_bits

    def num_params(self) -> int:
        """Parameter count, docs/models.md#kronos-parameter-count formula (buffers excluded)."""
        d, f, n = self.d_model, self.ff_dim, self.n_layers
        v1, v2 = self.vocab_s1, self.vocab_s2
        block = 4 * d * d + 6 * d + 3 * d * f
        return (
            (v1 + v2) * d
            + (2 * d * d + d)
            + 136 * d
            + n * block
            + d
            + (4 * d * d + 5 * d)
            + (d * v1 + v1)
            + (d * v2 + v2)
        )


@dataclasses.dataclass(frozen=True)
class KronosTokenizerConfig:
    """Tokenizer hyper-parameters. ``group_size`` only shapes a training buffer
    (docs/models.md#kronos-training-only)."""

    name: str = "kronos-tokenizer-base"
    d_in: int = 6
    d_model: int = 256
    n_heads: int = 4
    ff_dim: int = 512
    n_enc_layers: int = 4
    n_dec_layers: int = 4
    s1_bits: int = 10
    s2_bits: int = 10
    group_size: int = 4

    @property
    def codebook_dim(self) -> int:
        return self.s1_bits + self.s2_bits

    def num_params(self) -> int:
        d, f, k = self.d_model, self.ff_dim, self.codebook_dim
        blocks = (self.n_enc_layers - 1) + (self.n_dec_layers - 1)
        return (
            blocks * (4 * d * d + 6 * d + 3 * d * f)
            + (self.d_in * d + d)
            + (d * self.d_in + self.d_in)
            + (d * k + k)
            + (self.s1_bits * d + d)
            + (k * d + d)
        )


KRONOS_MINI = KronosConfig("kronos-mini", d_model=256, n_layers=4, n_heads=4, ff_dim=512)
KRONOS_SMALL = KronosConfig("kronos-small", d_model=512, n_layers=8, n_heads=8, ff_dim=1024)
KRONOS_BASE = KronosConfig("kronos-base", d_model=832, n_layers=12, n_heads=16, ff_dim=2048)
TOKENIZER_2K = KronosTokenizerConfig("kronos-tokenizer-2k", group_size=5)
TOKENIZER_BASE = KronosTokenizerConfig("kronos-tokenizer-base", group_size=4)
KRONOS_PRESETS = {c.name: c for c in (KRONOS_MINI, KRONOS_SMALL, KRONOS_BASE)}
TOKENIZER_PRESETS = {c.name: c for c in (TOKENIZER_2K, TOKENIZER_BASE)}
# Released pairings (docs/models.md#kronos-pairing): the model preset -> the tokenizer preset it was trained with.
PAIRING = {
    "kronos-mini": "kronos-tokenizer-2k",
    "kronos-small": "kronos-tokenizer-base",
    "kronos-base": "kronos-tokenizer-base",
}


# -------------------------------------------------------------------------------- building blocks
class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + 1e-5) * w, normalised in float32 (docs/models.md#kronos-blocks)."""

    @nn.compact
    def __call__(self, x: Array) -> Array:
        w = self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + RMS_EPS)
        return y.astype(x.dtype) * w.astype(x.dtype)


def rope_inv_freq(head_dim: int) -> Array:
    """inv_freq[j] = 10000^(-2j/h), float32 (the reference's ``rotary.inv_freq`` buffer)."""
    return 1.0 / (ROPE_BASE ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))


def apply_rope(x: Array, positions: Array) -> Array:
    """Rotate-half RoPE: x cos(theta) + rot(x) sin(theta), theta = concat(p f, p f).

    Args:
      x: ``(T, H, h)`` queries or keys.
      positions: ``(T,)`` integer positions (restart at 0 in every window).
    """
    h = x.shape[-1]
    freqs = positions.astype(jnp.float32)[:, None] * rope_inv_freq(h)[None, :]  # (T, h/2)
    emb = jnp.concatenate([freqs, freqs], axis=-1)[:, None, :]  # (T, 1, h)
    x1, x2 = x[..., : h // 2], x[..., h // 2 :]
    rotated = jnp.concatenate([-x2, x1], axis=-1)
    return x * jnp.cos(emb).astype(x.dtype) + rotated * jnp.sin(emb).astype(x.dtype)


def attend(q: Array, segments) -> Array:
    """Softmax attention of q (T, H, h) over key/value segments, as if they were concatenated.

    Each segment is ``(k (S, H, h), v (S, H, h), visible (T, S) bool or None = all visible)``. Keeping
    segments apart lets many samples share one prefix (a KV cache of the common context) without
    copying it per sample.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = []
    for k, _, visible in segments:
        s = jnp.einsum("thd,shd->hts", q, k) * scale
        if visible is not None:
            s = jnp.where(visible[None], s, jnp.finfo(s.dtype).min)
        scores.append(s)
    w = jax.nn.softmax(jnp.concatenate(scores, -1).astype(jnp.float32), axis=-1).astype(q.dtype)
    out, start = 0.0, 0
    for k, v, _ in segments:
        out = out + jnp.einsum("hts,shd->thd", w[..., start : start + k.shape[0]], v)
        start += k.shape[0]
    return out


class SelfAttention(nn.Module):
    """Causal multi-head self-attention with rotate-half RoPE over a key/value buffer.

    The T new tokens have RoPE positions ``pos0 .. pos0+T-1``; their rotated keys and values are written
    into the buffers at row ``write_at`` and query t sees buffer rows j <= write_at + t, plus every row of
    an optional shared ``prefix`` (keys already rotated) that precedes the buffer.
    """

    d_model: int
    n_heads: int

    @nn.compact
    def __call__(
        self,
        x: Array,
        cache_k: Array,
        cache_v: Array,
        pos0: Array,
        write_at: Array,
        prefix_k: Array | None = None,
        prefix_v: Array | None = None,
    ):
        t, d = x.shape
        hd = d // self.n_heads
        q = nn.Dense(d, name="q_proj")(x).reshape(t, self.n_heads, hd)
        k = nn.Dense(d, name="k_proj")(x).reshape(t, self.n_heads, hd)
        v = nn.Dense(d, name="v_proj")(x).reshape(t, self.n_heads, hd)
        pos = pos0 + jnp.arange(t)
        q, k = apply_rope(q, pos), apply_rope(k, pos)
        cache_k = jax.lax.dynamic_update_slice(cache_k, k.astype(cache_k.dtype), (write_at, 0, 0))
        cache_v = jax.lax.dynamic_update_slice(cache_v, v.astype(cache_v.dtype), (write_at, 0, 0))
        visible = jnp.arange(cache_k.shape[0])[None, :] <= (write_at + jnp.arange(t))[:, None]
        segments = [] if prefix_k is None else [(prefix_k, prefix_v, None)]
        segments.append((cache_k, cache_v, visible))
        out = attend(q, segments).reshape(t, d)
        return nn.Dense(d, name="out_proj")(out), cache_k, cache_v


class SwiGLU(nn.Module):
    """y = W2(silu(W1 x) * W3 x), no biases."""

    d_model: int
    ff_dim: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h = nn.silu(nn.Dense(self.ff_dim, use_bias=False, name="w1")(x))
        h = h * nn.Dense(self.ff_dim, use_bias=False, name="w3")(x)
        return nn.Dense(self.d_model, use_bias=False, name="w2")(h)


class Block(nn.Module):
    """Pre-norm transformer block; scanned over layers, carrying x and each layer's K/V buffer."""

    d_model: int
    n_heads: int
    ff_dim: int

    @nn.compact
    def __call__(
        self,
        x: Array,
        cache_k: Array,
        cache_v: Array,
        pos0: Array,
        write_at: Array,
        prefix_k: Array | None = None,
        prefix_v: Array | None = None,
    ):
        a, cache_k, cache_v = SelfAttention(self.d_model, self.n_heads, name="self_attn")(
            RMSNorm(name="norm1")(x), cache_k, cache_v, pos0, write_at, prefix_k, prefix_v
        )
        x = x + a
        x = x + SwiGLU(self.d_model, self.ff_dim, name="ffn")(RMSNorm(name="norm2")(x))
        return x, (cache_k, cache_v)


def block_stack(d_model: int, n_heads: int, ff_dim: int, n: int, name: str) -> nn.Module:
    """n Blocks as one lax.scan (parameters stacked on a leading layer axis)."""
    return nn.scan(
        Block,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=(0, 0, nn.broadcast, nn.broadcast, 0, 0),
        length=n,
    )(d_model, n_heads, ff_dim, name=name)


def empty_kv(n_layers: int, length: int, d_model: int, n_heads: int, dtype=jnp.float32):
    """Zeroed per-layer key and value buffers, each ``(n_layers, length, H, h)``."""
    shape = (n_layers, length, n_heads, d_model // n_heads)
    return jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)


# ------------------------------------------------------------------------------------- tokenizer
def ids_to_codes(s1: Array, s2: Array, bits: int) -> Array:
    """(s1, s2) -> BSQ codes: little-endian bits, s1 bits first, mapped to +-1/sqrt(2 bits)."""
    shifts = jnp.arange(bits)
    b = jnp.concatenate([(s1[..., None] >> shifts) & 1, (s2[..., None] >> shifts) & 1], axis=-1)
    return (b.astype(jnp.float32) * 2.0 - 1.0) * (1.0 / math.sqrt(2 * bits))


def codes_to_ids(z: Array, s1_bits: int) -> tuple[Array, Array]:
    """Pre-sign quant_embed output -> (s1, s2): bit_k = [z_k > 0] (0 and NaN give bit 0,
    docs/models.md#kronos-encode)."""
    bits = (z > 0).astype(jnp.int32)
    weights = 2 ** jnp.arange(s1_bits, dtype=jnp.int32)
    return jnp.sum(bits[..., :s1_bits] * weights, -1), jnp.sum(bits[..., s1_bits:] * weights, -1)


class KronosTokenizer(nn.Module):
    """Causal transformer auto-encoder with a binary spherical quantizer (docs/models.md#kronos-tokenizer)."""

    config: KronosTokenizerConfig

    def setup(self):
        c = self.config
        self.embed = nn.Dense(c.d_model)
        self.encoder = block_stack(c.d_model, c.n_heads, c.ff_dim, c.n_enc_layers - 1, "encoder")
        self.quant_embed = nn.Dense(c.codebook_dim)
        self.post_quant_embed_pre = nn.Dense(c.d_model)  # training-only; kept so checkpoints convert 1:1
        self.post_quant_embed = nn.Dense(c.d_model)
        self.decoder = block_stack(c.d_model, c.n_heads, c.ff_dim, c.n_dec_layers - 1, "decoder")
        self.head = nn.Dense(c.d_in)

    def _run(self, stack, n: int, x: Array, pos0=0, prefix=(None, None)):
        c = self.config
        ck, cv = empty_kv(n, x.shape[0], c.d_model, c.n_heads, x.dtype)
        return stack(x, ck, cv, jnp.int32(pos0), jnp.int32(0), *prefix)

    def encode_presign(self, x: Array) -> Array:
        """x (T, d_in) normalised rows -> quant_embed output (T, K); only its signs are used."""
        z, _ = self._run(self.encoder, self.config.n_enc_layers - 1, self.embed(x))
        return self.quant_embed(z)

    def encode(self, x: Array) -> tuple[Array, Array]:
        """x (T, d_in) -> (s1, s2), int32 each (T,)."""
        return codes_to_ids(self.encode_presign(x), self.config.s1_bits)

    def decode(self, s1: Array, s2: Array) -> Array:
        """(s1, s2) (T,) -> reconstructed normalised rows (T, d_in)."""
        return self.decode_suffix(s1, s2, (None, None))

    def decode_prefix(self, s1: Array, s2: Array):
        """Decoder keys/values of a window's first rows, each (n_dec-1, T, H, h), to share across samples."""
        z = self.post_quant_embed(ids_to_codes(s1, s2, self.config.s1_bits))
        _, kv = self._run(self.decoder, self.config.n_dec_layers - 1, z)
        return kv

    def decode_suffix(self, s1: Array, s2: Array, prefix) -> Array:
        """Decode rows that follow a ``decode_prefix`` (or stand alone with ``(None, None)``) -> (T, d_in).

        Exact because the decoder is causal: the prefix rows do not depend on what follows them.
        """
        z = self.post_quant_embed(ids_to_codes(s1, s2, self.config.s1_bits))
        pos0 = 0 if prefix[0] is None else prefix[0].shape[1]
        z, _ = self._run(self.decoder, self.config.n_dec_layers - 1, z, pos0, prefix)
        return self.head(z)

    def __call__(self, x: Array) -> Array:
        """Encode then decode (used by init so that every parameter is created)."""
        s1, s2 = self.encode(x)
        _ = self.post_quant_embed_pre(jnp.zeros((self.config.s1_bits,), x.dtype))
        return self.decode(s1, s2)


# ------------------------------------------------------------------------------------- predictor
class HierarchicalEmbedding(nn.Module):
    """x = fusion_proj(concat(E1[s1] sqrt(D), E2[s2] sqrt(D)))."""

    config: KronosConfig

    def setup(self):
        c = self.config
        init = nn.initializers.normal(c.d_model**-0.5)
        self.emb_s1 = nn.Embed(c.vocab_s1, c.d_model, embedding_init=init)
        self.emb_s2 = nn.Embed(c.vocab_s2, c.d_model, embedding_init=init)
        self.fusion_proj = nn.Dense(c.d_model)

    def __call__(self, s1: Array, s2: Array) -> Array:
        scale = math.sqrt(self.config.d_model)
        return self.fusion_proj(jnp.concatenate([self.emb_s1(s1) * scale, self.emb_s2(s2) * scale], -1))

    def sibling(self, s1: Array) -> Array:
        """The raw (unscaled) E1 row that queries the dependency layer (docs/models.md#kronos-dependency-layer,
        docs/models.md#kronos-embedding-scale)."""
        return self.emb_s1(s1)


class TemporalEmbedding(nn.Module):
    """Sum of learned minute/hour/weekday/day/month tables (learn_te = true); stamps truncate to int."""

    d_model: int

    @nn.compact
    def __call__(self, stamp: Array) -> Array:
        idx = stamp.astype(jnp.int32)
        e = {
            name: nn.Embed(rows, self.d_model, name=f"{name}_embed")(idx[..., i])
            for i, (name, rows) in enumerate(TIME_TABLES)
        }
        # the reference's summation order: hour + weekday + day + month + minute
        return e["hour"] + e["weekday"] + e["day"] + e["month"] + e["minute"]


class CrossAttention(nn.Module):
    """Dependency-layer attention at inference: one query, no mask, RoPE is the identity
    (docs/models.md#kronos-dependency-layer)."""

    d_model: int
    n_heads: int = DEP_HEADS

    def setup(self):
        self.q_proj = nn.Dense(self.d_model)
        self.k_proj = nn.Dense(self.d_model)
        self.v_proj = nn.Dense(self.d_model)
        self.out_proj = nn.Dense(self.d_model)

    def keys_values(self, ctx: Array) -> tuple[Array, Array]:
        """Projected keys and values of the context rows, each (T, D) (cacheable per position)."""
        return self.k_proj(ctx), self.v_proj(ctx)

    def __call__(self, u: Array, segments) -> Array:
        """u (D,) query input; segments: [(k (S, D), v (S, D), valid (S,) bool or None)] -> (D,)."""
        hd = self.d_model // self.n_heads
        q = self.q_proj(u).reshape(1, self.n_heads, hd)
        split = lambda a: a.reshape(a.shape[0], self.n_heads, hd)
        segs = [(split(k), split(v), None if m is None else m[None, :]) for k, v, m in segments]
        return self.out_proj(attend(q, segs).reshape(self.d_model))


class DependencyLayer(nn.Module):
    """x2 = RMSNorm(ctx_last + CrossAttn(E1[s1*], ctx)); only the last row is ever used."""

    d_model: int

    def setup(self):
        self.cross_attn = CrossAttention(self.d_model)
        self.norm = RMSNorm()

    def keys_values(self, ctx: Array):
        return self.cross_attn.keys_values(ctx)

    def __call__(self, ctx_last: Array, u: Array, segments) -> Array:
        return self.norm(ctx_last + self.cross_attn(u, segments))


class DualHead(nn.Module):
    config: KronosConfig

    def setup(self):
        self.proj_s1 = nn.Dense(self.config.vocab_s1)
        self.proj_s2 = nn.Dense(self.config.vocab_s2)

    def __call__(self, ctx: Array) -> Array:
        return self.proj_s1(ctx)

    def cond(self, x2: Array) -> Array:
        return self.proj_s2(x2)


class Kronos(nn.Module):
    """The Kronos predictor (docs/models.md#kronos-predictor). Methods work on one sequence; ``__call__`` is
    decode_s1+s2."""

    config: KronosConfig

    def setup(self):
        c = self.config
        self.embedding = HierarchicalEmbedding(c)
        self.time_emb = TemporalEmbedding(c.d_model)
        self.transformer = block_stack(c.d_model, c.n_heads, c.ff_dim, c.n_layers, "transformer")
        self.norm = RMSNorm()
        self.dep_layer = DependencyLayer(c.d_model)
        self.head = DualHead(c)

    def embed(self, s1: Array, s2: Array, stamp: Array) -> Array:
        """Token + time embeddings, (T,) (T,) (T, 5) -> (T, D)."""
        return self.embedding(s1, s2) + self.time_emb(stamp)

    def trunk(self, x: Array, cache_k: Array, cache_v: Array, pos0: Array, write_at: Array, prefix=(None, None)):
        """Embedded tokens (T, D) at RoPE positions pos0.. -> (ctx = final-normed states, K/V buffers).

        ``cache_k``/``cache_v`` are (n_layers, S, H, h) buffers written at row ``write_at``; ``prefix`` is
        an optional pair of (n_layers, Sp, H, h) keys/values that every new token sees in full.
        """
        x, (cache_k, cache_v) = self.transformer(x, cache_k, cache_v, pos0, write_at, *prefix)
        return self.norm(x), cache_k, cache_v

    def s1_logits(self, ctx: Array) -> Array:
        return self.head(ctx)

    def dep_keys_values(self, ctx: Array):
        return self.dep_layer.keys_values(ctx)

    def s2_logits(self, ctx_last: Array, s1: Array, segments) -> Array:
        """Last-row s2 logits (V2,) given the sampled s1 (scalar) and the context's dep keys/values
        as segments [(k (S, D), v (S, D), valid (S,) or None)]."""
        return self.head.cond(self.dep_layer(ctx_last, self.embedding.sibling(s1), segments))

    def decode_s1(self, s1: Array, s2: Array, stamp: Array):
        """Reference ``decode_s1`` on one window: (s1 logits (T, V1), ctx (T, D))."""
        c = self.config
        ck, cv = empty_kv(c.n_layers, s1.shape[0], c.d_model, c.n_heads)
        ctx, _, _ = self.trunk(self.embed(s1, s2, stamp), ck, cv, jnp.int32(0), jnp.int32(0))
        return self.s1_logits(ctx), ctx

    def decode_s2(self, ctx: Array, s1: Array) -> Array:
        """Reference ``decode_s2(ctx, s1*)[-1]``: last-row s2 logits (V2,)."""
        k, v = self.dep_keys_values(ctx)
        return self.s2_logits(ctx[-1], s1, [(k, v, None)])

    def __call__(self, s1: Array, s2: Array, stamp: Array):
        logits1, ctx = self.decode_s1(s1, s2, stamp)
        return logits1, self.decode_s2(ctx, s1[-1])


# ---------------------------------------------------------------------------------- init helpers
def init_kronos(config: KronosConfig, key: Array) -> dict[str, Any]:
    """Randomly initialised predictor parameters (a plain nested dict)."""
    t = 4
    return Kronos(config).init(key, jnp.zeros(t, jnp.int32), jnp.zeros(t, jnp.int32), jnp.ones((t, 5), jnp.float32))[
        "params"
    ]


def init_tokenizer(config: KronosTokenizerConfig, key: Array) -> dict[str, Any]:
    """Randomly initialised tokenizer parameters (a plain nested dict)."""
    return KronosTokenizer(config).init(key, jnp.zeros((4, config.d_in), jnp.float32))["params"]


def count_params(params: Any) -> int:
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
