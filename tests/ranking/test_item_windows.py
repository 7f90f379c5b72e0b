"""All-unknown window designs (building a VIDB): balanced rounds and the adaptive round."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valueflow.errors import ConfigError
from valueflow.ranking import adaptive_windows, appearances, balanced_windows, window_components
from valueflow.ranking._design import bridge_components


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(2, 6), r=st.integers(1, 5), seed=st.integers(0, 99))
def test_every_item_in_r_windows_and_graph_connected(n, k, r, seed):
    w = balanced_windows(n, k, r, seed=seed)
    kk = min(k, n)
    assert w.shape[1] == kk
    assert appearances(w, n).min() >= r
    # No window repeats an item.
    assert all(len(set(row)) == kk for row in w.tolist())
    assert window_components(w, n)[0] == 1


def test_design_is_deterministic_and_seed_dependent():
    a = balanced_windows(50, 4, 3, seed=7)
    assert np.array_equal(a, balanced_windows(50, 4, 3, seed=7))
    assert not np.array_equal(a, balanced_windows(50, 4, 3, seed=8))


def test_pairwise_r1_needs_bridges_and_gets_them():
    # k=2, r=1 on 10 items is a perfect matching: 5 components before bridging.
    rng = np.random.default_rng(0)
    perm = rng.permutation(10).reshape(5, 2)
    assert window_components(perm, 10)[0] == 5
    bridges = bridge_components(perm, 10, 2, rng)
    assert window_components(np.concatenate([perm, bridges]), 10)[0] == 1
    w = balanced_windows(10, 2, 1, seed=0)
    assert window_components(w, 10)[0] == 1


def test_windows_mix_intensities():
    # Items sorted by latent intensity: windows of a random design span a wide range.
    w = balanced_windows(400, 4, 6, seed=1)
    spread = (w.max(axis=1) - w.min(axis=1)).mean()
    assert spread > 150


def test_bad_design_parameters():
    with pytest.raises(ConfigError, match="at least 2 items"):
        balanced_windows(1, 2, 3)
    with pytest.raises(ConfigError, match="window size k"):
        balanced_windows(10, 1, 3)
    with pytest.raises(ConfigError, match="at least 1"):
        balanced_windows(10, 2, 0)


def test_adaptive_windows_group_near_ties():
    u = np.array([0.0, 5.0, 5.01, 9.0, 5.02, -3.0, 20.0, 21.0])
    se = np.ones_like(u)
    w = adaptive_windows(u, se, 3, 1, seed=0)
    assert sorted(w[0].tolist()) == [1, 2, 4]
    many = adaptive_windows(u, se, 3, 4, seed=0)
    assert many.shape == (4, 3)


def test_window_designs_live_in_ranking_only():
    import valueflow.vidb as vidb

    for name in ("balanced_windows", "adaptive_windows", "window_components"):
        assert name not in vidb.__all__ and not hasattr(vidb, name)
