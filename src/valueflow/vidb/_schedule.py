"""Window schedules for ranking-based intensity estimation (pure numpy/scipy).

A *window* is a set of ``k`` item ids shown to a judge together (``k = 2`` is pairwise). A
schedule must give every item enough comparisons and a connected comparison graph, or the
Plackett–Luce utilities of different parts of the data are not comparable.

:func:`balanced_windows` builds ``r`` rounds; each round shuffles all items and cuts the
permutation into windows of ``k``, so every item appears in at least ``r`` windows and every
window mixes items of any intensity (nothing about the items is known yet). Components left
disconnected (only possible for tiny ``r`` or ``n``) are joined by bridging windows.
:func:`adaptive_windows` builds a second round around near-ties once first utilities exist.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from valueflow.errors import ConfigError

__all__ = [
    "adaptive_windows",
    "appearances",
    "balanced_windows",
    "bridge_components",
    "window_components",
]

IntArray = NDArray[np.int64]


def _check(n_items: int, k: int, r: int) -> None:
    if n_items < 2:
        raise ConfigError(
            f"ranking needs at least 2 items, got {n_items}",
            hint="give the value at least 2 texts",
        )
    if k < 2:
        raise ConfigError(f"window size k must be at least 2, got {k}", hint="k = 2 is pairwise")
    if r < 1:
        raise ConfigError(f"r (windows per item) must be at least 1, got {r}")


def window_components(windows: IntArray, n_items: int) -> tuple[int, IntArray]:
    """Connected components of the comparison graph of ``windows``.

    Items in one window are linked (a chain through the window suffices: the window is a
    clique of comparisons). Returns ``(n_components, label per item)``.
    """
    w = np.asarray(windows, dtype=np.int64)
    if w.size == 0:
        return n_items, np.arange(n_items, dtype=np.int64)
    rows = w[:, :-1].ravel()
    cols = w[:, 1:].ravel()
    graph = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n_items, n_items))
    n, labels = connected_components(graph.tocsr(), directed=False)
    return int(n), labels.astype(np.int64)


def appearances(windows: IntArray, n_items: int) -> IntArray:
    """How many windows each item appears in."""
    return np.bincount(np.asarray(windows, dtype=np.int64).ravel(), minlength=n_items)


def bridge_components(
    windows: IntArray, n_items: int, k: int, rng: np.random.Generator
) -> IntArray:
    """Windows that join every connected component of ``windows`` into one.

    One random representative per component is taken; consecutive groups of ``k`` of them
    (each group sharing its first member with the previous group's last) form the bridges.
    """
    n_comp, labels = window_components(windows, n_items)
    if n_comp <= 1:
        return np.empty((0, k), dtype=np.int64)
    reps = np.array(
        [rng.choice(np.flatnonzero(labels == c)) for c in rng.permutation(n_comp)],
        dtype=np.int64,
    )
    bridges: list[IntArray] = []
    start = 0
    while start < reps.size - 1:
        group = reps[start : start + k]
        if group.size < k:  # fill the last bridge with items from its own components
            others = np.setdiff1d(np.arange(n_items), group)
            group = np.concatenate([group, rng.choice(others, k - group.size, replace=False)])
        bridges.append(group)
        start += k - 1
    return np.asarray(bridges, dtype=np.int64)


def balanced_windows(n_items: int, k: int, r: int, *, seed: int = 0) -> IntArray:
    """A random balanced design: every item in at least ``r`` windows of ``k``, connected.

    Args:
        n_items: Number of items (ids ``0 .. n_items - 1``).
        k: Window size; clipped to ``n_items`` when there are fewer items.
        r: Minimum number of windows each item appears in.
        seed: The design is a deterministic function of ``(n_items, k, r, seed)``, so a
            resumed build asks exactly the same windows again (and hits the cache).

    Returns:
        ``(W, k)`` int array of item ids. Item order inside a window is random, so no
        item is systematically shown first.

    Raises:
        ConfigError: ``n_items < 2``, ``k < 2`` or ``r < 1``.
    """
    _check(n_items, k, r)
    k = min(k, n_items)
    rng = np.random.default_rng(seed)
    full, rest = divmod(n_items, k)
    out: list[IntArray] = []
    for _ in range(r):
        perm = rng.permutation(n_items)
        out.append(perm[: full * k].reshape(full, k))
        if rest:
            tail = perm[full * k :]
            # Complete the leftover window with items drawn from the rest of this round.
            fill = rng.choice(perm[: full * k], k - rest, replace=False)
            out.append(rng.permutation(np.concatenate([tail, fill]))[None, :])
    windows = np.concatenate(out, axis=0)
    bridges = bridge_components(windows, n_items, k, rng)
    if bridges.size:
        windows = np.concatenate([windows, bridges], axis=0)
    return windows


def adaptive_windows(
    utilities: NDArray[np.float64],
    se: NDArray[np.float64],
    k: int,
    n_windows: int,
    *,
    seed: int = 0,
) -> IntArray:
    """Windows of near-tied items, to refine the order where it is least certain.

    Items are sorted by utility; every run of ``k`` neighbours in that order is a candidate
    window, scored by how close its items are relative to their uncertainty
    (``sum(se) / (spread + eps)``). The ``n_windows`` highest-scoring candidates are kept,
    shuffled inside.

    Args:
        utilities: Current utility per item.
        se: Current standard error per item.
        k: Window size (clipped to the number of items).
        n_windows: How many windows to return (at most ``n_items - k + 1``).
        seed: Seed for the order of items inside each window.
    """
    u = np.asarray(utilities, dtype=float)
    s = np.asarray(se, dtype=float)
    n = u.size
    _check(n, k, 1)
    k = min(k, n)
    order = np.argsort(u, kind="stable")
    starts = np.arange(n - k + 1)
    idx = starts[:, None] + np.arange(k)[None, :]
    cand = order[idx]
    spread = u[cand[:, -1]] - u[cand[:, 0]]
    score = s[cand].sum(axis=1) / (spread + 1e-9)
    # Non-overlapping first: take candidates greedily by score, skipping ones that share an
    # item with a window already taken, then fill up with the best remaining.
    chosen: list[int] = []
    used = np.zeros(n, dtype=bool)
    ranked = np.argsort(-score, kind="stable")
    for c in ranked:
        if len(chosen) >= n_windows:
            break
        if not used[cand[c]].any():
            chosen.append(int(c))
            used[cand[c]] = True
    if len(chosen) < n_windows:
        taken = set(chosen)
        chosen += [int(c) for c in ranked if int(c) not in taken][: n_windows - len(chosen)]
    rng = np.random.default_rng(seed)
    wins = cand[np.array(chosen, dtype=np.int64)] if chosen else np.empty((0, k), np.int64)
    return np.asarray(rng.permuted(wins, axis=1), dtype=np.int64)
