"""The self-contained HTML steerability report: images embedded, tables, spec, findings."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valueflow.analysis._plots import (
    figure_png,
    plot_composition,
    plot_delta_heatmap,
    plot_dose_response,
    plot_latin_square,
)

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.analysis._summary import SteeringAnalysis

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td.t{text-align:left}
img{max-width:100%;margin:.5em 0}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}
.findings li{margin:.25em 0}
.note{color:#555;font-size:.9em}
"""


def _table(df: pd.DataFrame, max_rows: int = 200) -> str:
    if df is None or df.empty:
        return "<p class='note'>(none)</p>"
    d: Any = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in list(d.columns))
    body = []
    for row in d.itertuples(index=False):
        cells = []
        for x in row:
            if isinstance(x, float):
                cells.append(f"<td>{'' if x != x else f'{x:.2f}'}</td>")
            else:
                cells.append(f"<td class='t'>{html.escape(str(x))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f"<p class='note'>{len(df) - max_rows} more rows not shown.</p>"
            if len(df) > max_rows else "")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _img(fig: Any, alt: str) -> str:
    data = str(figure_png(fig, base64_encode=True))
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def render_report(analysis: SteeringAnalysis, *, title: str = "Steerability report") -> str:
    """The report as one HTML string (PNG plots embedded as base64)."""
    from valueflow._version import __version__

    a = analysis
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    run_id = (a.spec or {}).get("run_id")
    parts.append(f"<p class='note'>ValueFlow {__version__}"
                 + (f" · run <code>{html.escape(str(run_id))}</code>" if run_id else "")
                 + ". Intensities are on the [-10, 10] scale; Δ is the shift from the "
                 "unsteered default (the query with no value instruction); intervals are 90% "
                 "bootstrap intervals over queries.</p>")
    parts.append("<h2>Summary</h2><ul class='findings'>"
                 + "".join(f"<li>{html.escape(s)}</li>" for s in a.findings) + "</ul>")
    models = sorted(set(a.shifts["model"]) | set(a.pairs["model"]) | set(a.latin.get(
        "model", [])))
    if len(a.shifts):
        parts.append("<h2>Single-value steering</h2>")
        for m in models:
            for r in sorted(set(a.shifts[a.shifts["model"] == m]["regime"])):
                parts.append(f"<h3>{html.escape(m)} — {html.escape(r)}</h3>")
                parts.append(_img(plot_delta_heatmap(a.shifts, m, r), f"delta heatmap {m} {r}"))
                parts.append(_img(plot_dose_response(a.shifts, a.baseline, m, r),
                                  f"dose response {m} {r}"))
        parts.append("<h3>Steerability and value types</h3>" + _table(a.steerability))
        th = a.thresholds
        parts.append(
            "<p class='note'>Types: <b>hard to steer</b> — neither direction shifts by "
            f"≥ {th.min_shift:g} with an interval excluding 0; <b>bidirectional</b> — both do "
            f"and the weaker reaches ≥ {th.balance:g}× the stronger; <b>default-bounded</b> — "
            "one direction is weak and points where the default already sits "
            f"(|default| ≥ {th.bound:g}); <b>polarity-asymmetric</b> — one direction is weak "
            "otherwise. Asymmetry = up-shift − down-shift, both in the intended direction.</p>")
        parts.append("<h3>Shifts per level</h3>" + _table(a.shifts))
    parts.append("<h3>Refusals</h3>" + _table(a.refusals))
    if len(a.pairs):
        parts.append("<h2>Pairs of values</h2>")
        for m in sorted(set(a.pairs["model"])):
            parts.append(_img(plot_composition(a.pairs, m), f"composition {m}"))
        parts.append(_table(a.pair_summary) + _table(a.pairs))
        parts.append(f"<p class='note'>Additive: the weaker value keeps ≥ "
                     f"{a.thresholds.additive_ratio:g} of the stronger's shift per target "
                     f"level; competing: ≤ {a.thresholds.compete_ratio:g} (or moves the wrong "
                     "way).</p>")
    if len(a.latin):
        parts.append("<h2>Five-value design</h2>")
        for m in sorted(set(a.latin["model"])):
            parts.append(_img(plot_latin_square(a.latin, m), f"latin square {m}"))
        parts.append(_table(a.latin_summary) + _table(a.latin))
    if len(a.profile):
        parts.append("<h2>Profile prompts</h2>" + _table(a.profile_fit) + _table(a.profile))
    if a.targets:
        parts.append(_targets_section(a.targets))
    if a.spec:
        from valueflow._redact import redact_credentials

        # Runs recorded before base URLs were redacted may still hold user:password.
        spec = redact_credentials(a.spec)
        parts.append("<h2>Run spec</h2><pre>"
                     + html.escape(json.dumps(spec, indent=1, default=str)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _targets_section(results: list[Any]) -> str:
    """Steering to target intensities: per regime and value set, the calibration curves
    with the chosen answers, and hit rate / RMSE / candidates / fluency per target."""
    import pandas as pd

    from valueflow.analysis._targeting import plot_target_calibration

    parts = ["<h2>Steering to target intensities</h2>",
             "<p class='note'>Closed loop: a pilot sweep calibrates the setting (activation "
             "coefficient or prompt level) against the judge as a monotone curve with a 90% "
             "bootstrap band; each question then gets candidates at the setting the curve gives "
             "for the target, adjusted by what was measured, until one lands within the "
             "tolerance or the budget is spent. Perplexity is that of the chosen answer under "
             "the unsteered model (fluency cost; lower is more fluent). The hit rate counts the chosen "
             "answer, which is selected among candidates by the same judge, so with a noisy "
             "judge it flatters; the single-answer hit rate (how often one answer at the "
             "calibrated setting is within the tolerance) does not. Side effect: the mean absolute "
             "shift, on the values not targeted, of the chosen answer from an unsteered answer "
             "to the same question.</p>"]
    rows = []
    for r in results:
        judge = html.escape(str(r.judge))
        parts.append(f"<h3>{html.escape(r.regime)} steering, measured by judge {judge}</h3>")
        if r.calibrations:
            parts.append(_img(plot_target_calibration(r), f"target calibration {r.regime}"))
        for o in r.outcomes:
            for v, t in o.targets.items():
                m = o.measured.get(v)
                rows.append({"regime": r.regime, "judge": r.judge, "value": v, "target": t,
                             "measured": None if m is None else round(m[0], 2),
                             "hit": o.hit, "first_round_hits": o.first_round_hits,
                             "candidates": o.n_candidates, "refusal": o.refusal,
                             "side_effect": (sum(abs(d) for d in o.side_effects.values())
                                             / len(o.side_effects)) if o.side_effects
                             else None,
                             "perplexity": o.perplexity, "tolerance": r.tolerance})
    if rows:
        df = pd.DataFrame(rows)
        df["sq"] = (df["measured"] - df["target"]) ** 2
        table = (df.groupby(["regime", "judge", "value", "target"], as_index=False)
                 .agg(questions=("hit", "size"), hit_rate=("hit", "mean"),
                      single_answer_hit_rate=("first_round_hits", "mean"),
                      rmse=("sq", lambda x: float(x.mean() ** 0.5)),
                      candidates=("candidates", "mean"), perplexity=("perplexity", "median"),
                      refusal_rate=("refusal", "mean"),
                      side_effect_mean_abs=("side_effect", "mean")))
        parts.append(_table(table.round(2)))
    return "\n".join(parts)


def write_report(analysis: SteeringAnalysis, out: str | os.PathLike[str] = "report.html", *,
                 title: str = "Steerability report") -> Path:
    """Write the report atomically to ``out`` (see :func:`valueflow.tables.atomic_output`);
    returns its path."""
    from valueflow.tables import atomic_output

    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(analysis, title=title)
    with atomic_output(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p
