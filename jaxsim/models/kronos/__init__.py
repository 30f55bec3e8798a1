"""Kronos: tokenizer and autoregressive model (:mod:`.model`), the predictor (:mod:`.predict`) and the
checkpoint converter (:mod:`.checkpoint`)."""

from jaxsim.models.kronos.model import (
    KRONOS_BASE,
    KRONOS_MINI,
    KRONOS_SMALL,
    TOKENIZER_2K,
    TOKENIZER_BASE,
    KronosConfig,
    KronosTokenizerConfig,
)

__all__ = [
    "KronosConfig",
    "KronosTokenizerConfig",
    "KRONOS_MINI",
    "KRONOS_SMALL",
    "KRONOS_BASE",
    "TOKENIZER_2K",
    "TOKENIZER_BASE",
]
