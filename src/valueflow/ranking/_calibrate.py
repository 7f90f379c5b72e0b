"""Monotone calibration of fitted utilities to the intensity scale [-10, 10].

Plackett–Luce utilities are defined up to an additive constant (fixed here by the prior's
mean) and have no natural unit. :func:`fit_scale_calibration` builds a non-decreasing
piecewise-linear map that sends the *neutral* utility to 0 and saturates at the scale ends:

* without reference intensities, each side is scaled separately so that a robust quantile
  (default the 99th percentile of the distances from neutral) reaches ±10;
* with reference intensities for some items (e.g. a hand-rated seed set), an isotonic
  regression of those intensities on the utilities, pinned through (neutral, 0), gives the
  knots; utilities beyond the knots are extended with the outer slopes of each side and
  clipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import ConfigError, DataError

__all__ = ["ScaleCalibration", "calibrate_to_scale", "fit_scale_calibration"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class ScaleCalibration:
    """A non-decreasing piecewise-linear map from utility to intensity.

    Attributes:
        knots_x: Increasing utilities of the knots.
        knots_y: Non-decreasing intensities at the knots (``0`` at the neutral utility).
        neutral: The utility mapped to 0.
        scale: ``(low, high)`` of the output scale (results are clipped to it).
    """

    knots_x: Array
    knots_y: Array
    neutral: float
    scale: tuple[float, float]

    def __call__(self, utilities: Sequence[float] | Array) -> Array:
        """Map utilities to the intensity scale."""
        u = np.asarray(utilities, dtype=float)
        x, y = self.knots_x, self.knots_y
        out = np.interp(u, x, y)
        if x.size >= 2:  # linear extension with the outer slopes, then clip
            lo_slope = (y[1] - y[0]) / (x[1] - x[0])
            hi_slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
            out = np.where(u < x[0], y[0] + lo_slope * (u - x[0]), out)
            out = np.where(u > x[-1], y[-1] + hi_slope * (u - x[-1]), out)
        # The sign is exact: interpolation rounding must not put a utility just below the
        # neutral point at +1e-15 (it stays monotone: below-neutral outputs are <= 0 <= above).
        out = np.where(u < self.neutral, np.minimum(out, 0.0),
                       np.where(u > self.neutral, np.maximum(out, 0.0), out))
        return np.clip(out, self.scale[0], self.scale[1])


def _pava(y: Array, w: Array) -> Array:
    """Weighted isotonic (non-decreasing) regression by pool-adjacent-violators."""
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(y, w, strict=True):
        vals.append(float(yi))
        wts.append(float(wi))
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            tw = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / tw
            s = sizes[-2] + sizes[-1]
            vals[-2:], wts[-2:], sizes[-2:] = [v], [tw], [s]
    return np.repeat(vals, sizes)


def fit_scale_calibration(
    utilities: Sequence[float] | Array,
    *,
    neutral: float = 0.0,
    reference: Sequence[float] | Array | None = None,
    quantile: float = 0.99,
    scale: tuple[float, float] = (-10.0, 10.0),
) -> ScaleCalibration:
    """Fit the monotone map (see the module docstring).

    Args:
        utilities: Fitted utilities of the items.
        neutral: The utility that means "neutral" (e.g. the mean utility of texts known to
            be neutral); it maps to 0.
        reference: Optional known intensity per item, NaN where unknown.
        quantile: Without reference: the quantile of distances from neutral, per side, that
            maps to the scale end.
        scale: Output scale ``(low, high)`` with ``low < 0 < high``.

    Raises:
        ConfigError: Bad ``scale`` or ``quantile``.
        DataError: Non-finite utilities, or references not matching the utilities.
    """
    u = np.asarray(utilities, dtype=float)
    lo, hi = float(scale[0]), float(scale[1])
    if not lo < 0 < hi:
        raise ConfigError(f"scale must satisfy low < 0 < high, got {scale}")
    if not 0 < quantile <= 1:
        raise ConfigError(f"quantile must lie in (0, 1], got {quantile}")
    if u.ndim != 1 or u.size == 0 or not np.all(np.isfinite(u)):
        raise DataError("utilities must be a non-empty 1-D array of finite numbers")
    if reference is None:
        pos, neg = u[u > neutral] - neutral, neutral - u[u < neutral]
        q_pos = float(np.quantile(pos, quantile)) if pos.size else 1.0
        q_neg = float(np.quantile(neg, quantile)) if neg.size else 1.0
        q_pos = q_pos if q_pos > 1e-9 else 1.0  # no spread on this side: unit slope
        q_neg = q_neg if q_neg > 1e-9 else 1.0
        x = np.array([neutral - q_neg, neutral, neutral + q_pos])
        y = np.array([lo, 0.0, hi])
        return ScaleCalibration(knots_x=x, knots_y=y, neutral=float(neutral), scale=(lo, hi))
    ref = np.asarray(reference, dtype=float)
    if ref.shape != u.shape:
        raise DataError(f"reference has shape {ref.shape}, utilities {u.shape}")
    known = np.isfinite(ref)
    if known.sum() < 2:
        raise DataError(
            "need reference intensities for at least 2 items",
            hint="pass NaN for items without a reference intensity",
        )
    # Pin the map through (neutral, 0) with a weight equal to all references together.
    xs = np.append(u[known], neutral)
    ys = np.append(np.clip(ref[known], lo, hi), 0.0)
    ws = np.append(np.ones(int(known.sum())), float(known.sum()))
    order = np.argsort(xs, kind="stable")
    xs, ys, ws = xs[order], ys[order], ws[order]
    fitted = _pava(ys, ws)
    # Collapse equal utilities, keeping the knots strictly increasing in x.
    ux, inv = np.unique(xs, return_inverse=True)
    uy = np.bincount(inv, weights=fitted * ws) / np.bincount(inv, weights=ws)
    # Shift so that the neutral utility maps exactly to 0 on each side, keeping monotonicity.
    y0 = float(np.interp(neutral, ux, uy))
    uy = np.where(ux < neutral, np.minimum(uy - max(y0, 0.0), 0.0), uy)
    uy = np.where(ux > neutral, np.maximum(uy - min(y0, 0.0), 0.0), uy)
    uy = np.where(ux == neutral, 0.0, uy)
    if ux.size == 1:
        ux, uy = np.array([neutral - 1.0, neutral, neutral + 1.0]), np.array([lo, 0.0, hi])
    return ScaleCalibration(knots_x=ux, knots_y=uy, neutral=float(neutral), scale=(lo, hi))


def calibrate_to_scale(
    utilities: Sequence[float] | Array,
    *,
    neutral: float = 0.0,
    reference: Sequence[float] | Array | None = None,
    quantile: float = 0.99,
    scale: tuple[float, float] = (-10.0, 10.0),
) -> Array:
    """Map utilities monotonically to ``scale``, neutral utility to 0 (see
    :func:`fit_scale_calibration` for the arguments)."""
    cal = fit_scale_calibration(
        utilities, neutral=neutral, reference=reference, quantile=quantile, scale=scale
    )
    return cal(utilities)
