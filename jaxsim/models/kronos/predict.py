"""The official Kronos prediction procedure in pure JAX: normalise, tokenize, sample, decode, average.

This reproduces ``KronosPredictor.predict``/``predict_batch`` (docs/models.md#kronos-predict) for B series and S samples
at once: per-series normalisation and clipping, tokenizer encode of the whole lookback L, P autoregressive steps
drawing s1 then s2 with temperature / top-k / top-p filtered exactly as the reference, the decode window
of the last min(L+P, C) tokens, and the mean over samples taken in normalised space. Raw sample paths
are returned as well.

Exact speed-ups over the reference (none changes a result):

* the context is encoded once per series, not once per sample;
* step 0 (the context window only) runs once per series; its keys/values are a prefix shared by all
  samples. While the window has not slid (L + i <= C) each later step feeds only the one new token
  through a KV cache: positions start at 0 and stay put, so cached states are exactly those the
  reference recomputes;
* once the window slides, every position shifts (RoPE restarts at 0 in each window) and every state
  changes, so those steps recompute the whole C-token window, like the reference (docs/models.md#kronos-kv-cache);
* the final decode runs the tokenizer decoder over the context rows of its window once per series and
  only the P generated rows per sample (the decoder is causal).

Host-side helpers (pandas, dates) are at the end: ``frame_to_features``, ``time_features``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim.errors import ConfigError, PriceDataError
from jaxsim.models.kronos.model import Kronos, KronosConfig, KronosTokenizer, empty_kv

__all__ = [
    "FEATURES",
    "STD_EPS",
    "normalize",
    "filter_logits",
    "sample_token",
    "predict",
    "frame_to_features",
    "time_features",
]

Array = jax.Array
FEATURES = ("open", "high", "low", "close", "volume", "amount")
STD_EPS = 1e-5


# ------------------------------------------------------------------------------------ normalisation
def normalize(x: Array, clip) -> tuple[Array, Array, Array]:
    """Per-column z-score over the context rows, then clip (docs/models.md#kronos-normalisation).

    x_hat = clip((x - mu) / (sigma + 1e-5), -clip, clip), sigma the population std (ddof 0).

    Args:
      x: ``(L, 6)`` raw features of one series.
      clip: the clip bound in normalised units.

    Returns:
      ``(x_hat (L, 6), mu (6,), sigma + 1e-5 (6,))``; de-normalise with ``y * scale + mu``.
    """
    mu = jnp.mean(x, axis=0)
    scale = jnp.std(x, axis=0) + STD_EPS
    return jnp.clip((x - mu) / scale, -clip, clip), mu, scale


# ----------------------------------------------------------------------------------------- sampling
def filter_logits(logits: Array, *, temperature, top_k: int, top_p) -> Array:
    """The reference's ``sample_from_logits`` filter: temperature, then top-k OR top-p (docs/models.md#kronos-predict).

    * ``l = logits / T``;
    * top_k > 0: keep every l >= the k-th largest value (ties kept) and ignore top_p;
    * else if top_p < 1: sort descending, c = cumsum(softmax(sorted)); drop a token when the cumulative
      mass *before* it already exceeds top_p (strict ``>``, shifted right), so the kept set is the
      shortest prefix whose mass exceeds top_p; the top token is always kept.

    Args:
      logits: ``(V,)`` raw logits (vmap for batches).
      temperature: T > 0 (may be traced).
      top_k: static int; 0 disables.
      top_p: float in (0, 1] (may be traced); 1 disables.

    Returns:
      ``(V,)`` logits with removed entries at -inf.
    """
    ell = logits / temperature
    vocab = ell.shape[-1]
    if top_k > 0:
        k = min(max(int(top_k), 1), vocab)
        kth = jax.lax.top_k(ell, k)[0][k - 1]
        return jnp.where(ell < kth, -jnp.inf, ell)
    order = jnp.argsort(-ell, stable=True)
    cum = jnp.cumsum(jax.nn.softmax(ell[order]))
    drop_sorted = cum > top_p
    drop_sorted = jnp.concatenate([jnp.zeros((1,), bool), drop_sorted[:-1]])
    drop = jnp.zeros_like(drop_sorted).at[order].set(drop_sorted)
    return jnp.where(jnp.logical_and(drop, top_p < 1.0), -jnp.inf, ell)


def sample_token(key: Array, logits: Array, *, temperature, top_k: int, top_p) -> Array:
    """One categorical draw from the filtered distribution (same law as ``torch.multinomial``)."""
    return jax.random.categorical(key, filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)).astype(
        jnp.int32
    )


# --------------------------------------------------------------------------------------- the AR loop
def _series_paths(
    model: Kronos,
    tok: KronosTokenizer,
    s1c: Array,
    s2c: Array,
    stamp: Array,
    keys: Array,
    temperature,
    top_p,
    *,
    pred_len: int,
    max_context: int,
    top_k: int,
):
    """All S sample paths of one series, decoded in normalised units: ``(S, P, 6)``.

    Args:
      s1c, s2c: ``(L,)`` context tokens; stamp: ``(L+P, 5)`` time features; keys: ``(S,)`` keys.
    """
    cfg: KronosConfig = model.config
    L, P, C = s1c.shape[0], pred_len, max_context
    t0 = min(L, C)  # step-0 window [L - t0, L)
    n_fast = max(0, min(P, C - L + 1))  # steps whose window has not slid (L + i <= C)
    n_cached = max(n_fast - 1, 0)  # steps 1..n_fast-1 decoded one token at a time
    dec_start = max(0, L + P - C)  # final decode window [dec_start, L + P)
    draw = functools.partial(sample_token, temperature=temperature, top_k=top_k, top_p=top_p)

    # Step 0, shared by every sample: the context window, keeping its keys/values.
    w = slice(L - t0, L)
    ck, cv = empty_kv(cfg.n_layers, t0, cfg.d_model, cfg.n_heads)
    ctx0, pk, pv = model.trunk(model.embed(s1c[w], s2c[w], stamp[w]), ck, cv, jnp.int32(0), jnp.int32(0))
    logits0 = model.s1_logits(ctx0[-1])
    dk0, dv0 = model.dep_keys_values(ctx0)
    n_ctx_dec = L - dec_start
    tok_prefix = tok.decode_prefix(s1c[dec_start:], s2c[dec_start:]) if n_ctx_dec > 0 else (None, None)

    def one_path(key):
        step_keys = jax.random.split(key, P)
        k1, k2 = jax.random.split(step_keys[0])
        a1 = draw(k1, logits0)
        a2 = draw(k2, model.s2_logits(ctx0[-1], a1, [(dk0, dv0, None)]))
        gen1 = jnp.zeros(P, jnp.int32).at[0].set(a1)
        gen2 = jnp.zeros(P, jnp.int32).at[0].set(a2)

        if n_cached > 0:  # KV-cache steps: the window [0, L + i) has not slid
            sk, sv = empty_kv(cfg.n_layers, n_cached, cfg.d_model, cfg.n_heads)
            dsk = jnp.zeros((n_cached, cfg.d_model), jnp.float32)

            def cached_step(carry, i):
                gen1, gen2, sk, sv, dsk, dsv = carry
                pos = L + i - 1  # the token drawn at step i - 1
                x = model.embed(gen1[i - 1][None], gen2[i - 1][None], stamp[pos][None])
                ctx, sk, sv = model.trunk(x, sk, sv, pos, i - 1, prefix=(pk, pv))
                dk, dv = model.dep_keys_values(ctx)
                dsk = jax.lax.dynamic_update_slice(dsk, dk, (i - 1, 0))
                dsv = jax.lax.dynamic_update_slice(dsv, dv, (i - 1, 0))
                valid = jnp.arange(n_cached) <= i - 1
                k1, k2 = jax.random.split(step_keys[i])
                a1 = draw(k1, model.s1_logits(ctx[0]))
                a2 = draw(k2, model.s2_logits(ctx[0], a1, [(dk0, dv0, None), (dsk, dsv, valid)]))
                return (gen1.at[i].set(a1), gen2.at[i].set(a2), sk, sv, dsk, dsv), None

            carry = (gen1, gen2, sk, sv, dsk, dsk)
            (gen1, gen2, *_), _ = jax.lax.scan(cached_step, carry, jnp.arange(1, n_fast))

        first_slide = max(n_fast, 1)
        if first_slide < P:  # sliding window: every position shifts, recompute the window

            def slide_step(carry, i):
                gen1, gen2 = carry
                start = L + i - C
                w1 = jax.lax.dynamic_slice(jnp.concatenate([s1c, gen1]), (start,), (C,))
                w2 = jax.lax.dynamic_slice(jnp.concatenate([s2c, gen2]), (start,), (C,))
                ws = jax.lax.dynamic_slice(stamp, (start, 0), (C, stamp.shape[1]))
                ck, cv = empty_kv(cfg.n_layers, C, cfg.d_model, cfg.n_heads)
                ctx, _, _ = model.trunk(model.embed(w1, w2, ws), ck, cv, jnp.int32(0), jnp.int32(0))
                dk, dv = model.dep_keys_values(ctx)
                k1, k2 = jax.random.split(step_keys[i])
                a1 = draw(k1, model.s1_logits(ctx[-1]))
                a2 = draw(k2, model.s2_logits(ctx[-1], a1, [(dk, dv, None)]))
                return (gen1.at[i].set(a1), gen2.at[i].set(a2)), None

            (gen1, gen2), _ = jax.lax.scan(slide_step, (gen1, gen2), jnp.arange(first_slide, P))

        if n_ctx_dec > 0:
            return tok.decode_suffix(gen1, gen2, tok_prefix)
        return tok.decode_suffix(gen1[P - C :], gen2[P - C :], (None, None))  # P == C: window = generated

    return jax.vmap(one_path)(keys)


@functools.partial(
    jax.jit, static_argnames=("model_config", "tokenizer_config", "pred_len", "sample_count", "top_k", "max_context")
)
def _predict(
    model_params,
    tokenizer_params,
    x,
    x_stamp,
    y_stamp,
    key,
    temperature,
    top_p,
    clip,
    *,
    model_config,
    tokenizer_config,
    pred_len,
    sample_count,
    top_k,
    max_context,
):
    model = Kronos(model_config).bind({"params": model_params})
    tok = KronosTokenizer(tokenizer_config).bind({"params": tokenizer_params})
    b = x.shape[0]
    xn, mu, scale = jax.vmap(normalize, (0, None))(x, clip)
    s1c, s2c = jax.vmap(tok.encode)(xn)
    stamps = jnp.concatenate([x_stamp, y_stamp], axis=1)
    keys = jax.random.split(key, b * sample_count)
    keys = keys.reshape((b, sample_count) + keys.shape[1:])
    run = functools.partial(_series_paths, model, tok, pred_len=pred_len, max_context=max_context, top_k=top_k)
    paths = jax.vmap(run, (0, 0, 0, 0, None, None))(s1c, s2c, stamps, keys, temperature, top_p)
    mean = jnp.mean(paths, axis=1) * scale[:, None, :] + mu[:, None, :]
    return mean, paths * scale[:, None, None, :] + mu[:, None, None, :]


def predict(
    bundle,
    x,
    x_stamp,
    y_stamp,
    *,
    pred_len: int,
    key: Array,
    sample_count: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.9,
    max_context: int = 512,
    clip: float = 5.0,
) -> tuple[Array, Array]:
    """Kronos forecasts of B series: the mean path and the S raw sample paths, in raw units.

    Reproduces ``KronosPredictor.predict_batch`` (each series normalised with its own mu, sigma). Compiled
    once per (configs, B, L, pred_len, sample_count, top_k, max_context); temperature, top_p and clip
    are traced. Greedy (deterministic) mode: ``temperature=1, top_k=1``.

    Args:
      bundle: a :class:`~jaxsim.models.kronos.checkpoint.KronosBundle`.
      x: ``(B, L, 6)`` float32 features [open, high, low, close, volume, amount].
      x_stamp: ``(B, L, 5)`` time features of the context rows (see :func:`time_features`).
      y_stamp: ``(B, pred_len, 5)`` time features of the predicted rows.
      pred_len: P, the number of steps (<= max_context).
      key: PRNG key; one key per (series, sample), then per (step, level).
      sample_count: S paths per series; the mean is over these in normalised space.
      temperature, top_k, top_p: the reference's sampling filter (top_k > 0 disables top_p).
      max_context: C, the sliding window length.
      clip: clip bound of the normalised inputs.

    Returns:
      ``(mean (B, P, 6), paths (B, S, P, 6))``.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 3 or x.shape[-1] != 6:
        raise ConfigError(f"x must be (B, L, 6) [open, high, low, close, volume, amount], got {x.shape}")
    b, L, _ = x.shape
    if tuple(x_stamp.shape) != (b, L, 5) or tuple(y_stamp.shape) != (b, pred_len, 5):
        raise ConfigError(
            f"stamps must be (B, L, 5) and (B, pred_len, 5); got {tuple(x_stamp.shape)} "
            f"and {tuple(y_stamp.shape)} for x {tuple(x.shape)}, pred_len {pred_len}"
        )
    if not 1 <= pred_len <= max_context:
        raise ConfigError(f"pred_len must be in [1, max_context={max_context}], got {pred_len}")
    if L < 1 or sample_count < 1 or top_k < 0:
        raise ConfigError(f"need L >= 1, sample_count >= 1, top_k >= 0 (got {L}, {sample_count}, {top_k})")
    if not (isinstance(temperature, jax.Array) or temperature > 0):
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    return _predict(
        bundle.model_params,
        bundle.tokenizer_params,
        x,
        jnp.asarray(x_stamp, jnp.float32),
        jnp.asarray(y_stamp, jnp.float32),
        key,
        jnp.float32(temperature),
        jnp.float32(top_p),
        jnp.float32(clip),
        model_config=bundle.model_config,
        tokenizer_config=bundle.tokenizer_config,
        pred_len=int(pred_len),
        sample_count=int(sample_count),
        top_k=int(top_k),
        max_context=int(max_context),
    )


# ------------------------------------------------------------------------------- host-side helpers
def frame_to_features(df) -> np.ndarray:
    """A pandas frame -> ``(L, 6)`` float32 [open, high, low, close, volume, amount]
    (docs/models.md#kronos-normalisation).

    Column names are matched case-insensitively. Missing volume -> volume and amount 0; missing amount
    -> volume * mean(open, high, low, close). Missing price columns or any NaN raise PriceDataError.
    """
    cols = {str(c).lower(): c for c in df.columns}
    missing = [c for c in FEATURES[:4] if c not in cols]
    if missing:
        raise PriceDataError(f"Kronos needs columns open, high, low, close; missing {missing}")
    ohlc = np.stack([df[cols[c]].to_numpy(np.float64) for c in FEATURES[:4]], axis=1)
    if "volume" in cols:
        volume = df[cols["volume"]].to_numpy(np.float64)
        amount = df[cols["amount"]].to_numpy(np.float64) if "amount" in cols else volume * ohlc.mean(axis=1)
    else:
        volume = amount = np.zeros(len(df))
    x = np.concatenate([ohlc, volume[:, None], amount[:, None]], axis=1)
    bad = np.isnan(x).any(axis=1)
    if bad.any():
        raise PriceDataError(f"NaN in price/volume columns at rows {np.flatnonzero(bad)[:10].tolist()}")
    return x.astype(np.float32)


def time_features(dates) -> np.ndarray:
    """Dates -> ``(T, 5)`` float32 (minute, hour, weekday Mon=0, day 1-31, month 1-12)
    (docs/models.md#kronos-calendar-features)."""
    idx = pd.DatetimeIndex(np.asarray(dates, dtype="datetime64[ns]"))
    return np.stack([idx.minute, idx.hour, idx.day_of_week, idx.day, idx.month], 1).astype(np.float32)
