"""The live value profile: posterior math, relevance weights, and two scripted personas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.personalize.dialogues import INDEPENDENCE_ADVENTURE, TRADITION_SECURITY
from valueflow.errors import DataError
from valueflow.personalize import ProfileTracker, TrackerSettings, posterior, relevance_weight


def test_posterior_is_the_precision_weighted_mean_and_narrows_with_evidence():
    x = np.array([[4.0], [6.0]])
    sd = np.array([[3.0], [3.0]])
    w = np.ones((2, 1))
    mean, s, ev = posterior(x, sd, w, prior_sd=1e6, spread=0.0)
    assert mean[0] == pytest.approx(5.0) and s[0] == pytest.approx(3 / np.sqrt(2))
    assert ev[0] == 2
    # a message of weight 0 adds nothing: same as not having it
    m2, s2, _ = posterior(np.array([[4.0], [-9.0]]), sd, np.array([[1.0], [0.0]]),
                          prior_sd=5.0, spread=2.0)
    m1, s1, _ = posterior(np.array([[4.0]]), sd[:1], np.ones((1, 1)), prior_sd=5.0, spread=2.0)
    assert m2[0] == pytest.approx(m1[0]) and s2[0] == pytest.approx(s1[0])
    # more agreeing messages: narrower, and nearer their mean
    sds = [posterior(np.full((n, 1), 5.0), np.full((n, 1), 3.0), np.ones((n, 1)),
                     prior_sd=5.0, spread=2.0)[1][0] for n in (1, 2, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(sds))


def test_relevance_weight_ramps_between_its_bounds_and_trusts_judges_without_relevance():
    w = relevance_weight(np.array([0.1, 0.3, 0.5, 0.7, 0.9, np.nan]), 0.3, 0.7)
    assert w.tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0, 1.0])


class _Judge:
    """Intensity and relevance by keyword: 'home' is about security, 'ritual' tradition."""

    name = "stub"

    def score(self, texts, value):
        out = []
        for t in texts:
            hit = ("ritual" in t and value.endswith("tradition")) or (
                "home" in t and value.endswith("security"))
            x = (8.0 if "love" in t else -8.0) if hit else 0.0
            out.append([x, x - 4, x + 4])
        return np.array(out)

    def relevance(self, texts, values):
        return np.array([[0.95 if (("ritual" in t and v.endswith("tradition"))
                                   or ("home" in t and v.endswith("security"))) else 0.05
                          for v in values] for t in texts])


def test_tracker_follows_relevant_messages_ignores_the_rest_and_keeps_evidence():
    tr = ProfileTracker(_Judge(), values=["schwartz:tradition", "security", "power"])
    p0 = tr.profile()
    assert not p0["known"].any() and (p0["high"] - p0["low"] > 15).all()  # unknown, wide
    u = tr.add("I love our old ritual")
    assert set(u.moved(0.5)) == {"schwartz:tradition"} and u.relevant == ["schwartz:tradition"]
    quiet = tr.add("the bus leaves at eight")
    assert quiet.changes == {} and quiet.relevant == []
    tr.add("I love my home")
    tr.add("I love the ritual of Sunday lunch")
    p = tr.profile().set_index("value")
    assert p.loc["schwartz:tradition", "intensity"] > 4 and p.loc["schwartz:tradition", "known"]
    assert not p.loc["schwartz:power", "known"]
    assert p.loc["schwartz:power", "intensity"] == pytest.approx(0.0)
    widths = [h.set_index("value").loc["schwartz:tradition", "high"]
              - h.set_index("value").loc["schwartz:tradition", "low"] for h in tr.history]
    assert widths[0] > widths[-1] and widths[1] == pytest.approx(widths[2])
    ev = tr.evidence("schwartz:tradition")
    assert [e.turn for e in ev] == [0, 3] and ev[0].shift > 0
    assert list(tr.top(2)["value"]) == ["schwartz:tradition", "schwartz:security"]
    with pytest.raises(DataError, match="empty"):
        tr.add("   ")
    assert len(tr.messages) == 4  # the empty message changed nothing


def test_forgetting_lets_a_changed_mind_show():
    msgs = ["I love the ritual"] * 6 + ["I hate the ritual"] * 3
    keep = ProfileTracker(_Judge(), values=["schwartz:tradition"])
    keep.extend(msgs)
    forget = ProfileTracker(_Judge(), values=["schwartz:tradition"],
                            settings=TrackerSettings(half_life=1.0))
    forget.extend(msgs)
    assert keep.profile().intensity[0] > 0 > forget.profile().intensity[0]


def _run(dialogue):
    tracker = ProfileTracker()
    updates = [tracker.add(text) for text, _ in dialogue]
    return tracker, updates


@pytest.mark.model
def test_a_tradition_and_security_persona_is_recognised_and_unrelated_turns_move_nothing():
    pytest.importorskip("sentence_transformers")
    tracker, updates = _run(TRADITION_SECURITY)
    # among the top 4 of 32: sanctity, tradition's neighbour in moral foundations, may come
    # between them (the judge of 2026-12-03: tradition 4.2, authority 3.9, sanctity 3.6,
    # security 3.5)
    top4 = list(tracker.top(4)["value"])
    assert {"schwartz:tradition", "schwartz:security"} <= set(top4), tracker.top(6)
    for (text, laden), upd in zip(TRADITION_SECURITY, updates, strict=True):
        if not laden:
            assert not upd.moved(0.5), (text, upd.moved(0.5))
    for v in ("schwartz:tradition", "schwartz:security"):
        widths = [(h.set_index("value").loc[v, "high"] - h.set_index("value").loc[v, "low"])
                  for h in tracker.history]
        assert widths[-1] < widths[0] - 4 and all(b <= a + 1e-9 for a, b in
                                                  itertools.pairwise(widths))


@pytest.mark.model
def test_an_independence_and_adventure_persona_gives_a_distinguishable_profile():
    pytest.importorskip("sentence_transformers")
    a, _ = _run(TRADITION_SECURITY)
    b, updates = _run(INDEPENDENCE_ADVENTURE)
    top3 = list(b.top(3)["value"])
    assert {"schwartz:self_direction", "schwartz:stimulation"} & set(top3), b.top(6)
    pa, pb = a.profile().set_index("value"), b.profile().set_index("value")
    for v in ("schwartz:self_direction", "schwartz:stimulation"):
        assert pb.loc[v, "intensity"] > pa.loc[v, "intensity"] + 2
    for v in ("schwartz:tradition", "schwartz:security"):
        assert pa.loc[v, "intensity"] > pb.loc[v, "intensity"] + 2
    for (text, laden), upd in zip(INDEPENDENCE_ADVENTURE, updates, strict=True):
        if not laden:
            assert not upd.moved(0.5), (text, upd.moved(0.5))
