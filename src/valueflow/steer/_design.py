"""The experiment's design: queries, conditions, exemplar draws and the five-value square.

A *condition* is one way of prompting (a regime and its value targets); a *trial* is a
condition applied to one query for one sample. The unsteered default is a condition with no
targets and is always part of a design: it is the baseline every shift Δ is measured from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.steer._config import ProfileSettings, QuerySettings, SteeringConfig

__all__ = [
    "LEVEL_BINS",
    "Condition",
    "ExemplarPool",
    "Query",
    "build_conditions",
    "default_queries",
    "intensity_to_level",
    "latin_square",
    "load_profile_targets",
    "load_profile_values",
    "load_queries",
    "stable_seed",
]

#: Intensity bins of each steering level, on VIDB's [-10, 10] scale (closed ends inclusive):
#: -2: [-10, -6], -1: (-6, -2], 0: (-2, 2), +1: [2, 6), +2: [6, 10].
LEVEL_BINS: dict[int, tuple[float, float]] = {
    -2: (-10.0, -6.0), -1: (-6.0, -2.0), 0: (-2.0, 2.0), 1: (2.0, 6.0), 2: (6.0, 10.0)}


def intensity_to_level(x: float) -> int:
    """The steering level whose bin holds intensity ``x`` (see :data:`LEVEL_BINS`)."""
    if x <= -6:
        return -2
    if x <= -2:
        return -1
    if x < 2:
        return 0
    if x < 6:
        return 1
    return 2


def _in_bin(x: np.ndarray, level: int) -> np.ndarray:
    return np.array([intensity_to_level(float(v)) == level for v in x], dtype=bool)


def stable_seed(*parts: Any) -> int:
    """A 32-bit seed from any JSON-able parts (stable across runs and machines)."""
    raw = json.dumps(parts, sort_keys=True, default=str).encode()
    return int(hashlib.sha256(raw).hexdigest()[:8], 16)


# -- queries ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """One question a model answers."""

    id: str
    text: str
    category: str = ""
    source: str = "default"


def default_queries() -> list[Query]:
    """Our bundled query set (open questions and everyday dilemmas, written by us)."""
    import pandas as pd

    with resources.files("valueflow.steer").joinpath("data/queries.csv").open(
            encoding="utf-8") as fh:
        df = pd.read_csv(fh, keep_default_na=False)
    return [Query(f"default/{r.id}", str(r.query), str(r.category), "default")
            for r in df.itertuples()]


def _file_queries(path: str) -> list[Query]:
    from pathlib import Path

    from valueflow.tables import read_table

    df = read_table(path)
    col = "query" if "query" in df.columns else "text" if "text" in df.columns else None
    if col is None:
        raise DataError(f"query file {path} has no `query` or `text` column; its columns are "
                        f"{', '.join(map(str, df.columns))}",
                        hint="name the column with the questions `query`")
    stem = Path(path).stem
    out = []
    for i, row in enumerate(df.to_dict("records")):
        text = str(row[col] if row[col] is not None else "").strip()
        if not text or text.lower() == "nan":
            continue
        qid = str(row["id"]) if "id" in row and row["id"] is not None else str(i)
        out.append(Query(f"{stem}/{qid}", text, str(row.get("category") or ""), stem))
    if not out:
        raise DataError(f"query file {path} holds no non-empty queries")
    ids = [q.id for q in out]
    if len(set(ids)) != len(ids):
        raise DataError(f"query file {path} repeats ids", hint="make the `id` column unique")
    return out


def load_queries(settings: QuerySettings) -> list[Query]:
    """The queries a config asks for: its sets, filtered by category, optionally limited.

    With ``limit``, queries are picked round-robin across categories in a seeded order,
    so a small run still covers several kinds of question.
    """
    queries: list[Query] = []
    for s in settings.sets:
        queries += default_queries() if s == "default" else _file_queries(s)
    seen: set[str] = set()
    unique = []
    for q in queries:
        if q.text not in seen:
            seen.add(q.text)
            unique.append(q)
    queries = unique
    if settings.categories:
        cats = {q.category for q in queries}
        missing = [c for c in settings.categories if c not in cats]
        if missing:
            from valueflow.errors import close_matches

            near = close_matches(missing[0], cats)
            raise ConfigError(f"no query has category {missing[0]!r}",
                              hint=(f"did you mean {near[0]!r}? " if near else "")
                              + f"categories: {', '.join(sorted(cats))}")
        queries = [q for q in queries if q.category in settings.categories]
    if settings.limit is not None and settings.limit < len(queries):
        rng = np.random.default_rng(settings.seed)
        by_cat: dict[str, list[Query]] = {}
        for q in queries:
            by_cat.setdefault(q.category, []).append(q)
        order = sorted(by_cat)
        for c in order:
            rng.shuffle(by_cat[c])  # type: ignore[arg-type]
        picked: list[Query] = []
        while len(picked) < settings.limit:
            for c in order:
                if by_cat[c] and len(picked) < settings.limit:
                    picked.append(by_cat[c].pop(0))
        queries = picked
    return queries


# -- exemplars ----------------------------------------------------------------------------
class ExemplarPool:
    """VIDB texts per value and level bin, drawn without replacement per prompt.

    Args:
        vidb: A VIDB frame with ``text``, ``value``, ``intensity``.
    """

    def __init__(self, vidb: pd.DataFrame) -> None:
        self._by_value = {str(v): g for v, g in vidb.groupby("value")}

    def texts(self, value: str, level: int) -> list[str]:
        """All texts of ``value`` in the bin of ``level``."""
        g = self._by_value.get(value)
        if g is None:
            return []
        mask = _in_bin(g["intensity"].to_numpy(dtype=float), level)
        return [str(t) for t in g["text"].to_numpy()[mask]]

    def check(self, value: str, level: int, n: int) -> None:
        """Raise :class:`DataError` if the bin holds fewer than ``n`` texts."""
        have = len(self.texts(value, level))
        if have < n:
            lo, hi = LEVEL_BINS[level]
            raise DataError(
                f"the VIDB has {have} text(s) of {value} with intensity in the level {level:+d} "
                f"bin ({lo:g}..{hi:g}); the user-text regime needs {n} per prompt",
                hint="lower user_text.n_exemplars, or use a VIDB with more texts "
                "(user_text.vidb: workspace or a file)")

    def draw(self, value: str, level: int, n: int, seed: int) -> list[str]:
        """``n`` distinct texts from the bin, chosen by ``seed``."""
        self.check(value, level, n)
        pool = self.texts(value, level)
        idx = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
        return [pool[i] for i in idx]


# -- conditions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """One way of prompting.

    Attributes:
        regime: ``default``, ``intensity``, ``user_text``, ``pairs``, ``latin_square`` or
            ``profile``.
        targets: ``(value id, level)`` per steered value, in prompt order.
        style: ``instruction`` (value instructions), ``user_text`` (exemplar texts) or
            ``prompt`` (a ready-made instruction in ``extra["instruction"]``: the profile
            prompt).
        label: A short name (e.g. ``set 2`` in the five-value design).
    """

    regime: str
    targets: tuple[tuple[str, int], ...] = ()
    style: str = "instruction"
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def id(self) -> str:
        """A stable id: regime, style and targets."""
        tg = ",".join(f"{v}={lv:+d}" for v, lv in self.targets)
        style = "" if self.style == "instruction" or not self.targets else f"[{self.style}]"
        name = f"#{self.label}" if self.label else ""
        return f"{self.regime}{style}{name}:{tg}" if tg else self.regime

    def targets_json(self) -> str:
        return json.dumps(dict(self.targets), sort_keys=False)


def latin_square(values: Sequence[str], levels: Sequence[int]) -> list[tuple[tuple[str, int], ...]]:
    """The cyclic Latin square: in set ``s`` (0-based), value ``i`` gets ``levels[(i - s) % n]``.

    Across the ``n`` sets each value takes each position of ``levels`` exactly once, and in
    each set the levels are a permutation of ``levels``.
    """
    n = len(values)
    if len(levels) != n:
        raise ValueError(f"need one level per value, got {len(levels)} for {n}")
    return [tuple((values[i], int(levels[(i - s) % n])) for i in range(n)) for s in range(n)]


def load_profile_values(settings: ProfileSettings) -> list[tuple[str, float]]:
    """(value id, intensity) per value of a profile table (its ``group`` when it holds
    several), strongest first, ``top`` kept; values without a finite intensity are left out."""
    from valueflow.tables import read_table, require_columns
    from valueflow.theories import resolve_value

    assert settings.path is not None
    df = read_table(settings.path)
    require_columns(df, [settings.value_column, settings.intensity_column],
                    source=f"profile {settings.path}")
    if "group" in df.columns:
        groups = sorted({str(g) for g in df["group"]})
        if settings.group is None and len(groups) > 1:
            raise ConfigError(f"profile {settings.path} holds {len(groups)} groups",
                              hint=f"set profile.group to one of: {', '.join(groups[:10])}")
        if settings.group is not None:
            if settings.group not in groups:
                raise ConfigError(f"profile {settings.path} has no group {settings.group!r}",
                                  hint=f"groups: {', '.join(groups[:10])}")
            df = df[df["group"].astype(str) == settings.group]
    rows = []
    for r in df.to_dict("records"):
        x = float(r[settings.intensity_column])
        if not np.isfinite(x):
            continue
        rows.append((resolve_value(str(r[settings.value_column])).id, x))
    if not rows:
        raise DataError(f"profile {settings.path} has no finite intensities")
    rows.sort(key=lambda t: -abs(t[1]))
    if settings.top is not None:
        rows = rows[:settings.top]
    return rows


def load_profile_targets(settings: ProfileSettings) -> list[tuple[str, int]]:
    """(value id, level) per value of a profile table, strongest first (``top`` kept)."""
    return [(v, intensity_to_level(x)) for v, x in load_profile_values(settings)]


def _profile_condition(settings: ProfileSettings) -> Condition:
    """The profile regime's condition: level instructions, or (``style: prompt``) the
    profile prompt, carried in ``extra["instruction"]``."""
    rows = load_profile_values(settings)
    targets = tuple((v, intensity_to_level(x)) for v, x in rows)
    label = settings.group or "profile"
    if settings.style != "prompt":
        return Condition("profile", targets, "instruction", label)
    from valueflow.steer._profile_prompt import profile_prompt

    text = profile_prompt(dict(rows), bins=settings.bins, source=f"profile {settings.path}")
    return Condition("profile", targets, "prompt", label, extra={"instruction": text})


def build_conditions(cfg: SteeringConfig) -> list[Condition]:
    """Every condition of a config, the unsteered default first."""
    from valueflow.theories import resolve_value

    def rid(name: str) -> str:
        return resolve_value(name).id

    conds = [Condition("default")]
    values = cfg.resolved_values()
    for regime in cfg.regimes:
        if regime in ("intensity", "user_text"):
            style = "user_text" if regime == "user_text" else "instruction"
            conds += [Condition(regime, ((v, lv),), style) for v in values for lv in cfg.levels]
        elif regime == "pairs":
            for a, b in cfg.pairs.pairs:
                for la, lb in cfg.pairs.levels:
                    conds.append(Condition("pairs", ((rid(a), la), (rid(b), lb)),
                                           cfg.pairs.style))
        elif regime == "latin_square":
            ls = cfg.latin_square
            square = latin_square([rid(v) for v in ls.values], ls.levels)
            conds += [Condition("latin_square", t, ls.style, f"set{s + 1}")
                      for s, t in enumerate(square)]
        elif regime == "profile":
            conds.append(_profile_condition(cfg.profile))
    return conds
