"""Evaluator metrics on hand-built embeddings; a tiny training run with save, load, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valueflow.embed import (
    HiVESEvaluator,
    HiVESModel,
    TrainConfig,
    build_labels,
    hierarchy_metrics,
    load_hives,
    train_hives,
)
from valueflow.errors import ConfigError

VALUES = ["mft:care_harm", "mft:fairness_cheating", "ross:fidelity", "ross:justice"]


def toy_vidb(per: int = 8) -> pd.DataFrame:
    rows = []
    for v in VALUES:
        for k in range(per):
            rows.append({"text": f"{v} text {k}", "value": v,
                         "intensity": 6.0 if k % 2 == 0 else -6.0})
    return pd.DataFrame(rows)


def ideal_embeddings(lab) -> np.ndarray:
    """Theory > value > direction blocks: similarity ordering is exactly the hierarchy."""
    n_t, n_v = len(lab.theories), len(lab.values)
    e = np.zeros((len(lab), n_t + n_v + 2 * n_v))
    e[np.arange(len(lab)), lab.theory] = 3.0
    e[np.arange(len(lab)), n_t + lab.value] = 2.0
    e[np.arange(len(lab)), n_t + n_v + 2 * lab.value + (lab.direction > 0)] = 1.0
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_metrics_of_ideal_and_random_embeddings():
    df = toy_vidb()
    lab = build_labels(df)
    e = ideal_embeddings(lab)
    q, p = np.arange(0, len(df), 4), np.setdiff1d(np.arange(len(df)), np.arange(0, len(df), 4))
    m = hierarchy_metrics(e[q], lab.subset(q), e[p], lab.subset(p))
    assert m["rank_pairwise"] == 1.0 and m["rank_strict"] == 1.0
    assert m["knn_value"] == 1.0 and m["knn_direction"] == 1.0 and m["knn_level1"] == 1.0
    assert m["sim_corr"] > 0.6
    # Direction vectors of different values live in different blocks: orthogonal.
    assert m["value_dir_abs_cos"] == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    r = rng.normal(size=e.shape)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    mr = hierarchy_metrics(r[q], lab.subset(q), r[p], lab.subset(p), draws=50)
    assert 0.35 < mr["rank_pairwise"] < 0.65
    assert mr["rank_strict"] < 0.3
    assert abs(mr["sim_corr"]) < 0.2 < m["sim_corr"]


def test_swapping_direction_breaks_ranking():
    df = toy_vidb()
    lab = build_labels(df)
    e = ideal_embeddings(lab)
    flipped = build_labels(df.assign(intensity=-df.intensity))
    q, p = np.arange(0, len(df), 4), np.setdiff1d(np.arange(len(df)), np.arange(0, len(df), 4))
    m = hierarchy_metrics(e[q], flipped.subset(q), e[p], lab.subset(p))
    assert m["knn_direction"] == 0.0 and m["rank_pairwise"] < 1.0


def test_tiny_training_run_saves_loads_and_resumes(tmp_path):
    df = toy_vidb(10)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(len(df), 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    cfg = TrainConfig(epochs_stage1=2, epochs_stage2=1, batch_size=16, hidden=8, holdout=0.0,
                      ensemble=2, head_input="last")
    out = tmp_path / "m"
    m = train_hives(df, out=out, config=cfg, base_embeddings=base)
    assert [[h["stage"] for h in hist] for hist in m.meta["history"]] == [[1, 1, 2]] * 2
    assert m.head is not None and m.head["W1"].shape == (16, 16)  # two members of width 8
    assert (out / "checkpoint.pt").is_file() and (out / "checkpoint-1.pt").is_file()
    loaded = load_hives(out)
    assert np.allclose(loaded.apply_head(base), m.apply_head(base), atol=1e-6)
    assert not np.allclose(m.apply_head(base), base, atol=1e-3)  # the head learned something
    cfg2 = cfg.model_copy(update={"epochs_stage2": 2})
    with pytest.raises(ConfigError, match="other settings"):
        train_hives(df, out=out, config=cfg2, base_embeddings=base, resume=True)
    # Same settings: nothing left to do, the result is the saved one.
    again = train_hives(df, out=out, config=cfg, base_embeddings=base, resume=True)
    assert again.meta["history"] == m.meta["history"]
    assert np.allclose(again.apply_head(base), m.apply_head(base), atol=1e-6)


def test_ensemble_head_is_the_mean_of_its_members():
    import torch

    from valueflow.embed._train import _merge_heads, _Net

    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 6)).astype(np.float32)
    cfg = TrainConfig(hidden=3, input_dropout=0.5, head_input="last")
    nets = [_Net(cfg, x, seed) for seed in (0, 1, 2)]
    for net in nets:  # the output layer starts at zero: give it weights
        torch.nn.init.normal_(net.module["lin2"].weight)
        torch.nn.init.normal_(net.module["lin2"].bias)
    idx = np.arange(12)
    with torch.no_grad():
        mean = torch.stack([n(idx, train=False) for n in nets]).mean(0).numpy()
    merged = HiVESModel(head=_merge_heads(nets))
    want = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    assert np.allclose(merged.apply_head(x), want, atol=1e-5)
    # Dropout acts only while training.
    assert not np.allclose(nets[0](idx, train=True).detach().numpy(),
                           nets[0](idx, train=False).detach().numpy())


def test_a_head_reading_middle_layers_keeps_the_residual_on_the_base_embedding(tmp_path):
    df = toy_vidb(10)
    rng = np.random.default_rng(2)
    base, mid = (rng.normal(size=(len(df), 8)).astype(np.float32) for _ in range(2))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    cfg = TrainConfig(epochs_stage1=2, epochs_stage2=1, batch_size=16, hidden=4, holdout=0.0,
                      ensemble=2)
    assert cfg.head_input == "last+mid"
    with pytest.raises(ConfigError, match="needs base_mid"):
        train_hives(df, config=cfg, base_embeddings=base)
    m = train_hives(df, out=tmp_path / "m", config=cfg, base_embeddings=base, base_mid=mid)
    assert m.needs_mid and m.head["W1"].shape == (16, 8) and m.head["W2"].shape == (8, 8)
    with pytest.raises(ConfigError, match="reads middle-layer features"):
        m.apply_head(base)
    out = m.apply_head(base, mid)
    assert out.shape == (len(df), 8) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    # The middle-layer features matter: other features, other embeddings.
    assert not np.allclose(m.apply_head(base, mid[::-1]), out, atol=1e-4)
    assert np.allclose(load_hives(tmp_path / "m").apply_head(base, mid), out, atol=1e-6)


def test_validation_picks_the_best_epoch_and_refit_trains_that_long():
    df = toy_vidb(12)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(len(df), 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    cfg = TrainConfig(epochs_stage1=3, epochs_stage2=1, batch_size=16, hidden=8, holdout=0.0,
                      ensemble=1, val_fraction=0.25, head_input="last")
    m = train_hives(df, config=cfg, base_embeddings=base)
    scores = [h["val_rank_pairwise"] for h in m.meta["history"]]
    sel = m.meta["selection"]
    assert sel["best_epoch"] == int(np.argmax(scores)) + 1 and sel["val_score"] == max(scores)
    assert sel["n_val_texts"] > 0
    refit = train_hives(df, config=cfg.model_copy(update={"refit": True}), base_embeddings=base)
    assert len(refit.meta["history"]) == refit.meta["selection"]["best_epoch"]
    with pytest.raises(ConfigError, match="refit needs a validation share"):
        train_hives(df, config=cfg.model_copy(update={"refit": True, "val_fraction": 0.0}),
                    base_embeddings=base)


def test_theory_rows_are_labelled_by_direction_and_node():
    from valueflow.embed._train import theory_rows
    from valueflow.theories import get_registry

    rows = theory_rows(["mft:care_harm", "schwartz:benevolence"])
    assert set(rows.value) == {"mft:care_harm", "schwartz:benevolence"}
    reg = get_registry()
    care = reg.get("mft:care_harm")
    judge = care.judge_definition or ""
    own = rows[rows.value == "mft:care_harm"]
    by_text = dict(zip(own.text, own.intensity, strict=True))
    assert by_text[care.definition] > 0
    assert by_text[care.phrasings[-2]] < 0 < by_text[care.phrasings[2]]
    assert care.phrasings[0] not in by_text  # neutral phrasings are left out
    halves = [t for t in by_text if t in judge]
    assert sorted(np.sign([by_text[t] for t in halves])) == [-1, 1]
    assert all(by_text[t] < 0 for t in halves if t.startswith("It opposes"))
    deeper = own[own.node.notna()]
    assert len(deeper) and (deeper.intensity > 0).all()
    for node_id in deeper.node:
        assert "mft:care_harm" in [n.id for n in reg.theory_of(reg.get(node_id)).path(node_id)]
    lab = build_labels(rows)  # valid VIDB rows
    assert set(lab.direction.tolist()) == {-1, 1}


def test_bad_model_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a HiVES model folder"):
        load_hives(tmp_path)


def test_evaluator_names_its_primary_metric():
    assert HiVESEvaluator.primary_metric == "rank_pairwise"


def test_evaluator_scores_exactly_the_rows_it_is_told_to_hold_out():
    from valueflow.errors import DataError

    df = toy_vidb()
    held = df["value"].eq("ross:justice").to_numpy()
    ev = HiVESEvaluator(df, held_out=held)
    assert set(ev.held_idx) == set(np.flatnonzero(held))
    assert set(ev.train_idx) == set(np.flatnonzero(~held))
    with pytest.raises(DataError, match="mark some rows"):
        HiVESEvaluator(df, held_out=np.ones(len(df), bool))
    with pytest.raises(DataError, match="mark some rows"):
        HiVESEvaluator(df, held_out=held[:-1])


def test_hives_evaluate_names_the_seed_registers_it_knows(capsys):
    from tests.conftest import run_main
    from valueflow.vidb import load_seed, seed_registers

    known = set(seed_registers(load_seed()))
    assert {"news", "dialogue", "phrase", "v1-sentences"} <= known
    assert run_main("hives", "evaluate", "--registers", "news,tweets") == 2
    err = capsys.readouterr().err
    assert "unknown seed register(s): tweets" in err and "dialogue" in err
    assert run_main("hives", "evaluate", "--registers", "news", "--data", "x.csv") == 2
    assert "seed VIDB only" in capsys.readouterr().err
