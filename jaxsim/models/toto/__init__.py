"""Toto: the Flax model (:mod:`.model`), next-step forecasting and sampling (:mod:`.forecast`) and the
checkpoint converter (:mod:`.checkpoint`)."""

from jaxsim.models.toto.model import TOTO_BASE, TOTO_SMALL, TotoConfig, init_toto, toto_forward

__all__ = ["TotoConfig", "TOTO_BASE", "TOTO_SMALL", "init_toto", "toto_forward"]
