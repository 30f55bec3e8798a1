"""Weight management: the manifest of official checkpoints, verification, fetching, conversion, and
the location of the embedded default model.

* ``weights/manifest.json`` lists the official checkpoints jaxsim can convert (hub id, revision
  when known, parameter count, size and sha256 of ``model.safetensors``; docs/models.md#published-checkpoints).
* :func:`verify` checks a folder: a hub download (``config.json`` + ``model.safetensors``) against
  the manifest's size and sha256, or a jaxsim weight folder against its own ``manifest.json`` (sha256
  of ``params.safetensors``) plus, for Toto, every tensor shape against its config.
* :func:`fetch` downloads with ``huggingface_hub`` only when it is installed *and* the hub answers
  within a short timeout; otherwise it fails at once with the manual steps (the build and CI
  machines cannot reach the hub).
* :func:`convert` turns a hub folder into a jaxsim weight folder (Toto, Kronos).
* :func:`default_weights_dir` is the embedded demo model trained by :mod:`jaxsim.training.loop`, found in a
  checkout (``<repo>/weights/``) or in an installed wheel (package ``jaxsim.bundled_weights``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from importlib.resources import files
from pathlib import Path

from jaxsim.errors import CheckpointError, ConfigError
from jaxsim.models import weights

__all__ = [
    "DEFAULT_MODEL",
    "HUB_FILES",
    "BUNDLED_PACKAGE",
    "FetchUnavailableError",
    "bundled_dir",
    "default_weights_dir",
    "load_manifest",
    "CheckpointRow",
    "list_checkpoints",
    "Verification",
    "verify",
    "manual_steps",
    "hub_reachable",
    "fetch",
    "convert",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "jaxsim-toto-tiny"
HUB_FILES = ("config.json", "model.safetensors")
BUNDLED_PACKAGE = "jaxsim.bundled_weights"  # pyproject maps this package onto weights/


class FetchUnavailableError(CheckpointError):
    """The hub cannot be used from here; the message holds the manual steps."""


def _checkout_weights() -> Path:
    return Path(__file__).resolve().parents[2] / "weights"  # <repo>/jaxsim/models/registry.py


def bundled_dir() -> Path:
    """The folder holding ``manifest.json`` and the embedded model: ``<repo>/weights`` in a checkout
    or editable install, the ``jaxsim.bundled_weights`` package data in a wheel install."""
    for path in (_checkout_weights(), Path(__file__).resolve().parents[1] / "bundled_weights"):
        if (path / "manifest.json").is_file():
            return path
    try:  # any other importer (editable installs map the package onto weights/)
        manifest = files(BUNDLED_PACKAGE).joinpath("manifest.json")  # a namespace package: no __init__
        if manifest.is_file():
            return Path(str(manifest)).parent
    except (ImportError, TypeError, ValueError):
        pass
    raise CheckpointError(
        "jaxsim's bundled weights are missing from this installation (no weights/manifest.json "
        "in the checkout and no jaxsim.bundled_weights package data)"
    )


def default_weights_dir() -> Path:
    """The embedded default model's weight folder (``weights/jaxsim-toto-tiny``)."""
    path = bundled_dir() / DEFAULT_MODEL
    if not (path / weights.PARAMS_FILE).is_file():
        raise CheckpointError(f"the embedded default model is missing: {path} has no {weights.PARAMS_FILE}")
    return path


def load_manifest(path: str | Path | None = None) -> dict[str, dict]:
    """``{name: entry}`` of the official checkpoints (``weights/manifest.json``)."""
    path = Path(path) if path is not None else bundled_dir() / "manifest.json"
    try:
        return dict(json.loads(Path(path).read_text())["checkpoints"])
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint manifest ({e})") from None


def _entry(name: str, manifest: dict) -> dict:
    if name not in manifest:
        raise ConfigError(f"unknown checkpoint {name!r}; known: {', '.join(manifest)}")
    return manifest[name]


@dataclasses.dataclass(frozen=True)
class CheckpointRow:
    """One line of ``jaxsim weights list``."""

    name: str
    hub_id: str
    model: str
    revision: str | None
    parameters: int | None
    bytes: int | None
    sha256: str | None
    converted: Path | None  # a jaxsim weight folder of that name under the weights root, if any


def list_checkpoints(root: str | Path | None = None, manifest: dict | None = None) -> list[CheckpointRow]:
    """The manifest's checkpoints, each with the converted folder under ``root`` when present."""
    manifest = load_manifest() if manifest is None else manifest
    root = Path(root) if root is not None else bundled_dir()
    rows = []
    for name, e in manifest.items():
        folder = root / name
        rows.append(
            CheckpointRow(
                name,
                e.get("hub_id", ""),
                e.get("model", ""),
                e.get("revision"),
                e.get("parameters"),
                e.get("bytes"),
                e.get("sha256"),
                folder if (folder / weights.PARAMS_FILE).is_file() else None,
            )
        )
    return rows


@dataclasses.dataclass(frozen=True)
class Verification:
    """Outcome of :func:`verify`: ``ok`` and the lines that explain it."""

    ok: bool
    kind: str  # "hub" | "jaxsim"
    lines: tuple[str, ...]


def verify(folder: str | Path, name: str | None = None, manifest: dict | None = None) -> Verification:
    """Check a hub download or a jaxsim weight folder.

    Hub folder: the sha256 of ``model.safetensors`` must equal the manifest's for ``name`` (default:
    the entry whose sha256 matches, else the folder name); size too. An entry without a published
    sha256 (Toto) cannot be verified and says so (not ok). jaxsim folder: ``params.safetensors`` must
    match its own ``manifest.json``; Toto folders are also shape-checked against their config.
    """
    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        manifest = load_manifest() if manifest is None else manifest
        st = folder / "model.safetensors"
        digest, size = weights.sha256_file(st), st.stat().st_size
        by_sha = [n for n, e in manifest.items() if e.get("sha256") == digest]
        target = name or (by_sha[0] if by_sha else folder.name)
        if target not in manifest:
            return Verification(
                False,
                "hub",
                (
                    f"{st}: sha256 {digest} matches no manifest entry and the folder "
                    f"name {folder.name!r} is not a known checkpoint (pass --name)",
                ),
            )
        e = manifest[target]
        lines = [f"{st}: {size} bytes, sha256 {digest}"]
        if e.get("sha256") is None:
            lines.append(
                f"{target}: the manifest has no published sha256 for {e['hub_id']}; cannot verify "
                "(record it in weights/manifest.json once a trusted copy is converted)"
            )
            return Verification(False, "hub", tuple(lines))
        ok = e["sha256"] == digest and e.get("bytes") in (None, size)
        lines.append(
            f"{target} ({e['hub_id']}): expected {e.get('bytes')} bytes, sha256 {e['sha256']} -> "
            + ("OK" if ok else "MISMATCH (corrupt, truncated or a different file)")
        )
        return Verification(ok, "hub", tuple(lines))
    if (folder / weights.PARAMS_FILE).is_file():
        try:
            model, _, _, meta = weights.load(folder, verify=True)
            if model == "toto":
                from jaxsim.models.toto.checkpoint import load_toto  # deferred: JAX; the CLI parser imports registry

                load_toto(folder)
        except CheckpointError as e:
            return Verification(False, "jaxsim", (f"{folder}: FAILED: {e}",))
        return Verification(
            True,
            "jaxsim",
            (
                f"{folder}: {model} weights, {meta.get('tensors')} tensors, "
                f"{meta.get('parameters')} parameters, sha256 "
                f"{meta.get('params_sha256')} -> OK",
            ),
        )
    raise CheckpointError(
        f"{folder}: neither a hub download (config.json + model.safetensors) nor a jaxsim "
        "weight folder (params.safetensors + manifest.json)"
    )


def manual_steps(name: str, entry: dict, dest: str | Path) -> str:
    """What to do by hand when the hub cannot be reached from this machine."""
    rev = entry.get("revision")
    rev_flag = f" --revision {rev}" if rev else ""
    hub_dir = f"{name}-hub"
    return "\n".join(
        [
            f"Manual steps for {name} ({entry['hub_id']}):",
            "  1. On a machine with internet access:",
            "       pip install huggingface_hub",
            f"       huggingface-cli download {entry['hub_id']} {' '.join(HUB_FILES)}{rev_flag} --local-dir {hub_dir}",
            f"     (or save config.json and model.safetensors from https://huggingface.co/{entry['hub_id']})",
            f"  2. Copy the folder {hub_dir}/ to this machine.",
            f"  3. jaxsim weights verify {hub_dir} --name {name}",
            f"  4. jaxsim weights convert {hub_dir} {dest}      (writes {Path(dest) / name})",
        ]
    )


def hub_reachable(timeout: float = 3.0, url: str = "https://huggingface.co/api/models?limit=1") -> bool:
    """Whether the hub answers an HTTP request within ``timeout`` seconds."""
    import urllib.request  # deferred: http and ssl (~30 ms) stay out of the CLI's startup, which imports registry

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (fixed https URL)
            return 200 <= r.status < 500
    except Exception:  # offline, DNS failure, proxy refusal, timeout: all mean "not reachable"
        return False


def fetch(
    name: str, dest: str | Path, *, timeout: float = 3.0, do_convert: bool = True, manifest: dict | None = None
) -> Path:
    """Download an official checkpoint with huggingface_hub, verify it, and (default) convert it.

    Raises:
      FetchUnavailableError: huggingface_hub is not installed or the hub does not answer within
        ``timeout``; the message holds the manual steps.
    """
    manifest = load_manifest() if manifest is None else manifest
    entry = _entry(name, manifest)
    dest = Path(dest)
    try:
        import huggingface_hub  # deferred: an optional dependency
    except ImportError:
        raise FetchUnavailableError(
            "huggingface_hub is not installed, so jaxsim cannot download checkpoints here.\n"
            + manual_steps(name, entry, dest)
        ) from None
    if not hub_reachable(timeout):
        raise FetchUnavailableError(
            f"the Hugging Face hub did not answer within {timeout:g} s.\n" + manual_steps(name, entry, dest)
        )
    hub_dir = dest / f"{name}-hub"
    huggingface_hub.snapshot_download(
        entry["hub_id"], revision=entry.get("revision"), allow_patterns=list(HUB_FILES), local_dir=str(hub_dir)
    )
    check = verify(hub_dir, name, manifest)
    if not check.ok and entry.get("sha256") is not None:
        raise CheckpointError("downloaded file failed verification:\n  " + "\n  ".join(check.lines))
    return convert(hub_dir, dest, name=name) if do_convert else hub_dir


def convert(src: str | Path, dst: str | Path, *, name: str | None = None) -> Path:
    """Convert a hub folder into ``dst/<name>`` (Toto, Kronos model or Kronos tokenizer, detected from
    ``config.json``).

    ``name`` defaults to the manifest entry whose sha256 the file has (else the converter's default
    for Toto, the source folder name without ``-hub`` for Kronos). A source whose name has a
    published sha256 must match it.
    """
    src = Path(src)
    cfg_path = src / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{src}: missing config.json (expected a hub download: config.json + model.safetensors)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path}: unreadable JSON: {e}") from None
    manifest = load_manifest()
    if name is None and (src / "model.safetensors").is_file():  # a known release names itself
        digest = weights.sha256_file(src / "model.safetensors")
        name = next((n for n, e in manifest.items() if e.get("sha256") == digest), None)
    if name is not None and name in manifest and manifest[name].get("sha256"):
        check = verify(src, name, manifest)
        if not check.ok:
            raise CheckpointError("\n".join(check.lines))
    if "embed_dim" in cfg and "patch_size" in cfg:
        # deferred: JAX; the CLI parser imports registry
        from jaxsim.models.toto.checkpoint import convert_toto_checkpoint

        return convert_toto_checkpoint(src, dst, name=name)
    if "s1_bits" in cfg:
        try:  # deferred: JAX, as the Toto converter
            from jaxsim.models.kronos.checkpoint import convert_kronos_checkpoint
        except ImportError:
            raise CheckpointError("the Kronos converter is not available in this installation") from None
        kind = "tokenizer" if "d_in" in cfg else "model"
        folder = name or src.name.removesuffix("-hub")
        hub_id = manifest.get(folder, {}).get("hub_id")
        return convert_kronos_checkpoint(src, Path(dst) / folder, kind=kind, hub_id=hub_id)
    raise CheckpointError(f"{cfg_path}: not a Toto or Kronos config (keys: {', '.join(sorted(cfg))})")
