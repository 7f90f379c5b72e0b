"""Fine-tune the encoder end to end: one LoRA adapter serving HiVES and the local judge.

The bundled MiniLM gets low-rank adapters in every transformer block and is trained on a VIDB
with two losses on the same mean-pooled, L2-normalised embedding ``z``:

- **intensity**: one linear head per value, ``y_v = w_v · z + b_v`` predicts intensity / 10.
  Every text supervises every head: its own value with its intensity, and the values that
  share no cross-theory anchor with it with 0 (weight ``off_weight``: a text about loyalty
  says nothing about hedonism); values linked to its own are left out (a text against a
  friend is against several of them at once).
- **stance pairs** (``pair_weight``): texts that share a ``pair`` id (minimal pairs: the same
  situation with the opposite stance, a negation, a refusal, a sarcastic twist) are batched
  together and their own value's outputs are pushed apart in the order of their intensities
  (logistic loss on the difference): the contrast the encoder finds hardest to see.
- **ranking** (``rank_weight``): the same logistic loss on every two texts of one value in a
  batch whose intensities differ by ``rank_gap`` or more (about 15 such pairs in a batch of
  32): what within-value Spearman and sign accuracy measure is order, which squared error
  learns only indirectly.
- **hierarchy** (HiVES stage 1): the hierarchical contrastive loss over theory paths and
  direction, on the same batches (texts of similar token length: cheap on a CPU, with fewer
  positives per batch than theory-drawn batches would give).

Freezing the encoder (the earlier design) cannot learn stance: "I stood by my brother" and "I
abandoned my brother" embed almost alike. Fine-tuning can, and the adapter ships in about 1 MB.

Pure helpers (targets, batches) are numpy; the loop imports torch lazily.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

__all__ = ["ADAPTER_FILE", "HEADS_FILE", "FineTuneConfig", "average_finetunes", "finetune_encoder",
           "judge_targets",
           "length_batches"]

ADAPTER_FILE = "adapter.safetensors"
HEADS_FILE = "heads.npz"


@dataclass
class FineTuneConfig:
    """Settings of :func:`finetune_encoder` (the defaults are the shipped judge's recipe)."""

    rank: int = 16
    """LoRA rank of every adapted linear layer."""
    alpha: float = 32.0
    """LoRA scale numerator (update scaled by alpha / rank)."""
    lora_dropout: float = 0.05
    """Dropout on the adapter input."""
    lr: float = 1e-3
    """Learning rate of the adapters."""
    head_lr: float = 3e-3
    """Learning rate of the value heads."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    epochs: int = 3
    """Passes over the training texts."""
    max_length: int = 96
    """Token limit per text (longer texts are truncated)."""
    train_layers: int = 4
    """Top transformer blocks that get adapters; the blocks below stay frozen and their output
    is computed once and cached (CPU training cost roughly halves)."""
    batch_size: int = 32
    """Texts per batch (batches hold texts of similar length: little padding)."""
    off_weight: float = 0.2
    """Weight of the 0 targets of a text for values not linked to its own."""
    pair_weight: float = 0.2
    """Weight of the pairwise stance loss on minimal pairs (rows sharing a ``pair`` id)."""
    rank_weight: float = 0.5
    """Weight of a pairwise ranking loss on every two texts of one value in a batch whose
    intensities differ by at least ``rank_gap`` (0 turns it off)."""
    rank_gap: float = 2.0
    """Least intensity difference of a ranked pair (smaller differences are label noise)."""
    neutral_weight: float = 1.0
    """Weight of the 0 targets of value-free texts (``neutral=``) on every value head."""
    hier_weight: float = 0.1
    """Weight of the hierarchical contrastive loss (0 turns it off)."""
    temperature: float = 0.1
    """Temperature of the contrastive loss."""
    seed: int = 0
    """Seed of the batches, dropout and adapter initialisation."""
    max_steps: int | None = None
    """Stop after this many steps (tests and quick checks)."""

    def validate(self) -> None:
        if self.rank < 1 or self.epochs < 1 or self.train_layers < 1 or self.batch_size < 2:
            raise ConfigError("rank, epochs and train_layers must be >= 1 and batch_size >= 2",
                              hint="e.g. rank=16 epochs=2 train_layers=2 batch_size=32")
        if self.lr <= 0 or self.head_lr <= 0 or self.max_length < 8:
            raise ConfigError("learning rates must be > 0 and max_length >= 8",
                              hint="e.g. lr=1e-3 head_lr=3e-3 max_length=96")
        weights = {"off_weight": self.off_weight, "pair_weight": self.pair_weight,
                   "rank_weight": self.rank_weight, "rank_gap": self.rank_gap,
                   "neutral_weight": self.neutral_weight, "hier_weight": self.hier_weight}
        negative = [f"{k}={v}" for k, v in weights.items() if v < 0]
        if negative:
            raise ConfigError(f"loss weights must be >= 0, got {', '.join(negative)}",
                              hint="0 turns a loss off, e.g. pair_weight=0.2")


def judge_targets(row_values: Sequence[str], intensity: NDArray[Any], values: Sequence[str],
                  linked: dict[str, set[str]], off_weight: float
                  ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Targets ``Y`` and weights ``W`` (``n × len(values)``) of the value heads.

    A row's own value gets ``intensity / 10`` with weight 1; values linked to it get weight 0;
    every other value gets 0 with weight ``off_weight``.
    """
    col = {v: i for i, v in enumerate(values)}
    n, k = len(row_values), len(values)
    y = np.zeros((n, k), np.float32)
    w = np.full((n, k), off_weight, np.float32)
    for i, v in enumerate(row_values):
        for other in linked.get(v, ()):
            if other in col:
                w[i, col[other]] = 0.0
        if v in col:
            y[i, col[v]] = float(intensity[i]) / 10.0
            w[i, col[v]] = 1.0
    return y, w


def length_batches(lengths: NDArray[Any], rng: np.random.Generator, batch_size: int,
                   groups: NDArray[Any] | None = None) -> list[NDArray[np.int64]]:
    """One epoch of batches of texts of similar token length (sorted with a little noise, cut
    into batches, batches shuffled): every row once, little padding.

    Rows with the same non-negative ``groups`` id (a minimal pair) share one sort key and so
    land next to each other, in one batch unless a batch boundary falls between them."""
    lengths = np.asarray(lengths, float)
    noisy = lengths + rng.uniform(0, 4, len(lengths))
    if groups is not None:
        g = np.asarray(groups)
        grouped = g >= 0
        if grouped.any():
            keys, inv = np.unique(g[grouped], return_inverse=True)
            mean_len = np.bincount(inv, lengths[grouped]) / np.bincount(inv)
            noisy[grouped] = (mean_len + rng.uniform(0, 4, len(keys)))[inv]
            # a tiny per-group offset keeps a group's rows together among equal keys
            noisy[grouped] += (inv + 1) * 1e-7
    order = np.argsort(noisy, kind="stable")
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    return [batches[j] for j in rng.permutation(len(batches))]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def finetune_encoder(frame: pd.DataFrame, out: str | Path, config: FineTuneConfig | None = None,
                     *, base: str | None = None, values: Sequence[str] | None = None,
                     holdout: float = 0.0, resume: bool = True, verbose: bool = True,
                     init: str | Path | None = None, neutral: Sequence[str] = (),
                     split_seed: int | None = None) -> Path:
    """Fine-tune the encoder on ``frame`` (``text``, ``value``, ``intensity``; optional ``node``
    and ``pair``) and write the adapter, the value heads and ``hives.json`` into ``out``.

    Args:
        frame: Training VIDB.
        out: Model folder (created). A finished epoch is checkpointed there; with ``resume``
            a rerun continues after the last finished epoch.
        config: Settings (default :class:`FineTuneConfig`).
        base: Base encoder (default: the bundled MiniLM).
        values: Values with heads (default: every value in ``frame``; with ``init``, the
            model's values).
        holdout: Share of texts kept out of training (``heldout_split`` with ``split_seed``,
            default the config's seed; recorded in ``hives.json`` so ``hives evaluate`` uses
            the same split). Fine-tunings to be averaged (:func:`average_finetunes`) share
            one split seed.
        init: A model folder written by this function to start from (its adapter and value
            heads; same rank, adapted blocks and values): continue training a shipped judge
            on new data instead of starting over.
        neutral: Texts that express no value (greetings, logistics, questions of fact): every
            head learns 0 for them (weight ``neutral_weight``); the hierarchical loss sees them
            as negatives only.

    Returns:
        The folder.
    """
    import torch

    from valueflow.embed._labels import build_labels
    from valueflow.embed._lora import add_lora, lora_state, save_adapter
    from valueflow.embed._loss_hier import HierarchicalContrastiveLoss
    from valueflow.embed._model import DEFAULT_BASE, META_FILE, base_model_path
    from valueflow.embed._scorer import _linked_values

    cfg = config or FineTuneConfig()
    cfg.validate()
    frame = frame.dropna(subset=["text", "value", "intensity"]).reset_index(drop=True)
    if holdout > 0:
        from valueflow.embed._labels import heldout_split

        train_idx, _ = heldout_split(frame, holdout,
                                     cfg.seed if split_seed is None else split_seed)
        frame = frame.iloc[train_idx].reset_index(drop=True)
    if len(frame) < 10:
        raise DataError(f"{len(frame)} training texts; fine-tuning needs at least 10",
                        hint="give a larger VIDB")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    device = "cuda" if torch.cuda.is_available() else "cpu"

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(base_model_path(base), device=device)
    bert: Any = st[0].auto_model
    tok = st.tokenizer
    n_layers = int(bert.config.num_hidden_layers)
    k0 = max(0, n_layers - cfg.train_layers)
    add_lora(bert, cfg.rank, cfg.alpha, cfg.lora_dropout, layers=range(k0, n_layers))
    bert.to(device)

    if values is None and init is not None and (Path(init) / HEADS_FILE).is_file():
        with np.load(Path(init) / HEADS_FILE) as z:  # continue every head of the model
            values = [str(v) for v in z["values"]]
    head_values = sorted(set(values) if values is not None else set(frame["value"].astype(str)))
    texts = frame["text"].astype(str).tolist()
    row_values = frame["value"].astype(str).tolist()
    y_all, w_all = judge_targets(row_values, frame["intensity"].to_numpy(float), head_values,
                                 _linked_values(), cfg.off_weight)
    labels = build_labels(frame)
    levels, direction = labels.levels, labels.direction
    pair_ids = _pair_ids(frame)
    intensity = frame["intensity"].to_numpy(float)
    neutral = [t for t in dict.fromkeys(str(t) for t in neutral) if t.strip()]
    if neutral:
        k = len(head_values)
        texts = texts + neutral
        row_values = row_values + [""] * len(neutral)
        y_all = np.vstack([y_all, np.zeros((len(neutral), k), np.float32)])
        w_all = np.vstack([w_all, np.full((len(neutral), k), cfg.neutral_weight, np.float32)])
        # direction 0: never a positive of anything in the hierarchical loss
        levels = np.vstack([levels, np.repeat(levels[:1], len(neutral), 0)])
        direction = np.concatenate([direction, np.zeros(len(neutral), direction.dtype)])
        pair_ids = np.concatenate([pair_ids, np.full(len(neutral), -1, np.int64)])
        intensity = np.concatenate([intensity, np.zeros(len(neutral))])
    dim = int(bert.config.hidden_size)
    heads = torch.nn.Linear(dim, len(head_values)).to(device)
    torch.nn.init.zeros_(heads.weight)
    torch.nn.init.zeros_(heads.bias)
    if init is not None:
        _warm_start(Path(init), bert, heads, head_values)
    hier = HierarchicalContrastiveLoss(temperature=cfg.temperature)
    lora_params = [p for p in bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": lora_params, "lr": cfg.lr},
                             {"params": heads.parameters(), "lr": cfg.head_lr}],
                            weight_decay=cfg.weight_decay)
    enc = tok(texts, truncation=True, max_length=cfg.max_length)
    lengths = np.array([len(ids) for ids in enc["input_ids"]])
    memo = _LOWER_MEMO.setdefault((str(base or DEFAULT_BASE), k0, cfg.max_length), {})
    todo = [i for i, t in enumerate(texts) if t not in memo]
    if todo:
        sub = {k: [enc[k][i] for i in todo] for k in enc}
        for i, h in zip(todo, _lower_states(bert, tok, sub, k0, device, verbose), strict=True):
            memo[texts[i]] = h
    lower = [memo[t] for t in texts]
    epoch_batches = [length_batches(lengths, rng, cfg.batch_size, pair_ids if cfg.pair_weight > 0
                                    else None) for _ in range(cfg.epochs)]
    total = sum(len(b) for b in epoch_batches)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    warm = max(1, total // 20)

    def lr_factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.05, 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    ckpt = folder / "checkpoint.pt"
    start_epoch, step = 0, 0
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        bert.load_state_dict(state["bert"], strict=False)
        heads.load_state_dict(state["heads"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start_epoch, step = int(state["epoch"]), int(state["step"])
        if verbose:
            _say(f"resuming after epoch {start_epoch} (step {step})")
    col_of = {v: i for i, v in enumerate(head_values)}
    own_col = np.array([col_of.get(v, -1) for v in row_values])
    levels_t = torch.as_tensor(levels, device=device)
    dir_t = torch.as_tensor(direction, device=device)
    y_t = torch.as_tensor(y_all, device=device)
    w_t = torch.as_tensor(w_all, device=device)
    t0 = time.monotonic()
    done = step
    for epoch in range(start_epoch, cfg.epochs):
        bert.train()
        running = 0.0
        for bi, idx in enumerate(epoch_batches[epoch]):
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            z = _upper_pass(bert, lower, idx, k0, device)
            pred = heads(z)
            it = torch.as_tensor(idx, device=device)
            loss = ((pred - y_t[it]) ** 2 * w_t[it]).sum() / w_t[it].sum().clamp(min=1e-9)
            if cfg.hier_weight > 0:
                loss = loss + cfg.hier_weight * hier(z, levels_t[it], dir_t[it])
            ordered = []  # (weight, pairs): minimal pairs, then every ranked pair of a value
            if cfg.pair_weight > 0:
                ordered.append((cfg.pair_weight,
                                _ordered_pairs(pair_ids[idx], own_col[idx], intensity[idx])))
            if cfg.rank_weight > 0:
                ordered.append((cfg.rank_weight,
                                _ordered_pairs(own_col[idx], own_col[idx], intensity[idx],
                                               cfg.rank_gap)))
            for weight, (i_, j_, sgn) in ordered:
                if len(i_):
                    c = torch.as_tensor(own_col[idx][i_], device=device)
                    diff = (pred[torch.as_tensor(i_, device=device), c]
                            - pred[torch.as_tensor(j_, device=device), c])
                    margin = torch.as_tensor(sgn, device=device, dtype=diff.dtype) * diff
                    loss = loss + weight * torch.nn.functional.softplus(
                        -PAIR_SCALE * margin).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lora_params, 1.0)
            opt.step()
            sched.step()
            step += 1
            running += float(loss.detach())
            if verbose and (step % 50 == 0 or step == total):
                rate = (step - done) / max(1e-9, time.monotonic() - t0)
                eta = (total - step) / max(rate, 1e-9)
                _say(f"epoch {epoch + 1}/{cfg.epochs} step {step}/{total} "
                     f"loss {running / (bi + 1):.4f} ({rate:.2f} steps/s, ~{eta / 60:.1f} min left)")
        if cfg.max_steps is None or step < cfg.max_steps:
            torch.save({"bert": {k: v for k, v in bert.state_dict().items() if ".A" in k or ".B" in k},
                        "heads": heads.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "epoch": epoch + 1, "step": step},
                       ckpt.with_suffix(".tmp"))
            os.replace(ckpt.with_suffix(".tmp"), ckpt)
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break

    save_adapter(lora_state(bert), folder / ADAPTER_FILE,
                 {"base": str(base or DEFAULT_BASE), "rank": str(cfg.rank)})
    np.savez_compressed(folder / HEADS_FILE, W=heads.weight.detach().cpu().numpy().astype(np.float32),
                        b=heads.bias.detach().cpu().numpy().astype(np.float32),
                        values=np.array(head_values))
    meta = {"name": "hives", "kind": "lora", "base": str(base or DEFAULT_BASE),
            "config": asdict(cfg), "n_train_texts": len(frame), "n_neutral_texts": len(neutral),
            "values": head_values,
            "trained_on": sorted(set(frame["source"].astype(str))) if "source" in frame else [],
            "steps": step, "holdout": holdout,
            "split_seed": cfg.seed if split_seed is None else split_seed,
            "continued_from": _model_fingerprint(Path(init)) if init is not None else None}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    ckpt.unlink(missing_ok=True)
    return folder


def average_finetunes(members: Sequence[str | Path], out: str | Path) -> Path:
    """Average fine-tunings of one recipe (different seeds) into one model: weight averaging.

    The members start from the same base encoder and learn small updates of it, so their
    mean is a model too (a "model soup"): its adapter has rank ``K·r`` (the members' ``A``
    stacked, their ``B`` side by side and divided by ``K``), so the merged update is exactly
    the mean of the members' updates, and its value heads are the mean of theirs. It runs at
    the cost of one model and keeps most of what averaging the members' outputs gains: each
    seed's own errors (single seeds of the shipped recipe differed by 0.03 in VIDB-640
    Spearman) partly cancel. The shipped judge is such an average of three seeds.

    Raises:
        ConfigError: fewer than 2 members, a member is not a fine-tuned folder, or the
            members differ in base encoder, adapted blocks, values or held-out split.
    """
    import torch

    from valueflow.embed._lora import load_adapter, save_adapter
    from valueflow.embed._model import META_FILE

    if len(members) < 2:
        raise ConfigError(f"averaging needs at least 2 fine-tunings, got {len(members)}",
                          hint="train the recipe with several seeds (--members K, K >= 2)")
    metas, heads, states = [], [], []
    for m in map(Path, members):
        if not (m / ADAPTER_FILE).is_file() or not (m / HEADS_FILE).is_file():
            raise ConfigError(f"{m} is not a fine-tuned model folder (no {ADAPTER_FILE} / "
                              f"{HEADS_FILE})", hint="give folders written by finetune_encoder")
        metas.append(json.loads((m / META_FILE).read_text(encoding="utf-8")))
        with np.load(m / HEADS_FILE) as z:
            heads.append((np.asarray(z["W"], np.float64), np.asarray(z["b"], np.float64),
                          [str(v) for v in z["values"]]))
        states.append(load_adapter(m / ADAPTER_FILE))
    first = metas[0]
    for label, key in (("base encoders", lambda meta: meta.get("base")),
                       ("held-out splits", lambda meta: (meta.get("holdout") or 0.0, meta.get(
                           "split_seed") if meta.get("holdout") else None))):
        if len({json.dumps(key(meta)) for meta in metas}) > 1:
            raise ConfigError(f"the fine-tunings have different {label}",
                              hint="average only fine-tunings of one recipe (seeds differ)")
    for src, (_, _, v), st in zip(members, heads, states, strict=True):
        if v != heads[0][2]:
            raise ConfigError(f"{src} has heads for other values than {members[0]}",
                              hint="train every member on the same values")
        if set(st) != set(states[0]):
            raise ConfigError(f"{src} adapts other layers than {members[0]}",
                              hint="train every member with the same train_layers")
    k = len(members)
    soup = {}
    for name in states[0]:
        parts = [st[name] for st in states]
        soup[name] = (torch.cat(parts, 0) if name.endswith(".A") else torch.cat(parts, 1) / k)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dict(first.get("config") or {})
    rank = int(next(v for n, v in states[0].items() if n.endswith(".A")).shape[0])
    # the scale alpha/rank is folded into B: keeping it lets the average be trained further
    cfg.update(rank=rank * k, alpha=float(cfg.get("alpha", 2 * rank)) * k)
    save_adapter(soup, folder / ADAPTER_FILE, {"base": str(first.get("base")),
                                               "rank": str(rank * k)})
    W = np.mean([w for w, _, _ in heads], axis=0)
    b = np.mean([b for _, b, _ in heads], axis=0)
    np.savez_compressed(folder / HEADS_FILE, W=W.astype(np.float32), b=b.astype(np.float32),
                        values=np.array(heads[0][2]))
    meta = {**first, "config": cfg,
            "averaged_from": [{"seed": (meta.get("config") or {}).get("seed"),
                               **_model_fingerprint(Path(src))}
                              for src, meta in zip(members, metas, strict=True)]}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder


#: Logits per unit of head output (intensity / 10) in the pairwise stance loss: a pair whose
#: outputs differ by 0.3 (3 intensity points) in the right order costs about e^-3.
PAIR_SCALE = 10.0


def _pair_ids(frame: pd.DataFrame) -> NDArray[np.int64]:
    """Integer pair id per row (-1 for rows without one) from the optional ``pair`` column;
    ids are taken per value, so pairs of different values never mix."""
    import pandas as pd

    if "pair" not in frame:
        return np.full(len(frame), -1, np.int64)
    key = frame["value"].astype(str) + "\x1f" + frame["pair"].astype(str)
    has = frame["pair"].notna() & frame["pair"].astype(str).str.strip().ne("")
    codes = np.full(len(frame), -1, np.int64)
    codes[has.to_numpy()] = pd.factorize(key[has])[0]
    return codes


def _ordered_pairs(group: NDArray[Any], col: NDArray[Any], y: NDArray[Any], gap: float = 0.0
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Positions ``i < j`` of the rows in one batch that share a ``group`` id (>= 0), belong
    to values with a head (``col`` >= 0) and differ in intensity by at least ``gap`` (and at
    all), and the sign of ``y_i - y_j``. Minimal pairs: ``group`` = pair id; every ranked
    pair of a value: ``group`` = ``col``."""
    group, col, y = np.asarray(group), np.asarray(col), np.asarray(y, float)
    i, j = np.triu_indices(len(col), k=1)
    d = np.abs(y[i] - y[j])
    keep = ((group[i] >= 0) & (group[i] == group[j]) & (col[i] >= 0) & (col[j] >= 0)
            & (d >= gap) & (d > 0))
    i, j = i[keep].astype(np.int64), j[keep].astype(np.int64)
    return i, j, np.sign(y[i] - y[j])


def _model_fingerprint(folder: Path) -> dict[str, Any]:
    """What a continued model started from: the first 16 hex digits of its adapter's SHA-256
    and what that model was trained on."""
    import hashlib

    meta_file = folder / "hives.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    return {"adapter_sha256": hashlib.sha256((folder / ADAPTER_FILE).read_bytes()).hexdigest()[:16],
            "n_train_texts": meta.get("n_train_texts"), "trained_on": meta.get("trained_on"),
            "continued_from": meta.get("continued_from")}


def _warm_start(folder: Path, bert: Any, heads: Any, head_values: list[str]) -> None:
    """Load the adapter and value heads of a model folder into a model being trained."""
    import torch

    from valueflow.embed._lora import load_adapter, load_lora_state

    adapter, head_file = folder / ADAPTER_FILE, folder / HEADS_FILE
    if not adapter.is_file() or not head_file.is_file():
        raise DataError(f"{folder} is not a fine-tuned model folder (no {ADAPTER_FILE} / "
                        f"{HEADS_FILE})", hint="give a folder written by finetune_encoder")
    try:
        load_lora_state(bert, load_adapter(adapter))
    except ValueError as exc:
        raise ConfigError(f"cannot start from {folder}: {exc}",
                          hint="use the rank and train_layers it was trained with") from exc
    with np.load(head_file) as z:
        values = [str(v) for v in z["values"]]
        if values != list(head_values):
            raise ConfigError(f"cannot start from {folder}: its heads are for other values "
                              f"({len(values)} vs {len(head_values)})",
                              hint="train on the same values (values=...)")
        with torch.no_grad():
            heads.weight.copy_(torch.as_tensor(z["W"]))
            heads.bias.copy_(torch.as_tensor(z["b"]))


#: Frozen-block outputs by (base, first trained block, token limit) and text, kept for the
#: process: several fine-tunings on overlapping texts (register-held-out runs) compute them once.
_LOWER_MEMO: dict[tuple[str, int, int], dict[str, Any]] = {}


def _lower_states(bert: Any, tok: Any, enc: Any, k0: int, device: str, verbose: bool
                  ) -> list[Any]:
    """Output of the frozen blocks below ``k0`` for every text (float16, unpadded), computed
    once: the frozen part of the encoder never changes during training."""
    import torch

    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    n = len(enc["input_ids"])
    order = np.argsort([len(ids) for ids in enc["input_ids"]], kind="stable")
    out: list[Any] = [None] * n
    t0 = time.monotonic()
    bert.eval()
    with torch.inference_mode():
        for s in range(0, n, 64):
            idx = order[s:s + 64]
            batch = tok.pad({k: [enc[k][i] for i in idx] for k in keys},
                            return_tensors="pt").to(device)
            h = bert.embeddings(input_ids=batch["input_ids"],
                                token_type_ids=batch.get("token_type_ids"))
            h = _run_blocks(bert.encoder.layer[:k0], h,
                            _additive_mask(batch["attention_mask"], h.dtype))
            for j, i in enumerate(idx):
                out[i] = h[j, : len(enc["input_ids"][i])].to(torch.float16).cpu().clone()
    if verbose:
        _say(f"cached the frozen blocks' output for {n} texts in {time.monotonic() - t0:.0f} s")
    return out


def _upper_pass(bert: Any, lower: list[Any], idx: NDArray[Any], k0: int, device: str) -> Any:
    """Mean-pooled, normalised embeddings of the texts ``idx`` through the blocks from ``k0``."""
    import torch

    seqs = [lower[i] for i in idx]
    width = max(len(t) for t in seqs)
    h = torch.zeros(len(seqs), width, seqs[0].shape[1], device=device)
    mask = torch.zeros(len(seqs), width, device=device)
    for j, t in enumerate(seqs):
        h[j, : len(t)] = t.to(device).float()
        mask[j, : len(t)] = 1.0
    h = _run_blocks(bert.encoder.layer[k0:], h, _additive_mask(mask, h.dtype))
    m = mask.unsqueeze(-1)
    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _run_blocks(blocks: Any, h: Any, mask: Any) -> Any:
    """``h`` through transformer ``blocks`` (a block returns a tensor or, in older
    transformers releases, a tuple)."""
    for block in blocks:
        out = block(h, attention_mask=mask)
        h = out[0] if isinstance(out, tuple) else out
    return h


def _additive_mask(mask: Any, dtype: Any) -> Any:
    """``(b, 1, 1, L)`` additive attention mask (0 for tokens, a large negative for padding)."""
    import torch

    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
