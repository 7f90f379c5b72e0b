"""Steering to a target intensity on the bundled SmolLM2-135M, offline, measured by the local judge.

Issue 14's acceptance check. For each value (default: benevolence and power):

* **dose–response**: the pilot sweep of activation coefficients, one answer per pilot
  question and coefficient; Spearman between the coefficient and the mean measured intensity,
  over every swept coefficient and over the calibrated (fluent) range only;
* **targets**: ``steer_to_target`` for every target in {-6, -3, 0, +3, +6} on ``--questions``
  bundled questions, at most ``--budget`` candidates each; hit = the chosen answer within
  ±``--tolerance``. The chosen answer is selected among candidates by the same judge, so its
  hit rate flatters a noisy judge; the single-answer hit rate (the share of first-round
  answers, all at the calibrated setting, within the tolerance) involves no selection.

Baselines, in the same run on the same model and questions: the prompt regime (the value's
level instructions -2..+2, calibrated and searched the same way) and the persona regime
(persona prompts -2..+2: someone who holds the value to that degree). Ratios are activation ÷
prompt hit rates.

Everything is stored in the ``--workspace`` (default: a fresh one under /tmp), so an
interrupted run resumes.

Run: ``python benchmarks/bench_steer_target.py [--values benevolence power] [--questions 4]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

TARGETS = (-6.0, -3.0, 0.0, 3.0, 6.0)
SWEEP = (-2.0, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", nargs="+", default=["benevolence", "power"])
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=2.0)
    ap.add_argument("--pilot-queries", type=int, default=8)
    ap.add_argument("--workspace", default="/tmp/vf-bench-steer/workspace.duckdb")
    ap.add_argument("--skip-prompt", action="store_true", help="Skip the prompt baseline.")
    ap.add_argument("--regimes", nargs="+", default=["activation", "prompt", "persona"],
                    choices=["activation", "prompt", "persona"])
    ap.add_argument("--out", default=None, help="Write the results as JSON here.")
    args = ap.parse_args()

    from valueflow.llm import get_backend
    from valueflow.steer import steer_to_target
    from valueflow.steer._calibrate import spearman
    from valueflow.workspace import open_workspace

    backend = get_backend("hf/smollm2")
    report: dict = {"judge": "local", "model": "hf/smollm2", "targets": list(TARGETS),
                    "tolerance": args.tolerance, "budget": args.budget, "values": {}}
    with open_workspace(args.workspace) as ws:
        for value in args.values:
            row: dict = {}
            for regime in args.regimes:
                if regime == "prompt" and args.skip_prompt:
                    continue
                settings = {"regime": regime, "tolerance": args.tolerance, "n": args.n,
                            "budget": args.budget, "pilot_queries": args.pilot_queries,
                            "coefficients": list(SWEEP)}
                hits, errs, n_cand, first, cal = [], [], [], [], None
                t0 = time.perf_counter()
                for target in TARGETS:
                    res = steer_to_target(backend, {value: target}, ws, queries=args.questions,
                                          settings=settings, progress=False)
                    cal = next(iter(res.calibrations.values()))
                    hits += [o.hit for o in res.outcomes]
                    errs += [e for o in res.outcomes for e in o.error.values()]
                    n_cand += [o.n_candidates for o in res.outcomes]
                    first += [o.first_round_hits for o in res.outcomes
                              if o.first_round_hits is not None]
                    print(f"{value} {regime} target {target:+.0f}: hit "
                          f"{np.mean([o.hit for o in res.outcomes]):.0%}, measured "
                          + ", ".join(f"{o.measured[next(iter(o.measured))][0]:+.1f}"
                                      for o in res.outcomes if o.measured), flush=True)
                assert cal is not None
                pts = cal.points
                x, y = np.asarray(pts["setting"]), np.asarray(pts["intensity"])
                settings_all = np.unique(x)
                means = np.array([y[x == s].mean() for s in settings_all])
                lo, hi = cal.calibrated_range
                inside = (settings_all >= lo) & (settings_all <= hi)
                row[regime] = {
                    "spearman_all": round(spearman(settings_all, means), 3),
                    "n_settings_all": int(settings_all.size),
                    "spearman_calibrated": round(spearman(settings_all[inside], means[inside]), 3)
                    if inside.sum() > 1 else None,
                    "n_settings_calibrated": int(inside.sum()),
                    "calibrated_range": [lo, hi],
                    "curve_reaches": [round(v, 2) for v in cal.curve.range],
                    "mean_by_setting": {f"{s:g}": round(float(m), 2)
                                        for s, m in zip(settings_all, means, strict=True)},
                    "hit_rate": round(float(np.mean(hits)), 3),
                    "single_answer_hit_rate": round(float(np.mean(first)), 3),
                    "rmse": round(float(np.sqrt(np.mean(np.square(errs)))), 2),
                    "mean_candidates": round(float(np.mean(n_cand)), 2),
                    "seconds": round(time.perf_counter() - t0, 1)}
                print(json.dumps({value: {regime: row[regime]}}), flush=True)
            if "prompt" in row and "activation" in row and row["prompt"]["hit_rate"] > 0:
                row["hit_rate_ratio_activation_over_prompt"] = round(
                    row["activation"]["hit_rate"] / row["prompt"]["hit_rate"], 2)
            report["values"][value] = row
    all_hits = [r["activation"]["hit_rate"] for r in report["values"].values()
                if "activation" in r]
    if all_hits:
        report["activation_hit_rate_overall"] = round(float(np.mean(all_hits)), 3)
    print(json.dumps(report, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
