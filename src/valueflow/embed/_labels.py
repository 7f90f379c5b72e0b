"""Hierarchical labels for HiVES training and evaluation, built from a VIDB and the registry.

Each text gets a path of node ids from the top of its theory down to its ``node`` (or its
``value`` when it has no deeper node), padded to :data:`N_LEVELS` by repeating the deepest node.
Labels are canonical id *strings* mapped to integers in sorted order, so two theories can
never share a label by accident (the reference numbered labels in first-seen order and made
every missing level the same global id, creating cross-theory positives).

Direction comes from the intensity sign: ``+1`` supports, ``-1`` opposes, ``0`` neutral
(|intensity| < 1). Neutral texts do not express the value, so they are never positives of
anything in the hierarchical loss; they serve only as negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

__all__ = ["NEUTRAL_BAND", "N_LEVELS", "HierLabels", "build_labels", "heldout_split"]

#: Hierarchy levels encoded (Schwartz has the deepest tree: 4 levels).
N_LEVELS = 4
#: |intensity| below this is neutral (no direction).
NEUTRAL_BAND = 1.0


@dataclass(frozen=True)
class HierLabels:
    """Integer labels of n texts.

    Attributes:
        levels: ``(n, N_LEVELS)`` level ids, coarsest first; equal ids mean an equal path prefix
            only when all shallower columns are equal too (ids are global strings, so they are).
        direction: ``(n,)`` in {-1, 0, +1}.
        theory: ``(n,)`` theory index into ``theories``.
        value: ``(n,)`` index of the text's VIDB value into ``values``.
        theories: Theory keys, sorted.
        values: Canonical value ids, sorted.
        level_names: Canonical node id of each level id, per level.
    """

    levels: NDArray[np.int64]
    direction: NDArray[np.int64]
    theory: NDArray[np.int64]
    value: NDArray[np.int64]
    theories: tuple[str, ...]
    values: tuple[str, ...]
    level_names: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.direction)

    def subset(self, idx: NDArray[np.int64] | list[int]) -> HierLabels:
        """Labels of the rows ``idx`` (id tables unchanged)."""
        ix = np.asarray(idx, dtype=np.int64)
        return HierLabels(self.levels[ix], self.direction[ix], self.theory[ix], self.value[ix],
                          self.theories, self.values, self.level_names)


def _path_ids(node_id: str) -> list[str]:
    from valueflow.theories import get_registry

    reg = get_registry()
    node = reg.get(node_id)
    path = [n.id for n in reg.theory_of(node).path(node.id)]
    return (path + [path[-1]] * N_LEVELS)[:N_LEVELS]


def build_labels(vidb: pd.DataFrame) -> HierLabels:
    """Hierarchical labels for the rows of a VIDB frame (``value``, ``intensity``, opt. ``node``).

    Raises:
        DataError: when a required column is missing or a node id is unknown.
    """
    for col in ("value", "intensity"):
        if col not in vidb.columns:
            raise DataError(f"the VIDB has no {col!r} column",
                            hint="a VIDB needs text, value and intensity columns")
    nodes = vidb["node"] if "node" in vidb.columns else vidb["value"]
    leaf = [str(n) if isinstance(n, str) and n else str(v)
            for n, v in zip(nodes, vidb["value"], strict=True)]
    cache: dict[str, list[str]] = {}
    paths = []
    for node_id in leaf:
        if node_id not in cache:
            try:
                cache[node_id] = _path_ids(node_id)
            except KeyError as exc:
                raise DataError(f"unknown node {node_id!r} in the VIDB",
                                hint="`valueflow theories show THEORY` lists the nodes") from exc
        paths.append(cache[node_id])
    names = tuple(tuple(sorted({p[lvl] for p in paths})) for lvl in range(N_LEVELS))
    index = [{name: i for i, name in enumerate(level)} for level in names]
    levels = np.array([[index[lvl][p[lvl]] for lvl in range(N_LEVELS)] for p in paths],
                      dtype=np.int64).reshape(len(paths), N_LEVELS)
    x = vidb["intensity"].to_numpy(dtype=float)
    direction = np.where(np.abs(x) < NEUTRAL_BAND, 0, np.sign(x)).astype(np.int64)
    theory_of = [p[0].split(":", 1)[0] for p in paths]
    theories = tuple(sorted(set(theory_of)))
    values = tuple(sorted(set(map(str, vidb["value"]))))
    t_ix = {t: i for i, t in enumerate(theories)}
    v_ix = {v: i for i, v in enumerate(values)}
    return HierLabels(
        levels=levels,
        direction=direction,
        theory=np.array([t_ix[t] for t in theory_of], dtype=np.int64),
        value=np.array([v_ix[str(v)] for v in vidb["value"]], dtype=np.int64),
        theories=theories,
        values=values,
        level_names=names,
    )


def heldout_split(vidb: pd.DataFrame, fraction: float = 0.15,
                  seed: int = 0) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Train / held-out row indices, by text, stratified by value and direction.

    The same text never lands on both sides (rows with identical text stay together).
    """
    rng = np.random.default_rng(seed)
    texts = vidb["text"].astype(str).to_numpy()
    keys = (vidb["value"].astype(str) + "|" +
            np.sign(np.where(np.abs(vidb["intensity"].to_numpy(float)) < NEUTRAL_BAND, 0,
                             vidb["intensity"].to_numpy(float))).astype(int).astype(str))
    held_texts: set[str] = set()
    for _key, rows in vidb.groupby(keys.to_numpy()).groups.items():
        pos = np.asarray([vidb.index.get_loc(r) for r in rows])
        uniq = sorted(set(texts[pos]))
        k = round(len(uniq) * fraction)
        if k and len(uniq) > 1:
            held_texts.update(rng.choice(uniq, size=min(k, len(uniq) - 1), replace=False))
    held = np.array([t in held_texts for t in texts])
    return np.flatnonzero(~held).astype(np.int64), np.flatnonzero(held).astype(np.int64)
