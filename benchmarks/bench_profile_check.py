"""Do two groups of real texts get the value profiles a reader would give them? (on demand)

The check of issue 12: the sayings of a famous humanitarian against lines of a classic treatise
on ruthless statecraft. A reader expects the first higher on benevolence and care/harm, the
second higher on power and achievement. Give the two groups' texts as files (one text per line
of a ``.txt``, or a ``text`` column of a ``.csv``, ``.jsonl`` or ``.parquet`` file);
they are read, never copied into the project. Any pair of groups and expectations works:
``--higher-a`` and ``--higher-b`` name the values each group should score higher on.

Profiles are computed as ``valueflow profile`` computes them: per group and value, the mean
intensity over the group's texts, each text weighted by how much it says about the value (the
local judge's relevance; judges without relevance heads weigh texts alike). Per value the
table gives both means, their difference with a 90 % bootstrap interval (texts resampled within
each group), whether the difference has the expected sign, and whether its interval excludes 0.
A value a group's texts say too little about (relevance weights summing to less than 0.5) is
unknown, as ``profile`` reports it, and counts as not right.

Judges: ``local`` (the shipped judge, or ``--model DIR``), ``base-heads`` (ridge heads on the
frozen base MiniLM, same seed; no relevance heads of its own beyond the refit), ``base-proto``
(the base MiniLM alone; no relevance, equal weights).

    python benchmarks/bench_profile_check.py sayings.txt treatise.txt \\
        [--names humanitarian,treatise] [--higher-a schwartz:benevolence,mft:care_harm] \\
        [--higher-b schwartz:power,schwartz:achievement] [--judges local,base-heads]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_HIGHER_A = "schwartz:benevolence,mft:care_harm"
DEFAULT_HIGHER_B = "schwartz:power,schwartz:achievement"


def read_texts(path: str) -> list[str]:
    """Texts of any file ``valueflow profile`` reads (a ``.txt`` holds one per line)."""
    from valueflow.tables import read_texts as read

    return read(path)["text"].tolist()


def make_judge(name: str, model: str | None) -> Any:
    if name == "local":
        from valueflow.embed import load_local_scorer

        return load_local_scorer(model) if model else load_local_scorer()
    if name == "base-heads":
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_validity import base_heads_judge

        return base_heads_judge()
    if name == "base-proto":
        from valueflow.embed._validity import PhrasingJudge

        return PhrasingJudge()
    sys.exit(f"unknown judge {name!r}: local, base-heads or base-proto")


def scores_and_weights(judge: Any, texts: list[str], values: list[str], weighting: str = "auto"
                       ) -> tuple[Any, Any]:
    """``n × k`` intensities and profile weights, as ``valueflow profile --weighting`` forms
    them (``auto``: relevance weights where the judge has relevance heads)."""
    import numpy as np

    from valueflow.embed._profile import relevance_weight

    s = np.column_stack([judge.score(texts, v)[:, 0] for v in values])
    if weighting == "auto" and hasattr(judge, "relevance"):
        return s, relevance_weight(np.asarray(judge.relevance(texts, values), float))
    return s, np.ones_like(s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("group_a", help="texts of the first group")
    ap.add_argument("group_b", help="texts of the second group")
    ap.add_argument("--names", default="humanitarian,treatise", help="the groups' names")
    ap.add_argument("--higher-a", default=DEFAULT_HIGHER_A,
                    help="values the first group should score higher on")
    ap.add_argument("--higher-b", default=DEFAULT_HIGHER_B,
                    help="values the second group should score higher on")
    ap.add_argument("--judges", default="local,base-heads,base-proto")
    ap.add_argument("--model", help="a local judge folder (default: the shipped judge)")
    ap.add_argument("--weighting", choices=("auto", "equal"), default="auto",
                    help="how texts count on a value, as in `valueflow profile`")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)

    from valueflow.embed._validity import profile_contrast
    from valueflow.theories import resolve_value

    names = [n.strip() for n in args.names.split(",")]
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        ap.error(f"--names takes two different names separated by a comma, got {args.names!r}")
    name_a, name_b = names
    expect = {resolve_value(v).id: +1 for v in args.higher_a.split(",") if v}
    expect.update({resolve_value(v).id: -1 for v in args.higher_b.split(",") if v})
    values = list(expect)
    texts_a, texts_b = read_texts(args.group_a), read_texts(args.group_b)
    results: dict[str, Any] = {}
    for jname in [j for j in args.judges.split(",") if j]:
        judge = make_judge(jname, args.model)
        sa, wa = scores_and_weights(judge, texts_a, values, args.weighting)
        sb, wb = scores_and_weights(judge, texts_b, values, args.weighting)
        c = profile_contrast(sa, wa, sb, wb, n_boot=args.boot)
        rows = []
        for j, v in enumerate(values):
            diff = float(c["diff"][j])  # NaN where a group says too little about v
            rows.append({"value": v, "expected": f"{name_a if expect[v] > 0 else name_b} higher",
                         name_a: float(c["a"][j]), name_b: float(c["b"][j]),
                         f"evidence_{name_a}": float(wa[:, j].sum()),
                         f"evidence_{name_b}": float(wb[:, j].sum()), "diff": diff,
                         "low": float(c["low"][j]), "high": float(c["high"][j]),
                         "known": bool(diff == diff), "right_sign": bool(diff * expect[v] > 0),
                         "clear": bool(c["low"][j] * expect[v] > 0 and c["high"][j] * expect[v]
                                       > 0)})
        results[jname] = rows
        print(f"\n{jname}: {len(texts_a)} {name_a} vs {len(texts_b)} {name_b} texts; right sign "
              f"on {sum(r['right_sign'] for r in rows)} of {len(rows)}, clearly on "
              f"{sum(r['clear'] for r in rows)}; unknown (a group says too little about the "
              f"value) on {sum(not r['known'] for r in rows)}")
        print(f"| value | expected | {name_a} (evidence) | {name_b} (evidence) | "
              "difference [90 % interval] | right sign |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['value']} | {r['expected']} | {r[name_a]:+.2f} "
                  f"({r[f'evidence_{name_a}']:.1f}) | {r[name_b]:+.2f} "
                  f"({r[f'evidence_{name_b}']:.1f}) | {r['diff']:+.2f} [{r['low']:+.2f}, "
                  f"{r['high']:+.2f}] | {'yes' if r['right_sign'] else 'no' if r['known'] else 'unknown'}"
                  f"{' (clear)' if r['clear'] else ''} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
