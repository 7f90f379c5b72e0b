"""Steerability analysis: shifts with bootstrap intervals, value types, composition, report.

Everything takes the tidy results table of a steering run (one row per answer and scored
value, see :func:`valueflow.steer.load_results`) and returns DataFrames::

    from valueflow.analysis import analyze, write_report
    analysis = analyze(results)          # every table + plain-language findings
    write_report(analysis, "report.html")
"""

from valueflow.analysis._composition import (
    classify_pair,
    latin_square_summary,
    multi_value_shifts,
    pair_composition,
    pair_summary,
    profile_fit,
)
from valueflow.analysis._report import render_report, write_report
from valueflow.analysis._shifts import (
    VALUE_TYPES,
    Thresholds,
    baseline_table,
    bootstrap_delta,
    refusal_table,
    shift_table,
    steerability,
)
from valueflow.analysis._summary import SteeringAnalysis, analyze, findings
from valueflow.analysis._targeting import plot_target_calibration, target_table

__all__ = [
    "VALUE_TYPES",
    "SteeringAnalysis",
    "Thresholds",
    "analyze",
    "baseline_table",
    "bootstrap_delta",
    "classify_pair",
    "findings",
    "latin_square_summary",
    "multi_value_shifts",
    "pair_composition",
    "pair_summary",
    "plot_target_calibration",
    "profile_fit",
    "refusal_table",
    "render_report",
    "shift_table",
    "steerability",
    "target_table",
    "write_report",
]
