"""Price data: loading, validation and cleaning (:mod:`.prices`, :mod:`.table`), bundled samples."""

from jaxsim.data.prices import (
    CleaningReport,
    DataProblem,
    Prices,
    PriceSummary,
    as_prices,
    available_samples,
    check_history,
    describe_prices,
    load_prices,
    required_rows,
    sample,
    sample_dir,
)

__all__ = [
    "Prices",
    "PriceSummary",
    "CleaningReport",
    "DataProblem",
    "load_prices",
    "describe_prices",
    "required_rows",
    "check_history",
    "sample",
    "available_samples",
    "sample_dir",
    "as_prices",
]
