"""Judge-stability metrics: how much scores move across judges and prompt wordings.

Pure functions over a tidy table with one row per (method, judge, paraphrase, text, value):
``method``, ``judge``, ``paraphrase``, ``text``, ``value``, ``score`` and ``reference`` (the
text's reference intensity). Scores that failed are NaN and left out.

Metrics, per method (the paper's table compares ranking with rating):

* ``mean_variance`` — variance of a text's score across judges (population variance), averaged
  over texts and paraphrases. Lower is more stable.
* ``mean_max_range`` — largest minus smallest score across judges, averaged likewise.
* ``sign_flip_rate`` — share of (text, paraphrase) where one judge scores above 0 and another
  below 0.
* ``paraphrase_change`` — mean absolute change of a judge's score between each paraphrase and
  paraphrase 0, averaged over texts and judges.
* ``sign_accuracy`` — share of scores with the sign of the reference, over texts whose
  reference is at least ``neutral_band`` away from 0.
* ``pairwise_accuracy`` — share of pairs of texts of the same value with different
  references that a judge orders like the reference (score ties count half), pooled over
  judges and paraphrases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METRICS", "PAPER_TABLE", "stability_metrics"]

METRICS = ("mean_variance", "mean_max_range", "sign_flip_rate", "paraphrase_change",
           "sign_accuracy", "pairwise_accuracy")
"""Metric names, in the order of the paper's table."""

PAPER_TABLE = {
    "ranking": {"mean_variance": 2.1, "mean_max_range": 2.8, "sign_flip_rate": 0.29,
                "paraphrase_change": 2.3, "sign_accuracy": 0.868, "pairwise_accuracy": 0.842},
    "rating": {"mean_variance": 12.6, "mean_max_range": 7.1, "sign_flip_rate": 0.48,
               "paraphrase_change": 3.6, "sign_accuracy": 0.825, "pairwise_accuracy": 0.774},
}
"""The numbers the ValueFlow paper reports (rates as fractions), for comparison."""

_REQUIRED = ["method", "judge", "paraphrase", "text", "value", "score", "reference"]


def _across_judges(df: pd.DataFrame) -> tuple[float, float, float]:
    wide = df.pivot_table(index=["text", "value", "paraphrase"], columns="judge",
                          values="score", aggfunc="mean")
    arr = wide.to_numpy(dtype=float)
    counts = np.sum(np.isfinite(arr), axis=1)
    ok = counts >= 2
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    arr = arr[ok]
    var = np.nanvar(arr, axis=1)
    rng = np.nanmax(arr, axis=1) - np.nanmin(arr, axis=1)
    flip = (np.nanmax(arr, axis=1) > 0) & (np.nanmin(arr, axis=1) < 0)
    return float(var.mean()), float(rng.mean()), float(flip.mean())


def _paraphrase_change(df: pd.DataFrame) -> float:
    wide = df.pivot_table(index=["text", "value", "judge"], columns="paraphrase",
                          values="score", aggfunc="mean")
    if wide.shape[1] < 2:
        return float("nan")
    cols = sorted(wide.columns)
    base = wide[cols[0]].to_numpy(dtype=float)
    diffs = np.abs(wide[cols[1:]].to_numpy(dtype=float) - base[:, None])
    return float(np.nanmean(diffs)) if np.isfinite(diffs).any() else float("nan")


def _sign_accuracy(df: pd.DataFrame, band: float) -> float:
    s, r = df["score"].to_numpy(dtype=float), df["reference"].to_numpy(dtype=float)
    use = np.isfinite(s) & (np.abs(r) >= band)
    if not use.any():
        return float("nan")
    return float(np.mean(np.sign(s[use]) == np.sign(r[use])))


def _pairwise_accuracy(df: pd.DataFrame) -> float:
    good = total = 0.0
    for _, g in df.groupby(["judge", "paraphrase", "value"], sort=False):
        g = g[np.isfinite(g["score"].to_numpy(dtype=float))]
        s, r = g["score"].to_numpy(dtype=float), g["reference"].to_numpy(dtype=float)
        ds = np.sign(s[:, None] - s[None, :])
        dr = np.sign(r[:, None] - r[None, :])
        upper = np.triu(np.ones_like(ds, dtype=bool), k=1) & (dr != 0)
        total += upper.sum()
        good += (ds[upper] == dr[upper]).sum() + 0.5 * (ds[upper] == 0).sum()
    return float(good / total) if total else float("nan")


def stability_metrics(scores: pd.DataFrame, *, neutral_band: float = 1.0) -> pd.DataFrame:
    """The six stability metrics per method (rows), plus counts.

    Args:
        scores: Tidy table with ``method``, ``judge``, ``paraphrase``, ``text``, ``value``,
            ``score``, ``reference`` (see the module docstring).
        neutral_band: References closer to 0 than this are left out of ``sign_accuracy``.

    Returns:
        A DataFrame indexed by method with the columns of :data:`METRICS`, ``n_judges``,
        ``n_paraphrases``, ``n_texts`` and ``n_failed`` (NaN scores).
    """
    import pandas as pd

    from valueflow.tables import require_columns

    require_columns(scores, _REQUIRED, source="the stability table")
    if scores.empty:
        raise DataError("the stability table is empty")
    rows = {}
    for method, df in scores.groupby("method", sort=False):
        var, rng, flip = _across_judges(df)
        rows[method] = {
            "mean_variance": var, "mean_max_range": rng, "sign_flip_rate": flip,
            "paraphrase_change": _paraphrase_change(df),
            "sign_accuracy": _sign_accuracy(df, neutral_band),
            "pairwise_accuracy": _pairwise_accuracy(df),
            "n_judges": int(df["judge"].nunique()),
            "n_paraphrases": int(df["paraphrase"].nunique()),
            "n_texts": int(df[["text", "value"]].drop_duplicates().shape[0]),
            "n_failed": int(df["score"].isna().sum()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out
