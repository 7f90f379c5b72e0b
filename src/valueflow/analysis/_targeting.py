"""How well steering reached its targets: hit rate, RMSE, calibration curves, fluency.

Reads what ``steer target`` stored (:func:`valueflow.steer.load_target_run`) and the
calibration curves of the workspace; :func:`plot_target_calibration` draws each value's
dose–response curve with its band, the targets and where the chosen answers landed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.steer import TargetResult

__all__ = ["plot_target_calibration", "target_table"]


def target_table(candidates: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per (value, target): questions, hit rate of the chosen answers, RMSE of the chosen
    answers, candidates used, and median perplexity, from :func:`load_target_run`'s table.

    The chosen answer of a question is its candidate nearest every target (the worst
    absolute error over the targets is smallest)."""
    import pandas as pd

    if candidates.empty:
        return pd.DataFrame(columns=["value", "target", "questions", "hit_rate", "rmse",
                                     "candidates", "perplexity"])
    worst = (candidates.assign(abs_err=candidates["error"].abs())
             .groupby(["query_id", "candidate"])["abs_err"].max().rename("worst"))
    df = candidates.join(worst, on=["query_id", "candidate"])
    best = df.loc[df.groupby(["query_id", "value"])["worst"].idxmin()]
    n_cand = candidates.groupby("query_id")["candidate"].nunique()
    rows = []
    for (v, t), g in best.groupby(["value", "target"]):
        rows.append({"value": v, "target": float(t), "questions": len(g),  # type: ignore[arg-type]
                     "hit_rate": float((g["worst"] <= tolerance).mean()),
                     "rmse": float(np.sqrt(np.nanmean(np.square(g["error"])))),
                     "candidates": float(n_cand.loc[g["query_id"]].mean()),
                     "perplexity": float(np.nanmedian(g["perplexity"].astype(float)))
                     if g["perplexity"].notna().any() else math.nan})
    return pd.DataFrame(rows)


def plot_target_calibration(result: TargetResult, path: str | None = None) -> Any:
    """One panel per targeted value: pilot answers (dots), the monotone fit with its
    bootstrap band, the target (dashed) ± tolerance, and the chosen answers (stars: hit,
    crosses: miss) at their settings. Saved to ``path`` when given; returns the figure."""
    from valueflow.analysis._plots import _plt, _short

    plt = _plt()
    cals = result.calibrations
    fig, axes = plt.subplots(1, len(cals), figsize=(4.6 * len(cals), 3.6), squeeze=False)
    for ax, (v, cal) in zip(axes[0], cals.items(), strict=True):
        c = cal.curve
        pts = cal.points
        ax.scatter(pts.get("setting", []), pts.get("intensity", []), s=10, alpha=0.35,
                   color="grey", label="pilot answers")
        ax.fill_between(c.settings, c.low, c.high, alpha=0.25, color="tab:blue",
                        label=f"{int(c.level * 100)}% band")
        ax.plot(c.settings, c.fitted, color="tab:blue", lw=2, label="monotone fit")
        lo, hi = cal.calibrated_range
        if math.isfinite(lo) and math.isfinite(hi):
            ax.axvspan(lo, hi, color="tab:green", alpha=0.06, label="calibrated range")
        targets = sorted({o.targets[v] for o in result.outcomes if v in o.targets})
        for t in targets:
            ax.axhline(t, ls="--", color="tab:red", lw=1)
            ax.axhspan(t - result.tolerance, t + result.tolerance, color="tab:red", alpha=0.06)
        for o in result.outcomes:
            if v in o.measured and v in o.settings:
                ax.scatter([o.settings[v]], [o.measured[v][0]], marker="*" if o.hit else "x",
                           s=90 if o.hit else 50, color="tab:red" if o.hit else "black", zorder=5)
        ax.set_title(f"{_short(v)} ({cal.regime})")
        ax.set_xlabel("coefficient" if cal.regime == "activation" else "prompt level")
        ax.set_ylabel(f"measured intensity ({cal.judge})")
        ax.set_ylim(-10.5, 10.5)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{result.regime} steering to targets: hit rate {result.hit_rate:.0%} "
                 f"within ±{result.tolerance:g}", fontsize=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
