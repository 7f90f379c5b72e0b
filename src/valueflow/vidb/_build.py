"""``build_vidb``: raw texts → ranked windows → Plackett–Luce → calibrated, flagged VIDB items.

Steps for each value (see :class:`BuildConfig` for the settings):

1. *(optional)* a :class:`~valueflow.vidb.PanelCategorizer` places every text in the value's
   theory; only texts placed at the value or below it are kept, with the panel's direction.
2. A plan (``_build_plan.py``): a balanced random design
   (:func:`~valueflow.ranking.balanced_windows`) puts every text, plus a few neutral anchor
   texts and any reference items, into at least ``r`` windows of ``k``, with a connected
   comparison graph; every judge ranks every window (or the windows are split among
   judges), all windows sent at once so a server stays saturated. With ``adaptive`` a
   second, adaptive round (:func:`~valueflow.ranking.adaptive_windows`) ranks near-tied
   texts together after a first fit.
3. One Plackett–Luce fit over all judges' rankings, then calibration to [-10, 10] with the
   neutral anchors' median at 0 (``_build_calibrate.py`` says how).
4. Per-judge fits give a disagreement z-score per item; items are flagged for review
   (``_build_flags.py``), and a value whose rankings are no better than chance has every
   item flagged ``at_chance``.
5. Items that no successful window compared have no measured intensity and are not stored
   (they are counted in the report). The items are stored with ``source_kind`` ``build``,
   or ``simulation`` when any judge is simulated; a text already stored from another source
   is not replaced unless ``on_conflict`` says so.

Steps 3–4 (``_build_fit.py``) are one pure function of a value's plan and answers that
returns the value's items and report; the build only gathers those results.

Resumable: LLM judges cache every answer in the workspace and the windows are a
deterministic function of the seed and the texts, so a rerun after an interruption asks
exactly the same windows and sends only those not answered before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from valueflow.errors import ConfigError
from valueflow.ranking import adaptive_windows
from valueflow.vidb._build_fit import Answers, ValueOutcome, ValueReport, finish_value, fit_rankings
from valueflow.vidb._build_plan import (
    BuildConfig,
    References,
    Texts,
    ValuePlan,
    clean_texts,
    neutral_anchors,
    pick_panel_neutral,
    plan_value,
    references_for,
    texts_per_value,
    value_seed,
)
from valueflow.vidb._frame import item_id

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.judges import RankingJudge, RankOutcome
    from valueflow.theories import ValueNode
    from valueflow.vidb._build_categorize import CategoryResult, PanelCategorizer
    from valueflow.vidb._store import BuildConflict
    from valueflow.workspace import Workspace

__all__ = ["BuildConfig", "BuildResult", "ValueReport", "build_vidb", "build_vidb_async"]


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


# -- asking the judges ---------------------------------------------------------------------


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


async def _rank_round(plan: ValuePlan, judges: Sequence[RankingJudge], rows: range,
                      sems: Sequence[asyncio.Semaphore], progress: bool) -> Answers:
    """Every judge's answers to the windows ``rows`` of ``plan`` that are dealt to it."""
    texts = plan.all_texts
    dealt = [[w for w in rows if j in plan.judges_of[w]] for j in range(len(judges))]
    outs = await asyncio.gather(*(
        _rank_windows(judge, plan.value, [[texts[i] for i in plan.windows[w]] for w in ws],
                      sem, progress)
        for judge, sem, ws in zip(judges, sems, dealt, strict=True)
    ))
    answers = Answers()
    for j, (ws, out) in enumerate(zip(dealt, outs, strict=True)):
        answers = answers + Answers.of(plan.windows, ws, out, j)
    return answers


async def _build_value(plan: ValuePlan, judges: Sequence[RankingJudge], cfg: BuildConfig,
                       sems: Sequence[asyncio.Semaphore], progress: bool,
                       category: Mapping[int, CategoryResult] | None,
                       meta: Mapping[str, Any]) -> ValueOutcome:
    """One value: the first round, the adaptive round if asked for, then the fits."""
    answers = await _rank_round(plan, judges, range(len(plan.windows)), sems, progress)
    n_extra = cfg.adaptive_round(plan.n)
    if n_extra and answers.rankings:
        first = await asyncio.to_thread(fit_rankings, answers.rankings, plan.n, cfg.prior_var)
        extra = adaptive_windows(first.utilities, first.se, cfg.k, n_extra,
                                 seed=value_seed(cfg.seed + 1, plan.value.id))
        start = len(plan.windows)
        plan = plan.with_round(extra, len(judges), cfg.assign)
        answers = answers + await _rank_round(plan, judges, range(start, len(plan.windows)),
                                              sems, progress)
    # The fits run in a thread: the event loop keeps serving the other values' calls.
    return await asyncio.to_thread(finish_value, plan, answers, [j.name for j in judges], cfg,
                                   category, meta)


# -- preparing the values -------------------------------------------------------------------


def _check_judges(judges: Sequence[RankingJudge]) -> None:
    if not judges:
        raise ConfigError("a build needs at least one judge", hint="pass --judge SPEC")
    names = [j.name for j in judges]
    if len(set(names)) != len(names):
        raise ConfigError(f"judges must have distinct names, got {names}",
                          hint="give each judge its own name (e.g. a different seed or model)")


@dataclass(frozen=True)
class _Placed:
    """What categorisation left of each value: its texts, their placements, the theories'
    texts about none of their values."""

    texts: dict[str, list[str]]
    categories: dict[str, dict[int, CategoryResult]]
    panel_neutral: dict[str, list[str]]


async def _categorize(categorizer: PanelCategorizer, nodes: Sequence[ValueNode],
                      cleaned: Mapping[str, list[str]], progress: bool) -> _Placed:
    """Each theory's texts placed once by the panel; each value keeps the texts about it."""
    from valueflow.theories import get_registry

    reg = get_registry()
    by_theory: dict[str, list[str]] = {}
    for n in nodes:
        by_theory.setdefault(n.theory, []).extend(cleaned[n.id])
    placed: dict[tuple[str, str], CategoryResult] = {}
    panel_neutral: dict[str, list[str]] = {}
    for key, ts in by_theory.items():
        uniq = list(dict.fromkeys(ts))
        res = await categorizer.categorize(uniq, reg.theory(key), progress=progress)
        placed.update({(key, t): c for t, c in zip(uniq, res, strict=True)})
        # About none of the theory's values: neutral for every value of the theory.
        panel_neutral[key] = [t for t, c in zip(uniq, res, strict=True)
                              if not c.path and c.stop == "neutral"]
    kept: dict[str, list[str]] = {}
    for n in nodes:
        theory = reg.theory(n.theory)
        kept[n.id] = [t for t in cleaned[n.id] if placed[(n.theory, t)].is_about(n.id, theory)]
    return _Placed(kept, {n.id: {i: placed[(n.theory, t)] for i, t in enumerate(kept[n.id])}
                          for n in nodes}, panel_neutral)


async def _plan_values(texts: Texts, values: Sequence[str | ValueNode] | None,
                       cfg: BuildConfig, n_judges: int, categorizer: PanelCategorizer | None,
                       neutral_texts: Sequence[str] | None, references: References | None,
                       progress: bool) -> tuple[list[ValuePlan], _Placed | None]:
    """Each value's plan (categorising its texts first when a panel is given)."""
    given = texts_per_value(texts, values)
    neutral = neutral_anchors(neutral_texts, cfg)
    cleaned: dict[str, list[str]] = {}
    dropped: dict[str, int] = {}
    for n, raw in given:
        cleaned[n.id], dropped[n.id] = clean_texts(raw, f"texts for {n.id}")
    placed = None
    if categorizer is not None:
        placed = await _categorize(categorizer, [n for n, _ in given], cleaned, progress)
    plans = []
    for n, _ in given:
        keep = placed.texts[n.id] if placed is not None else cleaned[n.id]
        extra = pick_panel_neutral(placed.panel_neutral.get(n.theory, []), cfg, n.id) \
            if placed is not None else []
        plans.append(plan_value(
            n, keep, cfg, n_judges, neutral=neutral + extra,
            refs=references_for(references, n.id), n_input=len(cleaned[n.id]),
            n_excluded=dropped[n.id] + len(cleaned[n.id]) - len(keep),
            categorised=placed is not None))
    return plans, placed


def _source_kind(judges: Sequence[RankingJudge], source_kind: str | None) -> str:
    from valueflow.judges import SimulatedTextJudge

    simulated = any(isinstance(j, SimulatedTextJudge) or getattr(j, "simulated", False)
                    for j in judges)
    kind = source_kind or ("simulation" if simulated else "build")
    if kind not in ("build", "simulation"):
        raise ConfigError(f"source_kind of a build is build or simulation, not {kind!r}")
    return kind


def _refuse_conflicts(workspace: Workspace, plans: Sequence[ValuePlan], source: str | None,
                      on_conflict: str) -> None:
    """Refuse, before any judge is paid for, texts another source already stored."""
    from valueflow.vidb._store import VIDBStore, conflict_error

    if on_conflict not in ("error", "keep", "skip", "replace"):
        raise ConfigError(f"on_conflict must be error, keep, skip or replace, not "
                          f"{on_conflict!r}")
    if on_conflict == "error":
        ids = [item_id(p.value.id, t) for p in plans for t in p.texts]
        clash = VIDBStore(workspace).foreign_items(ids, source)
        if len(clash):
            raise conflict_error(clash)


async def _build_values(plans: Sequence[ValuePlan], judges: Sequence[RankingJudge],
                        cfg: BuildConfig, placed: _Placed | None, meta: Mapping[str, Any],
                        progress: bool) -> list[ValueOutcome]:
    """Every value at once: their judge calls share one concurrency limit per judge, so a
    server stays busy while one value's utilities are being fitted."""
    sems = [asyncio.Semaphore(cfg.concurrency) for _ in judges]
    categories = placed.categories if placed is not None else {}
    try:
        async with asyncio.TaskGroup() as tg:  # one failure cancels the other values
            tasks = [tg.create_task(_build_value(p, judges, cfg, sems, progress,
                                                 categories.get(p.value.id), meta))
                     for p in plans]
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    return [t.result() for t in tasks]


# -- the build ------------------------------------------------------------------------------


async def build_vidb_async(
    texts: Texts,
    values: Sequence[str | ValueNode] | None,
    judges: Sequence[RankingJudge],
    *,
    config: BuildConfig | None = None,
    categorizer: PanelCategorizer | None = None,
    neutral_texts: Sequence[str] | None = None,
    references: References | None = None,
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

    Raises:
        ConfigError, DataError, UnknownNameError: Bad settings, texts or value names
            (before any judge is asked).
        BackendError: Every window of a value failed.
    """
    import pandas as pd

    cfg = config or BuildConfig()
    judges = list(judges)
    _check_judges(judges)
    plans, placed = await _plan_values(texts, values, cfg, len(judges), categorizer,
                                       neutral_texts, references, progress)
    for judge in judges:
        check = getattr(judge, "check_texts", None)
        if check is not None:
            check([t for p in plans for t in p.all_texts])
    kind = _source_kind(judges, source_kind)
    if workspace is not None and write:
        _refuse_conflicts(workspace, plans, source, on_conflict)

    run_id = None
    if workspace is not None:
        run_id = workspace.start_run("vidb-build", {
            "values": [p.value.id for p in plans], "judges": [j.name for j in judges],
            "config": cfg.model_dump(),
            "categorizer": categorizer.spec() if categorizer is not None else None,
            "n_texts": {p.value.id: len(p.texts) for p in plans}, "source": source,
            "neutral_texts": neutral_anchors(neutral_texts, cfg),
            "n_references": sum(len(p.refs) for p in plans),
            "source_kind": kind, "on_conflict": on_conflict,
        })
    meta = {"run_id": run_id, "source": source, "license": license, "dataset": dataset,
            "source_kind": kind}
    try:
        outcomes = await _build_values(plans, judges, cfg, placed, meta, progress)
        items = pd.concat([o.items for o in outcomes], ignore_index=True)
        diagnostics = pd.concat([o.diagnostics for o in outcomes], ignore_index=True)
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
    return BuildResult(items, diagnostics, [o.report for o in outcomes], run_id)


def build_vidb(
    texts: Texts,
    values: Sequence[str | ValueNode] | None,
    judges: Sequence[RankingJudge],
    *,
    config: BuildConfig | None = None,
    categorizer: PanelCategorizer | None = None,
    neutral_texts: Sequence[str] | None = None,
    references: References | None = None,
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

    Runs :func:`build_vidb_async` to completion; inside a running event loop await that
    one instead.

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
        on_conflict: A text already stored from another source: ``error``, ``keep``,
            ``skip`` or ``replace`` (as for :func:`build_vidb_async`).
        source_kind: ``build`` or ``simulation``; default ``simulation`` when any judge is
            simulated, else ``build``.

    Returns:
        The items, their diagnostics and one report per value.

    Raises:
        ConfigError, DataError, UnknownNameError: Bad settings, texts or value names
            (before any judge is asked).
        BackendError: Every window of a value failed.
    """
    from valueflow.llm import run_sync

    return run_sync(build_vidb_async(
        texts, values, judges, config=config, categorizer=categorizer,
        neutral_texts=neutral_texts, references=references, workspace=workspace, write=write,
        source=source, license=license, dataset=dataset, progress=progress,
        on_conflict=on_conflict, source_kind=source_kind))
