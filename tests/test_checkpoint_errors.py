"""Corrupt checkpoints and weight folders: each a clear CheckpointError, nothing half-loaded or half-written.

Covers the jaxsim weight store (:mod:`jaxsim.models.weights`, :func:`load_toto`, ``forecasters.toto``)
and the hub converters (Toto; Kronos once its module is present): truncated files, files that are not
safetensors, missing / extra / mis-shaped tensors, a config that does not match the tensors, a
sha256 mismatch, missing or unreadable JSON. After a failed conversion the destination holds exactly
what it held before (an earlier good folder stays byte-identical and loadable; no temporary folders).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jaxsim import forecasters
from jaxsim.errors import CheckpointError
from jaxsim.models import weights
from jaxsim.models.toto.checkpoint import convert_toto_checkpoint, load_toto

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOTO_HUB = FIXTURES / "toto" / "checkpoint"


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------------
# The jaxsim weight store and load_toto.


@pytest.fixture(scope="module")
def toto_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    return convert_toto_checkpoint(TOTO_HUB, root, name="toto-tiny")


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _resave(folder: Path, edit) -> Path:
    """Rewrite a Toto weight folder with edited flat params (a consistent manifest: only shapes are wrong)."""
    model, cfg, params, _ = weights.load(folder)
    flat = weights.flatten(params)
    edit(flat)
    return weights.save(folder, model=model, config=cfg, params=weights.unflatten(flat))


def test_good_folder_loads_and_builds_a_forecaster(toto_folder):
    config, params = load_toto(toto_folder)
    assert config.embed_dim == 64 and config.patch_size == 8
    f = forecasters.toto(toto_folder, num_samples=8)
    assert f.config == config and f.num_samples == 8


def test_truncated_params(toto_folder, tmp_path):
    folder = _copy(toto_folder, tmp_path)
    data = (folder / weights.PARAMS_FILE).read_bytes()
    (folder / weights.PARAMS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="sha256 differs"):
        load_toto(folder)
    with pytest.raises(CheckpointError, match="cannot be read"):
        weights.load(folder, verify=False)
    with pytest.raises(CheckpointError):
        forecasters.toto(folder)


def test_flipped_byte_is_a_sha256_mismatch(toto_folder, tmp_path):
    folder = _copy(toto_folder, tmp_path)
    data = bytearray((folder / weights.PARAMS_FILE).read_bytes())
    data[-5] ^= 0xFF  # inside the last tensor: still a readable file
    (folder / weights.PARAMS_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_toto(folder)


@pytest.mark.parametrize("name", [weights.PARAMS_FILE, weights.CONFIG_FILE, weights.MANIFEST_FILE])
def test_missing_file(toto_folder, tmp_path, name):
    folder = _copy(toto_folder, tmp_path)
    (folder / name).unlink()
    with pytest.raises(CheckpointError, match=f"missing {name}"):
        load_toto(folder)


@pytest.mark.parametrize("name", [weights.CONFIG_FILE, weights.MANIFEST_FILE])
def test_unreadable_json(toto_folder, tmp_path, name):
    folder = _copy(toto_folder, tmp_path)
    (folder / name).write_text('{"model": "toto", ')
    with pytest.raises(CheckpointError, match="unreadable JSON"):
        load_toto(folder)


def test_missing_extra_and_misshaped_tensors_are_all_listed(toto_folder, tmp_path):
    folder = _copy(toto_folder, tmp_path)
    names = sorted(weights.flatten(weights.load(folder)[2]))
    gone, bent = names[0], names[-1]

    def edit(flat):
        del flat[gone]
        flat["blocks/extra/kernel"] = np.zeros((3, 3), np.float32)
        flat[bent] = np.zeros(flat[bent].shape + (2,), np.float32)

    _resave(folder, edit)
    with pytest.raises(CheckpointError) as info:
        load_toto(folder)
    message = str(info.value)
    for words in (
        "missing tensors (1): " + gone,
        "unexpected tensors (1): blocks/extra/kernel",
        "wrong shapes (1): " + bent,
    ):
        assert words in message, message


def test_config_that_does_not_match_the_tensors(toto_folder, tmp_path):
    folder = _copy(toto_folder, tmp_path)
    cfg = json.loads((folder / weights.CONFIG_FILE).read_text())
    cfg["config"]["embed_dim"] = 32  # the tensors are 64 wide
    (folder / weights.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="wrong shapes"):
        load_toto(folder)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"num_heads": 5}, "bad Toto config"),  # 64 is not divisible by 5
        ({"num_experts": 4}, "bad Toto config"),  # unknown field
    ],
)
def test_invalid_config(toto_folder, tmp_path, change, words):
    folder = _copy(toto_folder, tmp_path)
    cfg = json.loads((folder / weights.CONFIG_FILE).read_text())
    cfg["config"].update(change)
    (folder / weights.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=words):
        load_toto(folder)


def test_other_model_kind(toto_folder, tmp_path):
    folder = _copy(toto_folder, tmp_path)
    cfg = json.loads((folder / weights.CONFIG_FILE).read_text())
    cfg["model"] = "kronos"
    (folder / weights.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="not toto"):
        load_toto(folder)


def test_failed_save_leaves_the_old_folder(toto_folder, tmp_path, monkeypatch):
    import safetensors.numpy

    folder = _copy(toto_folder, tmp_path)
    before = _tree_bytes(folder)
    model, cfg, params, _ = weights.load(folder)

    def broken(tensors, path, *a, **kw):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(OSError):
        weights.save(folder, model=model, config=cfg, params=params)
    with pytest.raises(OSError):
        weights.save(tmp_path / "new", model=model, config=cfg, params=params)
    assert _tree_bytes(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no new folder, no temporary


# ----------------------------------------------------------------------------------------------------
# Hub converters: every corruption raises, the destination keeps what it had.


def _toto_convert(src, dst_root):
    return convert_toto_checkpoint(src, dst_root, name="conv")


CONVERTERS = {"toto": (TOTO_HUB, _toto_convert, load_toto)}
try:  # the Kronos converter lands on its own branch
    from jaxsim.models.kronos import checkpoint as kc
except ImportError:  # pragma: no cover
    kc = None
if kc is not None:
    for _kind, _sub in (("model", "mini"), ("tokenizer", "tokenizer-2k")):
        _hub = FIXTURES / "kronos" / _sub
        if _hub.is_dir():
            CONVERTERS[f"kronos-{_kind}"] = (
                _hub,
                lambda src, dst, _kind=_kind: kc.convert_kronos_checkpoint(src, Path(dst) / "conv", kind=_kind),
                lambda folder, _kind=_kind: kc._load_one(
                    folder, kc.MODEL_KIND if _kind == "model" else kc.TOKENIZER_KIND
                ),
            )


def _edit_state(src: Path, edit) -> None:
    state = dict(load_file(str(src / "model.safetensors")))
    edit(state)
    save_file(state, str(src / "model.safetensors"))


def _largest(state) -> str:
    return max(sorted(state), key=lambda k: state[k].size)


def _scale_config(src: Path) -> str:
    cfg = json.loads((src / "config.json").read_text())
    for key in ("embed_dim", "d_model"):
        if key in cfg:
            cfg[key] *= 2
            (src / "config.json").write_text(json.dumps(cfg))
            return key
    raise AssertionError(f"no width key in {sorted(cfg)}")


CORRUPTIONS = {
    "truncated": (
        lambda s: (s / "model.safetensors").write_bytes((s / "model.safetensors").read_bytes()[:4096]),
        "cannot be read",
    ),
    "not_safetensors": (lambda s: (s / "model.safetensors").write_bytes(b"\x00" * 64), "cannot be read"),
    "missing_tensor": (lambda s: _edit_state(s, lambda st: st.pop(_largest(st))), ""),
    "extra_tensor": (
        lambda s: _edit_state(s, lambda st: st.update({"model.surplus.weight": np.ones((2, 2), np.float32)})),
        "surplus",
    ),
    "wrong_shape": (
        lambda s: _edit_state(s, lambda st: st.update({_largest(st): st[_largest(st)][..., :-1].copy()})),
        "",
    ),
    "config_mismatch": (_scale_config, ""),
    "missing_config": (lambda s: (s / "config.json").unlink(), "missing config.json"),
    "bad_json": (lambda s: (s / "config.json").write_text("{"), "unreadable JSON"),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """converter name -> a weights root holding one good conversion ``conv`` (made once per module)."""
    cache = {}

    def get(name):
        if name not in cache:
            hub, convert, _ = CONVERTERS[name]
            root = tmp_path_factory.mktemp(name)
            assert convert(hub, root) == root / "conv"
            cache[name] = root
        return cache[name]

    return get


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("converter", sorted(CONVERTERS))
def test_converter_rejects_corrupt_source_and_writes_nothing(tmp_path, converted, converter, corruption):
    hub, convert, load = CONVERTERS[converter]
    dst = tmp_path / "weights"
    shutil.copytree(converted(converter), dst)  # an earlier good conversion at the same destination
    good = dst / "conv"
    before = _tree_bytes(dst)
    src = _copy(hub, tmp_path / "src")
    corrupt, words = CORRUPTIONS[corruption]
    corrupt(src)
    with pytest.raises(CheckpointError, match=words or None):
        convert(src, dst)
    assert _tree_bytes(dst) == before  # nothing half-written, no temporary folder
    load(good)


def test_toto_sha256_mismatch_with_the_published_hash(tmp_path, monkeypatch):
    import jaxsim.models.toto.checkpoint as tc

    monkeypatch.setitem(tc.KNOWN_SHA256, "conv", "0" * 64)
    with pytest.raises(CheckpointError, match="differs from the published"):
        _toto_convert(TOTO_HUB, tmp_path / "weights")
    assert not (tmp_path / "weights" / "conv").exists()
    monkeypatch.setitem(tc.KNOWN_SHA256, "conv", weights.sha256_file(TOTO_HUB / "model.safetensors"))
    load_toto(_toto_convert(TOTO_HUB, tmp_path / "weights"))


def test_toto_unsupported_hub_config(tmp_path):
    src = _copy(TOTO_HUB, tmp_path / "src")
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(stride=4, rope="yarn")
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as info:
        _toto_convert(src, tmp_path / "weights")
    assert "stride 4" in str(info.value) and "unknown config keys rope" in str(info.value)
    assert not (tmp_path / "weights").exists() or not any((tmp_path / "weights").iterdir())


@pytest.mark.skipif(kc is None or not (FIXTURES / "kronos" / "mini").is_dir(), reason="Kronos fixtures absent")
def test_kronos_sha256_claim_and_pairing(tmp_path):
    hub_id = next(iter(kc.KNOWN_SHA256.values()))
    with pytest.raises(CheckpointError, match="sha256"):
        kc.convert_kronos_checkpoint(FIXTURES / "kronos" / "mini", tmp_path / "m", hub_id=hub_id)
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []
    # a tokenizer folder where a model is expected, and the reverse
    with pytest.raises(CheckpointError, match="tokenizer checkpoint"):
        kc.convert_kronos_checkpoint(FIXTURES / "kronos" / "tokenizer-2k", tmp_path / "m", kind="model")
    with pytest.raises(CheckpointError, match="not a tokenizer"):
        kc.convert_kronos_checkpoint(FIXTURES / "kronos" / "mini", tmp_path / "t", kind="tokenizer")
    model = kc.convert_kronos_checkpoint(FIXTURES / "kronos" / "mini", tmp_path / "m")
    tok = kc.convert_kronos_checkpoint(FIXTURES / "kronos" / "tokenizer-2k", tmp_path / "t", kind="tokenizer")
    bundle = kc.load_kronos(model, tok)
    assert bundle is not None
    with pytest.raises(CheckpointError, match="expected"):
        kc.load_kronos(tok, model)  # swapped folders


@pytest.mark.skipif(kc is None or not (FIXTURES / "kronos" / "mini").is_dir(), reason="Kronos fixtures absent")
@pytest.mark.parametrize("change", ["config_mismatch", "truncated", "bad_config_field"])
def test_kronos_weight_folder_errors(tmp_path, change):
    folder = kc.convert_kronos_checkpoint(FIXTURES / "kronos" / "mini", tmp_path / "m")
    if change == "config_mismatch":
        cfg = json.loads((folder / weights.CONFIG_FILE).read_text())
        cfg["config"]["d_model"] *= 2
        (folder / weights.CONFIG_FILE).write_text(json.dumps(cfg))
    elif change == "truncated":
        data = (folder / weights.PARAMS_FILE).read_bytes()
        (folder / weights.PARAMS_FILE).write_bytes(data[:1000])
    else:
        cfg = json.loads((folder / weights.CONFIG_FILE).read_text())
        cfg["config"]["rope_scaling"] = 2.0
        (folder / weights.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError):
        kc._load_one(folder, kc.MODEL_KIND)
