"""jaxsim.cli.hyperparams: the original's per-symbol files (best/, kronos/, toto/), hand-written here."""

import json

import pytest

from jaxsim.cli.hyperparams import KRONOS_DEFAULTS, TOTO_DEFAULTS, read_hyperparams
from jaxsim.errors import ConfigError


def _write(root, kind, symbol, payload):
    (root / kind).mkdir(parents=True, exist_ok=True)
    (root / kind / f"{symbol}.json").write_text(json.dumps(payload))


def test_kronos_symbol(tmp_path):
    # The shape of the original's files: config plus scores and metadata that are not read.
    _write(
        tmp_path,
        "best",
        "GOOGL",
        {
            "symbol": "GOOGL",
            "model": "Kronos",
            "config": {"name": "x", "num_samples": 5},
            "config_path": "hyperparams/kronos/GOOGL.json",
            "selection_metric": "test_pct_return_mae",
        },
    )
    _write(
        tmp_path,
        "kronos",
        "GOOGL",
        {
            "symbol": "GOOGL",
            "model": "kronos",
            "config": {
                "name": "kronos_t0.15_p0.82",
                "temperature": 0.15,
                "top_p": 0.82,
                "top_k": 0,
                "sample_count": 160,
                "max_context": 192,
                "clip": 1.8,
            },
            "validation": {"price_mae": 1.2, "pct_return_mae": 0.01, "latency_s": 3.0},
            "windows": {"val_window": 20, "test_window": 20, "forecast_horizon": 1},
            "metadata": {},
        },
    )
    h = read_hyperparams(tmp_path, "googl")
    assert h.model == "kronos" and h.symbol == "GOOGL"
    assert h.kronos == {
        "temperature": 0.15,
        "top_p": 0.82,
        "top_k": 0,
        "sample_count": 160,
        "max_context": 192,
        "clip": 1.8,
    }
    assert h.kronos_options() == {
        "sample_count": 160,
        "lookback": 192,
        "temperature": 0.15,
        "top_p": 0.82,
        "top_k": 0,
        "clip": 1.8,
    }
    assert h.toto == TOTO_DEFAULTS  # best/'s own config is ignored, as the original does
    assert len(h.files) == 2 and "kronos (temperature=0.15" in h.describe()


def test_toto_symbol_and_clamp(tmp_path):
    _write(tmp_path, "best", "AAPL", {"model": "toto"})
    _write(
        tmp_path,
        "toto",
        "AAPL",
        {"config": {"num_samples": 64, "samples_per_batch": 32, "aggregate": "trimmed_mean_20"}},
    )
    h = read_hyperparams(tmp_path, "AAPL")
    assert h.model == "toto" and h.toto == {"num_samples": 128, "aggregate": "trimmed_mean_20"}  # clamped up
    _write(tmp_path, "toto", "AAPL", {"config": {"num_samples": 9000}})
    assert read_hyperparams(tmp_path, "AAPL").toto == {"num_samples": 4096, "aggregate": "trimmed_mean_10"}


def test_missing_files_take_the_original_defaults(tmp_path):
    h = read_hyperparams(tmp_path, "IBM")
    assert h.model == "toto" and h.kronos == KRONOS_DEFAULTS and h.toto == TOTO_DEFAULTS and h.files == ()
    _write(tmp_path, "kronos", "IBM", {"config": {"temperature": 0.3}})  # partial: other keys default
    assert read_hyperparams(tmp_path, "IBM").kronos == {**KRONOS_DEFAULTS, "temperature": 0.3}


def test_bad_files_are_named(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "X.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"best/X.json: not readable JSON"):
        read_hyperparams(tmp_path, "X")
    _write(tmp_path, "best", "X", {"model": "chronos2"})
    with pytest.raises(ConfigError, match="model 'chronos2' is not supported"):
        read_hyperparams(tmp_path, "X")
    _write(tmp_path, "best", "X", {"model": "kronos"})
    _write(tmp_path, "kronos", "X", {"config": {"top_k": "many"}})
    with pytest.raises(ConfigError, match=r"config.top_k = 'many' is not a number"):
        read_hyperparams(tmp_path, "X")
