"""Strict hub -> jaxsim conversion of Kronos checkpoints, loading and pairing checks."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jaxsim.errors import CheckpointError
from jaxsim.models import weights
from jaxsim.models.kronos.checkpoint import convert_kronos_checkpoint, load_kronos
from jaxsim.models.kronos.model import KRONOS_MINI, TOKENIZER_2K

pytestmark = pytest.mark.strict_promotion(rank=False)  # Flax-style (D,) scales broadcast over (..., D)

FIX = Path(__file__).parent / "fixtures" / "kronos"


def hub_copy(tmp_path: Path, name: str, edit=None, config_edit=None) -> Path:
    """A copy of a fixture hub folder, with its state dict and/or config.json edited."""
    dst = tmp_path / f"{name}-edited"
    dst.mkdir()
    cfg = json.loads((FIX / name / "config.json").read_text())
    if config_edit:
        config_edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg))
    if edit is None:
        shutil.copy(FIX / name / "model.safetensors", dst / "model.safetensors")
    else:
        state = load_file(str(FIX / name / "model.safetensors"))
        edit(state)
        save_file(state, str(dst / "model.safetensors"))
    return dst


def test_convert_records_sha_and_round_trips(tmp_path):
    m = convert_kronos_checkpoint(FIX / "mini", tmp_path / "m", kind="model")
    t = convert_kronos_checkpoint(FIX / "tokenizer-2k", tmp_path / "t", kind="tokenizer")
    manifest = json.loads((m / "manifest.json").read_text())
    assert manifest["source_sha256"] == weights.sha256_file(FIX / "mini" / "model.safetensors")
    assert manifest["known_release"] is None  # random weights, not a published file
    assert manifest["parameters"] == KRONOS_MINI.num_params()
    a = load_kronos(m, t)
    b = load_kronos(FIX / "mini", FIX / "tokenizer-2k")  # hub folders, converted in memory
    assert a.model_config == b.model_config == KRONOS_MINI and a.tokenizer_config == TOKENIZER_2K
    fa, fb = weights.flatten(a.model_params), weights.flatten(b.model_params)
    assert fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa)
    # Linear weights are transposed, per-layer tensors stacked
    state = load_file(str(FIX / "mini" / "model.safetensors"))
    np.testing.assert_array_equal(
        fa["transformer/self_attn/q_proj/kernel"][2], state["transformer.2.self_attn.q_proj.weight"].T
    )
    np.testing.assert_array_equal(fa["embedding/emb_s1/embedding"], state["embedding.emb_s1.weight"])


def test_buffers_may_be_absent(tmp_path):
    drop = lambda s: [s.pop(k) for k in list(s) if k.endswith("inv_freq") or k.startswith("tokenizer.bsq")]
    convert_kronos_checkpoint(hub_copy(tmp_path, "mini", drop), tmp_path / "m")
    convert_kronos_checkpoint(hub_copy(tmp_path, "tokenizer-2k", drop), tmp_path / "t", kind="tokenizer")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("transformer.3.ffn.w2.weight"), "layer indices \\[0, 1, 2\\]"),
        (lambda s: s.pop("head.proj_s2.bias"), "missing"),
        (lambda s: s.update({"transformer.4.norm1.weight": np.ones(256, np.float32)}), "layer indices"),
        (lambda s: s.update({"extra.weight": np.ones(3, np.float32)}), "unexpected"),
        (lambda s: s.update({"norm.weight": np.ones(255, np.float32)}), "wrong shapes"),
        (lambda s: s.update({"dep_layer.cross_attn.rotary.inv_freq": np.ones(32, np.float32)}), "inv_freq"),
        (lambda s: s.update({"norm.weight": s["norm.weight"].astype(np.float16)}), "dtype"),
    ],
)
def test_model_conversion_is_strict(tmp_path, edit, message):
    with pytest.raises(CheckpointError, match=message):
        convert_kronos_checkpoint(hub_copy(tmp_path, "mini", edit), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tokenizer_group_basis_must_match_config(tmp_path):
    src = hub_copy(tmp_path, "tokenizer-2k", config_edit=lambda c: c.update(group_size=4))
    with pytest.raises(CheckpointError, match="group_size"):
        convert_kronos_checkpoint(src, tmp_path / "t", kind="tokenizer")


def test_pairing_and_kind_checks(tmp_path):
    base_tok = hub_copy(
        tmp_path, "tokenizer-2k", lambda s: s.pop("tokenizer.bsq.group_basis"), lambda c: c.update(group_size=4)
    )
    with pytest.raises(CheckpointError, match="kronos-tokenizer-2k"):
        load_kronos(FIX / "mini", base_tok)
    with pytest.raises(CheckpointError, match="tokenizer checkpoint"):
        convert_kronos_checkpoint(FIX / "tokenizer-2k", tmp_path / "x", kind="model")
    with pytest.raises(CheckpointError, match="not the published file"):
        convert_kronos_checkpoint(FIX / "mini", tmp_path / "x", hub_id="NeoQuasar/Kronos-mini")
    with pytest.raises(CheckpointError, match="missing config.json"):
        convert_kronos_checkpoint(tmp_path, tmp_path / "x")
    truncated = hub_copy(tmp_path, "mini")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read"):
        convert_kronos_checkpoint(truncated, tmp_path / "x")
