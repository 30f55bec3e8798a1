"""Base-config (151,306,080 parameters) parity of jaxsim's Toto against toto-ts, regenerated from a seed.

    PYTHONPATH=. python tools/toto_base_parity.py [--ref-python .venv-ref-toto/bin/python]

Step 1 runs ``tools/reference/toto_fixtures.py --config base`` inside the reference venv: it builds a
seeded random Base model (every parameter perturbed), saves it in the hub layout (605 MB, in a temporary
folder, never committed) with reference outputs. Step 2 converts that checkpoint with
:func:`convert_toto_checkpoint` and compares scaler stats and mixture params (last patch), mean-mode
forecasts (KV and full recompute) and S = 4096 samples (quantiles + KS). Prints a table of max errors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxsim.models.toto.checkpoint import convert_toto_checkpoint, load_toto  # noqa: E402
from jaxsim.models.toto.forecast import forecast  # noqa: E402
from jaxsim.models.toto.model import toto_forward  # noqa: E402


def rel(a, e, floor=0.0):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    if floor == "mean":
        floor = np.mean(np.abs(e))
    return float(np.max(np.abs(a - e) / np.maximum(np.abs(e), floor)))


def series_rel(a, e):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    return float(np.max(np.abs(a - e).max(-1) / np.abs(e).max(-1)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-python", default=".venv-ref-toto/bin/python")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the generated files here")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="toto_base_"))
    t0 = time.time()
    if not (work / "reference.npz").is_file():
        subprocess.run(
            [
                args.ref_python,
                "-W",
                "ignore",
                str(ROOT / "tools/reference/toto_fixtures.py"),
                "--config",
                "base",
                "--seed",
                str(args.seed),
                "--out",
                str(work),
            ],
            check=True,
        )
    t_ref = time.time() - t0
    config, params = load_toto(convert_toto_checkpoint(work / "checkpoint", work / "jaxsim", name="base"))
    ref = dict(np.load(work / "reference.npz"))
    rows: dict[str, float] = {}
    p = config.patch_size
    with jax.default_matmul_precision("highest"):
        fwd = jax.jit(toto_forward, static_argnums=1)
        for case in sorted({k.split("/")[1] for k in ref if k.startswith("backbone/")}):
            g = {k: ref[f"backbone/{case}/{k}"] for k in ("x", "valid", "ids")}
            mix, loc, scale = fwd(params, config, g["x"], g["valid"], g["ids"])
            o = {k: ref[f"backbone/{case}/out_{k}"] for k in ("df", "mloc", "mscale", "weights", "loc", "scale")}
            last = lambda a: np.asarray(a)[:, :, -p:]  # noqa: E731
            rows[f"{case} scaler loc (vs max(|loc|, scale))"] = float(
                np.max(np.abs(last(loc) - o["loc"]) / np.maximum(np.abs(o["loc"]), o["scale"]))
            )
            rows[f"{case} scaler scale"] = rel(last(scale), o["scale"])
            rows[f"{case} mixture df"] = rel(last(mix.df), o["df"])
            rows[f"{case} mixture loc (floor mean|.|)"] = rel(last(mix.loc), o["mloc"], "mean")
            rows[f"{case} mixture scale"] = rel(last(mix.scale), o["mscale"])
            rows[f"{case} mixture weights (floor mean|.|)"] = rel(last(mix.weights), o["weights"], "mean")
        x, v, i = ref["forecast/x"], ref["forecast/valid"], ref["forecast/ids"]
        for key in sorted(k for k in ref if k.startswith("forecast/mean_")):
            h, kv = int(key.split("_h")[1].split("_")[0]), key.endswith("kv1")
            mean, _ = forecast(params, config, x, v, i, h, use_kv_cache=kv)
            rows[f"mean forecast Hp={h} kv={kv} (series-max rel)"] = series_rel(mean, ref[key])
        sx, sv, si = ref["sample/x"], ref["sample/valid"], ref["sample/ids"]
        _, s = forecast(params, config, sx, sv, si, 1, key=jax.random.key(args.seed), num_samples=4096)
    from scipy import stats

    a, b = np.asarray(s)[0, 0, 0], ref["sample/h1"][0, 0, 0]
    qa, qb = np.quantile(a, [0.1, 0.5, 0.9]), np.quantile(b, [0.1, 0.5, 0.9])
    rows["samples Hp=1 S=4096: max |dq| / IQR (q=.1,.5,.9)"] = float(np.max(np.abs(qa - qb)) / (qb[2] - qb[0]))
    rows["samples Hp=1 S=4096: KS p-value"] = float(stats.ks_2samp(a, b).pvalue)
    meta = json.loads((work / "metadata.json").read_text())
    print(f"Toto Base parity (seed {args.seed}, {meta['parameters']:,} parameters, reference {t_ref:.0f} s)")
    for k, val in rows.items():
        print(f"  {k:58s} {val:.2e}")
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, metadata=meta), indent=1))


if __name__ == "__main__":
    main()
