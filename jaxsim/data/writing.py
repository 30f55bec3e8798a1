"""Writing a price series back to a file (``jaxsim data clean IN OUT``).

The CSV has the columns ``load_prices`` reads first (Date, Open, High, Low, Close[, Volume]) and each
float32 value in its shortest decimal form that reads back to the same float32, so loading the
written file gives exactly the arrays that were written.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from jaxsim.atomic import write_file

__all__ = ["prices_csv", "save_prices"]


def _column(values: np.ndarray) -> list[str]:
    return [np.format_float_positional(v, unique=True, trim="-") for v in np.asarray(values, np.float32)]


def prices_csv(prices) -> bytes:
    """``prices`` as CSV bytes (ascending dates, one row per day)."""
    fields = [("Open", prices.open), ("High", prices.high), ("Low", prices.low), ("Close", prices.close)]
    if prices.volume is not None:
        fields.append(("Volume", prices.volume))
    columns = [[str(d) for d in prices.dates]] + [_column(v) for _, v in fields]
    lines = [",".join(["Date"] + [name for name, _ in fields])]
    lines += [",".join(row) for row in zip(*columns)]
    return ("\n".join(lines) + "\n").encode()


def save_prices(prices, path) -> Path:
    """Write ``prices`` as CSV to ``path`` atomically (temporary file, fsync, rename).

    ``.csv.gz`` paths are gzip-compressed; any other name is written as plain CSV.
    """
    path = Path(path)
    data = prices_csv(prices)
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    return write_file(path, data)
