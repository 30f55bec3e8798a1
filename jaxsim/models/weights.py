"""jaxsim's own weight format: one folder per model under ``weights/<name>/``.

A folder holds ``config.json`` (``{"model": "toto"|"kronos"|..., "config": {...}}``), ``params.safetensors``
(the parameter pytree flattened to ``"a/b/c"`` keys) and ``manifest.json`` (source file and its sha256,
the sha256 of ``params.safetensors``, the tensor count). Loading needs numpy and safetensors only, never
PyTorch, and checks every tensor against the shapes the config implies before anything is returned, so
a model is either fully loaded or not at all. Writes go to a temporary folder that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from jaxsim.errors import CheckpointError

__all__ = [
    "PARAMS_FILE",
    "CONFIG_FILE",
    "MANIFEST_FILE",
    "SEP",
    "sha256_file",
    "flatten",
    "unflatten",
    "check_tree",
    "save",
    "load",
]

PARAMS_FILE = "params.safetensors"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
SEP = "/"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dict of arrays -> ``{"a/b/c": array}``."""
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        key = f"{prefix}{SEP}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        else:
            out[key] = np.asarray(v)
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a/b/c": array}`` -> nested dict."""
    tree: dict[str, Any] = {}
    for key, v in flat.items():
        node = tree
        *parents, leaf = key.split(SEP)
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return tree


def check_tree(flat: Mapping[str, np.ndarray], expected: Mapping[str, tuple[tuple[int, ...], Any]], what: str) -> None:
    """Raise one CheckpointError listing every missing, unexpected or mis-shaped tensor."""
    missing = sorted(set(expected) - set(flat))
    extra = sorted(set(flat) - set(expected))
    bad = [
        f"{k}: got {tuple(flat[k].shape)}, expected {tuple(expected[k][0])}"
        for k in sorted(set(flat) & set(expected))
        if tuple(flat[k].shape) != tuple(expected[k][0])
    ]
    if missing or extra or bad:
        lines = [f"{what} does not match its config:"]
        if missing:
            lines.append(f"  missing tensors ({len(missing)}): " + ", ".join(missing))
        if extra:
            lines.append(f"  unexpected tensors ({len(extra)}): " + ", ".join(extra))
        if bad:
            lines.append(f"  wrong shapes ({len(bad)}): " + "; ".join(bad))
        raise CheckpointError("\n".join(lines))


def save(
    directory: str | os.PathLike,
    *,
    model: str,
    config: Mapping[str, Any],
    params: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a weight folder atomically (temporary sibling folder, then rename)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    flat = {k: np.ascontiguousarray(v) for k, v in flatten(params).items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        safetensors.numpy.save_file(flat, str(tmp / PARAMS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps({"model": model, "config": dict(config)}, indent=1))
        manifest = dict(meta or {})
        manifest.update(
            params_sha256=sha256_file(tmp / PARAMS_FILE),
            tensors=len(flat),
            parameters=int(sum(v.size for v in flat.values())),
        )
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load(directory: str | os.PathLike, *, verify: bool = True) -> tuple[str, dict, dict, dict]:
    """Read a weight folder: returns ``(model, config, params, manifest)``.

    Raises CheckpointError when a file is missing or truncated, or (``verify``) when the params file's
    sha256 differs from the manifest. Shape checks against the config are the caller's (per model).
    """
    directory = Path(directory)
    for name in (PARAMS_FILE, CONFIG_FILE, MANIFEST_FILE):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: missing {name} (not a jaxsim weight folder?)")
    try:
        cfg = json.loads((directory / CONFIG_FILE).read_text())
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{directory}: unreadable JSON: {e}") from None
    if verify and manifest.get("params_sha256") not in (None, sha256_file(directory / PARAMS_FILE)):
        raise CheckpointError(
            f"{directory / PARAMS_FILE}: sha256 differs from manifest.json (file corrupt or replaced)"
        )
    try:
        flat = safetensors.numpy.load_file(str(directory / PARAMS_FILE))
    except Exception as e:  # safetensors raises its own error types on truncation
        raise CheckpointError(f"{directory / PARAMS_FILE}: cannot be read ({e})") from None
    return cfg.get("model", ""), cfg.get("config", {}), unflatten(flat), manifest
