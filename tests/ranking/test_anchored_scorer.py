"""Anchored scoring: window likelihood, β estimation, posterior quality, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from valueflow.errors import ConfigError, DataError
from valueflow.ranking import (
    UNKNOWN,
    AnchoredScorer,
    ReferenceAnchoredScorer,
    SimulatedJudge,
    bucket_windows,
    score_with_anchors,
)
from valueflow.ranking._windows import pack_windows, window_loglik


def pl_logprob(utils_in_order):
    u = np.asarray(utils_in_order, dtype=float)
    return sum(u[j] - logsumexp(u[j:]) for j in range(len(u)))


def judge_windows(judge, truth, anchors, ids):
    members = np.concatenate([truth[:, None], anchors[ids]], axis=1)
    order = judge.rank_intensities(members)
    labels = np.concatenate([np.full((ids.shape[0], 1), UNKNOWN), ids], axis=1)
    return [tuple(int(x) for x in row) for row in np.take_along_axis(labels, order, axis=1)]


def test_window_loglik_equals_full_plackett_luce():
    anchors = np.array([-6.0, -1.0, 2.5, 7.0])
    grid = np.linspace(-10, 10, 9)
    rankings = [tuple(p) for p in itertools.permutations([UNKNOWN, 0, 2, 3])][::5]
    data = pack_windows(
        np.zeros(len(rankings), int), rankings, np.zeros(len(rankings), int), anchors
    )
    beta = 0.7
    ell, const = window_loglik(beta, data, grid)
    for w, r in enumerate(rankings):
        for g, x in enumerate(grid):
            utils = [beta * (x if i == UNKNOWN else anchors[i]) for i in r]
            assert ell[w, g] + const[w] == pytest.approx(pl_logprob(utils), abs=1e-10)


def make_problem(beta, m, seed, n_texts=150):
    rng = np.random.default_rng(seed)
    anchors = rng.uniform(-10, 10, 400)
    truth = rng.uniform(-10, 10, n_texts)
    ids = bucket_windows(anchors, 6, m, n_texts, seed=seed).reshape(-1, 5)
    judge = SimulatedJudge(truth, beta, seed=seed)
    items = np.repeat(np.arange(n_texts), m)
    return anchors, truth, items, judge_windows(judge, np.repeat(truth, m), anchors, ids)


@pytest.mark.parametrize("beta", [0.3, 1.5])
def test_beta_is_recovered(beta):
    anchors, _, items, rankings = make_problem(beta, 4, seed=1)
    scorer = AnchoredScorer(anchors).fit(items, rankings)
    assert scorer.beta_["judge"] == pytest.approx(beta, rel=0.15)
    se = scorer.beta_se_["judge"]
    assert 0 < se < 0.2 * beta
    assert abs(scorer.beta_["judge"] - beta) < 4 * se


def test_posterior_beats_reference_and_intervals_cover():
    anchors, truth, items, rankings = make_problem(0.3, 5, seed=2, n_texts=300)
    scorer = AnchoredScorer(anchors, prior="uniform").fit(items, rankings)
    ref = ReferenceAnchoredScorer(anchors).fit(items, rankings)
    rmse = np.sqrt(np.mean((scorer.mean_ - truth) ** 2))
    rmse_ref = np.sqrt(np.mean((ref.scores_ - truth) ** 2))
    assert rmse < 0.95 * rmse_ref
    inside = (scorer.low_ <= truth) & (truth <= scorer.high_)
    assert 0.82 < inside.mean() < 0.97
    assert np.all(scorer.low_ <= scorer.mean_) and np.all(scorer.mean_ <= scorer.high_)
    assert np.all(np.abs(scorer.mean_) <= 10)


def test_more_windows_shrink_error():
    errs = []
    for m in (2, 12):
        anchors, truth, items, rankings = make_problem(1.0, m, seed=3)
        s = AnchoredScorer(anchors).fit(items, rankings)
        errs.append(np.sqrt(np.mean((s.mean_ - truth) ** 2)))
    assert errs[1] < 0.6 * errs[0]


def test_two_judges_get_their_own_beta_and_reversed_judge_is_flagged():
    rng = np.random.default_rng(4)
    anchors = rng.uniform(-10, 10, 300)
    truth = rng.uniform(-10, 10, 120)
    ids = bucket_windows(anchors, 5, 3, 120, seed=4).reshape(-1, 4)
    items = np.repeat(np.arange(120), 3)
    sharp = judge_windows(SimulatedJudge(truth, 2.0, 1), np.repeat(truth, 3), anchors, ids)
    noisy = judge_windows(SimulatedJudge(truth, 0.2, 2), np.repeat(truth, 3), anchors, ids)
    scorer = AnchoredScorer(anchors).fit(
        np.concatenate([items, items]), sharp + noisy, ["a"] * len(sharp) + ["b"] * len(noisy)
    )
    assert scorer.beta_["a"] == pytest.approx(2.0, rel=0.25)
    assert scorer.beta_["b"] == pytest.approx(0.2, rel=0.3)
    assert scorer.judge_agreement_["a"] > 0.9
    reversed_rankings = [tuple(reversed(r)) for r in sharp]
    rev = AnchoredScorer(anchors, beta=1.0).fit(items, reversed_rankings)
    assert rev.judge_agreement_["judge"] < 0.1


def test_fixed_beta_items_without_windows_and_functional_api():
    anchors = np.array([-8.0, -3.0, 0.0, 4.0, 9.0])
    rankings = [(4, UNKNOWN, 3, 2, 1, 0), (UNKNOWN, 4, 3, 2, 1, 0)]
    scorer = AnchoredScorer(anchors, beta=2.0).fit([0, 2], rankings, n_items=4)
    assert scorer.beta_ == {"judge": 2.0}
    assert np.isnan(scorer.mean_[1]) and np.isnan(scorer.mean_[3])
    assert scorer.n_windows_.tolist() == [1, 0, 1, 0]
    assert scorer.mean_[2] > scorer.mean_[0] > 4.0  # first beats all; second sits below 9
    res = score_with_anchors(anchors, [0, 2], rankings, n_items=4, beta=2.0)
    np.testing.assert_allclose(res.mean, scorer.mean_)


def test_custom_prior_array_is_used():
    anchors = np.linspace(-10, 10, 11)
    prior = np.zeros(401)
    prior[200:] = 1.0  # only non-negative intensities
    s = AnchoredScorer(anchors, beta=1.0, prior=prior).fit([0], [(0, 1, UNKNOWN)])
    assert s.low_[0] >= -0.026  # half a grid cell


@pytest.mark.parametrize(
    ("rankings", "match"),
    [
        ([(0, 1)], "exactly once"),
        ([(UNKNOWN, 0, UNKNOWN)], "exactly once"),
        ([(UNKNOWN, 0, 0)], "repeats an anchor"),
        ([(UNKNOWN, 7)], "outside 0 .. 2"),
        ([(UNKNOWN,)], "no anchor"),
    ],
)
def test_bad_windows_raise(rankings, match):
    with pytest.raises(DataError, match=match):
        AnchoredScorer([-1.0, 0.0, 1.0]).fit([0], rankings)


def test_bad_settings_raise():
    with pytest.raises(DataError, match="NaN or infinite"):
        AnchoredScorer([0.0, np.nan]).fit([0], [(UNKNOWN, 0)])
    with pytest.raises(ConfigError, match="unknown prior"):
        AnchoredScorer([0.0, 1.0], prior="flat").fit([0], [(UNKNOWN, 0)])
    with pytest.raises(ConfigError, match="beta must be positive"):
        AnchoredScorer([0.0, 1.0], beta=-1.0).fit([0], [(UNKNOWN, 0)])
    with pytest.raises(DataError, match="judge names"):
        AnchoredScorer([0.0, 1.0]).fit([0], [(UNKNOWN, 0)], ["a", "b"])
