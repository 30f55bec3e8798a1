"""Held-out evaluation of a Toto-architecture model: one-step NLL and MAE against two baselines.

For every held-out return ``r_X[j]`` of every (symbol, column) series the model sees the context
``r_X[..j-1]`` (the whole history, left-padded to a multiple of P exactly as the backtester's
forecaster pads it, :func:`jaxsim.models.toto.forecast.next_step_mixture`) and is scored by

* NLL: ``-log p(r_X[j])`` under its next-step Student-T mixture (nats per return),
* MAE: ``|E[X] - r_X[j]|`` with E[X] the mixture mean (the forecaster's mean mode; the backtester
  aggregates draws of the same distribution, e.g. a trimmed mean),

next to two baselines computed from the same contexts by the same code: the zero return (MAE) and
the context's historical mean (MAE), plus a Gaussian with the context's mean and standard deviation
(NLL). Contexts of one padded length are forecast in fixed-size chunks, so each length compiles once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.models.toto.forecast import Mixture, mixture_mean, next_step_mixture
from jaxsim.models.toto.model import TotoConfig
from jaxsim.training.data import COLUMNS, StockSeries, heldout_origins

__all__ = ["mixture_log_prob", "score_series", "summarize", "evaluate"]


def mixture_log_prob(mixture: Mixture, x):
    r"""Log-density of X = a + s Y with Y ~ sum_k w_k StudentT(nu_k, mu_k, sigma_k).

    .. math::

        \log p(x) = \log \sum_k w_k\, t_{\nu_k}\!\Big(\frac{y - \mu_k}{\sigma_k}\Big) / \sigma_k - \log s,
        \qquad y = (x - a)/s,

        \log t_\nu(z) = \log\Gamma(\tfrac{\nu+1}{2}) - \log\Gamma(\tfrac{\nu}{2}) - \tfrac12\log(\nu\pi)
            - \tfrac{\nu+1}{2}\log(1 + z^2/\nu).

    Args:
      mixture: components ``(..., K)`` and affine loc/scale ``(...)``.
      x: values ``(...)`` in the original (unscaled) units.

    Returns:
      ``(...)`` float32 log-densities.
    """
    y = (x - mixture.affine_loc) / mixture.affine_scale
    nu, mu, sig = mixture.df, mixture.loc, mixture.scale
    z = (y[..., None] - mu) / sig
    log_t = (
        jax.scipy.special.gammaln((nu + 1.0) / 2.0)
        - jax.scipy.special.gammaln(nu / 2.0)
        - 0.5 * jnp.log(nu * math.pi)
        - jnp.log(sig)
        - (nu + 1.0) / 2.0 * jnp.log1p(z * z / nu)
    )
    log_w = jnp.log(jnp.maximum(mixture.weights, jnp.finfo(jnp.float32).tiny))
    return jax.nn.logsumexp(log_w + log_t, axis=-1) - jnp.log(mixture.affine_scale)


@partial(jax.jit, static_argnames=("config",))
def _score_chunk(params, config: TotoConfig, context, valid, target):
    """Per-context model NLL/abs-error and baseline abs-errors/NLL for ``(n, L)`` contexts."""
    mix = next_step_mixture(params, config, context, valid)
    nll = -mixture_log_prob(mix, target)
    mean = mixture_mean(mix)
    count = jnp.maximum(valid.sum(-1), 1).astype(jnp.float32)
    hist = jnp.where(valid, context, 0.0).sum(-1) / count
    var = jnp.where(valid, jnp.square(context - hist[:, None]), 0.0).sum(-1) / count
    std = jnp.sqrt(jnp.maximum(var, 1e-12))
    gauss_nll = 0.5 * jnp.square((target - hist) / std) + jnp.log(std) + 0.5 * math.log(2 * math.pi)
    return dict(
        nll=nll,
        ae=jnp.abs(mean - target),
        ae_zero=jnp.abs(target),
        ae_hist=jnp.abs(hist - target),
        nll_gauss=gauss_nll,
        mean=mean,
    )


def score_series(
    params, config: TotoConfig, series: StockSeries, columns: Sequence[str] = COLUMNS, chunk: int = 256
) -> dict[str, dict[str, np.ndarray]]:
    """Per-origin scores of every held-out return of ``series`` for each of ``columns``.

    Returns:
      ``{column: {"j": (n,), "nll", "ae", "ae_zero", "ae_hist", "nll_gauss", "mean": (n,)}}`` in origin order.
    """
    p = config.patch_size
    rows = [COLUMNS.index(c) for c in columns]
    parts: dict[str, list] = {c: [] for c in columns}
    for length, js in heldout_origins(series, p).items():
        ctx, val, tgt, who = [], [], [], []
        for c, r in zip(columns, rows):
            x = series.returns[r]
            for j in js:
                row = np.zeros(length, np.float32)
                row[length - j :] = x[:j]
                v = np.zeros(length, bool)
                v[length - j :] = True
                ctx.append(row), val.append(v), tgt.append(x[j]), who.append((c, j))
        ctx, val, tgt = np.stack(ctx), np.stack(val), np.asarray(tgt, np.float32)
        n = len(tgt)
        outs = []
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            pad = chunk - (e - s)  # fixed chunk shape: one compile per padded length
            c_ = np.pad(ctx[s:e], ((0, pad), (0, 0)))
            v_ = np.pad(val[s:e], ((0, pad), (0, 0)))
            t_ = np.pad(tgt[s:e], (0, pad))
            out = jax.device_get(_score_chunk(params, config, c_, v_, t_))
            outs.append({k: a[: e - s] for k, a in out.items()})
        merged = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        for i, (c, j) in enumerate(who):
            parts[c].append((j, {k: merged[k][i] for k in merged}))
    result = {}
    for c in columns:
        items = sorted(parts[c], key=lambda t: t[0])
        result[c] = {"j": np.asarray([j for j, _ in items])}
        for k in items[0][1]:
            result[c][k] = np.asarray([d[k] for _, d in items], np.float64)
    return result


def summarize(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Means of one or more concatenated score dicts: n, nll, mae, mae_zero, mae_hist, nll_gauss."""
    return dict(
        n=int(len(scores["nll"])),
        nll=float(np.mean(scores["nll"])),
        mae=float(np.mean(scores["ae"])),
        mae_zero=float(np.mean(scores["ae_zero"])),
        mae_hist=float(np.mean(scores["ae_hist"])),
        nll_gauss=float(np.mean(scores["nll_gauss"])),
    )


def evaluate(
    params, config: TotoConfig, series: Sequence[StockSeries], columns: Sequence[str] = COLUMNS, chunk: int = 256
) -> dict:
    """Held-out scores of a model over several stocks.

    Returns:
      ``{"overall": summary, "by_column": {col: summary}, "by_series": {"SYM/col": summary}}`` with
      summaries from :func:`summarize` (means over held-out returns, equal weight per return).
    """
    per = {}
    for s in series:
        for c, sc in score_series(params, config, s, columns, chunk).items():
            per[f"{s.symbol}/{c}"] = sc

    def cat(keys):
        return {k: np.concatenate([per[n][k] for n in keys]) for k in ("nll", "ae", "ae_zero", "ae_hist", "nll_gauss")}

    return dict(
        overall=summarize(cat(list(per))),
        by_column={c: summarize(cat([n for n in per if n.endswith("/" + c)])) for c in columns},
        by_series={n: summarize(cat([n])) for n in per},
    )
