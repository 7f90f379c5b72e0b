"""Window design: which anchors to show a judge beside each unknown item, and in what order.

* :func:`random_windows` — ``k - 1`` distinct anchors uniformly at random.
* :func:`bucket_windows` — one anchor per intensity stratum (equal-width strata between the
  lowest and highest anchor, as the reference does, or equal-count strata). Empty strata and
  a constant anchor set (the reference crashes on min == max) fall back to unused anchors.
* :class:`AdaptiveDesigner` — sequential: the next window's anchors sit around the item's
  current posterior, spread to match the judge's noise, chosen among a few candidate spreads
  by simulated expected posterior variance.
* :func:`shuffle_window` — the unknown's display position is random (the reference always
  shows it first, inviting position bias); the result maps the judge's answer back to ids.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from valueflow.errors import ConfigError, DataError
from valueflow.ranking._simulate import sample_pl_rankings
from valueflow.ranking._windows import WindowData, window_loglik

__all__ = [
    "AdaptiveDesigner",
    "ShuffledWindow",
    "bucket_windows",
    "random_windows",
    "shuffle_window",
]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _check(anchors: Array, k: int, m: int, n_items: int) -> Array:
    a = np.asarray(anchors, dtype=float)
    if a.ndim != 1 or not np.all(np.isfinite(a)):
        raise DataError("anchor intensities must be a 1-D array of finite numbers")
    if k < 2:
        raise ConfigError(f"window size k must be at least 2, got {k}")
    if k - 1 > a.size:
        raise ConfigError(
            f"window size k={k} needs {k - 1} distinct anchors, but only {a.size} exist",
            hint=f"use k <= {a.size + 1} or add anchors",
        )
    if m < 1 or n_items < 0:
        raise ConfigError(f"need m >= 1 windows per item and n_items >= 0, got m={m}")
    return a


def random_windows(
    anchor_intensities: Sequence[float] | Array,
    k: int,
    m: int,
    n_items: int = 1,
    *,
    seed: int | np.random.Generator | None = None,
) -> IntArray:
    """``(n_items, m, k - 1)`` anchor ids: each window ``k - 1`` distinct uniform anchors."""
    a = _check(np.asarray(anchor_intensities), k, m, n_items)
    rng = np.random.default_rng(seed)
    keys = rng.random((n_items, m, a.size))
    return np.argpartition(keys, k - 2, axis=2)[:, :, : k - 1].astype(np.int64)


def bucket_windows(
    anchor_intensities: Sequence[float] | Array,
    k: int,
    m: int,
    n_items: int = 1,
    *,
    strata: str = "width",
    seed: int | np.random.Generator | None = None,
) -> IntArray:
    """``(n_items, m, k - 1)`` anchor ids, one anchor per intensity stratum.

    Args:
        strata: ``"width"`` (``k - 1`` equal-width bins between the lowest and highest anchor,
            the reference's design) or ``"quantile"`` (``k - 1`` equal-count bins).
    """
    a = _check(np.asarray(anchor_intensities), k, m, n_items)
    if strata not in ("width", "quantile"):
        raise ConfigError(f"unknown strata {strata!r}", hint="use 'width' or 'quantile'")
    rng = np.random.default_rng(seed)
    nb = k - 1
    if strata == "quantile":
        ranks = np.empty(a.size, dtype=np.int64)
        ranks[np.argsort(a, kind="stable")] = np.arange(a.size)
        label = ranks * nb // a.size
    elif a.max() > a.min():
        edges = np.linspace(a.min(), a.max(), nb + 1)
        label = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, nb - 1)
    else:  # all anchors equal: strata are meaningless, draw uniformly
        return random_windows(a, k, m, n_items, seed=rng)
    members = [np.nonzero(label == b)[0] for b in range(nb)]
    out = np.empty((n_items, m, nb), dtype=np.int64)
    for i in range(n_items):
        for w in range(m):
            chosen: list[int] = []
            for b in range(nb):
                if members[b].size:
                    chosen.append(int(rng.choice(members[b])))
            while len(chosen) < nb:  # empty strata: any anchor not yet in the window
                c = int(rng.integers(a.size))
                if c not in chosen:
                    chosen.append(c)
            out[i, w] = chosen
    return out


@dataclass(frozen=True)
class ShuffledWindow:
    """A window in display order; maps the judge's answer back to the members.

    Attributes:
        display: The members in the order shown to the judge (position 1 first).
    """

    display: tuple[Hashable, ...]

    def to_ranking(self, answer: Sequence[int]) -> tuple[Hashable, ...]:
        """Members best first, from the judge's answer: 1-based display positions, best first.

        Raises:
            DataError: ``answer`` is not a permutation of ``1 .. k``.
        """
        k = len(self.display)
        if sorted(int(x) for x in answer) != list(range(1, k + 1)):
            raise DataError(
                f"the judge's answer {list(answer)} is not a permutation of 1..{k}",
                hint="the answer must list every display position exactly once",
            )
        return tuple(self.display[int(x) - 1] for x in answer)


def shuffle_window(
    members: Sequence[Hashable], seed: int | np.random.Generator | None = None
) -> ShuffledWindow:
    """Put the window's members (the unknown item and its anchors) in a random display order."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(members))
    return ShuffledWindow(display=tuple(members[int(i)] for i in perm))


class AdaptiveDesigner:
    """Choose each item's next window around its current posterior.

    For each item, the ``k - 1`` anchors sit at the quantiles ``(j - 0.5) / (k - 1)`` of the
    item's current posterior widened by logistic judge noise of scale ``spread / β``. With
    several ``spreads`` one candidate window is built per spread and the one with the
    smallest expected posterior variance (simulating ``n_sim`` judge answers) is used. In our
    simulations (k = 6, β in {0.3, 1}) the result was flat in the spread (±2 % RMSE between
    0 and 2) and choosing by simulation gained nothing, so the default is one spread, 0.5.
    Each target is filled with one of the ``n_near`` anchors closest to it, at random, so
    that repeated windows do not reuse the same anchors.

    Args:
        anchor_intensities: Known intensity of each anchor.
        k: Window size (the unknown item plus ``k - 1`` anchors).
        spreads: Candidate noise widths, in units of ``1 / β``.
        n_sim: Simulated answers per candidate (0: use the first spread, no simulation).
        n_near: Number of nearest anchors to pick from for each target.
        seed: Seed of the designer's random generator.
    """

    def __init__(
        self,
        anchor_intensities: Sequence[float] | Array,
        k: int,
        *,
        spreads: Sequence[float] = (0.5,),
        n_sim: int = 16,
        n_near: int = 3,
        seed: int | None = 0,
    ) -> None:
        self.anchor_intensities = anchor_intensities
        self.k = k
        self.spreads = spreads
        self.n_sim = n_sim
        self.n_near = n_near
        self.seed = seed
        self._a = _check(np.asarray(anchor_intensities), k, 1, 0)
        self._order = np.argsort(self._a, kind="stable")
        self._sorted = self._a[self._order]
        self._rng = np.random.default_rng(seed)

    def _targets(self, posterior: Array, grid: Array, width: float) -> Array:
        """Quantiles of each posterior convolved with a logistic of scale ``width``."""
        if width > 0:
            z = (grid[:, None] - grid[None, :]) / width
            kern = np.exp(-np.logaddexp(0.0, z) - np.logaddexp(0.0, -z))
            wide = posterior @ kern
        else:
            wide = posterior
        cdf = np.cumsum(wide, axis=1)
        cdf /= cdf[:, -1:]
        levels = (np.arange(self.k - 1) + 0.5) / (self.k - 1)
        return np.array([np.interp(levels, c, grid) for c in cdf])

    def _fill(self, targets: Array) -> IntArray:
        """Anchor ids near each target, distinct within a row."""
        n, t = targets.shape
        s = self._sorted
        near = min(self.n_near, s.size)
        pos = np.searchsorted(s, targets)
        lo = np.clip(pos - near, 0, max(s.size - 2 * near, 0))
        cand = lo[..., None] + np.arange(min(2 * near, s.size))
        dist = np.abs(s[cand] - targets[..., None])
        best = np.argsort(dist, axis=-1, kind="stable")[..., :near]
        pick = np.take_along_axis(cand, best, -1)
        choice = pick[..., 0].copy()
        if near > 1:
            r = self._rng.integers(near, size=(n, t))
            choice = np.take_along_axis(pick, r[..., None], -1)[..., 0]
        out = self._order[choice]
        for i in range(n):  # rare: two targets landed on the same anchor
            row = out[i]
            if np.unique(row).size == t:
                continue
            used: set[int] = set()
            for j in range(t):
                if int(row[j]) in used:
                    ranked = self._order[np.argsort(np.abs(s - targets[i, j]), kind="stable")]
                    row[j] = next(int(x) for x in ranked if int(x) not in used)
                used.add(int(row[j]))
        return out.astype(np.int64)

    def _expected_var(self, posterior: Array, grid: Array, beta: float, ids: IntArray) -> Array:
        """Monte-Carlo expected posterior variance of each item after one window ``ids``."""
        n, t = ids.shape
        s = self.n_sim
        cdf = np.cumsum(posterior, axis=1)
        u = self._rng.random((n, s)) * cdf[:, -1:]
        xi = np.minimum(
            np.array([np.searchsorted(c, row) for c, row in zip(cdf, u, strict=True)]),
            grid.size - 1,
        )
        x = grid[xi]
        anc = np.repeat(self._a[ids], s, axis=0)  # (n*s, t)
        members = np.concatenate([x.reshape(-1, 1), anc], axis=1)
        order = sample_pl_rankings(beta * members, self._rng)
        pos = np.argmax(order == 0, axis=1)
        anc_order = order[order != 0].reshape(-1, t) - 1
        vals = np.take_along_axis(anc, anc_order, 1)
        data = WindowData(
            item=np.repeat(np.arange(n), s),
            judge=np.zeros(n * s, dtype=np.int64),
            anchors=vals,
            n_anchors=np.full(n * s, t),
            pos=pos.astype(np.int64),
            anchor_ids=np.zeros_like(vals, dtype=np.int64),
        )
        ell, _ = window_loglik(beta, data, grid)
        logp = np.log(np.maximum(np.repeat(posterior, s, axis=0), 1e-300)) + ell
        logp -= logsumexp(logp, axis=1, keepdims=True)
        p = np.exp(logp)
        mean = p @ grid
        var = p @ grid**2 - mean**2
        return var.reshape(n, s).mean(axis=1)

    def propose(self, posterior: Array, grid: Array, beta: float) -> IntArray:
        """Anchor ids ``(n_items, k - 1)`` for each item's next window.

        Args:
            posterior: ``(n_items, G)`` current posterior probabilities on ``grid`` (e.g.
                ``AnchoredScorer.posterior_``, or the prior repeated before any window).
            grid: ``(G,)`` intensities of the grid.
            beta: Current estimate of the judge's β.
        """
        post = np.atleast_2d(np.asarray(posterior, dtype=float))
        grid = np.asarray(grid, dtype=float)
        if post.shape[1] != grid.size:
            raise DataError(f"posterior has {post.shape[1]} grid points, grid has {grid.size}")
        if not (np.isfinite(beta) and beta > 0):
            raise ConfigError(f"beta must be positive, got {beta!r}")
        if self.n_sim <= 0 or len(self.spreads) == 1:
            return self._fill(self._targets(post, grid, self.spreads[0] / beta))
        # A coarser grid is plenty to compare candidate designs.
        step = max(1, grid.size // 161)
        g_c, p_c = grid[::step], post[:, ::step]
        p_c = p_c / p_c.sum(axis=1, keepdims=True)
        cands = [self._fill(self._targets(post, grid, c / beta)) for c in self.spreads]
        ev = np.stack([self._expected_var(p_c, g_c, beta, ids) for ids in cands], axis=1)
        best = np.argmin(ev, axis=1)
        return np.stack(cands, axis=1)[np.arange(post.shape[0]), best]
