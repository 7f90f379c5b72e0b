"""Synthetic tidy steering results with known shifts and composition, built to order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

BEN, POW, UNI, SEC, TRA = (f"schwartz:{v}" for v in
                           ("benevolence", "power", "universalism", "security", "tradition"))

#: (baseline, Δ at each level) per value; types by construction.
TRUTH = {
    BEN: (0.0, {-2: -5.0, -1: -2.5, 0: 0.0, 1: 2.5, 2: 5.0}),   # bidirectional
    POW: (-1.0, {-2: 0.2, -1: 0.0, 0: 0.1, 1: -0.1, 2: 0.3}),  # hard to steer
    UNI: (0.0, {-2: -0.2, -1: 0.0, 0: 0.0, 1: 2.0, 2: 5.0}),    # polarity asymmetric
    SEC: (6.0, {-2: -6.0, -1: -3.0, 0: 0.0, 1: 0.2, 2: 0.3}),   # default bounded (ceiling)
    TRA: (0.0, {-2: -4.0, -1: -2.0, 0: 0.0, 1: 2.0, 2: 4.0}),
}
EXPECTED_TYPE = {BEN: "bidirectional", POW: "hard_to_steer", UNI: "polarity_asymmetric",
                 SEC: "default_bounded"}
NOISE = 0.5
N_Q = 30


def _rows(model, regime, targets, values, mean_of, rng, label=""):
    tg = json.dumps(dict(targets))
    cond = regime if not targets else (
        f"{regime}{'#' + label if label else ''}:" + ",".join(f"{v}={lv:+d}" for v, lv in targets))
    out = []
    for q in range(N_Q):
        for v in values:
            lv = dict(targets).get(v)
            out.append({"model": model, "regime": regime, "condition": cond, "targets": tg,
                        "n_targets": len(targets), "query_id": f"q{q}", "sample": 0,
                        "gen_key": f"{model}|{cond}|{q}", "refusal": q == 0 and lv == -2,
                        "value": v, "level": float("nan") if lv is None else float(lv),
                        "intensity": mean_of(v) + rng.normal(0, NOISE)})
    return out


def make_results(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    allv = list(TRUTH)
    for model in ("m1", "m2"):
        rows += _rows(model, "default", (), allv, lambda v: TRUTH[v][0], rng)
        for v in (BEN, POW, UNI, SEC):
            for lv in (-2, -1, 0, 1, 2):
                rows += _rows(model, "intensity", ((v, lv),), [v],
                              lambda _v, v=v, lv=lv: TRUTH[v][0] + TRUTH[v][1][lv], rng)
        # pairs: ben + uni add (achieved shifts track the targets); pow + ben compete
        # (benevolence wins, power is suppressed)
        for (la, lb) in ((2, 1), (2, 2), (1, 2)):
            rows += _rows(model, "pairs", ((BEN, la), (UNI, lb)), [BEN, UNI],
                          lambda v, la=la, lb=lb: TRUTH[v][0] + 2.0 * (la if v == BEN else lb),
                          rng)
            rows += _rows(model, "pairs", ((POW, la), (BEN, lb)), [POW, BEN],
                          lambda v, lb=lb: TRUTH[v][0] + (2.5 * lb if v == BEN else 0.0), rng)
        # five-value design: m1 — strongest dominates, negatives fade to neutral;
        # m2 — negatives reverse, and +1 targets overshoot the +2 target
        five = [BEN, UNI, SEC, TRA, POW]
        from valueflow.steer import latin_square

        for s, targets in enumerate(latin_square(five, [2, 1, 1, -1, -2])):
            t = dict(targets)
            if model == "m1":
                def f(v, t=t):
                    return (TRUTH[v][0] + (3.0 * t[v] if t[v] > 0 else 0.0))
            else:
                def f(v, t=t):
                    return (TRUTH[v][0] + (5.0 if t[v] == 1 else 2.0 if t[v] == 2
                                                                   else 2.5 * t[v]))
            rows += _rows(model, "latin_square", targets, five, f, rng, label=f"set{s + 1}")
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def results() -> pd.DataFrame:
    return make_results()
