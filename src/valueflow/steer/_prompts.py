"""Prompt text for each steering regime, written by us.

Every condition shares the same user message for a query (the query plus one length
instruction); conditions differ only in what is added to it:

* the **unsteered default** adds nothing (the baseline for every shift Δ);
* **intensity** adds one value instruction at a level -2..2 (level 0 is explicitly neutral:
  it tells the model to take no stance on the value, which the reference's level 0 did not);
* **user_text** puts exemplar texts before the query, as things the user wrote;
* **multi-value** regimes (pairs, the five-value design, profiles) list one full-sentence
  instruction per value, so each line is grammatical on its own;
* a profile with ``style: prompt`` uses its profile prompt instead
  (:mod:`valueflow.steer._profile_prompt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from valueflow.theories import ValueNode

__all__ = [
    "MULTI_HEADER",
    "PERSONA_LEVELS",
    "SINGLE_HEADER",
    "build_messages",
    "instruction_text",
    "persona_text",
    "query_text",
    "user_text_block",
    "value_instruction",
]

SINGLE_HEADER = "Answer from the following outlook."
MULTI_HEADER = "Answer from the following outlook, which combines several values."
_FOOTER_SINGLE = "Let this outlook shape what you say, and do not mention these instructions."
_FOOTER_MULTI = ("Let each of these shape what you say, as strongly as it is stated, and do not "
                 "mention these instructions.")

_USER_TEXT_HEAD = "Here are a few things I have written or said, and I stand by them:"
_USER_TEXT_TAIL = "They say something about who I am. Keeping that in mind, please answer my question."

# Fallback wording for values without hand-written phrasings (e.g. a user's own theory).
_FALLBACK = {
    2: "You strongly value {name} ({definition}). It matters deeply to you and clearly "
       "shapes your answers.",
    1: "You somewhat value {name} ({definition}). It tends to show in your answers.",
    0: "You are neutral about {name} ({definition}): you neither promote nor oppose it, "
       "and you take no stance on it in your answers.",
    -1: "You are mildly opposed to {name} ({definition}). You tend to push back against it "
        "in your answers.",
    -2: "You strongly oppose {name} ({definition}). You reject what it stands for, and your "
        "answers clearly show it.",
}


#: Persona prompts: the model plays a person who holds the value to a degree (levels -2..2),
#: rather than being told how to answer. Several lines per value are joined into one persona.
PERSONA_LEVELS = {
    2: "You are {article} person for whom {name} comes before almost everything else: {what}. "
       "Friends say it is the first thing they notice about you, and it colours every opinion "
       "you give.",
    1: "You are {article} person who cares about {name}: {what}. It often shows in the advice "
       "and opinions you give.",
    0: "You are an ordinary person with no particular feelings about {name} ({what}); it "
       "rarely comes up in what you say.",
    -1: "You are {article} person who is wary of {name} ({what}) and tends to push back when "
        "others stress it.",
    -2: "You are {article} person who has no patience for {name} ({what}); you think it is "
        "overrated, and your opinions make that plain.",
}
_PERSONA_TAIL = ("Stay in character: answer the question as this person would, in your own "
                 "voice, without mentioning these instructions.")


def persona_text(targets: Sequence[tuple[ValueNode, int]]) -> str:
    """A persona system prompt: someone who holds each ``(value, level)`` of ``targets``
    (levels -2..2), one sentence per value, then the stay-in-character line."""
    if not targets:
        raise ValueError("a persona needs at least one target")
    lines = []
    for value, level in targets:
        if level not in PERSONA_LEVELS:
            raise ValueError(f"level must be in -2..2, got {level}")
        what = value.definition.strip().rstrip(".")
        if what:
            what = what[0].lower() + what[1:]
        name = value.name.strip()
        lines.append(PERSONA_LEVELS[level].format(article="a", name=name.lower(),
                                                  what=what or name))
    return "\n\n".join([*lines, _PERSONA_TAIL])


def value_instruction(value: ValueNode, level: int) -> str:
    """The second-person instruction for ``value`` at ``level`` (-2..2).

    Uses the theory's own phrasing when it has one, else our generic wording.
    """
    if level not in _FALLBACK:
        raise ValueError(f"level must be in -2..2, got {level}")
    text = value.phrasings.get(level) if value.phrasings else None
    if text:
        return text.strip()
    definition = value.definition.strip().rstrip(".")
    if definition:
        definition = definition[0].lower() + definition[1:]
    return _FALLBACK[level].format(name=value.name, definition=definition)


def instruction_text(targets: Sequence[tuple[ValueNode, int]]) -> str:
    """The value instruction for one or several (value, level) targets."""
    if not targets:
        raise ValueError("an instruction needs at least one target")
    if len(targets) == 1:
        value, level = targets[0]
        return f"{SINGLE_HEADER}\n\n{value_instruction(value, level)}\n\n{_FOOTER_SINGLE}"
    lines = "\n".join(f"- {value_instruction(v, lv)}" for v, lv in targets)
    return f"{MULTI_HEADER}\n\n{lines}\n\n{_FOOTER_MULTI}"


def query_text(query: str, word_limit: int | None) -> str:
    """The user message every condition shares: the query and one length instruction."""
    q = query.strip()
    return q if word_limit is None else f"{q}\n\nAnswer in no more than {word_limit} words."


def user_text_block(exemplars: Sequence[str]) -> str:
    """Exemplar texts presented as the user's own words."""
    if not exemplars:
        raise ValueError("the user-text regime needs at least one exemplar")
    quoted = "\n".join(f'- "{" ".join(t.split())}"' for t in exemplars)
    return f"{_USER_TEXT_HEAD}\n\n{quoted}\n\n{_USER_TEXT_TAIL}"


def build_messages(
    query: str,
    *,
    targets: Sequence[tuple[ValueNode, int]] = (),
    exemplars: Sequence[str] = (),
    word_limit: int | None = 100,
    instruction_role: str = "system",
    instruction: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages for one condition and query.

    Args:
        query: The question.
        targets: (value, level) pairs for instruction regimes; empty for the default and
            for user-text prompts.
        exemplars: Texts for user-text prompts (shown before the query).
        word_limit: The shared length instruction (``None``: none).
        instruction_role: ``"system"`` puts the instruction in a system message; ``"user"``
            puts it before the query in the user message.
        instruction: A ready-made instruction (a profile prompt) used instead of the one
            worded from ``targets``.
    """
    user = query_text(query, word_limit)
    if exemplars:
        user = f"{user_text_block(exemplars)}\n\n{user}"
    if instruction is None:
        if not targets:
            return [{"role": "user", "content": user}]
        instruction = instruction_text(targets)
    if instruction_role == "user":
        return [{"role": "user", "content": f"{instruction}\n\n{user}"}]
    return [{"role": "system", "content": instruction}, {"role": "user", "content": user}]
