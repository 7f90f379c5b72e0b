"""Training HiVES: stage 1 (hierarchy within each theory) then stage 2 (across theories).

Two paths share one loop, the samplers and the losses:

* ``mode="head"`` (default, CPU, minutes): the base encoder stays frozen; its embeddings are
  computed once and cached, and a small residual head is trained on them.
* ``mode="full"`` (GPU): every weight of any sentence-transformers base is fine-tuned; texts
  are tokenised and encoded in each step.

Each epoch writes ``checkpoint.pt`` (weights, optimiser, epoch, settings) so ``resume=True``
continues where a run stopped. Runs are seeded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from valueflow.embed._labels import build_labels, heldout_split
from valueflow.embed._model import DEFAULT_BASE, HiVESModel, load_base_encoder
from valueflow.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrainConfig", "train_hives"]


class TrainConfig(BaseModel):
    """Settings of a HiVES training run."""

    model_config = ConfigDict(extra="forbid")

    base: str = DEFAULT_BASE
    """Base encoder: the bundled MiniLM name, a local sentence-transformers folder or hub id."""
    mode: str = "head"
    """``head`` (frozen base + trained residual head) or ``full`` (fine-tune the base)."""
    epochs_stage1: int = 8
    """Epochs of stage 1 (hierarchical loss only)."""
    epochs_stage2: int = 4
    """Epochs of stage 2 (hierarchical loss + cross-theory InfoNCE)."""
    batch_size: int = 32
    """Texts in the hierarchical part of a batch."""
    lr: float = 1e-3
    """AdamW learning rate (use ~2e-5 for ``full``)."""
    weight_decay: float = 1e-2
    """AdamW weight decay."""
    hidden: int = 256
    """Hidden width of the head."""
    temperature: float = 0.1
    """Temperature of the hierarchical loss."""
    push_margin: float = 1.0
    """Logit added to same-value opposite-direction pairs (harder negatives)."""
    anchor_temperature: float = 0.07
    """Temperature of the cross-theory InfoNCE."""
    anchor_weight: float = 0.5
    """Weight λ of the cross-theory InfoNCE in stage 2."""
    holdout: float = 0.15
    """Share of texts held out for evaluation (0 trains on everything)."""
    seed: int = 0
    """Seed of the split, the samplers and the weights."""


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


def train_hives(vidb: pd.DataFrame | None = None, out: str | Path | None = None,
                config: TrainConfig | None = None, *, resume: bool = False,
                progress: bool = False,
                base_embeddings: np.ndarray | None = None) -> HiVESModel:
    """Train a HiVES model on a VIDB (default: the seed VIDB) and save it to ``out``.

    Args:
        vidb: Training texts with ``text``, ``value``, ``intensity`` (and optionally ``node``).
        out: Folder for the model and its checkpoint (none: nothing is written).
        config: Settings (defaults: :class:`TrainConfig`).
        resume: Continue from ``out/checkpoint.pt`` when it exists.
        progress: Print one line per epoch.
        base_embeddings: Precomputed normalised base embeddings of ``vidb`` rows (head mode).

    Returns:
        The trained model; ``meta`` records the settings, the split and the loss curve.
    """
    import torch


    cfg = config or TrainConfig()
    if cfg.mode not in ("head", "full"):
        raise ConfigError(f"unknown training mode {cfg.mode!r}", hint="use 'head' or 'full'")
    if vidb is None:
        from valueflow.vidb import load_seed

        vidb = load_seed()
    vidb = vidb.reset_index(drop=True)
    train_idx, held_idx = (heldout_split(vidb, cfg.holdout, cfg.seed) if cfg.holdout > 0
                           else (np.arange(len(vidb)), np.array([], dtype=np.int64)))
    train = vidb.iloc[train_idx].reset_index(drop=True)
    labels = build_labels(train)
    texts = train["text"].astype(str).tolist()
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if cfg.mode == "head":
        torch.set_num_threads(1)  # tiny matrices: more threads only add contention
    try:
        return _run(cfg, vidb, train, train_idx, held_idx, labels, texts, out, resume, progress,
                    base_embeddings, t0)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: TrainConfig, vidb: pd.DataFrame, train: pd.DataFrame, train_idx: np.ndarray,
         held_idx: np.ndarray, labels: Any, texts: list[str], out: str | Path | None,
         resume: bool, progress: bool, base_embeddings: np.ndarray | None,
         t0: float) -> HiVESModel:
    import torch

    from valueflow.embed._loss_anchor import AnchorInfoNCELoss
    from valueflow.embed._loss_hier import HierarchicalContrastiveLoss
    from valueflow.embed._sampler import CrossTheoryBatchSampler, HierarchicalBatchSampler
    from valueflow.theories import get_registry


    encoder_fn: Callable[[list[int]], torch.Tensor]
    if cfg.mode == "head":
        if base_embeddings is None:
            base_embeddings = HiVESModel(base=cfg.base).encode_base(texts)
        else:
            base_embeddings = np.asarray(base_embeddings, dtype=np.float32)[train_idx]
        x_all = torch.from_numpy(np.asarray(base_embeddings, dtype=np.float32))
        d = x_all.shape[1]
        lin1 = torch.nn.Linear(d, cfg.hidden)
        lin2 = torch.nn.Linear(cfg.hidden, d)
        torch.nn.init.zeros_(lin2.weight)  # start as the identity: the base model
        torch.nn.init.zeros_(lin2.bias)
        net = torch.nn.ModuleDict({"lin1": lin1, "lin2": lin2})

        def encoder_fn(idx: list[int]) -> torch.Tensor:
            x = x_all[idx]
            return x + net["lin2"](torch.nn.functional.gelu(net["lin1"](x)))
    else:
        st = load_base_encoder.__wrapped__(cfg.base)  # a fresh copy: we change its weights
        st.train()
        net = st

        def encoder_fn(idx: list[int]) -> torch.Tensor:
            feats = st.tokenize([texts[i] for i in idx])
            feats = {k: v.to(st.device) if hasattr(v, "to") else v for k, v in feats.items()}
            return st(feats)["sentence_embedding"]

    hier_loss = HierarchicalContrastiveLoss(cfg.temperature, push_margin=cfg.push_margin)
    anchor_loss = AnchorInfoNCELoss(cfg.anchor_temperature)
    s1 = HierarchicalBatchSampler(labels, batch_size=cfg.batch_size, seed=cfg.seed)
    anchors = [a.members for a in get_registry().anchors]
    s2 = CrossTheoryBatchSampler(labels, anchors, s1, seed=cfg.seed)
    if cfg.epochs_stage2 and not s2.has_anchor_groups:
        _log(progress, "no cross-theory anchor links texts of two theories: "
                       "stage 2 trains the hierarchical loss only")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_epochs = cfg.epochs_stage1 + cfg.epochs_stage2
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / max(1, len(s1))) *
        max(0.05, 1.0 - step / max(1, total_epochs * len(s1))))
    lv = torch.from_numpy(labels.levels)
    dr = torch.from_numpy(labels.direction)
    vl = torch.from_numpy(labels.value)

    ckpt = Path(out) / "checkpoint.pt" if out is not None else None
    start, history = 0, []
    if resume and ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        if state["config"] != cfg.model_dump():
            raise ConfigError("the checkpoint was written with other settings",
                              hint="resume with the same options, or drop --resume")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history = state["epoch"], state["history"]
        _log(progress, f"resuming after epoch {start}")

    def hier_term(idx: list[int]) -> torch.Tensor:
        e = encoder_fn(idx)
        return hier_loss(e, lv[idx], dr[idx], vl[idx])

    for epoch in range(start, total_epochs):
        stage = 1 if epoch < cfg.epochs_stage1 else 2
        losses = []
        if stage == 1:
            s1.set_epoch(epoch)
            for batch in s1:
                loss = hier_term(batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
        else:
            s2.set_epoch(epoch)
            for b in s2:
                loss = hier_term(b.hier)
                if len(b.anchor) >= 2:
                    groups = torch.tensor(b.anchor_groups)
                    loss = loss + cfg.anchor_weight * anchor_loss(encoder_fn(b.anchor), groups)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
        history.append({"epoch": epoch + 1, "stage": stage, "loss": float(np.mean(losses))})
        _log(progress, f"epoch {epoch + 1}/{total_epochs} stage {stage} "
                       f"loss {history[-1]['loss']:.4f}")
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "epoch": epoch + 1, "history": history,
                        "config": cfg.model_dump()}, ckpt)

    meta: dict[str, Any] = {
        "name": "hives",
        "config": cfg.model_dump(),
        "n_train_texts": len(train),
        "n_heldout_texts": len(held_idx),
        "holdout": cfg.holdout,
        "split_seed": cfg.seed,
        "history": history,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    if cfg.mode == "head":
        head = {"W1": lin1.weight.detach().numpy().T.copy(), "b1": lin1.bias.detach().numpy(),
                "W2": lin2.weight.detach().numpy().T.copy(), "b2": lin2.bias.detach().numpy()}
        model = HiVESModel(base=cfg.base, head=head, meta=meta)
        if out is not None:
            model.save(out)
        return model
    if out is None:
        raise ConfigError("full fine-tuning needs an output folder", hint="pass --out DIR")
    net.eval()
    net.save(str(out))  # type: ignore[operator]
    meta["kind"] = "full"
    (Path(out) / "hives.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return HiVESModel(base=str(out), head=None, meta=meta)
