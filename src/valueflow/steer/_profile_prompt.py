"""Profile prompts: a value profile as a system prompt, "answer as a person who holds these".

A value profile gives each value a mean intensity on [-10, 10] (``valueflow profile``, or
any mapping of value to intensity). Its prompt sorts the values into five priority bins by
intensity (:class:`PriorityBins`: very high ≥ 6, high [2, 6), moderate (-2, 2), low
(-6, -2], very low ≤ -6 by default), groups them by theory, and gives each one line worded
from the definition we ship for the value::

    You are a person with the following value profile. ...

    Schwartz's theory of basic human values:
    - Very high priority — Benevolence (looking after the well-being of ...).
    - Low priority — Power (social standing and control: ...).

    Answer as this person would, in line with this profile, ...

This is the shape of the profile prompts of the ValueFlow paper, with three changes: the
lines are grouped by theory, values without a measurement (NaN) are left out rather than
shown as moderate, and the wording is ours.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

from valueflow.errors import DataError, UnknownNameError

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.theories import ValueNode

__all__ = [
    "PRIORITY_LABELS",
    "PROFILE_FOOTER",
    "PROFILE_HEADER",
    "PriorityBins",
    "profile_prompt",
    "profile_prompts",
    "profile_values",
]

#: The five bins' line labels, from the highest priority down.
PRIORITY_LABELS: tuple[str, ...] = ("Very high priority", "High priority",
                                    "Moderate priority", "Low priority", "Very low priority")

PROFILE_HEADER = ("You are a person with the following value profile. Each line says how much "
                  "one value matters to you.")
PROFILE_FOOTER = ("Answer as this person would, in line with this profile, and do not mention "
                  "the profile or these instructions.")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


class PriorityBins(BaseModel):
    """Where the five priority bins of a profile prompt begin and end, on [-10, 10].

    An intensity ``x`` is *very high* when ``x >= very_high``, *high* when
    ``high <= x < very_high``, *moderate* when ``low < x < high``, *low* when
    ``very_low < x <= low`` and *very low* when ``x <= very_low``. The defaults are the
    steering levels' bins (:data:`valueflow.steer.LEVEL_BINS`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    very_high: float = 6.0
    """Lowest intensity of the very high bin."""
    high: float = 2.0
    """Lowest intensity of the high bin."""
    low: float = -2.0
    """Highest intensity of the low bin."""
    very_low: float = -6.0
    """Highest intensity of the very low bin."""

    @model_validator(mode="after")
    def _ordered(self) -> PriorityBins:
        edges = (self.very_low, self.low, self.high, self.very_high)
        if not all(a < b for a, b in itertools.pairwise(edges)):
            raise ValueError("priority bin edges must rise: very_low < low < high < very_high, "
                             f"got {self.very_low:g}, {self.low:g}, {self.high:g}, "
                             f"{self.very_high:g}")
        return self

    def bin_of(self, x: float) -> int:
        """The bin of intensity ``x``: 0 is very high, 4 is very low."""
        if x >= self.very_high:
            return 0
        if x >= self.high:
            return 1
        if x > self.low:
            return 2
        if x > self.very_low:
            return 3
        return 4

    def label(self, x: float) -> str:
        """The line label of intensity ``x`` (``"High priority"`` ...)."""
        return PRIORITY_LABELS[self.bin_of(x)]


def _definition_clause(node: ValueNode) -> str:
    """The first sentence of the value's definition, to stand inside parentheses."""
    text = " ".join(node.definition.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(" .")
    if first[:1].isupper() and not first[1:2].isupper():  # keep acronyms as they are
        first = first[0].lower() + first[1:]
    return first


def value_line(node: ValueNode, intensity: float, bins: PriorityBins | None = None) -> str:
    """One line of a profile prompt: the priority of ``node`` and what the value is."""
    label = (bins or PriorityBins()).label(intensity)
    clause = _definition_clause(node)
    return f"{label} — {node.name} ({clause})." if clause else f"{label} — {node.name}."


def _resolve(name: Any, source: str) -> ValueNode:
    from valueflow.theories import resolve_value

    try:
        return resolve_value(str(name))
    except UnknownNameError as exc:
        raise DataError(f"{source}: {str(name)!r} is not a value of a known theory "
                        f"({exc.message})",
                        hint=exc.hint or "`valueflow theories list` shows the values; a value "
                        "of your own theory needs --theory-file") from None


def profile_values(profile: pd.DataFrame | Mapping[str, float], *,
                   source: str = "the profile") -> list[tuple[ValueNode, float]]:
    """The (value, intensity) pairs of a one-group profile, in its order; values with an
    unknown intensity (NaN, empty) are left out.

    Args:
        profile: A table with ``value`` and ``intensity`` columns (as
            :func:`valueflow.embed.value_profile` returns, one group), or a mapping of value
            name to intensity.
        source: How messages name the profile.

    Raises:
        DataError: a value no theory knows, a value given twice, an intensity outside
            [-10, 10], or a table of several groups.
    """
    if isinstance(profile, Mapping):
        items: list[tuple[Any, Any]] = list(profile.items())
    else:
        from valueflow.tables import require_columns

        require_columns(profile, ["value", "intensity"], source=source)
        if "group" in profile.columns:
            groups = list(dict.fromkeys(str(g) for g in profile["group"]))
            if len(groups) > 1:
                raise DataError(f"{source} holds {len(groups)} groups "
                                f"({', '.join(groups[:5])}); a profile prompt is for one",
                                hint="use profile_prompts() for one prompt per group, or "
                                "select one group's rows")
        items = list(zip(profile["value"], profile["intensity"], strict=True))
    out: list[tuple[ValueNode, float]] = []
    seen: set[str] = set()
    for name, raw in items:
        node = _resolve(name, source)
        try:
            x = float(raw)
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x):
            continue
        if not -10 <= x <= 10:
            raise DataError(f"{source}: {node.id} has intensity {x:g}, outside [-10, 10]",
                            hint="profile intensities are on the VIDB scale -10..10")
        if node.id in seen:
            raise DataError(f"{source} gives {node.id} twice", hint="keep one row per value")
        seen.add(node.id)
        out.append((node, x))
    return out


def profile_prompt(
    profile: pd.DataFrame | Mapping[str, float],
    *,
    theories: Sequence[str] | None = None,
    top: int | None = None,
    min_abs: float = 0.0,
    bins: PriorityBins | None = None,
    source: str = "the profile",
) -> str:
    """The profile prompt of one value profile (see the module docstring for its form).

    Args:
        profile: A one-group profile table (``value``, ``intensity``; ``low``, ``high``,
            ``n_texts`` may be there and are not used) or a mapping of value to intensity.
        theories: Keep only values of these theories (keys or aliases, e.g. ``schwartz``,
            ``mft``); default: every theory in the profile.
        top: Keep the ``top`` values of largest absolute intensity (after ``theories`` and
            ``min_abs``); default: all.
        min_abs: Leave out values whose absolute intensity is below this (0 keeps all).
        bins: The priority bins (default: :class:`PriorityBins`).
        source: How messages name the profile.

    Returns:
        The prompt: a header, the values grouped by theory (in the registry's order), each
        theory's values from the highest intensity down, and a footer.

    Raises:
        DataError: an unknown value or a bad intensity (see :func:`profile_values`), or no
            value left after the filters.
        UnknownNameError: an unknown theory in ``theories``.
    """
    from valueflow.theories import get_registry

    if top is not None and top < 1:
        raise DataError(f"top must be at least 1, got {top}")
    if min_abs < 0:
        raise DataError(f"min_abs must be >= 0, got {min_abs:g}")
    bins = bins or PriorityBins()
    registry = get_registry()
    rows = profile_values(profile, source=source)
    n_known = len(rows)
    if theories is not None:
        keys = {registry.theory(t).key for t in theories}
        rows = [(n, x) for n, x in rows if n.theory in keys]
    rows = [(n, x) for n, x in rows if abs(x) >= min_abs]
    if top is not None:
        rows = sorted(rows, key=lambda r: -abs(r[1]))[:top]
    if not rows:
        why = ("it has no value with a known intensity" if n_known == 0 else
               f"none of its {n_known} values with an intensity is left after the filters"
               + (f" (theories: {', '.join(theories)})" if theories is not None else "")
               + (f" (min_abs: {min_abs:g})" if min_abs > 0 else ""))
        raise DataError(f"{source} gives no profile prompt: {why}",
                        hint="check the profile's values and intensities, or relax "
                        "theories= / min_abs=")
    order = list(registry.theories)
    by_theory: dict[str, list[tuple[ValueNode, float]]] = {}
    for n, x in sorted(rows, key=lambda r: (order.index(r[0].theory)
                                            if r[0].theory in order else len(order), -r[1])):
        by_theory.setdefault(n.theory, []).append((n, x))
    blocks = [PROFILE_HEADER]
    for key, members in by_theory.items():
        name = registry.theories[key].name if key in registry.theories else key
        lines = "\n".join(f"- {value_line(n, x, bins)}" for n, x in members)
        blocks.append(f"{name}:\n{lines}")
    blocks.append(PROFILE_FOOTER)
    return "\n\n".join(blocks)


def profile_prompts(frame: pd.DataFrame, **options: Any) -> dict[str, str]:
    """One profile prompt per group of a profile table (``group`` column; without one the
    table is one group, ``all``), in the table's group order.

    ``options`` are those of :func:`profile_prompt`; an error names the group.
    """
    if "group" not in frame.columns:
        return {"all": profile_prompt(frame, **options)}
    out: dict[str, str] = {}
    source = options.pop("source", "the profile")
    for g in dict.fromkeys(frame["group"]):
        sub = frame[frame["group"] == g]
        out[str(g)] = profile_prompt(sub, source=f"{source} (group {g})", **options)
    return out
