"""Profiles of groups with a known answer: equal against relevance weighting (on demand).

``valueflow profile`` weighs each text on a value by how much the local judge says it is about
that value (``--weighting auto``/``relevance``) or counts all texts alike (``equal``). Real
checks (``bench_profile_check.py``) have few texts and a debatable answer, so this builds
groups whose answer is known from labelled texts: per value, group A = ``n`` texts labelled
positive on it (intensity ≥ 2) plus ``m`` random texts labelled with other values, group B =
``n`` texts labelled negative on it plus ``m`` others. Per weighting it reports how often A
comes out above B on the value (right), how often clearly (the 90 % bootstrap interval of the
difference above 0, as ``profile_contrast`` computes it), and the share of values not linked
to it by an anchor on which A and B differ clearly (false alarms: the groups were drawn alike
there, apart from what their texts of the value also say).

Data: the six registers of another hand in ``tests/embed/data/unseen_registers.csv`` (default;
texts we did not train on) and, with ``--vidb-fewshot FILE``, the reference's 640 real VIDB
texts (``all_few_shot.json``, fetched by the user, never committed).

    python benchmarks/bench_profile_known.py [--vidb-fewshot all_few_shot.json] \\
        [--mixes 5+0,5+15,3+20] [--draws 4] [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np


def known_answer_trials(scores: np.ndarray, weights: dict[str, np.ndarray], values: list[str],
                        labels: np.ndarray, y: np.ndarray, linked: dict[str, Any],
                        n_own: int, n_mix: int, draws: int, seed: int = 0
                        ) -> dict[str, dict[str, float]]:
    """Right / clear / false-alarm rates per weighting over ``draws`` group pairs per value."""
    from valueflow.embed._validity import profile_contrast

    rng = np.random.default_rng(seed)
    tally = {w: np.zeros(3) for w in weights}
    trials = 0
    for rep in range(draws):
        for k, v in enumerate(values):
            pos = np.flatnonzero((labels == v) & (y >= 2))
            neg = np.flatnonzero((labels == v) & (y <= -2))
            other = np.flatnonzero(labels != v)
            if len(pos) < n_own or len(neg) < n_own or len(other) < 2 * n_mix:
                continue
            a = np.r_[rng.choice(pos, n_own, replace=False), rng.choice(other, n_mix, replace=False)]
            b = np.r_[rng.choice(neg, n_own, replace=False), rng.choice(other, n_mix, replace=False)]
            unlinked = [i for i, u in enumerate(values) if u != v and u not in linked.get(v, ())]
            trials += 1
            for name, w in weights.items():
                c = profile_contrast(scores[a], w[a], scores[b], w[b], n_boot=400, seed=rep)
                clear_other = (c["low"][unlinked] > 0) | (c["high"][unlinked] < 0)
                tally[name] += [c["diff"][k] > 0, c["low"][k] > 0, clear_other.mean()]
    return {name: {"right": t[0] / max(trials, 1), "clear": t[1] / max(trials, 1),
                   "false_clear": t[2] / max(trials, 1), "trials": trials}
            for name, t in tally.items()}


def main(argv: list[str] | None = None) -> int:
    from valueflow.embed import load_local_scorer
    from valueflow.embed._profile import relevance_weight
    from valueflow.embed._scorer import _linked_values
    from valueflow.embed._validity import load_reference_fewshot

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vidb-fewshot", help="the reference's all_few_shot.json (real VIDB texts)")
    ap.add_argument("--mixes", default="5+0,5+15,3+20",
                    help="n+m: texts of the value per group + texts of other values")
    ap.add_argument("--draws", type=int, default=4, help="group pairs per value and mix")
    ap.add_argument("--model", help="a local judge folder (default: the shipped one)")
    args = ap.parse_args(argv)
    try:
        mixes = [tuple(int(x) for x in m.split("+")) for m in args.mixes.split(",")]
    except ValueError:
        ap.error(f"--mixes {args.mixes!r}: give n+m pairs, e.g. 5+0,5+15")

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_validity import read_unseen_registers

    data = {"unseen registers": read_unseen_registers()}
    if args.vidb_fewshot:
        data["VIDB-640"] = load_reference_fewshot(args.vidb_fewshot).rename(
            columns={"target": "intensity"})
    judge = load_local_scorer(args.model) if args.model else load_local_scorer()
    values = list(judge.values_)
    linked = _linked_values()
    print("| texts | n + m | trials | equal: right / clear / false-clear | "
          "relevance: right / clear / false-clear |\n|---|---|---|---|---|")
    for name, frame in data.items():
        frame = frame[frame["value"].isin(values)].reset_index(drop=True)
        texts = frame["text"].astype(str).tolist()
        scores = judge.score_all(texts)  # columns in values_ order
        rel = relevance_weight(np.asarray(judge.relevance(texts, values), float))
        weights = {"equal": np.ones_like(scores), "relevance": rel}
        for n_own, n_mix in mixes:
            r = known_answer_trials(scores, weights, values, frame["value"].to_numpy(),
                                    frame["intensity"].to_numpy(float), linked,
                                    n_own, n_mix, args.draws)
            cells = [f"{r[w]['right']:.3f} / {r[w]['clear']:.3f} / {r[w]['false_clear']:.3f}"
                     for w in ("equal", "relevance")]
            print(f"| {name} ({len(frame)}) | {n_own} + {n_mix} | {r['equal']['trials']} | "
                  + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
