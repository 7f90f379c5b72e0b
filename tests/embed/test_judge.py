"""The fine-tuned local judge: LoRA merge, targets, batches, refits, intervals, the shipped model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from valueflow.embed._finetune import (
    _ordered_pairs,
    _pair_ids,
    judge_targets,
    length_batches,
)
from valueflow.embed._judge import (
    STRENGTH_EDGES,
    Calibration,
    RelevanceHeads,
    ValueJudge,
    conformal_widths,
    fit_calibration,
    logistic_heads,
    relevance_labels,
    ridge_heads,
)
from valueflow.errors import DataError

HELDOUT = Path(__file__).parent / "data" / "heldout_register.csv"


def _tiny_bert():
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    return BertModel(cfg).eval()


def test_lora_merged_weights_give_the_wrapped_models_output():
    torch = pytest.importorskip("torch")
    from valueflow.embed._lora import add_lora, lora_state, merge_adapter

    wrapped, plain = _tiny_bert(), _tiny_bert()
    names = add_lora(wrapped, rank=4, alpha=8, dropout=0.0, layers=range(1, 3))
    assert names and all(".layer.0." not in n for n in names)  # only the chosen blocks
    assert {n.split(".")[-1] for n in names} >= {"query", "value", "dense"}
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith((".A", ".B")) for n in trainable)
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if n.endswith(".B"):
                p.normal_()  # B starts at 0 (no change); give the adapters an effect
    ids = torch.randint(0, 50, (3, 7))
    with torch.no_grad():
        want = wrapped(input_ids=ids).last_hidden_state
        before = plain(input_ids=ids).last_hidden_state
        assert merge_adapter(plain, lora_state(wrapped)) == len(names)
        got = plain(input_ids=ids).last_hidden_state
    assert not torch.allclose(before, want, atol=1e-3)
    assert torch.allclose(got, want, atol=1e-4)
    bad = {"encoder.layer.9.attention.self.query.A": torch.zeros(4, 16),
           "encoder.layer.9.attention.self.query.B": torch.zeros(16, 4)}
    with pytest.raises(ValueError, match="not in this encoder"):
        merge_adapter(plain, bad)


def test_upper_pass_over_cached_lower_blocks_equals_the_full_encoder():
    torch = pytest.importorskip("torch")
    from valueflow.embed._finetune import _additive_mask, _upper_pass

    bert = _tiny_bert()
    lengths = [5, 2, 7]
    ids = torch.randint(1, 50, (3, 7))
    mask = torch.zeros(3, 7)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    with torch.no_grad():
        full = bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        h = bert.embeddings(input_ids=ids)
        for layer in bert.encoder.layer[:1]:
            out = layer(h, attention_mask=_additive_mask(mask, h.dtype))
            h = out[0] if isinstance(out, tuple) else out
        lower = [h[i, :n].clone() for i, n in enumerate(lengths)]
        z = _upper_pass(bert, lower, np.arange(3), 1, "cpu")
    m = mask.unsqueeze(-1)
    ref = torch.nn.functional.normalize((full * m).sum(1) / m.sum(1), dim=-1)
    assert torch.allclose(z, ref, atol=1e-5)


def test_judge_targets_own_value_linked_values_and_the_rest():
    linked = {"a": {"b"}, "b": {"a"}}
    y, w = judge_targets(["a", "c"], np.array([5.0, -10.0]), ["a", "b", "c"], linked, 0.2)
    assert np.allclose(y, [[0.5, 0, 0], [0, 0, -1.0]])
    # a's text says nothing about b (linked): weight 0; about c: a 0 at the off weight
    assert np.allclose(w, [[1, 0, 0.2], [0.2, 0.2, 1]])


def test_epoch_batches_hold_every_row_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 90, 103)
    lb = length_batches(lengths, rng, 16)
    assert sorted(np.concatenate(lb).tolist()) == list(range(103))
    # similar lengths share a batch: far less padding than random batches
    spread = np.mean([np.ptp(lengths[b]) for b in lb])
    assert spread < 0.5 * np.ptp(lengths)


def test_minimal_pairs_share_a_batch_and_are_ordered_by_intensity():
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({"value": ["a"] * n, "intensity": rng.integers(-9, 10, n),
                          "pair": [f"p{i // 2}" if i < 120 else None for i in range(n)]})
    frame.loc[1, "value"] = "b"  # the same pair id under another value is another pair
    ids = _pair_ids(frame)
    assert ids[0] != ids[1] and ids[2] == ids[3] and ids[119] >= 0 and np.all(ids[120:] == -1)
    lengths = rng.integers(1, 90, n)
    together = 0
    for _ in range(5):
        batches = length_batches(lengths, rng, 16, ids)
        assert sorted(np.concatenate(batches).tolist()) == list(range(n))
        where = {int(r): k for k, b in enumerate(batches) for r in b}
        together += sum(where[2 * i] == where[2 * i + 1] for i in range(1, 60))
    # only a batch boundary can split a pair: nearly all of them share a batch
    assert together >= 0.85 * 5 * 59
    pair = np.array([0, 0, 1, 1, 2, 2, -1, 3])
    col = np.array([0, 0, 1, 1, 0, 0, 0, -1])
    y = np.array([5.0, -3.0, -2.0, 4.0, 1.0, 1.0, 7.0, 2.0])
    i, j, sgn = _ordered_pairs(pair, col, y)
    # equal intensities, unpaired rows and values without a head give no pair
    assert i.tolist() == [0, 2] and j.tolist() == [1, 3] and sgn.tolist() == [1.0, -1.0]


def test_ranked_pairs_are_same_value_rows_far_enough_apart():
    col = np.array([0, 0, 0, 1, 1, -1, -1, 0])
    y = np.array([5.0, -3.0, 4.0, 2.0, 2.5, 9.0, -9.0, 6.0])
    i, j, sgn = _ordered_pairs(col, col, y, 2.0)
    got = sorted(zip(i.tolist(), j.tolist(), sgn.tolist(), strict=True))
    # value 0: rows 0, 1, 2, 7; (0, 2) and (0, 7) are 1 apart and (2, 7) 2 apart; value 1's
    # rows differ by 0.5; rows without a head (-1) never pair, not even with each other
    assert got == [(0, 1, 1.0), (1, 2, -1.0), (1, 7, -1.0), (2, 7, -1.0)]
    assert all(y[a] != y[b] and col[a] == col[b] for a, b in zip(i, j, strict=True))
    assert len(_ordered_pairs(col, col, y, 20.0)[0]) == 0
    # gap 0 still leaves out equal intensities (a pair with no order to learn)
    g0 = np.zeros(3, int)
    i0, j0, s0 = _ordered_pairs(g0, g0, np.array([1.0, 1.0, 2.0]), 0.0)
    assert list(zip(i0.tolist(), j0.tolist(), strict=True)) == [(0, 2), (1, 2)] and np.all(s0 == -1)


def test_stance_pairs_are_well_formed_and_the_heldout_values_stay_out_of_training():
    from valueflow.vidb._seed import (
        STANCE_HELDOUT,
        judge_training_frame,
        load_seed,
        load_stance_pairs,
    )

    pairs = load_stance_pairs()
    assert pairs["value"].nunique() == 32 and len(pairs) >= 32 * 80
    sizes = pairs.groupby("pair").size()
    assert (sizes == 2).all()
    kinds = {"negation", "refusal", "attitude", "reversal", "sarcasm", "conflict", "degree"}
    assert set(pairs["contrast"]) == kinds
    for (_, contrast), g in pairs.groupby(["pair", "contrast"]):
        a, b = g["intensity"].tolist()
        # every pair but a degree pair changes the stance (or one side is neutral)
        assert contrast == "degree" or a * b <= 0, g[["text", "intensity"]]
    held = load_stance_pairs("heldout")
    assert set(held["value"]) == set(STANCE_HELDOUT)
    train = judge_training_frame("train")
    assert not set(train["text"]) & set(held["text"]) - set(load_seed()["text"])
    assert len(train) == len(load_seed()) + len(load_stance_pairs("train"))
    assert train["pair"].notna().sum() > len(load_stance_pairs("train"))  # seed pairs kept
    shipped = judge_training_frame()  # the shipped recipe: the seed and its own pairs
    assert len(shipped) == len(load_seed()) and shipped["pair"].notna().sum() > 1000


def test_conformal_widths_split_by_prediction_strength():
    rng = np.random.default_rng(1)
    pred = np.concatenate([rng.uniform(-2, 2, 400), rng.uniform(6, 10, 400)])
    noise = np.concatenate([rng.normal(0, 4, 400), rng.normal(0, 1, 400)])
    w = conformal_widths(pred + noise, pred)
    assert len(w) == len(STRENGTH_EDGES) + 1
    assert w[0] == pytest.approx(4 * 1.645, rel=0.2) and w[2] == pytest.approx(1.645, rel=0.25)
    assert w[1] == conformal_widths(pred + noise, pred, min_n=10**6)[0]  # too few: pooled


class _FakeModel:
    """Embeds a text as a fixed random unit vector (deterministic per text)."""

    name = "fake"

    def __init__(self, dim: int = 24) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        rows = []
        for t in texts:
            r = np.random.default_rng(abs(hash(t)) % 2**32).normal(size=self.dim)
            rows.append(r / np.linalg.norm(r))
        return np.array(rows, np.float32)


def test_ridge_heads_recover_a_linear_rule():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, 5))
    true_w = np.array([[1.0, -2, 0, 0, 0.5], [0, 0, 3, 0, 0]])
    y = z @ true_w.T + np.array([0.1, -0.3])
    W, b = ridge_heads(z, y, np.ones_like(y), lam=1e-6)
    assert np.allclose(W, true_w, atol=1e-4) and np.allclose(b, [0.1, -0.3], atol=1e-4)


def test_relevance_labels_own_value_linked_values_and_unsure_rows():
    linked = {"schwartz:benevolence": {"mft:care_harm"},
              "mft:care_harm": {"schwartz:benevolence"}}
    values = ["schwartz:benevolence", "mft:care_harm", "schwartz:power"]
    rows = ["schwartz:benevolence", "schwartz:benevolence", "schwartz:benevolence",
            "schwartz:power"]
    y, m = relevance_labels(rows, np.array([-6.0, 1.5, 0.0, 4.0]), values, linked)
    # strong either way: relevant; a linked value: left out; other values: irrelevant
    assert y[0].tolist() == [1, 0, 0] and m[0].tolist() == [1, 0, 1]
    assert y[1].tolist() == [0, 0, 0] and m[1].tolist() == [0, 0, 1]  # 1.5: unsure, left out
    assert y[2].tolist() == [0, 0, 0] and m[2].tolist() == [1, 0, 1]  # neutral: irrelevant
    assert y[3].tolist() == [0, 0, 1] and m[3].tolist() == [1, 1, 1]


def test_logistic_heads_separate_classes_and_balance_them():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2000, 4))
    y = np.column_stack([z[:, 0] > 0, z[:, 1] > 1.5]).astype(float)  # the second: ~7 % positive
    W, b = logistic_heads(z, y, np.ones_like(y), lam=0.01)
    p = 1 / (1 + np.exp(-(z @ W.T + b)))
    assert np.mean((p[:, 0] > 0.5) == (y[:, 0] == 1)) > 0.97
    # classes weighted equally: the rare class is found, not swamped by the common one
    assert np.mean(p[y[:, 1] == 1, 1] > 0.5) > 0.9 and np.mean(p[y[:, 1] == 0, 1] < 0.5) > 0.9
    # masked rows do not count: flipping their labels changes nothing
    mask = np.ones_like(y)
    mask[:500] = 0
    flipped = y.copy()
    flipped[:500] = 1 - flipped[:500]
    W1, b1 = logistic_heads(z, y, mask, lam=0.01)
    W2, b2 = logistic_heads(z, flipped, mask, lam=0.01)
    assert np.allclose(W1, W2, atol=1e-6) and np.allclose(b1, b2, atol=1e-6)
    with pytest.raises(DataError, match="no relevant"):
        logistic_heads(z, np.zeros_like(y), np.ones_like(y))


def test_judge_shrinks_intensities_of_texts_its_relevance_heads_find_irrelevant():
    model = _FakeModel()
    texts = [f"text {i}" for i in range(30)]
    rng = np.random.default_rng(4)
    W = rng.normal(size=(2, model.dim)) * 0.05
    logit = np.log(np.array([0.05, 0.9]) / (1 - np.array([0.05, 0.9])))
    rel = RelevanceHeads(np.zeros((2, model.dim)), logit, ("ross:fidelity", "schwartz:power"))
    judge = ValueJudge(model, W, np.zeros(2), ["ross:fidelity", "schwartz:power"],
                       {"*": [5.0, 4.0, 3.0]}, "local judge", relevance=rel)
    plain = ValueJudge(model, W, np.zeros(2), ["ross:fidelity", "schwartz:power"],
                       {"*": [5.0, 4.0, 3.0]}, "local judge")
    # relevance 0.05 < floor 0.5: a tenth of the intensity; 0.9 >= floor: unchanged
    assert judge.floor == 0.5
    assert np.allclose(judge.score(texts, "fidelity")[:, 0],
                       plain.score(texts, "fidelity")[:, 0] / 10)
    assert np.allclose(judge.score(texts, "power")[:, 0], plain.score(texts, "power")[:, 0])
    assert np.allclose(judge.score_all(texts), plain.score_all(texts) * [1 / 10, 1.0])
    r = judge.relevance(texts[:3], ["schwartz:power", "ross:fidelity"])
    assert np.allclose(r, [[0.9, 0.05]] * 3)
    assert np.isnan(plain.relevance(texts[:2])).all()  # no heads: unknown, not 0 or 1


def test_relevance_heads_learn_topics_from_a_vidb_and_a_refit_keeps_the_others():
    import pandas as pd

    model = _FakeModel()
    power = [f"power {i}" for i in range(120)]
    fidelity = [f"fidelity {i}" for i in range(120)]
    z = model.encode(power + fidelity)
    # topic lives in the embedding: power texts lean one way, fidelity texts the other
    topic = np.random.default_rng(6).normal(size=model.dim)
    topic /= np.linalg.norm(topic)
    shifted = {t: (row + 0.8 * s * topic) for t, row, s in
               zip(power + fidelity, z, [1] * 120 + [-1] * 120, strict=True)}

    class Topical(_FakeModel):
        def encode(self, texts):
            return np.array([shifted[t] for t in texts], np.float32)

    m = Topical()
    frame = pd.DataFrame({"text": power + fidelity,
                          "value": ["schwartz:power"] * 120 + ["ross:fidelity"] * 120,
                          "intensity": rng_intensities(240)})
    heads = RelevanceHeads.fit(m.encode(frame.text.tolist()), frame.text.tolist(),
                               frame.value.tolist(), frame.intensity.to_numpy(),
                               ["schwartz:power", "ross:fidelity"], lam=0.1)
    p = heads(m.encode(power[:20] + fidelity[:20]))
    assert (p[:20, 0] > p[20:, 0]).all() and (p[20:, 1] > p[:20, 1]).all()
    # a VIDB of one value alone cannot teach what is off-topic: no head, no gate
    alone = RelevanceHeads.fit(m.encode(power), power, ["schwartz:power"] * 120,
                               rng_intensities(120), ["schwartz:power"])
    assert alone.values == ()
    base = ValueJudge(m, np.zeros((1, m.dim)), np.zeros(1), ["mft:care_harm"],
                      {"*": [5.0, 4.0, 3.0]}, "local judge: shipped",
                      relevance=RelevanceHeads(np.ones((1, m.dim)), np.zeros(1),
                                               ("mft:care_harm",)))
    judge = base.refit(frame)
    assert judge.relevance_heads is not None
    assert judge.relevance_heads.values == ("mft:care_harm", "ross:fidelity", "schwartz:power")
    assert np.array_equal(judge.relevance_heads.W[0], np.ones(m.dim))  # kept


def rng_intensities(n: int) -> np.ndarray:
    return np.random.default_rng(n).choice([-8.0, -5.0, 0.0, 5.0, 8.0], size=n)


def test_calibration_undoes_a_cautious_judge_and_keeps_the_order():
    rng = np.random.default_rng(7)
    y = rng.uniform(-8, 8, 4000)
    raw = y / 3 + rng.normal(0, 0.3, len(y))  # right order, a third of the size
    cal = fit_calibration(raw, y, ["schwartz:power"], bins=20)
    assert np.all(np.diff(cal.x) > 0) and np.all(np.diff(cal.y) > 0)
    grid = np.linspace(-2, 2, 9)
    assert np.allclose(cal(grid), 3 * grid, atol=0.6)  # back on the intensity scale
    out = cal(np.sort(raw))
    assert np.all(np.diff(out) >= 0)  # monotone: ranks within a value stay
    assert np.abs(cal(raw) - y).mean() < np.abs(raw - y).mean() / 2
    # beyond the data raw differences carry over at the tail slope, clipped to the scale
    assert cal(np.array([cal.x[-1] + 1.0]))[0] == pytest.approx(cal.y[-1] + cal.slope)
    assert cal(np.array([50.0, -50.0])).tolist() == [10.0, -10.0]
    assert Calibration.from_json(cal.to_json()) == cal
    with pytest.raises(DataError, match="too few"):
        fit_calibration(raw[:10], y[:10])


def test_judge_applies_its_calibration_to_shipped_heads_not_refitted_ones():
    import pandas as pd

    model = _FakeModel()
    texts = [f"text {i}" for i in range(240)]
    doubled = Calibration((-1.0, 1.0), (-2.0, 2.0), 2.0, frozenset({"ross:fidelity",
                                                                      "schwartz:power"}))
    rng = np.random.default_rng(1)
    W = rng.normal(size=(2, model.dim)) * 0.05
    base = ValueJudge(model, W, np.zeros(2), ["ross:fidelity", "schwartz:power"],
                      {"*": [5.0, 4.0, 3.0]}, "local judge: shipped", doubled)
    z = model.encode(texts[:20])
    raw = 10 * z @ W.T
    # float32 embeddings: compare to float32 precision (values near 0 differ relatively)
    assert np.allclose(base.score(texts[:20], "ross:fidelity")[:, 0],
                       np.clip(2 * raw[:, 0], -10, 10), atol=1e-5)
    assert np.allclose(base.score_all(texts[:20]), np.clip(2 * raw, -10, 10), atol=1e-5)
    y = np.clip(40 * model.encode(texts) @ W[1], -10, 10)
    refit = base.refit(pd.DataFrame({"text": texts, "value": "schwartz:power", "intensity": y}))
    assert refit.calibration is not None
    assert refit.calibration.values == {"ross:fidelity"}  # its own ridge is on the scale
    assert np.allclose(refit.score(texts[:20], "ross:fidelity")[:, 0],
                       base.score(texts[:20], "ross:fidelity")[:, 0])
    z_all = refit.embed(texts[:20])
    assert np.allclose(refit.score_all(texts[:20])[:, 1],
                       np.clip(10 * (z_all @ refit.W[1] + refit.b[1]), -10, 10), atol=1e-5)


def test_refit_learns_the_users_values_and_keeps_the_others():
    import pandas as pd

    model = _FakeModel()
    texts = [f"text {i}" for i in range(240)]
    z = model.encode(texts)
    direction = np.random.default_rng(5).normal(size=model.dim)
    y = np.clip(8 * z @ direction / np.abs(z @ direction).max(), -10, 10)
    frame = pd.DataFrame({"text": texts, "value": "schwartz:power", "intensity": y})
    shipped_w = np.ones((1, model.dim))
    base = ValueJudge(model, shipped_w, np.zeros(1), ["ross:fidelity"], {"*": [5.0, 4.0, 3.0]},
                      "local judge: shipped; more")
    judge = base.refit(frame)
    assert judge.values_ == ("ross:fidelity", "schwartz:power")
    assert np.array_equal(judge.W[0], shipped_w[0])  # the other value is untouched
    out = judge.score(texts[:50], "power")  # a bare name resolves
    assert np.corrcoef(out[:, 0], y[:50])[0, 1] > 0.95
    assert np.all(out[:, 1] <= out[:, 0]) and np.all(out[:, 0] <= out[:, 2])
    assert "refitted on a VIDB of 240 texts" in judge.description
    assert "shipped heads (local judge: shipped)" in judge.description
    calls = model.calls
    judge.score(texts[:50], "schwartz:power")
    assert model.calls == calls  # embeddings cached
    from valueflow.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="no head for"):
        judge.score(["x"], "schwartz:growth")


def _heldout_rows() -> list[dict[str, str]]:
    with HELDOUT.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.model
def test_shipped_judge_protocol_intervals_and_one_encode_per_text(monkeypatch):
    pytest.importorskip("sentence_transformers")
    from valueflow.embed import load_local_scorer
    from valueflow.judges._types import DirectScorer

    judge = load_local_scorer()
    assert isinstance(judge, DirectScorer)
    assert "seed VIDB" in judge.description and "not measured judgments" in judge.description
    texts = ["I stayed up all night to look after my sick sister.",
             "He lied to his best friend to get the promotion they both wanted.",
             "The train to the airport leaves every twenty minutes."]
    judge._cache.clear()
    calls: list[int] = []
    original = judge.model.encode

    def counting(ts, batch_size=32):
        calls.append(len(ts))
        return original(ts, batch_size=batch_size)

    monkeypatch.setattr(judge.model, "encode", counting)
    a = judge.score(texts, "benevolence")
    b = judge.score(texts, "mft:care_harm")
    assert calls == [3]
    for out in (a, b):
        assert out.shape == (3, 3) and np.all(np.abs(out) <= 10)
        assert np.all(out[:, 1] <= out[:, 0]) and np.all(out[:, 0] <= out[:, 2])
    # caring for a sister supports benevolence; lying to a friend for gain opposes it; a
    # timetable says nothing about it and lands nearer 0 than either (calibrated sizes: clear
    # texts land far from 0; neutral texts still get a few points, a known weakness)
    assert a[0, 0] > 3 and a[1, 0] < -2
    assert a[0, 0] - a[1, 0] > 6 and abs(a[2, 0]) < min(a[0, 0], -a[1, 0])


@pytest.mark.model
def test_shipped_judge_beats_the_base_encoder_on_a_register_it_never_saw():
    """Emails and reviews we wrote for this test only: no seed text is in either register."""
    pytest.importorskip("sentence_transformers")
    from scipy.stats import spearmanr

    from valueflow.embed import load_local_scorer
    from valueflow.vidb import load_seed
    from valueflow.vidb._seed import seed_registers

    assert not {"email", "review"} & set(seed_registers(load_seed()))
    rows = _heldout_rows()
    assert len(rows) >= 100
    judge = load_local_scorer()
    from valueflow.embed._validity import PhrasingJudge

    base = PhrasingJudge()
    y = np.array([float(r["intensity"]) for r in rows])
    preds = {}
    for name, j in (("local", judge), ("base", base)):
        p = np.zeros(len(rows))
        for v in sorted({r["value"] for r in rows}):
            idx = [i for i, r in enumerate(rows) if r["value"] == v]
            p[idx] = j.score([rows[i]["text"] for i in idx], v)[:, 0]
        preds[name] = p
    d = np.abs(y) >= 2
    sign = {k: float(np.mean(np.sign(p[d]) == np.sign(y[d]))) for k, p in preds.items()}
    rho = {k: float(spearmanr(y, p)[0]) for k, p in preds.items()}
    assert rho["local"] > rho["base"] + 0.1, rho
    assert sign["local"] > sign["base"] + 0.05, sign
    assert sign["local"] > 0.75 and rho["local"] > 0.5, (sign, rho)


UNSEEN = Path(__file__).parent / "data" / "unseen_registers.csv"


@pytest.mark.model
def test_shipped_judge_measures_six_registers_it_never_saw():
    """Reviews, speeches, fiction, policies, essays and maxims (384 texts each, 12 per value,
    with two minimal pairs per value), written by another hand than the seed and never trained
    on. Shipped judge when written (2026-12-03): Spearman essay 0.43, fiction 0.28, maxim
    0.48, policy 0.58, review 0.59, speech 0.54; the base encoder's phrasing prototypes 0.18,
    -0.05, 0.03, 0.23, 0.10, 0.17."""
    pytest.importorskip("sentence_transformers")
    import pandas as pd

    from valueflow.embed import load_local_scorer
    from valueflow.embed._validity import PhrasingJudge, register_metrics, score_by_value
    from valueflow.vidb import load_seed
    from valueflow.vidb._seed import seed_registers

    df = pd.read_csv(UNSEEN, keep_default_na=False, na_values=[""])
    registers = set(df["register"])
    seed = load_seed()
    assert len(registers) == 6 and not registers & set(seed_registers(seed))
    assert not set(df["text"]) & set(seed["text"])
    local, base = (register_metrics(df, score_by_value(j, df))
                   for j in (load_local_scorer(), PhrasingJudge()))
    for register in registers:
        lo, ba = local[register], base[register]
        assert lo["n"] == 384 and lo["n_pairs"] == 64, (register, lo)
        assert lo["spearman"] > max(0.25, ba["spearman"] + 0.2), (register, lo, ba)
        assert lo["sign_acc"] > max(0.6, ba["sign_acc"] + 0.05), (register, lo, ba)
        assert lo["pairs"] > max(0.7, ba["pairs"] + 0.05), (register, lo, ba)


@pytest.mark.model
def test_shipped_judge_orders_stance_pairs_of_values_it_never_saw_them_for():
    """Minimal pairs (a negation, a refusal, glee against regret, sarcasm ...) for eight values
    whose pairs the judge never trained on, written by another hand than the training pairs."""
    pytest.importorskip("sentence_transformers")
    from valueflow.embed import load_local_scorer
    from valueflow.embed._validity import PhrasingJudge, register_metrics, score_by_value
    from valueflow.vidb._seed import load_stance_pairs

    pairs = load_stance_pairs("heldout")
    assert len(pairs) >= 8 * 80
    acc = {name: register_metrics(pairs, score_by_value(judge, pairs))["all"]["pairs"]
           for name, judge in (("local", load_local_scorer()), ("base", PhrasingJudge()))}
    assert acc["local"] > acc["base"] + 0.08 and acc["local"] > 0.72, acc


@pytest.mark.model
def test_local_judge_learns_the_vidb_it_is_given_and_caches_the_refit(tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    import valueflow.embed._shipped as shipped
    from valueflow.errors import UnknownNameError
    from valueflow.evaluate import prepare_score
    from valueflow.vidb import load_seed

    monkeypatch.setenv("VALUEFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(shipped, "_FITTED", {})
    # 20 seed texts per other value as negatives instead of 150: the same refit, a sixth of
    # the texts to encode on a CI machine
    frame_of = shipped.scorer_training_frame
    monkeypatch.setattr(shipped, "scorer_training_frame",
                        lambda *a, **k: frame_of(*a, **k, off_value_texts=20))
    seed = load_seed()
    bene = seed[seed.value == "schwartz:benevolence"].sample(frac=1.0, random_state=0)
    train, test = bene.iloc[:300], bene.iloc[300:]
    # A user VIDB for a sub-value the judge has no head for: only a refit can score it.
    path = tmp_path / "caring.csv"
    train.assign(value="schwartz:benevolence_caring")[["text", "value", "intensity"]].to_csv(
        path, index=False)
    with pytest.raises(UnknownNameError, match="no head for"):
        shipped.load_local_scorer().score(["x"], "schwartz:benevolence_caring")
    judge = prepare_score(test.text.tolist(), "benevolence_caring", "local", str(path)).judge
    assert "caring.csv" in judge.description and "refitted" in judge.description
    pred = judge.score(test.text.tolist(), "schwartz:benevolence_caring")[:, 0]
    from scipy.stats import spearmanr

    assert spearmanr(pred, test.intensity)[0] > 0.25  # 300 texts, a ridge head: rough
    (entry,) = (tmp_path / "cache").iterdir()
    assert entry.name.startswith("local-judge-") and entry.suffix == ".npz"

    monkeypatch.setattr(shipped, "_FITTED", {})

    def no_refit(self, *a, **k):
        raise AssertionError("refitted instead of loading the cached refit")

    monkeypatch.setattr(ValueJudge, "refit", no_refit)
    again = prepare_score(test.text.tolist(), "benevolence_caring", "local", str(path)).judge
    assert np.allclose(again.score(test.text.tolist(), "schwartz:benevolence_caring")[:, 0],
                       pred, atol=1e-6)
    # a damaged cache entry is refitted and replaced, not a traceback
    entry.write_bytes(entry.read_bytes()[:100])
    monkeypatch.undo()
    monkeypatch.setenv("VALUEFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(shipped, "_FITTED", {})
    monkeypatch.setattr(shipped, "scorer_training_frame",
                        lambda *a, **k: frame_of(*a, **k, off_value_texts=20))
    prepare_score(test.text.tolist(), "benevolence_caring", "local", str(path))
    assert entry.stat().st_size > 1000


def test_shipped_judge_matches_the_seed_vidb():
    """Changing the seed or the stance pairs without retraining would ship a judge trained on
    other texts."""
    from valueflow.embed._model import default_model_dir
    from valueflow.embed._shipped import JUDGE_FILE, texts_hash
    from valueflow.vidb._seed import judge_training_frame

    folder = default_model_dir()
    info = json.loads((folder / JUDGE_FILE).read_text(encoding="utf-8"))
    train = judge_training_frame()
    assert info["seed_hash"] == texts_hash(train["text"].astype(str).tolist())
    meta = json.loads((folder / "hives.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "lora" and meta["n_train_texts"] == len(train)
    from valueflow.embed._shipped import RELEVANCE_FILE
    from valueflow.vidb._seed import load_neutral_texts

    with np.load(folder / RELEVANCE_FILE) as rel:  # refit: write_shipped_relevance()
        assert str(rel["seed_hash"]) == info["seed_hash"]
        assert str(rel["neutral_hash"]) == texts_hash(
            load_neutral_texts()["text"].astype(str).tolist())
        assert set(map(str, rel["values"])) == set(json.loads(
            (folder / JUDGE_FILE).read_text(encoding="utf-8"))["widths"]) - {"*"}
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert total < 10 * 2**20  # what the repository ships for the models stays small


@pytest.mark.model
def test_a_short_finetune_writes_a_judge_that_loads_and_differs_from_the_base(tmp_path):
    pytest.importorskip("sentence_transformers")
    from valueflow.embed import load_hives
    from valueflow.embed._finetune import FineTuneConfig, finetune_encoder
    from valueflow.embed._shipped import load_judge_dir
    from valueflow.vidb import load_seed

    seed = load_seed(["benevolence", "power"])
    frame = pd_sample(seed, 48)
    cfg = FineTuneConfig(rank=4, alpha=8, train_layers=1, batch_size=8, max_steps=4, lr=5e-3)
    folder = finetune_encoder(frame, tmp_path / "m", cfg, verbose=False)
    meta = json.loads((folder / "hives.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "lora" and meta["steps"] == 4 and meta["n_train_texts"] == 48
    judge = load_judge_dir(folder)
    assert set(judge.values_) == {"schwartz:benevolence", "schwartz:power"}
    out = judge.score(frame.text.tolist()[:5], "power")
    assert out.shape == (5, 3) and np.all(np.isfinite(out))
    tuned = judge.model.encode_base(frame.text.tolist()[:5])
    base = load_hives("base").encode_base(frame.text.tolist()[:5])
    assert not np.allclose(tuned, base, atol=1e-4)  # the adapter was trained and merged


@pytest.mark.model
def test_a_finetune_continues_from_a_model_and_trains_on_minimal_pairs(tmp_path):
    pytest.importorskip("sentence_transformers")
    from safetensors.numpy import load_file

    from valueflow.embed._finetune import FineTuneConfig, finetune_encoder
    from valueflow.errors import ConfigError
    from valueflow.vidb._seed import load_stance_pairs

    frame = load_stance_pairs()
    frame = frame[frame["value"].isin(["schwartz:benevolence", "schwartz:power"])]
    frame = frame.iloc[:48].reset_index(drop=True)  # 24 whole pairs
    cfg = FineTuneConfig(rank=4, alpha=8, train_layers=1, batch_size=8, max_steps=3, lr=5e-3,
                         pair_weight=1.0, rank_weight=0.5)
    everyday = ["The bus leaves at nine.", "Can you pass the salt?", "It rained all day."]
    first = finetune_encoder(frame, tmp_path / "a", cfg, verbose=False, neutral=everyday)
    assert json.loads((first / "hives.json").read_text(encoding="utf-8"))["n_neutral_texts"] == 3
    # no steps from a model: the adapter and heads are the model's (the scale round-trips)
    cfg0 = FineTuneConfig(rank=4, alpha=8, train_layers=1, batch_size=8, max_steps=0)
    same = finetune_encoder(frame, tmp_path / "b", cfg0, init=first, verbose=False)
    a, b = load_file(str(first / "adapter.safetensors")), load_file(str(same / "adapter.safetensors"))
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], atol=1e-3) for k in a)
    with np.load(first / "heads.npz") as h1, np.load(same / "heads.npz") as h2:
        assert np.allclose(h1["W"], h2["W"]) and np.any(h1["W"] != 0)
    meta = json.loads((same / "hives.json").read_text(encoding="utf-8"))
    assert meta["continued_from"]["n_train_texts"] == 48
    with pytest.raises(ConfigError, match="pair_weight=-1"):
        FineTuneConfig(pair_weight=-1.0).validate()
    with pytest.raises(ConfigError, match=r"rank_weight=-0\.5"):
        FineTuneConfig(rank_weight=-0.5).validate()
    with pytest.raises(ConfigError, match="rank"):
        finetune_encoder(frame, tmp_path / "c", FineTuneConfig(rank=8, alpha=16, train_layers=1,
                                                              max_steps=0), init=first,
                         verbose=False)


@pytest.mark.model
def test_averaged_finetunes_merge_the_mean_update_and_can_be_trained_further(tmp_path):
    pytest.importorskip("sentence_transformers")
    from valueflow.embed._finetune import FineTuneConfig, average_finetunes, finetune_encoder
    from valueflow.embed._lora import load_adapter
    from valueflow.embed._shipped import load_judge_dir
    from valueflow.errors import ConfigError
    from valueflow.vidb import load_seed

    frame = pd_sample(load_seed(["benevolence", "power"]), 32)
    cfg = FineTuneConfig(rank=4, alpha=8, train_layers=1, batch_size=8, max_steps=3, lr=5e-3)
    a = finetune_encoder(frame, tmp_path / "a", cfg, verbose=False)
    b = finetune_encoder(frame, tmp_path / "b", FineTuneConfig(**{**cfg.__dict__, "seed": 1}),
                         verbose=False)
    avg = average_finetunes([a, b], tmp_path / "avg")
    sa, sb, s = (load_adapter(f / "adapter.safetensors") for f in (a, b, avg))
    for name in (k.removesuffix(".A") for k in sa if k.endswith(".A")):
        assert s[f"{name}.A"].shape[0] == 8  # rank 2 x 4
        assert torch_allclose(_update(s, name), (_update(sa, name) + _update(sb, name)) / 2)
        assert not torch_allclose(_update(sa, name), _update(sb, name))  # the seeds differ
    with np.load(avg / "heads.npz") as h, np.load(a / "heads.npz") as ha, \
            np.load(b / "heads.npz") as hb:
        assert np.allclose(h["W"], (ha["W"] + hb["W"]) / 2, atol=1e-3)
    meta = json.loads((avg / "hives.json").read_text(encoding="utf-8"))
    assert meta["config"]["rank"] == 8 and [m["seed"] for m in meta["averaged_from"]] == [0, 1]
    out = load_judge_dir(avg).score(["I gave my lunch to a hungry classmate."], "benevolence")
    assert out.shape == (1, 3) and np.all(np.isfinite(out))
    # training goes on from the average with its rank (as hives train --init does)
    cfg8 = FineTuneConfig(rank=8, alpha=16, train_layers=1, batch_size=8, max_steps=0)
    cont = finetune_encoder(frame, tmp_path / "c", cfg8, init=avg, verbose=False)
    with np.load(cont / "heads.npz") as h, np.load(avg / "heads.npz") as hv:
        assert np.allclose(h["W"], hv["W"])
    with pytest.raises(ConfigError, match="at least 2"):
        average_finetunes([a], tmp_path / "one")
    other = finetune_encoder(frame[frame.value == "schwartz:power"], tmp_path / "p",
                             FineTuneConfig(**{**cfg.__dict__, "max_steps": 0}), verbose=False)
    with pytest.raises(ConfigError, match="other values"):
        average_finetunes([a, other], tmp_path / "bad")


def _update(state, name):
    """The weight update ``B @ A`` a saved adapter makes to one layer."""
    return state[f"{name}.B"] @ state[f"{name}.A"]


def torch_allclose(x, y):
    """Equal up to the float16 rounding of stored adapters (the updates are ~1e-3)."""
    x, y = x.numpy(), y.numpy()
    return np.abs(x - y).max() <= 1e-2 * max(np.abs(x).max(), np.abs(y).max())


def pd_sample(frame, n):
    return frame.sample(n=n, random_state=0).reset_index(drop=True)


def test_a_judges_version_changes_with_what_decides_its_numbers():
    from valueflow.steer._runner import judge_key

    model = _FakeModel()
    W = np.random.default_rng(0).normal(size=(1, model.dim))
    a = ValueJudge(model, W, np.zeros(1), ["schwartz:power"], {"*": [5.0, 4.0, 3.0]}, "x")
    same = ValueJudge(model, W.copy(), np.zeros(1), ["schwartz:power"], {"*": [9.0] * 3}, "y")
    assert a.version == same.version  # intervals and wording do not change the scores' key
    moved = ValueJudge(model, W + 1e-3, np.zeros(1), ["schwartz:power"], {"*": [5.0] * 3}, "x")
    gated = ValueJudge(model, W, np.zeros(1), ["schwartz:power"], {"*": [5.0] * 3}, "x",
                       relevance=RelevanceHeads(np.zeros((1, model.dim)), np.zeros(1),
                                                ("schwartz:power",)))
    assert len({a.version, moved.version, gated.version}) == 3
    # stored steering scores are keyed by name@version: a changed judge never reuses them
    assert judge_key(a, "local") == f"local@{a.version}"
    assert judge_key(object(), "openai/x") == "openai/x"
