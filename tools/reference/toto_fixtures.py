"""Generate Toto parity fixtures with the official toto-ts code (run INSIDE the reference venv).

    .venv-ref-toto/bin/python tools/reference/toto_fixtures.py --config small \
        --out tests/fixtures/toto
    .venv-ref-toto/bin/python tools/reference/toto_fixtures.py --config base --out /tmp/toto_base

A seeded, randomly initialised model (every parameter perturbed, so no bias is zero and no norm scale
is one: identity-like values would hide mapping bugs) is saved in the hub layout with the FUSED MLP
names (``checkpoint/config.json`` + ``checkpoint/model.safetensors``). Inputs and reference outputs go to
``reference.npz`` and versions/seed/config to ``metadata.json``. With ``--config base`` the backbone cases
are reduced to the last patch of outputs (Base weights are never committed: 605 MB).
This script only calls the reference package; it contains no upstream code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

SMALL = dict(
    patch_size=8,
    embed_dim=64,
    num_layers=4,
    num_heads=4,
    mlp_hidden_dim=128,
    spacewise_every_n_layers=2,
    k_components=3,
)
BASE = dict(
    patch_size=64,
    embed_dim=768,
    num_layers=12,
    num_heads=12,
    mlp_hidden_dim=3072,
    spacewise_every_n_layers=12,
    k_components=24,
)


def hub_config(hp: dict, *, memory_efficient: bool = False) -> dict:
    """Toto constructor kwargs (= the hub config.json) for the hyper-parameters ``hp``. The hub file says
    ``use_memory_efficient_attention: true``; constructing without xFormers needs False (docs/models.md#toto-config)."""
    return dict(
        patch_size=hp["patch_size"],
        stride=hp["patch_size"],
        embed_dim=hp["embed_dim"],
        num_layers=hp["num_layers"],
        num_heads=hp["num_heads"],
        mlp_hidden_dim=hp["mlp_hidden_dim"],
        dropout=0.1,
        spacewise_every_n_layers=hp["spacewise_every_n_layers"],
        spacewise_first=False,
        scaler_cls="<class 'model.scaler.CausalPatchStdMeanScaler'>",
        output_distribution_classes=["<class 'model.distribution.MixtureOfStudentTsOutput'>"],
        output_distribution_kwargs={"k_components": hp["k_components"]},
        use_memory_efficient_attention=memory_efficient,
        stabilize_with_global=True,
        scale_factor_exponent=10.0,
    )


def build_model(hp: dict, seed: int):
    """A seeded random toto-ts model: default init, then every tensor perturbed."""
    from toto.model.toto import Toto

    torch.manual_seed(seed)
    toto = Toto(**hub_config(hp))
    with torch.no_grad():  # perturb everything: no zero bias, no unit norm scale survives
        for name, p in toto.named_parameters():
            if name.endswith("norm1.scale") or name.endswith("norm2.scale"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.add_(0.05 * torch.randn_like(p))
            else:
                p.add_(0.3 * p.std() * torch.randn_like(p))
    toto.eval()
    return toto


def save_hub(toto, hp: dict, out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.contiguous() for k, v in toto.state_dict().items() if not k.endswith("rotary_emb.freqs")}
    sd = toto._map_state_dict_keys(sd, True)  # hub spelling: mlp.0.w12 / mlp.0.w3
    save_file(sd, str(out / "model.safetensors"))
    cfg = hub_config(hp, memory_efficient=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=1))


def series(rng, shape, level, step, noise):
    walk = np.cumsum(rng.normal(0, step, shape), axis=-1)
    return (level + walk + rng.normal(0, noise, shape)).astype(np.float32)


def backbone_cases(p: int, rng) -> dict[str, dict]:
    """(B,V,T) cases: left padding (partial patches), several id groups, large offsets."""
    cases = {}
    # 1. (2,3,6P): three levels, 13 + 20 masked left steps, ids [0,0,1] and [0,1,2]
    t = 6 * p
    x = np.stack(
        [
            np.stack([series(rng, t, 0, 1, 0.5), series(rng, t, 1e3, 5, 10), series(rng, t, 1e6, 1e3, 1e4)])
            for _ in range(2)
        ]
    )
    valid = np.ones_like(x, bool)
    valid[0, :, :13] = False
    valid[1, 1, :20] = False
    ids = np.zeros(x.shape, np.int32)
    ids[0, 2] = 1
    ids[1, 1], ids[1, 2] = 1, 2
    cases["b2v3_pad_groups"] = dict(x=x, valid=valid, ids=ids)
    # 2. (1,2,64P): level 1e5 walks, var 1 left-padded by 12.5 patches, one group
    t = 64 * p
    x = np.stack([series(rng, t, 1e5, 50, 20), series(rng, t, 2e5, 80, 5)])[None]
    valid = np.ones_like(x, bool)
    valid[0, 1, : int(12.5 * p)] = False
    cases["b1v2_long_offset"] = dict(x=x, valid=valid, ids=np.zeros(x.shape, np.int32))
    # 3. (1,1,128P): return-like series (std 0.02): min scale dominates
    t = 128 * p
    x = rng.normal(0.0005, 0.02, (1, 1, t)).astype(np.float32)
    cases["b1v1_returns"] = dict(x=x, valid=np.ones_like(x, bool), ids=np.zeros(x.shape, np.int32))
    # 4. (2,4,8P): ids alternate per variate, constant series in one variate, fully padded patches
    t = 8 * p
    x = np.stack([np.stack([series(rng, t, 10 * (v + 1), 1, 1) for v in range(4)]) for _ in range(2)])
    x[0, 3] = 42.0
    valid = np.ones_like(x, bool)
    valid[1, :, : 3 * p] = False
    ids = np.tile(np.array([0, 1, 0, 1], np.int32)[None, :, None], (2, 1, t))
    ids[1] = np.array([3, 3, 7, 9], np.int32)[:, None]
    cases["b2v4_alt_groups"] = dict(x=x, valid=valid, ids=ids)
    for c in cases.values():
        c["x"] = np.where(c["valid"], c["x"], 0.0).astype(np.float32)
    return cases


def run_backbone(toto, case: dict, last_only: bool) -> dict:
    x = torch.from_numpy(case["x"])
    with torch.no_grad():
        dist, loc, scale = toto.model(x, torch.from_numpy(case["valid"]), torch.from_numpy(case["ids"]))
    comp = dist.component_distribution
    out = dict(
        df=comp.df, mloc=comp.loc, mscale=comp.scale, weights=dist.mixture_distribution.probs, loc=loc, scale=scale
    )
    p = toto.model.patch_embed.stride
    out = {k: v.numpy() for k, v in out.items()}
    if last_only:
        out = {k: v[:, :, -p:] for k, v in out.items()}
    return out


def masked(x, valid, ids):
    from toto.data.util.dataset import MaskedTimeseries

    b, v, t = x.shape
    return MaskedTimeseries(
        series=torch.from_numpy(x),
        padding_mask=torch.from_numpy(valid),
        id_mask=torch.from_numpy(ids),
        timestamp_seconds=torch.zeros(b, v, t, dtype=torch.int),
        time_interval_seconds=torch.full((b, v), 60, dtype=torch.int),
    )


def forecast_context(p: int, rng, t: int):
    x = np.stack(
        [
            np.stack([series(rng, t, 0, 1, 0.3), series(rng, t, 1e4, 20, 5)]),
            np.stack([series(rng, t, 100, 2, 1), rng.normal(0, 0.02, t).astype(np.float32)]),
        ]
    )
    valid = np.ones_like(x, bool)
    valid[1, 0, :9] = False
    ids = np.zeros(x.shape, np.int32)
    ids[1, 1] = 1
    return np.where(valid, x, 0).astype(np.float32), valid, ids


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=["small", "base"], default="small")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    hp = SMALL if args.config == "small" else BASE
    p = hp["patch_size"]
    t0 = time.time()
    toto = build_model(hp, args.seed)
    n_params = sum(v.numel() for v in toto.parameters())
    save_hub(toto, hp, args.out / "checkpoint")
    rng = np.random.default_rng(args.seed)
    arrays: dict[str, np.ndarray] = {}
    base = args.config == "base"
    cases = backbone_cases(p, rng)
    if base:  # Base: shapes from the spec's parity plan, last patch only
        cases = {k: cases[k] for k in ("b2v3_pad_groups", "b2v4_alt_groups")}
        x = np.stack([series(rng, 1024, 1e5, 50, 20), series(rng, 1024, 0, 0.02, 0.01)])[None]
        valid = np.ones_like(x, bool)
        valid[0, 1, :100] = False
        cases["b1v2_t1024"] = dict(
            x=np.where(valid, x, 0).astype(np.float32),
            valid=valid,
            ids=np.array([0, 1], np.int32)[None, :, None].repeat(1024, -1),
        )
    for name, case in cases.items():
        for k, v in case.items():
            arrays[f"backbone/{name}/{k}"] = v
        for k, v in run_backbone(toto, case, last_only=base).items():
            arrays[f"backbone/{name}/out_{k}"] = v
    # scaler stress (4096 steps, level 1e6 random walk + noise; constant; tiny noise at 1e5)
    t = 4096
    xs = np.stack(
        [series(rng, t, 1e6, 300, 1e3), np.full(t, 1e5, np.float32), (1e5 + rng.normal(0, 1e-2, t)).astype(np.float32)]
    )[None]
    with torch.no_grad():
        _, sloc, sscale = toto.model.scaler(
            torch.from_numpy(xs),
            padding_mask=torch.ones(xs.shape, dtype=torch.bool),
            weights=torch.ones(xs.shape),
            prefix_length=None,
        )
    arrays["scaler/x"] = xs
    arrays["scaler/loc"] = sloc.numpy()[..., p - 1 :: p]
    arrays["scaler/scale"] = sscale.numpy()[..., p - 1 :: p]
    # mean-mode forecasts, KV cache on and off; the context length is not a patch multiple
    fx, fvalid, fids = forecast_context(p, rng, (8 if base else 7) * p + 5)
    arrays.update({"forecast/x": fx, "forecast/valid": fvalid, "forecast/ids": fids})
    forecaster_cls = __import__("toto.inference.forecaster", fromlist=["TotoForecaster"]).TotoForecaster
    forecaster = forecaster_cls(toto.model)
    horizons = (1, 64, 65, 336) if not base else (1, 64, 65, 200)
    with torch.no_grad():
        for hp_len in horizons:
            for kv in (True, False):
                if base and not kv and hp_len > 65:
                    continue
                fc = forecaster.forecast(
                    masked(fx, fvalid, fids), prediction_length=hp_len, num_samples=None, use_kv_cache=kv
                )
                arrays[f"forecast/mean_h{hp_len}_kv{int(kv)}"] = fc.mean.numpy()
        # sampling: one context, S = 4096 (Hp = 1: first patch; Hp = P + 4: a decoded second patch)
        sx, sv, si = fx[1:2, 1:2], fvalid[1:2, 1:2], fids[1:2, 1:2]
        if not base:
            sx = fx[0:1, 1:2]
            sv, si = fvalid[0:1, 1:2], fids[0:1, 1:2]
        arrays["sample/x"], arrays["sample/valid"], arrays["sample/ids"] = sx, sv, si
        torch.manual_seed(args.seed + 1)
        fc = forecaster.forecast(
            masked(sx, sv, si), prediction_length=1, num_samples=4096, samples_per_batch=512 if base else 4096
        )
        arrays["sample/h1"] = fc.samples.numpy()
        if not base:
            fc = forecaster.forecast(
                masked(sx, sv, si), prediction_length=p + 4, num_samples=4096, samples_per_batch=1024
            )
            arrays["sample/h_p4"] = fc.samples.numpy()
    np.savez_compressed(args.out / "reference.npz", **arrays)
    from importlib.metadata import version

    import toto as toto_pkg  # noqa: F401

    meta = dict(
        seed=args.seed,
        config=args.config,
        hyperparameters=hp,
        parameters=n_params,
        versions={
            k: version(k) for k in ("toto-ts", "torch", "rotary-embedding-torch", "gluonts", "numpy", "safetensors")
        },
        python=sys.version.split()[0],
        threads=args.threads,
        perturbation="norm scales 1+0.3N, biases +0.05N, weights +0.3*std*N (torch.manual_seed(seed))",
        horizons=list(horizons),
        generated_in_s=round(time.time() - t0, 1),
    )
    (args.out / "metadata.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
