"""Window designs, display shuffling and the simulated judge."""

from __future__ import annotations

import numpy as np
import pytest

from valueflow.errors import ConfigError, DataError
from valueflow.ranking import (
    UNKNOWN,
    AdaptiveDesigner,
    SimulatedJudge,
    bucket_windows,
    random_windows,
    shuffle_window,
)


def test_random_windows_distinct_and_seeded():
    a = np.arange(20.0)
    w = random_windows(a, 6, 4, 10, seed=1)
    assert w.shape == (10, 4, 5)
    assert all(len(set(row)) == 5 for row in w.reshape(-1, 5))
    np.testing.assert_array_equal(w, random_windows(a, 6, 4, 10, seed=1))


@pytest.mark.parametrize("strata", ["width", "quantile"])
def test_bucket_windows_one_anchor_per_stratum(strata):
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(-10, 10, 200))
    w = bucket_windows(a, 5, 3, 7, strata=strata, seed=2)
    if strata == "width":
        edges = np.linspace(a.min(), a.max(), 5)
        bins = np.clip(np.searchsorted(edges, a[w], side="right") - 1, 0, 3)
    else:
        bins = w * 4 // 200  # a is sorted, so the id is the rank
    assert np.all(np.sort(bins, axis=-1) == np.arange(4))


def test_bucket_windows_handles_empty_strata_and_constant_anchors():
    a = np.array([-10.0, -9.5, 9.0, 9.5, 10.0, 10.0])  # middle strata are empty
    w = bucket_windows(a, 5, 10, 3, seed=0)
    assert all(len(set(row)) == 4 for row in w.reshape(-1, 4))
    const = bucket_windows(np.zeros(5), 4, 2, 2, seed=0)  # the reference crashes here
    assert all(len(set(row)) == 3 for row in const.reshape(-1, 3))


def test_window_size_larger_than_anchor_set_raises():
    with pytest.raises(ConfigError, match="needs 5 distinct anchors, but only 3"):
        bucket_windows([1.0, 2.0, 3.0], 6, 1)
    with pytest.raises(ConfigError, match="at least 2"):
        random_windows([1.0, 2.0], 1, 1)


def test_shuffle_window_maps_answer_back():
    members = (UNKNOWN, 10, 11, 12)
    positions = []
    for seed in range(40):
        sw = shuffle_window(members, seed=seed)
        assert sorted(sw.display) == sorted(members)
        positions.append(sw.display.index(UNKNOWN))
        answer = [sw.display.index(x) + 1 for x in (12, UNKNOWN, 10, 11)]
        assert sw.to_ranking(answer) == (12, UNKNOWN, 10, 11)
    assert len(set(positions)) == 4  # the unknown is not always first
    with pytest.raises(DataError, match="not a permutation"):
        shuffle_window(members, seed=0).to_ranking([1, 1, 2, 3])


def test_adaptive_designer_targets_the_posterior():
    anchors = np.linspace(-10, 10, 401)
    grid = np.linspace(-10, 10, 201)
    post = np.exp(-0.5 * ((grid - 4.0) / 0.5) ** 2)[None, :]
    post /= post.sum()
    for spreads, n_sim in [((0.5,), 0), ((0.25, 1.0, 3.0), 8)]:
        d = AdaptiveDesigner(anchors, 6, spreads=spreads, n_sim=n_sim, seed=0)
        ids = d.propose(np.repeat(post, 3, axis=0), grid, beta=2.0)
        assert ids.shape == (3, 5)
        assert all(len(set(r)) == 5 for r in ids)
        vals = anchors[ids]
        assert np.all(np.abs(np.median(vals, axis=1) - 4.0) < 0.6)
        assert np.all(vals.max(axis=1) - vals.min(axis=1) < 6.0)
    # A noisier judge gets a wider window.
    d = AdaptiveDesigner(anchors, 6, seed=0)
    narrow = np.ptp(anchors[d.propose(post, grid, beta=5.0)])
    wide = np.ptp(anchors[d.propose(post, grid, beta=0.3)])
    assert wide > 2 * narrow


def test_simulated_judge_is_seeded_and_matches_bradley_terry():
    judge = SimulatedJudge({"a": 1.0, "b": -1.0}, beta=0.5, seed=3)
    first = [judge.rank(["a", "b"])[0] for _ in range(4000)]
    p = np.mean([f == "a" for f in first])
    assert p == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.025)
    again = SimulatedJudge({"a": 1.0, "b": -1.0}, beta=0.5, seed=3)
    assert [again.rank(["a", "b"])[0] for _ in range(50)] == first[:50]
    sharp = SimulatedJudge(list(np.arange(6.0)), beta=50.0, seed=0)
    assert sharp.rank([2, 5, 0, 3]) == [5, 3, 2, 0]
    with pytest.raises(DataError, match="no intensity for item 'z'"):
        judge.rank(["a", "z"])
    with pytest.raises(ConfigError, match="beta must be a positive"):
        SimulatedJudge([0.0], beta=0.0)
