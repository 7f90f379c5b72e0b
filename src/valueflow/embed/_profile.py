"""Value profiles: where a person or group stands on the 32 values, with uncertainty.

Each text is scored on each value by a ``DirectScorer`` (default: the local scorer); a
profile is, per group and value, the mean intensity over the group's texts — weighted by how
much each text says about the value when the scorer can tell (the local judge's relevance
heads) — with a percentile-bootstrap 90 % interval over texts (resampling texts, so one
prolific topic cannot fake certainty), the number of texts and the evidence behind it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_EVIDENCE", "RELEVANCE_RAMP", "plot_profile", "relevance_weight", "value_profile"]


#: Relevance at or below which a text says nothing about a value, and from which it counts fully
#: (profiles and the live tracker share it).
RELEVANCE_RAMP = (0.5, 0.85)
#: Evidence (summed relevance weights of a group's texts) below which a value is unknown.
MIN_EVIDENCE = 0.5


def relevance_weight(p: NDArray[Any], low: float = RELEVANCE_RAMP[0],
                     high: float = RELEVANCE_RAMP[1]) -> NDArray[np.float64]:
    """Weight of a text's evidence on a value from its relevance ``p``: 0 up to ``low``, 1 from
    ``high``, linear between. NaN relevance (a scorer without relevance heads) counts fully."""
    p = np.asarray(p, np.float64)
    w = (p > low).astype(np.float64) if high <= low else np.clip((p - low) / (high - low),
                                                                  0.0, 1.0)
    return np.where(np.isnan(p), 1.0, w)


def value_profile(texts: Sequence[str], groups: Sequence[Any] | None = None, *,
                  scorer: Any = None, values: Sequence[str] | None = None,
                  n_boot: int = 1000, seed: int = 0, weighting: str = "auto",
                  min_evidence: float = MIN_EVIDENCE) -> pd.DataFrame:
    """Profile of each group (default: one group, ``all``) over the evaluation values.

    With ``weighting="relevance"`` (the default ``auto`` picks it when the scorer has
    relevance heads, as the local judge does) a text counts on a value as much as it says
    something about it: the intensity is the relevance-weighted mean, so twelve texts about
    statecraft are not diluted on power by a greeting, and a value the texts never touch is
    *unknown* (NaN, with ``evidence`` below ``min_evidence``) rather than a confident 0.
    ``weighting="equal"`` is the plain mean over texts.

    Returns:
        One row per group and value: ``group``, ``value``, ``theory``, ``intensity`` (mean),
        ``low``, ``high`` (bootstrap 90 % interval of the mean, resampling texts),
        ``n_texts``, ``evidence`` (texts about the value: the sum of weights; ``n_texts``
        with equal weights), ``scorer``.
    """
    import pandas as pd

    from valueflow.theories import evaluation_values, resolve_value

    texts = list(texts)
    if not texts:
        raise DataError("no texts to profile", hint="give a file with at least one text row")
    if groups is None:
        groups = ["all"] * len(texts)
    groups = list(groups)
    if len(groups) != len(texts):
        raise DataError("groups and texts differ in length")
    if weighting not in ("auto", "relevance", "equal"):
        raise DataError(f"unknown weighting {weighting!r}", hint="auto, relevance or equal")
    if scorer is None:
        from valueflow.embed._shipped import load_local_scorer

        scorer = load_local_scorer()
    nodes = [resolve_value(v) for v in values] if values else evaluation_values()
    scores = np.column_stack([scorer.score(texts, n)[:, 0] for n in nodes])
    weights = np.ones_like(scores)
    if weighting != "equal" and hasattr(scorer, "relevance"):
        rel = np.asarray(scorer.relevance(texts, [n.id for n in nodes]), float)
        if weighting == "relevance" or np.isfinite(rel).any():
            weights = relevance_weight(rel)
    elif weighting == "relevance":
        raise DataError(f"{getattr(scorer, 'name', 'the scorer')} has no relevance heads",
                        hint="use weighting='equal', or the local judge")
    rng = np.random.default_rng(seed)
    g_arr = np.asarray([str(g) for g in groups])
    rows = []
    for g in dict.fromkeys(g_arr):
        s, w = scores[g_arr == g], weights[g_arr == g]
        n = len(s)
        ev = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: an unknown value
            mean = (w * s).sum(axis=0) / ev
            if n > 1:
                idx = rng.integers(0, n, size=(n_boot, n))
                bw = w[idx]  # (boot, n, values)
                boot = (bw * s[idx]).sum(axis=1) / bw.sum(axis=1)
                lo_b, hi_b = np.nanpercentile(boot, [5, 95], axis=0)
            else:
                lo_b, hi_b = mean, mean
        unknown = ev < min_evidence
        for j, node in enumerate(nodes):
            nan = bool(unknown[j])
            rows.append({"group": g, "value": node.id, "theory": node.theory,
                         "intensity": float("nan") if nan else float(mean[j]),
                         "low": float("nan") if nan else float(lo_b[j]),
                         "high": float("nan") if nan else float(hi_b[j]), "n_texts": n,
                         "evidence": float(ev[j]),
                         "scorer": getattr(scorer, "name", "scorer")})
    return pd.DataFrame(rows)


def plot_profile(profile: pd.DataFrame, path: str) -> None:
    """Dot-and-whisker chart of a profile, values grouped by theory, one colour per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = list(dict.fromkeys(profile["value"]))
    groups = list(dict.fromkeys(profile["group"]))
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(values) + 1.5))
    offsets = np.linspace(-0.25, 0.25, len(groups)) if len(groups) > 1 else [0.0]
    for off, g in zip(offsets, groups, strict=True):
        sub = profile[profile["group"] == g].set_index("value").loc[values]
        y = np.arange(len(values)) + off
        ax.errorbar(sub["intensity"], y, xerr=[sub["intensity"] - sub["low"],
                                                sub["high"] - sub["intensity"]],
                    fmt="o", ms=4, capsize=2, label=str(g))
    theories = [v.split(":", 1)[0] for v in values]
    for i in range(1, len(values)):
        if theories[i] != theories[i - 1]:
            ax.axhline(i - 0.5, color="0.8", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(np.arange(len(values)), values, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(-10, 10)
    ax.set_xlabel("intensity (-10 opposes … +10 supports), 90% bootstrap interval")
    if len(groups) > 1:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
