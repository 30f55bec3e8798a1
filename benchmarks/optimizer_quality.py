"""Quality study: optax optimiser vs scipy DIRECT (the original's settings) vs the exact solver.

Builds N six-day MaxDiff problems from real daily OHLC in ../shared/data/daily (actual close/high/
low moves; predictions from a trailing-mean forecaster plus Gaussian noise; MaxDiff's adjusted
quantities of spec 5.7 step 3), and for both objectives (entry/exit P=1, always-on P=2) and both
eod modes compares the exact objective reached by

* ours   : ``jaxsim.optimize.optax_optimizer()`` (defaults), one jitted vmapped call per setting,
* DIRECT : ``scipy.optimize.direct`` locally biased, maxfun 500 (entry/exit) / 240 (always-on),
  bounds +-0.03, other defaults, on a float32 numpy PF (bit-identical to the original's on golden C),
* exact  : ``jaxsim.optimize.exact_optimizer()``.

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
DAILY = next((p for p in (ROOT.parent / "shared/data/daily", ROOT.parent.parent / "shared/data/daily")
              if p.is_dir()), ROOT.parent / "shared/data/daily")
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


def pf_numpy(c, h, hp, l, lp, q, close_at_eod, fee=np.float32(0.0005)):
    """float32 numpy PF (spec 5.9), identical to jaxsim.sim.profit.profit_values; for the DIRECT loop."""
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


def direct_solve(c, h, hp, l, lp, q, *, close_at_eod, maxfun):
    """The original's DIRECT call; returns (mh, ml) as float64."""
    from scipy.optimize import direct

    def neg(x):
        v = pf_numpy(c, h, hp + np.float32(x[0]), l, lp + np.float32(x[1]), q, close_at_eod)
        return -float(np.sum(v, dtype=np.float32))

    res = direct(neg, [(-0.03, 0.03), (-0.03, 0.03)], maxfun=maxfun)
    return res.x


def run_ours_and_exact(cases, key, close_at_eod, optimizer=None):
    """Jitted, vmapped: (ours (n, 2), exact (n, 2), J ours (n,), J exact (n,), seconds ours)."""
    import jax
    import jaxsim.optimize as O

    ours = optimizer or O.optax_optimizer()
    ex = O.exact_optimizer()
    args = tuple(cases[k] for k in ("c", "h", "hp", "l", "lp")) + (cases[key],)
    call = lambda opt: jax.jit(jax.vmap(lambda *a: opt(*a, close_at_eod=close_at_eod)))
    f_ours, f_ex = call(ours), call(ex)
    jax.block_until_ready(f_ours(*args))
    t0 = time.perf_counter()
    m_ours = jax.block_until_ready(f_ours(*args))
    secs = time.perf_counter() - t0
    m_ex = f_ex(*args)
    return np.asarray(m_ours), np.asarray(m_ex), secs


def objective(cases, key, m, close_at_eod):
    """Exact J at multipliers ``m (n, 2)`` (float32 numpy)."""
    m = np.asarray(m, np.float32)
    c, h, hp, l, lp = (cases[k][:, None, :] for k in ("c", "h", "hp", "l", "lp"))
    v = pf_numpy(c, h, hp + m[:, None, None, 0], l, lp + m[:, None, None, 1], cases[key], close_at_eod)
    return v.sum(axis=(1, 2), dtype=np.float32)


def study(n, seed=0, direct=True, optimizer=None):
    cases = sample_cases(n, seed=seed)
    results = []
    for key, name in (("q_ee", "entry_exit"), ("q_ao", "always_on")):
        for eod in (False, True):
            m_ours, m_ex, secs = run_ours_and_exact(cases, key, eod, optimizer)
            j_ours, j_ex = objective(cases, key, m_ours, eod), objective(cases, key, m_ex, eod)
            row = dict(objective=name, eod=eod, n=n, j_ours=j_ours, j_exact=j_ex, secs=secs)
            if direct:
                t0 = time.perf_counter()
                m_d = np.array([direct_solve(*(cases[k][i] for k in ("c", "h", "hp", "l", "lp")), cases[key][i],
                                             close_at_eod=eod, maxfun=MAXFUN[name]) for i in range(n)])
                row["direct_secs"] = time.perf_counter() - t0
                row["j_direct"] = objective(cases, key, m_d, eod)
            results.append(row)
    return results


def _dist(x):
    q = np.percentile(x, [1, 5, 50, 95, 99])
    return (f"{x.min():.2e} / {q[0]:.2e} / {q[1]:.2e} / {q[2]:.2e} / {q[3]:.2e} / {q[4]:.2e} / "
            f"{x.max():.2e}")


def markdown(results):
    lines = ["| objective | eod | n | ours (s, one vmapped call) | DIRECT loop (s) | ours >= DIRECT | exact - ours <= 1e-5 | ours - DIRECT: min / p1 / p5 / "
             "p50 / p95 / p99 / max | exact - ours: min / p1 / p5 / p50 / p95 / p99 / max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        gap = r["j_exact"] - r["j_ours"]
        within = f"{100 * np.mean(gap <= 1e-5):.1f}%"
        if "j_direct" in r:
            d = r["j_ours"] - r["j_direct"]
            ge, dd = f"{100 * np.mean(d >= 0):.1f}%", _dist(d)
        else:
            ge = dd = "-"
        ds = f"{r['direct_secs']:.1f}" if "direct_secs" in r else "-"
        lines.append(f"| {r['objective']} | {r['eod']} | {r['n']} | {r['secs']:.3f} | {ds} | {ge} | {within} | {dd} | {_dist(gap)} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-direct", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    res = study(a.cases, a.seed, direct=not a.no_direct)
    text = (f"Optimizer quality on {a.cases} real-data six-day cases (seed {a.seed}); differences of the exact "
            f"objective J (sum of daily PF).\n\n" + markdown(res) + "\n")
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
