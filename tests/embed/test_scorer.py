"""The previous local scorer (ridge/kNN/valence, kept as the baseline the fine-tuned judge replaced):
valence kernel ridge, the scorer encoder pass, metrics."""

from __future__ import annotations

import numpy as np
import pytest

import valueflow.embed._scorer as scorer_mod
from valueflow.embed._scorer import _metrics, _valence, _valence_fit
from valueflow.embed._scorer_encoder import mid_layers

TEXTS = [
    "I stayed up all night to look after my sick sister.",
    "Whatever.",
    "The committee postponed the vote on the new budget until next spring, after a long and "
    "heated debate about school funding.",
    "He lied to his best friend to get the promotion they both wanted.",
    "Tea.",
]


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_valence_loo_equals_refitting_without_the_row():
    rng = np.random.default_rng(0)
    x = _unit(rng, 40, 6)
    y = 5 * x[:, 0] - 3 * x[:, 1] + rng.normal(size=40)
    state, loo = _valence_fit(x, y, np.random.default_rng(1))
    refit = np.empty(40)
    for i in range(40):  # brute force: fit without row i, predict row i
        keep = np.arange(40) != i
        s_i, _ = _valence_fit(x[keep], y[keep], np.random.default_rng(1))
        refit[i] = _valence(s_i, x[i:i + 1])[0]
    # Exact up to the refitted mean offset (a shift of order |y_i - mean| / n).
    assert np.max(np.abs(loo - refit)) < 0.15
    in_sample = _valence(state, x)
    assert np.mean(np.abs(in_sample - refit)) > 4 * np.mean(np.abs(loo - refit))


def test_valence_fits_a_sample_of_large_vidbs(monkeypatch):
    monkeypatch.setattr(scorer_mod, "_KR_MAX", 30)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 5)) * 0.3 + np.array([1.0, 0, 0, 0, 0])  # all cosines > 0,
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # like real sentence embeddings
    y = 8 * x[:, 1]
    state, val = _valence_fit(x, y, np.random.default_rng(3))
    assert state["x"].shape == (30, 5) and len(val) == 50
    inside = np.array([np.isclose(np.abs(state["x"] @ r).max(), 1.0, atol=1e-5) for r in x])
    # Rows outside the sample get plain predictions, rows inside their leave-one-out ones.
    assert np.allclose(val[~inside], _valence(state, x[~inside]))
    assert not np.allclose(val[inside], _valence(state, x[inside]))
    assert np.corrcoef(val, y)[0, 1] > 0.8


def test_mid_layers():
    assert mid_layers(6) == [2, 3, 4, 5]
    assert mid_layers(12) == list(range(4, 12))
    assert mid_layers(1) == [1]


def test_metrics_sign_accuracy_on_strong_texts():
    y = np.array([-8.0, -2.0, 0.0, 2.0, 8.0])
    m = _metrics(y, np.array([-1.0, 1.0, 0.5, 1.0, -1.0]))
    assert m["sign_acc"] == pytest.approx(0.5) and m["sign_acc3"] == pytest.approx(0.5)
    assert _metrics(y, -y)["sign_acc3"] == 0.0


@pytest.mark.model
def test_scorer_encoder_matches_hives_encode_in_input_order():
    pytest.importorskip("sentence_transformers")
    from valueflow.embed import load_hives
    from valueflow.embed._scorer_encoder import encode_for_scorer

    for name in ("base", "default"):
        model = load_hives(name)
        e, mid = encode_for_scorer(model, TEXTS, batch_size=2)
        assert np.allclose(e, model.encode(TEXTS), atol=1e-5)
        assert np.allclose(np.linalg.norm(mid, axis=1), 1.0, atol=1e-5)
        # Middle layers are not the last one, and each row is its own text's.
        assert np.all(np.sum(mid * encode_for_scorer(model, TEXTS[:1])[1], axis=1)[1:] < 0.99)
    e0, m0 = encode_for_scorer(load_hives("base"), [])
    assert e0.shape == (0, 384) and m0.shape == (0, 384)


def test_training_frame_fills_in_seed_values_and_samples_large_vidbs():
    import pandas as pd

    from valueflow.embed import scorer_training_frame
    from valueflow.vidb import load_seed

    seed_values = set(load_seed()["value"])
    rows = [(f"{v} text {i}", v, -10 + 20 * i / 2999) for v in ("schwartz:power", "ross:fidelity")
            for i in range(3000)]
    big = pd.DataFrame(rows, columns=["text", "value", "intensity"])
    # Small enough: everything is kept, and the seed fills in the 30 other values.
    full = scorer_training_frame(big, max_texts=100_000)
    assert set(full["value"]) == seed_values
    assert (full["value"] == "schwartz:power").sum() == 3000
    assert set(full.loc[full.value == "schwartz:power", "source"]) == {"VIDB table"}
    # Too large: the scored value keeps most of the budget, spread over its whole scale.
    part = scorer_training_frame(big, values=["power"], max_texts=6000)
    counts = part["value"].value_counts()
    assert counts["schwartz:power"] == 6000 - 150 * 31
    assert counts["ross:fidelity"] == 150 and counts["mft:care_harm"] <= 150
    kept = part.loc[part.value == "schwartz:power", "intensity"]
    assert kept.min() == -10 and kept.max() == 10 and abs(kept.median()) < 0.1
    assert scorer_training_frame(big, values=["power"], max_texts=6000).equals(part)  # stable


