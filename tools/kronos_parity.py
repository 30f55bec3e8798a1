"""Kronos parity for the larger released configs (small, base; mini too), against the official code.

    PYTHONPATH=. python tools/kronos_parity.py [--models small,base]
        [--ref-venv .venv-ref-kronos] [--work /tmp/jaxsim-kronos-parity] [--json out.json]

For each model the reference venv writes seeded, perturbed random weights in the hub layout plus goldens
(tools/reference/kronos_fixtures.py: tokenizer, decode_s1/s2, sampling filter, greedy end-to-end in the
three window regimes). This script converts the weights with jaxsim's strict converter and prints the
largest deviations. CI runs the same checks on mini (tests/test_kronos*.py); this is the script for the
configs too large to commit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsim.models.kronos.checkpoint import load_kronos
from jaxsim.models.kronos.model import Kronos, KronosTokenizer, codes_to_ids
from jaxsim.models.kronos.predict import filter_logits, frame_to_features, predict, time_features

ROOT = Path(__file__).resolve().parents[1]
COLS = ("open", "high", "low", "close", "volume", "amount")


def _batched(module, method, params):
    call = lambda p, *a: module.apply({"params": p}, *a, method=method)
    return lambda *a: jax.jit(lambda p, *b: jax.vmap(lambda *c: call(p, *c))(*b))(params, *a)


def check(folder: Path, model: str) -> dict:
    tok_name = "tokenizer-2k" if model == "mini" else "tokenizer-base"
    bundle = load_kronos(folder / model, folder / tok_name)
    u = dict(np.load(folder / f"unit_{model}.npz"))
    out: dict = {"model": bundle.model_config.name, "tokenizer": bundle.tokenizer_config.name}
    tok, m = KronosTokenizer(bundle.tokenizer_config), Kronos(bundle.model_config)
    z = _batched(tok, KronosTokenizer.encode_presign, bundle.tokenizer_params)(u["tok_x"])
    s1, s2 = codes_to_ids(z, 10)
    out["tok_presign_max_abs"] = float(jnp.abs(z - u["tok_presign"]).max())
    out["tok_id_mismatches"] = int((s1 != u["tok_s1"]).sum() + (s2 != u["tok_s2"]).sum())
    dec = _batched(tok, KronosTokenizer.decode, bundle.tokenizer_params)(u["tok_s1"], u["tok_s2"])
    out["tok_decode_max_abs"] = float(jnp.abs(dec - u["tok_decode"]).max())
    logits, ctx = _batched(m, Kronos.decode_s1, bundle.model_params)(u["dec_s1"], u["dec_s2"], u["dec_stamp"])
    out["s1_logits_max_abs"] = float(jnp.abs(logits - u["dec_logits"]).max())
    out["ctx_max_abs"] = float(jnp.abs(ctx - u["dec_ctx"]).max())
    l2 = _batched(m, Kronos.decode_s2, bundle.model_params)(jnp.asarray(u["dec_ctx"]), u["dec_s1_star"])
    out["s2_logits_max_abs"] = float(jnp.abs(l2 - u["dec_s2_logits"]).max())
    errs, sets = [], True
    for row, (t, k, p) in enumerate(u["filter_params"]):
        f = jax.vmap(lambda l: jax.nn.softmax(filter_logits(l, temperature=t, top_k=int(k), top_p=p)))(
            u["filter_logits"]
        )
        errs.append(float(jnp.abs(f - u["filter_probs"][row]).max()))
        sets &= bool(((np.asarray(f) > 0) == (u["filter_probs"][row] > 0)).all())
    out["filter_probs_max_abs"], out["filter_kept_sets_equal"] = max(errs), sets
    meta = json.loads((folder / f"meta_{model}.json").read_text())
    for name, r in meta["regimes"].items():
        e = np.load(folder / f"e2e_{model}_{name}.npz")
        frames = [pd.DataFrame({c: e[f"f{j}_{c}"] for c in COLS if f"f{j}_{c}" in e}) for j in range(3)]
        x = np.stack([frame_to_features(fr) for fr in frames])
        xs = np.stack([time_features(e[f"f{j}_x_dates"].astype("datetime64[ns]")) for j in range(3)])
        ys = np.stack([time_features(e[f"f{j}_y_dates"].astype("datetime64[ns]")) for j in range(3)])
        want = np.stack([e[f"f{j}_pred"] for j in range(3)])
        mean, _ = predict(
            bundle,
            x,
            xs,
            ys,
            pred_len=want.shape[1],
            key=jax.random.PRNGKey(0),
            sample_count=2,
            temperature=1.0,
            top_k=1,
            top_p=1.0,
            max_context=r["C"],
            clip=5.0,
        )
        sd = x.std(1, keepdims=True) + 1e-5
        diff = np.abs(np.asarray(mean, np.float64) - want)
        prices = slice(0, 4)
        out[f"e2e_{name}"] = {
            "L": r["L"],
            "C": r["C"],
            "min_top2_margin": r["min_margin"],
            "max_rel_err_prices": float((diff[..., prices] / np.abs(want[..., prices])).max()),
            "max_err_normalised_units": float((diff / sd).max()),
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="small,base")
    ap.add_argument("--ref-venv", type=Path, default=Path(".venv-ref-kronos"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/jaxsim-kronos-parity"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args(argv)
    results = []
    with jax.default_matmul_precision("highest"):
        for model in args.models.split(","):
            folder = args.work / model
            if args.regenerate or not (folder / f"meta_{model}.json").is_file():
                subprocess.run(
                    [
                        str(args.ref_venv / "bin" / "python"),
                        str(ROOT / "tools/reference/kronos_fixtures.py"),
                        "--model",
                        model,
                        "--out",
                        str(folder),
                    ],
                    check=True,
                )
            res = check(folder, model)
            results.append(res)
            print(json.dumps(res, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
