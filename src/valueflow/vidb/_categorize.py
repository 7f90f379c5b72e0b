"""Categorisation by a judge panel: the prompt, answer parsing and vote aggregation (pure).

At each level of a theory's hierarchy every panel member sees the text, the current node
(or the theory at the top), its children with definitions, and a *neutral / none of these*
option, and answers with one option and a direction (the text supports or opposes the
chosen value). :func:`aggregate_votes` applies the acceptance rule: an option is accepted
when at least ``min_agree`` members chose it, or when it leads the runner-up by at least
``min_margin`` votes. Descent continues into an accepted child and stops at a leaf, at an
accepted neutral, or when no option is accepted. The running of the panel lives in
``_build_categorize.py``.

Unlike the reference scripts (one model, substring matching), answers are matched by exact
option number, then exact name / id / alias, then a *unique* close fuzzy match; anything
else is an invalid vote (an abstention), never a guess.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from valueflow.errors import ConfigError

if TYPE_CHECKING:
    from valueflow.theories import Theory, ValueNode

__all__ = [
    "NEUTRAL",
    "AcceptanceRule",
    "LevelDecision",
    "Vote",
    "aggregate_votes",
    "categorization_messages",
    "categorization_schema",
    "parse_vote",
]

NEUTRAL = "neutral"
"""The option id of *neutral / none of these*."""

_NEUTRAL_WORDS = {"0", "neutral", "none", "none of these", "none of the above", "n a", "na",
                  "nothing", "unrelated", "no value", "neither"}
_DIRECTIONS = {"supports": "supports", "support": "supports", "supporting": "supports",
               "promotes": "supports", "upholds": "supports", "for": "supports",
               "opposes": "opposes", "oppose": "opposes", "opposing": "opposes",
               "violates": "opposes", "against": "opposes", "undermines": "opposes"}


@dataclass(frozen=True)
class AcceptanceRule:
    """When a panel's votes at one level are accepted.

    Attributes:
        min_agree: Accept an option chosen by at least this many members.
        min_margin: Or accept the leader when it is ahead of the runner-up by at least this
            many votes (``None``: only ``min_agree`` counts).
    """

    min_agree: int = 5
    min_margin: int | None = 2

    def __post_init__(self) -> None:
        if self.min_agree < 1:
            raise ConfigError(f"min_agree must be at least 1, got {self.min_agree}")
        if self.min_margin is not None and self.min_margin < 1:
            raise ConfigError(f"min_margin must be at least 1 (or None), got {self.min_margin}")

    @classmethod
    def for_panel(cls, n: int) -> AcceptanceRule:
        """A default for ``n`` members: 5 of 7 scaled (a strict majority at least), and a
        lead of 2 for panels of 4 or more (a lead of 1 would accept 1-0 splits)."""
        agree = max(n // 2 + 1, -(-5 * n // 7))
        return cls(min_agree=agree, min_margin=2 if n >= 4 else None)


@dataclass(frozen=True)
class Vote:
    """One member's answer at one level.

    Attributes:
        choice: A child's canonical id, :data:`NEUTRAL`, or ``None`` (unreadable answer).
        direction: ``"supports"``, ``"opposes"`` or ``None``.
    """

    choice: str | None
    direction: str | None = None


@dataclass(frozen=True)
class LevelDecision:
    """What the panel decided at one level.

    Attributes:
        choice: The accepted option (a child id or :data:`NEUTRAL`), or ``None``.
        accepted: Whether the acceptance rule was met.
        counts: Votes per option (invalid votes under ``"invalid"``).
        direction: Majority direction among the votes for the accepted option (``None`` on a
            tie, for neutral, or when nothing was accepted).
        direction_counts: Direction votes among the accepted option's voters.
    """

    choice: str | None
    accepted: bool
    counts: dict[str, int] = field(default_factory=dict)
    direction: str | None = None
    direction_counts: dict[str, int] = field(default_factory=dict)


def aggregate_votes(votes: Sequence[Vote], rule: AcceptanceRule) -> LevelDecision:
    """Apply ``rule`` to one level's votes.

    Invalid votes (``choice is None``) count for nothing. A tie for the lead is never
    accepted, even when both options reach ``min_agree``.
    """
    counts = Counter(v.choice for v in votes if v.choice is not None)
    n_invalid = sum(v.choice is None for v in votes)
    shown = dict(counts.most_common())
    if n_invalid:
        shown["invalid"] = n_invalid
    if not counts:
        return LevelDecision(None, False, shown)
    ranked = counts.most_common()
    leader, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0
    accepted = top > second and (
        top >= rule.min_agree or (rule.min_margin is not None and top - second >= rule.min_margin)
    )
    if not accepted:
        return LevelDecision(None, False, shown)
    if leader == NEUTRAL:
        return LevelDecision(NEUTRAL, True, shown)
    dirs = Counter(v.direction for v in votes if v.choice == leader and v.direction)
    d_ranked = dirs.most_common()
    direction = None
    if d_ranked and (len(d_ranked) == 1 or d_ranked[0][1] > d_ranked[1][1]):
        direction = d_ranked[0][0]
    return LevelDecision(leader, True, shown, direction, dict(dirs))


# -- prompt ------------------------------------------------------------------------------

_SYSTEM = (
    "You sort texts into the categories of a theory of human values. You read carefully, "
    "judge what the text itself expresses, and answer only in the requested format."
)


def categorization_messages(
    text: str, theory: Theory, parent: ValueNode | None, children: Sequence[ValueNode]
) -> list[dict[str, str]]:
    """Chat messages asking which of ``children`` a text is about (option 0: none).

    Args:
        text: The text to categorise.
        theory: The theory whose hierarchy is descended.
        parent: The node whose children are offered (``None`` at the top level).
        children: The options, numbered from 1 in this order.
    """
    label = theory.label.lower()
    where = (
        f"The text has already been placed under the {label} \"{parent.name}\": "
        f"{' '.join(parent.definition.split())}\nNow choose among its sub-categories."
        if parent is not None
        else f"Choose among the top-level categories of {theory.name}."
    )
    options = "\n".join(
        f"[{i}] {c.name}: {' '.join(c.definition.split())}" for i, c in enumerate(children, 1)
    )
    prompt = (
        f"{where}\n\nOptions:\n[0] None of these: the text is neutral, or about none of the "
        f"options below.\n{options}\n\nText:\n\"\"\"{' '.join(text.split())}\"\"\"\n\n"
        f"Which option is the text mainly about, whether it supports that {label} or opposes "
        "(violates, rejects, undermines) it? Pick 0 if it expresses none of them. Then say "
        "whether the text supports or opposes the option you picked.\n"
        'Answer with JSON only, like {"choice": 2, "direction": "supports"} or '
        '{"choice": 0, "direction": "neutral"}.'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}]


def categorization_schema(n_children: int) -> dict[str, Any]:
    """JSON schema for structured output: ``{"choice": 0..n, "direction": ...}``."""
    return {
        "type": "object",
        "properties": {
            "choice": {"type": "integer", "minimum": 0, "maximum": n_children},
            "direction": {"type": "string", "enum": ["supports", "opposes", "neutral"]},
        },
        "required": ["choice", "direction"],
        "additionalProperties": False,
    }


# -- parsing -----------------------------------------------------------------------------

_JSON_OBJ = re.compile(r"\{[^{}]*\}", re.S)
_FIELD = re.compile(r"(?im)^\W*(choice|selected|answer|option|category)\W*[:=]\s*(.+)$")
_DIR_FIELD = re.compile(r"(?im)^\W*direction\W*[:=]\s*(.+)$")


def _fold(s: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", s.lower()).split())


def _match(raw: str, children: Sequence[ValueNode]) -> str | None:
    """The option ``raw`` names, or ``None`` when it names none or several."""
    s = raw.strip().strip("*`'\"[]()<>. ")
    m = re.fullmatch(r"(?:option\s*)?\[?(\d+)\]?(?:\s*[.:)\-]\s*.*)?", s, flags=re.I)
    if m:
        num = int(m.group(1))
        if num == 0:
            return NEUTRAL
        return children[num - 1].id if 1 <= num <= len(children) else None
    f = _fold(s)
    if not f:
        return None
    if f in _NEUTRAL_WORDS:
        return NEUTRAL
    names: dict[str, str] = {}
    for c in children:
        for key in (c.name, c.node, c.id.split(":", 1)[1], *c.aliases):
            names.setdefault(_fold(key), c.id)
    if f in names:
        return names[f]
    close = difflib.get_close_matches(f, list(names), n=3, cutoff=0.8)
    hits = {names[c] for c in close}
    return hits.pop() if len(hits) == 1 else None


def _direction(raw: str | None) -> str | None:
    if not raw:
        return None
    words = _fold(raw).split()
    found = {_DIRECTIONS[w] for w in words if w in _DIRECTIONS}
    return found.pop() if len(found) == 1 else None


def parse_vote(answer: str, children: Sequence[ValueNode]) -> Vote:
    """Read one member's answer: JSON ``{"choice", "direction"}`` or ``Choice: ...`` lines.

    The choice may be the option number, the child's display name, node id or alias, or a
    close misspelling of exactly one of them. Anything else is an invalid vote.
    """
    text = answer.strip()
    choice_raw: str | None = None
    dir_raw: str | None = None
    for blob in _JSON_OBJ.findall(text):
        try:
            obj = json.loads(blob)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "choice" in obj:
            choice_raw = str(obj["choice"])
            dir_raw = str(obj.get("direction") or "")
            break
    if choice_raw is None:
        m = _FIELD.search(text)
        if m:
            choice_raw = m.group(2)
        elif "\n" not in text:
            choice_raw = text
        d = _DIR_FIELD.search(text)
        dir_raw = d.group(1) if d else None
    if choice_raw is None:
        return Vote(None)
    # "2 (supports)" or "Benevolence - opposes" on one line: split a trailing direction off.
    head = re.split(r"\s*[,;(]\s*|\s+-\s+", choice_raw.strip(), maxsplit=1)
    choice = _match(head[0], children) or _match(choice_raw, children)
    if choice is None:
        return Vote(None)
    if choice == NEUTRAL:
        return Vote(NEUTRAL)
    direction = _direction(dir_raw) or (_direction(head[1]) if len(head) > 1 else None)
    return Vote(choice, direction)
