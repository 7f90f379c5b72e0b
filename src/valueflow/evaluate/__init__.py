"""Score texts' value intensity on a calibrated scale, against VIDB anchors.

A judge ranks each text among anchors of known intensity, in several windows; an anchored
Plackett–Luce model turns the rankings into a posterior intensity in [-10, 10] with a 90 %
interval, estimating how sharp the judge is on the way. The rating baseline asks the judge
for one number per text instead; ``valueflow study judges`` compares the two.

Example:
    >>> from valueflow.evaluate import score_texts
    >>> scores = score_texts(["I helped my neighbour move."], "benevolence",
    ...                      judge="openai/gpt-4o-mini")  # doctest: +SKIP
"""

from valueflow.evaluate._anchors import (
    AnchorPool,
    anchor_pools,
    left_out_note,
    user_vidb_frame,
)
from valueflow.evaluate._score import (
    OUTPUT_COLUMNS,
    ScoreJob,
    estimate_score_cost,
    prepare_score,
    run_score,
    score_texts,
)
from valueflow.evaluate._stability import METRICS, PAPER_TABLE, stability_metrics
from valueflow.evaluate._store import load_scores, save_scores
from valueflow.evaluate._study import estimate_study_cost, plot_judge_stability, study_judges

__all__ = [
    "METRICS",
    "OUTPUT_COLUMNS",
    "PAPER_TABLE",
    "AnchorPool",
    "ScoreJob",
    "anchor_pools",
    "estimate_score_cost",
    "estimate_study_cost",
    "left_out_note",
    "load_scores",
    "plot_judge_stability",
    "prepare_score",
    "run_score",
    "save_scores",
    "score_texts",
    "stability_metrics",
    "study_judges",
    "user_vidb_frame",
]
