"""Vectorised Plackett–Luce log-likelihood, gradient and sparse Hessian.

For a ranking ``π`` of length ``L`` whose first ``t`` choice steps are ordered, the
log-likelihood under utilities ``u`` is::

    log P(π | u) = Σ_{j < t} [ u_{π_j} - logsumexp(u_{π_j}, ..., u_{π_{L-1}}) ]

Pairwise comparisons are the special case ``L = 2`` and get a closed-form fast path.
Everything here works on the packed :class:`~valueflow.ranking._data.RankingGroup` arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from valueflow.ranking._data import RankingGroup

__all__ = ["hessian", "hessian_operator", "loglik_and_grad"]

Array = NDArray[np.float64]


def _suffix_lse(u_mat: Array) -> Array:
    """``S[:, j] = logsumexp(u_mat[:, j:])`` for each row."""
    return np.logaddexp.accumulate(u_mat[:, ::-1], axis=1)[:, ::-1]


def loglik_and_grad(u: Array, groups: list[RankingGroup]) -> tuple[float, Array]:
    """Weighted Plackett–Luce log-likelihood of all rankings and its gradient in ``u``."""
    n = u.shape[0]
    total = 0.0
    grad = np.zeros(n)
    for g in groups:
        items, w = g.items, g.weights
        if g.length == 2:
            d = u[items[:, 0]] - u[items[:, 1]]
            total -= float(w @ np.logaddexp(0.0, -d))
            # sigmoid(-d) = P(the loser would have won): the gradient pushes the winner up.
            s = w * np.exp(-np.logaddexp(0.0, d))
            grad += np.bincount(items[:, 0], weights=s, minlength=n)
            grad -= np.bincount(items[:, 1], weights=s, minlength=n)
            continue
        um = u[items]
        suf = _suffix_lse(um)
        total += float(w @ np.where(g.mask, um - suf, 0.0).sum(axis=1))
        # d/du_{π_i} = 1[i < t] - Σ_{j <= i, j < t} exp(u_{π_i} - S_j); the inner sum is a
        # running log-sum-exp of -S_j, which keeps every exponent <= log(L).
        log_c = np.logaddexp.accumulate(np.where(g.mask, -suf, -np.inf), axis=1)
        gpos = g.mask.astype(float) - np.exp(um + log_c)
        grad += np.bincount(items.ravel(), weights=(gpos * w[:, None]).ravel(), minlength=n)
    return total, grad


def hessian(u: Array, groups: list[RankingGroup]) -> sp.csr_matrix:
    """Sparse Hessian of the *negative* log-likelihood (the observed Fisher information).

    Each choice step from a remaining set ``R`` with choice probabilities ``p`` adds
    ``diag(p) - p pᵀ`` on ``R × R``; the result is a weighted graph Laplacian-like matrix.
    """
    n = u.shape[0]
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    vals: list[Array] = []
    for g in groups:
        items, w = g.items, g.weights
        if g.length == 2:
            d = u[items[:, 0]] - u[items[:, 1]]
            h = w * np.exp(-np.logaddexp(0.0, d) - np.logaddexp(0.0, -d))
            a, b = items[:, 0], items[:, 1]
            rows += [a, b, a, b]
            cols += [a, b, b, a]
            vals += [h, h, -h, -h]
            continue
        length = g.length
        um = u[items]
        suf = _suffix_lse(um)
        steps = np.arange(length)
        # p[n, s, l]: probability that position l is chosen at step s (0 if l < s or s >= t).
        active = g.mask[:, :, None] & (steps[None, None, :] >= steps[None, :, None])
        logp = um[:, None, :] - suf[:, :, None]
        p = np.where(active, np.exp(np.minimum(logp, 0.0)), 0.0)
        outer = np.einsum("nsl,nsm->nlm", p, p)
        block = -outer
        diag_idx = np.arange(length)
        block[:, diag_idx, diag_idx] += p.sum(axis=1)
        block *= w[:, None, None]
        rows.append(np.repeat(items, length, axis=1).ravel())
        cols.append(np.tile(items, (1, length)).ravel())
        vals.append(block.ravel())
    if not rows:
        return sp.csr_matrix((n, n))
    mat = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    return mat.tocsr()


def hessian_operator(
    u: Array, groups: list[RankingGroup]
) -> tuple[Callable[[Array], Array], Array]:
    """Matrix-free Hessian of the negative log-likelihood: ``(matvec, diagonal)``.

    Newton steps need only products ``H @ v``; computing them from the per-step choice
    probabilities avoids assembling (and sorting) a sparse matrix at every iteration.
    """
    n = u.shape[0]
    parts: list[tuple[RankingGroup, Array]] = []
    diag = np.zeros(n)
    for g in groups:
        items, w = g.items, g.weights
        if g.length == 2:
            d = u[items[:, 0]] - u[items[:, 1]]
            h = w * np.exp(-np.logaddexp(0.0, d) - np.logaddexp(0.0, -d))
            diag += np.bincount(items[:, 0], weights=h, minlength=n)
            diag += np.bincount(items[:, 1], weights=h, minlength=n)
            parts.append((g, h))
            continue
        um = u[items]
        suf = _suffix_lse(um)
        steps = np.arange(g.length)
        active = g.mask[:, :, None] & (steps[None, None, :] >= steps[None, :, None])
        p = np.where(active, np.exp(np.minimum(um[:, None, :] - suf[:, :, None], 0.0)), 0.0)
        p *= w[:, None, None]  # weights folded in: H = Σ_s w (diag(p) - p pᵀ)
        pw = p / np.where(w > 0, w, 1.0)[:, None, None]
        diag += np.bincount(
            items.ravel(), weights=(p * (1.0 - pw)).sum(axis=1).ravel(), minlength=n
        )
        parts.append((g, np.stack([p, pw])))

    def matvec(v: Array) -> Array:
        out = np.zeros(n)
        for g, extra in parts:
            items = g.items
            if g.length == 2:
                s = extra * (v[items[:, 0]] - v[items[:, 1]])
                out += np.bincount(items[:, 0], weights=s, minlength=n)
                out -= np.bincount(items[:, 1], weights=s, minlength=n)
                continue
            p, pw = extra[0], extra[1]
            vm = v[items]
            dot = (pw * vm[:, None, :]).sum(axis=2)  # (n, steps): p·v per step
            contrib = (p * (vm[:, None, :] - dot[:, :, None])).sum(axis=1)
            out += np.bincount(items.ravel(), weights=contrib.ravel(), minlength=n)
        return out

    return matvec, diag
