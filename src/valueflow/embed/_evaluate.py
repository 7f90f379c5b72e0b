"""HiVES evaluation: does the embedding space reflect the value hierarchy and direction?

All metrics are computed for *held-out* texts (a seeded split by text, the same split training
uses), with the training texts as the reference pool:

* ``knn_level{l}``: 1-nearest-neighbour (cosine) accuracy of the level-l label; ``knn_value``,
  ``knn_theory`` and ``knn_direction`` (supports / opposes / neutral) likewise.
* ``rank_pairwise`` (**primary**) and ``rank_strict``: for each directional held-out text, one
  pool text is drawn from each of four bins — same value and direction; same value, opposite
  direction; same theory, other value; other theory — and a pair of bins is correct when the
  nearer bin's text is strictly more similar. Pairwise is the share of correct pairs; strict the
  share of draws with all pairs correct. Several draws per text lower the variance.
* ``sim_corr``: Pearson correlation, over held-out pairs, of cosine similarity with a
  hierarchical label similarity (length of the shared label *prefix* + 0.5 for the same
  non-neutral direction) — a prefix, not the reference's position-by-position match.
* ``value_dir_abs_cos``: mean |cos| between the direction vectors (mean supporting minus mean
  opposing embedding) of different values; lower means more orthogonal value directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from valueflow.embed._labels import N_LEVELS, build_labels, heldout_split

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.embed._model import HiVESModel

__all__ = ["HiVESEvaluator", "hierarchy_metrics", "plot_evaluation"]

PRIMARY_METRIC = "rank_pairwise"


def _knn_acc(q: NDArray[Any], pool: NDArray[Any], yq: NDArray[Any], yp: NDArray[Any]) -> float:
    nn = np.argmax(q @ pool.T, axis=1)
    return float(np.mean(yp[nn] == yq))


def hierarchy_metrics(emb_query: NDArray[Any], lab_query: Any, emb_pool: NDArray[Any],
                      lab_pool: Any, *, draws: int = 5, seed: int = 0) -> dict[str, float]:
    """Metrics of held-out embeddings (``emb_query``) against a labelled pool.

    Label objects are :class:`~valueflow.embed._labels.HierLabels` built over the union of
    query and pool rows (so their ids agree). Embeddings must be L2-normalised.
    """
    q, p = np.asarray(emb_query, dtype=np.float64), np.asarray(emb_pool, dtype=np.float64)
    out: dict[str, float] = {}
    for lvl in range(N_LEVELS):
        out[f"knn_level{lvl + 1}"] = _knn_acc(q, p, lab_query.levels[:, lvl],
                                              lab_pool.levels[:, lvl])
    out["knn_value"] = _knn_acc(q, p, lab_query.value, lab_pool.value)
    out["knn_theory"] = _knn_acc(q, p, lab_query.theory, lab_pool.theory)
    out["knn_direction"] = _knn_acc(q, p, lab_query.direction, lab_pool.direction)

    rng = np.random.default_rng(seed)
    sims = q @ p.T
    vq, vp = lab_query.value, lab_pool.value
    tq, tp = lab_query.theory, lab_pool.theory
    dq, dp = lab_query.direction, lab_pool.direction
    correct = total = strict_ok = strict_n = 0
    for i in np.flatnonzero(dq != 0):
        bins = [
            np.flatnonzero((vp == vq[i]) & (dp == dq[i])),
            np.flatnonzero((vp == vq[i]) & (dp == -dq[i])),
            np.flatnonzero((tp == tq[i]) & (vp != vq[i])),
            np.flatnonzero(tp != tq[i]),
        ]
        bins = [b for b in bins if len(b)]
        if len(bins) < 2:
            continue
        for _ in range(draws):
            s = [sims[i, int(rng.choice(b))] for b in bins]
            pairs = [(a, b) for a in range(len(s)) for b in range(a + 1, len(s))]
            ok = sum(s[a] > s[b] for a, b in pairs)
            correct += ok
            total += len(pairs)
            strict_ok += ok == len(pairs)
            strict_n += 1
    out["rank_pairwise"] = correct / total if total else float("nan")
    out["rank_strict"] = strict_ok / strict_n if strict_n else float("nan")

    iu = np.triu_indices(len(q), k=1)
    lv = lab_query.levels
    prefix = np.zeros((len(q), len(q)))
    same = np.ones((len(q), len(q)), dtype=bool)
    for lvl in range(N_LEVELS):
        same &= lv[:, lvl][:, None] == lv[:, lvl][None, :]
        same &= tq[:, None] == tq[None, :]
        prefix += same
    label_sim = prefix + 0.5 * ((dq[:, None] == dq[None, :]) & (dq[:, None] != 0))
    qs = q @ q.T
    out["sim_corr"] = float(np.corrcoef(qs[iu], label_sim[iu])[0, 1]) if len(q) > 2 else float(
        "nan")

    allv = np.concatenate([q, p])
    alld = np.concatenate([dq, dp])
    allval = np.concatenate([vq, vp])
    dirs = []
    for v in np.unique(allval):
        sup, opp = (allval == v) & (alld > 0), (allval == v) & (alld < 0)
        if sup.any() and opp.any():
            vec = allv[sup].mean(0) - allv[opp].mean(0)
            dirs.append(vec / max(np.linalg.norm(vec), 1e-12))
    if len(dirs) > 1:
        m = np.abs(np.stack(dirs) @ np.stack(dirs).T)
        out["value_dir_abs_cos"] = float(m[np.triu_indices(len(dirs), k=1)].mean())
    else:
        out["value_dir_abs_cos"] = float("nan")
    return out


class HiVESEvaluator:
    """Evaluates HiVES models on the held-out split of a VIDB (default: the seed VIDB).

    Args:
        vidb: Texts with ``text``, ``value``, ``intensity`` (and optionally ``node``).
        holdout: Held-out share (must match the share the model was trained with).
        seed: Split seed (must match training).
        draws: Draws per held-out text for the ranking metrics.
        held_out: Instead of the seeded split, score exactly these rows (a boolean mask over
            ``vidb``; the other rows are the pool): e.g. the texts of registers a model never
            trained on (register-held-out).

    Attributes:
        primary_metric: Name of the metric to compare models by (``rank_pairwise``).
    """

    primary_metric = PRIMARY_METRIC

    def __init__(self, vidb: pd.DataFrame | None = None, holdout: float = 0.15, seed: int = 0,
                 draws: int = 5, held_out: Sequence[bool] | NDArray[np.bool_] | None = None
                 ) -> None:
        if vidb is None:
            from valueflow.vidb import load_seed

            vidb = load_seed()
        self.vidb = vidb.reset_index(drop=True)
        if held_out is None:
            self.train_idx, self.held_idx = heldout_split(self.vidb, holdout, seed)
        else:
            mask = np.asarray(held_out, dtype=bool)
            if mask.shape != (len(self.vidb),) or mask.all() or not mask.any():
                from valueflow.errors import DataError

                raise DataError(f"held_out marks {int(mask.sum())} of {len(self.vidb)} rows",
                                hint="mark some rows to score and leave some as the pool")
            self.held_idx, self.train_idx = np.flatnonzero(mask), np.flatnonzero(~mask)
        self.labels = build_labels(self.vidb)
        self.seed = seed
        self.draws = draws
        self._base_cache: dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]] = {}

    def _features(self, model: HiVESModel) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Encoder embeddings and middle-layer features of every VIDB text (cached per encoder:
        base and adapter; a head is applied afterwards)."""
        key = f"{model.base}\0{model.adapter}"
        if key not in self._base_cache:
            from valueflow.embed._scorer_encoder import encode_base_and_mid

            self._base_cache[key] = encode_base_and_mid(
                model, self.vidb["text"].astype(str).tolist())
        return self._base_cache[key]

    def base_embeddings(self, model: HiVESModel) -> NDArray[np.float32]:
        """Base-encoder embeddings of every VIDB text (cached per base)."""
        return self._features(model)[0]

    def __call__(self, model: HiVESModel) -> dict[str, float]:
        """Metrics of ``model``; ``primary_metric`` names the one to compare by."""
        e, mid = self._features(model)
        emb = model.apply_head(e, mid if model.needs_mid else None)
        return hierarchy_metrics(emb[self.held_idx], self.labels.subset(self.held_idx),
                                 emb[self.train_idx], self.labels.subset(self.train_idx),
                                 draws=self.draws, seed=self.seed)

    def compare(self, models: Sequence[HiVESModel],
                names: Sequence[str] | None = None) -> pd.DataFrame:
        """One table: a row per metric, a column per model."""
        import pandas as pd

        cols = list(names) if names else [m.name for m in models]
        table = pd.DataFrame({c: self(m) for c, m in zip(cols, models, strict=True)})
        table.index.name = "metric"
        return table


def plot_evaluation(table: pd.DataFrame, path: str, primary: str = PRIMARY_METRIC) -> None:
    """Grouped bars: one group per metric, one bar per model (the primary metric marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, models = list(table.index), list(table.columns)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.75 * len(metrics) * max(1, len(models)) / 2), 4))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(metrics))
    for j, m in enumerate(models):
        ax.bar(x + (j - (len(models) - 1) / 2) * width, table[m].to_numpy(dtype=float), width,
               label=str(m))
    labels = [f"{k} *" if k == primary else str(k) for k in metrics]
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("score (value_dir_abs_cos: lower is better)")
    ax.set_title(f"HiVES evaluation on held-out texts (* primary: {primary})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
