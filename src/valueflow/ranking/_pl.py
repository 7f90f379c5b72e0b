"""Maximum a-posteriori Plackett–Luce utilities from k-way (partial) rankings.

Model: item ``i`` has utility ``u_i``; a judge ranking a set of items picks the best with
probability ``exp(u_i) / Σ exp(u_j)``, removes it and repeats (Plackett 1975; Luce 1959).
Pairwise comparisons (Bradley–Terry) are rankings of length 2. Utilities get an independent
Gaussian prior ``N(0, prior_var)``, so the fit is a MAP estimate; ``prior_var=None`` gives
plain maximum likelihood, centred to mean zero.

Disconnected comparison graphs are handled explicitly:

* with a finite prior the MAP estimate exists; items in different connected components are
  tied together only by the prior (each component's utilities shrink towards 0), so
  differences *across* components say nothing. A :class:`UserWarning` names the components
  and the fit reports them (``PLFitResult.components``);
* without a prior the maximum-likelihood estimate does not exist unless the directed
  "lost to" graph is strongly connected (Hunter 2004): a :class:`~valueflow.errors.DataError`
  names the offending components.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, cg

from valueflow.errors import ConfigError, DataError
from valueflow.ranking._data import RankingGroup, pack_rankings
from valueflow.ranking._likelihood import hessian, hessian_operator, loglik_and_grad
from valueflow.ranking._se import posterior_sd

__all__ = ["PLFitResult", "fit_plackett_luce"]

Array = NDArray[np.float64]

DEFAULT_PRIOR_VAR = 10.0
_METHODS = ("newton", "lbfgs")


@dataclass(frozen=True)
class PLFitResult:
    """The result of :func:`fit_plackett_luce` with ``return_se=True``.

    Unpacks as ``utilities, se = result``.

    Attributes:
        utilities: MAP (or ML) utility per item.
        se: Posterior standard deviation per item (inverse-Hessian diagonal).
        se_method: ``"exact"`` (dense inverse) or ``"approx"`` (see ``_se.posterior_sd``).
        loglik: Log-likelihood of the rankings at ``utilities`` (without the prior).
        n_iter: Optimiser iterations.
        converged: Whether the optimiser met its tolerance.
        components: Connected-component label per item (one component: all zeros).
        n_components: Number of connected components of the comparison graph.
    """

    utilities: Array
    se: Array
    se_method: str
    loglik: float
    n_iter: int
    converged: bool
    components: NDArray[np.int64] = field(repr=False)
    n_components: int = 1

    def __iter__(self) -> Iterator[Array]:
        return iter((self.utilities, self.se))


def _graph(groups: list[RankingGroup], n: int, directed: bool) -> sp.csr_matrix:
    """Comparison graph: undirected (consecutive items linked) or "loser → winner"."""
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    for g in groups:
        it = g.items[g.weights > 0]
        if it.size == 0:
            continue
        if not directed:
            rows.append(it[:, :-1].ravel())
            cols.append(it[:, 1:].ravel())
            continue
        nt = g.n_ordered[g.weights > 0]
        for j in range(g.length - 1):
            sel = nt > j
            for i in range(j + 1, g.length):
                rows.append(it[sel, i])
                cols.append(it[sel, j])
    if not rows:
        return sp.csr_matrix((n, n))
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.coo_matrix((np.ones(r.size), (r, c)), shape=(n, n)).tocsr()


def _describe_components(labels: NDArray[np.int64], n_comp: int) -> str:
    sizes = np.bincount(labels, minlength=n_comp)
    order = np.argsort(-sizes)
    parts = []
    for c in order[:4]:
        members = np.nonzero(labels == c)[0]
        shown = ", ".join(str(int(m)) for m in members[:5])
        more = "" if members.size <= 5 else f", ... ({members.size} items)"
        parts.append(f"{{{shown}{more}}}")
    if n_comp > 4:
        parts.append(f"... and {n_comp - 4} more")
    return "; ".join(parts)


def _newton(
    x0: Array, groups: list[RankingGroup], prec: float, tol: float, max_iter: int
) -> tuple[Array, int, bool]:
    """Damped Newton with a sparse Hessian and Jacobi-preconditioned conjugate gradients."""
    u = x0.copy()
    n = u.size

    def neg(u: Array) -> tuple[float, Array]:
        ll, g = loglik_and_grad(u, groups)
        return -ll + 0.5 * prec * float(u @ u), -g + prec * u

    f, g = neg(u)
    for it in range(1, max_iter + 1):
        if np.max(np.abs(g)) < tol:
            return u, it - 1, True
        hv, diag = hessian_operator(u, groups)
        # A small ridge keeps the solve defined without a prior (the null direction is the
        # constant vector, orthogonal to the gradient, so it does not bias the step).
        ridge = prec if prec > 0 else 1e-10
        op = LinearOperator((n, n), matvec=lambda v, hv=hv, r=ridge: hv(v) + r * v)
        d_inv = 1.0 / np.maximum(diag + ridge, 1e-12)
        pre = LinearOperator((n, n), matvec=lambda v, d=d_inv: d * v)
        step, _ = cg(op, -g, M=pre, rtol=min(0.1, float(np.sqrt(np.max(np.abs(g))))), maxiter=200)
        slope = float(g @ step)
        if slope >= 0:  # not a descent direction: fall back to the gradient
            step, slope = -g, -float(g @ g)
        t = 1.0
        while True:
            f_new, g_new = neg(u + t * step)
            if f_new <= f + 1e-4 * t * slope or t < 1e-8:
                break
            t *= 0.5
        u, f, g = u + t * step, f_new, g_new
    return u, max_iter, bool(np.max(np.abs(g)) < tol)


def _lbfgs(
    x0: Array, groups: list[RankingGroup], prec: float, tol: float, max_iter: int
) -> tuple[Array, int, bool]:
    def neg(u: Array) -> tuple[float, Array]:
        ll, g = loglik_and_grad(u, groups)
        return -ll + 0.5 * prec * float(u @ u), -g + prec * u

    res = minimize(
        neg,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": tol, "ftol": 1e-15, "maxiter": max_iter, "maxcor": 20},
    )
    _, g = neg(res.x)
    return res.x, int(res.nit), bool(res.success) or bool(np.max(np.abs(g)) < 10 * tol)


def fit_plackett_luce(
    rankings: Sequence[Sequence[int]],
    n_items: int,
    *,
    weights: Sequence[float] | Array | None = None,
    top: int | Sequence[int] | None = None,
    prior_var: float | None = DEFAULT_PRIOR_VAR,
    return_se: bool = False,
    method: str = "newton",
    tol: float = 1e-7,
    max_iter: int = 200,
    initial: Array | None = None,
) -> Array | PLFitResult:
    """Fit Plackett–Luce utilities to rankings (MAP under a Gaussian prior).

    Args:
        rankings: Sequence of tuples of item ids ordered best first (or a 2-D int array).
            Pairwise comparisons are ``(winner, loser)``. Lengths may differ.
        n_items: Number of items; ids lie in ``0 .. n_items - 1``.
        weights: Optional non-negative weight per ranking (e.g. judge reliability).
        top: Partial rankings: number of leading positions that are ordered (an int for all
            rankings, or one per ranking). ``(a, b, c, d)`` with ``top=1`` means ``a`` was
            picked as the best of the four and nothing else. ``None``: fully ordered.
        prior_var: Variance of the ``N(0, prior_var)`` prior on each utility; ``None`` for
            maximum likelihood (then the comparison graph must be strongly connected).
        return_se: Also return posterior standard deviations (inverse-Hessian diagonal);
            exact for up to 3,000 items, a documented approximation beyond.
        method: ``"newton"`` (sparse Newton–CG, the default: fastest measured on pairwise
            and k-way data) or ``"lbfgs"`` (scipy L-BFGS-B).
        tol: Convergence tolerance on the largest absolute gradient entry.
        max_iter: Iteration limit of the optimiser.
        initial: Optional starting utilities.

    Returns:
        The utilities as a float array of length ``n_items``; with ``return_se=True`` a
        :class:`PLFitResult` (which unpacks as ``utilities, se``).

    Raises:
        DataError: Malformed rankings, or (with ``prior_var=None``) a comparison graph that is
            not strongly connected so that the maximum-likelihood estimate does not exist.
        ConfigError: Invalid ``prior_var``, ``method`` or ``tol``.
    """
    if method not in _METHODS:
        raise ConfigError(f"unknown method {method!r}", hint=f"use one of {', '.join(_METHODS)}")
    if prior_var is not None and not (np.isfinite(prior_var) and prior_var > 0):
        if prior_var == np.inf:
            prior_var = None
        else:
            raise ConfigError(
                f"prior_var must be positive, got {prior_var!r}",
                hint="use None (or inf) for maximum likelihood without a prior",
            )
    if tol <= 0:
        raise ConfigError(f"tol must be positive, got {tol!r}")
    groups = pack_rankings(rankings, n_items, weights=weights, top=top)
    n = int(n_items)
    prec = 0.0 if prior_var is None else 1.0 / float(prior_var)

    n_comp, labels = connected_components(_graph(groups, n, directed=False), directed=False)
    if prior_var is None:
        n_strong, s_labels = connected_components(
            _graph(groups, n, directed=True), directed=True, connection="strong"
        )
        if n_strong > 1:
            what = "is not connected" if n_comp > 1 else "is not strongly connected"
            raise DataError(
                f"the comparison graph {what} ({n_strong} strongly connected components: "
                f"{_describe_components(s_labels, n_strong)}), so maximum-likelihood "
                "utilities do not exist (some differences are infinite or undefined)",
                hint="pass a finite prior_var (MAP), or add comparisons linking the components",
            )
    elif n_comp > 1:
        warnings.warn(
            f"the comparison graph has {n_comp} connected components "
            f"({_describe_components(labels, n_comp)}); utilities in different components "
            "are tied only by the prior and are not comparable",
            UserWarning,
            stacklevel=2,
        )

    x0 = np.zeros(n) if initial is None else np.asarray(initial, dtype=float).copy()
    if x0.shape != (n,):
        raise DataError(f"initial has shape {x0.shape}, expected ({n},)")
    solver = _newton if method == "newton" else _lbfgs
    u, n_iter, converged = solver(x0, groups, prec, tol, max_iter)
    if prior_var is None:
        u = u - u.mean()
    if not converged:
        warnings.warn(
            f"Plackett–Luce fit did not converge in {max_iter} iterations",
            RuntimeWarning,
            stacklevel=2,
        )
    if not return_se:
        return u
    ll, _ = loglik_and_grad(u, groups)
    se, se_method = posterior_sd(hessian(u, groups), prec)
    return PLFitResult(
        utilities=u,
        se=se,
        se_method=se_method,
        loglik=ll,
        n_iter=n_iter,
        converged=converged,
        components=labels.astype(np.int64),
        n_components=int(n_comp),
    )
