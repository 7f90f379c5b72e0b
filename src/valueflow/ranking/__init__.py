"""Plackett–Luce fitting and anchored scoring: pure numpy/scipy, item ids in, numbers out.

* :func:`fit_plackett_luce` — MAP utilities (and standard errors) from k-way, partial and
  weighted rankings; used to build VIDB.
* :class:`AnchoredScorer` / :func:`score_with_anchors` — score unknown items ranked in
  windows among anchors of known intensity: posterior mean, 90 % interval, judge β.
* Window designs (``_design.py`` defines the words): for scoring among anchors
  :func:`random_windows`, :func:`bucket_windows`, :class:`AdaptiveDesigner`, and
  :func:`shuffle_window` for the display order; for building a VIDB, where no intensity is
  known, :func:`balanced_windows` and :func:`adaptive_windows`, with
  :func:`window_components` and :func:`appearances` to check a design. *Adaptive* always
  means: windows chosen from estimates fitted to earlier answers.
* :class:`SimulatedJudge` — Plackett–Luce rankings from latent intensities, for planning.
* :func:`calibrate_to_scale` — monotone map of utilities to [-10, 10] keeping neutral at 0.
* :class:`ReferenceAnchoredScorer` — our reimplementation of the paper's reference estimator
  (from a description of its published script), for benchmarks.
"""

from valueflow.ranking._anchored import (
    AnchoredScorer,
    AnchoredScores,
    anchor_prior,
    score_with_anchors,
)
from valueflow.ranking._calibrate import (
    ScaleCalibration,
    calibrate_to_scale,
    fit_scale_calibration,
)
from valueflow.ranking._design import (
    AdaptiveDesigner,
    ShuffledWindow,
    adaptive_windows,
    appearances,
    balanced_windows,
    bucket_windows,
    random_windows,
    shuffle_window,
    window_components,
)
from valueflow.ranking._pl import PLFitResult, fit_plackett_luce
from valueflow.ranking._reference import ReferenceAnchoredScorer
from valueflow.ranking._simulate import SimulatedJudge, sample_pl_rankings
from valueflow.ranking._windows import UNKNOWN

__all__ = [
    "UNKNOWN",
    "AdaptiveDesigner",
    "AnchoredScorer",
    "AnchoredScores",
    "PLFitResult",
    "ReferenceAnchoredScorer",
    "ScaleCalibration",
    "ShuffledWindow",
    "SimulatedJudge",
    "adaptive_windows",
    "anchor_prior",
    "appearances",
    "balanced_windows",
    "bucket_windows",
    "calibrate_to_scale",
    "fit_plackett_luce",
    "fit_scale_calibration",
    "random_windows",
    "sample_pl_rankings",
    "score_with_anchors",
    "shuffle_window",
    "window_components",
]
