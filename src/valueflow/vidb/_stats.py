"""Summaries of a VIDB: counts per value, intensity histograms, and a plot of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HIST_EDGES", "plot_vidb_histograms", "vidb_stats"]

#: Histogram bin edges over the intensity scale (ten bins of width 2).
HIST_EDGES = np.linspace(-10.0, 10.0, 11)


def vidb_stats(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Per-value summary rows: n, mean, sd, min, max, direction counts, histogram counts."""
    rows = []
    for value, g in df.groupby("value", sort=True):
        x = g["intensity"].to_numpy(dtype=float)
        hist, _ = np.histogram(np.clip(x, -10, 10), bins=HIST_EDGES)
        dirs: Any = g["direction"].value_counts() if "direction" in g else {}
        rows.append(
            {
                "value": value,
                "n": len(g),
                "mean": round(float(x.mean()), 3),
                "sd": round(float(x.std(ddof=1)), 3) if len(x) > 1 else 0.0,
                "min": float(x.min()),
                "max": float(x.max()),
                "supports": int(dirs.get("supports", 0)),
                "neutral": int(dirs.get("neutral", 0)),
                "opposes": int(dirs.get("opposes", 0)),
                "histogram": [int(h) for h in hist],
            }
        )
    return rows


def plot_vidb_histograms(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Small-multiple intensity histograms, one panel per value, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = sorted(df["value"].unique())
    n = max(len(values), 1)
    cols = min(6, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows), squeeze=False,
                             sharex=True)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, value in zip(axes.flat, values, strict=False):
        x = df.loc[df["value"] == value, "intensity"].to_numpy(dtype=float)
        ax.hist(x, bins=HIST_EDGES, color="#4C72B0", edgecolor="white")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"{value} (n={len(x)})", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.supxlabel("intensity", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
