"""The local intensity scorer: valence kernel ridge, encoder pass, held-out accuracy, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

import valueflow.embed._scorer as scorer_mod
from valueflow.embed._scorer import _metrics, _valence, _valence_fit
from valueflow.embed._scorer_encoder import mid_layers
from valueflow.errors import DataError

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


@pytest.mark.model
def test_scorer_beats_trivial_baseline_on_held_out_seed_texts():
    pytest.importorskip("sentence_transformers")
    from valueflow.embed import LocalScorer, heldout_split, load_hives
    from valueflow.embed._shipped import _seed_cache
    from valueflow.vidb import load_seed

    seed = load_seed()
    tr, te = heldout_split(seed, 0.2, seed=3)
    scorer = LocalScorer(model=load_hives("base"), folds=2)
    scorer._cache.update(_seed_cache(scorer._model(), seed.text.astype(str).tolist()) or {})
    scorer.fit(seed.iloc[tr])
    test = seed.iloc[te]
    pred = np.concatenate([scorer.score(g.text.tolist(), v)[:, 0]
                           for v, g in test.groupby("value")])
    y = np.concatenate([g.intensity.to_numpy() for _v, g in test.groupby("value")])
    means = seed.iloc[tr].groupby("value").intensity.mean()
    trivial = np.concatenate([np.full(len(g), means[v]) for v, g in test.groupby("value")])
    m = _metrics(y, pred)
    # The earlier ridge-only scorer reached Spearman 0.41 and sign accuracy 0.71 (|y| >= 3).
    assert m["spearman"] > 0.45
    assert m["sign_acc3"] > 0.7
    assert m["rmse"] < _metrics(y, trivial)["rmse"] - 0.4


@pytest.mark.model
def test_default_scorer_protocol_intervals_and_cache(monkeypatch):
    pytest.importorskip("sentence_transformers")
    import valueflow.embed._scorer_encoder as enc
    from valueflow.embed import load_local_scorer
    from valueflow.errors import UnknownNameError
    from valueflow.judges._types import DirectScorer
    from valueflow.theories import resolve_value

    scorer = load_local_scorer()
    assert isinstance(scorer, DirectScorer)
    assert "seed VIDB" in scorer.description and "not on measured judgments" in scorer.description
    assert scorer.cv_["spearman"] > 0.45  # the shipped fit's own grouped CV
    calls: list[int] = []
    original = enc.encode_for_scorer

    def counting(model, texts, batch_size=32):
        calls.append(len(texts))
        return original(model, texts, batch_size=batch_size)

    monkeypatch.setattr(enc, "encode_for_scorer", counting)
    scorer._cache.clear()
    a = scorer.score(TEXTS, resolve_value("benevolence"))
    b = scorer.score(TEXTS, "mft:care_harm")
    assert calls == [len(TEXTS)]  # the second value reused the cached rows
    for out in (a, b):
        assert out.shape == (5, 3)
        assert np.all(out[:, 1] <= out[:, 0]) and np.all(out[:, 0] <= out[:, 2])
        assert np.all(np.abs(out) <= 10)
    # Caring for a sister supports benevolence more than lying to a friend for gain.
    assert a[0, 0] > a[3, 0] + 1.0
    with pytest.raises(UnknownNameError, match="no VIDB texts"):
        scorer.score(TEXTS, "schwartz:growth")


@pytest.mark.model
def test_state_round_trip_and_mismatch(tmp_path):
    pytest.importorskip("sentence_transformers")
    from valueflow.embed import LocalScorer, load_hives, load_local_scorer
    from valueflow.vidb import load_seed

    scorer = load_local_scorer()
    state = json.loads(json.dumps(scorer.state_dict()))
    seed = load_seed()
    again = LocalScorer(model=load_hives("base"))
    again._cache.update(scorer._cache)
    again.load_state(state, seed)
    assert np.allclose(again.score(TEXTS, "ross:fidelity"), scorer.score(TEXTS, "ross:fidelity"))
    with pytest.raises(DataError, match="does not match this VIDB"):
        LocalScorer(model=load_hives("base")).load_state(state, seed.iloc[:3])


@pytest.mark.model
def test_local_judge_learns_the_vidb_it_is_given_and_caches_the_fit(tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    import valueflow.embed._shipped as shipped
    from valueflow.embed import LocalScorer
    from valueflow.errors import UnknownNameError
    from valueflow.evaluate import prepare_score
    from valueflow.vidb import load_seed

    monkeypatch.setenv("VALUEFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(shipped, "_FITTED", {})
    seed = load_seed()
    bene = seed[seed.value == "schwartz:benevolence"].sample(frac=1.0, random_state=0)
    train, test = bene.iloc[:45], bene.iloc[45:]
    # A user VIDB for a sub-value the seed has no texts for: only a refit can score it.
    path = tmp_path / "caring.csv"
    train.assign(value="schwartz:benevolence_caring")[["text", "value", "intensity"]].to_csv(
        path, index=False)
    with pytest.raises(UnknownNameError, match="no VIDB texts"):
        shipped.load_local_scorer().score(["x"], "schwartz:benevolence_caring")

    job = prepare_score(test.text.tolist(), "benevolence_caring", "local", str(path))
    judge = job.judge
    assert isinstance(judge, LocalScorer) and "caring.csv" in judge.description
    assert "valueflow-seed" in judge.description  # the seed fills in the other values
    pred = judge.score(test.text.tolist(), "schwartz:benevolence_caring")[:, 0]
    rho = float(np.corrcoef(np.argsort(np.argsort(pred)),
                            np.argsort(np.argsort(test.intensity.to_numpy())))[0, 1])
    assert rho > 0.3, rho
    (entry,) = (tmp_path / "cache").iterdir()
    assert (entry / "state.json").is_file() and (entry / "emb.npz").is_file()

    # A new process (empty memo) loads the fit from the cache instead of fitting again.
    monkeypatch.setattr(shipped, "_FITTED", {})

    def no_fit(self, vidb):
        raise AssertionError("refitted instead of loading the cached fit")

    monkeypatch.setattr(LocalScorer, "fit", no_fit)
    again = prepare_score(test.text.tolist(), "benevolence_caring", "local", str(path)).judge
    assert np.allclose(again.score(test.text.tolist(), "schwartz:benevolence_caring")[:, 0], pred,
                       atol=1e-3)


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


def test_shipped_artefacts_match_the_seed_vidb():
    """Changing the seed without regenerating the shipped files would make every start refit
    (seconds) and ship a head trained on other texts: catch it here (see DEVELOPERS.md)."""
    from valueflow.embed._model import default_model_dir
    from valueflow.embed._shipped import _data_dir, texts_hash
    from valueflow.vidb import load_seed

    seed = load_seed()
    h = texts_hash(seed["text"].astype(str).tolist())
    state = json.loads((_data_dir() / "local_scorer.json").read_text(encoding="utf-8"))
    assert state["seed_hash"] == h
    with np.load(_data_dir() / "seed_base_emb.npz") as z:
        assert str(z["hash"]) == h and z["emb"].shape[0] == len(seed)
    meta = json.loads((default_model_dir() / "hives.json").read_text(encoding="utf-8"))
    assert meta["n_train_texts"] + meta["n_heldout_texts"] == len(seed)
