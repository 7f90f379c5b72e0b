"""Register-held-out validation of the local judge on our own seed VIDB (run on demand).

Random cross-validation on texts we wrote decides nothing: they share one author and, within a
register, one style. Here the seed's registers (phrase, action, title, opinion, question,
social, news, dialogue, assistant, long, and the first seed's v1-sentences / v1-responses) are
split into ``--groups`` groups; for each group a judge is fine-tuned on every other register
and tested on the group's registers only, so every register is scored by a model that never
saw it. ``--groups 12`` is leave-one-register-out (twelve fine-tunings: a GPU job); the default
2 fits a 2-core CPU. The frozen-base baseline (the same value heads by ridge on the base
MiniLM) is fitted on the same split.

Writes per-register metrics and the out-of-register predictions (``--out DIR``:
``metrics.json``, ``predictions.csv``); the predictions are what the shipped judge's
split-conformal interval widths are calibrated on
(``valueflow.embed.write_shipped_judge(..., calibration=DIR/predictions.csv)``).

    python benchmarks/bench_register_heldout.py --out /tmp/heldout [--groups 2] [--members 3] \
        [--epochs 3] [--train-layers 4] [--off-weight 0.2] [--pair-weight W] [--rank-weight W] [--stance none]

With ``--members K`` each group's judge is the weight average (``average_finetunes``) of K
fine-tunings (seeds ``--train-seed`` .. +K-1, in ``model-<g>/m<i>``; finished members are kept
on a rerun), as the shipped judge is.

The training side is :func:`valueflow.vidb._seed.judge_training_frame` (the seed with its
minimal-pair ids and, with ``--stance train``, the stance pairs of the training values)
without the held-out registers; the test side is the seed's held-out registers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def register_groups(registers: list[str], n: int, seed: int = 0) -> list[list[str]]:
    """``registers`` dealt into ``n`` groups (seeded order)."""
    rng = np.random.default_rng(seed)
    order = [registers[i] for i in rng.permutation(len(registers))]
    return [sorted(order[g::n]) for g in range(n)]


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    d = y != 0
    return {"n": float(len(y)), "spearman": float(spearmanr(y, pred)[0]),
            "sign_acc": float(np.mean(np.sign(pred[d]) == np.sign(y[d]))),
            "rmse": float(np.sqrt(np.mean((y - pred) ** 2)))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-layers", type=int, default=4)
    ap.add_argument("--off-weight", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0, help="seed of the register grouping")
    ap.add_argument("--members", type=int, default=1,
                    help="fine-tunings per group with seeds TRAIN_SEED, TRAIN_SEED+1, ...: "
                         "the group's judge is their weight average (the shipped judge: 3)")
    ap.add_argument("--train-seed", type=int, default=None,
                    help="seed of the fine-tuning (default: --seed); fine-tunings to be "
                         "averaged share the grouping and differ here")
    ap.add_argument("--pair-weight", type=float, default=None,
                    help="weight of the pairwise stance loss (default: the shipped recipe's)")
    ap.add_argument("--rank-weight", type=float, default=None,
                    help="weight of the within-value ranking loss (default: the shipped recipe's)")
    ap.add_argument("--stance", choices=["train", "none"], default="none",
                    help="train: also train on the stance pairs of all but the STANCE_HELDOUT "
                         "values (their held-out registers are left out like the seed's); "
                         "none: the shipped recipe")
    ap.add_argument("--neutral", action="store_true",
                    help="also train every head to 0 on the everyday value-free texts")
    args = ap.parse_args(argv)

    import pandas as pd

    from valueflow.embed import load_hives
    from valueflow.embed._finetune import FineTuneConfig, average_finetunes, finetune_encoder
    from valueflow.embed._judge import ValueJudge
    from valueflow.embed._shipped import load_judge_dir
    from valueflow.embed._validity import score_by_value
    from valueflow.vidb import load_seed
    from valueflow.vidb._seed import judge_training_frame, load_neutral_texts, seed_registers

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seed = load_seed()
    reg = seed_registers(seed)
    pool = judge_training_frame(args.stance)
    neutral = load_neutral_texts()["text"].astype(str).tolist() if args.neutral else []
    groups = register_groups(sorted(set(reg)), args.groups, args.seed)
    first = args.seed if args.train_seed is None else args.train_seed
    rows = []
    for g, held in enumerate(groups):
        test = reg.isin(held).to_numpy()
        train = pool[~pool["register"].isin(held)].reset_index(drop=True)
        folder = out / f"model-{g}"
        print(f"# group {g}: holding out {', '.join(held)} ({test.sum()} texts); training on "
              f"{len(train)}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        subs = [folder] if args.members == 1 else [folder / f"m{i}" for i in range(args.members)]
        for i, sub in enumerate(subs):
            cfg = FineTuneConfig(rank=16, alpha=32, epochs=args.epochs,
                                 train_layers=args.train_layers, off_weight=args.off_weight,
                                 hier_weight=0.1, seed=first + i)
            if args.pair_weight is not None:
                cfg.pair_weight = args.pair_weight
            if args.rank_weight is not None:
                cfg.rank_weight = args.rank_weight
            if not (sub / "heads.npz").is_file():
                finetune_encoder(train, sub, cfg, neutral=neutral)
        if args.members > 1:
            average_finetunes(subs, folder)
        tuned = load_judge_dir(folder)
        base = ValueJudge.untrained(load_hives("base")).refit(
            train.drop(columns=["pair", "register"]))
        print(f"# group {g}: trained in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        part = seed[test]
        for name, judge in (("local", tuned), ("base-heads", base)):
            pred = score_by_value(judge, part)
            rows.append(pd.DataFrame({"judge": name, "register": reg[test].to_numpy(),
                                      "value": part["value"].to_numpy(),
                                      "text": part["text"].to_numpy(),
                                      "intensity": part["intensity"].to_numpy(float),
                                      "pred": pred}))
    preds = pd.concat(rows, ignore_index=True)
    preds.to_csv(out / "predictions.csv", index=False)
    result: dict[str, dict[str, dict[str, float]]] = {}
    for (judge, register), g in preds.groupby(["judge", "register"]):
        result.setdefault(judge, {})[register] = metrics(g["intensity"].to_numpy(),
                                                         g["pred"].to_numpy())
    for judge, g in preds.groupby("judge"):
        result[judge]["ALL"] = metrics(g["intensity"].to_numpy(), g["pred"].to_numpy())
    (out / "metrics.json").write_text(json.dumps({"groups": groups, "metrics": result},
                                                 indent=2), encoding="utf-8")
    print("| register | local Spearman | local sign | base-heads Spearman | base-heads sign |")
    print("|---|---|---|---|---|")
    for register in sorted(result["local"]):
        a, b = result["local"][register], result["base-heads"][register]
        print(f"| {register} | {a['spearman']:.3f} | {a['sign_acc']:.3f} | "
              f"{b['spearman']:.3f} | {b['sign_acc']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
