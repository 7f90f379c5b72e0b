"""Review flags for built VIDB items: judges that disagree, thin data, wide intervals (pure).

Judges rank on their own utility scales (a sharper judge spreads items further apart), so
each judge's utilities are first put on the pooled scale by a robust linear map
(median and inter-quartile range). For every pair of judges the difference of an item's
aligned utilities, divided by its standard error, is a z-score. The largest of an item's
``P`` pairwise ``|z|`` is then put back on the scale of a single comparison (Bonferroni:
its two-sided p-value times ``P``), so seven judges (21 pairs) do not flag more agreeing
items than two; an item whose adjusted ``|z|`` exceeds a threshold is flagged
``judges_disagree``.

A whole build can be no better than chance (a judge that answers at random, or by the
position of the texts in the window): :func:`ranking_signal` tests the rankings against
uniformly random orders, and every item of a value whose test finds no signal is flagged
``at_chance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["AT_CHANCE_P", "FLAG_NAMES", "FlagThresholds", "item_flags", "judge_disagreement",
           "ranking_signal"]

Array = NDArray[np.float64]

#: Flags the build can set, in the order they are written.
FLAG_NAMES = ("judges_disagree", "few_comparisons", "low_confidence", "disconnected", "unanchored",
              "at_chance")

#: A build whose rankings are this likely (or more) under random orders is ``at_chance``.
AT_CHANCE_P = 0.05


@dataclass(frozen=True)
class FlagThresholds:
    """When an item is flagged for review.

    Attributes:
        disagree_z: ``judges_disagree`` when two judges' aligned utilities differ by more
            than this many standard errors (after the adjustment for the number of judge
            pairs; with two judges none).
        min_windows: ``few_comparisons`` below this many successfully ranked windows.
        max_uncertainty: ``low_confidence`` when the calibrated standard deviation exceeds
            this many intensity points.
    """

    disagree_z: float = 3.0
    min_windows: int = 3
    max_uncertainty: float = 2.5


def _align(u_j: Array, u: Array, mask: NDArray[np.bool_]) -> tuple[float, float]:
    """``a, b`` with ``a + b * u_j`` ≈ ``u`` robustly over the items in ``mask``."""
    if mask.sum() < 4:
        return 0.0, 1.0
    qj = np.quantile(u_j[mask], [0.25, 0.5, 0.75])
    q = np.quantile(u[mask], [0.25, 0.5, 0.75])
    iqr_j = qj[2] - qj[0]
    b = float((q[2] - q[0]) / iqr_j) if iqr_j > 1e-12 else 1.0
    # A judge whose order is reversed overall is a broken judge, not a disagreement to hide.
    b = max(b, 1e-6)
    return float(q[1] - b * qj[1]), b


def judge_disagreement(
    pooled: Array,
    per_judge: Sequence[tuple[Array, Array, NDArray[np.bool_]]],
) -> Array:
    """Largest pairwise ``|z|`` between judges per item, adjusted for the number of pairs
    that saw it (NaN where fewer than 2 judges saw it).

    Args:
        pooled: Utilities fitted to all judges' rankings together.
        per_judge: For each judge, ``(utilities, se, seen)``; ``seen`` marks the items the
            judge ranked at least once.
    """
    n = pooled.size
    aligned: list[tuple[Array, Array, NDArray[np.bool_]]] = []
    for u_j, se_j, seen in per_judge:
        a, b = _align(u_j, pooled, seen)
        aligned.append((a + b * u_j, b * se_j, seen))
    from scipy.stats import norm

    z = np.full(n, np.nan)
    pairs = np.zeros(n)
    for i in range(len(aligned)):
        for j in range(i + 1, len(aligned)):
            ui, si, mi = aligned[i]
            uj, sj, mj = aligned[j]
            both = mi & mj
            zz = np.abs(ui - uj) / np.sqrt(si**2 + sj**2 + 1e-12)
            z = np.where(both, np.fmax(z, zz), z)
            pairs += both
    # Bonferroni over the item's pairs, in log space (p-values underflow for large z).
    log_p = np.log(2.0) + norm.logsf(z) + np.log(np.maximum(pairs, 1))
    adjusted = -norm.ppf(np.exp(np.minimum(log_p, 0.0)) / 2.0)
    big = log_p < -700  # beyond float range: the adjustment is negligible there
    adjusted = np.where(big, z - np.log(np.maximum(pairs, 1)) / np.maximum(z, 1.0), adjusted)
    return np.where(np.isfinite(z), np.maximum(adjusted, 0.0), np.nan)


def item_flags(
    *,
    z: Array,
    n_windows: NDArray[np.int64],
    uncertainty: Array,
    main_component: NDArray[np.bool_],
    anchored: bool,
    thresholds: FlagThresholds,
    at_chance: bool = False,
) -> list[str]:
    """The ``flags`` column: comma-separated :data:`FLAG_NAMES` per item (``""``: none)."""
    cols = [
        np.nan_to_num(z, nan=0.0) > thresholds.disagree_z,
        n_windows < thresholds.min_windows,
        ~(uncertainty <= thresholds.max_uncertainty),
        ~main_component,
        np.full(z.shape, not anchored),
        np.full(z.shape, at_chance),
    ]
    m = np.stack(cols, axis=1)
    out: list[str] = []
    for row in m:
        out.append(",".join(name for name, on in zip(FLAG_NAMES, row, strict=True) if on))
    return out


def ranking_signal(rankings: Sequence[Sequence[int]], utilities: Array) -> float:
    """p-value of the rankings under uniformly random orders, against Plackett–Luce with
    the fitted ``utilities`` (a likelihood-ratio test; degrees of freedom: the ranked items
    less one). Near 0: the judges order the texts consistently; large: no better than
    chance. The fit is penalised (a Gaussian prior), which only makes the test more ready
    to call a build at chance.
    """
    from math import lgamma

    from scipy.stats import chi2

    u = np.asarray(utilities, dtype=float)
    ll = ll0 = 0.0
    seen: set[int] = set()
    for r in rankings:
        idx = np.asarray(r, dtype=np.int64)
        if idx.size < 2:
            continue
        seen.update(int(i) for i in idx)
        x = u[idx]
        ll += float(np.sum(x - np.logaddexp.accumulate(x[::-1])[::-1]))
        ll0 -= lgamma(idx.size + 1)
    df = len(seen) - 1
    if df < 1:
        return 1.0
    return float(chi2.sf(max(0.0, 2.0 * (ll - ll0)), df))
