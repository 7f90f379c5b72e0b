"""Steering shifts Δ with bootstrap intervals, value types and refusal rates.

All functions are pure: a tidy results table in (one row per answer and scored value, as
:func:`valueflow.steer.load_results` returns), DataFrames out.

Δ for a model, value and condition is the mean intensity of that value in the condition's
answers minus its mean in the **unsteered default** answers of the same model. Queries are
weighted equally (answers are first averaged per query), and the bootstrap resamples
queries: paired when both sides answered the same queries, independently otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "VALUE_TYPES",
    "Thresholds",
    "baseline_table",
    "bootstrap_delta",
    "refusal_table",
    "shift_table",
    "steerability",
]

REQUIRED = ["model", "regime", "condition", "query_id", "value", "level", "intensity"]

#: The value types :func:`steerability` assigns, in the order it tests them.
VALUE_TYPES: dict[str, str] = {
    "hard_to_steer": "neither direction moves the value by at least `min_shift`",
    "bidirectional": "both directions move it by at least `min_shift`, and the weaker moves at "
                     "least `balance` times as far as the stronger",
    "default_bounded": "only one direction works well, and the weak one points where the "
                       "unsteered default already sits (|default| >= `bound` on that side)",
    "polarity_asymmetric": "only one direction works well, and the default does not explain it",
}


@dataclass(frozen=True)
class Thresholds:
    """Explicit thresholds of the classifications, on the [-10, 10] intensity scale.

    Attributes:
        min_shift: A direction is *steerable* when its shift in the intended direction is at
            least this and its interval excludes zero.
        balance: Bidirectional needs min/max of the two directions' shifts >= this.
        bound: The default counts as already near one end when |default mean| >= this.
        additive_ratio: Pairs are *additive* when the weaker value's shift per target level
            is at least this fraction of the stronger's.
        compete_ratio: Pairs *compete* when that fraction is at most this (or negative).
        fade: In multi-value designs, a negative target whose |Δ| is below this has *faded*
            to neutral; Δ <= -fade is a *reversal* (it moved as asked).
    """

    min_shift: float = 1.0
    balance: float = 0.5
    bound: float = 3.0
    additive_ratio: float = 0.5
    compete_ratio: float = 0.25
    fade: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _check(results: pd.DataFrame) -> None:
    from valueflow.tables import require_columns

    require_columns(results, REQUIRED, source="the steering results")


def group_seed(seed: int, key: Iterable[Any]) -> int:
    """A seed for one group that does not depend on the order groups are visited in."""
    raw = json.dumps([seed, *[str(k) for k in key]]).encode()
    return int(hashlib.sha256(raw).hexdigest()[:8], 16)


def _per_query(df: pd.DataFrame) -> dict[str, float]:
    s = df.dropna(subset=["intensity"]).groupby("query_id")["intensity"].mean()
    return {str(k): float(v) for k, v in s.items()}


def bootstrap_delta(a: dict[str, float], b: dict[str, float], *, n_boot: int = 1000,
                    ci: float = 0.9, seed: int = 0) -> tuple[float, float, float]:
    """Δ = mean(a) - mean(b) over per-query means, with a percentile bootstrap interval.

    Paired over queries when ``a`` and ``b`` cover the same queries, else independent.
    Returns ``(delta, low, high)``; the interval is NaN with fewer than two queries.
    """
    if not a or not b:
        return float("nan"), float("nan"), float("nan")
    qa, qb = sorted(a), sorted(b)
    A = np.array([a[q] for q in qa])
    B = np.array([b[q] for q in qb])
    delta = float(A.mean() - B.mean())
    if min(len(A), len(B)) < 2 or n_boot < 1:
        return delta, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if qa == qb:
        idx = rng.integers(0, len(A), (n_boot, len(A)))
        d = A[idx].mean(1) - B[idx].mean(1)
    else:
        d = (A[rng.integers(0, len(A), (n_boot, len(A)))].mean(1)
             - B[rng.integers(0, len(B), (n_boot, len(B)))].mean(1))
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(d, [alpha, 1 - alpha])
    return delta, float(lo), float(hi)


def _boot_mean(a: dict[str, float], n_boot: int, ci: float, seed: int
               ) -> tuple[float, float, float]:
    if not a:
        return float("nan"), float("nan"), float("nan")
    A = np.array(list(a.values()))
    if len(A) < 2:
        return float(A.mean()), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(A), (n_boot, len(A)))
    m = A[idx].mean(1)
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(m, [alpha, 1 - alpha])
    return float(A.mean()), float(lo), float(hi)


def baselines(results: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """(model, value) → per-query mean intensity in the unsteered default."""
    d = results[results["regime"] == "default"]
    return {(str(m), str(v)): _per_query(g) for (m, v), g in d.groupby(["model", "value"])}


def baseline_table(results: pd.DataFrame, *, n_boot: int = 1000, ci: float = 0.9,
                   seed: int = 0) -> pd.DataFrame:
    """Mean intensity of each value in each model's unsteered default answers."""
    import pandas as pd

    _check(results)
    rows = []
    for (m, v), a in baselines(results).items():
        mean, lo, hi = _boot_mean(a, n_boot, ci, group_seed(seed, ("base", m, v)))
        rows.append({"model": m, "value": v, "n_queries": len(a), "mean": mean, "low": lo,
                     "high": hi})
    return pd.DataFrame(rows, columns=["model", "value", "n_queries", "mean", "low", "high"])


def _refusal_rate(df: pd.DataFrame) -> float:
    if "refusal" not in df.columns:
        return float("nan")
    keys = [c for c in ("gen_key",) if c in df.columns] or ["condition", "query_id"] + (
        ["sample"] if "sample" in df.columns else [])
    g = df.drop_duplicates(keys)
    return float(g["refusal"].astype(float).mean()) if len(g) else float("nan")


def shift_table(results: pd.DataFrame, *, n_boot: int = 1000, ci: float = 0.9,
                seed: int = 0) -> pd.DataFrame:
    """Δ per model × regime × value × level for the single-value regimes.

    Columns: ``model, regime, value, level, n_answers, n_queries, mean, mean_low, mean_high``
    (achieved intensity, for dose-response curves), ``baseline, delta, delta_low,
    delta_high`` (the shift from the unsteered default) and ``refusal_rate``.
    """
    import pandas as pd

    _check(results)
    base = baselines(results)
    single = results[(results["regime"] != "default") & results["level"].notna()]
    if "n_targets" in single.columns:
        single = single[single["n_targets"] == 1]
    else:
        single = single[single.groupby("condition")["value"].transform("nunique") == 1]
    rows = []
    grouped: Any = single.groupby(["model", "regime", "value", "level"])
    for (m, r, v, lv), g in grouped:
        a = _per_query(g)
        b = base.get((str(m), str(v)), {})
        key = (m, r, v, lv)
        mean, mlo, mhi = _boot_mean(a, n_boot, ci, group_seed(seed, ("mean", *key)))
        delta, dlo, dhi = bootstrap_delta(a, b, n_boot=n_boot, ci=ci,
                                          seed=group_seed(seed, ("delta", *key)))
        rows.append({"model": m, "regime": r, "value": v, "level": int(lv),
                     "n_answers": int(g["intensity"].notna().sum()), "n_queries": len(a),
                     "mean": mean, "mean_low": mlo, "mean_high": mhi,
                     "baseline": float(np.mean(list(b.values()))) if b else float("nan"),
                     "delta": delta, "delta_low": dlo, "delta_high": dhi,
                     "refusal_rate": _refusal_rate(g)})
    cols = ["model", "regime", "value", "level", "n_answers", "n_queries", "mean", "mean_low",
            "mean_high", "baseline", "delta", "delta_low", "delta_high", "refusal_rate"]
    return pd.DataFrame(rows, columns=cols)


def steerability(shifts: pd.DataFrame, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """Per model × regime × value: up/down shifts, asymmetry, dose-response and value type.

    ``delta_up`` is Δ at the highest positive level, ``delta_down`` at the lowest negative
    one. ``asymmetry`` = up-shift minus down-shift, both measured in the intended direction
    (positive: easier to raise than to lower). ``slope`` is the least-squares slope of mean
    intensity on level, ``monotonic`` the Spearman correlation of level and mean. ``type``
    is one of :data:`VALUE_TYPES` (thresholds in :class:`Thresholds`).
    """
    import pandas as pd
    from scipy.stats import spearmanr

    th = thresholds or Thresholds()
    rows = []
    for (m, r, v), g in shifts.groupby(["model", "regime", "value"]):
        g = g.sort_values("level")
        pos, neg = g[g["level"] > 0], g[g["level"] < 0]
        up = pos.iloc[-1] if len(pos) else None
        down = neg.iloc[0] if len(neg) else None
        e_up = float(up["delta"]) if up is not None else float("nan")
        e_down = -float(down["delta"]) if down is not None else float("nan")
        strong_up = bool(up is not None and e_up >= th.min_shift
                         and not float(up["delta_low"]) <= 0)
        strong_down = bool(down is not None and e_down >= th.min_shift
                           and not float(down["delta_high"]) >= 0)
        baseline = float(g["baseline"].iloc[0])
        kind = _value_type(strong_up, strong_down, e_up, e_down, baseline, th)
        ok = g.dropna(subset=["mean"])
        slope = rho = float("nan")
        if ok["level"].nunique() >= 2:
            slope = float(np.polyfit(ok["level"].astype(float), ok["mean"], 1)[0])
            if ok["mean"].nunique() > 1:
                rho = float(spearmanr(ok["level"], ok["mean"]).statistic)
        rows.append({"model": m, "regime": r, "value": v, "baseline": baseline,
                     "delta_up": e_up,
                     "delta_up_low": float(up["delta_low"]) if up is not None else np.nan,
                     "delta_up_high": float(up["delta_high"]) if up is not None else np.nan,
                     "delta_down": -e_down,
                     "delta_down_low": float(down["delta_low"]) if down is not None else np.nan,
                     "delta_down_high": float(down["delta_high"]) if down is not None
                     else np.nan,
                     "asymmetry": e_up - e_down, "slope": slope, "monotonic": rho,
                     "refusal_rate": float(g["refusal_rate"].mean()), "type": kind})
    cols = ["model", "regime", "value", "baseline", "delta_up", "delta_up_low", "delta_up_high",
            "delta_down", "delta_down_low", "delta_down_high", "asymmetry", "slope",
            "monotonic", "refusal_rate", "type"]
    return pd.DataFrame(rows, columns=cols)


def _value_type(strong_up: bool, strong_down: bool, e_up: float, e_down: float,
                baseline: float, th: Thresholds) -> str:
    if not strong_up and not strong_down:
        return "hard_to_steer"
    hi, lo = max(e_up, e_down), min(e_up, e_down)
    if strong_up and strong_down and hi > 0 and lo / hi >= th.balance:
        return "bidirectional"
    weak_is_up = (e_up if np.isfinite(e_up) else -np.inf) < (
        e_down if np.isfinite(e_down) else -np.inf)
    if (weak_is_up and baseline >= th.bound) or (not weak_is_up and baseline <= -th.bound):
        return "default_bounded"
    return "polarity_asymmetric"


def refusal_table(results: pd.DataFrame) -> pd.DataFrame:
    """Refusal rate per model × regime × level (the default has level NaN), over answers."""
    import pandas as pd

    if "refusal" not in results.columns:
        raise DataError("the steering results have no `refusal` column")
    rows = []
    d: Any = results[results["regime"] == "default"]
    for m, g in d.groupby("model"):
        rows.append({"model": m, "regime": "default", "level": np.nan,
                     "n_answers": len(_answers(g)), "refusal_rate": _refusal_rate(g)})
    s: Any = results[(results["regime"] != "default") & results["level"].notna()]
    ntg = s["n_targets"] if "n_targets" in s.columns else s.groupby("condition")[
        "value"].transform("nunique")
    for (m, r, lv), g in s[ntg == 1].groupby(["model", "regime", "level"]):
        rows.append({"model": m, "regime": r, "level": int(lv), "n_answers": len(_answers(g)),
                     "refusal_rate": _refusal_rate(g)})
    for (m, r), g in s[ntg > 1].groupby(["model", "regime"]):  # several levels per answer
        rows.append({"model": m, "regime": r, "level": np.nan, "n_answers": len(_answers(g)),
                     "refusal_rate": _refusal_rate(g)})
    return pd.DataFrame(rows, columns=["model", "regime", "level", "n_answers", "refusal_rate"])


def _answers(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["gen_key"] if "gen_key" in df.columns else ["condition", "query_id"] + (
        ["sample"] if "sample" in df.columns else [])
    return df.drop_duplicates(keys)
