"""Toto hub -> jaxsim converter and loader: fused and native MLP names, every problem listed at once,
sha256 recorded, shape checks on load."""

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from toto_helpers import FIXTURES

from jaxsim.errors import CheckpointError
from jaxsim.models import weights
from jaxsim.models.toto.checkpoint import config_from_hub, convert_toto_checkpoint, hub_to_params, load_toto
from jaxsim.models.toto.model import TOTO_SMALL, count_params

pytestmark = pytest.mark.strict_promotion(rank=False)  # Flax-style (D,) scales broadcast over (..., D)

SRC = FIXTURES / "checkpoint"


def _copy_with(tmp_path, mutate):
    dst = tmp_path / "hub"
    shutil.copytree(SRC, dst)
    state = load_file(str(dst / "model.safetensors"))
    state = mutate(dict(state))
    save_file(state, str(dst / "model.safetensors"))
    return dst


def test_convert_and_load_roundtrip(tmp_path):
    out = convert_toto_checkpoint(SRC, tmp_path, name="small")
    assert out == tmp_path / "small"
    config, params = load_toto(out)
    assert config == TOTO_SMALL and count_params(params) == 201_292
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source_sha256"] == weights.sha256_file(SRC / "model.safetensors")
    assert manifest["source_tensors"] == 2 + 4 * 10 + 2 + 8
    # QKV permutation: upstream feature c*D + d*H + h  ->  jaxsim c*D + h*hd + d (docs/models.md#kronos-blocks)
    w = load_file(str(SRC / "model.safetensors"))["model.transformer.layers.0.attention.wQKV.weight"]
    k = np.asarray(params["blocks"]["time"]["attention"]["wQKV"]["kernel"][0, 0])  # layer 0 = block 0, time 0
    c, d, h = 1, 3, 2  # k, feature d of head h
    np.testing.assert_array_equal(k[:, c * 64 + h * 16 + d], w[c * 64 + d * 4 + h])
    # layer 3 is block 1's space-wise layer; SwiGLU out kernel is W3^T
    w3 = load_file(str(SRC / "model.safetensors"))["model.transformer.layers.3.mlp.0.w3.weight"]
    np.testing.assert_array_equal(params["blocks"]["space"]["mlp"]["w3"]["kernel"][1], w3.T)


def test_native_mlp_names_and_rotary_buffer_give_identical_params(tmp_path):
    def to_native(state):
        out = {}
        for k, v in state.items():
            out[k.replace("mlp.0.w12.", "mlp.0.").replace("mlp.0.w3.", "mlp.2.")] = v
        out["model.transformer.rotary_emb.freqs"] = np.arange(8, dtype=np.float32)
        return out

    src = _copy_with(tmp_path, to_native)
    _, a = load_toto(convert_toto_checkpoint(src, tmp_path / "w", name="native"))
    _, b = load_toto(convert_toto_checkpoint(SRC, tmp_path / "w", name="fused"))
    fa, fb = weights.flatten(a), weights.flatten(b)
    assert fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa)


def test_every_problem_is_listed_at_once(tmp_path):
    def break_it(state):
        del state["model.transformer.layers.1.norm2.scale"]
        state["model.transformer.layers.2.attention.wO.weight"] = np.zeros((64, 63), np.float32)
        state["model.extra.weight"] = np.zeros(3, np.float32)
        state["model.transformer.layers.0.mlp.0.weight"] = state["model.transformer.layers.0.mlp.0.w12.weight"]
        return state

    with pytest.raises(CheckpointError) as e:
        convert_toto_checkpoint(_copy_with(tmp_path, break_it), tmp_path / "w")
    msg = str(e.value)
    for needle in (
        "layer 1: missing norm2/scale",
        "layers.2.attention.wO.weight: got shape (64, 63)",
        "model.extra.weight: unexpected",
        "layers.0.mlp.0.weight: duplicate",
        "4 problems",
    ):
        assert needle in msg, msg
    assert not (tmp_path / "w").exists()


def test_config_and_folder_errors(tmp_path):
    hub = json.loads((SRC / "config.json").read_text())
    with pytest.raises(CheckpointError, match="scaler_cls"):
        config_from_hub({**hub, "scaler_cls": "<class 'model.scaler.StdMeanScaler'>"})
    with pytest.raises(CheckpointError, match="unknown config keys foo"):
        config_from_hub({**hub, "foo": 1})
    with pytest.raises(CheckpointError, match="missing config.json and model.safetensors"):
        convert_toto_checkpoint(tmp_path, tmp_path / "w")
    # a weight folder whose tensors do not match its config is refused on load
    out = convert_toto_checkpoint(SRC, tmp_path / "w", name="small")
    cfg = json.loads((out / "config.json").read_text())
    cfg["config"]["mlp_hidden_dim"] = 96
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="wrong shapes"):
        load_toto(out)
    cfg["model"] = "kronos"
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="not toto"):
        load_toto(out)
    with pytest.raises(CheckpointError, match="missing"):
        hub_to_params({}, TOTO_SMALL)
