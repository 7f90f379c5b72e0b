"""The judge-stability study: several judges × several prompt wordings, ranking vs rating."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valueflow.errors import ConfigError, DataError
from valueflow.evaluate._anchors import VIDBSource
from valueflow.evaluate._engine import Design
from valueflow.evaluate._score import estimate_score_cost, prepare_score, score_texts
from valueflow.evaluate._stability import METRICS, PAPER_TABLE, stability_metrics

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.workspace import Workspace

__all__ = ["estimate_study_cost", "plot_judge_stability", "study_judges"]


def _spec_seed(spec: str, paraphrase: int, seed: int) -> int:
    h = int.from_bytes(hashlib.sha256(spec.encode()).digest()[:4], "little")
    return (h + 7919 * paraphrase + seed) & 0x7FFFFFFF


def _check_study(data: pd.DataFrame, judges: Sequence[str], paraphrases: int) -> None:
    """The checks every study entry point makes before any judge is built."""
    from valueflow.judges import N_RANKING_PARAPHRASES, N_RATING_PARAPHRASES
    from valueflow.tables import require_columns

    require_columns(data, ["text", "value", "intensity"], source="the study data")
    if not judges:
        raise ConfigError("the study needs at least one judge", hint="--judge SPEC, repeatable")
    limit = min(N_RANKING_PARAPHRASES, N_RATING_PARAPHRASES)
    if not 1 <= paraphrases <= limit:
        raise ConfigError(f"--paraphrases must be 1..{limit}, got {paraphrases}",
                          hint=f"ValueFlow ships {limit} wordings of each prompt")
    if any(j == "local" for j in judges):
        raise ConfigError("the local scorer has no prompt or ranking to study",
                          hint="use LLM judge specs or sim/<beta>")


def _sim_beta(spec: str) -> float:
    _, _, tail = spec.partition("/")
    try:
        return float(tail) if tail else 1.0
    except ValueError:
        raise ConfigError(f"cannot read the judge sharpness in {spec!r}",
                          hint="write a simulated judge as sim or sim/<beta>, e.g. sim/0.5") from None


def study_judges(
    data: pd.DataFrame,
    judges: Sequence[str],
    *,
    paraphrases: int = 3,
    vidb: VIDBSource = "auto",
    k: int = 6,
    m: int = 3,
    design: Design = "adaptive",
    workspace: Workspace | None = None,
    seed: int = 0,
    progress: bool = True,
    sim_truth: Mapping[str, float] | None = None,
    sim_noise: float = 2.0,
    judge_options: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score texts with reference intensities by every judge and wording, both methods.

    Args:
        data: ``text``, ``value``, ``intensity`` (the reference).
        judges: Judge specs: LLM backend specs, or ``sim`` / ``sim/<beta>`` (simulated;
            ranking sharpness ``beta``, rating noise ``sim_noise``).
        paraphrases: How many wordings of each prompt (ranking and rating) to use.
        vidb, k, m, design: Anchors and windows for the ranking method (see
            :func:`score_texts`); a text is never its own anchor.
        workspace: Caches judge calls; a rerun resumes.
        seed: Seeds windows, display orders and simulated judges.
        progress: Show progress.
        sim_truth: Latent intensities for ``sim`` judges (default: the references plus
            the anchors' intensities).
        sim_noise: Noise of simulated raters.
        judge_options: Extra :func:`valueflow.judges.make_judge` options for LLM judges.

    Returns:
        ``(scores, metrics)``: the tidy score table and :func:`stability_metrics` of it.
    """
    import pandas as pd

    _check_study(data, judges, paraphrases)
    ref = pd.to_numeric(data["intensity"], errors="coerce")
    if ref.isna().any():
        raise DataError("the study data has missing or non-numeric intensities in row "
                        f"{int(ref.isna().to_numpy().argmax()) + 1}")
    frame = data[["text", "value"]].copy()
    frame["reference"] = ref.to_numpy(dtype=float)
    truth: dict[str, float] | None = None
    if any(j == "sim" or j.startswith("sim/") for j in judges):
        truth = dict(sim_truth) if sim_truth is not None else None
        if truth is None:
            from valueflow.evaluate._anchors import anchor_pools
            from valueflow.theories import resolve_value

            nodes = list({v.id: v for v in map(resolve_value, frame["value"].astype(str))
                          }.values())
            truth = {}
            for pool in anchor_pools(vidb, nodes, workspace=workspace).values():
                truth.update(zip(pool.texts, pool.intensities.tolist(), strict=True))
            truth.update(zip(frame["text"], frame["reference"], strict=True))
    parts = []
    last_error: str | None = None
    for spec in judges:
        for p in range(paraphrases):
            for method in ("ranking", "rating"):
                jseed = _spec_seed(spec, p, seed)
                if spec == "sim" or spec.startswith("sim/"):
                    opts: dict[str, Any] = {"truth": truth, "beta": _sim_beta(spec),
                                            "noise_sd": sim_noise, "seed": jseed}
                    judge: Any = "sim"
                else:
                    opts = {**dict(judge_options or {}), "paraphrase": p}
                    judge = spec
                out = score_texts(frame, judge=judge, vidb=vidb, value_column="value", k=k,
                                  m=m, design=design, method=method,  # type: ignore[arg-type]
                                  workspace=workspace, seed=seed, progress=progress,
                                  judge_options=opts)
                last_error = out.attrs.get("last_error") or last_error
                parts.append(pd.DataFrame({
                    "method": method, "judge": spec, "paraphrase": p,
                    "text": out["text"], "value": out["value"], "score": out["intensity"],
                    "low": out["low"], "high": out["high"],
                    "reference": frame["reference"].to_numpy(),
                }))
    scores = pd.concat(parts, ignore_index=True)
    scores.attrs["last_error"] = last_error  # why some scores are missing (NaN), if any
    return scores, stability_metrics(scores)


def estimate_study_cost(
    data: pd.DataFrame,
    judges: Sequence[str],
    *,
    paraphrases: int = 3,
    vidb: VIDBSource = "auto",
    k: int = 6,
    m: int = 3,
    design: Design = "adaptive",
    workspace: Workspace | None = None,
    seed: int = 0,
    judge_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """What :func:`study_judges` would spend, without calling anything (``--dry-run``).

    One row per LLM judge × wording × method with ``calls`` (cache hits excluded),
    ``cached``, ``prompt_tokens`` and ``max_completion_tokens``; simulated judges cost
    nothing and are left out. Inputs are validated as the study would.
    """
    import pandas as pd

    _check_study(data, judges, paraphrases)
    frame = data[["text", "value"]].copy()
    rows = []
    for spec in judges:
        if spec == "sim" or spec.startswith("sim/"):
            _sim_beta(spec)
            continue
        for p in range(paraphrases):
            for method in ("ranking", "rating"):
                job = prepare_score(frame, None, spec, vidb, k=k, m=m, design=design,
                                    method=method,  # type: ignore[arg-type]
                                    value_column="value", workspace=workspace, seed=seed,
                                    judge_options={**dict(judge_options or {}),
                                                   "paraphrase": p})
                cost = estimate_score_cost(job)
                rows.append({"judge": spec, "paraphrase": p, "method": method,
                             "calls": cost["calls"], "cached": cost["cached"],
                             "prompt_tokens": cost["prompt_tokens"],
                             "max_completion_tokens": cost["max_completion_tokens"],
                             "exact": cost["exact"]})
    cols = ["judge", "paraphrase", "method", "calls", "cached", "prompt_tokens",
            "max_completion_tokens", "exact"]
    return pd.DataFrame(rows, columns=cols)


_LABELS = {
    "mean_variance": "variance across judges ↓",
    "mean_max_range": "max range across judges ↓",
    "sign_flip_rate": "sign-flip rate ↓",
    "paraphrase_change": "change under paraphrase ↓",
    "sign_accuracy": "sign accuracy ↑",
    "pairwise_accuracy": "pairwise accuracy ↑",
}


def plot_judge_stability(metrics: pd.DataFrame, path: str | os.PathLike[str], *,
                         paper: bool = True) -> Path:
    """Bar chart of the six metrics, ranking beside rating (paper values as markers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [mt for mt in ("ranking", "rating") if mt in metrics.index]
    colors = {"ranking": "#2b6cb0", "rating": "#c05621"}
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        vals = [float(metrics.at[mt, metric]) for mt in methods]  # type: ignore[arg-type]
        ax.bar(methods, vals, color=[colors[mt] for mt in methods])
        if paper:
            ax.scatter(methods, [PAPER_TABLE[mt][metric] for mt in methods], marker="_", s=600,
                       color="black", zorder=3, label="paper")
        ax.set_title(_LABELS[metric], fontsize=10)
        if metric in ("sign_flip_rate", "sign_accuracy", "pairwise_accuracy"):
            ax.set_ylim(0, 1)
    if paper:
        axes.flat[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("Judge stability: ranking among anchors vs direct rating")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out)
    return out
