"""Toto hub checkpoint -> jaxsim weight folder, and loading it back without PyTorch.

The hub layout (docs/models.md#toto-checkpoint) is ``config.json`` (the upstream constructor's keyword arguments) plus
``model.safetensors`` (132 float32 tensors for Base). The MLP may be spelled with the fused xFormers
names (``mlp.0.w12`` / ``mlp.0.w3``, as published) or the native ones (``mlp.0`` / ``mlp.2``);
``rotary_emb.freqs`` buffers are dropped. Anything else unexpected, missing or mis-shaped is
reported all at once in one :class:`CheckpointError`. The converter transposes every Linear weight
to a Flax kernel, permutes the fused QKV output features from upstream ``(c, d, h)`` to head-major
``(c, h, d)`` and stacks the layers in the scanned ``blocks/{time,space}`` layout of
:mod:`jaxsim.models.toto.model`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import jax
import numpy as np
from safetensors.numpy import load_file

from jaxsim.errors import CheckpointError, ConfigError
from jaxsim.models import weights
from jaxsim.models.toto.model import TOTO_BASE, TotoConfig, count_params, param_shapes

__all__ = [
    "SCALER",
    "MIXTURE",
    "KNOWN_SHA256",
    "config_from_hub",
    "hub_to_params",
    "flat_shapes",
    "convert_toto_checkpoint",
    "load_toto",
]

log = logging.getLogger(__name__)

SCALER = "<class 'model.scaler.CausalPatchStdMeanScaler'>"
MIXTURE = "<class 'model.distribution.MixtureOfStudentTsOutput'>"
# sha256 of model.safetensors of known releases; the published Base hash is not known offline
# (docs/models.md#published-checkpoints), so it is recorded on first conversion and checked here once filled in.
KNOWN_SHA256: dict[str, str] = {}
_METADATA_KEYS = {
    "use_memory_efficient_attention",
    "transformers_version",
    "pre_xformers_checkpoint",
    "dropout",
    "stride",
}


def config_from_hub(hub: dict) -> TotoConfig:
    """Hub ``config.json`` dict -> :class:`TotoConfig`; unsupported values raise CheckpointError."""
    problems = []
    if hub.get("scaler_cls", SCALER) != SCALER:
        problems.append(f"scaler_cls {hub['scaler_cls']!r} is not supported (only {SCALER})")
    if list(hub.get("output_distribution_classes", [MIXTURE])) != [MIXTURE]:
        problems.append(f"output_distribution_classes {hub['output_distribution_classes']!r} not supported")
    if "stride" in hub and hub["stride"] != hub.get("patch_size"):
        problems.append(f"stride {hub['stride']} != patch_size {hub.get('patch_size')} (overlapping patches)")
    names = ("patch_size", "embed_dim", "num_layers", "num_heads", "mlp_hidden_dim", "spacewise_every_n_layers")
    missing = [k for k in names if k not in hub]
    if missing:
        problems.append("config.json lacks " + ", ".join(missing))
    known = set(names) | {
        "spacewise_first",
        "scaler_cls",
        "output_distribution_classes",
        "output_distribution_kwargs",
        "stabilize_with_global",
        "scale_factor_exponent",
    }
    unknown = sorted(set(hub) - known - _METADATA_KEYS)
    if unknown:
        problems.append("unknown config keys " + ", ".join(unknown))
    if problems:
        raise CheckpointError("unsupported Toto config.json:\n  " + "\n  ".join(problems))
    try:
        return TotoConfig(
            **{k: int(hub[k]) for k in names},
            spacewise_first=bool(hub.get("spacewise_first", False)),
            k_components=int(hub.get("output_distribution_kwargs", {}).get("k_components", 24)),
            dropout=float(hub.get("dropout", 0.1)),
            stabilize_with_global=bool(hub.get("stabilize_with_global", True)),
            scale_factor_exponent=float(hub.get("scale_factor_exponent", 10.0)),
        )
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def _layer_slot(config: TotoConfig, layer: int) -> tuple[str, int, int]:
    """Global layer index -> ("time"|"space", block, index within the block's time stack)."""
    s = config.spacewise_every_n_layers
    block, within = divmod(layer, s)
    space_at = 0 if config.spacewise_first else s - 1
    if within == space_at:
        return "space", block, 0
    return "time", block, within - (1 if config.spacewise_first else 0)


def hub_to_params(state: dict[str, np.ndarray], config: TotoConfig) -> dict:
    """Map a hub state dict (fused or native MLP names) to the jaxsim parameter tree (numpy)."""
    d, h, hd = config.embed_dim, config.num_heads, config.head_dim
    problems: list[str] = []
    flat: dict[str, np.ndarray] = {}

    def put(key: str, value: np.ndarray, src: str) -> None:
        if key in flat:
            problems.append(f"{src}: duplicate (both fused and native spellings present?)")
        flat[key] = value

    dense = {
        "model.patch_embed.projection": "patch_embed",
        "model.unembed": "unembed",
        **{f"model.output_distribution.{n}": n for n in ("df", "loc_proj", "scale_proj", "mixture_weights")},
    }
    layer_re = re.compile(r"model\.transformer\.layers\.(\d+)\.(.+)")
    per_layer: dict[tuple[int, str], tuple[np.ndarray, str]] = {}
    for src, arr in state.items():
        arr = np.asarray(arr, dtype=np.float32)
        if src.endswith("rotary_emb.freqs"):
            continue
        prefix, _, leaf = src.rpartition(".")
        if prefix in dense and leaf in ("weight", "bias"):
            put(f"{dense[prefix]}/{'kernel' if leaf == 'weight' else 'bias'}", arr.T if leaf == "weight" else arr, src)
            continue
        m = layer_re.fullmatch(src)
        if not m:
            problems.append(f"{src}: unexpected tensor")
            continue
        layer, rest = int(m.group(1)), m.group(2)
        rest = re.sub(r"^mlp\.0\.w12\.", "mlp.0.", re.sub(r"^mlp\.0\.w3\.", "mlp.2.", rest))
        names = {
            "norm1.scale": "norm1/scale",
            "norm2.scale": "norm2/scale",
            "attention.wQKV.weight": "attention/wQKV/kernel",
            "attention.wQKV.bias": "attention/wQKV/bias",
            "attention.wO.weight": "attention/wO/kernel",
            "attention.wO.bias": "attention/wO/bias",
            "mlp.0.weight": "mlp/w12/kernel",
            "mlp.0.bias": "mlp/w12/bias",
            "mlp.2.weight": "mlp/w3/kernel",
            "mlp.2.bias": "mlp/w3/bias",
        }
        if rest not in names or layer >= config.num_layers:
            problems.append(f"{src}: unexpected tensor")
            continue
        if (layer, names[rest]) in per_layer:
            problems.append(f"{src}: duplicate (both fused and native spellings present?)")
        per_layer[(layer, names[rest])] = (arr, src)

    # QKV: upstream output feature f = c*D + d*H + h  ->  jaxsim c*D + h*hd + d
    def qkv(arr: np.ndarray) -> np.ndarray:
        if arr.ndim == 2 and arr.shape == (3 * d, d):
            return arr.reshape(3, hd, h, d).transpose(0, 2, 1, 3).reshape(3 * d, d).T
        if arr.ndim == 1 and arr.shape == (3 * d,):
            return arr.reshape(3, hd, h).transpose(0, 2, 1).reshape(3 * d)
        return arr.T if arr.ndim == 2 else arr  # wrong shape: reported by the shape check

    shapes = flat_shapes(config)
    stacks = {k: np.zeros(v, np.float32) for k, v in shapes.items() if k.startswith("blocks/")}
    seen = set()
    for (layer, leaf), (arr, src) in per_layer.items():
        kind, block, idx = _layer_slot(config, layer)
        key = f"blocks/{kind}/{leaf}"
        value = qkv(arr) if leaf.startswith("attention/wQKV") else (arr.T if leaf.endswith("kernel") else arr)
        target = stacks[key][block, idx] if kind == "time" else stacks[key][block]
        if value.shape != target.shape:
            problems.append(
                f"{src}: got shape {tuple(arr.shape)}, expected "
                f"{tuple(target.shape[::-1]) if leaf.endswith('kernel') else tuple(target.shape)}"
            )
            continue
        target[...] = value
        seen.add((layer, leaf))
    for layer in range(config.num_layers):
        for leaf in (
            "norm1/scale",
            "norm2/scale",
            "attention/wQKV/kernel",
            "attention/wQKV/bias",
            "attention/wO/kernel",
            "attention/wO/bias",
            "mlp/w12/kernel",
            "mlp/w12/bias",
            "mlp/w3/kernel",
            "mlp/w3/bias",
        ):
            if (layer, leaf) not in seen and (layer, leaf) not in per_layer:
                problems.append(f"layer {layer}: missing {leaf}")
    flat.update(stacks)
    expected = {k: (tuple(v), np.float32) for k, v in shapes.items()}
    for k in sorted(set(expected) - set(flat)):
        problems.append(f"missing tensor for {k}")
    for k in sorted(set(flat) & set(expected)):
        if tuple(flat[k].shape) != expected[k][0] and not k.startswith("blocks/"):
            problems.append(f"{k}: got shape {tuple(flat[k].shape)}, expected {expected[k][0]} (Flax layout)")
    if problems:
        raise CheckpointError(
            f"Toto checkpoint does not match its config ({len(problems)} problems):\n  " + "\n  ".join(problems)
        )
    return weights.unflatten(flat)


def flat_shapes(config: TotoConfig) -> dict[str, tuple[int, ...]]:
    """``{"a/b/c": shape}`` of the parameters implied by ``config`` (``jax.eval_shape`` of init)."""
    out = {}

    def walk(tree, prefix):
        for k, v in tree.items():
            key = f"{prefix}/{k}" if prefix else k
            if hasattr(v, "items"):
                walk(v, key)
            else:
                out[key] = tuple(v.shape)

    walk(param_shapes(config), "")
    return out


def convert_toto_checkpoint(src_dir, dst_dir, *, name: str | None = None) -> Path:
    """Convert a hub-layout folder (config.json + model.safetensors) into ``dst_dir/<name>/``.

    Args:
      src_dir: folder with ``config.json`` and ``model.safetensors``.
      dst_dir: the weights root (e.g. ``weights/``); the folder ``dst_dir/name`` is written atomically.
      name: folder name; default ``toto-open-base-1.0`` for the Base config, else the source folder name.

    Returns:
      The written folder. Raises CheckpointError listing every problem at once.
    """
    src = Path(src_dir)
    cfg_path, st_path = src / "config.json", src / "model.safetensors"
    absent = [f.name for f in (cfg_path, st_path) if not f.is_file()]
    if absent:
        raise CheckpointError(
            f"{src}: missing {' and '.join(absent)} (expected the hub layout: config.json + model.safetensors)"
        )
    try:
        hub = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path}: unreadable JSON: {e}") from None
    config = config_from_hub(hub)
    digest = weights.sha256_file(st_path)
    known = KNOWN_SHA256.get(name or "")
    if known and known != digest:
        raise CheckpointError(f"{st_path}: sha256 {digest} differs from the published {known}")
    try:
        state = load_file(str(st_path))
    except Exception as e:  # safetensors raises its own types on truncation
        raise CheckpointError(f"{st_path}: cannot be read ({e})") from None
    params = hub_to_params(state, config)
    if name is None:
        name = "toto-open-base-1.0" if config == TOTO_BASE else src.name
    n = count_params(params)
    log.info("converted %s: %d tensors, %d parameters, sha256 %s", st_path, len(state), n, digest)
    return weights.save(
        Path(dst_dir) / name,
        model="toto",
        config=dataclasses.asdict(config),
        params=params,
        meta=dict(
            source=str(st_path),
            source_sha256=digest,
            source_bytes=st_path.stat().st_size,
            source_tensors=len(state),
            hub_config=hub,
        ),
    )


def load_toto(weights_dir) -> tuple[TotoConfig, dict]:
    """Load a jaxsim Toto weight folder: ``(config, params)`` with every tensor shape-checked."""
    model, cfg, params, _ = weights.load(weights_dir)
    if model != "toto":
        raise CheckpointError(f"{weights_dir}: holds a {model!r} model, not toto")
    try:
        config = TotoConfig(**cfg)
    except (TypeError, ConfigError) as e:
        raise CheckpointError(f"{weights_dir}: bad Toto config ({e})") from None
    expected = {k: (v, np.float32) for k, v in flat_shapes(config).items()}
    weights.check_tree(weights.flatten(params), expected, f"{weights_dir}")
    return config, jax.device_put(params)  # one transfer, no small conversion program per leaf shape
