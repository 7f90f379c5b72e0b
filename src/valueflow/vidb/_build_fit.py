"""From one value's rankings to its VIDB items: fits, calibration, flags, report (pure).

:func:`finish_value` takes a value's plan and the judges' answers and returns a new
:class:`ValueOutcome` — the items, their diagnostics and the value's report — computing
nothing from anything but its arguments, so it runs in a worker thread while other values'
judge calls are in flight.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import BackendError
from valueflow.ranking import appearances
from valueflow.vidb._build_calibrate import Calibration, calibrate_utilities
from valueflow.vidb._build_flags import (
    AT_CHANCE_P,
    item_flags,
    judge_disagreement,
    ranking_signal,
)
from valueflow.vidb._build_plan import BuildConfig, ValuePlan
from valueflow.vidb._frame import direction_of, item_id
from valueflow.vidb._schema import VIDB_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.judges import RankOutcome
    from valueflow.vidb._build_categorize import CategoryResult

__all__ = ["FIT_TOL", "Answers", "ValueOutcome", "ValueReport", "finish_value", "fit_rankings"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Gradient tolerance of the build's fits: utilities move by ~1e-5 below it, far inside
#: their standard errors (~0.3 and up), and a 10,000-item fit takes half the time.
FIT_TOL = 1e-4


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


@dataclass(frozen=True)
class Answers:
    """The judges' answers to some of a value's windows.

    Attributes:
        rankings: Each successful answer as item ids, best first.
        judge: The index of the judge that gave each ranking.
        window: The window each ranking answers.
        n_failed: Windows a judge failed to rank.
        failures: The first few failure reasons.
    """

    rankings: list[tuple[int, ...]] = field(default_factory=list)
    judge: list[int] = field(default_factory=list)
    window: list[int] = field(default_factory=list)
    n_failed: int = 0
    failures: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, windows: IntArray, rows: Sequence[int], outcomes: Sequence[RankOutcome],
           judge: int) -> Answers:
        """One judge's outcomes for the windows ``rows``, as item-id rankings."""
        ok = [(w, out.order) for w, out in zip(rows, outcomes, strict=True)
              if out.ok and out.order is not None]
        failed = [out.error or "failed" for out in outcomes if not (out.ok and out.order
                                                                       is not None)]
        return cls([tuple(int(windows[w][o]) for o in order) for w, order in ok],
                   [judge] * len(ok), [w for w, _ in ok], len(failed), failed[:3])

    def __add__(self, other: Answers) -> Answers:
        return Answers(self.rankings + other.rankings, self.judge + other.judge,
                       self.window + other.window, self.n_failed + other.n_failed,
                       (self.failures + other.failures)[:3])


@dataclass(frozen=True)
class ValueOutcome:
    """One value's build: stored items (measured ones only), diagnostics, report."""

    items: pd.DataFrame
    diagnostics: pd.DataFrame
    report: ValueReport


def fit_rankings(rankings: list[tuple[int, ...]], n: int, prior_var: float,
                 initial: Array | None = None) -> Any:
    """The build's Plackett–Luce fit (with standard errors) of ``rankings`` over ``n`` items."""
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


@dataclass(frozen=True)
class _Fit:
    """Per item id of the plan: pooled and per-judge utilities and what follows from them."""

    u: Array
    se: Array
    n_components: int
    main: NDArray[np.bool_]
    per_judge: dict[str, Array]
    z: Array
    n_comparisons: IntArray
    n_windows: IntArray
    signal_p: float


def _fit_value(plan: ValuePlan, answers: Answers, judge_names: Sequence[str],
               cfg: BuildConfig) -> _Fit:
    fit = fit_rankings(answers.rankings, plan.n, cfg.prior_var)
    u, se = np.asarray(fit.utilities), np.asarray(fit.se)
    n_comp = np.zeros(plan.n, dtype=np.int64)
    for rk in answers.rankings:
        n_comp[list(rk)] += 1
    ok_windows = plan.windows[np.unique(np.asarray(answers.window, dtype=np.int64))]
    per_judge: dict[str, Array] = {}
    z = np.full(plan.n, np.nan)
    if len(judge_names) > 1:
        by_judge = np.asarray(answers.judge, dtype=np.int64)
        fits = []
        for j, name in enumerate(judge_names):
            rks = [answers.rankings[i] for i in np.flatnonzero(by_judge == j)]
            if not rks:
                continue
            fj = fit_rankings(rks, plan.n, cfg.prior_var, initial=u)
            seen = np.zeros(plan.n, dtype=bool)
            seen[np.unique(np.concatenate([np.asarray(r) for r in rks]))] = True
            fits.append((np.asarray(fj.utilities), np.asarray(fj.se), seen))
            per_judge[name] = np.where(seen, fj.utilities, np.nan)
        z = judge_disagreement(u, fits)
    labels = np.asarray(fit.components)
    return _Fit(u, se, int(fit.n_components), labels == np.bincount(labels).argmax(),
                per_judge, z, n_comp, appearances(ok_windows, plan.n),
                ranking_signal(answers.rankings, u))


def _flags(fit: _Fit, items: IntArray, intensity: Array, uncertainty: Array,
           cal: Calibration, cfg: BuildConfig,
           category: Mapping[int, CategoryResult] | None) -> list[str]:
    flags = item_flags(z=fit.z[items], n_windows=fit.n_windows[items], uncertainty=uncertainty,
                       main_component=fit.main[items], anchored=cal.anchor != "none",
                       thresholds=cfg.thresholds(), at_chance=fit.signal_p > AT_CHANCE_P)
    for i in range(len(items) if category is not None else 0):
        d = category[i].direction  # type: ignore[index]
        if d is not None and abs(intensity[i]) >= 1.0 and (d == "supports") != (intensity[i] > 0):
            flags[i] = ",".join(x for x in (flags[i], "direction_conflict") if x)
    return flags


def _frames(plan: ValuePlan, fit: _Fit, items: IntArray, intensity: Array,
            uncertainty: Array, flags: list[str], provenance: str, judge_names: Sequence[str],
            category: Mapping[int, CategoryResult] | None, meta: Mapping[str, Any]
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    import pandas as pd

    v = plan.value
    out = pd.DataFrame({
        "item_id": [item_id(v.id, t) for t in plan.texts],
        "value": v.id, "theory": v.theory, "node": v.node, "text": plan.texts,
        "direction": [direction_of(float(x)) for x in intensity],
        "intensity": intensity.astype(float), "uncertainty": uncertainty.astype(float),
        "n_comparisons": fit.n_comparisons[items].astype(np.int64),
        "judges": ",".join(judge_names), "flags": [f or None for f in flags],
        "source": meta.get("source"), "provenance": provenance,
        "license": meta.get("license"), "dataset": meta.get("dataset"),
        "source_kind": meta.get("source_kind", "build"),
    })[VIDB_COLUMNS]
    diag = pd.DataFrame({
        "item_id": out["item_id"], "value": v.id, "utility": fit.u[items],
        "se": fit.se[items], "z_disagree": fit.z[items], "n_windows": fit.n_windows[items],
        "n_comparisons": fit.n_comparisons[items].astype(np.int64),
    })
    for name, uj in fit.per_judge.items():
        diag[f"u_{name}"] = uj[items]
    if category is not None:
        placed = [category[i] for i in range(len(items))]
        diag["category_path"] = [" > ".join(c.path) for c in placed]
        diag["category_direction"] = [c.direction for c in placed]
        diag["category_votes"] = [c.votes_summary() for c in placed]
    return out, diag


def _flag_counts(flags: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in flags:
        for name in filter(None, f.split(",")):
            counts[name] = counts.get(name, 0) + 1
    return counts


def finish_value(plan: ValuePlan, answers: Answers, judge_names: Sequence[str],
                 cfg: BuildConfig, category: Mapping[int, CategoryResult] | None = None,
                 meta: Mapping[str, Any] | None = None) -> ValueOutcome:
    """Fit, calibrate and flag one value's items from the judges' answers.

    Args:
        plan: The value's texts, anchors and windows (every round).
        answers: The judges' answers to the plan's windows.
        judge_names: Names of the judges, in the order their indices in ``answers`` refer to.
        cfg: The build's settings.
        category: With categorisation, the panel's placement of each of ``plan.texts``.
        meta: Provenance of the items: ``run_id``, ``source``, ``license``, ``dataset``,
            ``source_kind``.

    Raises:
        BackendError: No window was ranked.
    """
    meta = meta or {}
    if not answers.rankings:
        raise BackendError(
            f"every window for {plan.value.id} failed ({answers.n_failed} windows); first "
            f"error: {answers.failures[0] if answers.failures else 'unknown'}",
            hint="check the judge (valueflow generate --model SPEC 'hello'); answered "
            "windows are cached, so a rerun resumes",
        )
    fit = _fit_value(plan, answers, judge_names, cfg)
    n_items, n_neutral = len(plan.texts), len(plan.neutral)
    items = np.arange(n_items, dtype=np.int64)
    intensity, uncertainty, cal = calibrate_utilities(
        fit.u, fit.se, items=items,
        neutral=np.arange(n_items, n_items + n_neutral, dtype=np.int64),
        references=np.arange(n_items + n_neutral, plan.n, dtype=np.int64),
        reference_intensity=np.array([y for _, y in plan.refs], dtype=float),
        mode=cfg.scale, quantile=cfg.scale_quantile,
    )
    flags = _flags(fit, items, intensity, uncertainty, cal, cfg, category)
    provenance = (f"valueflow vidb build: Plackett–Luce over {len(answers.rankings)} rankings "
                  f"of k={cfg.k} windows (r={cfg.r}); calibration {cal.method}, anchor "
                  f"{cal.anchor}" + (f"; run {meta['run_id']}" if meta.get("run_id") else ""))
    out, diag = _frames(plan, fit, items, intensity, uncertainty, flags, provenance,
                        judge_names, category, meta)
    # An item no successful window compared has only the prior's utility: not a measurement.
    measured = fit.n_comparisons[items] > 0
    report = ValueReport(
        plan.value.id, plan.n_input, n_excluded=plan.n_excluded, n_neutral=n_neutral,
        n_reference=len(plan.refs), n_windows=len(plan.windows),
        n_rankings=len(answers.rankings), n_failed=answers.n_failed,
        n_components=fit.n_components, calibration=cal.as_dict(),
        flags=_flag_counts([f for f, m in zip(flags, measured, strict=True) if m]),
        failure_examples=list(answers.failures), n_unmeasured=int((~measured).sum()),
        signal_p=fit.signal_p, at_chance=bool(fit.signal_p > AT_CHANCE_P),
    )
    return ValueOutcome(out[measured].reset_index(drop=True), diag, report)
