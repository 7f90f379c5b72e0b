"""Evaluator metrics on hand-built embeddings; a tiny training run with save, load, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valueflow.embed import (
    HiVESEvaluator,
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
    cfg = TrainConfig(epochs_stage1=2, epochs_stage2=1, batch_size=16, hidden=8, holdout=0.0)
    out = tmp_path / "m"
    m = train_hives(df, out=out, config=cfg, base_embeddings=base)
    assert [h["stage"] for h in m.meta["history"]] == [1, 1, 2]
    loaded = load_hives(out)
    assert np.allclose(loaded.apply_head(base), m.apply_head(base), atol=1e-6)
    assert not np.allclose(m.apply_head(base), base, atol=1e-3)  # the head learned something
    cfg2 = cfg.model_copy(update={"epochs_stage2": 2})
    with pytest.raises(ConfigError, match="other settings"):
        train_hives(df, out=out, config=cfg2, base_embeddings=base, resume=True)
    # Same settings: nothing left to do, the result is the saved one.
    again = train_hives(df, out=out, config=cfg, base_embeddings=base, resume=True)
    assert again.meta["history"] == m.meta["history"]


def test_bad_model_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a HiVES model folder"):
        load_hives(tmp_path)


def test_evaluator_names_its_primary_metric():
    assert HiVESEvaluator.primary_metric == "rank_pairwise"
