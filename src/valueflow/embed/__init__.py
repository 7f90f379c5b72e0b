"""HiVES: hierarchical value embeddings, the local intensity scorer and value profiles.

``load_hives()`` gives the shipped HiVES model (the bundled MiniLM fine-tuned with LoRA
adapters); ``load_local_scorer()`` the offline intensity judge (``--judge local``: value heads
on that encoder); ``value_profile()``
where a person or group stands on the 32 values. Training and evaluation: ``train_hives`` and
``HiVESEvaluator``; the losses and samplers are reusable modules.
"""

from typing import TYPE_CHECKING

from valueflow.embed._evaluate import HiVESEvaluator, hierarchy_metrics, plot_evaluation
from valueflow.embed._finetune import FineTuneConfig, average_finetunes, finetune_encoder
from valueflow.embed._judge import ValueJudge
from valueflow.embed._labels import N_LEVELS, HierLabels, build_labels, heldout_split
from valueflow.embed._model import DEFAULT_BASE, HiVESModel, load_hives
from valueflow.embed._profile import plot_profile, value_profile
from valueflow.embed._sampler import (
    CrossTheoryBatchSampler,
    HierarchicalBatchSampler,
    StageTwoBatch,
)
from valueflow.embed._scorer import LocalScorer
from valueflow.embed._shipped import (
    load_judge_dir,
    load_local_scorer,
    scorer_training_frame,
    write_shipped_judge,
)
from valueflow.embed._train import TrainConfig, train_hives

if TYPE_CHECKING:
    from valueflow.embed._loss_anchor import AnchorInfoNCELoss
    from valueflow.embed._loss_hier import HierarchicalContrastiveLoss, default_level_weights
    from valueflow.embed._loss_ortho import ValueAxisOrthogonalityLoss

_LAZY = {  # torch modules: imported on first use so `import valueflow.embed` stays light
    "AnchorInfoNCELoss": "valueflow.embed._loss_anchor",
    "HierarchicalContrastiveLoss": "valueflow.embed._loss_hier",
    "default_level_weights": "valueflow.embed._loss_hier",
    "ValueAxisOrthogonalityLoss": "valueflow.embed._loss_ortho",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'valueflow.embed' has no attribute {name!r}")

__all__ = [
    "DEFAULT_BASE",
    "N_LEVELS",
    "AnchorInfoNCELoss",
    "CrossTheoryBatchSampler",
    "FineTuneConfig",
    "HiVESEvaluator",
    "HiVESModel",
    "HierLabels",
    "HierarchicalBatchSampler",
    "HierarchicalContrastiveLoss",
    "LocalScorer",
    "StageTwoBatch",
    "TrainConfig",
    "ValueAxisOrthogonalityLoss",
    "ValueJudge",
    "average_finetunes",
    "build_labels",
    "default_level_weights",
    "finetune_encoder",
    "heldout_split",
    "hierarchy_metrics",
    "load_hives",
    "load_judge_dir",
    "load_local_scorer",
    "plot_evaluation",
    "plot_profile",
    "scorer_training_frame",
    "train_hives",
    "value_profile",
    "write_shipped_judge",
]
