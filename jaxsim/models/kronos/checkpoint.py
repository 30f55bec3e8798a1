"""Strict conversion of official Kronos checkpoints (hub layout) to jaxsim weight folders, and loading.

A hub folder holds ``config.json`` (constructor kwargs) and ``model.safetensors`` (the PyTorch
``state_dict``, docs/models.md#kronos-checkpoint). The converter reads it with ``safetensors.numpy`` (no torch), maps
every key to the Flax tree of :mod:`jaxsim.models.kronos.model` (Linear weights transposed, per-layer tensors stacked on
a leading layer axis), checks the persistent buffers (``inv_freq``, BSQ ``basis``/``group_basis``) against
their recomputed values when present, and fails on any missing, unexpected or mis-shaped tensor -- the
reference loads non-strictly, we do not (docs/models.md#kronos-checkpoint). The source sha256 is recorded and matched
against the published hashes (``docs/models.md#published-checkpoints``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import load_file

from jaxsim.errors import CheckpointError
from jaxsim.models import weights
from jaxsim.models.kronos.model import (
    DEP_HEADS,
    KRONOS_PRESETS,
    PAIRING,
    TOKENIZER_PRESETS,
    Kronos,
    KronosConfig,
    KronosTokenizer,
    KronosTokenizerConfig,
)

__all__ = [
    "HUB_WEIGHTS",
    "HUB_CONFIG",
    "KNOWN_SHA256",
    "HUB_ID_TO_PRESET",
    "STACKED",
    "EMBEDS",
    "NORMS",
    "KronosBundle",
    "model_config_from_hub",
    "tokenizer_config_from_hub",
    "expected_shapes",
    "hub_to_params",
    "read_hub",
    "convert_kronos_checkpoint",
    "check_pairing",
    "load_kronos",
]

log = logging.getLogger(__name__)
HUB_WEIGHTS = "model.safetensors"
HUB_CONFIG = "config.json"
MODEL_KIND, TOKENIZER_KIND = "kronos", "kronos-tokenizer"
# sha256 of the published model.safetensors files (docs/models.md#published-checkpoints).
KNOWN_SHA256 = {
    "a7d5f37e2e9fbd9891f7d7d4f72574512dd1f704fee14223e0a8cd0fbf54197c": "NeoQuasar/Kronos-mini",
    "b082dfcbd8e8c142a725c8bbb99781802f38fec81210e13479effb32b3c3e020": "NeoQuasar/Kronos-small",
    "abff193acab6db1a0368e9773e75799d11403b6d054ee6d5f0a11aeabc5f4b83": "NeoQuasar/Kronos-base",
    "b97ec46b3b72160509e289183eaf7bdf5f0dac5bb9b49522f6d46638a99a8717": "NeoQuasar/Kronos-Tokenizer-2k",
    "59d85f6af76a2c3b8240ea06cb21db4213b4eeca053f246b23e29cf832fc6bee": "NeoQuasar/Kronos-Tokenizer-base",
}
HUB_ID_TO_PRESET = {
    "NeoQuasar/Kronos-mini": "kronos-mini",
    "NeoQuasar/Kronos-small": "kronos-small",
    "NeoQuasar/Kronos-base": "kronos-base",
    "NeoQuasar/Kronos-Tokenizer-2k": "kronos-tokenizer-2k",
    "NeoQuasar/Kronos-Tokenizer-base": "kronos-tokenizer-base",
}
STACKED = ("transformer", "encoder", "decoder")  # ModuleLists that become scanned layer stacks
EMBEDS = re.compile(r"(emb_s1|emb_s2|\w+_embed)$")
NORMS = re.compile(r"(norm|norm1|norm2)$")


class KronosBundle(NamedTuple):
    """Everything ``predict`` needs: static configs and the two parameter trees."""

    model_config: KronosConfig
    tokenizer_config: KronosTokenizerConfig
    model_params: Any
    tokenizer_params: Any


# ------------------------------------------------------------------------------------------ configs
def _preset_name(cfg, presets) -> str:
    for name, p in presets.items():
        if dataclasses.replace(p, name=cfg.name) == cfg:
            return name
    return "custom"


def model_config_from_hub(raw: dict) -> KronosConfig:
    try:
        if not raw.get("learn_te", True):
            raise CheckpointError(
                "config.json: learn_te=false (fixed sinusoid time embeddings) is not "
                "supported; every released Kronos uses learned tables"
            )
        cfg = KronosConfig(
            "custom",
            d_model=int(raw["d_model"]),
            n_layers=int(raw["n_layers"]),
            n_heads=int(raw["n_heads"]),
            ff_dim=int(raw["ff_dim"]),
            s1_bits=int(raw["s1_bits"]),
            s2_bits=int(raw["s2_bits"]),
        )
    except KeyError as e:
        raise CheckpointError(f"config.json lacks the Kronos key {e}") from None
    return dataclasses.replace(cfg, name=_preset_name(cfg, KRONOS_PRESETS))


def tokenizer_config_from_hub(raw: dict) -> KronosTokenizerConfig:
    try:
        cfg = KronosTokenizerConfig(
            "custom",
            d_in=int(raw["d_in"]),
            d_model=int(raw["d_model"]),
            n_heads=int(raw["n_heads"]),
            ff_dim=int(raw["ff_dim"]),
            n_enc_layers=int(raw["n_enc_layers"]),
            n_dec_layers=int(raw["n_dec_layers"]),
            s1_bits=int(raw["s1_bits"]),
            s2_bits=int(raw["s2_bits"]),
            group_size=int(raw["group_size"]),
        )
    except KeyError as e:
        raise CheckpointError(f"config.json lacks the tokenizer key {e}") from None
    return dataclasses.replace(cfg, name=_preset_name(cfg, TOKENIZER_PRESETS))


def expected_shapes(kind: str, cfg) -> dict[str, tuple]:
    """Flat ``{"a/b/c": (shape, dtype)}`` of the Flax tree the config implies (no allocation)."""
    if kind == MODEL_KIND:
        tree = jax.eval_shape(
            lambda: Kronos(cfg).init(
                jax.random.PRNGKey(0), jnp.zeros(4, jnp.int32), jnp.zeros(4, jnp.int32), jnp.ones((4, 5))
            )["params"]
        )
    else:
        tree = jax.eval_shape(
            lambda: KronosTokenizer(cfg).init(jax.random.PRNGKey(0), jnp.zeros((4, cfg.d_in)))["params"]
        )
    out: dict[str, tuple] = {}

    def walk(node, prefix):
        for k, v in node.items():
            key = f"{prefix}/{k}" if prefix else k
            if isinstance(v, dict):
                walk(v, key)
            else:
                out[key] = (tuple(v.shape), v.dtype)

    walk(tree, "")
    return out


# ---------------------------------------------------------------------------------------- buffers
def _inv_freq(dim: int) -> np.ndarray:
    return (1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))).astype(np.float32)


def _check_buffer(key: str, value: np.ndarray, kind: str, cfg) -> None:
    """Verify a persistent buffer against its recomputed value; the buffer is then dropped."""
    if key.endswith("rotary.inv_freq"):
        heads = DEP_HEADS if key.startswith("dep_layer.") else cfg.n_heads
        want = _inv_freq(cfg.d_model // heads)
        ok = value.shape == want.shape and np.allclose(value, want, rtol=1e-6, atol=0)
    elif kind == TOKENIZER_KIND and key == "tokenizer.bsq.basis":
        want = 2 ** np.arange(cfg.codebook_dim - 1, -1, -1)
        ok = value.shape == want.shape and np.array_equal(value, want)
    elif kind == TOKENIZER_KIND and key == "tokenizer.bsq.group_basis":
        want = 2 ** np.arange(cfg.group_size - 1, -1, -1)
        ok = value.shape == want.shape and np.array_equal(value, want)
        if not ok:
            raise CheckpointError(
                f"{key} has shape {value.shape}, but config.json's group_size is "
                f"{cfg.group_size}: tokenizer file and config do not belong together"
            )
    else:
        raise CheckpointError(f"unexpected tensor {key!r}")
    if not ok:
        raise CheckpointError(f"buffer {key} differs from its recomputed value (shape {value.shape})")


def _is_buffer(key: str) -> bool:
    return key.endswith("rotary.inv_freq") or key.startswith("tokenizer.bsq.")


# ------------------------------------------------------------------------------------------ mapping
def _map_key(key: str) -> tuple[str, int | None, bool]:
    """Hub key -> (flax path, layer index or None, transpose?)."""
    parts = key.split(".")
    layer = None
    if parts[0] in STACKED:
        if len(parts) < 3 or not parts[1].isdigit():
            raise CheckpointError(f"unexpected tensor {key!r}")
        layer = int(parts[1])
        parts = [parts[0]] + parts[2:]
    *mods, leaf = parts
    if not mods:
        raise CheckpointError(f"unexpected tensor {key!r}")
    if leaf == "bias":
        return "/".join(mods + ["bias"]), layer, False
    if leaf != "weight":
        raise CheckpointError(f"unexpected tensor {key!r}")
    if EMBEDS.search(mods[-1]) and mods[-1] not in ("quant_embed", "post_quant_embed", "post_quant_embed_pre", "embed"):
        return "/".join(mods + ["embedding"]), layer, False
    if NORMS.fullmatch(mods[-1]):
        return "/".join(mods + ["scale"]), layer, False
    return "/".join(mods + ["kernel"]), layer, True


def hub_to_params(state: dict[str, np.ndarray], kind: str, cfg) -> dict[str, Any]:
    """Map a hub ``state_dict`` (numpy) to the nested Flax params of ``kind``; strict."""
    expected = expected_shapes(kind, cfg)
    flat: dict[str, np.ndarray] = {}
    stacks: dict[str, dict[int, np.ndarray]] = {}
    for key, value in state.items():
        if _is_buffer(key):
            _check_buffer(key, value, kind, cfg)
            continue
        path, layer, transpose = _map_key(key)
        if value.dtype != np.float32:
            raise CheckpointError(f"{key}: dtype {value.dtype}, expected float32")
        arr = value.T if transpose else value
        if layer is None:
            flat[path] = arr
        else:
            stacks.setdefault(path, {})[layer] = arr
    for path, layers in stacks.items():
        n = expected[path][0][0] if path in expected else len(layers)
        if sorted(layers) != list(range(n)):
            raise CheckpointError(f"{path}: layer indices {sorted(layers)} but the config has {n} layers")
        if len({layers[i].shape for i in range(n)}) > 1:  # np.stack would raise a bare ValueError
            want = tuple(expected[path][0][1:]) if path in expected else None
            shapes = "; ".join(f"layer {i}: {tuple(layers[i].shape)}" for i in range(n))
            raise CheckpointError(f"{path}: layers have different shapes ({shapes}); expected {want}")
        flat[path] = np.stack([layers[i] for i in range(n)])
    weights.check_tree(flat, expected, f"Kronos {kind} checkpoint")
    return weights.unflatten({k: np.ascontiguousarray(v, np.float32) for k, v in flat.items()})


def read_hub(src_dir: str | os.PathLike, kind: str):
    """Read a hub-layout folder -> (config, params, source sha256)."""
    src = Path(src_dir)
    for name in (HUB_CONFIG, HUB_WEIGHTS):
        if not (src / name).is_file():
            raise CheckpointError(f"{src}: missing {name} (expected the hub layout: config.json + model.safetensors)")
    try:
        raw = json.loads((src / HUB_CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{src / HUB_CONFIG}: unreadable JSON: {e}") from None
    if kind == MODEL_KIND:
        if "d_in" in raw:
            raise CheckpointError(f"{src}: this is a tokenizer checkpoint, not a Kronos model")
        cfg = model_config_from_hub(raw)
    elif kind == TOKENIZER_KIND or kind == "tokenizer":
        kind = TOKENIZER_KIND
        if "n_layers" in raw:
            raise CheckpointError(f"{src}: this is a Kronos model checkpoint, not a tokenizer")
        cfg = tokenizer_config_from_hub(raw)
    else:
        raise CheckpointError(f"unknown checkpoint kind {kind!r} (use 'model' or 'tokenizer')")
    sha = weights.sha256_file(src / HUB_WEIGHTS)
    try:
        state = load_file(str(src / HUB_WEIGHTS))
    except Exception as e:  # truncated or not a safetensors file
        raise CheckpointError(f"{src / HUB_WEIGHTS}: cannot be read ({e})") from None
    return cfg, hub_to_params(state, kind, cfg), sha


def convert_kronos_checkpoint(
    src_dir: str | os.PathLike, dst_dir: str | os.PathLike, *, kind: str = "model", hub_id: str | None = None
) -> Path:
    """Convert a hub-layout Kronos model or tokenizer folder to a jaxsim weight folder.

    Args:
      src_dir: folder with ``config.json`` and ``model.safetensors``.
      dst_dir: the jaxsim weight folder to write (``config.json``, ``params.safetensors``,
        ``manifest.json``); written atomically.
      kind: ``"model"`` or ``"tokenizer"``.
      hub_id: optional claim such as ``"NeoQuasar/Kronos-small"``; when its sha256 is published and
        the file differs, a CheckpointError is raised.

    Returns:
      The destination path. The manifest records the source sha256 and, when it matches a published
      file, the hub id (``known_release``).
    """
    kind = MODEL_KIND if kind == "model" else TOKENIZER_KIND if kind in ("tokenizer", TOKENIZER_KIND) else kind
    cfg, params, sha = read_hub(src_dir, kind)
    known = KNOWN_SHA256.get(sha)
    if hub_id is not None and hub_id in KNOWN_SHA256.values() and known != hub_id:
        raise CheckpointError(f"{src_dir}: sha256 {sha} is not the published file of {hub_id}")
    if known is not None and HUB_ID_TO_PRESET[known] != cfg.name:
        raise CheckpointError(f"{src_dir}: file is {known} but config.json describes {cfg.name}")
    log.info("converted %s (%s, sha256 %s%s)", src_dir, cfg.name, sha, f", {known}" if known else "")
    return weights.save(
        dst_dir,
        model=kind,
        config=dataclasses.asdict(cfg),
        params=params,
        meta={
            "source": str(Path(src_dir).resolve()),
            "source_sha256": sha,
            "known_release": known,
            "hub_id": hub_id or known,
        },
    )


# -------------------------------------------------------------------------------------------- load
def _load_one(directory: str | os.PathLike, kind: str):
    d = Path(directory)
    if (d / weights.PARAMS_FILE).is_file():
        model, raw, params, _ = weights.load(d)
        if model != kind:
            raise CheckpointError(f"{d}: holds a {model!r} weight folder, expected {kind!r}")
        cls = KronosConfig if kind == MODEL_KIND else KronosTokenizerConfig
        try:
            cfg = cls(**raw)
        except TypeError as e:
            raise CheckpointError(f"{d}/config.json: {e}") from None
        weights.check_tree(weights.flatten(params), expected_shapes(kind, cfg), f"{d}")
        return cfg, params
    cfg, params, _ = read_hub(d, kind)  # a hub folder, converted in memory
    return cfg, params


def check_pairing(model_cfg: KronosConfig, tok_cfg: KronosTokenizerConfig) -> None:
    """Kronos-mini pairs with Tokenizer-2k (group_size 5), small/base with Tokenizer-base (4)."""
    want = PAIRING.get(model_cfg.name)
    if want is not None and tok_cfg.name != want:
        raise CheckpointError(
            f"{model_cfg.name} must be paired with {want} "
            f"(group_size {TOKENIZER_PRESETS[want].group_size}); got {tok_cfg.name} "
            f"(group_size {tok_cfg.group_size})"
        )


def load_kronos(model_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike) -> KronosBundle:
    """Load a model and its tokenizer (jaxsim weight folders or hub folders) and check the pairing."""
    mcfg, mparams = _load_one(model_dir, MODEL_KIND)
    tcfg, tparams = _load_one(tokenizer_dir, TOKENIZER_KIND)
    check_pairing(mcfg, tcfg)
    as_jax = lambda t: jax.tree_util.tree_map(jax.numpy.asarray, t)
    return KronosBundle(mcfg, tcfg, as_jax(mparams), as_jax(tparams))
