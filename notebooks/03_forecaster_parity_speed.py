# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Forecaster parity and speed
#
# 1. **Parity with the reference implementation** (toto-ts 0.2.0 under PyTorch): the committed
#    fixtures in `tests/fixtures/toto/` hold a small random Toto checkpoint in the hub layout and the
#    reference's outputs on it. We convert the checkpoint with jaxsim's converter and compare.
# 2. **Internal consistency** of the embedded model's forecasts: the backtester's one-pass next-step
#    mixture vs the autoregressive `forecast` (KV cache), and sampled vs analytic means.
# 3. **Speed**: warm forecast throughput on this machine (first calls include compilation).
#
# **Size.** As committed (`FULL = False`, what CI executes on CPUs) the timings use 32 contexts of
# 1024 returns, 3 repeats: they check that the code runs, and are no benchmark. Real throughput
# numbers need `FULL = True` (256 contexts of 2048 returns, 10 repeats) on the accelerator you care
# about; it also checks the autoregressive forecast without the KV cache (with it only, as committed).

# %%
FULL = False
BATCH = 256 if FULL else 32  # contexts per timed call
CONTEXT = 2048 if FULL else 1024  # context length (returns)
REPEATS = 10 if FULL else 3

# %%
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import forecasters
from jaxsim.models import registry
from jaxsim.models.toto.checkpoint import convert_toto_checkpoint, load_toto
from jaxsim.models.toto.forecast import forecast, mixture_mean, next_step_mixture, sample_mixture
from jaxsim.models.toto.model import toto_forward

FIXTURES = Path("..") / "tests" / "fixtures" / "toto"


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


# %% [markdown]
# ## 1. Parity with toto-ts on the committed fixtures

# %%
if (FIXTURES / "reference.npz").is_file():
    ref = dict(np.load(FIXTURES / "reference.npz"))
    folder = convert_toto_checkpoint(FIXTURES / "checkpoint", tempfile.mkdtemp(), name="small")
    config, params = load_toto(folder)
    print(config)
    forward = jax.jit(toto_forward, static_argnums=1)
    with jax.default_matmul_precision("highest"):
        for case in ("b1v1_returns", "b2v3_pad_groups"):
            k = f"backbone/{case}"
            mix, loc, scale = forward(params, config, ref[f"{k}/x"], ref[f"{k}/valid"].astype(bool), ref[f"{k}/ids"])
            errs = {
                "df": rel(mix.df, ref[f"{k}/out_df"]),
                "mixture loc": rel(mix.loc, ref[f"{k}/out_mloc"]),
                "mixture scale": rel(mix.scale, ref[f"{k}/out_mscale"]),
                "weights": rel(mix.weights, ref[f"{k}/out_weights"]),
                "scaler loc": rel(loc, ref[f"{k}/out_loc"]),
                "scaler scale": rel(scale, ref[f"{k}/out_scale"]),
            }
            print(case, {n: f"{e:.1e}" for n, e in errs.items()})
            assert max(errs.values()) < 1e-4
        x, v, ids = ref["forecast/x"], ref["forecast/valid"].astype(bool), ref["forecast/ids"]
        for kv in (True, False) if FULL else (True,):
            mean, _ = forecast(params, config, x, v, ids, 65, use_kv_cache=kv)
            print(
                f"AR mean forecast, 65 steps (patch 8: 9 decode steps), KV cache {kv}: rel. error vs "
                f"toto-ts {rel(mean, ref[f'forecast/mean_h65_kv{int(kv)}']):.1e}"
            )
else:
    print("reference fixtures not found (run from a checkout): skipping the toto-ts comparison")

# %% [markdown]
# ## 2. The embedded model: one-pass next-step mixture vs autoregressive decoding

# %%
config, params = load_toto(registry.default_weights_dir())
prices = __import__("jaxsim").sample("IBM")
r = np.asarray(prices.close[1:] / prices.close[:-1] - 1, np.float32)
ctx = np.stack([r[i : i + CONTEXT] for i in range(0, BATCH * 7, 7)])  # BATCH contexts, CONTEXT long
valid = np.ones_like(ctx, bool)
mix = jax.jit(next_step_mixture, static_argnums=1)(params, config, jnp.asarray(ctx), jnp.asarray(valid))
one_pass = np.asarray(mixture_mean(mix))
ar_mean, _ = forecast(params, config, ctx[:, None], valid[:, None], np.zeros_like(ctx[:, None], np.int32), 1)
print(
    "next-step mean vs AR forecast (KV) mean, max abs diff:",
    float(np.abs(one_pass - np.asarray(ar_mean)[:, 0, 0]).max()),
)
draws = jax.jit(sample_mixture, static_argnums=2)(jax.random.key(0), mix, 4096)
print(
    "mean of 4096 draws vs analytic mean, median |diff| / median scale:",
    float(np.median(np.abs(np.asarray(draws).mean(-1) - one_pass)) / np.median(np.asarray(mix.affine_scale))),
)

# %% [markdown]
# ## 3. Speed (warm calls, this machine)

# %%
step = jax.jit(lambda p, c, m: mixture_mean(next_step_mixture(p, config, c, m)))
c_, m_ = jnp.asarray(ctx), jnp.asarray(valid)
t0 = time.perf_counter()
step(params, c_, m_).block_until_ready()
first = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(REPEATS):
    step(params, c_, m_).block_until_ready()
warm = (time.perf_counter() - t0) / REPEATS
print(
    f"embedded model, {BATCH} contexts x {CONTEXT}: first call {first:.2f} s, warm {warm * 1e3:.1f} ms "
    f"({warm / BATCH * 1e3:.2f} ms per context) on {jax.devices()[0].platform}"
)
hist = jax.jit(forecasters.historical_mean().forecast_group)
jax.block_until_ready(hist(c_[None], m_, None))
t0 = time.perf_counter()
for _ in range(REPEATS):
    jax.block_until_ready(hist(c_[None], m_, None))
print(f"historical mean baseline, same contexts: {(time.perf_counter() - t0) / REPEATS * 1e3:.1f} ms per call")
