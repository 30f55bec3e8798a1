"""What a finished backtest reads as, after one ``device_get``: results, tables, figures, warnings.

:mod:`.result` (:class:`~jaxsim.report.result.BacktestResult`), :mod:`.evaluation` (stats,
uncertainty, out-of-sample frames), :mod:`.plots` fed by :mod:`.plot_data`, :mod:`.checks` (warnings
about degenerate setups), :mod:`.comparison` and :mod:`.cross_stock` (tables across forecasters and
stocks), :mod:`.trades` (round trips) and :mod:`.html` (the HTML report, Jinja2 templates in
``templates/``). Nothing here runs the program.
"""

__all__: list[str] = []
