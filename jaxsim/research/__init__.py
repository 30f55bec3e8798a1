"""Strategy research on forecasts computed once: :mod:`.strategy_data` (what user strategies see),
:mod:`.tune` (walk-forward gradient tuning) and :mod:`.lookahead` (the look-ahead guard rail)."""

__all__: list[str] = []
