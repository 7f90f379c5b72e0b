"""Plots of a steering analysis (matplotlib, Agg backend; imported only when plotting)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "figure_png",
    "plot_composition",
    "plot_delta_heatmap",
    "plot_dose_response",
    "plot_latin_square",
]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _short(v: str) -> str:
    return v.split(":", 1)[-1].replace("_", " ")


def figure_png(fig: Any, *, base64_encode: bool = False, dpi: int = 110) -> bytes | str:
    """The figure as PNG bytes (or a base64 string); closes the figure."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    return base64.b64encode(data).decode("ascii") if base64_encode else data


def plot_delta_heatmap(shifts: pd.DataFrame, model: str, regime: str = "intensity") -> Any:
    """Δ heatmap: values (rows) × levels (columns) for one model and regime."""
    plt = _plt()
    d = shifts[(shifts["model"] == model) & (shifts["regime"] == regime)]
    table: Any = d.pivot_table(index="value", columns="level", values="delta")
    fig, ax = plt.subplots(figsize=(1.2 * max(3, table.shape[1]) + 2,
                                    0.45 * max(2, table.shape[0]) + 1.5))
    if not table.size:  # nothing scored (a failed run): say so instead of an empty image
        ax.text(0.5, 0.5, "no scores", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(f"Δ from the unsteered default — {model} ({regime})")
        return fig
    lim = max(1.0, float(np.nanmax(np.abs(table.to_numpy()))))
    im = ax.imshow(table.to_numpy(dtype=float), cmap="RdBu_r", vmin=-lim, vmax=lim,
                   aspect="auto")
    ax.set_xticks(range(table.shape[1]), [f"{int(c):+d}" for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [_short(v) for v in table.index])
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            x = table.iat[i, j]
            if np.isfinite(x):
                ax.text(j, i, f"{x:+.1f}", ha="center", va="center", fontsize=8)
    ax.set_xlabel("target level")
    ax.set_title(f"Δ from the unsteered default — {model} ({regime})")
    fig.colorbar(im, ax=ax, label="Δ intensity")
    return fig


def plot_dose_response(shifts: pd.DataFrame, baseline: pd.DataFrame, model: str,
                       regime: str = "intensity") -> Any:
    """Mean achieved intensity per level with 90% intervals, one line per value; the
    unsteered default as a dotted line."""
    plt = _plt()
    d: Any = shifts[(shifts["model"] == model) & (shifts["regime"] == regime)]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (v, g) in enumerate(d.groupby("value")):
        g = g.sort_values("level")
        c = colors[i % len(colors)]
        lo = (g["mean"] - g["mean_low"]).clip(lower=0).fillna(0)
        hi = (g["mean_high"] - g["mean"]).clip(lower=0).fillna(0)
        ax.errorbar(g["level"], g["mean"], yerr=[lo, hi], marker="o", capsize=3, color=c,
                    label=_short(str(v)))
        b = baseline[(baseline["model"] == model) & (baseline["value"] == v)]
        if len(b):
            ax.axhline(float(b["mean"].iloc[0]), color=c, ls=":", lw=1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("target level (dotted: unsteered default)")
    ax.set_ylabel("achieved intensity")
    ax.set_title(f"Dose–response — {model} ({regime})")
    ax.legend(fontsize=8, ncol=2)
    return fig


def plot_composition(pairs: pd.DataFrame, model: str) -> Any:
    """Pair composition: per pair condition, the target direction (dashed, scaled to the
    achieved length) and the achieved shift vector (Δa, Δb), in the plane of the two values."""
    plt = _plt()
    d = pairs[pairs["model"] == model]
    groups = list(d.groupby(["value_a", "value_b"]))
    n = max(1, len(groups))
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ((va, vb), g) in zip(axes[0], groups, strict=False):
        lim = 1.0
        for i, r in enumerate(g.to_dict("records")):
            c = colors[i % len(colors)]
            dx, dy = r["delta_a"], r["delta_b"]
            if not (np.isfinite(dx) and np.isfinite(dy)):
                continue
            t = np.array([r["level_a"], r["level_b"]], dtype=float)
            scale = np.hypot(dx, dy) / max(np.hypot(*t), 1e-9)
            ax.annotate("", xy=tuple(t * scale), xytext=(0, 0),
                        arrowprops={"arrowstyle": "->", "color": c, "ls": "--", "alpha": 0.5})
            ax.annotate("", xy=(dx, dy), xytext=(0, 0),
                        arrowprops={"arrowstyle": "-|>", "color": c, "lw": 2})
            ax.text(dx, dy, f" ({r['level_a']:+d},{r['level_b']:+d}) {r['label']}", fontsize=7,
                    color=c)
            lim = max(lim, abs(dx), abs(dy))
        lim *= 1.3
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel(f"Δ {_short(str(va))}")
        ax.set_ylabel(f"Δ {_short(str(vb))}")
        ax.set_aspect("equal")
        ax.set_title("achieved (solid) vs target direction (dashed)", fontsize=9)
    fig.suptitle(f"Pair composition — {model}")
    return fig


def plot_latin_square(latin: pd.DataFrame, model: str) -> Any:
    """Five-value design: Δ of each value in each set, bars coloured by target level."""
    plt = _plt()
    d = latin[latin["model"] == model]
    sets = sorted(d["set"].unique())
    values = list(dict.fromkeys(d.sort_values("position")["value"]))
    fig, ax = plt.subplots(figsize=(1.6 * len(sets) + 3, 4.2))
    cmap = plt.get_cmap("RdBu_r")
    width = 0.8 / max(1, len(values))
    for j, v in enumerate(values):
        for i, s in enumerate(sets):
            r = d[(d["set"] == s) & (d["value"] == v)]
            if not len(r):
                continue
            lv, dv = int(r["level"].iloc[0]), float(r["delta"].iloc[0])
            ax.bar(i + j * width, dv, width, color=cmap((lv + 2) / 4), edgecolor="black",
                   lw=0.4)
            ax.text(i + j * width, dv, f"{lv:+d}", ha="center",
                    va="bottom" if dv >= 0 else "top", fontsize=7)
    ax.set_xticks([i + width * (len(values) - 1) / 2 for i in range(len(sets))], sets)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("Δ intensity")
    ax.set_title(f"Five-value design — {model} (bars: " + ", ".join(map(_short, values))
                 + "; labels: target level)", fontsize=9)
    return fig
