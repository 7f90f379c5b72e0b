"""A damaged local-scorer cache entry is replaced by the next fit, never a traceback or a
refit at every start (issue 16, item 9)."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.mark.model
@pytest.mark.parametrize("damage", ["emb.npz", "state.json"])
def test_a_damaged_cache_entry_is_refitted_and_replaced(tmp_path, monkeypatch, damage):
    pytest.importorskip("sentence_transformers")
    import valueflow.embed._shipped as shipped
    from valueflow.embed import LocalScorer

    monkeypatch.setattr(shipped, "_FITTED", {})
    cache = tmp_path / "cache"
    vidb = pd.DataFrame({"text": [f"I help person {i} carry a box" for i in range(10)],
                         "value": ["schwartz:benevolence"] * 10,
                         "intensity": [float(i - 5) for i in range(10)]})
    shipped.load_local_scorer(vidb=vidb, cache_dir=cache)
    (entry,) = cache.iterdir()
    good = (entry / damage).read_bytes()
    (entry / damage).write_bytes(good[: len(good) // 3])  # cut short, as by a full disk

    monkeypatch.setattr(shipped, "_FITTED", {})
    shipped.load_local_scorer(vidb=vidb, cache_dir=cache)  # refits instead of crashing
    assert len((entry / damage).read_bytes()) == len(good)  # and replaces the entry

    monkeypatch.setattr(shipped, "_FITTED", {})

    def no_fit(self, frame):
        raise AssertionError("refitted although the cache entry was replaced")

    monkeypatch.setattr(LocalScorer, "fit", no_fit)
    shipped.load_local_scorer(vidb=vidb, cache_dir=cache)
