"""Quality study: default optax search and exact solver vs scipy DIRECT (the original's settings) and the robust
supremum.

Builds N six-day MaxDiff problems from real daily OHLC in ../shared/data/daily (actual close/high/
low moves; predictions from a trailing-mean forecaster plus Gaussian noise; MaxDiff's adjusted
quantities of docs/backtest.md#maxdiff-offsets), and for both objectives (entry/exit P=1, always-on P=2) and both
eod modes compares the exact objective reached by

* default : ``jaxsim.optimize.optax_optimizer()`` (defaults), one jitted vmapped call per setting,
* exact   : ``jaxsim.optimize.exact_optimizer()``,
* DIRECT  : ``scipy.optimize.direct`` locally biased, maxfun 500 (entry/exit) / 240 (always-on),
  bounds +-0.03, other defaults, on a float32 numpy PF (bit-identical to the original's on golden C),
* robust sup : the brute-force robust supremum (:func:`robust_supremum`, float64, from inside the
  cells), and the number of returned points on a knife edge (:func:`knife_edge_count`).

Writes a markdown table (stdout and ``--out``). scipy is needed (test extra).

    PYTHONPATH=. python benchmarks/optimizer_quality.py --cases 1000 --out optimizer_quality.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (or one level further up from a nested worktree)
DAILY = next(
    (p for p in (ROOT.parent / "shared/data/daily", ROOT.parent.parent / "shared/data/daily") if p.is_dir()),
    ROOT.parent / "shared/data/daily",
)
DAYS = 6
MAXFUN = {"entry_exit": 500, "always_on": 240}


def load_series(daily_dir=DAILY):
    """{symbol: (close, high, low)} float64 arrays, oldest first, positive prices only."""
    import pandas as pd

    out = {}
    for path in sorted(Path(daily_dir).glob("*.csv")):
        df = pd.read_csv(path).sort_values("Date")
        arr = df[["close", "high", "low"]].to_numpy(np.float64)
        arr = arr[np.all(np.isfinite(arr) & (arr > 0), axis=1)]
        if len(arr) > 60:
            out[path.stem] = tuple(arr.T)
    return out


def sample_cases(n, *, seed=0, daily_dir=DAILY, noise=0.5):
    """``n`` random six-day problems: dict of float32 ``(n, 6)`` arrays c, h, hp, l, lp and the
    entry/exit positions ``q_ee (n, 1, 6)`` and always-on ``q_ao (n, 2, 6)`` (buy +1, sell -1)."""
    rng = np.random.default_rng(seed)
    series = load_series(daily_dir)
    names = sorted(series)
    rows = {k: [] for k in ("c", "h", "hp", "l", "lp")}
    for _ in range(n):
        close, high, low = series[names[rng.integers(len(names))]]
        e = int(rng.integers(40, len(close)))  # evaluation days t = e-6 .. e-1
        t = np.arange(e - DAYS, e)
        r = lambda x, idx: x[idx] / x[idx - 1] - 1.0
        a_c, a_h, a_l = r(close, t), r(high, t), r(low, t)
        k_h = np.abs(1.0 - high[t - 1] / close[t - 1])
        k_l = np.abs(1.0 - low[t - 1] / close[t - 1])
        f = {}
        for key, x in (("c", close), ("h", high), ("l", low)):
            # trailing 10-day mean of the move up to the day before t, plus noise of 0.5 std
            hist = np.stack([r(x, np.arange(ti - 20, ti)) for ti in t])
            f[key] = hist[:, -10:].mean(1) + noise * hist.std(1) * rng.standard_normal(DAYS)
        rows["c"].append(a_c)
        rows["h"].append(a_h + k_h)
        rows["l"].append(a_l - k_l)
        rows["hp"].append(f["h"] + k_h)
        rows["lp"].append(f["l"] - k_l)
    cases = {k: np.asarray(v, np.float32) for k, v in rows.items()}
    hp, lp = cases["hp"], cases["lp"]
    valid = lp < hp
    q = np.where(np.abs(hp) > np.abs(lp), 1.0, -1.0) * valid
    cases["q_ee"] = q[:, None, :].astype(np.float32)
    cases["q_ao"] = np.broadcast_to(np.array([1.0, -1.0], np.float32)[None, :, None], (n, 2, DAYS)).copy()
    return cases


_FEE32 = np.float32(0.0005)  # pf_numpy's default fee


def pf_numpy(c, h, hp, l, lp, q, close_at_eod, fee=_FEE32):
    """float32 numpy PF (docs/backtest.md#profit-function), identical to jaxsim.sim.profit.profit_values; for the DIRECT
    loop."""
    hp = np.clip(hp, np.float32(0), np.float32(10))
    lp = np.clip(lp, np.float32(-1), np.float32(0))
    ql, qs = np.clip(q, 0, 10), np.clip(q, -10, 0)
    bf, sf = lp > l, hp < h
    if close_at_eod:
        pnl = ql * (c - lp) * bf + qs * (c - hp) * sf
        traded = bf | sf
    else:
        pnl = ql * bf * np.where(hp <= h, hp - lp, c - lp) + qs * sf * np.where(lp >= l, lp - hp, c - hp)
        traded = bf & sf
    return pnl - fee * np.abs(q) * traded


def pf_float64(c, h, hp, l, lp, q, close_at_eod, fee=0.0005):
    """PF in float64 (real-number semantics; used inside cells only, where no comparison ties)."""
    hp, lp = np.clip(hp, 0.0, 10.0), np.clip(lp, -1.0, 0.0)
    ql, qs = np.clip(q, 0, 10), np.clip(q, -10, 0)
    bf, sf = lp > l, hp < h
    if close_at_eod:
        return ql * (c - lp) * bf + qs * (c - hp) * sf - fee * np.abs(q) * (bf | sf)
    pnl = ql * bf * np.where(hp <= h, hp - lp, c - lp) + qs * sf * np.where(lp >= l, lp - hp, c - hp)
    return pnl - fee * np.abs(q) * (bf & sf)


def robust_supremum(c, h, hp, l, lp, q, *, close_at_eod, bound=0.03, fee=0.0005):
    """Brute-force robust supremum of one problem, computed from inside the cells (float64).

    The breakpoints ``level - pred`` of each axis (realised extreme and clamp bounds) cut
    ``[-bound, bound]^2`` into cells on which J is affine. In every cell J is evaluated at three
    interior points (1/4 and 3/4 of the way along each axis), the affine function through them is
    extended to the cell's four corners, and the largest corner value over all cells is returned:
    the supremum of J over open sets, never a value that only a boundary point attains.
    ``c, h, hp, l, lp``: ``(days,)``; ``q``: ``(P, days)``.
    """
    c, h, hp, l, lp, q = (np.asarray(a, np.float64) for a in (c, h, hp, l, lp, q))

    def edges(actual, pred, lo, hi):
        b = np.concatenate([actual - pred, lo - pred, hi - pred])
        return np.unique(np.concatenate([[-bound, bound], b[(b > -bound) & (b < bound)]]))

    eh, el = edges(h, hp, 0.0, 10.0), edges(l, lp, -1.0, 0.0)
    h0, h1, l0, l1 = eh[:-1], eh[1:], el[:-1], el[1:]

    def j(th, tl):
        mh = (h0 + th * (h1 - h0))[:, None, None, None]
        ml = (l0 + tl * (l1 - l0))[None, :, None, None]
        return pf_float64(c, h, hp + mh, l, lp + ml, q, close_at_eod, fee).sum(axis=(-2, -1))

    v00, v10, v01 = j(0.25, 0.25), j(0.75, 0.25), j(0.25, 0.75)
    dh, dl = (v10 - v00) / 0.5, (v01 - v00) / 0.5  # change per cell width
    best = -np.inf
    for th in (0.0, 1.0):
        for tl in (0.0, 1.0):
            best = max(best, float(np.max(v00 + dh * (th - 0.25) + dl * (tl - 0.25))))
    return best


def robust_suprema(cases, key, close_at_eod):
    """:func:`robust_supremum` of every case, ``(n,)``."""
    return np.array(
        [
            robust_supremum(
                *(cases[k][i] for k in ("c", "h", "hp", "l", "lp")), cases[key][i], close_at_eod=close_at_eod
            )
            for i in range(len(cases["c"]))
        ]
    )


def knife_edge_count(cases, key, m):
    """How many returned points ``m (n, 2)`` sit on a knife edge: an active day's unclamped shifted
    level exactly equal (float32, PF's own sum) to its realised high or low."""
    m = np.asarray(m, np.float32)
    active = np.any(cases[key] != 0, axis=1)  # (n, days)
    x = cases["hp"] + m[:, :1]
    y = cases["lp"] + m[:, 1:]
    tie = ((x == cases["h"]) & (x > 0) & (x < 10)) | ((y == cases["l"]) & (y > -1) & (y < 0))
    return int(np.sum(np.any(tie & active, axis=1)))


def direct_solve(c, h, hp, l, lp, q, *, close_at_eod, maxfun):
    """The original's DIRECT call; returns (mh, ml) as float64."""
    from scipy.optimize import direct

    def neg(x):
        v = pf_numpy(c, h, hp + np.float32(x[0]), l, lp + np.float32(x[1]), q, close_at_eod)
        return -float(np.sum(v, dtype=np.float32))

    res = direct(neg, [(-0.03, 0.03), (-0.03, 0.03)], maxfun=maxfun)
    return res.x


def run_jitted(cases, key, close_at_eod, optimizer):
    """One jitted vmapped call over all cases: ``(m (n, 2), warm seconds)``."""
    import jax

    args = tuple(cases[k] for k in ("c", "h", "hp", "l", "lp")) + (cases[key],)
    f = jax.jit(jax.vmap(lambda *a: optimizer(*a, close_at_eod=close_at_eod)))
    jax.block_until_ready(f(*args))
    t0 = time.perf_counter()
    m = jax.block_until_ready(f(*args))
    return np.asarray(m), time.perf_counter() - t0


def objective(cases, key, m, close_at_eod):
    """Exact J at multipliers ``m (n, 2)`` (float32 numpy)."""
    m = np.asarray(m, np.float32)
    c, h, hp, l, lp = (cases[k][:, None, :] for k in ("c", "h", "hp", "l", "lp"))
    v = pf_numpy(c, h, hp + m[:, None, None, 0], l, lp + m[:, None, None, 1], cases[key], close_at_eod)
    return v.sum(axis=(1, 2), dtype=np.float32)


def study(n, seed=0, direct=True, variants=None):
    """Per (objective, eod): J of the default, the exact solver, DIRECT and the brute-force robust
    supremum; ``variants`` ({name: optimizer}) are scored against the robust supremum too."""
    import jaxsim.optimize as O

    methods = {"default": O.optax_optimizer(), "exact": O.exact_optimizer(), **(variants or {})}
    cases = sample_cases(n, seed=seed)
    results = []
    for key, name in (("q_ee", "entry_exit"), ("q_ao", "always_on")):
        for eod in (False, True):
            row = dict(objective=name, eod=eod, n=n, robust=robust_suprema(cases, key, eod), j={}, secs={}, knife={})
            for mname, opt in methods.items():
                m, secs = run_jitted(cases, key, eod, opt)
                row["j"][mname], row["secs"][mname] = objective(cases, key, m, eod), secs
                row["knife"][mname] = knife_edge_count(cases, key, m)
            if direct:
                t0 = time.perf_counter()
                m_d = np.array(
                    [
                        direct_solve(
                            *(cases[k][i] for k in ("c", "h", "hp", "l", "lp")),
                            cases[key][i],
                            close_at_eod=eod,
                            maxfun=MAXFUN[name],
                        )
                        for i in range(n)
                    ]
                )
                row["secs"]["DIRECT"] = time.perf_counter() - t0
                row["j"]["DIRECT"] = objective(cases, key, m_d, eod)
                row["knife"]["DIRECT"] = knife_edge_count(cases, key, m_d)
            results.append(row)
    return results


def _dist(x):
    q = np.percentile(x, [1, 5, 50, 95, 99])
    return f"{x.min():.2e} / {q[0]:.2e} / {q[1]:.2e} / {q[2]:.2e} / {q[3]:.2e} / {q[4]:.2e} / {x.max():.2e}"


def markdown(results):
    """Main table (default, exact, DIRECT) and, if present, the variants against the robust supremum."""
    lines = [
        "| objective | eod | n | default >= DIRECT | exact >= DIRECT | default within 1e-5 of robust sup | "
        "exact within 1e-5 | points on a knife edge (default / exact / DIRECT) | "
        "robust sup - default: min / p1 / p5 / p50 / p95 / p99 / max | default - DIRECT: min / p1 / p5 / p50 / "
        "p95 / p99 / max | seconds: default / exact / DIRECT loop |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    pct = lambda x: f"{100 * np.mean(x):.1f}%"
    for r in results:
        j, rob = r["j"], r["robust"]
        has_d = "DIRECT" in j
        ge = lambda name: pct(j[name] >= j["DIRECT"]) if has_d else "-"
        knife = " / ".join(str(r["knife"].get(k, "-")) for k in ("default", "exact", "DIRECT"))
        dd = _dist(j["default"] - j["DIRECT"]) if has_d else "-"
        secs = " / ".join(f"{r['secs'][k]:.3f}" if k in r["secs"] else "-" for k in ("default", "exact", "DIRECT"))
        lines.append(
            f"| {r['objective']} | {r['eod']} | {r['n']} | {ge('default')} | {ge('exact')} | "
            f"{pct(rob - j['default'] <= 1e-5)} | {pct(rob - j['exact'] <= 1e-5)} | {knife} | "
            f"{_dist(rob - j['default'])} | {dd} | {secs} |"
        )
    extra = [k for k in results[0]["j"] if k not in ("default", "exact", "DIRECT")]
    if extra:
        lines += [
            "",
            "| variant | " + " | ".join(f"{r['objective']} eod={r['eod']}" for r in results) + " | seconds (sum) |",
            "|---|" + "---|" * (len(results) + 1),
        ]
        for k in ["default", "exact"] + extra:
            cells = [f"{pct(r['robust'] - r['j'][k] <= 1e-5)}" for r in results]
            lines.append(f"| {k} | " + " | ".join(cells) + f" | {sum(r['secs'][k] for r in results):.3f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-direct", action="store_true")
    ap.add_argument("--ablation", action="store_true", help="also score variants of the default search")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    variants = None
    if a.ablation:
        import jaxsim.optimize as O

        variants = {
            "no ascent (ascents=0)": O.optax_optimizer(ascents=0),
            "8 ascent steps": O.optax_optimizer(steps=8),
            "lattice starts (16 x 16, 10 starts, 8 steps, polish all)": O.optax_optimizer(
                corners=False, starts=10, steps=8, polish_starts=True
            ),
            "lattice starts, no ascent": O.optax_optimizer(corners=False, starts=10, ascents=0, polish_starts=True),
        }
    res = study(a.cases, a.seed, direct=not a.no_direct, variants=variants)
    text = (
        f"Optimizer quality on {a.cases} real-data six-day cases (seed {a.seed}); differences of the exact "
        f"objective J (sum of daily PF); robust sup = brute force from inside the cells "
        f"(`robust_supremum`).\n\n" + markdown(res) + "\n"
    )
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
