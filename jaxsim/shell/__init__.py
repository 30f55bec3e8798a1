"""The imperative shell around the compiled program: sources in, results out.

:mod:`.plan` (the one pipeline: prepared stocks, shape groups, setups and per-stock keys),
:mod:`.api` (:func:`backtest`, :func:`backtest_many`), :mod:`.runs` (resumable multi-stock runs
into a folder, :mod:`.manifest` its bookkeeping), :mod:`.distributed` (across processes) and
:mod:`.compare` (one stock, several forecasters).
"""

__all__: list[str] = []
