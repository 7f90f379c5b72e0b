"""One call for the whole analysis, and its findings in plain language."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from valueflow.analysis._composition import (
    latin_square_summary,
    pair_composition,
    pair_summary,
    profile_fit,
)
from valueflow.analysis._shifts import (
    Thresholds,
    _check,
    baseline_table,
    refusal_table,
    shift_table,
    steerability,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SteeringAnalysis", "analyze", "findings"]


@dataclass
class SteeringAnalysis:
    """Every table of a steering analysis, plus its findings.

    Attributes:
        baseline: Mean intensity per model × value in the unsteered default.
        shifts: Δ per model × regime × value × level (:func:`shift_table`).
        steerability: Per model × regime × value: up/down shifts, asymmetry, type.
        refusals: Refusal rates per model × regime × level.
        pairs: Pair conditions with achieved shifts and labels.
        pair_summary: Per pair: label counts and majority.
        latin: Per value and set of the five-value design, with outcomes.
        latin_summary: Dominance, fade and reversal rates per model.
        profile: Per value of profile prompts; ``profile_fit`` per profile.
        findings: Plain-language sentences.
        thresholds: The thresholds used.
        spec: The run spec, when known.
    """

    baseline: pd.DataFrame
    shifts: pd.DataFrame
    steerability: pd.DataFrame
    refusals: pd.DataFrame
    pairs: pd.DataFrame
    pair_summary: pd.DataFrame
    latin: pd.DataFrame
    latin_summary: pd.DataFrame
    profile: pd.DataFrame
    profile_fit: pd.DataFrame
    thresholds: Thresholds = field(default_factory=Thresholds)
    findings: list[str] = field(default_factory=list)
    spec: dict[str, Any] | None = None
    targets: list[Any] = field(default_factory=list)
    """``TargetResult``s of closed-loop steering to target intensities (``steer target``,
    or a config's ``targets``), shown in the report with their calibration curves."""

    TABLES = ("baseline", "shifts", "steerability", "refusals", "pairs", "pair_summary",
              "latin", "latin_summary", "profile", "profile_fit")

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in self.TABLES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: every table as records, findings, thresholds and the run id."""
        import json

        out: dict[str, Any] = {name: json.loads(df.to_json(orient="records"))
                               for name, df in self.tables().items()}
        out["findings"] = list(self.findings)
        out["thresholds"] = self.thresholds.as_dict()
        out["run_id"] = (self.spec or {}).get("run_id")
        return out


def analyze(results: pd.DataFrame, thresholds: Thresholds | None = None, *,
            n_boot: int = 1000, ci: float = 0.9, seed: int = 0) -> SteeringAnalysis:
    """Run every analysis on a tidy results table (see :func:`valueflow.steer.load_results`)."""
    _check(results)
    th = thresholds or Thresholds()
    kw: dict[str, Any] = {"n_boot": n_boot, "ci": ci, "seed": seed}
    shifts = shift_table(results, **kw)
    pairs = pair_composition(results, th, **kw)
    latin, latin_sum = latin_square_summary(results, th, **kw)
    prof, prof_fit = profile_fit(results, **kw)
    res = SteeringAnalysis(
        baseline=baseline_table(results, **kw), shifts=shifts,
        steerability=steerability(shifts, th), refusals=refusal_table(results), pairs=pairs,
        pair_summary=pair_summary(pairs), latin=latin, latin_summary=latin_sum,
        profile=prof, profile_fit=prof_fit, thresholds=th,
        spec=dict(results.attrs.get("spec") or {}) or None)
    if res.spec is not None:
        res.spec.setdefault("run_id", results.attrs.get("run_id"))
    res.findings = findings(res)
    status = results.attrs.get("status")
    if status not in (None, "done"):
        # A run that is not done must not read as a finished one (here and in the report).
        missing = 0
        if "intensity" in results and "response" in results:
            missing = int((results["intensity"].isna()
                           & results["response"].astype(str).str.strip().ne("")).sum())
        res.findings.insert(0, f"Run {results.attrs.get('run_id')} is {status}: {missing} "
                            "(answer, value) pair(s) have no score and are left out; run "
                            "`valueflow steer run` with the same config again to complete it.")
    return res


def _short(value: str) -> str:
    return value.split(":", 1)[-1].replace("_", " ")


def _fmt(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.1f}"


def findings(a: SteeringAnalysis) -> list[str]:
    """Plain-language sentences summarising an analysis (numbers on the [-10, 10] scale)."""
    out: list[str] = []
    st: Any = a.steerability
    for (m, r), g in st.groupby(["model", "regime"]):
        counts = g["type"].value_counts()
        parts = [f"{int(n)} {t.replace('_', ' ')}" for t, n in counts.items()]
        out.append(f"{m}, {r} prompts: of {len(g)} value(s), " + ", ".join(parts) + ".")
        best_up = g.loc[g["delta_up"].idxmax()] if g["delta_up"].notna().any() else None
        best_dn = g.loc[g["delta_down"].idxmin()] if g["delta_down"].notna().any() else None
        if best_up is not None:
            lead = ("  Largest upward shift:" if best_up["delta_up"] > 0 else
                    "  No value moved up when asked to raise it; closest:")
            out.append(f"{lead} {_short(best_up['value'])} "
                       f"(Δ {_fmt(best_up['delta_up'])}, 90% CI {_fmt(best_up['delta_up_low'])}"
                       f" to {_fmt(best_up['delta_up_high'])}).")
        if best_dn is not None:
            lead = ("  Largest downward shift:" if best_dn["delta_down"] < 0 else
                    "  No value moved down when asked to lower it; closest:")
            out.append(f"{lead} {_short(best_dn['value'])} "
                       f"(Δ {_fmt(best_dn['delta_down'])}, 90% CI "
                       f"{_fmt(best_dn['delta_down_low'])} to "
                       f"{_fmt(best_dn['delta_down_high'])}).")
        asym = g.dropna(subset=["asymmetry"])
        if len(asym):
            mean_asym = float(asym["asymmetry"].mean())
            easier = "raise than to lower" if mean_asym > 0 else "lower than to raise"
            out.append(f"  On average values were {abs(mean_asym):.1f} points easier to "
                       f"{easier}.")
        hard = g[g["type"] == "hard_to_steer"]["value"].map(_short).tolist()
        if hard:
            out.append(f"  Hard to steer: {', '.join(hard)}.")
    zero: Any = a.shifts[a.shifts["level"] == 0]
    for (m, r), g in zero.groupby(["model", "regime"]):
        out.append(f"{m}, {r}: the explicit neutral instruction (level 0) moved values by "
                   f"{g['delta'].abs().mean():.1f} points on average from the unsteered default.")
    ref: Any = a.refusals
    if len(ref):
        for m, g in ref.groupby("model"):
            worst = g.loc[g["refusal_rate"].idxmax()]
            lvl = "default" if worst["regime"] == "default" else (
                f"{worst['regime']} level {int(worst['level']):+d}"
                if math.isfinite(worst["level"]) else str(worst["regime"]))
            out.append(f"{m}: refusal rate {100 * g['refusal_rate'].mean():.0f}% on average; "
                       f"highest {100 * worst['refusal_rate']:.0f}% ({lvl}).")
    ps: Any = a.pair_summary
    for (m, va, vb), g in ps.groupby(["model", "value_a", "value_b"]):
        row = g.iloc[0]
        text = (f"{m}: pair {_short(va)} + {_short(vb)} — {row['additive']} additive, "
                f"{row['compete']} competing, {row['partial']} partial, {row['neither']} with "
                f"no effect, out of {row['n_conditions']} level combinations")
        if isinstance(row["usual_winner"], str) and row["usual_winner"]:
            text += f"; when they competed, {_short(row['usual_winner'])} usually won"
        out.append(text + ".")
    lrows: Any = a.latin_summary.to_dict("records")
    for r in lrows:
        out.append(
            f"{r['model']}: five-value design — the strongest target had the largest shift in "
            f"{100 * r['dominance_rate']:.0f}% of {r['n_sets']} sets; negative targets faded to "
            f"neutral in {100 * r['fade_rate']:.0f}%, reversed as asked in "
            f"{100 * r['reverse_rate']:.0f}%, and were raised instead in "
            f"{100 * r['raise_rate']:.0f}% of cases.")
    prows: Any = a.profile_fit.to_dict("records")
    for r in prows:
        out.append(f"{r['model']}: profile {r['profile']} — achieved shifts follow the "
                   f"profile's levels with Spearman {_fmt(r['spearman'])}.")
    if not out:
        out.append("No steered conditions with scores were found.")
    return out
