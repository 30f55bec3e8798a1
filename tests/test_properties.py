"""Property-based tests (hypothesis) of load_prices and backtest over generated price frames.

Invalid input (NaN/inf, zero or negative prices, High < Low, duplicate or unparseable dates, missing
or non-numeric columns, no rows, too short a history, bad options) must raise a typed error from
:mod:`jaxsim.errors` that names the problem; valid input (constant series, flat bars, zero volume, 10x
splits, spikes, tiny and huge price levels, unsorted rows, 20,000-row histories) must give records and
summaries without NaN or inf.

Compiles are kept few: every backtest here uses N = 5 and a context cap of 32, so all histories of
>= 45 rows share one program per forecaster; the short-history and uncapped long-history checks add
one program each. Examples are bounded and ``deadline=None`` (the first example of a shape compiles).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import CAP, EVENTS, HIST, N_SIMS, NAIVE, SAMPLED, non_finite_fields, synthetic_frame

from jaxsim import errors
from jaxsim.data.prices import Prices, load_prices, required_rows
from jaxsim.shell.api import backtest

PROPS = settings(
    deadline=None,
    max_examples=int(os.environ.get("JAXSIM_PROP_EXAMPLES", 25)),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)
LENGTHS = (45, 60, 250, 20_000)  # all >= 45 rows: one compiled program per forecaster under the cap
LEVELS = (1e-4, 0.37, 50.0, 9_999.0, 1e6)
VOLS = (0.0, 1e-4, 0.02, 0.15)
FORECASTERS = {"naive": NAIVE, "historical_mean": HIST, "sampled": SAMPLED}
# (forecaster, protocol) pairs: three compiled programs; the naive forecaster is covered by the
# short- and long-history tests below.
SETUPS = (("sampled", "legacy"), ("sampled", "walk_forward"), ("historical_mean", "legacy"))


@st.composite
def frames(draw, lengths=LENGTHS):
    n = draw(st.sampled_from(lengths))
    return synthetic_frame(
        n,
        draw(st.integers(0, 2**31 - 1)),
        level=draw(st.sampled_from(LEVELS)),
        vol=draw(st.sampled_from(VOLS)),
        events=tuple(draw(st.sets(st.sampled_from(EVENTS), max_size=3))),
    )


def _via(frame: pd.DataFrame, as_csv: bool, **kw) -> Prices:
    """load_prices on the frame itself or on a CSV written from it."""
    if not as_csv:
        return load_prices(frame, **kw)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "GEN.csv")
        frame.to_csv(path, index=False)
        return load_prices(path, **kw)


# ----------------------------------------------------------------------------------------------------
# Valid input: no NaN or inf anywhere.


@PROPS
@given(frame=frames(), setup=st.sampled_from(SETUPS), as_csv=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_valid_frames_give_finite_results(frame, setup, as_csv, seed):
    import jax

    prices = _via(frame, as_csv, symbol="GEN")
    assert len(prices) == len(frame)
    forecaster, protocol = setup
    result = backtest(
        prices, FORECASTERS[forecaster], n_sims=N_SIMS, max_context=CAP, protocol=protocol, key=jax.random.key(seed)
    )
    assert result.n_sims == N_SIMS
    assert non_finite_fields(result) == []
    assert (result.records["close"].to_numpy() > 0).all()


@settings(PROPS, max_examples=10)
@given(frame=frames(lengths=(60, 250)))
def test_unsorted_rows_are_sorted_and_give_the_same_backtest(frame):
    shuffled = frame.sample(frac=1.0, random_state=1)
    a, b = load_prices(frame, symbol="GEN"), load_prices(shuffled, symbol="GEN")
    c = load_prices(frame.iloc[::-1], symbol="GEN")  # newest first (Quandl WIKI layout)
    for p in (b, c):
        for f in ("dates", "open", "high", "low", "close", "volume"):
            x, y = getattr(a, f), getattr(p, f)
            assert (x is None and y is None) or np.array_equal(x, y)
    ra, rb = (backtest(p, SAMPLED, n_sims=N_SIMS, max_context=CAP, protocol="legacy") for p in (a, b))
    pd.testing.assert_frame_equal(ra.records, rb.records, check_exact=True)


def test_shortest_valid_history_is_finite():
    """T = N + 9 rows (the minimum): price windows reach before row 0 and are masked, not NaN."""
    frame = synthetic_frame(required_rows(N_SIMS), 3, events=("split_up",))
    result = backtest(load_prices(frame, symbol="GEN"), NAIVE, n_sims=N_SIMS, protocol="legacy")
    assert non_finite_fields(result) == []


def test_20000_row_history_without_cap_is_finite():
    """The whole 20,000-row history as context (the original's behaviour), several 10x splits."""
    frame = synthetic_frame(20_000, 4, vol=0.03, events=("split_up", "split_down", "constant_segment"))
    prices = load_prices(frame, symbol="GEN")
    result = backtest(prices, NAIVE, n_sims=N_SIMS, protocol="legacy")
    assert result.metadata["rows_trimmed"] == 0 and result.metadata["n_rows"] == 20_000
    assert non_finite_fields(result) == []


# ----------------------------------------------------------------------------------------------------
# Invalid input: a typed error that names the problem and the row.

PRICE_COLS = ("Open", "High", "Low", "Close")
CORRUPTIONS = {
    # name: (column or None, new value, words the message must contain)
    "nan": (PRICE_COLS, np.nan, "missing (NaN) {col}"),
    "inf": (PRICE_COLS, np.inf, "infinite {col}"),
    "minus_inf": (PRICE_COLS, -np.inf, "infinite {col}"),
    "zero": (PRICE_COLS, 0.0, "zero or negative {col}"),
    "negative": (PRICE_COLS, -3.5, "zero or negative {col}"),
    "text": (PRICE_COLS, "n/a", "non-numeric {col}"),
    "volume_negative": (("Volume",), -10.0, "negative volume"),
    "volume_nan": (("Volume",), np.nan, "missing (NaN) volume"),
    "float32_overflow": (PRICE_COLS, 1e39, "{col}"),
    "float32_underflow": (PRICE_COLS, 1e-50, "zero or negative {col}"),
}


@PROPS
@given(
    frame=frames(lengths=(45, 300)),
    kind=st.sampled_from(
        sorted(CORRUPTIONS) + ["high_below_low", "duplicate_date", "bad_date", "missing_column", "empty"]
    ),
    row=st.integers(0, 10**6),
    col_pick=st.integers(0, 3),
    as_csv=st.booleans(),
)
def test_invalid_frames_raise_price_data_error(frame, kind, row, col_pick, as_csv):
    frame = frame.copy()
    if "Volume" not in frame:
        frame["Volume"] = 1.0
    i = row % len(frame)
    date = frame["Date"].iloc[i].strftime("%Y-%m-%d")
    frame = frame.astype({c: object for c in PRICE_COLS + ("Volume",)})
    if kind in CORRUPTIONS:
        cols, value, words = CORRUPTIONS[kind]
        col = cols[col_pick % len(cols)]
        frame.loc[i, col] = value
        expect = [words.format(col=col.lower())]
        if kind != "float32_overflow" and kind != "float32_underflow":
            expect.append(date)
    elif kind == "high_below_low":
        frame.loc[i, "Low"] = float(frame.loc[i, "High"]) * 1.01
        frame.loc[i, ["Open", "Close"]] = float(frame.loc[i, "High"])
        expect = ["High below Low", date]
    elif kind == "duplicate_date":
        j = i - 1 if i else 1
        frame.loc[i, "Date"] = frame.loc[j, "Date"]
        expect = ["duplicate date", frame["Date"].iloc[j].strftime("%Y-%m-%d")]
    elif kind == "bad_date":
        frame = frame.astype({"Date": object})
        frame.loc[i, "Date"] = "2001-13-45"
        expect = ["unparseable date"]
    elif kind == "missing_column":
        col = PRICE_COLS[col_pick]
        frame = frame.drop(columns=[col])
        expect = ["missing column", col.lower()]
    else:
        frame = frame.iloc[:0]
        expect = ["no data rows"]
    with pytest.raises(errors.PriceDataError) as info:
        _via(frame, as_csv, symbol="BAD")
    message = str(info.value)
    assert message.startswith("BAD"), message
    for word in expect:
        assert word in message, (word, message)


@settings(PROPS, max_examples=15)
@given(frame=frames(lengths=(60,)), swap=st.integers(1, 59))
def test_prices_constructed_by_hand_are_checked(frame, swap):
    """Prices(...) itself refuses unsorted/duplicate dates, High < Low, NaN and non-positive prices."""
    p = load_prices(frame, symbol="GEN")
    arrays = {f: np.array(getattr(p, f)) for f in ("dates", "open", "high", "low", "close")}
    cases = []
    d = arrays["dates"].copy()
    d[[0, swap]] = d[[swap, 0]]
    cases.append(("dates not strictly ascending", dict(arrays, dates=d)))
    d = arrays["dates"].copy()
    d[swap] = d[swap - 1]
    cases.append(("dates not strictly ascending", dict(arrays, dates=d)))
    lo = arrays["low"].copy()
    lo[swap] = arrays["high"][swap] * 2
    cases.append(("high below low", dict(arrays, low=lo)))
    c = arrays["close"].copy()
    c[swap] = np.nan
    cases.append(("close is NaN or infinite", dict(arrays, close=c)))
    o = arrays["open"].copy()
    o[swap] = -1.0
    cases.append(("open is zero or negative", dict(arrays, open=o)))
    for words, kw in cases:
        with pytest.raises(errors.PriceDataError, match=words):
            Prices("GEN", **kw)


@settings(PROPS, max_examples=15)
@given(rows=st.integers(1, required_rows(N_SIMS) - 1), cap=st.sampled_from([None, CAP]))
def test_too_short_history_raises_insufficient_history(rows, cap):
    prices = load_prices(synthetic_frame(rows, rows), symbol="SHORT")
    with pytest.raises(errors.InsufficientHistoryError, match=str(rows)):
        backtest(prices, NAIVE, n_sims=N_SIMS, max_context=cap, protocol="legacy")


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(n_sims=0), "n_sims"),
        (dict(max_context=0), "max_context"),
        (dict(protocol="future"), "protocol"),
        (dict(targets=("high", "low")), "close"),
        (dict(targets=("close", "volume")), "targets"),
        (dict(aggregate="geometric_mode"), "geometric_mode"),
    ],
)
def test_bad_options_raise_config_error(options, words):
    prices = load_prices(synthetic_frame(60, 0), symbol="GEN")
    kw = {"n_sims": N_SIMS, "max_context": CAP, **options}
    with pytest.raises(errors.ConfigError, match=words):
        backtest(prices, SAMPLED, **kw)


def test_non_prices_input_is_a_typed_error():
    # a DataFrame is loaded like a file (jaxsim.as_prices); something that holds no prices is refused
    with pytest.raises(errors.PriceDataError, match="cannot read prices from a int"):
        backtest(12345, NAIVE, n_sims=N_SIMS, max_context=CAP, protocol="legacy")
