"""Composition: what happens when several values are steered at once.

* **Pairs**: for each pair condition, the achieved shifts (Δa, Δb) are compared with the
  targets (ta, tb). Measured in the intended direction and per unit of target level
  (u = Δ·sign(t)/|t|), the pair is *additive* when the weaker value keeps at least
  ``additive_ratio`` of the stronger's per-level shift (achieved intensities track the
  targets' ratio), *compete* when it keeps at most ``compete_ratio`` or moves the wrong way
  (one value wins, the other is suppressed), *partial* in between, and *neither* when no
  value moves by ``min_shift``.
* **Five-value design** (or any design with three or more targets): per set, whether the
  value with the strongest target has the largest shift (*dominance*), and for negative
  targets whether they *faded* to neutral (|Δ| < ``fade``), *reversed* as asked
  (Δ <= -``fade``) or were *raised* (Δ >= ``fade``).
* **Profiles**: how well achieved shifts follow the profile's target levels (Spearman).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.analysis._shifts import (
    Thresholds,
    _check,
    _per_query,
    baselines,
    bootstrap_delta,
    group_seed,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "latin_square_summary",
    "multi_value_shifts",
    "pair_composition",
    "pair_summary",
    "profile_fit",
]


def _targets(g: pd.DataFrame) -> list[tuple[str, int]]:
    """A condition's (value, level) targets, in prompt order."""
    if "targets" in g.columns:
        raw = g["targets"].iloc[0]
        if isinstance(raw, str):
            return [(str(k), int(v)) for k, v in json.loads(raw).items()]
        if isinstance(raw, dict):
            return [(str(k), int(v)) for k, v in raw.items()]
    t = g.dropna(subset=["level"]).drop_duplicates("value")
    return [(str(v), int(lv)) for v, lv in zip(t["value"], t["level"], strict=True)]


def _set_label(condition: str) -> str:
    if "#" in condition:
        return condition.split("#", 1)[1].split(":", 1)[0]
    return condition


def multi_value_shifts(results: pd.DataFrame, regime: str | None = None, *,
                       min_targets: int = 2, n_boot: int = 1000, ci: float = 0.9,
                       seed: int = 0) -> pd.DataFrame:
    """Δ of each targeted value in each multi-value condition.

    Columns: ``model, regime, condition, set, position`` (order in the prompt), ``value,
    level, delta, delta_low, delta_high, n_queries``.
    """
    import pandas as pd

    _check(results)
    base = baselines(results)
    d = results[results["regime"] != "default"]
    if regime is not None:
        d = d[d["regime"] == regime]
    rows = []
    for (m, r, c), g in d.groupby(["model", "regime", "condition"]):
        targets = _targets(g)
        if len(targets) < min_targets:
            continue
        for pos, (v, lv) in enumerate(targets):
            a = _per_query(g[g["value"] == v])
            delta, lo, hi = bootstrap_delta(a, base.get((str(m), v), {}), n_boot=n_boot, ci=ci,
                                            seed=group_seed(seed, ("multi", m, c, v)))
            rows.append({"model": m, "regime": r, "condition": c, "set": _set_label(str(c)),
                         "position": pos, "value": v, "level": lv, "delta": delta,
                         "delta_low": lo, "delta_high": hi, "n_queries": len(a)})
    cols = ["model", "regime", "condition", "set", "position", "value", "level", "delta",
            "delta_low", "delta_high", "n_queries"]
    return pd.DataFrame(rows, columns=cols)


def _angle(d: tuple[float, float], t: tuple[float, float]) -> float:
    nd, nt = math.hypot(*d), math.hypot(*t)
    if nd == 0 or nt == 0 or not np.isfinite(nd):
        return float("nan")
    cos = (d[0] * t[0] + d[1] * t[1]) / (nd * nt)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def classify_pair(delta_a: float, delta_b: float, level_a: int, level_b: int,
                  thresholds: Thresholds | None = None) -> tuple[str, str | None, float]:
    """``(label, winner, retention)`` for one pair condition (see the module docstring).

    ``winner`` is ``"a"`` or ``"b"`` for competing pairs; ``retention`` is the weaker
    value's per-level shift divided by the stronger's.
    """
    th = thresholds or Thresholds()
    if level_a == 0 or level_b == 0 or not (np.isfinite(delta_a) and np.isfinite(delta_b)):
        return "n/a", None, float("nan")
    e = (delta_a * np.sign(level_a), delta_b * np.sign(level_b))
    if max(e) < th.min_shift:
        return "neither", None, float("nan")
    u = (e[0] / abs(level_a), e[1] / abs(level_b))
    strong = 0 if u[0] >= u[1] else 1
    retention = u[1 - strong] / u[strong]
    if retention >= th.additive_ratio:
        return "additive", None, float(retention)
    if retention <= th.compete_ratio:
        return "compete", "ab"[strong], float(retention)
    return "partial", None, float(retention)


def pair_composition(results: pd.DataFrame, thresholds: Thresholds | None = None, *,
                     regime: str = "pairs", n_boot: int = 1000, ci: float = 0.9,
                     seed: int = 0) -> pd.DataFrame:
    """One row per model × pair condition: targets, achieved shifts, angle and label.

    ``angle`` is the angle in degrees between the achieved (Δa, Δb) and the target
    (ta, tb) vectors; ``label`` is additive / compete / partial / neither / n/a.
    """
    import pandas as pd

    shifts = multi_value_shifts(results, regime, min_targets=2, n_boot=n_boot, ci=ci,
                                seed=seed)
    rows = []
    for (m, c), g in shifts.groupby(["model", "condition"]):
        g = g.sort_values("position")
        if len(g) != 2:
            continue
        a, b = g.iloc[0], g.iloc[1]
        label, winner, retention = classify_pair(float(a["delta"]), float(b["delta"]),
                                                 int(a["level"]), int(b["level"]), thresholds)
        rows.append({"model": m, "condition": c, "value_a": a["value"], "value_b": b["value"],
                     "level_a": int(a["level"]), "level_b": int(b["level"]),
                     "delta_a": float(a["delta"]), "delta_a_low": float(a["delta_low"]),
                     "delta_a_high": float(a["delta_high"]),
                     "delta_b": float(b["delta"]), "delta_b_low": float(b["delta_low"]),
                     "delta_b_high": float(b["delta_high"]),
                     "angle": _angle((float(a["delta"]), float(b["delta"])),
                                     (float(a["level"]), float(b["level"]))),
                     "retention": retention, "label": label,
                     "winner": (a["value"] if winner == "a" else b["value"]) if winner else None})
    cols = ["model", "condition", "value_a", "value_b", "level_a", "level_b", "delta_a",
            "delta_a_low", "delta_a_high", "delta_b", "delta_b_low", "delta_b_high", "angle",
            "retention", "label", "winner"]
    return pd.DataFrame(rows, columns=cols)


def pair_summary(composition: pd.DataFrame) -> pd.DataFrame:
    """Per model × pair: how many conditions were additive / compete / partial / neither,
    the majority label, and the value that won most often when they competed."""
    import pandas as pd

    rows = []
    labels = ["additive", "compete", "partial", "neither", "n/a"]
    for (m, a, b), g in composition.groupby(["model", "value_a", "value_b"]):
        counts = g["label"].value_counts()
        decided = counts.drop("n/a", errors="ignore")
        majority = str(decided.idxmax()) if len(decided) else "n/a"
        winners = g["winner"].dropna()
        rows.append({"model": m, "value_a": a, "value_b": b, "n_conditions": len(g),
                     **{lab: int(counts.get(lab, 0)) for lab in labels},
                     "majority": majority,
                     "usual_winner": str(winners.mode().iloc[0]) if len(winners) else None,
                     "mean_angle": float(g["angle"].mean())})
    cols = ["model", "value_a", "value_b", "n_conditions", *labels, "majority",
            "usual_winner", "mean_angle"]
    return pd.DataFrame(rows, columns=cols)


def latin_square_summary(results: pd.DataFrame, thresholds: Thresholds | None = None, *,
                         regime: str = "latin_square", n_boot: int = 1000, ci: float = 0.9,
                         seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The five-value design: per-value outcomes, and per-model summary.

    Returns:
        ``(per_value, summary)``. ``per_value`` adds to :func:`multi_value_shifts` an
        ``outcome`` per value (achieved / missed for positive targets; faded / reversed /
        raised for negative ones; neutral_kept / drifted for level 0) and ``strongest`` /
        ``dominant`` flags. ``summary`` has per model: ``n_sets``, ``dominance_rate``
        (share of sets where the strongest target had the largest shift), ``fade_rate``,
        ``reverse_rate``, ``raise_rate`` (over negative targets) and the mean Δ per level.
    """
    import pandas as pd

    th = thresholds or Thresholds()
    per: Any = multi_value_shifts(results, regime, min_targets=3, n_boot=n_boot, ci=ci, seed=seed)
    if per.empty:
        return per, pd.DataFrame(columns=["model", "n_sets", "dominance_rate", "fade_rate",
                                          "reverse_rate", "raise_rate"])
    per = per.copy()
    per["outcome"] = [_outcome(float(d), int(lv), th)
                      for d, lv in zip(per["delta"], per["level"], strict=True)]
    per["strongest"] = per.groupby(["model", "condition"])["level"].transform("max") == per[
        "level"]
    per["dominant"] = per.groupby(["model", "condition"])["delta"].transform("max") == per[
        "delta"]
    rows = []
    for m, g in per.groupby("model"):
        sets = g.groupby("condition")
        dom = [bool((s["strongest"] & s["dominant"]).any()) and s["strongest"].sum() == 1
               for _, s in sets]
        neg = g[g["level"] < 0]
        row = {"model": m, "n_sets": len(dom), "dominance_rate": float(np.mean(dom)),
               "fade_rate": float((neg["outcome"] == "faded").mean()) if len(neg) else np.nan,
               "reverse_rate": float((neg["outcome"] == "reversed").mean()) if len(neg)
               else np.nan,
               "raise_rate": float((neg["outcome"] == "raised").mean()) if len(neg) else np.nan}
        for lv, x in g.groupby("level")["delta"].mean().items():
            row[f"mean_delta_{int(lv):+d}"] = float(x)
        rows.append(row)
    return per, pd.DataFrame(rows)


def _outcome(delta: float, level: int, th: Thresholds) -> str:
    if not np.isfinite(delta):
        return "unscored"
    if level > 0:
        return "achieved" if delta >= th.min_shift else "missed"
    if level == 0:
        return "neutral_kept" if abs(delta) < th.fade else "drifted"
    if abs(delta) < th.fade:
        return "faded"
    return "reversed" if delta <= -th.fade else "raised"


def profile_fit(results: pd.DataFrame, *, regime: str = "profile", n_boot: int = 1000,
                ci: float = 0.9, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Profile prompts: per-value shifts, and per model × profile the Spearman correlation
    between target levels and achieved shifts (1: the profile's order is reproduced)."""
    import pandas as pd
    from scipy.stats import spearmanr

    per = multi_value_shifts(results, regime, min_targets=1, n_boot=n_boot, ci=ci, seed=seed)
    rows = []
    for (m, c), g in per.groupby(["model", "condition"]):
        ok = g.dropna(subset=["delta"])
        rho = float("nan")
        if len(ok) >= 3 and ok["level"].nunique() > 1 and ok["delta"].nunique() > 1:
            rho = float(spearmanr(ok["level"], ok["delta"]).statistic)
        rows.append({"model": m, "condition": c, "profile": _set_label(str(c)),
                     "n_values": len(g), "spearman": rho,
                     "sign_agreement": float(np.mean([
                         np.sign(d) == np.sign(lv) for d, lv in
                         zip(ok["delta"], ok["level"], strict=True) if lv != 0]))
                     if (ok["level"] != 0).any() else np.nan})
    return per, pd.DataFrame(rows, columns=["model", "condition", "profile", "n_values",
                                            "spearman", "sign_agreement"])
