"""Scale calibration and the reference scorer's guardrails."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valueflow.errors import ConfigError, DataError
from valueflow.ranking import (
    UNKNOWN,
    ReferenceAnchoredScorer,
    calibrate_to_scale,
    fit_scale_calibration,
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=3, max_size=60),
    st.floats(-5, 5),
)
def test_calibration_is_monotone_bounded_and_keeps_neutral(values, neutral):
    u = np.array(values)
    cal = fit_scale_calibration(u, neutral=neutral)
    out = cal(u)
    assert np.all(np.abs(out) <= 10)
    order = np.argsort(u, kind="stable")
    assert np.all(np.diff(out[order]) >= -1e-12)
    assert cal([neutral])[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.sign(out[u > neutral]) >= 0) and np.all(np.sign(out[u < neutral]) <= 0)


def test_calibration_scales_sides_separately():
    u = np.array([-1.0, -0.5, 0.0, 1.0, 2.0, 4.0])
    out = calibrate_to_scale(u, quantile=1.0)
    np.testing.assert_allclose(out, [-10, -5, 0, 2.5, 5, 10])


def test_calibration_with_reference_is_isotonic_through_neutral():
    rng = np.random.default_rng(0)
    u = np.sort(rng.normal(size=40))
    ref = np.where(rng.random(40) < 0.5, 3 * u + rng.normal(0, 0.3, 40), np.nan)
    cal = fit_scale_calibration(u, neutral=0.0, reference=ref)
    out = cal(u)
    assert np.all(np.diff(out) >= -1e-12)
    assert cal([0.0])[0] == pytest.approx(0.0)
    known = np.isfinite(ref)
    assert np.corrcoef(out[known], ref[known])[0, 1] > 0.95
    with pytest.raises(DataError, match="at least 2 items"):
        fit_scale_calibration(u, reference=np.full(40, np.nan))
    with pytest.raises(ConfigError, match="low < 0 < high"):
        fit_scale_calibration(u, scale=(0.0, 10.0))


def test_reference_guardrails_and_clamping():
    anchors = np.array([-6.0, -2.0, 1.0, 5.0, 9.5])
    ref = ReferenceAnchoredScorer(anchors).fit(
        [0, 1, 2, 2],
        [
            (UNKNOWN, 3, 1, 0),  # wins everything: just above its best anchor (5)
            (2, 3, UNKNOWN),  # loses everything: just below its worst anchor (1)
            (3, UNKNOWN, 1),
            (UNKNOWN, 0, 4),
        ],
        n_items=4,
    )
    assert ref.scores_[0] == np.nextafter(5.0, np.inf)
    assert ref.scores_[1] == np.nextafter(1.0, -np.inf)
    assert -6.0 < ref.scores_[2] < 9.5
    assert np.isnan(ref.scores_[3])


def test_reference_ml_matches_independent_root():
    from scipy.optimize import brentq
    from scipy.special import logsumexp

    anchors = [0.0, 3.0, -3.0]
    windows = [(UNKNOWN, 0), (0, UNKNOWN), (1, UNKNOWN, 2)]

    def objective(u):
        total = -0.5e-3 * u * u
        for w in windows:
            utils = np.array([u if i == UNKNOWN else anchors[i] for i in w])
            total += sum(utils[j] - logsumexp(utils[j:]) for j in range(len(w)))
        return total

    def grad(u, h=1e-5):
        return (objective(u + h) - objective(u - h)) / (2 * h)

    expected = brentq(grad, -5, 5, xtol=1e-10)
    ref = ReferenceAnchoredScorer(anchors).fit([0, 0, 0], windows)
    assert ref.scores_[0] == pytest.approx(expected, abs=1e-5)
    assert expected != pytest.approx(0.0, abs=1e-5)  # PL is not reversal-symmetric


def test_calibration_sign_is_exact_next_to_the_neutral_point():
    # Found by hypothesis: interpolation rounding once mapped -2e-133 to +1.8e-15.
    u = np.array([-6.0, -38.5973066880932, -1.9851144137028685e-133])
    out = fit_scale_calibration(u, neutral=0.0)(u)
    assert np.all(out <= 0) and out[1] == -10
