"""Generate Kronos parity fixtures with the official PyTorch code (run inside the reference venv).

    .venv-ref-kronos/bin/python tools/reference/kronos_fixtures.py \
        --model mini --out tests/fixtures/kronos [--seed 0]

Builds a randomly initialised tokenizer and predictor of a released config (docs/models.md#kronos-parity-plan), perturbs
every floating parameter by 0.02 N(0, 1) so unit norms and zero biases become informative, saves both in the
hub layout (``save_pretrained``: config.json + model.safetensors), and writes goldens computed by the
reference (``kronos_finance._vendor.kronos_model``, HEAD's code):

* ``unit.npz``: tokenizer pre-sign values / ids / decode, ``decode_s1`` logits and ctx, ``decode_s2``
  last-row logits for a fixed s1*, filtered sampling probabilities for several (T, top_k, top_p);
* ``e2e_<regime>.npz``: greedy (T=1, top_k=1, top_p=1) ``predict_batch`` means for three frames (full,
  without volume/amount, without amount), S=2, in the regimes no-slide, L = C and L > C; the smallest
  top-2 logit margin over all greedy draws is recorded, and the data seed is bumped until it is
  >= 1e-3 so that greedy parity cannot hinge on a near tie;
* ``meta.json``: configs, seeds, margins, versions.

Only this script touches the reference package; jaxsim never imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import kronos_finance._vendor.kronos_model.kronos as kk
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from kronos_finance._vendor.kronos_model import Kronos, KronosPredictor, KronosTokenizer

TOKENIZER = dict(
    d_in=6,
    d_model=256,
    n_heads=4,
    ff_dim=512,
    n_enc_layers=4,
    n_dec_layers=4,
    ffn_dropout_p=0.0,
    attn_dropout_p=0.0,
    resid_dropout_p=0.0,
    s1_bits=10,
    s2_bits=10,
    beta=0.05,
    gamma0=1.0,
    gamma=1.1,
    zeta=0.05,
)
MODELS = {
    "mini": (
        dict(
            s1_bits=10,
            s2_bits=10,
            n_layers=4,
            d_model=256,
            n_heads=4,
            ff_dim=512,
            ffn_dropout_p=0.2,
            attn_dropout_p=0.0,
            resid_dropout_p=0.2,
            token_dropout_p=0.0,
            learn_te=True,
        ),
        5,
    ),
    "small": (
        dict(
            s1_bits=10,
            s2_bits=10,
            n_layers=8,
            d_model=512,
            n_heads=8,
            ff_dim=1024,
            ffn_dropout_p=0.25,
            attn_dropout_p=0.1,
            resid_dropout_p=0.25,
            token_dropout_p=0.1,
            learn_te=True,
        ),
        4,
    ),
    "base": (
        dict(
            s1_bits=10,
            s2_bits=10,
            n_layers=12,
            d_model=832,
            n_heads=16,
            ff_dim=2048,
            ffn_dropout_p=0.2,
            attn_dropout_p=0.0,
            resid_dropout_p=0.2,
            token_dropout_p=0.0,
            learn_te=True,
        ),
        4,
    ),
}
# (regime, L, C): no slide (L + P <= C), the backtester's L = C, and L > C.
REGIMES = {"noslide": (40, 64), "equal": (48, 48), "long": (72, 48)}
PRED_LEN = 6
FILTERS = [
    (1.0, 0, 0.9),
    (0.5, 0, 0.8),
    (0.15, 0, 0.83),
    (1.0, 20, 0.8),
    (0.3, 5, 1.0),
    (1.0, 1, 1.0),
    (2.0, 0, 0.5),
    (1.0, 0, 1.0),
]
MARGIN_MIN = 1e-3


def perturb(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))


def build(model_name: str, seed: int):
    cfg, group = MODELS[model_name]
    torch.manual_seed(seed)
    tok = KronosTokenizer(**TOKENIZER, group_size=group).eval()
    model = Kronos(**cfg).eval()
    perturb(tok, seed + 1)
    perturb(model, seed + 2)
    return tok, model


def make_frame(rng: np.random.Generator, n: int, freq: str, start: str) -> tuple[pd.DataFrame, pd.Series]:
    close = 50 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))
    open_ = close * np.exp(0.01 * rng.standard_normal(n))
    high = np.maximum(open_, close) * (1 + 0.01 * rng.random(n))
    low = np.minimum(open_, close) * (1 - 0.01 * rng.random(n))
    volume = rng.lognormal(12, 0.5, n)
    amount = volume * close * (1 + 0.05 * rng.standard_normal(n))
    df = pd.DataFrame(dict(open=open_, high=high, low=low, close=close, volume=volume, amount=amount))
    dates = pd.Series(pd.date_range(start, periods=n, freq=freq))
    return df, dates


class MarginRecorder:
    """Wraps the reference's sample_from_logits to record the top-2 margin of every greedy draw."""

    def __init__(self):
        self.margins: list[float] = []
        self.orig = kk.sample_from_logits

    def __call__(self, logits, *args, **kwargs):
        top2 = torch.topk(logits, 2, dim=-1).values
        self.margins.append(float((top2[:, 0] - top2[:, 1]).min()))
        return self.orig(logits, *args, **kwargs)


def e2e(predictor: KronosPredictor, L: int, C: int, data_seed: int, freq: str):
    rng = np.random.default_rng(data_seed)
    frames, xs, ys = [], [], []
    for j in range(3):
        df, dates = make_frame(rng, L + PRED_LEN, freq, f"2024-0{j + 1}-0{j + 2} 04:00")
        if j == 1:
            df = df.drop(columns=["volume", "amount"])
        if j == 2:
            df = df.drop(columns=["amount"])
        frames.append(df.iloc[:L].reset_index(drop=True))
        xs.append(dates.iloc[:L].reset_index(drop=True))
        ys.append(dates.iloc[L:].reset_index(drop=True))
    predictor.max_context = C
    rec = MarginRecorder()
    kk.sample_from_logits = rec
    try:
        outs = predictor.predict_batch(
            frames, xs, ys, pred_len=PRED_LEN, T=1.0, top_k=1, top_p=1.0, sample_count=2, verbose=False
        )
        single = predictor.predict(
            frames[2], xs[2], ys[2], pred_len=PRED_LEN, T=1.0, top_k=1, top_p=1.0, sample_count=2, verbose=False
        )
    finally:
        kk.sample_from_logits = rec.orig
    data = {}
    for j, df in enumerate(frames):
        for c in df.columns:
            data[f"f{j}_{c}"] = df[c].to_numpy(np.float64)
        data[f"f{j}_x_dates"] = xs[j].to_numpy().astype("datetime64[ns]").astype(np.int64)
        data[f"f{j}_y_dates"] = ys[j].to_numpy().astype("datetime64[ns]").astype(np.int64)
        data[f"f{j}_pred"] = outs[j].to_numpy(np.float64)
    data["single_pred"] = single.to_numpy(np.float64)
    return data, min(rec.margins)


def unit_goldens(tok, model, seed: int) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed + 100)
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        x = torch.clamp(torch.randn(2, 48, 6, generator=g) * 1.5, -5, 5)
        z = tok.embed(x)
        for layer in tok.encoder:
            z = layer(z)
        z = tok.quant_embed(z)
        s1, s2 = tok.encode(x, half=True)
        out.update(
            tok_x=x.numpy(),
            tok_presign=z.numpy(),
            tok_s1=s1.numpy(),
            tok_s2=s2.numpy(),
            tok_decode=tok.decode([s1, s2], half=True).numpy(),
        )
        rs1 = torch.randint(0, 1024, (2, 40), generator=g)
        rs2 = torch.randint(0, 1024, (2, 40), generator=g)
        stamp = torch.stack([torch.randint(0, n, (2, 40), generator=g) for n in (60, 24, 7, 32, 13)], -1)
        stamp[..., 3] = stamp[..., 3].clamp(min=1)
        stamp[..., 4] = stamp[..., 4].clamp(min=1)
        stamp = stamp.float()
        logits, ctx = model.decode_s1(rs1, rs2, stamp)
        s1_star = torch.randint(0, 1024, (2, 1), generator=g)
        l2 = model.decode_s2(ctx, s1_star)[:, -1]
        out.update(
            dec_s1=rs1.numpy(),
            dec_s2=rs2.numpy(),
            dec_stamp=stamp.numpy(),
            dec_logits=logits.numpy(),
            dec_ctx=ctx.numpy(),
            dec_s1_star=s1_star[:, 0].numpy(),
            dec_s2_logits=l2.numpy(),
        )
        # sampling filter goldens on realistic logits (the model's last-row s1 logits, rescaled)
        base = logits[:, -1].clone()
        fl = torch.cat([base, base * 3.0, torch.randn(2, 1024, generator=g) * 2.0], 0)
        fl[4, :7] = fl[4].max()  # exact ties at the top, for top-k tie handling
        probs = []
        for T, k, p in FILTERS:
            ell = fl / T
            if k > 0 or p < 1.0:
                ell = kk.top_k_top_p_filtering(ell.clone(), top_k=k, top_p=p)
            probs.append(F.softmax(ell, dim=-1).numpy())
        out.update(filter_logits=fl.numpy(), filter_params=np.array(FILTERS, np.float64), filter_probs=np.stack(probs))
    return out


def build_and_save(name: str, seed: int, out: Path):
    """Build the seeded, perturbed tokenizer + model pair and save both in hub layout under ``out``."""
    tok, model = build(name, seed)
    tok_name = "tokenizer-2k" if name == "mini" else "tokenizer-base"
    tok.save_pretrained(out / tok_name)
    model.save_pretrained(out / name)
    return tok, model, tok_name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="mini")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regimes", default=",".join(REGIMES))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    tok, model, tok_name = build_and_save(args.model, args.seed, out)
    np.savez_compressed(out / f"unit_{args.model}.npz", **unit_goldens(tok, model, args.seed))
    predictor = KronosPredictor(model, tok, device="cpu", max_context=512, clip=5)
    meta = {
        "model": args.model,
        "tokenizer": tok_name,
        "seed": args.seed,
        "pred_len": PRED_LEN,
        "sample_count": 2,
        "clip": 5,
        "torch": torch.__version__,
        "regimes": {},
    }
    for name in args.regimes.split(","):
        L, C = REGIMES[name]
        freq = "37min" if name == "noslide" else "D"
        data_seed = 1000 * args.seed + sum(map(ord, name))
        for _ in range(50):
            data, margin = e2e(predictor, L, C, data_seed, freq)
            if margin >= MARGIN_MIN:
                break
            data_seed += 1
        else:
            raise SystemExit(f"{name}: no data seed with greedy margins >= {MARGIN_MIN}")
        np.savez_compressed(out / f"e2e_{args.model}_{name}.npz", **data)
        meta["regimes"][name] = {"L": L, "C": C, "data_seed": data_seed, "freq": freq, "min_margin": margin}
        print(f"{name}: L={L} C={C} seed={data_seed} min top-2 margin {margin:.4g}", file=sys.stderr)
    (out / f"meta_{args.model}.json").write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
