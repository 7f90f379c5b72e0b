"""Labels, the held-out split and the samplers' guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valueflow.embed import (
    CrossTheoryBatchSampler,
    HierarchicalBatchSampler,
    build_labels,
    heldout_split,
)
from valueflow.embed._sampler import anchor_membership
from valueflow.errors import DataError
from valueflow.theories import get_registry
from valueflow.vidb import load_seed


@pytest.fixture(scope="module")
def seed():
    return load_seed()


@pytest.fixture(scope="module")
def labels(seed):
    return build_labels(seed)


def test_labels_follow_the_hierarchy(labels):
    names = labels.level_names
    # Every level-l+1 label sits under the same level-l label (a prefix tree, no collisions).
    for lvl in range(3):
        parent_of = {}
        for row in labels.levels:
            child = names[lvl + 1][row[lvl + 1]]
            assert parent_of.setdefault(child, row[lvl]) == row[lvl]
    # No label is shared across theories.
    for lvl in range(4):
        theories = {}
        for row, t in zip(labels.levels, labels.theory, strict=True):
            assert theories.setdefault(row[lvl], t) == t


def test_direction_and_unknown_node():
    df = pd.DataFrame({"text": ["a", "b", "c"], "value": ["mft:care_harm"] * 3,
                       "intensity": [5.0, -0.5, -3.0], "node": [None, "mft:kindness", None]})
    lab = build_labels(df)
    assert lab.direction.tolist() == [1, 0, -1]
    assert lab.level_names[1][lab.levels[1, 1]] == "mft:kindness"
    df.loc[0, "node"] = "mft:kindnes"
    with pytest.raises(DataError, match="unknown node 'mft:kindnes'"):
        build_labels(df)


def test_heldout_split_is_by_text_and_stratified(seed):
    tr, te = heldout_split(seed, 0.15, seed=1)
    assert len(set(tr) & set(te)) == 0 and len(tr) + len(te) == len(seed)
    assert not set(seed.text.iloc[tr]) & set(seed.text.iloc[te])
    assert set(seed.value.iloc[te]) == set(seed.value)
    assert 0.1 < len(te) / len(seed) < 0.2
    assert np.array_equal(heldout_split(seed, 0.15, seed=1)[1], te)


def test_hierarchical_sampler_guarantees(labels):
    s = HierarchicalBatchSampler(labels, batch_size=32, seed=0)
    batches = list(s)
    assert len(batches) == len(s)
    lv, d, val = labels.levels, labels.direction, labels.value
    for b in batches:
        assert len(b) == 32 and len(set(b)) == 32
        assert len(set(labels.theory[b])) == 1
        a = b[0]
        others = np.array(b[1:])
        same_dir = d[others] == d[a]
        # Positives at every level, and a level-l-only positive wherever the theory has one.
        for lvl in range(4):
            assert (np.all(lv[others, : lvl + 1] == lv[a, : lvl + 1], axis=1) & same_dir).any()
        theory_rows = np.flatnonzero(labels.theory == labels.theory[a])
        for lvl in range(3):
            only = (np.all(lv[theory_rows, : lvl + 1] == lv[a, : lvl + 1], axis=1)
                    & (lv[theory_rows, lvl + 1] != lv[a, lvl + 1]) & (d[theory_rows] == d[a]))
            if only.any():
                got = (np.all(lv[others, : lvl + 1] == lv[a, : lvl + 1], axis=1)
                       & (lv[others, lvl + 1] != lv[a, lvl + 1]) & same_dir)
                assert got.any()
        # Hard negatives: same value, opposite direction.
        assert ((val[others] == val[a]) & (d[others] == -d[a])).any()
    again = HierarchicalBatchSampler(labels, batch_size=32, seed=0)
    assert list(again) == batches
    again.set_epoch(1)
    assert list(again) != batches


def test_stage_two_sub_batches_are_pure(labels):
    anchors = [a.members for a in get_registry().anchors]
    member = anchor_membership(labels, anchors)
    s2 = CrossTheoryBatchSampler(labels, anchors, HierarchicalBatchSampler(labels, seed=0),
                                 groups_per_batch=5, seed=0)
    n = 0
    for batch in s2:
        n += 1
        assert len(set(labels.theory[batch.hier])) == 1
        assert len(batch.anchor) == len(batch.anchor_groups) and len(set(batch.anchor)) == len(
            batch.anchor)
        used_members: set[str] = set()
        for g in set(batch.anchor_groups):
            rows = [r for r, gg in zip(batch.anchor, batch.anchor_groups, strict=True) if gg == g]
            anchor_ix, sign = divmod(g, 2)
            assert all(anchor_ix in member[r] for r in rows)
            assert set(labels.direction[rows]) == {1 if sign else -1}
            assert len(set(labels.theory[rows])) >= 2
            assert not used_members & set(anchors[anchor_ix])
            used_members |= set(anchors[anchor_ix])
        assert len(set(batch.anchor_groups)) >= 2
    assert n == len(s2)
