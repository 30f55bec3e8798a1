"""Training configuration: :class:`TrainConfig`, the embedded model's architecture and the presets."""

from __future__ import annotations

import dataclasses

from jaxsim.errors import ConfigError
from jaxsim.models.toto.model import TotoConfig
from jaxsim.training.data import COLUMNS

__all__ = ["TINY_TOTO", "TrainConfig", "PRESETS"]

# The embedded default model: Toto's architecture (patch 64, same scaler, rotary/xPos, mixture head)
# at a tiny width and depth; about 0.5 M parameters, 2 MB of float32.
TINY_TOTO = TotoConfig(
    patch_size=64,
    embed_dim=64,
    num_layers=4,
    num_heads=4,
    mlp_hidden_dim=192,
    spacewise_every_n_layers=4,
    k_components=16,
    dropout=0.0,
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (hashable; written to ``training.json``).

    Attributes:
      model: architecture of a fresh model (ignored when ``init_from`` is set).
      symbols: bundled samples used for training and held-out evaluation.
      columns: price columns whose returns are training series.
      adjusted: split/dividend-adjusted prices (True avoids fake -50% split days).
      holdout_start: first held-out date (ISO); everything before it is training data.
      window_patches: window sizes n (patches) cycled step by step.
      tokens_per_batch: batch size for window size n is ``max(1, tokens_per_batch // n)``.
      steps, learning_rate, warmup_steps, weight_decay, clip_norm: AdamW with linear warmup and cosine
        decay to 10% of the peak, global-norm clipping.
      seed: seeds both the parameter init and the window sampler.
      objective: ``"nll"``, ``"pnl"`` or ``"nll+pnl"``.
      pnl_weight: weight of the P&L term in ``"nll+pnl"`` (the P&L is in fractions of the close).
      pnl_temperature: relaxation width of the surrogate (return units).
      init_from: weight folder to fine-tune from (config and params are read from it).
      log_every: steps between log lines and loss-curve points.
      eval_chunk: contexts per evaluation call.
    """

    model: TotoConfig = TINY_TOTO
    symbols: tuple[str, ...] = ("AAPL", "GOOG", "IBM", "MSFT")
    columns: tuple[str, ...] = COLUMNS
    adjusted: bool = True
    holdout_start: str = "2011-03-01"
    window_patches: tuple[int, ...] = (12, 24, 43)
    tokens_per_batch: int = 384
    steps: int = 1500
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    seed: int = 0
    objective: str = "nll"
    pnl_weight: float = 10.0
    pnl_temperature: float = 2e-3
    init_from: str | None = None
    log_every: int = 50
    eval_chunk: int = 256

    def __post_init__(self):
        if self.objective not in ("nll", "pnl", "nll+pnl"):
            raise ConfigError(f"objective must be nll, pnl or nll+pnl; got {self.objective!r}")
        bad = [c for c in self.columns if c not in COLUMNS]
        if bad or not self.columns:
            raise ConfigError(f"columns must be a non-empty subset of {COLUMNS}; got {self.columns}")
        if self.steps < 1 or not self.window_patches or min(self.window_patches) < 2:
            raise ConfigError("steps must be >= 1 and every window at least 2 patches")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = dataclasses.asdict(self.model)
        return d


PRESETS: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    # a few seconds: for tests and smoke runs
    "tiny": TrainConfig(
        model=TotoConfig(
            patch_size=64,
            embed_dim=16,
            num_layers=2,
            num_heads=2,
            mlp_hidden_dim=32,
            spacewise_every_n_layers=2,
            k_components=4,
            dropout=0.0,
        ),
        symbols=("IBM",),
        columns=("close",),
        window_patches=(4,),
        tokens_per_batch=16,
        steps=30,
        warmup_steps=5,
        learning_rate=1e-2,
        log_every=10,
    ),
}
