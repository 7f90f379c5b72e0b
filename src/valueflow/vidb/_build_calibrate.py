"""From Plackett–Luce utilities to intensities in [-10, 10] with the neutral point anchored.

Utilities from rankings are identified only up to a shift (and, across judges, a scale):
a ranking says which text supports a value *more*, not where "neutral" is. The build
therefore ranks a few **neutral anchor texts** together with the items — short, mundane
statements written by us that express no value at all (or texts the user supplies with
``neutral_texts``). Their median utility ``u0`` is intensity 0. Every window that contains
an anchor also tells where the items sit relative to neutral, so the sign of an intensity
is estimated, not assumed.

The map to the scale is the ranking engine's monotone
:func:`~valueflow.ranking.fit_scale_calibration` with ``neutral = u0``:

* with **reference items** of known intensity (``references``, ranked like the items): an
  isotonic regression of their intensities on their utilities, pinned through (u0, 0);
  without neutral anchors, ``u0`` is where a straight line through the references crosses 0;
* otherwise a **robust quantile** of the distances from ``u0``: ``symmetric`` (default) maps
  the ``q``-quantile of ``|u - u0|`` to 10 with one factor for both sides, so equal utility
  gaps (log-odds of the judges' choices) mean equal intensity gaps above and below neutral
  and a value whose texts mostly support it keeps its few weak opposing texts near 0;
  ``separate`` scales each side by its own quantile (the published VIDB's per-side
  normalisation, the engine's default), which stretches a thin side to ±10.

Values beyond ±10 are clipped. ``uncertainty`` is the item's posterior standard deviation
(combined with that of the anchors' median) times the local slope of the map, in intensity
units. Without any anchor (``n_neutral=0`` and no references) ``u0`` is the items' median,
a guess: every item is then flagged ``unanchored``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import ConfigError, DataError
from valueflow.ranking import ScaleCalibration

__all__ = ["NEUTRAL_ANCHOR_TEXTS", "Calibration", "ScaleMode", "calibrate_utilities"]

Array = NDArray[np.float64]
ScaleMode = Literal["symmetric", "separate"]

#: Value-free statements ranked with every value's items to anchor intensity 0.
NEUTRAL_ANCHOR_TEXTS: tuple[str, ...] = (
    "The bus timetable changes on the first Monday of each month.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Our office printer is on the third floor, next to the kitchen.",
    "The museum opens at ten in the morning on weekdays.",
    "A standard deck has fifty-two playing cards in four suits.",
    "The weather forecast says it will be cloudy tomorrow afternoon.",
    "The new phone model comes in black, silver and blue.",
    "The river runs east for about forty kilometres before it reaches the sea.",
    "I usually buy bread at the bakery on the corner.",
    "The meeting room has twelve chairs and a whiteboard.",
)

MAX_INTENSITY = 10.0


@dataclass(frozen=True)
class Calibration:
    """How utilities were mapped to intensities for one value.

    Attributes:
        u0: The utility of intensity 0.
        knots_x, knots_y: The piecewise-linear map's knots (utility, intensity).
        method: ``"reference"``, ``"separate"`` or ``"symmetric"``.
        anchor: ``"neutral_texts"``, ``"references"`` or ``"none"`` (no anchor: ``u0`` is
            the items' median, a guess that is flagged).
        n_neutral: Neutral anchors used.
        n_reference: Reference items used.
    """

    u0: float
    knots_x: tuple[float, ...]
    knots_y: tuple[float, ...]
    method: str
    anchor: str
    n_neutral: int
    n_reference: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _slopes(cal: ScaleCalibration, u: Array) -> Array:
    """Local slope of the (unclipped) piecewise-linear map at ``u``."""
    x, y = cal.knots_x, cal.knots_y
    if x.size < 2:
        return np.ones_like(u)
    seg = np.diff(y) / np.diff(x)
    idx = np.clip(np.searchsorted(x, u, side="right") - 1, 0, seg.size - 1)
    return np.asarray(seg[idx], dtype=float)


def calibrate_utilities(
    u: Array,
    se: Array,
    *,
    items: NDArray[np.int64],
    neutral: NDArray[np.int64],
    references: NDArray[np.int64] | None = None,
    reference_intensity: Array | None = None,
    mode: ScaleMode = "symmetric",
    quantile: float = 0.98,
) -> tuple[Array, Array, Calibration]:
    """Map utilities of ``items`` to intensities in [-10, 10] (see the module docstring).

    Args:
        u: Utility of every ranked item (items, neutral anchors and references).
        se: Posterior standard deviation of each utility.
        items: Indices into ``u`` of the items to calibrate.
        neutral: Indices of neutral anchors (intensity 0).
        references: Indices of reference items of known intensity.
        reference_intensity: Their intensities, in [-10, 10].
        mode: ``"symmetric"`` or ``"separate"`` quantile scaling (without references).
        quantile: The quantile of the distances from neutral that maps to ±10.

    Returns:
        ``(intensity, uncertainty, calibration)`` for ``items``.
    """
    from valueflow.ranking import fit_scale_calibration

    if mode not in ("symmetric", "separate"):
        raise ConfigError(f"scale mode must be 'symmetric' or 'separate', not {mode!r}")
    if not 0.5 <= quantile <= 1.0:
        raise ConfigError(f"scale quantile must lie in [0.5, 1], got {quantile}")
    u = np.asarray(u, dtype=float)
    se = np.asarray(se, dtype=float)
    ref = np.asarray(references if references is not None else [], dtype=np.int64)
    ref_y = np.asarray(reference_intensity if reference_intensity is not None else [], float)
    if ref.size != ref_y.size:
        raise DataError("references and reference_intensity differ in length")
    if ref_y.size and (not np.all(np.isfinite(ref_y)) or np.abs(ref_y).max() > MAX_INTENSITY):
        raise DataError("reference intensities must be numbers in [-10, 10]")

    se0 = 0.0
    if neutral.size:
        u0 = float(np.median(u[neutral]))
        # Standard error of a median of n anchors, about 1.25 sd / sqrt(n).
        se0 = 1.2533 * float(np.sqrt(np.mean(se[neutral] ** 2) / neutral.size))
        anchor = "neutral_texts"
    elif ref.size >= 2 and np.ptp(ref_y) > 0 and np.ptp(u[ref]) > 0:
        slope, icept = np.polyfit(u[ref], ref_y, 1)
        if slope <= 0:
            raise DataError(
                "the reference items are ranked against their known intensities",
                hint="check the references' intensities and value, or drop the references",
            )
        u0 = float(-icept / slope)
        anchor = "references"
    else:
        u0 = float(np.median(u[items]))
        anchor = "none"

    if ref.size >= 2:
        reference = np.full(u.size, np.nan)
        reference[ref] = ref_y
        both = np.concatenate([items, ref])
        cal = fit_scale_calibration(u[both], neutral=u0, reference=reference[both])
        method = "reference"
    elif mode == "separate":
        cal = fit_scale_calibration(u[items], neutral=u0, quantile=quantile)
        method = "separate"
    else:
        q = float(np.quantile(np.abs(u[items] - u0), quantile))
        q = q if q > 1e-12 else 1.0
        cal = ScaleCalibration(
            knots_x=np.array([u0 - q, u0, u0 + q]),
            knots_y=np.array([-MAX_INTENSITY, 0.0, MAX_INTENSITY]),
            neutral=u0,
            scale=(-MAX_INTENSITY, MAX_INTENSITY),
        )
        method = "symmetric"
    ui = u[items]
    intensity = cal(ui)
    uncertainty = _slopes(cal, ui) * np.sqrt(se[items] ** 2 + se0**2)
    calibration = Calibration(
        u0=u0,
        knots_x=tuple(float(x) for x in cal.knots_x),
        knots_y=tuple(float(y) for y in cal.knots_y),
        method=method,
        anchor=anchor,
        n_neutral=int(neutral.size),
        n_reference=int(ref.size),
    )
    return intensity, uncertainty, calibration
