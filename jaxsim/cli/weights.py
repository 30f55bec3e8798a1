"""``jaxsim weights list|verify|fetch|convert`` and ``jaxsim train``: thin shells over
:mod:`jaxsim.models.registry` and :mod:`jaxsim.training.loop` (registered by :func:`add_commands`)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

# deferred: jaxsim.models.registry (numpy, safetensors; no JAX) is imported by the commands, so that
# building the parser (`jaxsim --help`, every command's start) loads neither

__all__ = [
    "PRESET_NAMES",
    "cmd_weights_list",
    "cmd_weights_verify",
    "cmd_weights_fetch",
    "cmd_weights_convert",
    "cmd_train",
    "add_commands",
]

# names of jaxsim.training.config.PRESETS (kept here so building the parser does not import JAX; a test checks)
PRESET_NAMES = ("default", "tiny")


def cmd_weights_list(args) -> int:
    """Print the official checkpoints of the manifest and the embedded default model."""
    from jaxsim.models import registry

    rows = registry.list_checkpoints(args.root)
    print(f"{'name':24s} {'hub id':34s} {'params':>12s} {'bytes':>12s} {'sha256':14s} converted")
    for r in rows:
        params = f"{r.parameters:,}" if r.parameters else "?"
        size = f"{r.bytes:,}" if r.bytes else "?"
        sha = (r.sha256[:12] + "..") if r.sha256 else "unknown"
        print(f"{r.name:24s} {r.hub_id:34s} {params:>12s} {size:>12s} {sha:14s} {r.converted or '-'}")
    try:
        print(f"embedded default model: {registry.default_weights_dir()}")
    except Exception as e:  # report, do not fail the listing
        print(f"embedded default model: missing ({e})")
    return 0


def cmd_weights_verify(args) -> int:
    """Exit 0 when the folder verifies, 1 when it does not."""
    from jaxsim.models import registry

    result = registry.verify(args.folder, args.name)
    for line in result.lines:
        print(line)
    print("verified" if result.ok else "NOT verified")
    return 0 if result.ok else 1


def cmd_weights_fetch(args) -> int:
    """Download + verify + convert, or exit 2 at once with the manual steps."""
    from jaxsim.models import registry

    try:
        out = registry.fetch(args.name, args.dest, timeout=args.timeout, do_convert=not args.no_convert)
    except registry.FetchUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def cmd_weights_convert(args) -> int:
    from jaxsim.models import registry

    out = registry.convert(args.src, args.dst, name=args.name)
    print(f"wrote {out}")
    return 0


def cmd_train(args) -> int:
    """Train (or fine-tune) a Toto-architecture model and write weights, training.json, MODEL_CARD.md."""
    # deferred: JAX, only when training
    from jaxsim.training import loop as train
    from jaxsim.training.config import PRESETS

    tc = PRESETS[args.config]
    changes = {
        k: v
        for k, v in dict(
            steps=args.steps, seed=args.seed, objective=args.objective, init_from=args.init_from, learning_rate=args.lr
        ).items()
        if v is not None
    }
    tc = dataclasses.replace(tc, **changes)
    name = args.name or Path(args.out).name
    rec = train.run(tc, args.out, name=name, preset=args.config, progress=lambda s: print(s, flush=True))
    o = rec["heldout"]["overall"]
    print(f"wrote {args.out}: {rec['parameters']:,} parameters, {rec['train_seconds']:.0f} s training")
    print(
        f"held-out ({o['n']} returns): NLL {o['nll']:.4f} (Gaussian {o['nll_gauss']:.4f}); MAE {o['mae']:.6f} "
        f"(zero {o['mae_zero']:.6f}, historical mean {o['mae_hist']:.6f})"
    )
    return 0


def add_commands(sub) -> None:
    """Register ``weights`` and ``train`` on the ``jaxsim`` subparsers."""
    w = sub.add_parser("weights", help="official checkpoints: list, verify, fetch, convert")
    ws = w.add_subparsers(dest="weights_command", required=True)
    p = ws.add_parser("list", help="official checkpoints in weights/manifest.json")
    p.add_argument("--root", metavar="DIR", help="where converted folders live (default: the bundled weights/)")
    p.set_defaults(func=cmd_weights_list)
    p = ws.add_parser("verify", help="check a hub download or a jaxsim weight folder (sha256, shapes)")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--name", help="manifest name of a hub download (default: matched by sha256 or folder name)")
    p.set_defaults(func=cmd_weights_verify)
    p = ws.add_parser("fetch", help="download with huggingface_hub (fails fast offline with manual steps)")
    p.add_argument("name", help="manifest name, e.g. toto-open-base-1.0")
    p.add_argument("--dest", default="weights", metavar="DIR", help="weights root (default weights/)")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="hub reachability timeout (default 3 s)")
    p.add_argument("--no-convert", action="store_true", help="only download and verify")
    p.set_defaults(func=cmd_weights_fetch)
    p = ws.add_parser("convert", help="hub folder (config.json + model.safetensors) -> jaxsim weight folder")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST", help="weights root; writes DST/<name>")
    p.add_argument("--name", help="folder name (default from the config)")
    p.set_defaults(func=cmd_weights_convert)

    t = sub.add_parser("train", help="train or fine-tune a Toto-architecture model (JAX, optax)")
    t.add_argument(
        "--config", choices=PRESET_NAMES, default="default", help="training preset (default: the embedded model's)"
    )
    t.add_argument("--out", required=True, metavar="DIR", help="output weight folder")
    t.add_argument("--name", help="model name in the card (default: the folder name)")
    t.add_argument("--steps", type=int, help="override the preset's steps")
    t.add_argument("--seed", type=int, help="override the seed")
    t.add_argument("--lr", type=float, help="override the peak learning rate")
    t.add_argument("--objective", choices=("nll", "pnl", "nll+pnl"), help="loss (default nll)")
    t.add_argument("--init-from", metavar="DIR", help="fine-tune from a converted Toto weight folder")
    t.set_defaults(func=cmd_train)
