"""``build_vidb``: raw texts → ranked windows → Plackett–Luce → calibrated, flagged VIDB items.

Steps for each value (see :class:`BuildConfig` for the settings):

1. *(optional)* a :class:`~valueflow.vidb.PanelCategorizer` places every text in the value's
   theory; only texts placed at the value or below it are kept, with the panel's direction.
2. A balanced random design (:func:`~valueflow.vidb.balanced_windows`) puts every text, plus
   a few neutral anchor texts and any reference items, into at least ``r`` windows of ``k``,
   with a connected comparison graph; every judge ranks every window (or the windows are
   split among judges), all windows sent at once so a server stays saturated.
3. One Plackett–Luce fit over all judges' rankings, then calibration to [-10, 10] with the
   neutral anchors' median at 0 (``_build_calibrate.py`` says how).
4. Per-judge fits give a disagreement z-score per item; items are flagged for review
   (``_build_flags.py``), and a value whose rankings are no better than chance has every
   item flagged ``at_chance``.
5. Items that no successful window compared have no measured intensity and are not stored
   (they are counted in the report). The items are stored with ``source_kind`` ``build``,
   or ``simulation`` when any judge is simulated; a text already stored from another source
   is not replaced unless ``on_conflict`` says so.

Resumable: LLM judges cache every answer in the workspace and the windows are a
deterministic function of the seed and the texts, so a rerun after an interruption asks
exactly the same windows and sends only those not answered before.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from valueflow.errors import BackendError, ConfigError, DataError
from valueflow.vidb._build_calibrate import NEUTRAL_ANCHOR_TEXTS, ScaleMode, calibrate_utilities
from valueflow.vidb._build_flags import (
    AT_CHANCE_P,
    FlagThresholds,
    item_flags,
    judge_disagreement,
    ranking_signal,
)
from valueflow.vidb._frame import direction_of, item_id
from valueflow.ranking import adaptive_windows, appearances, balanced_windows
from valueflow.vidb._schema import VIDB_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.judges import RankingJudge, RankOutcome
    from valueflow.theories import ValueNode
    from valueflow.vidb._build_categorize import CategoryResult, PanelCategorizer
    from valueflow.vidb._store import BuildConflict
    from valueflow.workspace import Workspace

__all__ = ["BuildConfig", "BuildResult", "ValueReport", "build_vidb", "build_vidb_async"]

IntArray = NDArray[np.int64]


class BuildConfig(BaseModel):
    """Settings of a VIDB build (CLI flags and a YAML file share this model)."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=4, ge=2)
    """Texts per ranking window (2 = pairwise comparisons)."""
    r: int = Field(default=6, ge=1)
    """Minimum number of windows every text takes part in (per judge with ``assign='all'``)."""
    seed: int = 0
    """Seed of the window design; the same seed and texts give the same windows."""
    assign: Literal["all", "split"] = "all"
    """``all``: every judge ranks every window; ``split``: windows are dealt out among judges
    (cheaper, but per-judge disagreement is then measured on fewer windows)."""
    adaptive: float = Field(default=0.0, ge=0.0)
    """Extra windows per text in a second round around near-ties (0 = none)."""
    n_neutral: int = Field(default=6, ge=0, le=len(NEUTRAL_ANCHOR_TEXTS))
    """Built-in neutral anchor texts ranked with each value's texts (when no
    ``neutral_texts`` are given); their median utility is intensity 0."""
    n_panel_neutral: int = Field(default=6, ge=0)
    """With categorisation: texts of the corpus the panel placed in none of a theory's values
    join that theory's values as extra neutral anchors (up to this many, a seeded pick). They
    anchor 0 in the corpus's own register, next to the built-in sentences."""
    scale: ScaleMode = "symmetric"
    """How utilities map to ±10 without references: ``symmetric`` or ``separate``."""
    scale_quantile: float = Field(default=0.98, ge=0.5, le=1.0)
    """Quantile of the distances from neutral that maps to ±10."""
    prior_var: float = Field(default=10.0, gt=0)
    """Variance of the Gaussian prior on Plackett–Luce utilities."""
    disagree_z: float = Field(default=3.0, gt=0)
    """Flag ``judges_disagree`` above this pairwise z-score between judges."""
    min_windows: int | None = Field(default=None, ge=1)
    """Flag ``few_comparisons`` below this many ranked windows (default: ``ceil(r / 2)``)."""
    max_uncertainty: float = Field(default=2.5, gt=0)
    """Flag ``low_confidence`` above this calibrated standard deviation (intensity points)."""
    concurrency: int = Field(default=64, ge=1)
    """Windows in flight per judge (over all values), for judges without ``rank_many``."""

    def thresholds(self) -> FlagThresholds:
        return FlagThresholds(
            disagree_z=self.disagree_z,
            min_windows=self.min_windows or max(1, math.ceil(self.r / 2)),
            max_uncertainty=self.max_uncertainty,
        )


@dataclass
class ValueReport:
    """What happened while building one value."""

    value: str
    n_texts: int
    n_excluded: int = 0
    n_neutral: int = 0
    n_reference: int = 0
    n_windows: int = 0
    n_rankings: int = 0
    n_failed: int = 0
    n_components: int = 1
    calibration: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    failure_examples: list[str] = field(default_factory=list)
    n_unmeasured: int = 0
    """Texts no successful window compared: not stored (no measured intensity)."""
    signal_p: float = float("nan")
    """p-value of the rankings under random orders (:func:`ranking_signal`)."""
    at_chance: bool = False
    """The rankings are no better than chance: every item is flagged ``at_chance``."""


@dataclass
class BuildResult:
    """The built items and how they came about.

    Attributes:
        items: VIDB rows (the canonical columns) ready for :meth:`VIDBStore.add`.
        diagnostics: Per item: ``item_id``, ``value``, ``utility``, ``se``, ``z_disagree``,
            ``n_windows``, per-judge utilities (``u_<judge>``), and with categorisation
            ``category_path``, ``category_direction``, ``category_votes``.
        reports: One :class:`ValueReport` per value.
        run_id: The workspace run that recorded this build (when a workspace was given).
    """

    items: pd.DataFrame
    diagnostics: pd.DataFrame
    reports: list[ValueReport]
    run_id: str | None = None


def _value_seed(seed: int, value_id: str) -> int:
    return int(hashlib.sha1(f"{seed}\x1f{value_id}".encode()).hexdigest()[:8], 16)


async def _rank_windows(judge: RankingJudge, value: ValueNode, window_texts: list[list[str]],
                        sem: asyncio.Semaphore, progress: bool) -> list[RankOutcome]:
    """Rank windows with ``judge``; ``sem`` (one per judge, shared by every value being
    built) bounds the calls in flight of a judge without ``rank_many``."""
    from valueflow.judges import RankOutcome

    if not window_texts:
        return []
    many = getattr(judge, "rank_many", None)
    if many is not None:
        outs = list(await many(value, window_texts, progress=progress))
    else:
        async def one(texts: list[str]) -> RankOutcome:
            async with sem:
                return await judge.rank(value, texts)

        outs = list(await asyncio.gather(*(one(t) for t in window_texts)))
    checked = []
    for out, texts in zip(outs, window_texts, strict=True):
        if out.ok and (out.order is None or sorted(out.order) != list(range(len(texts)))):
            out = RankOutcome.failure(f"not a permutation of the window: {out.order}")
        checked.append(out)
    return checked


#: Gradient tolerance of the build's fits: utilities move by ~1e-5 below it, far inside
#: their standard errors (~0.3 and up), and a 10,000-item fit takes half the time.
FIT_TOL = 1e-4


def _fit(rankings: list[tuple[int, ...]], n: int, prior_var: float,
         initial: NDArray[np.float64] | None = None) -> Any:
    from valueflow.ranking import fit_plackett_luce

    # Equal-length rankings (the usual case: every window has k texts) go in as one 2-D
    # array, the ranking engine's fast path.
    data: Any = rankings
    if len({len(r) for r in rankings}) == 1:
        data = np.asarray(rankings, dtype=np.int64)
    with warnings.catch_warnings():
        # Disconnected items are reported through the result's components and flagged.
        warnings.simplefilter("ignore", UserWarning)
        return fit_plackett_luce(data, n, prior_var=prior_var, return_se=True, tol=FIT_TOL,
                                 initial=initial)


class _ValueBuild:
    """The state of one value's build (items, windows, rankings)."""

    def __init__(self, value: ValueNode, texts: list[str], neutral: list[str],
                 refs: list[tuple[str, float]], cfg: BuildConfig, n_judges: int) -> None:
        self.value = value
        self.texts = texts
        seen = {" ".join(t.split()).lower() for t in texts}
        self.neutral = [t for t in neutral if " ".join(t.split()).lower() not in seen]
        self.refs = [(t, y) for t, y in refs if " ".join(t.split()).lower() not in seen]
        self.all_texts = texts + self.neutral + [t for t, _ in self.refs]
        self.n = len(self.all_texts)
        self.windows = balanced_windows(self.n, cfg.k, cfg.r,
                                        seed=_value_seed(cfg.seed, value.id))
        if cfg.assign == "all" or n_judges == 1:
            self.judge_of: list[list[int]] = [list(range(n_judges))] * len(self.windows)
        else:
            self.judge_of = [[w % n_judges] for w in range(len(self.windows))]
        self.rankings: list[tuple[int, ...]] = []
        self.ranking_judge: list[int] = []
        self.ranking_window: list[int] = []
        self.n_failed = 0
        self.failures: list[str] = []

    def window_texts(self, rows: range, j: int) -> tuple[list[int], list[list[str]]]:
        ws = [w for w in rows if j in self.judge_of[w]]
        return ws, [[self.all_texts[i] for i in self.windows[w]] for w in ws]

    def record(self, ws: list[int], outs: list[RankOutcome], j: int) -> None:
        for w, out in zip(ws, outs, strict=True):
            if out.ok and out.order is not None:
                win = self.windows[w]
                self.rankings.append(tuple(int(win[o]) for o in out.order))
                self.ranking_judge.append(j)
                self.ranking_window.append(w)
            else:
                self.n_failed += 1
                if len(self.failures) < 3:
                    self.failures.append(out.error or "failed")


async def _rank_round(b: _ValueBuild, judges: Sequence[RankingJudge], rows: range,
                      sems: Sequence[asyncio.Semaphore], progress: bool) -> None:
    jobs = [b.window_texts(rows, j) for j in range(len(judges))]
    outs = await asyncio.gather(*(
        _rank_windows(judge, b.value, texts, sem, progress)
        for judge, sem, (_, texts) in zip(judges, sems, jobs, strict=True)
    ))
    for j, ((ws, _), out) in enumerate(zip(jobs, outs, strict=True)):
        b.record(ws, out, j)


def _finish_value(b: _ValueBuild, judges: Sequence[RankingJudge], cfg: BuildConfig,
                  category: Mapping[int, CategoryResult] | None, meta: Mapping[str, Any],
                  report: ValueReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    if not b.rankings:
        raise BackendError(
            f"every window for {b.value.id} failed ({b.n_failed} windows); first error: "
            f"{b.failures[0] if b.failures else 'unknown'}",
            hint="check the judge (valueflow generate --model SPEC 'hello'); answered "
            "windows are cached, so a rerun resumes",
        )
    fit = _fit(b.rankings, b.n, cfg.prior_var)
    u, se = np.asarray(fit.utilities), np.asarray(fit.se)
    n_items = len(b.texts)
    items = np.arange(n_items, dtype=np.int64)
    neutral = np.arange(n_items, n_items + len(b.neutral), dtype=np.int64)
    refs = np.arange(n_items + len(b.neutral), b.n, dtype=np.int64)
    intensity, uncertainty, cal = calibrate_utilities(
        u, se, items=items, neutral=neutral, references=refs,
        reference_intensity=np.array([y for _, y in b.refs], dtype=float),
        mode=cfg.scale, quantile=cfg.scale_quantile,
    )

    rk_win = np.asarray(b.ranking_window, dtype=np.int64)
    rk_judge = np.asarray(b.ranking_judge, dtype=np.int64)
    n_comp = np.zeros(b.n, dtype=np.int64)
    for rk in b.rankings:
        n_comp[list(rk)] += 1
    ok_windows = b.windows[np.unique(rk_win)]
    n_win = appearances(ok_windows, b.n)

    per_judge_u: dict[str, NDArray[np.float64]] = {}
    z = np.full(b.n, np.nan)
    if len(judges) > 1:
        fits = []
        for j, judge in enumerate(judges):
            sel = np.flatnonzero(rk_judge == j)
            if sel.size == 0:
                continue
            rks = [b.rankings[i] for i in sel]
            fj = _fit(rks, b.n, cfg.prior_var, initial=u)
            seen = np.zeros(b.n, dtype=bool)
            seen[np.unique(np.concatenate([np.asarray(r) for r in rks]))] = True
            fits.append((np.asarray(fj.utilities), np.asarray(fj.se), seen))
            per_judge_u[judge.name] = np.where(seen, fj.utilities, np.nan)
        z = judge_disagreement(u, fits)

    labels = np.asarray(fit.components)
    main = labels == np.bincount(labels).argmax()
    signal_p = ranking_signal(b.rankings, u)
    at_chance = signal_p > AT_CHANCE_P
    flags = item_flags(z=z[items], n_windows=n_win[items], uncertainty=uncertainty,
                       main_component=main[items], anchored=cal.anchor != "none",
                       thresholds=cfg.thresholds(), at_chance=at_chance)
    cat_dirs: list[str | None] = []
    if category is not None:
        for i in range(n_items):
            d = category[i].direction
            cat_dirs.append(d)
            conflict = d is not None and abs(intensity[i]) >= 1.0 and (
                (d == "supports") != (intensity[i] > 0))
            if conflict:
                flags[i] = ",".join(x for x in (flags[i], "direction_conflict") if x)

    v = b.value
    judge_names = ",".join(j.name for j in judges)
    provenance = (f"valueflow vidb build: Plackett–Luce over {len(b.rankings)} rankings of "
                  f"k={cfg.k} windows (r={cfg.r}); calibration {cal.method}, anchor {cal.anchor}"
                  + (f"; run {meta['run_id']}" if meta.get("run_id") else ""))
    out = pd.DataFrame({
        "item_id": [item_id(v.id, t) for t in b.texts],
        "value": v.id,
        "theory": v.theory,
        "node": v.node,
        "text": b.texts,
        "direction": [direction_of(float(x)) for x in intensity],
        "intensity": intensity.astype(float),
        "uncertainty": uncertainty.astype(float),
        "n_comparisons": n_comp[items].astype(np.int64),
        "judges": judge_names,
        "flags": [f or None for f in flags],
        "source": meta.get("source"),
        "provenance": provenance,
        "license": meta.get("license"),
        "dataset": meta.get("dataset"),
        "source_kind": meta.get("source_kind", "build"),
    })[VIDB_COLUMNS]
    diag = pd.DataFrame({
        "item_id": out["item_id"], "value": v.id, "utility": u[items], "se": se[items],
        "z_disagree": z[items], "n_windows": n_win[items],
        "n_comparisons": n_comp[items].astype(np.int64),
    })
    for name, uj in per_judge_u.items():
        diag[f"u_{name}"] = uj[items]
    if category is not None:
        diag["category_path"] = [" > ".join(category[i].path) for i in range(n_items)]
        diag["category_direction"] = cat_dirs
        diag["category_votes"] = [category[i].votes_summary() for i in range(n_items)]

    report.n_neutral, report.n_reference = len(b.neutral), len(b.refs)
    report.n_windows, report.n_rankings = len(b.windows), len(b.rankings)
    report.n_failed, report.failure_examples = b.n_failed, b.failures
    report.n_components = int(fit.n_components)
    report.calibration = cal.as_dict()
    report.signal_p, report.at_chance = signal_p, bool(at_chance)
    measured = n_comp[items] > 0
    report.n_unmeasured = int((~measured).sum())
    counts: dict[str, int] = {}
    for f in np.asarray(flags, dtype=object)[measured]:
        for name in filter(None, str(f).split(",")):
            counts[name] = counts.get(name, 0) + 1
    report.flags = counts
    # An item no successful window compared has only the prior's utility: not a measurement.
    return out[measured].reset_index(drop=True), diag


def _clean_texts(texts: Sequence[str], where: str) -> tuple[list[str], int]:
    """Strip texts, reject empty ones, drop repeats (same text up to case and spacing)."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        shown = ", ".join(str(i + 1) for i in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise DataError(f"{where}: {len(bad)} empty or non-text entries (rows {shown})",
                        hint="remove the empty rows; nothing was built")
    out: dict[str, str] = {}
    for t in texts:
        out.setdefault(" ".join(t.split()).lower(), t.strip())
    return list(out.values()), len(texts) - len(out)


def _references_for(references: Any, value_id: str) -> list[tuple[str, float]]:
    if references is None:
        return []
    refs = references.get(value_id, []) if isinstance(references, Mapping) else references
    out = [(str(t).strip(), float(y)) for t, y in refs]
    bad = [t for t, y in out if not t or not math.isfinite(y) or abs(y) > 10]
    if bad:
        raise DataError(f"reference items for {value_id} need a text and an intensity in "
                        f"[-10, 10]; {len(bad)} do not")
    return out


async def build_vidb_async(
    texts: Sequence[str] | Mapping[str, Sequence[str]],
    values: Sequence[str | ValueNode] | None,
    judges: Sequence[RankingJudge],
    *,
    config: BuildConfig | None = None,
    categorizer: PanelCategorizer | None = None,
    neutral_texts: Sequence[str] | None = None,
    references: Sequence[tuple[str, float]] | Mapping[str, Sequence[tuple[str, float]]]
    | None = None,
    workspace: Workspace | None = None,
    write: bool = True,
    source: str | None = None,
    license: str | None = None,
    dataset: str | None = None,
    progress: bool = False,
    on_conflict: BuildConflict = "error",
    source_kind: str | None = None,
) -> BuildResult:
    """Build VIDB items for one or more values from raw texts (see the module docstring).

    Args:
        texts: Texts used for every value, or ``{value: texts}``.
        values: The values to build (names or nodes); with a mapping, ``None`` means its keys.
        judges: One or more :class:`~valueflow.judges.RankingJudge` (distinct names).
        config: Design, calibration and flag settings.
        categorizer: Categorise texts first and keep, per value, those placed at it or
            below it in its theory.
        neutral_texts: Texts known to be neutral, replacing the built-in anchors.
        references: ``(text, intensity)`` items of known intensity (for all values, or
            ``{value_id: [...]}``), ranked along and used to set the scale.
        workspace: Record the run and (with ``write``) store the items, replacing items of
            the same (value, text) stored by an earlier run of the same source.
        write: Store the items in ``workspace``.
        source, license, dataset: Provenance columns of the items.
        progress: Show judges' progress bars.
        on_conflict: A text already stored from another source: ``error`` (refuse before
            any judge is asked), ``keep`` (store both), ``skip`` (keep the stored item) or
            ``replace``.
        source_kind: ``build`` or ``simulation``; default ``simulation`` when any judge is
            simulated, else ``build``.
    """
    import pandas as pd

    from valueflow.theories import ValueNode, get_registry, resolve_value

    cfg = config or BuildConfig()
    judges = list(judges)
    if not judges:
        raise ConfigError("a build needs at least one judge", hint="pass --judge SPEC")
    names = [j.name for j in judges]
    if len(set(names)) != len(names):
        raise ConfigError(f"judges must have distinct names, got {names}",
                          hint="give each judge its own name (e.g. a different seed or model)")
    if isinstance(texts, Mapping):
        given = {resolve_value(str(k)).id: list(v) for k, v in texts.items()}
        nodes = [v if isinstance(v, ValueNode) else resolve_value(v) for v in values or given]
        missing = [n.id for n in nodes if n.id not in given]
        if missing:
            raise DataError(f"no texts were given for {', '.join(missing)}")
        per_value = {n.id: given[n.id] for n in nodes}
    else:
        if isinstance(texts, str):
            raise DataError("texts must be a list of texts, not one string")
        if not values:
            raise ConfigError("name the value(s) to build", hint="--value benevolence")
        nodes = [v if isinstance(v, ValueNode) else resolve_value(v) for v in values]
        per_value = {n.id: list(texts) for n in nodes}
    if len({n.id for n in nodes}) != len(nodes):
        raise ConfigError("a value is listed twice")
    neutral = list(neutral_texts) if neutral_texts is not None else list(
        NEUTRAL_ANCHOR_TEXTS[: cfg.n_neutral])
    if neutral_texts is not None:
        neutral, _ = _clean_texts(neutral, "neutral texts")

    cleaned: dict[str, list[str]] = {}
    reports: dict[str, ValueReport] = {}
    for n in nodes:
        cleaned[n.id], dropped = _clean_texts(per_value[n.id], f"texts for {n.id}")
        reports[n.id] = ValueReport(n.id, len(cleaned[n.id]), n_excluded=dropped)

    categories: dict[str, dict[int, CategoryResult]] = {}
    panel_neutral: dict[str, list[str]] = {}
    if categorizer is not None:
        reg = get_registry()
        by_theory: dict[str, list[str]] = {}
        for n in nodes:
            by_theory.setdefault(n.theory, []).extend(cleaned[n.id])
        placed: dict[tuple[str, str], CategoryResult] = {}
        for key, ts in by_theory.items():
            uniq = list(dict.fromkeys(ts))
            res = await categorizer.categorize(uniq, reg.theory(key), progress=progress)
            placed.update({(key, t): c for t, c in zip(uniq, res, strict=True)})
            # About none of the theory's values: neutral for every value of the theory.
            panel_neutral[key] = [t for t, c in zip(uniq, res, strict=True)
                                  if not c.path and c.stop == "neutral"]
        for n in nodes:
            theory = reg.theory(n.theory)
            keep = [t for t in cleaned[n.id] if placed[(n.theory, t)].is_about(n.id, theory)]
            reports[n.id].n_excluded += len(cleaned[n.id]) - len(keep)
            cleaned[n.id] = keep
            categories[n.id] = {i: placed[(n.theory, t)] for i, t in enumerate(keep)}

    builds: list[_ValueBuild] = []
    for n in nodes:
        if len(cleaned[n.id]) < 2:
            raise DataError(
                f"{n.id} has {len(cleaned[n.id])} text(s) to rank"
                + (" after categorisation" if categorizer is not None else ""),
                hint="a value needs at least 2 distinct texts",
            )
        extra: list[str] = []
        pool = panel_neutral.get(n.theory, [])
        if pool and cfg.n_panel_neutral > 0:
            rng = np.random.default_rng(_value_seed(cfg.seed + 2, n.id))
            pick = rng.choice(len(pool), size=min(cfg.n_panel_neutral, len(pool)),
                              replace=False)
            extra = [pool[int(i)] for i in sorted(pick)]
        builds.append(_ValueBuild(n, cleaned[n.id], neutral + extra,
                                  _references_for(references, n.id), cfg, len(judges)))
    for judge in judges:
        check = getattr(judge, "check_texts", None)
        if check is not None:
            check([t for b in builds for t in b.all_texts])

    kind = source_kind or ("simulation" if any(_is_simulated(j) for j in judges) else "build")
    if kind not in ("build", "simulation"):
        raise ConfigError(f"source_kind of a build is build or simulation, not {kind!r}")
    if workspace is not None and write:
        from valueflow.vidb._store import VIDBStore, conflict_error

        if on_conflict not in ("error", "keep", "skip", "replace"):
            raise ConfigError(f"on_conflict must be error, keep, skip or replace, not "
                              f"{on_conflict!r}")
        if on_conflict == "error":  # refuse before any judge is paid for
            ids = [item_id(b.value.id, t) for b in builds for t in b.texts]
            clash = VIDBStore(workspace).foreign_items(ids, source)
            if len(clash):
                raise conflict_error(clash)

    run_id = None
    if workspace is not None:
        run_id = workspace.start_run("vidb-build", {
            "values": [n.id for n in nodes], "judges": names, "config": cfg.model_dump(),
            "categorizer": categorizer.spec() if categorizer is not None else None,
            "n_texts": {k: len(v) for k, v in cleaned.items()}, "source": source,
            "neutral_texts": neutral, "n_references": sum(len(b.refs) for b in builds),
            "source_kind": kind, "on_conflict": on_conflict,
        })
    meta = {"run_id": run_id, "source": source, "license": license, "dataset": dataset,
            "source_kind": kind}
    sems = [asyncio.Semaphore(cfg.concurrency) for _ in judges]

    async def build_one(b: _ValueBuild) -> tuple[pd.DataFrame, pd.DataFrame]:
        await _rank_round(b, judges, range(len(b.windows)), sems, progress)
        if cfg.adaptive > 0 and b.rankings:
            first = await asyncio.to_thread(_fit, b.rankings, b.n, cfg.prior_var)
            extra = adaptive_windows(first.utilities, first.se, cfg.k,
                                     math.ceil(cfg.adaptive * b.n / cfg.k),
                                     seed=_value_seed(cfg.seed + 1, b.value.id))
            start = len(b.windows)
            b.windows = np.concatenate([b.windows, extra.reshape(-1, b.windows.shape[1])])
            b.judge_of += [list(range(len(judges))) if cfg.assign == "all"
                           else [w % len(judges)] for w in range(start, len(b.windows))]
            await _rank_round(b, judges, range(start, len(b.windows)), sems, progress)
        # The fits run in a thread: the event loop keeps serving the other values' calls.
        return await asyncio.to_thread(_finish_value, b, judges, cfg,
                                       categories.get(b.value.id), meta, reports[b.value.id])

    try:
        # All values at once: their judge calls share the backends' concurrency limits, so
        # a server stays busy while one value's utilities are being fitted.
        try:
            async with asyncio.TaskGroup() as tg:  # one failure cancels the other values
                tasks = [tg.create_task(build_one(b)) for b in builds]
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None
        frames = [t.result()[0] for t in tasks]
        diags = [t.result()[1] for t in tasks]
        items = pd.concat(frames, ignore_index=True)
        diagnostics = pd.concat(diags, ignore_index=True)
        if workspace is not None and write:
            from valueflow.vidb._store import VIDBStore

            stored = VIDBStore(workspace).add_built(items, on_conflict=on_conflict)
            items.attrs["stored"] = stored
    except BaseException:
        if workspace is not None and run_id is not None:
            workspace.finish_run(run_id, "failed")
        raise
    if workspace is not None and run_id is not None:
        workspace.finish_run(run_id)
    return BuildResult(items, diagnostics, [reports[n.id] for n in nodes], run_id)


def _is_simulated(judge: Any) -> bool:
    from valueflow.judges import SimulatedTextJudge

    return bool(isinstance(judge, SimulatedTextJudge) or getattr(judge, "simulated", False))


def build_vidb(*args: Any, **kwargs: Any) -> BuildResult:
    """Synchronous :func:`build_vidb_async` (same arguments)."""
    from valueflow.llm import run_sync

    return run_sync(build_vidb_async(*args, **kwargs))
