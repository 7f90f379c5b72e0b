"""Training HiVES: stage 1 (hierarchy within each theory) then stage 2 (across theories).

Two paths share the samplers and the losses:

* ``mode="head"`` (default, CPU, minutes): the base encoder stays frozen; its embeddings are
  computed once and cached, and a small residual head is trained on them.
* ``mode="full"`` (GPU): every weight of any sentence-transformers base is fine-tuned by the
  sentence-transformers trainer with our dataset rows, batch sampler and loss
  (:mod:`valueflow.embed._train_st`).

Besides the two contrastive losses, a value-axis orthogonality penalty keeps the
supports-minus-opposes axes of different values apart (without it the head learns one shared
good/bad axis). The default head is an *ensemble*: several small heads (different weight
initialisations and batch orders, the same data) whose residuals are averaged into one wider
head; on held-out texts this beat one wide head, which overfits the seed VIDB.

Each epoch writes ``checkpoint.pt`` (``checkpoint-k.pt`` for ensemble member k > 0: weights,
optimiser, epoch, settings) so ``resume=True`` continues where a run stopped. Runs are seeded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from valueflow.embed._evaluate import PRIMARY_METRIC, hierarchy_metrics
from valueflow.embed._labels import HierLabels, build_labels, heldout_split
from valueflow.embed._model import DEFAULT_BASE, HiVESModel, load_base_encoder
from valueflow.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrainConfig", "theory_rows", "train_hives"]


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
    lr: float = 3e-3
    """AdamW learning rate (use ~2e-5 for ``full``)."""
    weight_decay: float = 1e-2
    """AdamW weight decay."""
    hidden: int = 64
    """Hidden width of one head (a small width generalises better on the seed VIDB)."""
    temperature: float = 0.1
    """Temperature of the hierarchical loss."""
    push_margin: float = 0.5
    """Logit added to same-value opposite-direction pairs (harder negatives)."""
    anchor_temperature: float = 0.07
    """Temperature of the cross-theory InfoNCE."""
    anchor_weight: float = 1.0
    """Weight λ of the cross-theory InfoNCE in stage 2."""
    holdout: float = 0.15
    """Share of texts held out for evaluation (0 trains on everything)."""
    seed: int = 0
    """Seed of the split, the samplers and the weights."""
    input_dropout: float = 0.1
    """Dropout on the head's input (head mode; regularises the small training set)."""
    ortho_weight: float = 1.0
    """Weight of the value-axis orthogonality penalty (keeps value directions distinct)."""
    augment: bool = False
    """Add the theory texts (node definitions, judge definitions, ±2 phrasings) as labelled
    training rows for the values the VIDB has."""
    val_fraction: float = 0.0
    """Share of the *training* texts kept aside to pick the best epoch (0: last epoch)."""
    ensemble: int = 4
    """Heads trained with different initialisations and batch orders whose residuals are
    averaged into one wider head (bagging lowers the variance on unseen texts). Head mode
    only: ``full`` trains one model."""
    head_input: str = "last+mid"
    """What the head reads (head mode): ``last`` (the base embedding) or ``last+mid`` (the
    base embedding and the middle-layer features of the same pass, which keep more of a
    text's stance; the residual stays on the base embedding). On the seed VIDB's held-out
    split ``last+mid`` raised rank_pairwise over ``last`` by 0.007 and 0.016 (seeds 0, 1)."""
    refit: bool = False
    """After picking the best epoch on the validation texts, retrain on all training texts for
    that many epochs (needs ``val_fraction > 0``)."""


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


def theory_rows(values: Sequence[str]) -> pd.DataFrame:
    """The registry's own texts about ``values`` as labelled VIDB rows (for augmentation).

    For each value: its definition (supports), the supporting and the opposing half of its
    judge definition, and its ±2 and ±1 steering phrasings; for each deeper node under it, the
    node's definition (supports, labelled with the node). Intensities are ±6 (±3 for the ±1
    phrasings), so directions follow the text.
    """
    import pandas as pd

    from valueflow.theories import get_registry

    reg = get_registry()
    wanted = set(values)
    rows: list[dict[str, Any]] = []

    def add(text: str | None, value: str, intensity: float, node: str | None = None) -> None:
        if text and text.strip():
            rows.append({"text": text.strip(), "value": value, "intensity": intensity,
                         "node": node})

    for node in reg.nodes():
        path = [n.id for n in reg.theory_of(node).path(node.id)]
        owners = [p for p in path if p in wanted]
        if not owners:
            continue
        value = owners[-1]
        if node.id != value:
            add(node.definition, value, 6.0, node.id)
            continue
        add(node.definition, value, 6.0)
        judge = node.judge_definition or ""
        cut = judge.find(" It opposes")
        if cut > 0:
            add(judge[:cut], value, 6.0)
            add(judge[cut + 1:], value, -6.0)
        for level, text in node.phrasings.items():
            if level != 0:
                add(text, value, 3.0 * level)
    return pd.DataFrame(rows, columns=["text", "value", "intensity", "node"])


_BASE_CACHE: dict[tuple[str, str], NDArray[np.float32]] = {}


def _encode_cached(base: str, texts: list[str], head_input: str = "last"
                   ) -> NDArray[np.float32]:
    """Head inputs of ``texts`` (memoised: the theory texts are the same every run)."""
    from valueflow.embed._shipped import texts_hash

    key = (base, texts_hash(texts) + head_input)
    if key not in _BASE_CACHE:
        _BASE_CACHE[key] = _head_inputs(base, texts, head_input)
    return _BASE_CACHE[key]


def _head_inputs(base: str, texts: list[str], head_input: str) -> NDArray[np.float32]:
    """``(n, d)`` base embeddings, or ``(n, 2d)`` base embeddings and middle-layer features."""
    model = HiVESModel(base=base)
    if head_input == "last":
        return model.encode_base(texts)
    from valueflow.embed._scorer_encoder import encode_base_and_mid

    e, mid = encode_base_and_mid(model, texts)
    return np.hstack([e, mid]).astype(np.float32)


def train_hives(vidb: pd.DataFrame | None = None, out: str | Path | None = None,
                config: TrainConfig | None = None, *, resume: bool = False,
                progress: bool = False,
                base_embeddings: np.ndarray | None = None,
                base_mid: np.ndarray | None = None) -> HiVESModel:
    """Train a HiVES model on a VIDB (default: the seed VIDB) and save it to ``out``.

    With ``val_fraction > 0`` a share of the training texts is set aside and the epoch with the
    best validation ranking is kept (``refit``: then the whole training split is trained again
    for that many epochs). The held-out split (``holdout``) is never looked at.

    Args:
        vidb: Training texts with ``text``, ``value``, ``intensity`` (and optionally ``node``).
        out: Folder for the model and its checkpoint (none: nothing is written).
        config: Settings (defaults: :class:`TrainConfig`).
        resume: Continue from ``out/checkpoint.pt`` when it exists.
        progress: Print one line per epoch.
        base_embeddings: Precomputed normalised base embeddings of ``vidb`` rows (head mode).
        base_mid: With ``head_input="last+mid"`` and ``base_embeddings``: the rows'
            middle-layer features.

    Returns:
        The trained model; ``meta`` records the settings, the split and the loss curve.
    """
    import torch

    cfg = config or TrainConfig()
    if cfg.mode not in ("head", "full"):
        raise ConfigError(f"unknown training mode {cfg.mode!r}", hint="use 'head' or 'full'")
    if cfg.refit and cfg.val_fraction <= 0:
        raise ConfigError("refit needs a validation share to pick the epoch",
                          hint="set val_fraction > 0 (e.g. 0.15) or refit=False")
    if cfg.ensemble < 1:
        raise ConfigError(f"ensemble must be at least 1, not {cfg.ensemble}",
                          hint="use ensemble=1 for a single head")
    if cfg.head_input not in ("last", "last+mid"):
        raise ConfigError(f"unknown head input {cfg.head_input!r}", hint="use last or last+mid")
    if cfg.head_input == "last+mid" and base_embeddings is not None and base_mid is None:
        raise ConfigError("head_input='last+mid' needs base_mid with base_embeddings",
                          hint="pass both, or head_input='last'")
    if not 0 <= cfg.val_fraction < 0.5 or not 0 <= cfg.input_dropout < 1:
        raise ConfigError("val_fraction must lie in [0, 0.5) and input_dropout in [0, 1)",
                          hint="e.g. val_fraction=0.15, input_dropout=0.1")
    if vidb is None:
        from valueflow.vidb import load_seed

        vidb = load_seed()
    vidb = vidb.reset_index(drop=True)
    train_idx, held_idx = (heldout_split(vidb, cfg.holdout, cfg.seed) if cfg.holdout > 0
                           else (np.arange(len(vidb)), np.array([], dtype=np.int64)))
    train = vidb.iloc[train_idx].reset_index(drop=True)
    n_vidb = len(train)
    texts = train["text"].astype(str).tolist()
    x_all: NDArray[np.float32] | None = None
    if cfg.mode == "head":
        if base_embeddings is None:
            x_all = _head_inputs(cfg.base, texts, cfg.head_input)
        else:
            x_all = np.asarray(base_embeddings, dtype=np.float32)
            if cfg.head_input == "last+mid":
                x_all = np.hstack([x_all, np.asarray(base_mid, dtype=np.float32)])
            x_all = x_all[train_idx]
    if cfg.augment:
        import pandas as pd

        extra = theory_rows(sorted(set(map(str, train["value"]))))
        extra = extra[~extra["text"].isin(set(texts))]
        cols = [c for c in ("text", "value", "intensity", "node") if c in train.columns]
        train = pd.concat([train[cols], extra[cols]], ignore_index=True)
        extra_texts = extra["text"].astype(str).tolist()
        texts += extra_texts
        if x_all is not None:
            x_all = np.vstack([x_all, _encode_cached(cfg.base, extra_texts, cfg.head_input)])
    labels = build_labels(train)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    if cfg.mode == "full":
        if out is None:
            raise ConfigError("full fine-tuning needs an output folder", hint="pass --out DIR")
        from valueflow.embed._train_st import train_full_st

        st_model, history = train_full_st(cfg, labels, texts, out, resume, progress)
        meta = _meta(cfg, [history], labels, n_vidb, held_idx, t0, [{}])
        meta["kind"] = "full"
        st_model.save(str(out))
        (Path(out) / "hives.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        from valueflow.embed._model import _load_cached

        _load_cached.cache_clear()  # a model loaded from this folder before is stale now
        load_base_encoder.cache_clear()
        return HiVESModel(base=str(out), head=None, meta=meta)
    assert x_all is not None  # head mode: the encoder features were computed above
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add contention
    try:
        return _run(cfg, train, n_vidb, held_idx, labels, x_all, out, resume, progress, t0)
    finally:
        torch.set_num_threads(threads)


class _Net:
    """The trainable part of one head-mode run: a residual head on cached encoder features.
    (Full fine-tuning runs in the sentence-transformers trainer, ``_train_st``.)"""

    def __init__(self, cfg: TrainConfig, x_all: NDArray[np.float32], seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        self.cfg = cfg
        self.x = torch.from_numpy(np.asarray(x_all, dtype=np.float32))
        d_in = self.x.shape[1]
        self.d = d_in // 2 if cfg.head_input == "last+mid" else d_in
        lin1 = torch.nn.Linear(d_in, cfg.hidden)
        lin2 = torch.nn.Linear(cfg.hidden, self.d)
        torch.nn.init.zeros_(lin2.weight)  # start as the identity: the base model
        torch.nn.init.zeros_(lin2.bias)
        self.module: Any = torch.nn.ModuleDict({"lin1": lin1, "lin2": lin2})
        self.drop = torch.nn.Dropout(cfg.input_dropout)

    def __call__(self, idx: Sequence[int] | NDArray[np.int64], train: bool = True) -> Any:
        import torch

        x = self.x[np.asarray(idx, dtype=np.int64)]
        self.drop.train(train)
        h = self.module["lin1"](self.drop(x))
        return x[:, :self.d] + self.module["lin2"](torch.nn.functional.gelu(h))

    def embed(self, idx: NDArray[np.int64]) -> NDArray[np.float64]:
        """Normalised embeddings of rows ``idx`` (eval mode, no gradient)."""
        import torch

        with torch.no_grad():
            parts = [self(idx[i:i + 256], train=False) for i in range(0, len(idx), 256)]
            e = torch.nn.functional.normalize(torch.cat(parts), dim=-1)
        return e.double().cpu().numpy()


def _run(cfg: TrainConfig, train: pd.DataFrame, n_vidb: int, held_idx: NDArray[np.int64],
         labels: HierLabels, x_all: NDArray[np.float32],
         out: str | Path | None, resume: bool, progress: bool, t0: float) -> HiVESModel:
    nets, histories, selections = [], [], []
    for k in range(cfg.ensemble):
        name = "checkpoint.pt" if k == 0 else f"checkpoint-{k}.pt"
        ckpt = Path(out) / name if out is not None else None
        if cfg.ensemble > 1:
            _log(progress, f"member {k + 1}/{cfg.ensemble}")
        net, history, selection = _run_member(cfg, 1000 * cfg.seed + k, train, n_vidb, labels,
                                               x_all, ckpt, resume, progress)
        nets.append(net)
        histories.append(history)
        selections.append(selection)
    return _finish(cfg, nets, histories, labels, n_vidb, held_idx, out, t0, selections)


def _run_member(cfg: TrainConfig, seed: int, train: pd.DataFrame, n_vidb: int,
                labels: HierLabels, x_all: NDArray[np.float32],
                ckpt: Path | None, resume: bool,
                progress: bool) -> tuple[_Net, list[dict[str, Any]], dict[str, Any]]:
    """Train one member (its own weight init and batch order) on the training split."""
    import torch

    all_rows = np.arange(len(labels), dtype=np.int64)
    total = cfg.epochs_stage1 + cfg.epochs_stage2
    state: dict[str, Any] | None = None
    if resume and ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        if state["config"] != cfg.model_dump():
            raise ConfigError("the checkpoint was written with other settings",
                              hint="resume with the same options, or drop --resume")
        _log(progress, f"resuming {state['phase']} after epoch {state['epoch']}")
    selection: dict[str, Any] = {}
    if cfg.val_fraction <= 0:
        net, history, _ = _fit(cfg, seed, labels, x_all, all_rows, total, None, ckpt,
                               state, progress, "final", {})
        return net, history, selection
    # The validation texts come from the training split only, the same for every member.
    fit_v, val_v = heldout_split(train.iloc[:n_vidb], cfg.val_fraction, cfg.seed + 7919)
    fit_rows = np.concatenate([fit_v, np.arange(n_vidb, len(labels))]).astype(np.int64)
    phase = "select" if cfg.refit else "final"
    if state is not None and state["phase"] == "final" and cfg.refit:
        selection = state["selection"]
    else:
        sel_state = state if state is not None and state["phase"] == phase else None
        net, history, best = _fit(cfg, seed, labels, x_all, fit_rows, total,
                                  (val_v, fit_v), ckpt, sel_state, progress, phase, {})
        selection = {"best_epoch": best[0], "val_score": best[1], "n_val_texts": len(val_v)}
        _log(progress, f"best epoch on the validation texts: {best[0]} "
                       f"({PRIMARY_METRIC} {best[1]:.4f})")
        if not cfg.refit:
            return net, history, selection
        state = None
    net, history, _ = _fit(cfg, seed, labels, x_all, all_rows, selection["best_epoch"],
                           None, ckpt, state, progress, "final", selection)
    return net, history, selection


def _fit(cfg: TrainConfig, seed: int, labels: HierLabels,
         x_all: NDArray[np.float32], rows: NDArray[np.int64], n_epochs: int,
         val: tuple[NDArray[np.int64], NDArray[np.int64]] | None, ckpt: Path | None,
         state: dict[str, Any] | None, progress: bool, phase: str,
         selection: dict[str, Any]) -> tuple[_Net, list[dict[str, Any]], tuple[int, float]]:
    """Train on ``rows`` for ``n_epochs``; with ``val`` keep the best epoch's weights."""
    import torch

    from valueflow.embed._loss_anchor import AnchorInfoNCELoss
    from valueflow.embed._loss_hier import HierarchicalContrastiveLoss
    from valueflow.embed._loss_ortho import ValueAxisOrthogonalityLoss
    from valueflow.embed._sampler import CrossTheoryBatchSampler, HierarchicalBatchSampler
    from valueflow.theories import get_registry

    net = _Net(cfg, x_all, seed)
    sub = labels.subset(rows)
    hier_loss = HierarchicalContrastiveLoss(cfg.temperature, push_margin=cfg.push_margin)
    anchor_loss = AnchorInfoNCELoss(cfg.anchor_temperature)
    ortho_loss = ValueAxisOrthogonalityLoss()
    s1 = HierarchicalBatchSampler(sub, batch_size=cfg.batch_size, seed=seed)
    anchors = [a.members for a in get_registry().anchors]
    s2 = CrossTheoryBatchSampler(sub, anchors, s1, seed=seed)
    if cfg.epochs_stage2 and not s2.has_anchor_groups:
        _log(progress, "no cross-theory anchor links texts of two theories: "
                       "stage 2 trains the hierarchical loss only")
    params = net.module.parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / max(1, len(s1))) *
        max(0.05, 1.0 - step / max(1, n_epochs * len(s1))))
    lv = torch.from_numpy(labels.levels)
    dr = torch.from_numpy(labels.direction)
    vl = torch.from_numpy(labels.value)
    start, history = 0, []
    best: tuple[int, float] = (n_epochs, float("nan"))
    best_state: dict[str, Any] | None = None
    if state is not None:
        net.module.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history = state["epoch"], state["history"]
        best, best_state = tuple(state["best"]), state["best_net"]  # type: ignore[assignment]

    def step(hier: list[int], anchor: list[int], groups: list[int]) -> float:
        g_hier = rows[hier].tolist()
        loss = hier_loss(net(g_hier), lv[g_hier], dr[g_hier], vl[g_hier])
        if len(anchor) >= 2:
            g_anc = rows[anchor].tolist()
            loss = loss + cfg.anchor_weight * anchor_loss(net(g_anc), torch.tensor(groups))
        if cfg.ortho_weight > 0:
            # The axes of every value over all training rows (cheap on cached features).
            o_rows = rows.tolist()
            loss = loss + cfg.ortho_weight * ortho_loss(net(o_rows), vl[o_rows], dr[o_rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return float(loss.detach())

    for epoch in range(start, n_epochs):
        stage = 1 if epoch < cfg.epochs_stage1 else 2
        if stage == 1:
            s1.set_epoch(epoch)
            losses = [step(b, [], []) for b in s1]
        else:
            s2.set_epoch(epoch)
            losses = [step(b.hier, b.anchor, b.anchor_groups) for b in s2]
        record: dict[str, Any] = {"epoch": epoch + 1, "stage": stage,
                                  "loss": float(np.mean(losses))}
        if val is not None:
            score = _val_score(net, labels, *val, seed=cfg.seed)
            record["val_" + PRIMARY_METRIC] = score
            if not score <= best[1]:  # nan-safe: the first epoch always counts
                best = (epoch + 1, score)
                best_state = {k: v.detach().clone() for k, v in net.module.state_dict().items()}
        history.append(record)
        _log(progress, f"{phase} epoch {epoch + 1}/{n_epochs} stage {stage} loss "
                       f"{record['loss']:.4f}" + (f" val {record['val_' + PRIMARY_METRIC]:.4f}"
                                                  if val is not None else ""))
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"net": net.module.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "epoch": epoch + 1, "history": history,
                        "config": cfg.model_dump(), "phase": phase, "best": best,
                        "best_net": best_state, "selection": selection}, ckpt)
    if best_state is not None:
        net.module.load_state_dict(best_state)
    return net, history, best


def _val_score(net: _Net, labels: HierLabels, val: NDArray[np.int64], pool: NDArray[np.int64],
               seed: int) -> float:
    """The primary metric of the validation texts against the rest of the training texts."""
    q, p = net.embed(val), net.embed(pool)
    m = hierarchy_metrics(q, labels.subset(val), p, labels.subset(pool), draws=10, seed=seed)
    return float(m[PRIMARY_METRIC])


def _meta(cfg: TrainConfig, histories: list[list[dict[str, Any]]], labels: HierLabels,
          n_vidb: int, held_idx: NDArray[np.int64], t0: float,
          selections: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "hives",
        "config": cfg.model_dump(),
        "n_train_texts": n_vidb,
        "n_theory_texts": len(labels) - n_vidb,
        "n_heldout_texts": len(held_idx),
        "holdout": cfg.holdout,
        "split_seed": cfg.seed,
        "selection": selections[0] if len(selections) == 1 else selections,
        "history": histories[0] if len(histories) == 1 else histories,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }


def _finish(cfg: TrainConfig, nets: list[_Net], histories: list[list[dict[str, Any]]],
            labels: HierLabels, n_vidb: int, held_idx: NDArray[np.int64],
            out: str | Path | None, t0: float, selections: list[dict[str, Any]]) -> HiVESModel:
    meta = _meta(cfg, histories, labels, n_vidb, held_idx, t0, selections)
    model = HiVESModel(base=cfg.base, head=_merge_heads(nets), meta=meta)
    if out is not None:
        model.save(out)
    return model


def _merge_heads(nets: list[_Net]) -> dict[str, NDArray[np.float32]]:
    """One head whose residual is the mean of the members' residuals.

    ``x + mean_k W2_k gelu(W1_k x + b1_k) + b2_k`` is itself a head of width ``k * hidden``:
    the hidden layers side by side, the output weights divided by ``k``.
    """
    k = len(nets)
    mods = [n.module for n in nets]
    return {"W1": np.hstack([m["lin1"].weight.detach().numpy().T for m in mods]),
            "b1": np.concatenate([m["lin1"].bias.detach().numpy() for m in mods]),
            "W2": np.vstack([m["lin2"].weight.detach().numpy().T for m in mods]) / k,
            "b2": np.mean([m["lin2"].bias.detach().numpy() for m in mods], axis=0)}
