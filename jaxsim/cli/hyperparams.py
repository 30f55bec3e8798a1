"""``--hyperparams DIR``: the original backtester's per-symbol hyper-parameter files.

Layout of ``DIR`` (the original's ``hyperparams/`` folder; every file optional)::

    best/<SYMBOL>.json     {"model": "toto" | "kronos", ...}  which model runs (missing: toto)
    kronos/<SYMBOL>.json   {"config": {"temperature", "top_p", "top_k", "sample_count", "max_context", "clip"}}
    toto/<SYMBOL>.json     {"config": {"num_samples", "aggregate"}}

Only those ``config`` keys are read (the files carry more: validation scores, metadata); a missing
file or key takes the original's default (Kronos: temperature 0.152, top_p 0.83, top_k 20,
sample_count 192, max_context 232, clip 1.85; Toto: num_samples 3072, aggregate trimmed_mean_10).
The original clamps Toto's num_samples to [128, 4096]; so does this reader. ``best/``'s own
``config`` is ignored, as the original does. Kronos' ``max_context`` is its lookback (rows).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from jaxsim.errors import ConfigError

__all__ = ["KRONOS_DEFAULTS", "TOTO_DEFAULTS", "TOTO_SAMPLE_RANGE", "HyperParams", "read_hyperparams"]

KRONOS_DEFAULTS = {
    "temperature": 0.152,
    "top_p": 0.83,
    "top_k": 20,
    "sample_count": 192,
    "max_context": 232,
    "clip": 1.85,
}
TOTO_DEFAULTS = {"num_samples": 3072, "aggregate": "trimmed_mean_10"}
TOTO_SAMPLE_RANGE = (128, 4096)
_KRONOS_TYPES = {
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "sample_count": int,
    "max_context": int,
    "clip": float,
}


@dataclasses.dataclass(frozen=True)
class HyperParams:
    """One symbol's settings from a hyper-parameter folder.

    Attributes:
      symbol: the symbol.
      model: ``"toto"`` or ``"kronos"`` (from ``best/``).
      kronos: temperature, top_p, top_k, sample_count, max_context, clip.
      toto: num_samples (clamped), aggregate.
      files: the files that were read (the others took defaults).
    """

    symbol: str
    model: str
    kronos: dict[str, Any]
    toto: dict[str, Any]
    files: tuple[str, ...] = ()

    def kronos_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`jaxsim.forecast.forecasters.kronos` (max_context -> lookback)."""
        k = dict(self.kronos)
        return {
            "sample_count": k["sample_count"],
            "lookback": k["max_context"],
            "temperature": k["temperature"],
            "top_p": k["top_p"],
            "top_k": k["top_k"],
            "clip": k["clip"],
        }

    def describe(self) -> str:
        """One line for the log: the model and the values that will run."""
        if self.model == "kronos":
            values = ", ".join(f"{k}={v}" for k, v in self.kronos.items())
        else:
            values = ", ".join(f"{k}={v}" for k, v in self.toto.items())
        source = ", ".join(self.files) if self.files else "no files, defaults"
        return f"{self.symbol}: {self.model} ({values}) from {source}"


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _file(root: Path, kind: str, symbol: str) -> Path:
    """``root/kind/<symbol>.json`` as given, else upper-cased (the original writes upper-case names)."""
    for name in dict.fromkeys((symbol, symbol.upper())):
        path = root / kind / f"{name}.json"
        if path.is_file():
            return path
    return root / kind / f"{symbol.upper()}.json"


def _config(data: dict | None, path: Path) -> dict:
    if data is None:
        return {}
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: 'config' must be an object, got {type(config).__name__}")
    return config


def _number(path: Path, key: str, value, kind, what: str):
    """``kind(value)`` (int or float) of ``config.<key>`` in ``path``, finite, else a ConfigError naming it."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: config.{key} = {value!r} is not {what}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{path}: config.{key} = {value!r} is not finite")
    return number


def read_hyperparams(root, symbol: str) -> HyperParams:
    """Read ``symbol``'s files under ``root`` (see the module docstring).

    Raises:
      ConfigError: unreadable JSON, an unknown model in ``best/``, or a value of the wrong type.
    """
    root = Path(root)
    files = []
    best_path = _file(root, "best", symbol)
    best = _read(best_path)
    if best is not None:
        files.append(str(best_path))
    model = str((best or {}).get("model", "toto")).lower()
    if model not in ("toto", "kronos"):
        raise ConfigError(f"{best_path}: model {model!r} is not supported (toto or kronos)")

    kronos_path = _file(root, "kronos", symbol)
    kronos_data = _read(kronos_path)
    if kronos_data is not None:
        files.append(str(kronos_path))
    kronos = dict(KRONOS_DEFAULTS)
    for key, value in _config(kronos_data, kronos_path).items():
        if key in _KRONOS_TYPES and value is not None:
            kronos[key] = _number(kronos_path, key, value, _KRONOS_TYPES[key], "a number")

    toto_path = _file(root, "toto", symbol)
    toto_data = _read(toto_path)
    if toto_data is not None:
        files.append(str(toto_path))
    toto = dict(TOTO_DEFAULTS)
    config = _config(toto_data, toto_path)
    if config.get("num_samples") is not None:
        n = _number(toto_path, "num_samples", config["num_samples"], int, "an integer")
        toto["num_samples"] = min(max(n, TOTO_SAMPLE_RANGE[0]), TOTO_SAMPLE_RANGE[1])
    if config.get("aggregate") is not None:
        toto["aggregate"] = str(config["aggregate"])
    return HyperParams(symbol.upper(), model, kronos, toto, tuple(files))
