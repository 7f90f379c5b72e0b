"""Full fine-tuning through the sentence-transformers trainer: dataset rows, batch sampler,
loss, and a tiny real run on the bundled MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("datasets")
pytest.importorskip("sentence_transformers")

from valueflow.embed import build_labels
from valueflow.embed._sampler import CrossTheoryBatchSampler, HierarchicalBatchSampler
from valueflow.embed._train_st import HIER_ROW, HiVESBatchSampler, HiVESTrainingLoss, _rows
from valueflow.theories import get_registry

LINKED = ["mft:care_harm", "ross:beneficence", "mft:fairness_cheating", "ross:justice"]


def toy_vidb(per: int = 8):
    """Texts of four values that cross-theory anchors link (care ~ beneficence, ...)."""
    import pandas as pd

    return pd.DataFrame([{"text": f"{v} text {k}", "value": v,
                          "intensity": 6.0 if k % 2 == 0 else -6.0}
                         for v in LINKED for k in range(per)])


def _setup(per: int = 8):
    df = toy_vidb(per)
    labels = build_labels(df)
    texts = df["text"].tolist()
    anchors = [list(a.members) for a in get_registry().anchors]
    return df, labels, texts, anchors


def test_dataset_rows_and_sampler_stages():
    _df, labels, texts, anchors = _setup()
    ds_texts, ds_labels, index = _rows(labels, texts, anchors)
    n = len(texts)
    assert ds_texts[:n] == texts and all(lab[-1] == HIER_ROW for lab in ds_labels[:n])
    assert len(ds_texts) > n  # the toy values are linked across theories by anchors
    s1 = HierarchicalBatchSampler(labels, batch_size=16, seed=0)
    s2 = CrossTheoryBatchSampler(labels, anchors, s1, seed=0)
    sampler = HiVESBatchSampler(ds_texts, s1, s2, epochs_stage1=1, anchor_index=index,
                                batch_size=16)
    sampler.set_epoch(0)
    first = list(sampler)
    assert len(first) == len(sampler) and all(i < n for b in first for i in b)
    sampler.set_epoch(1)
    anchor_rows = 0
    for b in sampler:
        extra = [i for i in b if i >= n]
        anchor_rows += len(extra)
        for i in extra:  # an anchor copy: the same text, labelled with its anchor group
            src = ds_texts.index(ds_texts[i])
            assert ds_labels[i][:-1] == ds_labels[src][:-1] and ds_labels[i][-1] >= 0
    assert anchor_rows > 0 and sampler.stages_seen == [1, 2]


def test_training_loss_uses_each_part_for_its_term():
    import torch

    class Identity(torch.nn.Module):
        def forward(self, features):
            return {"sentence_embedding": features["x"]}

    _df, labels, texts, anchors = _setup()
    _, ds_labels, _ = _rows(labels, texts, anchors)
    lab = torch.tensor(ds_labels)
    torch.manual_seed(0)
    x = torch.randn(len(ds_labels), 8, requires_grad=True)
    loss_fn = HiVESTrainingLoss(Identity(), labels.levels.shape[1], ortho_weight=0.0,
                                anchor_weight=0.0)
    only_hier = loss_fn([{"x": x}], lab)
    hier_rows = lab[:, -1] == HIER_ROW
    direct = loss_fn.hier(x[hier_rows], lab[hier_rows, :-3], lab[hier_rows, -3],
                          lab[hier_rows, -2])
    assert torch.allclose(only_hier, direct)
    loss_fn.anchor_weight = 1.0
    with_anchor = loss_fn([{"x": x}], lab)
    assert float(with_anchor.detach()) > float(only_hier.detach())  # + the InfoNCE term
    with_anchor.backward()
    assert x.grad is not None and float(x.grad[~hier_rows].abs().sum()) > 0


@pytest.mark.model
def test_full_fine_tuning_runs_both_stages_and_resumes(tmp_path):
    from valueflow.embed import TrainConfig, load_hives, train_hives

    df = toy_vidb(8)
    cfg = TrainConfig(mode="full", epochs_stage1=1, epochs_stage2=1, batch_size=16,
                      holdout=0.0, lr=2e-5)
    out = tmp_path / "full"
    m = train_hives(df, out=out, config=cfg)
    assert m.meta["kind"] == "full"
    assert [h["stage"] for h in m.meta["history"]] == [1, 2]
    assert any((out / "trainer").glob("checkpoint-*"))
    probe = ["I stayed with my friend in hospital.", "I lied to my friend."]
    tuned = load_hives(out).encode(probe)
    assert tuned.shape == (2, 384)
    assert not np.allclose(tuned, load_hives("base").encode(probe), atol=1e-4)
    again = train_hives(df, out=out, config=cfg, resume=True)  # nothing left to train
    assert [h["stage"] for h in again.meta["history"]] == [1, 2]
    assert np.allclose(load_hives(again.base).encode(probe), tuned, atol=1e-5)
