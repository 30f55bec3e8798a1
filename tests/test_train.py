"""Training loop, its data windows, the mixture NLL, the P&L objective, fine-tuning from a converted
checkpoint, and the committed embedded model against its model card."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from toto_helpers import FIXTURES

from jaxsim.errors import ConfigError
from jaxsim.models import registry
from jaxsim.models.toto.checkpoint import convert_toto_checkpoint, load_toto
from jaxsim.models.toto.forecast import Mixture, mixture_mean, next_step_mixture
from jaxsim.models.toto.model import TOTO_SMALL
from jaxsim.training import loop as train
from jaxsim.training.config import PRESETS
from jaxsim.training.data import COLUMNS, WindowSampler, fractional_changes, heldout_origins, load_series
from jaxsim.training.evaluate import mixture_log_prob

pytestmark = pytest.mark.strict_promotion(rank=False)  # Flax-style (D,) scales broadcast over (..., D)

TINY = PRESETS["tiny"]


def scipy_mixture_logpdf(mix: Mixture, x):
    """Reference log-density with scipy.stats.t (float64): log sum_k w_k t.pdf(x; df_k, a + s mu_k, s sigma_k)."""
    m = jax.tree.map(lambda a: np.asarray(a, np.float64), mix)
    x = np.asarray(x, np.float64)[..., None]
    dens = m.weights * stats.t.pdf(
        x,
        df=m.df,
        loc=m.affine_loc[..., None] + m.affine_scale[..., None] * m.loc,
        scale=m.affine_scale[..., None] * m.scale,
    )
    return np.log(dens.sum(-1))


def test_mixture_log_prob_matches_scipy_student_t_mixture():
    rng = np.random.default_rng(0)
    n, k = 7, 3
    mix = Mixture(
        df=jnp.asarray(2.0 + rng.gamma(2.0, 2.0, (n, k)), jnp.float32),
        loc=jnp.asarray(rng.normal(0, 0.5, (n, k)), jnp.float32),
        scale=jnp.asarray(rng.uniform(0.05, 1.0, (n, k)), jnp.float32),
        weights=jnp.asarray(rng.dirichlet(np.ones(k), n), jnp.float32),
        affine_loc=jnp.asarray(rng.normal(0, 0.01, n), jnp.float32),
        affine_scale=jnp.asarray(rng.uniform(0.3, 0.5, n), jnp.float32),
    )
    x = jnp.asarray(rng.normal(0, 0.5, n), jnp.float32)
    got = np.asarray(mixture_log_prob(mix, x))
    np.testing.assert_allclose(got, scipy_mixture_logpdf(mix, np.asarray(x)), rtol=2e-5, atol=2e-5)


def test_nll_loss_is_the_mean_mixture_log_density_of_next_patch_targets():
    config = TINY.model
    params = train.init_params(config, jax.random.key(1))
    series = load_series(("IBM",), "2011-03-01")
    batch = WindowSampler(series, config.patch_size, [3], seed=0).nll_batch(2, 3)
    both = jax.jit(lambda p, x, v: (train.nll_loss(p, config, x, v), train._forward(p, config, x, v)))
    loss, mix = both(params, jnp.asarray(batch.x), jnp.asarray(batch.valid))
    loss = float(loss)
    p = config.patch_size
    terms = []
    for b in range(2):
        sl = jax.tree.map(lambda a: np.asarray(a[b, :-p]), mix)
        ok = batch.valid[b, p:]
        lp = scipy_mixture_logpdf(jax.tree.map(lambda a: a[ok], sl), batch.x[b, p:][ok])
        terms.append(lp)
    np.testing.assert_allclose(loss, -np.concatenate(terms).mean(), rtol=1e-5)


def test_fractional_changes_and_split_by_date():
    np.testing.assert_allclose(fractional_changes(np.array([100.0, 101.0, 0.0, 5.0])), [0.01, -1.0, 0.0], rtol=1e-6)
    (ibm,) = load_series(("IBM",), "2011-03-01")
    assert ibm.returns.shape == (4, len(ibm.dates))
    assert str(ibm.dates[ibm.train_end - 1]) < "2011-03-01" <= str(ibm.dates[ibm.train_end])
    groups = heldout_origins(ibm, 64)
    js = np.concatenate(list(groups.values()))
    assert js.min() == ibm.train_end and js.max() == len(ibm.dates) - 1 and len(js) == len(set(js))
    assert all(length - 64 < js_.min() and js_.max() <= length for length, js_ in groups.items())


def test_window_sampler_is_seeded_and_uses_training_rows_only():
    series = load_series(("IBM", "GOOG"), "2011-03-01")
    a = WindowSampler(series, 64, [0, 3], seed=5).nll_batch(6, 8)
    b = WindowSampler(series, 64, [0, 3], seed=5).nll_batch(6, 8)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.valid, b.valid)
    assert a.x.shape == (6, 512) and (a.valid.sum(1) > 512 - 64).all()
    heldout = set(np.round(np.concatenate([s.returns[:, s.train_end :].ravel() for s in series]), 7))
    train_vals = set(np.round(np.concatenate([s.returns[:, : s.train_end].ravel() for s in series]), 7))
    window_vals = set(np.round(a.x[a.valid], 7))
    assert window_vals <= train_vals and not (window_vals - train_vals) & heldout


def test_tiny_training_run_reduces_the_loss():
    config, params, history = train.train(TINY)
    assert [h["step"] for h in history] == [10, 20, 30]
    assert history[-1]["nll"] < history[0]["nll"] - 0.2
    assert all(np.isfinite(jax.tree.leaves(jax.tree.map(lambda a: np.asarray(a).sum(), params))))


def test_fine_tuning_starts_from_converted_weights(tmp_path):
    folder = convert_toto_checkpoint(FIXTURES / "checkpoint", tmp_path, name="small")
    config, start = load_toto(folder)
    assert config == TOTO_SMALL
    tc = dataclasses.replace(TINY, init_from=str(folder), steps=2, log_every=1, window_patches=(16,))
    cfg, params, history = train.train(tc)
    assert cfg == TOTO_SMALL
    # the first step's loss is the converted model's loss on the first seeded batch
    series = load_series(tc.symbols, tc.holdout_start)
    batch = WindowSampler(series, cfg.patch_size, [COLUMNS.index("close")], tc.seed).nll_batch(1, 16)
    first = float(jax.jit(train.nll_loss, static_argnums=1)(start, cfg, jnp.asarray(batch.x), jnp.asarray(batch.valid)))
    np.testing.assert_allclose(history[0]["loss"], first, rtol=1e-5)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), params, start))
    assert max(moved) > 0


def test_pnl_objective_trains_through_the_strategy():
    """objective="pnl": the loss is minus the smooth MaxDiff P&L of one-step forecasts, and its
    gradient alone moves the weights (through the limit levels into the mixture head and backbone)."""
    tc = dataclasses.replace(TINY, objective="pnl", steps=2, log_every=1, window_patches=(4,))
    start = train.init_params(tc.model, jax.random.key(tc.seed))
    config, params, history = train.train(tc)
    for h in history:
        assert np.isfinite(h["pnl"]) and 0 < abs(h["pnl"]) < 0.05  # fractions of the close per day
        np.testing.assert_allclose(h["loss"], -h["pnl"], rtol=1e-6)
    moved = {k: float(jnp.abs(params[k]["kernel"] - start[k]["kernel"]).max()) for k in ("loc_proj", "patch_embed")}
    assert min(moved.values()) > 0, moved


def test_pnl_objective_and_train_config_validation():
    with pytest.raises(ConfigError):
        train.TrainConfig(objective="sharpe")
    with pytest.raises(ConfigError):
        train.TrainConfig(columns=("volume",))
    from jaxsim.cli.weights import PRESET_NAMES

    assert set(PRESET_NAMES) == set(PRESETS)


@pytest.fixture(scope="module")
def embedded():
    folder = registry.default_weights_dir()
    return folder, json.loads((folder / "training.json").read_text())


def test_embedded_model_loads_and_is_small(embedded):
    folder, rec = embedded
    config, params = load_toto(folder)
    assert config.patch_size == 64 and config.k_components == rec["model_config"]["k_components"]
    size = (folder / "params.safetensors").stat().st_size
    assert size < 4_000_000 and rec["parameters"] * 4 <= size
    assert registry.verify(folder).ok
    card = (folder / "MODEL_CARD.md").read_text()
    assert "Not Datadog's Toto" in card and "Not investment advice" in card
    assert f"{rec['heldout']['overall']['nll']:.4f}" in card


def test_embedded_model_reproduces_the_model_card_forecasts(embedded):
    """Re-forecast the recorded held-out slice through the backtester's forecaster path."""
    folder, rec = embedded
    config, params = load_toto(folder)
    chk = rec["check"]
    (s,) = load_series((chk["symbol"],), rec["train_config"]["holdout_start"], adjusted=rec["train_config"]["adjusted"])
    x = s.returns[COLUMNS.index(chk["column"])]
    length = chk["padded_length"]
    js = np.asarray(chk["j"])
    ctx = np.zeros((len(js), length), np.float32)
    valid = np.zeros((len(js), length), bool)
    for i, j in enumerate(js):
        ctx[i, length - j :], valid[i, length - j :] = x[:j], True

    @jax.jit
    def forecast(params, ctx, valid, target):  # the backtester's path: one pass, last token, sub-step 0
        mix = next_step_mixture(params, config, ctx, valid)
        return mixture_mean(mix), -mixture_log_prob(mix, target)

    mean, nll = (np.asarray(a) for a in forecast(params, jnp.asarray(ctx), jnp.asarray(valid), jnp.asarray(x[js])))
    np.testing.assert_allclose(mean, chk["mean"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(nll, chk["nll"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.mean(np.abs(mean - x[js])), chk["mae"], rtol=1e-5)
    # the card's baselines on this slice come from the same contexts
    assert len(js) > 10 and rec["heldout"]["overall"]["n"] > 7000
