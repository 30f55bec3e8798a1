"""Kronos modules against goldens of the official PyTorch code (tests/fixtures/kronos,
docs/models.md#kronos-parity-plan).

The fixtures are a randomly initialised, perturbed Kronos-mini + Tokenizer-2k saved by the reference in
the hub layout, with unit goldens written by tools/reference/kronos_fixtures.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kronos_helpers import FIX, bundle, unit  # noqa: E402,F401  (pytest fixtures)

from jaxsim.models.kronos.model import (
    KRONOS_BASE,
    KRONOS_MINI,
    KRONOS_SMALL,
    TOKENIZER_2K,
    TOKENIZER_BASE,
    Kronos,
    KronosTokenizer,
    apply_rope,
    codes_to_ids,
    count_params,
    empty_kv,
    ids_to_codes,
    init_kronos,
    init_tokenizer,
)

pytestmark = pytest.mark.strict_promotion(rank=False)  # Flax-style (D,) scales broadcast over (..., D)


def batched(module, method):
    """jit(vmap(module.method)) as a function of (params, *batched args)."""
    call = lambda p, *a: module.apply({"params": p}, *a, method=method)
    return jax.jit(lambda p, *a: jax.vmap(lambda *b: call(p, *b))(*a))


def unbatched(module, method):
    return jax.jit(lambda p, *a: module.apply({"params": p}, *a, method=method))


@pytest.fixture(autouse=True)
def highest_precision():
    with jax.default_matmul_precision("highest"):
        yield


def test_parameter_counts_match_the_released_models():
    assert [c.num_params() for c in (KRONOS_MINI, KRONOS_SMALL, KRONOS_BASE)] == [4_108_032, 24_741_376, 102_310_592]
    assert TOKENIZER_2K.num_params() == TOKENIZER_BASE.num_params() == 3_958_042
    for cfg, init in ((KRONOS_SMALL, init_kronos), (TOKENIZER_2K, init_tokenizer)):
        shapes = jax.eval_shape(lambda k: init(cfg, k), jax.random.PRNGKey(0))
        assert count_params(shapes) == cfg.num_params()


def test_bit_layout_is_little_endian_with_s1_first():
    z = (-jnp.ones(20)).at[0].set(0.3).at[9].set(2.0).at[10].set(1e-9).at[19].set(5.0)
    s1, s2 = codes_to_ids(z, 10)
    assert (int(s1), int(s2)) == (1 + 512, 1 + 512)
    assert codes_to_ids(jnp.zeros(20), 10) == (0, 0)  # exact zero -> bit 0
    assert codes_to_ids(jnp.full(20, jnp.nan), 10) == (0, 0)  # NaN -> bit 0
    codes = ids_to_codes(jnp.array(513), jnp.array(2), 10)
    want = -np.ones(20) / np.sqrt(20)
    want[[0, 9, 11]] *= -1
    np.testing.assert_allclose(codes, want, rtol=1e-7)


def test_rope_is_rotate_half_and_position_zero_is_identity():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 8))
    np.testing.assert_array_equal(apply_rope(x, jnp.zeros(3, jnp.int32)), x)
    y = apply_rope(x, jnp.array([0, 1, 5]))
    theta = 5 * 10000.0 ** (-np.arange(0, 8, 2) / 8)
    x1, x2 = np.asarray(x[2, :, :4]), np.asarray(x[2, :, 4:])
    want = np.concatenate([x1 * np.cos(theta) - x2 * np.sin(theta), x2 * np.cos(theta) + x1 * np.sin(theta)], -1)
    np.testing.assert_allclose(y[2], want, atol=1e-5)


def test_tokenizer_matches_reference(bundle, unit):
    tok, p = KronosTokenizer(bundle.tokenizer_config), bundle.tokenizer_params
    z = batched(tok, KronosTokenizer.encode_presign)(p, unit["tok_x"])
    np.testing.assert_allclose(z, unit["tok_presign"], atol=1e-4)
    s1, s2 = codes_to_ids(z, 10)
    ids = np.stack([s1, s2])
    want = np.stack([unit["tok_s1"], unit["tok_s2"]])
    flips = ids != want
    if flips.any():  # allowed only where some pre-sign value of that half is within 1e-5 of 0
        near0 = np.abs(unit["tok_presign"]) < 1e-5
        near = np.stack([near0[..., :10].any(-1), near0[..., 10:].any(-1)])
        assert near[flips].all()
    assert flips.mean() == 0.0  # and with these fixtures there are none
    dec = batched(tok, KronosTokenizer.decode)(p, unit["tok_s1"], unit["tok_s2"])
    np.testing.assert_allclose(dec, unit["tok_decode"], atol=1e-4)


def test_decode_s1_and_s2_match_reference(bundle, unit):
    m, p = Kronos(bundle.model_config), bundle.model_params
    logits, ctx = batched(m, Kronos.decode_s1)(p, unit["dec_s1"], unit["dec_s2"], unit["dec_stamp"])
    np.testing.assert_allclose(logits, unit["dec_logits"], atol=1e-4)
    np.testing.assert_allclose(ctx, unit["dec_ctx"], atol=1e-4)
    l2 = batched(m, Kronos.decode_s2)(p, jnp.asarray(unit["dec_ctx"]), unit["dec_s1_star"])
    np.testing.assert_allclose(l2, unit["dec_s2_logits"], atol=1e-4)
    assert np.abs(unit["dec_logits"]).max() > 0.5  # the goldens are not trivially small


def test_kv_cache_and_prefix_decoding_equal_full_recompute(bundle, unit):
    """Prefill + one-token steps through the cache give the full-window states (no slide)."""
    cfg, p = bundle.model_config, bundle.model_params
    m = Kronos(cfg)
    s1, s2, stamp = (jnp.asarray(unit[k][0]) for k in ("dec_s1", "dec_s2", "dec_stamp"))
    full_logits, full_ctx = unbatched(m, Kronos.decode_s1)(p, s1, s2, stamp)
    n0, t = 30, s1.shape[0]

    def prefill(p, s1, s2, stamp):
        mm = m.bind({"params": p})
        ck, cv = empty_kv(cfg.n_layers, n0, cfg.d_model, cfg.n_heads)
        return mm.trunk(mm.embed(s1, s2, stamp), ck, cv, jnp.int32(0), jnp.int32(0))

    @jax.jit
    def steps(p, pk, pv):
        mm = m.bind({"params": p})

        def step(carry, j):
            sk, sv = carry
            x = mm.embed(s1[j][None], s2[j][None], stamp[j][None])
            ctx, sk, sv = mm.trunk(x, sk, sv, j, j - n0, prefix=(pk, pv))
            return (sk, sv), ctx[0]

        return jax.lax.scan(step, empty_kv(cfg.n_layers, t - n0, cfg.d_model, cfg.n_heads), jnp.arange(n0, t))[1]

    ctx0, pk, pv = jax.jit(prefill)(p, s1[:n0], s2[:n0], stamp[:n0])
    np.testing.assert_allclose(jnp.concatenate([ctx0, steps(p, pk, pv)]), full_ctx, atol=2e-5)
    # the tokenizer's prefix/suffix decode equals the one-shot decode (causal decoder)
    tok, tp = KronosTokenizer(bundle.tokenizer_config), bundle.tokenizer_params
    a1, a2 = jnp.asarray(unit["tok_s1"][0]), jnp.asarray(unit["tok_s2"][0])
    whole = unbatched(tok, KronosTokenizer.decode)(tp, a1, a2)

    @jax.jit
    def split(tp, a1, a2):
        t = tok.bind({"params": tp})
        return t.decode_suffix(a1[40:], a2[40:], t.decode_prefix(a1[:40], a2[:40]))

    np.testing.assert_allclose(split(tp, a1, a2), whole[40:], atol=2e-5)
