"""The compiled backtest program, pure: forecasts -> simulations -> strategies -> records.

:mod:`.program` (the one jitted program per setup and shape), :mod:`.walk_forward` (MaxDiff
re-scored with multipliers fitted on an earlier window), :mod:`.oos` (the out-of-sample fields the
program returns), :mod:`.forecasted_pnl` (each strategy's P&L forecast), :mod:`.daily_forecasted_pnl` (the same
forecast as of every day, a separate opt-in program for the portfolio), :mod:`.compilation` (how
programs are compiled, reported and kept on disk) and :mod:`.xla_cpu` (the XLA:CPU settings jaxsim
needs). No pandas, no files: the shell that calls it is :mod:`jaxsim.shell`, what reads its output
is :mod:`jaxsim.report`.
"""

__all__: list[str] = []
