"""Benchmark: building a 10,000-text value with ``build_vidb`` and the simulated judge.

Measures the wall time of everything except the judge calls (window design, Plackett–Luce
fit with standard errors, calibration, flags, frame building and writing to a workspace) and
the peak resident memory of the process, against the goal of <= 10 s and <= 1 GB on a 2-core
machine, and reports the simulated judge's own time separately. A 1,000-text build in the
same run is the baseline for the scaling ratio.

Memory is the peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``), so it counts what DuckDB
allocates natively beside Python and numpy (tracemalloc sees only the latter). Each build
runs in a fresh process, so one build's peak is not another's: ``peak RSS`` is that process's
peak (interpreter, imports and data included), ``build RSS`` how far the build raised it.

    python benchmarks/bench_vidb_build.py [--n 10000] [--judges 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
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


def _max_rss_mb() -> float:
    """The process's peak resident set size so far, in MB (KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def run(n: int, n_judges: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    texts = [f"Benchmark text number {i}, written for the VIDB build." for i in range(n)]
    truth = rng.uniform(-10, 10, n)
    table = dict(zip(texts, truth, strict=True))
    table.update({t: 0.0 for t in NEUTRAL_ANCHOR_TEXTS})
    judges = [TimedJudge(SimulatedTextJudge(table, beta=0.5, seed=j, name=f"sim{j}"))
              for j in range(n_judges)]
    with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws.duckdb") as ws:
        rss_before = _max_rss_mb()
        t0 = time.perf_counter()
        res = build_vidb(texts, ["benevolence"], judges, config=BuildConfig(k=4, r=6),
                         workspace=ws)
        total = time.perf_counter() - t0
        rss_after = _max_rss_mb()
    judge_s = sum(j.seconds for j in judges)
    est = res.items.set_index("text").loc[texts, "intensity"].to_numpy()
    return {"n": n, "judges": n_judges, "total_s": total, "judge_s": judge_s,
            "build_s": total - judge_s, "peak_rss_mb": rss_after,
            "build_rss_mb": rss_after - rss_before, "windows": res.reports[0].n_windows,
            "spearman": float(spearmanr(est, truth).statistic)}


def run_fresh(n: int, n_judges: int) -> dict[str, float]:
    """:func:`run` in a new process, after a small warm-up build there (imports, DuckDB,
    first-call costs), so its time and peak RSS are its own."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        pool.submit(run, 200, 1).result()
        return pool.submit(run, n, n_judges).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--judges", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args()
    base = run_fresh(1_000, 1)
    rows = [base] + [run_fresh(args.n, nj) for nj in args.judges]
    print(f"{'texts':>6} {'judges':>6} {'windows':>7} {'build s':>8} {'judge s':>8} "
          f"{'vs goal':>8} {'vs 1k':>6} {'peak RSS':>8} {'build RSS':>9} {'spearman':>8}")
    for r in rows:
        print(f"{r['n']:>6} {r['judges']:>6} {r['windows']:>7} {r['build_s']:>8.2f} "
              f"{r['judge_s']:>8.2f} {r['build_s'] / GOAL_S:>8.2f} "
              f"{r['build_s'] / base['build_s']:>6.1f} {r['peak_rss_mb']:>8.0f} "
              f"{r['build_rss_mb']:>9.0f} {r['spearman']:>8.3f}")
    print(f"build s: window design + Plackett–Luce (+SE, +per-judge fits) + calibration + "
          f"flags + workspace write, judge calls excluded; goal {GOAL_S:.0f} s / "
          f"{GOAL_MB:.0f} MB peak RSS.")
    print("peak RSS (MB): the build's process at its peak, native memory (DuckDB) included; "
          "build RSS: how far the build raised it above the peak before it.")


if __name__ == "__main__":
    main()
