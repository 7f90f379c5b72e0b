"""Batch samplers for HiVES training.

:class:`HierarchicalBatchSampler` (stage 1) builds each batch from one theory out of
*clusters*: an anchor text, texts on the anchor's exact path and direction, and texts of the
same value with the opposite direction (the hard negatives). The first cluster also takes one
text per level that shares the anchor's path down to that level only, so every level has
positives in every batch. The rest is filled with other texts of the theory (neutral ones too).
``len(sampler)`` is the exact number of batches it yields (the reference over-counted).

:class:`CrossTheoryBatchSampler` (stage 2) yields :class:`StageTwoBatch` objects whose parts
are *named*: ``hier`` is a stage-1 batch; ``anchor`` holds several cross-theory anchor groups
(texts of the anchor's member values from at least two theories, one direction per group)
with their group ids. Nothing is shuffled across parts, so each loss gets what it claims.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from valueflow.embed._labels import HierLabels

__all__ = ["CrossTheoryBatchSampler", "HierarchicalBatchSampler", "StageTwoBatch",
           "anchor_membership"]


class HierarchicalBatchSampler:
    """Single-theory batches with positives at every level and opposite-direction negatives.

    Args:
        labels: Labels of the training texts.
        batch_size: Texts per batch.
        n_pos: Texts on the anchor's exact path and direction per cluster (besides the anchor).
        n_opposite: Same-value, opposite-direction texts per cluster.
        clusters: Clusters per batch (the rest is filled at random from the theory).
        n_batches: Batches per epoch (default ``ceil(n / batch_size)``).
        seed: Seed; epoch ``e`` uses ``seed + e`` (call :meth:`set_epoch`).
    """

    def __init__(self, labels: HierLabels, batch_size: int = 32, n_pos: int = 3,
                 n_opposite: int = 2, clusters: int = 3, n_batches: int | None = None,
                 seed: int = 0) -> None:
        if batch_size < 2 + n_pos + n_opposite:
            raise ValueError("batch_size too small for one cluster")
        self.labels = labels
        self.batch_size = batch_size
        self.n_pos = n_pos
        self.n_opposite = n_opposite
        self.clusters = clusters
        self.n_batches = n_batches or max(1, math.ceil(len(labels) / batch_size))
        self.seed = seed
        self.epoch = 0
        lv, d = labels.levels, labels.direction
        self._by_theory: dict[int, NDArray[np.int64]] = {
            int(t): np.flatnonzero(labels.theory == t) for t in np.unique(labels.theory)}
        # Texts that can anchor a cluster: directional, with at least one exact positive.
        key = [(tuple(row), int(di)) for row, di in zip(lv.tolist(), d.tolist(), strict=True)]
        self._exact: dict[tuple[tuple[int, ...], int], list[int]] = defaultdict(list)
        for i, k in enumerate(key):
            if k[1] != 0:
                self._exact[k].append(i)
        self._key = key
        self._anchors: dict[int, NDArray[np.int64]] = {}
        for t, rows in self._by_theory.items():
            ok = [i for i in rows if key[i][1] != 0 and len(self._exact[key[i]]) > 1]
            if ok:
                self._anchors[t] = np.asarray(ok, dtype=np.int64)
        if not self._anchors:
            raise ValueError("no text has a positive (same path and direction); cannot sample")

    def __len__(self) -> int:
        return self.n_batches

    def set_epoch(self, epoch: int) -> None:
        """Use a different, reproducible shuffle for each epoch."""
        self.epoch = epoch

    def _cluster(self, rng: np.random.Generator, a: int, taken: set[int],
                 with_levels: bool) -> list[int]:
        lv, d, val = self.labels.levels, self.labels.direction, self.labels.value
        out = [a]
        exact = [i for i in self._exact[self._key[a]] if i != a and i not in taken]
        out += rng.permutation(exact)[: self.n_pos].tolist()
        t_rows = self._by_theory[int(self.labels.theory[a])]
        if with_levels:
            # One text per level l that shares the path down to l but not to l + 1.
            for lvl in range(lv.shape[1] - 1):
                same = np.all(lv[t_rows, : lvl + 1] == lv[a, : lvl + 1], axis=1)
                cand = t_rows[same & (lv[t_rows, lvl + 1] != lv[a, lvl + 1]) &
                              (d[t_rows] == d[a])]
                cand = np.array([c for c in cand if c not in taken and c not in out])
                if len(cand):
                    out.append(int(rng.choice(cand)))
        opp = t_rows[(val[t_rows] == val[a]) & (d[t_rows] == -d[a])]
        opp = np.array([c for c in opp if c not in taken and c not in out])
        if len(opp):
            out += rng.permutation(opp)[: self.n_opposite].tolist()
        return [int(i) for i in out]

    def sample_batch(self, rng: np.random.Generator) -> list[int]:
        """One batch (used by both stages)."""
        theories = sorted(self._anchors)
        sizes = np.array([len(self._by_theory[t]) for t in theories], dtype=float)
        t = theories[int(rng.choice(len(theories), p=sizes / sizes.sum()))]
        anchors = self._anchors[t]
        batch: list[int] = []
        taken: set[int] = set()
        used_values: set[int] = set()
        for c, a in enumerate(rng.permutation(anchors)):
            if c >= self.clusters * 4 or len(batch) >= self.batch_size:
                break
            if int(self.labels.value[a]) in used_values:
                continue
            cluster = self._cluster(rng, int(a), taken, with_levels=not batch)
            # a row can be drawn twice inside a cluster (anchor and positive of one level)
            cluster = [i for i in dict.fromkeys(cluster) if i not in taken]
            room = self.batch_size - len(batch)
            batch += cluster[:room]
            taken.update(cluster[:room])
            used_values.add(int(self.labels.value[a]))
            if len(used_values) >= self.clusters:
                break
        rest = np.array([i for i in self._by_theory[t] if i not in taken])
        need = self.batch_size - len(batch)
        if need > 0 and len(rest):
            batch += rng.permutation(rest)[:need].tolist()
        return [int(i) for i in batch]

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        for _ in range(self.n_batches):
            yield self.sample_batch(rng)


def anchor_membership(labels: HierLabels, anchors: Sequence[Sequence[str]]) -> list[set[int]]:
    """For each text, the indices of the anchors one of whose members lies on its path."""
    on_path: list[set[str]] = []
    for row in labels.levels:
        on_path.append({labels.level_names[lvl][int(row[lvl])] for lvl in range(len(row))})
    return [{a for a, members in enumerate(anchors) if on_path[i] & set(members)}
            for i in range(len(labels))]


@dataclass(frozen=True)
class StageTwoBatch:
    """One stage-2 batch with named parts.

    Attributes:
        hier: Row indices for the hierarchical loss (one theory).
        anchor: Row indices for the cross-theory InfoNCE loss.
        anchor_groups: Group id of each ``anchor`` row (one per anchor and direction).
    """

    hier: list[int]
    anchor: list[int]
    anchor_groups: list[int]


class CrossTheoryBatchSampler:
    """Stage-2 batches: a hierarchical part and a cross-theory anchor part, kept apart.

    Args:
        labels: Labels of the training texts.
        anchors: Member node ids of each cross-theory anchor.
        hier_sampler: The stage-1 sampler that draws the ``hier`` part.
        groups_per_batch: Anchor groups in the ``anchor`` part (members never overlap).
        per_group: Texts per anchor group (spread over its theories).
        n_batches: Batches per epoch.
        seed: Seed; epoch ``e`` uses ``seed + e``.
    """

    def __init__(self, labels: HierLabels, anchors: Sequence[Sequence[str]],
                 hier_sampler: HierarchicalBatchSampler, groups_per_batch: int = 6,
                 per_group: int = 4, n_batches: int | None = None, seed: int = 0) -> None:
        self.labels = labels
        self.hier_sampler = hier_sampler
        self.groups_per_batch = groups_per_batch
        self.per_group = per_group
        self.n_batches = n_batches or len(hier_sampler)
        self.seed = seed
        self.epoch = 0
        member = anchor_membership(labels, anchors)
        # (anchor, direction) -> {theory: rows}; usable when two theories have texts.
        pools: dict[tuple[int, int], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, anc in enumerate(member):
            d = int(labels.direction[i])
            if d == 0:
                continue
            for a in anc:
                pools[(a, d)][int(labels.theory[i])].append(i)
        self._pools = {k: {t: np.asarray(r) for t, r in v.items()}
                       for k, v in pools.items() if len(v) >= 2}
        self._keys = sorted(self._pools)
        self._members = [set(m) for m in anchors]
        # With no anchor linking texts of two theories, the anchor parts are empty and
        # stage 2 trains the hierarchical loss alone.

    def __len__(self) -> int:
        return self.n_batches

    def set_epoch(self, epoch: int) -> None:
        """Use a different, reproducible shuffle for each epoch."""
        self.epoch = epoch
        self.hier_sampler.set_epoch(epoch)

    @property
    def has_anchor_groups(self) -> bool:
        """True when some anchor links texts of two theories."""
        return bool(self._keys)

    def _anchor_part(self, rng: np.random.Generator) -> tuple[list[int], list[int]]:
        rows: list[int] = []
        groups: list[int] = []
        used_members: set[str] = set()
        used_rows: set[int] = set()
        for k in rng.permutation(len(self._keys)):
            a, d = self._keys[int(k)]
            if self._members[a] & used_members:
                continue  # overlapping anchors would turn positives into negatives
            pool = self._pools[(a, d)]
            theories = list(rng.permutation(sorted(pool)))
            picked: list[int] = []
            for j in range(self.per_group):
                cand = [int(i) for i in pool[int(theories[j % len(theories)])]
                        if int(i) not in used_rows and int(i) not in picked]
                if cand:
                    picked.append(int(rng.choice(cand)))
            if len({int(self.labels.theory[i]) for i in picked}) < 2:
                continue
            used_members |= self._members[a]
            used_rows.update(picked)
            rows += picked
            groups += [2 * a + (d > 0)] * len(picked)
            if len(set(groups)) >= self.groups_per_batch:
                break
        return rows, groups

    def __iter__(self) -> Iterator[StageTwoBatch]:
        rng = np.random.default_rng(10_000 + self.seed + self.epoch)
        for _ in range(self.n_batches):
            hier = self.hier_sampler.sample_batch(rng)
            rows, groups = self._anchor_part(rng)
            yield StageTwoBatch(hier=hier, anchor=rows, anchor_groups=groups)
