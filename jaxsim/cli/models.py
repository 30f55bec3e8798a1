"""The forecasters the command line can name (``--model``, ``--models``), built one way for every command."""

from __future__ import annotations

from jaxsim.errors import JaxsimError

__all__ = ["MODELS", "POINT_MODELS", "make_forecaster"]

MODELS = ("default", "naive", "historical-mean", "volatility", "toto", "kronos")
POINT_MODELS = ("naive", "historical-mean")  # point forecasters: no samples to set


def make_forecaster(
    name: str,
    *,
    weights=None,
    tokenizer=None,
    samples: int | None = None,
    kronos_options: dict | None = None,
    flag: str = "--model",
):
    """The forecaster called ``name``.

    Args:
      name: one of :data:`MODELS`.
      weights, tokenizer: converted weight folders (toto: weights; kronos: both).
      samples: Toto's (or the volatility baseline's) draws per context, or Kronos' averaged sample
        paths (``sample_count``); None: the model's own.
      kronos_options: further Kronos sampling options (temperature, top_p, ...).
      flag: the option that named the model, for messages.
    """
    from jaxsim import forecasters  # deferred: JAX; the parser imports this module

    if name not in MODELS:
        raise JaxsimError(f"unknown model {name!r} in {flag}; choose from {', '.join(MODELS)}")
    if name in POINT_MODELS:
        if samples is not None:
            raise JaxsimError(f"--samples does not apply to {flag} {name} (a point forecaster)")
        return forecasters.naive() if name == "naive" else forecasters.historical_mean()
    draws = {} if samples is None else {"num_samples": samples}
    if name == "volatility":
        return forecasters.volatility(**draws)  # the 20-day historical-volatility Gaussian baseline
    if name == "default":
        return forecasters.default(**draws)  # the embedded model trained by jaxsim (weights/jaxsim-toto-tiny)
    if name == "toto":
        if not weights:
            raise JaxsimError(f"{flag} toto needs --weights DIR (a converted Toto weight folder)")
        return forecasters.toto(weights, **draws)
    if not (weights and tokenizer):
        raise JaxsimError(f"{flag} kronos needs --weights DIR and --tokenizer DIR")
    options = dict(kronos_options or {})
    if samples is not None:
        options["sample_count"] = samples
    return forecasters.kronos(weights, tokenizer, **options)
