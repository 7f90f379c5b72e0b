"""Benchmark: building a 10,000-text value with ``build_vidb`` and the simulated judge.

Measures the wall time and peak memory of everything except the judge calls (window
schedule, Plackett–Luce fit with standard errors, calibration, flags, frame building and
writing to a workspace), against the goal of <= 10 s and <= 1 GB on a 2-core machine, and
reports the simulated judge's own time separately. A 1,000-text build in the same run is
the baseline for the scaling ratio.

    python benchmarks/bench_vidb_build.py [--n 10000] [--judges 1]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from valueflow.judges import SimulatedTextJudge
from valueflow.vidb import NEUTRAL_ANCHOR_TEXTS, BuildConfig, build_vidb
from valueflow.workspace import Workspace

GOAL_S = 10.0
GOAL_MB = 1024.0


class TimedJudge:
    """Wraps a judge and adds up the time spent inside its calls."""

    def __init__(self, judge: SimulatedTextJudge) -> None:
        self.judge, self.name, self.seconds = judge, judge.name, 0.0

    async def rank(self, value, texts):  # type: ignore[no-untyped-def]
        return await self.judge.rank(value, texts)

    async def rank_many(self, value, windows, *, progress=False):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = await self.judge.rank_many(value, windows)
        self.seconds += time.perf_counter() - t
        return out


def run(n: int, n_judges: int, trace: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    texts = [f"Benchmark text number {i}, written for the VIDB build." for i in range(n)]
    truth = rng.uniform(-10, 10, n)
    table = dict(zip(texts, truth, strict=True))
    table.update({t: 0.0 for t in NEUTRAL_ANCHOR_TEXTS})
    judges = [TimedJudge(SimulatedTextJudge(table, beta=0.5, seed=j, name=f"sim{j}"))
              for j in range(n_judges)]
    with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws.duckdb") as ws:
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        res = build_vidb(texts, ["benevolence"], judges, config=BuildConfig(k=4, r=6),
                         workspace=ws)
        total = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else float("nan")
        if trace:
            tracemalloc.stop()
    judge_s = sum(j.seconds for j in judges)
    est = res.items.set_index("text").loc[texts, "intensity"].to_numpy()
    return {"n": n, "judges": n_judges, "total_s": total, "judge_s": judge_s,
            "build_s": total - judge_s, "peak_mb": peak,
            "windows": res.reports[0].n_windows,
            "spearman": float(spearmanr(est, truth).statistic)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--judges", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args()
    rows = []
    run(200, 1, trace=False)  # warm-up: imports, DuckDB, first-call costs
    base = run(1_000, 1, trace=False)
    rows.append(base)
    for nj in args.judges:
        row = run(args.n, nj, trace=False)
        row["peak_mb"] = run(args.n, nj, trace=True)["peak_mb"]
        rows.append(row)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'texts':>6} {'judges':>6} {'windows':>7} {'build s':>8} {'judge s':>8} "
          f"{'vs goal':>8} {'vs 1k':>6} {'peak MB':>8} {'spearman':>8}")
    for r in rows:
        print(f"{r['n']:>6} {r['judges']:>6} {r['windows']:>7} {r['build_s']:>8.2f} "
              f"{r['judge_s']:>8.2f} {r['build_s'] / GOAL_S:>8.2f} "
              f"{r['build_s'] / base['build_s']:>6.1f} {r['peak_mb']:>8.0f} {r['spearman']:>8.3f}")
    print(f"build s: schedule + Plackett–Luce (+SE, +per-judge fits) + calibration + flags + "
          f"workspace write, judge calls excluded; goal {GOAL_S:.0f} s / {GOAL_MB:.0f} MB.")
    print(f"peak MB: tracemalloc peak of Python/numpy allocations during the build; process "
          f"max RSS (everything, all runs) {rss:.0f} MB.")


if __name__ == "__main__":
    main()
