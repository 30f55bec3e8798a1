"""Weight registry: manifest listing, verification of hub downloads and jaxsim folders (good and
tampered), fetch failing fast offline with the manual steps, conversion dispatch, the CLI, and the
embedded model shipped in a wheel."""

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from toto_helpers import FIXTURES

from jaxsim.cli import app as cli
from jaxsim.errors import CheckpointError, ConfigError
from jaxsim.models import registry, weights

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_lists_the_official_checkpoints():
    m = registry.load_manifest()
    assert m["kronos-mini"]["sha256"] == "a7d5f37e2e9fbd9891f7d7d4f72574512dd1f704fee14223e0a8cd0fbf54197c"
    assert m["toto-open-base-1.0"]["parameters"] == 151_306_080 and m["toto-open-base-1.0"]["sha256"] is None
    rows = {r.name: r for r in registry.list_checkpoints()}
    assert set(rows) == set(m) and rows["kronos-base"].bytes == 409_264_008
    assert all(r.converted is None for r in rows.values())


def _hub_folder(tmp_path, payload: bytes):
    d = tmp_path / "kronos-mini-hub"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"d_model": 8, "s1_bits": 2}))
    (d / "model.safetensors").write_bytes(payload)
    return d


def test_verify_hub_download_good_and_tampered(tmp_path):
    payload = b"not really weights" * 100
    d = _hub_folder(tmp_path, payload)
    manifest = {
        "kronos-mini": {
            "hub_id": "NeoQuasar/Kronos-mini",
            "sha256": weights.sha256_file(d / "model.safetensors"),
            "bytes": len(payload),
        },
        "toto-open-base-1.0": {"hub_id": "Datadog/Toto-Open-Base-1.0", "sha256": None, "bytes": None},
    }
    good = registry.verify(d, manifest=manifest)  # matched by sha256
    assert good.ok and good.kind == "hub" and "OK" in good.lines[-1]
    (d / "model.safetensors").write_bytes(payload[:-1] + b"X")  # one byte changed
    bad = registry.verify(d, "kronos-mini", manifest=manifest)
    assert not bad.ok and "MISMATCH" in bad.lines[-1]
    unknown = registry.verify(d, "toto-open-base-1.0", manifest=manifest)
    assert not unknown.ok and "no published sha256" in unknown.lines[-1]
    assert not registry.verify(d, manifest={}).ok  # matches nothing, name unknown


def test_verify_jaxsim_folder_good_and_tampered(tmp_path):
    d = shutil.copytree(registry.default_weights_dir(), tmp_path / "m")
    assert registry.verify(d).ok
    raw = bytearray((d / "params.safetensors").read_bytes())
    raw[-3] ^= 0xFF
    (d / "params.safetensors").write_bytes(bytes(raw))
    res = registry.verify(d)
    assert not res.ok and "sha256 differs" in res.lines[0]
    with pytest.raises(CheckpointError, match="neither a hub download"):
        registry.verify(tmp_path)


def test_verify_catches_a_wrong_shape_with_a_fresh_manifest(tmp_path):
    """A folder rewritten consistently (manifest updated) but with a tensor of the wrong shape."""
    d = shutil.copytree(registry.default_weights_dir(), tmp_path / "m")
    model, cfg, params, _ = weights.load(d)
    params["df"]["bias"] = np.zeros(3, np.float32)
    weights.save(d, model=model, config=cfg, params=params)
    res = registry.verify(d)
    assert not res.ok and "df/bias" in res.lines[0]


def test_fetch_fails_fast_offline_with_manual_steps(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    with pytest.raises(registry.FetchUnavailableError) as e:
        registry.fetch("kronos-mini", tmp_path)
    msg = str(e.value)
    assert "huggingface_hub is not installed" in msg
    assert "huggingface-cli download NeoQuasar/Kronos-mini config.json model.safetensors --revision f4e68697" in msg
    assert f"jaxsim weights convert kronos-mini-hub {tmp_path}" in msg
    # installed but the hub does not answer
    monkeypatch.setitem(sys.modules, "huggingface_hub", type(sys)("huggingface_hub"))
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout: False)
    with pytest.raises(registry.FetchUnavailableError, match="did not answer within 3 s"):
        registry.fetch("toto-open-base-1.0", tmp_path)
    with pytest.raises(ConfigError, match="unknown checkpoint"):
        registry.fetch("gpt-5", tmp_path)


def test_hub_reachable_is_false_for_an_unroutable_address():
    assert registry.hub_reachable(timeout=0.5, url="http://127.0.0.1:9/") is False


def test_cli_weights_commands(tmp_path, monkeypatch, capsys):
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "Datadog/Toto-Open-Base-1.0" in out and "jaxsim-toto-tiny" in out
    assert cli.main(["weights", "verify", str(registry.default_weights_dir())]) == 0
    assert "verified" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert cli.main(["weights", "fetch", "toto-open-base-1.0", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Manual steps" in err and "jaxsim weights convert toto-open-base-1.0-hub" in err
    # convert a hub-layout Toto checkpoint (the small toto-ts fixture) through the CLI
    assert cli.main(["weights", "convert", str(FIXTURES / "checkpoint"), str(tmp_path), "--name", "small"]) == 0
    assert cli.main(["weights", "verify", str(tmp_path / "small")]) == 0
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    assert cli.main(["weights", "convert", str(tmp_path / "bad"), str(tmp_path)]) == 2


def test_default_weights_dir_is_the_committed_folder():
    """From a checkout it is <repo>/weights/<name>; from an installed wheel (CI tests the installed
    package) the package data inside jaxsim, byte-identical to the committed folder."""
    import jaxsim

    d = registry.default_weights_dir()
    files = ("config.json", "params.safetensors", "manifest.json", "training.json", "MODEL_CARD.md")
    committed = ROOT / "weights" / registry.DEFAULT_MODEL
    for f in files:
        assert (d / f).read_bytes() == (committed / f).read_bytes(), f
    pkg = Path(jaxsim.__file__).resolve().parent
    if pkg == ROOT / "jaxsim":
        assert d == committed
    else:
        assert d == pkg / "bundled_weights" / registry.DEFAULT_MODEL


@pytest.mark.slow
def test_wheel_ships_the_manifest_and_embedded_model(tmp_path):
    """``pip wheel .`` (no network: the venv's setuptools) contains jaxsim.bundled_weights."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "*.egg-info", "build", "dist", "__pycache__", ".pytest_cache", "tests", "notebooks", "benchmarks"
        ),
    )
    # offline with the environment's setuptools when it can build wheels, else pip's isolated build (PyPI)
    offline = importlib.util.find_spec("setuptools") and importlib.util.find_spec("wheel")
    flags = ["--no-build-isolation"] if offline else []
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *flags, "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    base = f"jaxsim/bundled_weights/{registry.DEFAULT_MODEL}/"
    assert "jaxsim/bundled_weights/manifest.json" in names
    assert {
        base + f for f in ("config.json", "params.safetensors", "manifest.json", "MODEL_CARD.md", "training.json")
    } <= names
    assert "jaxsim/models/registry.py" in names and "jaxsim/data/sample_data/AAPL.csv.gz" in names


def test_kronos_hub_folders_verify_and_convert(tmp_path):
    """The committed Kronos-mini / Tokenizer-2k fixtures have the official layout and file size but
    random weights: claimed as the official release they fail verification and conversion; unclaimed
    they convert (model and tokenizer detected from config.json) into verifiable jaxsim folders."""
    kronos = FIXTURES.parent / "kronos"
    mini, tok = kronos / "mini", kronos / "tokenizer-2k"
    official = registry.load_manifest()["kronos-mini"]
    assert (mini / "model.safetensors").stat().st_size == official["bytes"]
    res = registry.verify(mini, "kronos-mini")
    assert not res.ok and "MISMATCH" in res.lines[-1]
    with pytest.raises(CheckpointError, match="MISMATCH"):
        registry.convert(mini, tmp_path, name="kronos-mini")
    own = {"kronos-mini": dict(official, sha256=weights.sha256_file(mini / "model.safetensors"))}
    assert registry.verify(mini, manifest=own).ok  # matched by sha256
    out = registry.convert(mini, tmp_path)
    assert out == tmp_path / "mini" and registry.verify(out).ok
    out = registry.convert(tok, tmp_path)
    assert out == tmp_path / "tokenizer-2k" and registry.verify(out).ok
    assert (
        json.loads((out / "config.json").read_text())["model"]
        != json.loads((tmp_path / "mini" / "config.json").read_text())["model"]
    )
