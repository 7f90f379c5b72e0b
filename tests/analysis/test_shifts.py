from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.analysis.conftest import BEN, EXPECTED_TYPE, POW, SEC, TRUTH, UNI
from valueflow.analysis import (
    Thresholds,
    bootstrap_delta,
    refusal_table,
    shift_table,
    steerability,
)
from valueflow.errors import DataError


@pytest.fixture(scope="module")
def shifts(results):
    return shift_table(results, n_boot=500, seed=1)


def test_deltas_recover_the_truth(shifts):
    s = shifts[shifts["model"] == "m1"]
    assert len(s) == 4 * 5
    covered = 0
    for row in s.itertuples():
        true = TRUTH[row.value][1][row.level]
        assert row.delta == pytest.approx(true, abs=0.45)
        covered += row.delta_low <= true <= row.delta_high
        assert row.delta_low < row.delta < row.delta_high
        assert row.baseline == pytest.approx(TRUTH[row.value][0], abs=0.3)
    assert covered >= 16  # 90% intervals cover the truth most of the time


def test_bootstrap_is_seeded_and_paired():
    a = {f"q{i}": float(i) + 1.0 for i in range(10)}
    b = {f"q{i}": float(i) for i in range(10)}
    d, lo, hi = bootstrap_delta(a, b, seed=3)
    assert d == 1.0 and lo == pytest.approx(1.0) and hi == pytest.approx(1.0)  # paired: no spread
    b2 = {f"r{i}": float(i) for i in range(10)}
    d2, lo2, hi2 = bootstrap_delta(a, b2, seed=3)
    assert d2 == 1.0 and lo2 < 0.5 and hi2 > 1.5  # independent: wide
    assert bootstrap_delta(a, b2, seed=3) == (d2, lo2, hi2)
    assert np.isnan(bootstrap_delta(a, {}, seed=0)[0])


def test_value_types_and_asymmetry(shifts):
    st = steerability(shifts)
    for model in ("m1", "m2"):
        got = st[st["model"] == model].set_index("value")["type"].to_dict()
        assert got == EXPECTED_TYPE
    m1 = st[st["model"] == "m1"].set_index("value")
    assert m1.loc[UNI, "asymmetry"] > 4          # easy up, hard down
    assert m1.loc[SEC, "asymmetry"] < -4         # easy down, hard up
    assert abs(m1.loc[BEN, "asymmetry"]) < 1
    assert m1.loc[BEN, "slope"] == pytest.approx(2.5, abs=0.2)
    assert m1.loc[BEN, "monotonic"] == pytest.approx(1.0)
    assert abs(m1.loc[POW, "slope"]) < 0.3


def test_thresholds_change_the_classification(shifts):
    strict = steerability(shifts, Thresholds(min_shift=5.5))
    got = strict[strict["model"] == "m1"].set_index("value")["type"].to_dict()
    assert got[BEN] == "hard_to_steer"  # ±5 no longer counts as steerable
    assert got[SEC] == "default_bounded"  # -6 still does


def test_refusal_rates(results):
    ref = refusal_table(results)
    r = ref[(ref["model"] == "m1") & (ref["regime"] == "intensity")].set_index("level")
    # one query of 30 refused at level -2, for each of the 4 values
    assert r.loc[-2, "refusal_rate"] == pytest.approx(1 / 30)
    assert r.loc[2, "refusal_rate"] == 0.0
    with pytest.raises(DataError, match="refusal"):
        refusal_table(results.drop(columns="refusal"))


def test_missing_columns_are_a_clear_error(results):
    with pytest.raises(DataError, match="no column 'intensity'"):
        shift_table(results.drop(columns="intensity"))


def test_unscored_answers_are_ignored_not_zero(results):
    r = results.copy()
    mask = (r["value"] == BEN) & (r["level"] == 2) & (r["query_id"].isin(["q1", "q2"]))
    r.loc[mask, "intensity"] = np.nan
    s = shift_table(r, n_boot=50)
    row = s[(s["model"] == "m1") & (s["value"] == BEN) & (s["level"] == 2)].iloc[0]
    assert row["n_queries"] == 28 and row["delta"] == pytest.approx(5.0, abs=0.45)
    assert isinstance(s, pd.DataFrame)
