"""Scoring unknown items by ranking them among anchors of known intensity.

The model, so that callers need not read the code:

* Each anchor ``a`` has a known intensity ``I_a`` (e.g. a VIDB rating in [-10, 10]); each
  unknown item ``i`` (a text to score) has an unknown intensity ``x_i``.
* A judge ``J`` shown a window (one unknown item and some anchors) returns a full ranking,
  best (most supportive) first, drawn from a Plackett–Luce model with utilities
  ``β_J · intensity``. ``β_J`` measures how sharply the judge separates intensities: large β,
  nearly deterministic orderings; β → 0, random ones. The reference implementation fixes
  β = 1; here β is **estimated per judge** (and, since one scorer holds one value's anchors,
  per judge and value) by maximising the marginal likelihood of all its windows — the order
  of the anchors among themselves and the placement of the unknown items, integrating each
  unknown over its prior.
* Each ``x_i`` has a prior on a grid of ``grid_size`` points over the anchors' scale
  (default [-10, 10]): ``"anchors"`` (a kernel density of the anchor intensities mixed with a
  small uniform floor; right when the texts resemble the anchors), ``"uniform"``, or a
  user-given density on the grid. The posterior on the grid is exact (no Laplace
  approximation): its mean is the score (minimum squared error), its 5 % and 95 % quantiles
  the 90 % interval.
* The scores are on the anchors' own scale, so the calibration to [-10, 10] is monotone and
  keeps the neutral point by construction (0 means an anchor-neutral text); no post-hoc
  isotonic step or clamping is needed.

Windows are passed as rankings in which the unknown item is written as :data:`UNKNOWN`
(``-1``) and anchors by their index into ``anchor_intensities``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from valueflow.errors import ConfigError, DataError
from valueflow.ranking._windows import WindowData, pack_windows, window_loglik

__all__ = ["AnchoredScorer", "AnchoredScores", "anchor_prior", "score_with_anchors"]

Array = NDArray[np.float64]

BETA_BOUNDS = (1e-3, 50.0)


def anchor_prior(anchor_intensities: Array, grid: Array, *, floor: float = 0.02) -> Array:
    """Prior density on ``grid``: Gaussian KDE of the anchors (Silverman) plus a uniform floor.

    Returns probabilities on the grid points (summing to 1).
    """
    a = np.asarray(anchor_intensities, dtype=float)
    step = float(grid[1] - grid[0]) if grid.size > 1 else 1.0
    sd = float(np.std(a)) if a.size > 1 else 1.0
    iqr = float(np.subtract(*np.percentile(a, [75, 25]))) if a.size > 1 else 0.0
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    bw = max(0.9 * max(spread, 1e-3) * a.size ** (-0.2), 2.0 * step)
    # Histogram on the grid, then smooth: O(G²) instead of O(G·n_anchors).
    counts = np.bincount(
        np.clip(np.rint((a - grid[0]) / step).astype(np.int64), 0, grid.size - 1),
        minlength=grid.size,
    ).astype(float)
    kern = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / bw) ** 2)
    dens = kern @ counts
    dens /= dens.sum()
    return (1.0 - floor) * dens + floor / grid.size


@dataclass(frozen=True)
class AnchoredScores:
    """Scores of unknown items (arrays indexed by item).

    Attributes:
        mean: Posterior mean intensity (NaN for an item with no window).
        low: Lower end of the central interval (5 % quantile for a 90 % interval).
        high: Upper end of the interval.
        sd: Posterior standard deviation.
        n_windows: Number of windows seen per item.
        beta: Estimated (or fixed) β per judge name.
    """

    mean: Array
    low: Array
    high: Array
    sd: Array
    n_windows: NDArray[np.int64]
    beta: dict[str, float]


class AnchoredScorer:
    """Bayesian anchored scoring with per-judge noise (see the module docstring).

    Args:
        anchor_intensities: Known intensity of each anchor; anchor ``j`` is id ``j``.
        beta: ``None`` to estimate β per judge (default), a float for all judges, or a
            mapping judge name → β (judges missing from it are estimated).
        prior: ``"anchors"``, ``"uniform"`` or an array of ``grid_size`` non-negative
            weights on the grid.
        grid_size: Number of grid points for each item's posterior.
        scale: ``(low, high)`` of the intensity scale; the grid spans it (widened to cover
            any anchor outside it).
        interval: Mass of the central credible interval.
        prior_floor: Uniform share mixed into the ``"anchors"`` prior, so that an item unlike
            every anchor can still be scored.

    Attributes (after :meth:`fit`):
        grid_: The grid of intensities.
        prior_: Prior probabilities on the grid.
        posterior_: ``(n_items, grid_size)`` posterior probabilities.
        mean_, sd_, low_, high_: Per-item posterior summaries (NaN without windows).
        n_windows_: Windows per item.
        beta_: dict judge → β; ``beta_se_``: dict judge → standard error (NaN if fixed).
        judge_agreement_: dict judge → share of anchor pairs a judge put in the order of
            their intensities (about 0.5 for a random judge, below 0.5 for a reversed one).
        log_evidence_: Log marginal likelihood of all windows at ``beta_``.
    """

    def __init__(
        self,
        anchor_intensities: Sequence[float] | Array,
        *,
        beta: float | Mapping[str, float] | None = None,
        prior: str | Array = "anchors",
        grid_size: int = 401,
        scale: tuple[float, float] = (-10.0, 10.0),
        interval: float = 0.9,
        prior_floor: float = 0.02,
    ) -> None:
        self.anchor_intensities = anchor_intensities
        self.beta = beta
        self.prior = prior
        self.grid_size = grid_size
        self.scale = scale
        self.interval = interval
        self.prior_floor = prior_floor

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        a = np.asarray(self.anchor_intensities, dtype=float)
        if a.ndim != 1 or a.size < 1:
            raise DataError("anchor_intensities must be a non-empty 1-D sequence of numbers")
        if not np.all(np.isfinite(a)):
            raise DataError(
                "anchor_intensities holds NaN or infinite values",
                hint="drop anchors without a rating before scoring",
            )
        if not (0 < self.interval < 1):
            raise ConfigError(f"interval must lie in (0, 1), got {self.interval}")
        if self.grid_size < 21:
            raise ConfigError(f"grid_size must be at least 21, got {self.grid_size}")
        lo, hi = float(self.scale[0]), float(self.scale[1])
        if not lo < hi:
            raise ConfigError(f"scale must be (low, high) with low < high, got {self.scale}")
        self.anchors_ = a
        self.grid_ = np.linspace(min(lo, a.min()), max(hi, a.max()), self.grid_size)
        if isinstance(self.prior, str):
            if self.prior == "anchors":
                self.prior_ = anchor_prior(a, self.grid_, floor=self.prior_floor)
            elif self.prior == "uniform":
                self.prior_ = np.full(self.grid_size, 1.0 / self.grid_size)
            else:
                raise ConfigError(
                    f"unknown prior {self.prior!r}",
                    hint="use 'anchors', 'uniform' or an array of weights on the grid",
                )
        else:
            p = np.asarray(self.prior, dtype=float)
            if p.shape != (self.grid_size,) or np.any(p < 0) or not np.isfinite(p).all():
                raise ConfigError(f"a prior array must hold {self.grid_size} non-negative weights")
            if p.sum() <= 0:
                raise ConfigError("the prior array sums to zero")
            self.prior_ = p / p.sum()

    # -------------------------------------------------------------- inference
    def _item_loglik(self, data: WindowData, betas: Array, n_items: int) -> tuple[Array, float]:
        """Summed grid log-likelihood per item and the sum of anchor-only constants."""
        total = np.zeros((n_items, self.grid_size))
        const = 0.0
        for j, b in enumerate(betas):
            sel = np.nonzero(data.judge == j)[0]
            if sel.size == 0:
                continue
            ell, c = window_loglik(float(b), data, self.grid_, sel)
            ind = sp.csr_matrix(
                (np.ones(sel.size), (data.item[sel], np.arange(sel.size))),
                shape=(n_items, sel.size),
            )
            total += ind @ ell
            const += float(c.sum())
        return total, const

    def _log_prior(self) -> Array:
        with np.errstate(divide="ignore"):
            return np.log(self.prior_)

    def _evidence(self, ll_items: Array, const: float) -> float:
        return float(logsumexp(ll_items + self._log_prior()[None, :], axis=1).sum() + const)

    def _estimate_betas(self, data: WindowData, betas: Array, free: list[int], n: int) -> Array:
        """Coordinate ascent on log β of the free judges (one pass suffices for one judge)."""
        sweeps = 1 if len(betas) == 1 else 3
        for _ in range(sweeps):
            for j in free:
                mask_other = data.judge != j
                base, base_c = (
                    self._item_loglik(_subset(data, mask_other), betas, n)
                    if mask_other.any()
                    else (np.zeros((n, self.grid_size)), 0.0)
                )
                sel = np.nonzero(data.judge == j)[0]
                ind = sp.csr_matrix(
                    (np.ones(sel.size), (data.item[sel], np.arange(sel.size))),
                    shape=(n, sel.size),
                )

                def neg(
                    logb: float,
                    sel: NDArray[np.int64] = sel,
                    ind: sp.csr_matrix = ind,
                    base: Array = base,
                    base_c: float = base_c,
                ) -> float:
                    ell, c = window_loglik(float(np.exp(logb)), data, self.grid_, sel)
                    return -self._evidence(base + ind @ ell, base_c + float(c.sum()))

                res = minimize_scalar(
                    neg,
                    bounds=tuple(np.log(BETA_BOUNDS)),
                    method="bounded",
                    options={"xatol": 2e-3},
                )
                betas[j] = float(np.exp(res.x))
                h = 0.05
                curv = (neg(res.x + h) - 2 * neg(res.x) + neg(res.x - h)) / h**2
                self.beta_se_[self.judges_[j]] = (
                    float(betas[j] / np.sqrt(curv)) if curv > 0 else float("inf")
                )
        return betas

    def fit(
        self,
        items: Sequence[int] | NDArray[np.int64],
        rankings: Sequence[Sequence[int]],
        judges: Sequence[str] | None = None,
        *,
        n_items: int | None = None,
    ) -> AnchoredScorer:
        """Fit β per judge and the posterior of every unknown item.

        Args:
            items: For each observed window, the index (0-based) of its unknown item.
            rankings: For each window, the judge's ranking best first: anchor ids and
                :data:`UNKNOWN` (``-1``) for the unknown item. Windows may differ in size.
            judges: Optional judge name per window (default: one judge, ``"judge"``).
            n_items: Number of unknown items (default ``max(items) + 1``); items with no
                window get NaN scores.

        Returns:
            self.
        """
        self._setup()
        if judges is None:
            judges = ["judge"] * len(rankings)
        if len(judges) != len(rankings):
            raise DataError(f"got {len(judges)} judge names for {len(rankings)} windows")
        names = sorted(set(judges))
        self.judges_ = names
        jidx = np.array([names.index(j) for j in judges], dtype=np.int64)
        data = pack_windows(items, rankings, jidx, self.anchors_)
        n = int(n_items) if n_items is not None else int(data.item.max(initial=-1)) + 1
        if data.item.size and data.item.max() >= n:
            raise DataError(f"an item index ({int(data.item.max())}) is >= n_items ({n})")
        fixed: dict[str, float] = {}
        if isinstance(self.beta, int | float):
            if self.beta <= 0:
                raise ConfigError(f"beta must be positive, got {self.beta}")
            fixed = dict.fromkeys(names, float(self.beta))
        elif isinstance(self.beta, Mapping):
            fixed = {k: float(v) for k, v in self.beta.items() if k in names}
        betas = np.array([fixed.get(nm, 1.0) for nm in names])
        free = [j for j, nm in enumerate(names) if nm not in fixed]
        self.beta_se_ = {nm: float("nan") for nm in names}
        if free and data.n_windows:
            betas = self._estimate_betas(data, betas, free, n)
        self.beta_ = {nm: float(b) for nm, b in zip(names, betas, strict=True)}
        ll, const = self._item_loglik(data, betas, n)
        self.log_evidence_ = self._evidence(ll, const) if data.n_windows else 0.0
        logpost = ll + self._log_prior()[None, :]
        logpost -= logsumexp(logpost, axis=1, keepdims=True)
        self.posterior_ = np.exp(logpost)
        self.n_windows_ = np.bincount(data.item, minlength=n).astype(np.int64)
        self._summarise()
        self.judge_agreement_ = _agreement(data, names)
        return self

    def _summarise(self) -> None:
        post, g = self.posterior_, self.grid_
        mean = post @ g
        sd = np.sqrt(np.maximum(post @ g**2 - mean**2, 0.0))
        # Each grid point carries the mass of its cell; the CDF is linear inside cells.
        step = g[1] - g[0]
        edges = np.concatenate([[g[0] - step / 2], g + step / 2])
        cdf = np.concatenate([np.zeros((post.shape[0], 1)), np.cumsum(post, axis=1)], axis=1)
        tail = (1.0 - self.interval) / 2.0
        low = np.array([np.interp(tail, c, edges) for c in cdf])
        high = np.array([np.interp(1.0 - tail, c, edges) for c in cdf])
        low, high = np.clip(low, g[0], g[-1]), np.clip(high, g[0], g[-1])
        none = self.n_windows_ == 0
        for arr in (mean, sd, low, high):
            arr[none] = np.nan
        self.mean_, self.sd_, self.low_, self.high_ = mean, sd, low, high

    def scores(self) -> AnchoredScores:
        """The fitted per-item scores as one :class:`AnchoredScores`."""
        return AnchoredScores(
            mean=self.mean_,
            low=self.low_,
            high=self.high_,
            sd=self.sd_,
            n_windows=self.n_windows_,
            beta=dict(self.beta_),
        )


def _subset(data: WindowData, mask: NDArray[np.bool_]) -> WindowData:
    return WindowData(
        item=data.item[mask],
        judge=data.judge[mask],
        anchors=data.anchors[mask],
        n_anchors=data.n_anchors[mask],
        pos=data.pos[mask],
        anchor_ids=data.anchor_ids[mask],
    )


def _agreement(data: WindowData, names: list[str]) -> dict[str, float]:
    """Share of anchor pairs per judge ranked in the order of their intensities."""
    out: dict[str, float] = {}
    a = data.anchors
    higher_first = a[:, :, None] > a[:, None, :]
    lower_first = a[:, :, None] < a[:, None, :]
    upper = np.triu(np.ones((a.shape[1], a.shape[1]), dtype=bool), k=1)[None]
    for j, nm in enumerate(names):
        sel = data.judge == j
        good = int((higher_first[sel] & upper).sum())
        bad = int((lower_first[sel] & upper).sum())
        out[nm] = good / (good + bad) if good + bad else float("nan")
    return out


def score_with_anchors(
    anchor_intensities: Sequence[float] | Array,
    items: Sequence[int] | NDArray[np.int64],
    rankings: Sequence[Sequence[int]],
    judges: Sequence[str] | None = None,
    *,
    n_items: int | None = None,
    **options: object,
) -> AnchoredScores:
    """Functional form of :class:`AnchoredScorer`: fit and return the scores.

    ``options`` are :class:`AnchoredScorer` keyword arguments (``beta``, ``prior``, ...).
    """
    scorer = AnchoredScorer(anchor_intensities, **options)  # type: ignore[arg-type]
    return scorer.fit(items, rankings, judges, n_items=n_items).scores()
