"""Dose–response curves: measured intensity as a monotone function of a steering setting.

Pure numpy. A pilot sweep gives measured intensities ``y`` at settings ``x`` (activation
coefficients, or prompt levels -2..2); :func:`fit_dose_response` fits an isotonic curve
(pool-adjacent-violators, weighted by the number of answers per setting) in the direction
the data take, with a bootstrap band (answers resampled within each setting), and
:meth:`DoseResponse.invert` gives the setting expected to reach a target intensity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from valueflow.errors import ConfigError

__all__ = ["DoseResponse", "fit_dose_response", "isotonic", "spearman"]


def isotonic(y: Sequence[float] | np.ndarray, w: Sequence[float] | np.ndarray | None = None,
             increasing: bool = True) -> np.ndarray:
    """The weighted least-squares monotone fit of ``y`` (in order) by pool-adjacent-violators."""
    y_arr = np.asarray(y, dtype=float)
    w_arr = np.ones_like(y_arr) if w is None else np.asarray(w, dtype=float)
    if not increasing:
        return -isotonic(-y_arr, w_arr, True)
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(y_arr, w_arr, strict=True):
        means.append(float(yi))
        weights.append(float(wi))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            wsum = weights[-2] + weights[-1]
            m = (means[-2] * weights[-2] + means[-1] * weights[-1]) / wsum
            means[-2:] = [m]
            weights[-2:] = [wsum]
            sizes[-2:] = [sizes[-2] + sizes[-1]]
    return np.repeat(means, sizes)


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class DoseResponse:
    """A fitted monotone curve of measured intensity against a steering setting.

    Attributes:
        settings: The distinct settings of the sweep, ascending.
        fitted: The isotonic fit at each setting.
        low, high: The bootstrap band (``level`` coverage) of the fit at each setting.
        raw_mean: The plain mean of the answers at each setting.
        n: Answers per setting.
        increasing: The direction of the fit (the sign of the Spearman correlation).
        spearman: Between the settings and the per-setting mean intensity.
        level: Coverage of the band.
    """

    settings: np.ndarray
    fitted: np.ndarray
    low: np.ndarray
    high: np.ndarray
    raw_mean: np.ndarray
    n: np.ndarray
    increasing: bool
    spearman: float
    level: float = 0.9
    residual_sd: float = float("nan")
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def range(self) -> tuple[float, float]:
        """The intensities the curve reaches (lowest, highest fitted value)."""
        return float(self.fitted.min()), float(self.fitted.max())

    def predict(self, setting: float | Sequence[float]) -> np.ndarray:
        """The fitted intensity at ``setting`` (linear between sweep points, flat outside)."""
        return np.interp(np.asarray(setting, dtype=float), self.settings, self.fitted)

    def band(self, setting: float) -> tuple[float, float]:
        return (float(np.interp(setting, self.settings, self.low)),
                float(np.interp(setting, self.settings, self.high)))

    def reachable(self, target: float, tolerance: float = 0.0) -> bool:
        lo, hi = self.range
        return lo - tolerance <= target <= hi + tolerance

    def invert(self, target: float) -> float:
        """The setting whose fitted intensity is ``target``; a target beyond the curve's
        range gets the setting at the nearer end (check :meth:`reachable`). On a flat stretch
        the middle of the stretch is returned."""
        x, f = self.settings, self.fitted
        if not self.increasing:
            x, f = x[::-1], f[::-1]
        if target <= f[0]:
            return float(x[np.flatnonzero(f == f[0])].mean())
        if target >= f[-1]:
            return float(x[np.flatnonzero(f == f[-1])].mean())
        exact = np.flatnonzero(np.isclose(f, target))
        if exact.size:
            return float(x[exact].mean())
        j = int(np.searchsorted(f, target))  # f[j-1] < target < f[j]
        t = (target - f[j - 1]) / (f[j] - f[j - 1])
        return float(x[j - 1] + t * (x[j] - x[j - 1]))

    def nearest_setting(self, target: float) -> float:
        """The sweep setting whose fit is nearest ``target`` (for discrete settings)."""
        return float(self.settings[int(np.argmin(np.abs(self.fitted - target)))])

    def as_dict(self) -> dict[str, Any]:
        return {"settings": self.settings.tolist(), "fitted": self.fitted.tolist(),
                "low": self.low.tolist(), "high": self.high.tolist(),
                "raw_mean": self.raw_mean.tolist(), "n": self.n.tolist(),
                "increasing": self.increasing, "spearman": self.spearman,
                "level": self.level, "residual_sd": self.residual_sd, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DoseResponse:
        arr = {k: np.asarray(d[k], dtype=float) for k in ("settings", "fitted", "low", "high",
                                                           "raw_mean")}
        return cls(**arr, n=np.asarray(d["n"], dtype=int), increasing=bool(d["increasing"]),
                   spearman=float(d["spearman"]), level=float(d.get("level", 0.9)),
                   residual_sd=float(d.get("residual_sd", float("nan"))),
                   meta=dict(d.get("meta", {})))


def fit_dose_response(x: Sequence[float], y: Sequence[float], *, n_boot: int = 300,
                      level: float = 0.9, seed: int = 0,
                      increasing: bool | None = None) -> DoseResponse:
    """Fit the monotone curve of ``y`` (measured intensities) on ``x`` (settings).

    Args:
        x, y: One entry per scored answer.
        n_boot: Bootstrap resamples for the band (answers resampled within each setting).
        level: Coverage of the band.
        increasing: Force the direction (default: the sign of the Spearman correlation
            between the settings and the per-setting means; increasing on a tie).

    Raises:
        ConfigError: fewer than two distinct settings, or unequal or non-finite input.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise ConfigError(f"settings and intensities differ in length ({xa.size} vs {ya.size})")
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    settings = np.unique(xa)
    if settings.size < 2:
        raise ConfigError("a dose-response curve needs scored answers at two or more settings",
                          hint="sweep more coefficients or levels")
    groups = [ya[xa == s] for s in settings]
    n = np.array([g.size for g in groups])
    means = np.array([g.mean() for g in groups])
    rho = spearman(settings, means)
    up = bool(rho >= 0 or not np.isfinite(rho)) if increasing is None else increasing
    fitted = isotonic(means, n, up)
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, settings.size))
    for b in range(n_boot):
        bm = np.array([rng.choice(g, g.size).mean() for g in groups])
        boots[b] = isotonic(bm, n, up)
    a = (1 - level) / 2
    low, high = np.quantile(boots, a, axis=0), np.quantile(boots, 1 - a, axis=0)
    resid = ya - np.interp(xa, settings, fitted)
    return DoseResponse(settings=settings, fitted=fitted, low=low, high=high, raw_mean=means,
                        n=n, increasing=up, spearman=rho, level=level,
                        residual_sd=float(resid.std(ddof=1)) if resid.size > 1 else float("nan"))
