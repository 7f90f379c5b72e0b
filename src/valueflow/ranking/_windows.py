"""Observed windows (one unknown item ranked among anchors) and their grid likelihood.

A window is a ranking, best first, of one unknown item (marked :data:`UNKNOWN`) and anchors
of known intensity. With judge utilities ``β·intensity`` the Plackett–Luce log-probability of
the ranking splits into a part that depends on the unknown intensity ``x`` and a part that
involves only anchors. With the anchors' intensities listed in ranking order (unknown
removed) as ``a_0 .. a_{L-2}``, ``S_m = logsumexp(β·a_m, ..., β·a_{L-2})`` (``S_{L-1} = -inf``)
and ``r`` the unknown's position::

    log P = [ β·x - Σ_{m<=r} logaddexp(S_m, β·x) ]  +  [ β·Σ a - Σ_{m=r}^{L-2} S_m ]
            └────────── ℓ(x): informs x ──────────┘    └── c(β): anchors only, informs β ──┘
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import DataError

__all__ = ["UNKNOWN", "WindowData", "pack_windows", "window_loglik"]

UNKNOWN = -1
"""Marker for the unknown (scored) item inside a window's ranking."""

Array = NDArray[np.float64]

_CHUNK = 1024


@dataclass(frozen=True)
class WindowData:
    """Windows packed into padded arrays.

    Attributes:
        item: ``(W,)`` index of the unknown item of each window.
        judge: ``(W,)`` judge index of each window.
        anchors: ``(W, Lmax - 1)`` anchor intensities in ranking order, NaN-padded.
        n_anchors: ``(W,)`` number of anchors in each window.
        pos: ``(W,)`` position (0 = best) of the unknown in each ranking.
        anchor_ids: ``(W, Lmax - 1)`` anchor ids in ranking order, ``-1``-padded.
    """

    item: NDArray[np.int64]
    judge: NDArray[np.int64]
    anchors: Array
    n_anchors: NDArray[np.int64]
    pos: NDArray[np.int64]
    anchor_ids: NDArray[np.int64]

    @property
    def n_windows(self) -> int:
        """Number of windows."""
        return int(self.item.shape[0])


def pack_windows(
    items: Sequence[int] | NDArray[np.int64],
    rankings: Sequence[Sequence[int]],
    judges: NDArray[np.int64],
    anchor_values: Array,
) -> WindowData:
    """Validate windows and pack them.

    Raises:
        DataError: A ranking lacks the unknown marker or holds it twice, repeats an anchor,
            uses an anchor id out of range, or has no anchor.
    """
    n_anchor_total = anchor_values.shape[0]
    item = np.asarray(items, dtype=np.int64)
    if item.ndim != 1 or item.shape[0] != len(rankings):
        raise DataError(
            f"got {item.shape[0] if item.ndim == 1 else item.shape} item indices for "
            f"{len(rankings)} rankings",
            hint="pass one unknown-item index per observed window",
        )
    if item.size and item.min() < 0:
        raise DataError("unknown-item indices must be non-negative")
    lmax = max((len(r) for r in rankings), default=2)
    ids = np.full((len(rankings), max(lmax - 1, 1)), -1, dtype=np.int64)
    pos = np.zeros(len(rankings), dtype=np.int64)
    n_anc = np.zeros(len(rankings), dtype=np.int64)
    for w, rk in enumerate(rankings):
        r = [int(x) for x in rk]
        if r.count(UNKNOWN) != 1:
            raise DataError(
                f"window {w} must hold the unknown item (marked {UNKNOWN}) exactly once: {r}",
                hint="write the scored text as -1 (valueflow.ranking.UNKNOWN) in the ranking",
            )
        anc = [x for x in r if x != UNKNOWN]
        if not anc:
            raise DataError(f"window {w} has no anchor: {r}", hint="a window needs k >= 2")
        if len(set(anc)) != len(anc):
            raise DataError(f"window {w} repeats an anchor: {r}")
        if min(anc) < 0 or max(anc) >= n_anchor_total:
            raise DataError(
                f"window {w} uses an anchor id outside 0 .. {n_anchor_total - 1}: {r}",
                hint="anchor ids index anchor_intensities",
            )
        pos[w] = r.index(UNKNOWN)
        ids[w, : len(anc)] = anc
        n_anc[w] = len(anc)
    vals = np.where(ids >= 0, anchor_values[np.maximum(ids, 0)], np.nan)
    return WindowData(
        item=item, judge=judges, anchors=vals, n_anchors=n_anc, pos=pos, anchor_ids=ids
    )


def _suffix(beta: float, data: WindowData, sel: slice | NDArray[np.int64]) -> Array:
    """``S[w, m]`` for m in 0..Lmax-1, -inf past each window's anchors."""
    a = data.anchors[sel] * beta
    a = np.where(np.isnan(a), -np.inf, a)
    a = np.concatenate([a, np.full((a.shape[0], 1), -np.inf)], axis=1)
    return np.logaddexp.accumulate(a[:, ::-1], axis=1)[:, ::-1]


def window_loglik(
    beta: float, data: WindowData, grid: Array, sel: NDArray[np.int64] | None = None
) -> tuple[Array, Array]:
    """Grid log-likelihood ``ℓ_w(grid)`` and anchor-only constants ``c_w`` of windows.

    Args:
        beta: Judge noise parameter (utility = ``beta * intensity``).
        data: Packed windows.
        grid: ``(G,)`` candidate intensities of the unknown.
        sel: Optional subset of window indices.

    Returns:
        ``(ell, const)`` with shapes ``(W, G)`` and ``(W,)``.
    """
    idx = np.arange(data.n_windows) if sel is None else np.asarray(sel)
    ell = np.empty((idx.size, grid.size))
    const = np.empty(idx.size)
    bx = beta * grid
    for start in range(0, idx.size, _CHUNK):
        part = idx[start : start + _CHUNK]
        s = _suffix(beta, data, part)
        lmax = s.shape[1]
        pos = data.pos[part]
        steps = np.arange(lmax)
        use = steps[None, :] <= pos[:, None]
        terms = np.logaddexp(s[:, None, :], bx[None, :, None])
        ell[start : start + part.size] = bx[None, :] - np.einsum("wgm,wm->wg", terms, use)
        a = data.anchors[part] * beta
        tail = (steps[None, :] >= pos[:, None]) & (steps[None, :] < data.n_anchors[part, None])
        const[start : start + part.size] = np.nansum(a, axis=1) - np.where(tail, s, 0.0).sum(1)
    return ell, const
