r"""Training and fine-tuning Toto-architecture models with JAX and optax.

Objective (Toto's own): next-patch negative log-likelihood of the Student-T mixture. Output position
i of a full causal pass predicts input step i + P, in the original units through the scaler's affine
map (spec toto 1.1, 1.8), so one window of T steps scores T - P targets at once:

.. math::

    \mathcal{L}_{\rm NLL}(\theta) = -\frac{1}{\sum_i m_{i+P}} \sum_i m_{i+P}\,
        \log p_\theta(x_{i+P} \mid x_{\le \lfloor i/P \rfloor P + P - 1}).

Optionally (``objective="pnl"`` or ``"nll+pnl"``) the loss adds the backtest's own differentiable
P&L: one-step forecasts of the high and low returns (sub-step 0 of every token: the mixture mean)
set MaxDiff's limit levels, and the smooth profit surrogate :func:`jaxsim.sim.surrogate.soft_profit_values`
scores them on the actual high/low/close, so gradients flow from the strategy's P&L through the
forecasts into the weights. Positions follow MaxDiff's rule and are held fixed (no gradient).

The step is a jitted pure function ``(params, opt_state, batch) -> (params, opt_state, loss)``; a
thin host loop draws seeded window batches (:mod:`jaxsim.training.data`), cycles window sizes, logs,
and at the end writes a weight folder (:mod:`jaxsim.models.weights`) with ``training.json`` and a
``MODEL_CARD.md`` holding the held-out numbers of :mod:`jaxsim.training.evaluate`. Fine-tuning is the same
loop started from a converted checkpoint (``init_from``). All randomness comes from ``seed``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsim.errors import ConfigError
from jaxsim.models import weights
from jaxsim.models.toto.checkpoint import load_toto
from jaxsim.models.toto.forecast import Mixture
from jaxsim.models.toto.model import TotoConfig, count_params, init_toto, toto_forward
from jaxsim.sim.surrogate import soft_profit_values
from jaxsim.training.config import TrainConfig
from jaxsim.training.data import COLUMNS, WindowSampler, heldout_origins, load_series
from jaxsim.training.evaluate import evaluate, mixture_log_prob, score_series
from jaxsim.training.model_card import render_model_card

__all__ = [
    "init_params",
    "nll_loss",
    "pnl_objective",
    "make_optimizer",
    "make_step",
    "train",
    "reproducibility_check",
    "run",
]

log = logging.getLogger(__name__)


def init_params(config: TotoConfig, key) -> dict:
    """Random Toto parameters with a data-informed head: the df/loc/scale projections start at 1% of
    their random init, so every component starts near its bias: loc 0, scale log-spaced over
    [0.01, 0.5] in scaled units (daily returns over the scaler's min scale sqrt(0.1) are ~0.03-0.1),
    degrees of freedom near 5; mixture weights start near equal."""
    params = init_toto(config, key)
    k = config.k_components
    inv_softplus = lambda v: np.log(np.expm1(v))  # noqa: E731
    params = dict(params)
    small = lambda head, bias: dict(kernel=params[head]["kernel"] * 0.01, bias=jnp.asarray(bias, jnp.float32))  # noqa: E731
    params["scale_proj"] = small("scale_proj", inv_softplus(np.geomspace(0.01, 0.5, k)))
    params["df"] = small("df", np.full((k,), inv_softplus(3.0)))
    params["loc_proj"] = small("loc_proj", np.zeros(k))
    return params


# ----------------------------------------------------------------------------------------------
# Objectives


def _forward(params, config: TotoConfig, x, valid):
    """Causal pass over ``(B, T)`` windows -> mixture ``(B, T, K)`` with affine ``(B, T)``."""
    mix, loc, scale = toto_forward(
        params, config, x[:, None, :], valid[:, None, :], jnp.zeros((x.shape[0], 1, x.shape[1]), jnp.int32)
    )
    return Mixture(mix.df[:, 0], mix.loc[:, 0], mix.scale[:, 0], mix.weights[:, 0], loc[:, 0], scale[:, 0])


def nll_loss(params, config: TotoConfig, x, valid):
    """Mean next-patch NLL (nats per return) of ``(B, T)`` windows; positions whose target is padded
    are excluded."""
    p = config.patch_size
    mix = _forward(params, config, x, valid)
    mix = jax.tree.map(lambda a: a[:, :-p], mix)
    w = valid[:, p:].astype(jnp.float32)
    lp = mixture_log_prob(mix, x[:, p:])
    return -jnp.sum(jnp.where(w > 0, lp, 0.0)) / jnp.maximum(w.sum(), 1.0)


def pnl_objective(params, config: TotoConfig, x, valid, extras, temperature):
    """Mean smooth MaxDiff P&L per day (fraction of the previous close) of one-step forecasts.

    ``x``: ``(2B, T)``, high returns then low returns of the same windows; ``extras``: ``close``,
    ``high``, ``low``, ``k_high``, ``k_low`` each ``(B, T)``. Token n's sub-step 0 forecasts step
    (n+1)P, the step right after its patch, as the backtester's one-step forecast does.
    """
    p = config.patch_size
    b2, t = x.shape
    b = b2 // 2
    mix = _forward(params, config, x, valid)
    pos = jnp.arange(0, t - p, p)  # output positions n*P, n = 0..N-2
    mix = jax.tree.map(lambda a: a[:, pos], mix)
    mean = jnp.sum(mix.weights * mix.loc, -1) * mix.affine_scale + mix.affine_loc  # (2B, N-1)
    day = pos + p
    f_high, f_low = mean[:b], mean[b:]
    kh, kl = extras["k_high"][:, day], extras["k_low"][:, day]
    c = extras["close"][:, day]
    h, l = extras["high"][:, day] + kh, extras["low"][:, day] - kl
    hp, lp = f_high + kh, f_low - kl
    q = jax.lax.stop_gradient(jnp.where(lp < hp, jnp.where(jnp.abs(hp) > jnp.abs(lp), 1.0, -1.0), 0.0))
    m = valid[:b, day].astype(jnp.float32)
    pf = soft_profit_values(c, h, hp, l, lp, q, temperature=temperature)
    return jnp.sum(pf * m) / jnp.maximum(m.sum(), 1.0)


def make_optimizer(tc: TrainConfig) -> optax.GradientTransformation:
    """AdamW, linear warmup then cosine decay to 10% of the peak, global-norm clipping."""
    sched = optax.warmup_cosine_decay_schedule(
        0.0, tc.learning_rate, max(tc.warmup_steps, 1), max(tc.steps, tc.warmup_steps + 1), tc.learning_rate * 0.1
    )
    return optax.chain(optax.clip_by_global_norm(tc.clip_norm), optax.adamw(sched, weight_decay=tc.weight_decay))


def make_step(config: TotoConfig, tc: TrainConfig, optimizer: optax.GradientTransformation) -> Callable:
    """The jitted training step ``(params, opt_state, x, valid, extras) -> (params, opt_state, loss, aux)``."""

    def loss_fn(params, x, valid, extras):
        if tc.objective == "nll":
            nll = nll_loss(params, config, x, valid)
            return nll, (nll, jnp.float32(0.0))
        pnl = pnl_objective(params, config, x, valid, extras, tc.pnl_temperature)
        if tc.objective == "pnl":
            return -pnl, (jnp.float32(0.0), pnl)
        nll = nll_loss(params, config, x, valid)
        return nll - tc.pnl_weight * pnl, (nll, pnl)

    @jax.jit
    def step(params, opt_state, x, valid, extras):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, valid, extras)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes its int32 step count with floats
            updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, aux

    return step


# ----------------------------------------------------------------------------------------------
# Host loop


def train(tc: TrainConfig, *, series=None, params=None, progress: Callable[[str], None] | None = None):
    """Run ``tc.steps`` optimisation steps.

    Args:
      tc: the run's configuration.
      series: preloaded :class:`jaxsim.training.data.StockSeries` (default: the bundled samples of ``tc``).
      params: starting parameters (default: ``init_from`` if set, else :func:`init_params`).
      progress: optional callable receiving one log line every ``log_every`` steps.

    Returns:
      ``(config, params, history)`` with history a list of dicts (step, loss, nll, pnl, seconds).
    """
    config = tc.model
    if tc.init_from is not None and params is None:
        config, params = load_toto(tc.init_from)
    if params is None:
        params = init_params(config, jax.random.key(tc.seed))
    if series is None:
        series = load_series(tc.symbols, tc.holdout_start, adjusted=tc.adjusted)
    sampler = WindowSampler(series, config.patch_size, [COLUMNS.index(c) for c in tc.columns], tc.seed)
    optimizer = make_optimizer(tc)
    opt_state = optimizer.init(params)
    step = make_step(config, tc, optimizer)
    history, window = [], []
    t0 = time.perf_counter()
    for i in range(tc.steps):
        n = tc.window_patches[i % len(tc.window_patches)]
        bsz = max(1, tc.tokens_per_batch // n)
        if tc.objective == "nll":
            batch = sampler.nll_batch(bsz, n)
            extras = {}
        else:
            batch = sampler.pnl_batch(bsz, n)
            extras = {k: jnp.asarray(v) for k, v in batch.extras.items()}
        params, opt_state, loss, aux = step(params, opt_state, jnp.asarray(batch.x), jnp.asarray(batch.valid), extras)
        window.append((float(loss), float(aux[0]), float(aux[1])))
        if (i + 1) % tc.log_every == 0 or i + 1 == tc.steps:
            arr = np.asarray(window)
            rec = dict(
                step=i + 1,
                loss=float(arr[:, 0].mean()),
                nll=float(arr[:, 1].mean()),
                pnl=float(arr[:, 2].mean()),
                seconds=round(time.perf_counter() - t0, 1),
            )
            history.append(rec)
            window = []
            line = (
                f"step {rec['step']:5d}  loss {rec['loss']:.4f}  nll {rec['nll']:.4f}  pnl {rec['pnl']:.5f}"
                f"  {rec['seconds']:.0f}s"
            )
            log.info(line)
            if progress is not None:
                progress(line)
            if not math.isfinite(rec["loss"]):
                raise ConfigError(f"training diverged at step {i + 1} (loss {rec['loss']})")
    return config, params, history


def reproducibility_check(params, config: TotoConfig, series, tc: TrainConfig) -> dict:
    """Per-origin forecasts of one small slice of the held-out set, for tests to recompute cheaply:
    the first padded-length group of the first series' last column (one compile to re-check)."""
    s, column = series[0], tc.columns[-1]
    length, js = next(iter(heldout_origins(s, config.patch_size).items()))
    sc = score_series(params, config, s, (column,), tc.eval_chunk)[column]
    keep = np.isin(sc["j"], js)
    return dict(
        symbol=s.symbol,
        column=column,
        padded_length=length,
        j=[int(j) for j in sc["j"][keep]],
        mean=[float(v) for v in sc["mean"][keep]],
        nll=[float(v) for v in sc["nll"][keep]],
        mae=float(np.mean(sc["ae"][keep])),
    )


def run(tc: TrainConfig, out_dir, *, name: str = "jaxsim-toto-tiny", preset: str = "default", progress=None) -> dict:
    """Train, evaluate on the held-out dates, and write ``out_dir`` (weights, training.json, MODEL_CARD.md).

    Returns:
      The ``training.json`` record.
    """
    t0 = time.perf_counter()
    series = load_series(tc.symbols, tc.holdout_start, adjusted=tc.adjusted)
    config, params, history = train(tc, series=series, progress=progress)
    train_seconds = time.perf_counter() - t0
    if progress:
        progress("evaluating on the held-out dates ...")
    metrics = evaluate(params, config, series, tc.columns, tc.eval_chunk)
    check = reproducibility_check(params, config, series, tc)
    record = dict(
        name=name,
        preset=preset,
        train_config=tc.to_json(),
        model_config=dataclasses.asdict(config),
        parameters=count_params(params),
        history=history,
        train_seconds=round(train_seconds, 1),
        eval_seconds=round(time.perf_counter() - t0 - train_seconds, 1),
        data=dict(
            source="Quandl WIKI prices (public domain) as bundled in jaxsim/data/sample_data",
            symbols=list(tc.symbols),
            columns=list(tc.columns),
            adjusted=tc.adjusted,
            series={
                s.symbol: dict(
                    first_return=str(s.dates[0]),
                    last_train=str(s.dates[s.train_end - 1]),
                    first_heldout=str(s.dates[s.train_end]),
                    last_heldout=str(s.dates[-1]),
                    train_returns=int(s.train_end),
                    heldout_returns=int(len(s.dates) - s.train_end),
                )
                for s in series
            },
        ),
        heldout=metrics,
        check=check,
        jax_version=jax.__version__,
        backend=jax.default_backend(),
    )
    out = Path(out_dir)
    weights.save(
        out,
        model="toto",
        config=dataclasses.asdict(config),
        params=jax.device_get(params),
        meta=dict(source="trained by jaxsim (jaxsim train)", name=name),
    )
    (out / "training.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    (out / "MODEL_CARD.md").write_text(render_model_card(record))
    return record
