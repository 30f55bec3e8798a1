"""MODEL_CARD.md of a model trained by :mod:`jaxsim.training.loop`, rendered from its ``training.json`` record."""

from __future__ import annotations

from jaxsim.training.config import PRESETS

__all__ = ["render_model_card"]


def _row(name: str, s: dict) -> str:
    better = "yes" if s["mae"] < min(s["mae_zero"], s["mae_hist"]) else "no"
    return (
        f"| {name} | {s['n']} | {s['nll']:.4f} | {s['nll_gauss']:.4f} | {s['mae'] * 1e4:.2f} | "
        f"{s['mae_zero'] * 1e4:.2f} | {s['mae_hist'] * 1e4:.2f} | {better} |"
    )


def _overrides(rec: dict) -> str:
    """CLI flags that turn the preset into this run's train_config."""
    preset = PRESETS.get(rec.get("preset", "default"))
    tc = rec["train_config"]
    flags = {
        "steps": "--steps",
        "seed": "--seed",
        "learning_rate": "--lr",
        "objective": "--objective",
        "init_from": "--init-from",
    }
    if preset is None:
        return ""
    base = preset.to_json()
    return "".join(f" {flag} {tc[k]}" for k, flag in flags.items() if tc.get(k) != base.get(k))


def _verdict(o: dict) -> str:
    nll = "better" if o["nll"] < o["nll_gauss"] else "worse"
    rel = o["mae"] / min(o["mae_zero"], o["mae_hist"]) - 1.0
    mae = (
        f"{abs(rel):.1%} {'worse' if rel > 0 else 'better'} in MAE than the better of the zero-return and "
        "historical-mean forecasts"
    )
    return (
        f"**In short:** over all {o['n']} held-out returns its predictive distribution is {nll} than a "
        f"Gaussian fitted to each context (NLL {o['nll']:.4f} vs {o['nll_gauss']:.4f} nats), while its point "
        f"forecast (mixture mean) is {mae} -- the usual picture for daily stock returns."
    )


def render_model_card(rec: dict) -> str:
    """Markdown model card: what it is and is not, data, held-out dates, training, held-out metrics."""
    tc, mc, data, ho = rec["train_config"], rec["model_config"], rec["data"], rec["heldout"]
    last = rec["history"][-1]
    series = data["series"]
    first_ho = min(v["first_heldout"] for v in series.values())
    last_ho = max(v["last_heldout"] for v in series.values())
    embedded = rec["name"] == "jaxsim-toto-tiny"
    origin = "trained from scratch" if not tc.get("init_from") else f"fine-tuned from `{tc['init_from']}`"
    lines = [
        f"# {rec['name']}: "
        + ("jaxsim's embedded demo forecaster" if embedded else "a Toto-architecture model trained by jaxsim"),
        "",
        "## What it is",
        f"A **small Toto-architecture model** ({rec['parameters']:,} parameters, float32) {origin} by",
        "jaxsim's own JAX/optax training loop on the bundled public-domain daily prices. It exists so that",
        "`jaxsim backtest` gives real, model-based probabilistic forecasts on a fresh machine with no",
        "network and no official weights. It uses the official model's architecture and conventions exactly",
        f"(patch {mc['patch_size']}, causal patch std-mean scaler, rotary/xPos time-wise attention, a space-wise",
        f"layer, a {mc['k_components']}-component Student-T mixture head), so it runs through the same forecaster",
        "and padding rules as converted Toto weights.",
        "",
        "## What it is not",
        "- **Not Datadog's Toto-Open-Base-1.0** (151 M parameters, trained on ~2 trillion observability",
        f"  points); this is {rec['parameters'] / 151_306_080:.2%} of its size, "
        f"trained for minutes on {len(data['symbols'])} stock(s).",
        "- Not a good stock forecaster: daily returns are close to unpredictable, and the held-out table",
        "  below shows how it compares with trivial baselines. Its value is a calibrated-ish return",
        "  distribution (volatility, fat tails) for the pipeline, not alpha.",
        "- **Not investment advice.** Backtest numbers produced with it say nothing about future profits.",
        "",
        "## Data",
        f"- Source: {data['source']}.",
        f"- Symbols: {', '.join(data['symbols'])}; series: fractional day-over-day changes of the "
        f"{', '.join(data['columns'])} prices ({'split/dividend-adjusted' if data['adjusted'] else 'raw'}),"
        " the backtester's input units.",
        f"- Training: returns dated before {tc['holdout_start']}. Held out: {first_ho} .. {last_ho}"
        " (the last ~2 years of every series; never seen in training, used only for the numbers below).",
        "",
        "| symbol | training returns | first .. last training date | held-out returns |",
        "|---|---|---|---|",
    ]
    for sym, v in series.items():
        lines.append(
            f"| {sym} | {v['train_returns']} | {v['first_return']} .. {v['last_train']} | {v['heldout_returns']} |"
        )
    m = mc
    lines += [
        "",
        "## Model and training",
        f"- Architecture: TotoConfig(patch_size={m['patch_size']}, embed_dim={m['embed_dim']}, "
        f"num_layers={m['num_layers']}, num_heads={m['num_heads']}, mlp_hidden_dim={m['mlp_hidden_dim']}, "
        f"spacewise_every_n_layers={m['spacewise_every_n_layers']}, k_components={m['k_components']}).",
        "- Objective: Toto's next-patch negative log-likelihood of the Student-T mixture "
        f"(objective `{tc['objective']}`).",
        f"- Steps: {tc['steps']}; windows of {', '.join(str(n) for n in tc['window_patches'])} patches cycled, "
        f"{tc['tokens_per_batch']} tokens per batch (batch = {tc['tokens_per_batch']} // patches), "
        "random left padding 0-63.",
        f"- Optimizer: AdamW (peak lr {tc['learning_rate']}, warmup {tc['warmup_steps']}, cosine to 10%, "
        f"weight decay {tc['weight_decay']}, clip {tc['clip_norm']}); seed {tc['seed']}.",
        f"- Final training NLL (mean of the last {tc['log_every']} steps): {last['nll']:.4f} nats/return;"
        f" training took {rec['train_seconds']:.0f} s wall ({rec['backend']}, jax {rec['jax_version']}"
        + ("; a 2-core VM shared with other heavy jobs, so expect less on an idle machine)." if embedded else ")."),
        "",
        "## Held-out evaluation (one-step-ahead, every held-out day)",
        _verdict(ho["overall"]),
        "",
        "Each held-out return r[j] is forecast from its whole history r[..j-1], left-padded to a multiple of",
        "64 exactly as the backtester's forecaster does. NLL in nats per return (lower is better); MAE in",
        "basis points of the model's mixture mean vs the zero-return and historical-mean baselines,",
        "computed on the same contexts by the same code (`jaxsim.training.evaluate.evaluate`). 'Gaussian NLL' is",
        "a normal with the context's mean and standard deviation.",
        "",
        "| series | n | model NLL | Gaussian NLL | model MAE | zero MAE | hist-mean MAE | beats both |",
        "|---|---|---|---|---|---|---|---|",
        _row("**all**", ho["overall"]),
    ]
    lines += [_row(f"all {c}", s) for c, s in ho["by_column"].items()]
    lines += [_row(n, s) for n, s in ho["by_series"].items()]
    lines += [
        "",
        "## Reproduce",
        "```",
        f"jaxsim train --config {rec.get('preset', 'default')}{_overrides(rec)} --out weights/{rec['name']}",
        "```",
        "rewrites this folder from scratch (all seeds fixed; host-side window sampling uses a seeded NumPy",
        "generator). On the machine that produced it (a 2-core x86 CPU VM, jax/jaxlib 0.10.2) a second run",
        "reproduced `params.safetensors` bit for bit (same sha256) and every number above exactly. On the",
        "same machine type expect the same; on other CPUs, core counts or XLA versions float32 summation",
        "order changes, so expect agreement to roughly 1e-3 relative in the metrics, not bit equality.",
        "`tests/test_train.py` re-forecasts a recorded held-out slice through the backtester's forecaster",
        "path and checks it against `training.json` (forecast means to 1e-4 relative, MAE to 1e-5).",
        "",
        "Licence of the weights: same as jaxsim (Apache-2.0); the training data is public domain.",
    ]
    return "\n".join(lines) + "\n"
