"""The compiled backtest: the pure program (:mod:`.program`), its shell API (:mod:`.api`), the
walk-forward protocol, forecasted P&L, results (:mod:`.result`), their figures (:mod:`.plots`, fed by
:mod:`.plot_data`) and resumable multi-stock runs (:mod:`.runs`)."""

from jaxsim.engine.api import backtest, backtest_many
from jaxsim.engine.result import BacktestResult
from jaxsim.engine.runs import RunReport, run_many

__all__ = ["backtest", "backtest_many", "BacktestResult", "run_many", "RunReport"]
