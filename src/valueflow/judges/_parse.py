"""Reading rankings and ratings out of free-form judge answers.

Judges answer in many shapes: ``[3, 1, 2]``, ``3 > 1 > 2``, ``3,1,2``, ``Ranking: 3 1 2``,
``{"ranking": [3, 1, 2]}``, a numbered list (``1. Text 3``), letters (``C, A, B``), often with
words around. The parser looks for candidates in order of how explicit they are — JSON,
then square-bracketed lists, then numbered lists, then any run of ids in the prose — and
accepts the first tier that yields exactly one permutation of the ids. Two different
permutations in the same tier make the answer ambiguous: it is rejected (and re-asked),
never guessed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from valueflow.judges._prompts import Labels, text_ids

__all__ = ["ParseError", "parse_ranking", "parse_rating"]


@dataclass(frozen=True)
class ParseError(Exception):
    """An answer could not be read; ``reason`` is said back to the judge when re-asking."""

    reason: str

    def __str__(self) -> str:
        return self.reason


_BRACKETS = re.compile(r"[\[(\{]([^\[\]()\{\}]*)[\])\}]")
_NUMBERED_LINE = re.compile(
    r"^\s*(?:rank\s*)?#?(\d+)\s*[.):\-]\s*(?:\*\*)?\s*(?:text|passage|id)?\s*[\[(#]?\s*"
    r"([0-9]+|[A-Za-z])\b", re.IGNORECASE | re.MULTILINE)


def _tokens(text: str, labels: Labels) -> list[str]:
    if labels == "numbers":
        return re.findall(r"(?<![\w.])\d+(?![\w]|\.\d)", text)
    # Letters: single capital letters standing alone ("C > A > B", "[B, A]").
    return re.findall(r"(?<![A-Za-z0-9'])[A-Z](?![A-Za-z0-9'])", text)


def _as_order(tokens: Sequence[str], ids: Sequence[str]) -> tuple[int, ...] | None:
    pos = {t: i for i, t in enumerate(ids)}
    if len(tokens) != len(ids):
        return None
    try:
        order = tuple(pos[t] for t in tokens)
    except KeyError:
        return None
    return order if len(set(order)) == len(ids) else None


def _windows(tokens: Sequence[str], ids: Sequence[str]) -> list[tuple[int, ...]]:
    k = len(ids)
    found = []
    for start in range(len(tokens) - k + 1):
        order = _as_order(tokens[start:start + k], ids)
        if order is not None:
            found.append(order)
    return found


def _pick(candidates: list[tuple[int, ...]], tier: str) -> tuple[int, ...] | None:
    distinct = list(dict.fromkeys(candidates))
    if len(distinct) > 1:
        raise ParseError(f"the answer holds {len(distinct)} different rankings in {tier}")
    return distinct[0] if distinct else None


def _from_json(text: str, ids: Sequence[str]) -> tuple[int, ...] | None:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        obj = json.loads(stripped)
    except (ValueError, TypeError):
        return None
    if isinstance(obj, dict):
        obj = next((v for v in obj.values() if isinstance(v, list)), None)
    if not isinstance(obj, list):
        return None
    return _as_order([str(x).strip() for x in obj], ids)


def parse_ranking(text: str, k: int, labels: Labels = "numbers") -> tuple[int, ...]:
    """Read a ranking of ``k`` texts from a judge's answer.

    Args:
        text: The judge's answer.
        k: The number of texts in the window.
        labels: How texts were labelled in the prompt: ``"numbers"`` (1..k) or
            ``"letters"`` (A..).

    Returns:
        0-based display positions, most supporting first: ``"[3, 1, 2]"`` gives ``(2, 0, 1)``.

    Raises:
        ParseError: No permutation of the ids was found, or several different ones were.
    """
    ids = text_ids(k, labels)
    if not text or not text.strip():
        raise ParseError("the answer was empty")
    order = _from_json(text, ids)
    if order is not None:
        return order
    bracketed = []
    for m in _BRACKETS.finditer(text):
        bracketed += _windows(_tokens(m.group(1), labels), ids)
    order = _pick(bracketed, "square brackets")
    if order is not None:
        return order
    numbered = _NUMBERED_LINE.findall(text)
    if len(numbered) >= k:
        ranks = [r for r, _ in numbered]
        if ranks[:k] == text_ids(k, "numbers"):
            order = _as_order([t if labels == "numbers" else t.upper() for _, t in numbered[:k]],
                              ids)
            if order is not None:
                return order
    order = _pick(_windows(_tokens(text, labels), ids), "its text")
    if order is not None:
        return order
    seen = [t for t in _tokens(text, labels) if t in ids]
    if not seen:
        raise ParseError(f"it names none of the text ids {ids[0]}..{ids[-1]}")
    missing = [i for i in ids if i not in seen]
    if missing:
        raise ParseError(f"it leaves out text(s) {', '.join(missing)}")
    raise ParseError(f"it does not list the {k} ids once each in one sequence")


_NUMBER = r"[-+\u2212]?\s?\d+(?:[.,]\d+)?"
_KEYED = re.compile(r"(?:rating|score|intensity|answer)\W{0,6}?(" + _NUMBER + r")", re.IGNORECASE)


def _to_float(s: str) -> float:
    return float(s.replace("\u2212", "-").replace(" ", "").replace(",", "."))


def parse_rating(text: str, low: float = -10.0, high: float = 10.0) -> float:
    """Read one rating in ``[low, high]`` from a judge's answer.

    Accepts ``7``, ``-3.5``, ``Rating: +4``, ``{"rating": -2}``, ``"I'd say 6 out of 10"``
    (``out of``/``/`` denominators are skipped). Several different numbers without a
    ``rating:``-style key are ambiguous and rejected.

    Raises:
        ParseError: No number, an ambiguous answer, or a rating outside the scale.
    """
    if not text or not text.strip():
        raise ParseError("the answer was empty")
    stripped = text.strip().strip("`").removeprefix("json").strip()
    try:
        obj = json.loads(stripped)
    except (ValueError, TypeError):
        obj = None
    if isinstance(obj, dict):
        obj = next((v for v in obj.values() if isinstance(v, int | float | str)), None)
    if isinstance(obj, int | float | str) and not isinstance(obj, bool):
        try:
            value = float(obj)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return _in_scale(value, low, high)
    keyed = _KEYED.findall(text)
    if keyed:
        return _in_scale(_to_float(keyed[-1]), low, high)
    # Drop denominators ("6/10", "6 out of 10") before collecting bare numbers.
    cleaned = re.sub(r"(?:/|\bout of)\s*\d+(?:\.\d+)?", " ", text, flags=re.IGNORECASE)
    numbers = [_to_float(n) for n in re.findall(r"(?<![\w.])" + _NUMBER + r"(?![\w])", cleaned)]
    distinct = list(dict.fromkeys(numbers))
    if not distinct:
        raise ParseError("it holds no number")
    if len(distinct) > 1:
        raise ParseError(f"it holds {len(distinct)} different numbers")
    return _in_scale(distinct[0], low, high)


def _in_scale(value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise ParseError(f"{value:g} is outside the scale {low:g} to {high:g}")
    return float(value)
