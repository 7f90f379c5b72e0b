"""A damaged local-judge refit cache entry is replaced by the next refit, never a traceback or
a refit at every start (issue 16, item 9). The refit itself is a stub: this is about the cache."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd


class _Base:
    """Stands in for the shipped judge: counts refits, makes a one-value judge."""

    def __init__(self) -> None:
        self.model = SimpleNamespace(name="stub", base="stub-base", adapter=None)
        self.refits = 0

    def refit(self, frame, values):
        from valueflow.embed._judge import ValueJudge

        self.refits += 1
        return ValueJudge(self.model, np.ones((1, 4)), np.zeros(1), list(values),
                          {values[0]: [1.0, 2.0]}, "stub judge")


def test_a_damaged_cache_entry_is_refitted_and_replaced(tmp_path, monkeypatch):
    import valueflow.embed._shipped as shipped

    cache = tmp_path / "cache"
    frame = pd.DataFrame({"text": ["a", "b"], "value": ["schwartz:benevolence"] * 2,
                          "intensity": [1.0, -1.0]})
    values = ["schwartz:benevolence"]
    base = _Base()
    monkeypatch.setattr(shipped, "_FITTED", {})
    shipped._refit_cached(base, frame, values, cache)  # type: ignore[arg-type]
    (entry,) = cache.iterdir()
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 3])  # cut short, as by a full disk

    monkeypatch.setattr(shipped, "_FITTED", {})  # a new process
    judge = shipped._refit_cached(base, frame, values, cache)  # type: ignore[arg-type]
    assert base.refits == 2 and judge.description == "stub judge"  # refitted, no traceback
    with np.load(entry) as z:  # and the entry was replaced by a whole one
        assert z["W"].shape == (1, 4)

    monkeypatch.setattr(shipped, "_FITTED", {})
    shipped._refit_cached(base, frame, values, cache)  # type: ignore[arg-type]
    assert base.refits == 2  # the next start loads it instead of refitting
