"""VIDB scale: fit Plackett–Luce utilities to pairwise comparisons, against choix.

Design (issue 4, benchmark 1): 10,000 items with utilities drawn from N(0, 1.5²), 100,000
pairwise comparisons between uniformly drawn distinct pairs, the winner drawn from the
Bradley–Terry model. Compared, in the same run:

* ``fit_plackett_luce`` (sparse Newton–CG, the default; and L-BFGS-B), MAP with prior
  variance 10;
* ``choix.opt_pairwise`` (Newton-CG with a dense Hessian) with ``alpha = 1 / (2 · 10)``,
  which is exactly the same MAP objective (choix penalises ``alpha · Σ u²``);
* ``choix.ilsr_pairwise`` (iterative Luce spectral ranking) with ``alpha = 0.01``.

Reported: wall time, speed-up against ``opt_pairwise``, Spearman correlation with the true
utilities, and the largest difference from ``opt_pairwise``'s estimate.

Run: ``python benchmarks/bench_pl_fit.py [--n-items 10000] [--n-pairs 100000] [--no-ilsr]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import spearmanr

from valueflow.ranking import fit_plackett_luce

PRIOR_VAR = 10.0


def simulate(n_items: int, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 1.5, n_items)
    a = rng.integers(0, n_items, n_pairs)
    b = (a + rng.integers(1, n_items, n_pairs)) % n_items  # distinct from a
    win = rng.random(n_pairs) < 1.0 / (1.0 + np.exp(-(u[a] - u[b])))
    pairs = np.where(win[:, None], np.stack([a, b], 1), np.stack([b, a], 1))
    return u, pairs


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=10_000)
    parser.add_argument("--n-pairs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ilsr", action="store_true", help="skip choix.ilsr_pairwise")
    args = parser.parse_args()
    import choix

    # Warm-up on a tiny problem so that no method pays first-call costs in the timings.
    _, small = simulate(50, 500, 1)
    fit_plackett_luce(small, 50, return_se=True)
    choix.opt_pairwise(50, [tuple(int(x) for x in p) for p in small])
    truth, pairs = simulate(args.n_items, args.n_pairs, args.seed)
    data = [tuple(int(x) for x in p) for p in pairs]
    rows: list[tuple[str, float, np.ndarray]] = []

    est, t = timed(lambda: fit_plackett_luce(pairs, args.n_items, prior_var=PRIOR_VAR))
    rows.append(("valueflow newton", t, est))
    est, t = timed(
        lambda: fit_plackett_luce(pairs, args.n_items, prior_var=PRIOR_VAR, method="lbfgs")
    )
    rows.append(("valueflow lbfgs", t, est))
    est, t = timed(lambda: fit_plackett_luce(data, args.n_items, prior_var=PRIOR_VAR))
    rows.append(("valueflow newton (tuples)", t, est))
    res, t = timed(lambda: fit_plackett_luce(pairs, args.n_items, return_se=True))
    rows.append(("valueflow newton + SEs", t, res.utilities))
    est, t = timed(lambda: choix.opt_pairwise(args.n_items, data, alpha=1.0 / (2.0 * PRIOR_VAR)))
    rows.append(("choix opt_pairwise", t, est))
    opt_time, opt_est = t, est
    if not args.no_ilsr:
        est, t = timed(lambda: choix.ilsr_pairwise(args.n_items, data, alpha=0.01))
        rows.append(("choix ilsr_pairwise", t, est))

    print(f"{args.n_items} items, {args.n_pairs} pairwise comparisons")
    print(f"{'method':<28} {'time (s)':>9} {'× vs opt':>9} {'spearman':>9} {'max|Δ opt|':>11}")
    for name, t, est in rows:
        rho = spearmanr(est, truth)[0]
        diff = np.max(np.abs((est - est.mean()) - (opt_est - opt_est.mean())))
        print(f"{name:<28} {t:9.2f} {opt_time / t:9.1f} {rho:9.4f} {diff:11.2e}")


if __name__ == "__main__":
    main()
