"""The paper's reference anchored scorer, reimplemented for comparison only.

This follows the description of the reference evaluator's estimator (see
``valueflow-method.md`` §4), written from that description: anchor utility = anchor
intensity clipped to ±10 (so the judge's β is fixed at 1), a one-dimensional Plackett–Luce
maximum-likelihood estimate of the unknown's utility with a tiny L2 penalty (λ = 1e-3)
solved by bisection on [-20, 20] with a gradient-ascent fallback, an "isotonic" calibration
that amounts to clipping to the anchors' range, and guardrails that decide the score when
the item won or lost every comparison. Use :class:`valueflow.ranking.AnchoredScorer` for
real work; this class exists so that benchmarks can measure against the reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from valueflow.ranking._windows import UNKNOWN

__all__ = ["ReferenceAnchoredScorer"]

Array = NDArray[np.float64]

_LAMBDA = 1e-3
_EXP_CLIP = 20.0


class ReferenceAnchoredScorer:
    """The reference's estimator (β = 1, ML, clamping); for benchmarks, not for use.

    Args:
        anchor_intensities: Known intensity of each anchor (anchor ``j`` is id ``j``).
        n_iter: Steps of the gradient-ascent fallback (the reference's ``iter``).
        lr: Its learning rate.

    Attributes (after :meth:`fit`):
        scores_: Score per item (NaN for an item without windows).
    """

    def __init__(
        self, anchor_intensities: Sequence[float] | Array, *, n_iter: int = 50, lr: float = 0.1
    ) -> None:
        self.anchor_intensities = anchor_intensities
        self.n_iter = n_iter
        self.lr = lr

    @staticmethod
    def _grad(u: float, windows: list[tuple[list[float], int]]) -> float:
        g = -_LAMBDA * u
        for utils, pos in windows:
            full = [*utils[:pos], u, *utils[pos:]]
            ex = np.exp(np.clip(np.asarray(full), -_EXP_CLIP, _EXP_CLIP))
            for j in range(len(full)):
                if j == pos:
                    g += 1.0
                if j <= pos:  # the unknown is still in the remaining set
                    g -= ex[pos] / ex[j:].sum()
        return g

    def _solve(self, windows: list[tuple[list[float], int]]) -> float:
        lo, hi = -20.0, 20.0
        g_lo, g_hi = self._grad(lo, windows), self._grad(hi, windows)
        if np.sign(g_lo) != np.sign(g_hi):
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                g_mid = self._grad(mid, windows)
                if abs(g_mid) < 1e-6 or hi - lo < 1e-6:
                    return mid
                if np.sign(g_mid) == np.sign(g_lo):
                    lo, g_lo = mid, g_mid
                else:
                    hi = mid
            return 0.5 * (lo + hi)
        u = 0.0
        for _ in range(self.n_iter):
            new = float(np.clip(u + self.lr * self._grad(u, windows), -20.0, 20.0))
            if abs(new - u) < 1e-6:
                return new
            u = new
        return u

    def fit(
        self,
        items: Sequence[int] | NDArray[np.int64],
        rankings: Sequence[Sequence[int]],
        *,
        n_items: int | None = None,
    ) -> ReferenceAnchoredScorer:
        """Score every item from its windows (same inputs as ``AnchoredScorer.fit``)."""
        a = np.asarray(self.anchor_intensities, dtype=float)
        util = np.clip(a, -10.0, 10.0)
        iso_lo, iso_hi = float(a.min()), float(a.max())
        item_arr = np.asarray(items, dtype=np.int64)
        n = int(n_items) if n_items is not None else int(item_arr.max(initial=-1)) + 1
        per_item: list[list[tuple[list[float], int]]] = [[] for _ in range(n)]
        seen: list[list[float]] = [[] for _ in range(n)]
        wins = np.zeros(n, dtype=np.int64)
        losses = np.zeros(n, dtype=np.int64)
        for i, rk in zip(item_arr, rankings, strict=True):
            r = [int(x) for x in rk]
            pos = r.index(UNKNOWN)
            anc = [x for x in r if x != UNKNOWN]
            per_item[i].append(([float(util[x]) for x in anc], pos))
            seen[i].extend(float(a[x]) for x in anc)
            losses[i] += pos
            wins[i] += len(anc) - pos
        scores = np.full(n, np.nan)
        for i in range(n):
            if not per_item[i]:
                continue
            s = float(np.clip(self._solve(per_item[i]), iso_lo, iso_hi))
            w_min, w_max = min(seen[i]), max(seen[i])
            if wins[i] == 0:
                s = float(np.nextafter(w_min, -np.inf))
            elif losses[i] == 0:
                s = float(np.nextafter(w_max, np.inf))
            else:
                s = min(max(s, w_min), w_max)
                if s == w_min:
                    s += 1e-6
                elif s == w_max:
                    s -= 1e-6
            scores[i] = float(np.clip(s, -10.0, 10.0))
        self.scores_ = scores
        return self
