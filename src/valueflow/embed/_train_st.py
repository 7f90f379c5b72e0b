"""Full fine-tuning of a sentence-transformers base with its own trainer.

``mode="full"`` hands the optimisation loop to :class:`sentence_transformers.SentenceTransformerTrainer`
(devices, mixed precision, checkpoints, resume), with three pieces of ours:

* a dataset with one row per training text (the hierarchical part of a batch) and one row per
  (text, cross-theory anchor it belongs to) (the anchor part), each labelled with its level ids,
  direction, value and anchor group (``-2`` for hierarchical rows);
* :class:`HiVESBatchSampler`, which yields the stage-1 batches of
  :class:`~valueflow.embed.HierarchicalBatchSampler` for the first ``epochs_stage1`` epochs and
  then the stage-2 batches of :class:`~valueflow.embed.CrossTheoryBatchSampler` (their anchor
  rows mapped to the anchor copies), so sub-batches are exactly what the samplers built;
* :class:`HiVESTrainingLoss`, a sentence-transformers loss (``model`` in, ``forward(features,
  labels)``) that applies the hierarchical loss to the hierarchical rows, the cross-theory
  InfoNCE to the anchor rows and the value-axis orthogonality penalty to the batch.

Head mode keeps its own loop: its inputs are cached embeddings, not texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from valueflow.embed._loss_anchor import AnchorInfoNCELoss
from valueflow.embed._loss_hier import HierarchicalContrastiveLoss
from valueflow.embed._loss_ortho import ValueAxisOrthogonalityLoss
from valueflow.embed._sampler import (
    CrossTheoryBatchSampler,
    HierarchicalBatchSampler,
    anchor_membership,
)
from valueflow.errors import ConfigError

try:  # sentence-transformers >= 6
    from sentence_transformers.base.sampler import DefaultBatchSampler
except ImportError:  # pragma: no cover - older releases
    from sentence_transformers.sampler import DefaultBatchSampler  # type: ignore[no-redef]

if TYPE_CHECKING:
    from valueflow.embed._labels import HierLabels
    from valueflow.embed._train import TrainConfig

__all__ = ["HiVESBatchSampler", "HiVESTrainingLoss", "train_full_st"]

HIER_ROW = -2
"""Anchor-group label of a row of the hierarchical part."""


class HiVESTrainingLoss(nn.Module):
    """The HiVES objective as a sentence-transformers loss.

    Labels per row: ``levels (L)``, ``direction``, ``value``, ``group`` (``-2``: a
    hierarchical row; ``>= 0``: an anchor row of that (anchor, direction) group).
    """

    def __init__(self, model: Any, n_levels: int, temperature: float = 0.1,
                 push_margin: float = 0.5, anchor_temperature: float = 0.07,
                 anchor_weight: float = 1.0, ortho_weight: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.n_levels = n_levels
        self.hier = HierarchicalContrastiveLoss(temperature, push_margin=push_margin)
        self.anchor = AnchorInfoNCELoss(anchor_temperature)
        self.ortho = ValueAxisOrthogonalityLoss()
        self.anchor_weight = anchor_weight
        self.ortho_weight = ortho_weight

    def forward(self, sentence_features: list[dict[str, Tensor]], labels: Tensor) -> Tensor:
        emb = self.model(sentence_features[0])["sentence_embedding"]
        n = self.n_levels
        levels, direction = labels[:, :n], labels[:, n]
        value, group = labels[:, n + 1], labels[:, n + 2]
        hier = group == HIER_ROW
        loss = self.hier(emb[hier], levels[hier], direction[hier], value[hier])
        anchor = group >= 0
        if int(anchor.sum()) >= 2:
            loss = loss + self.anchor_weight * self.anchor(emb[anchor], group[anchor])
        if self.ortho_weight > 0:
            loss = loss + self.ortho_weight * self.ortho(emb, value, direction)
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """Settings, as sentence-transformers losses report them."""
        return {"hier": self.hier.get_config_dict(), "anchor": self.anchor.get_config_dict(),
                "anchor_weight": self.anchor_weight, "ortho_weight": self.ortho_weight}


class HiVESBatchSampler(DefaultBatchSampler):
    """Stage-1 batches, then stage-2 batches, as dataset indices (see the module doc)."""

    def __init__(self, dataset: Any, stage1: HierarchicalBatchSampler,
                 stage2: CrossTheoryBatchSampler, epochs_stage1: int,
                 anchor_index: dict[tuple[int, int], int], batch_size: int) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=False)
        self.stage1, self.stage2 = stage1, stage2
        self.epochs_stage1 = epochs_stage1
        self.anchor_index = anchor_index
        self.epoch = 0
        self.stages_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of each epoch."""
        self.epoch = int(epoch)
        self.stage1.set_epoch(self.epoch)
        self.stage2.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self.stage1)

    def __iter__(self) -> Any:
        if self.epoch < self.epochs_stage1:
            self.stages_seen.append(1)
            for batch in self.stage1:
                yield [int(i) for i in batch]
            return
        self.stages_seen.append(2)
        for b in self.stage2:
            yield [int(i) for i in b.hier] + [self.anchor_index[(int(i), int(g))]
                                             for i, g in zip(b.anchor, b.anchor_groups,
                                                             strict=True)]


class _SamplerFactory:
    """Builds the trainer's batch sampler (a picklable callable: the trainer saves its
    arguments with every checkpoint)."""

    def __init__(self, stage1: HierarchicalBatchSampler, stage2: CrossTheoryBatchSampler,
                 epochs_stage1: int, anchor_index: dict[tuple[int, int], int],
                 batch_size: int) -> None:
        self.args = (stage1, stage2, epochs_stage1, anchor_index, batch_size)
        self.made: list[HiVESBatchSampler] = []

    def __call__(self, dataset: Any, **_: Any) -> HiVESBatchSampler:
        stage1, stage2, epochs_stage1, anchor_index, batch_size = self.args
        sampler = HiVESBatchSampler(dataset, stage1, stage2, epochs_stage1, anchor_index,
                                    batch_size)
        self.made.append(sampler)
        return sampler

    def __getstate__(self) -> dict[str, Any]:
        return {"args": self.args, "made": []}


def _rows(labels: HierLabels, texts: list[str], anchors: list[list[str]]
          ) -> tuple[list[str], list[list[int]], dict[tuple[int, int], int]]:
    """Dataset texts and labels: the hierarchical rows, then the anchor copies."""
    out_texts, out_labels = [], []
    for i, t in enumerate(texts):
        out_texts.append(t)
        out_labels.append([*map(int, labels.levels[i]), int(labels.direction[i]),
                           int(labels.value[i]), HIER_ROW])
    index: dict[tuple[int, int], int] = {}
    for i, member in enumerate(anchor_membership(labels, anchors)):
        d = int(labels.direction[i])
        if d == 0:
            continue
        for a in sorted(member):
            g = 2 * a + (d > 0)
            index[(i, g)] = len(out_texts)
            out_texts.append(texts[i])
            out_labels.append([*out_labels[i][:-1], g])
    return out_texts, out_labels, index


def train_full_st(cfg: TrainConfig, labels: HierLabels, texts: list[str], out: str | Path,
                  resume: bool, progress: bool) -> tuple[Any, list[dict[str, Any]]]:
    """Fine-tune ``cfg.base`` with the sentence-transformers trainer; returns the model and
    the loss history (one record per epoch)."""
    try:
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
    except ImportError as exc:
        raise ConfigError("full fine-tuning needs sentence-transformers, datasets and "
                          f"accelerate ({exc.name} is missing)",
                          hint="pip install 'valueflow[train]'") from exc
    from valueflow.embed._model import base_model_path
    from valueflow.theories import get_registry

    if cfg.val_fraction > 0:
        raise ConfigError("full fine-tuning does not pick epochs on a validation share",
                          hint="set val_fraction=0 (the held-out split is still evaluated)")
    out = Path(out)
    anchors = [list(a.members) for a in get_registry().anchors]
    ds_texts, ds_labels, index = _rows(labels, texts, anchors)
    dataset = Dataset.from_dict({"text": ds_texts, "label": ds_labels})
    stage1 = HierarchicalBatchSampler(labels, batch_size=cfg.batch_size, seed=cfg.seed)
    stage2 = CrossTheoryBatchSampler(labels, anchors, stage1, seed=cfg.seed)
    make_sampler = _SamplerFactory(stage1, stage2, cfg.epochs_stage1, index, cfg.batch_size)

    torch.manual_seed(cfg.seed)
    model = SentenceTransformer(base_model_path(cfg.base))
    loss = HiVESTrainingLoss(model, labels.levels.shape[1], cfg.temperature, cfg.push_margin,
                             cfg.anchor_temperature, cfg.anchor_weight, cfg.ortho_weight)
    ckpt_dir = out / "trainer"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir), num_train_epochs=cfg.epochs_stage1 + cfg.epochs_stage2,
        per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay, warmup_ratio=1.0 / max(1, cfg.epochs_stage1
                                                              + cfg.epochs_stage2),
        lr_scheduler_type="linear", seed=cfg.seed, data_seed=cfg.seed,
        batch_sampler=make_sampler, save_strategy="epoch", save_total_limit=1,
        logging_strategy="epoch", report_to="none", disable_tqdm=not progress,
        dataloader_drop_last=False, remove_unused_columns=False,
        dataloader_pin_memory=torch.cuda.is_available())
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=loss)
    has_ckpt = ckpt_dir.is_dir() and any(ckpt_dir.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume and has_ckpt else None)
    history = [{"epoch": round(float(r["epoch"])),
                "stage": 1 if round(r["epoch"]) <= cfg.epochs_stage1 else 2,
                "loss": float(r["loss"])}
               for r in trainer.state.log_history if "loss" in r and "epoch" in r]
    seen = {st for smp in make_sampler.made for st in smp.stages_seen}
    if cfg.epochs_stage2 and seen and 2 not in seen and not resume:
        raise RuntimeError("the trainer never asked the sampler for stage-2 batches")
    model.eval()
    return model, history

