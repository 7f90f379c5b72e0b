from __future__ import annotations

import pytest

from tests.analysis.conftest import BEN, POW, UNI
from valueflow.analysis import (
    Thresholds,
    analyze,
    classify_pair,
    latin_square_summary,
    pair_composition,
    pair_summary,
    write_report,
)


def test_classify_pair_golden_cases():
    assert classify_pair(4.0, 2.0, 2, 1)[0] == "additive"        # tracks the 2:1 ratio
    assert classify_pair(4.0, 4.0, 2, 2)[0] == "additive"
    label, winner, ret = classify_pair(5.0, 0.2, 2, 2)
    assert (label, winner) == ("compete", "a") and ret == pytest.approx(0.04)
    assert classify_pair(-0.5, 5.0, 2, 2)[:2] == ("compete", "b")  # a moved the wrong way
    assert classify_pair(4.0, 1.5, 2, 2)[0] == "partial"
    assert classify_pair(0.3, -0.2, 2, 2)[0] == "neither"
    assert classify_pair(-4.0, -4.0, -2, -2)[0] == "additive"     # both lowered as asked
    assert classify_pair(4.0, 0.0, 2, 0)[0] == "n/a"
    assert classify_pair(4.0, 1.5, 2, 2, Thresholds(additive_ratio=0.3))[0] == "additive"


def test_pairs_add_or_compete_as_built(results):
    comp = pair_composition(results, n_boot=200)
    m1 = comp[comp["model"] == "m1"]
    add = m1[m1["value_a"] == BEN]
    comp_ = m1[m1["value_a"] == POW]
    assert (add["label"] == "additive").all() and len(add) == 3
    assert (add["angle"] < 10).all()
    assert (comp_["label"] == "compete").all() and (comp_["winner"] == BEN).all()
    summ = pair_summary(comp).set_index(["model", "value_a", "value_b"])
    assert summ.loc[("m1", BEN, UNI), "majority"] == "additive"
    assert summ.loc[("m1", POW, BEN), "majority"] == "compete"
    assert summ.loc[("m1", POW, BEN), "usual_winner"] == BEN


def test_five_value_dominance_and_fading(results):
    per, summ = latin_square_summary(results, n_boot=200)
    s = summ.set_index("model")
    assert s.loc["m1", "n_sets"] == 5
    assert s.loc["m1", "dominance_rate"] == 1.0
    assert s.loc["m1", "fade_rate"] == 1.0 and s.loc["m1", "reverse_rate"] == 0.0
    assert s.loc["m2", "dominance_rate"] == 0.0
    assert s.loc["m2", "reverse_rate"] == 1.0 and s.loc["m2", "fade_rate"] == 0.0
    assert s.loc["m1", "mean_delta_+2"] == pytest.approx(6.0, abs=0.3)
    m1 = per[per["model"] == "m1"]
    assert set(m1[m1["level"] < 0]["outcome"]) == {"faded"}
    assert set(m1[m1["level"] > 0]["outcome"]) == {"achieved"}


def test_analyze_and_report(results, tmp_path):
    a = analyze(results, n_boot=200)
    text = "\n".join(a.findings)
    assert "hard to steer: power" in text.lower()
    assert "additive" in text and "benevolence usually won" in text
    assert "faded to neutral in 100%" in text
    d = a.to_dict()
    assert {"shifts", "steerability", "pairs", "latin_summary", "findings"} <= set(d)
    out = write_report(a, tmp_path / "sub" / "report.html")
    html = out.read_text()
    # heatmap + dose-response per model, composition per model, five-value per model
    assert html.count("<img") == 2 * 2 + 2 + 2
    assert html.count("data:image/png;base64,") == html.count("<img")
    assert "faded to neutral" in html and "bidirectional" in html
    assert "<script" not in html and "http" not in html.split("<body>")[1][:2000]


def test_findings_do_not_call_a_failed_shift_a_shift(results):
    import dataclasses

    from valueflow.analysis._summary import findings

    a = analyze(results, n_boot=100)
    st = a.steerability.copy()
    st["delta_down"] = st["delta_down"].abs() + 0.2  # nothing moved down when asked to
    st["delta_up"] = -st["delta_up"].abs() - 0.2  # nothing moved up either
    text = "\n".join(findings(dataclasses.replace(a, steerability=st)))
    assert "Largest downward shift" not in text and "Largest upward shift" not in text
    assert "No value moved down when asked to lower it; closest:" in text
    assert "No value moved up when asked to raise it; closest:" in text
    assert "Largest upward shift" in "\n".join(a.findings)  # the built data does move
