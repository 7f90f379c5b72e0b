"""Chat-template helpers shared by the local backends.

Some chat templates (Gemma, Mistral's older ones) have no system role: they either raise
on a system message or silently drop it. A system prompt carries the steering instruction
or the judge's rubric, so losing it would corrupt a run without any error. We probe the
template once and, when the system role is not rendered, merge the system text into the
first user message instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["merge_system", "template_supports_system"]

_PROBE = "VALUEFLOW-SYSTEM-PROBE-7f3a"


def merge_system(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Fold every system message into the first user message (or a new one).

    The system text comes first, separated by a blank line, so instructions keep priority.
    """
    system = [m["content"] for m in messages if m["role"] == "system" and m["content"]]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    prefix = "\n\n".join(system)
    for m in rest:
        if m["role"] == "user":
            m["content"] = f"{prefix}\n\n{m['content']}" if m["content"] else prefix
            return rest
    return [{"role": "user", "content": prefix}, *rest]


def template_supports_system(render: Callable[[list[dict[str, str]]], Any]) -> bool:
    """Whether ``render(messages)`` keeps a system message's text.

    ``render`` turns messages into the prompt string (a chat template). A template that
    raises on the system role, or renders without the system text, does not support it.
    """
    probe = [{"role": "system", "content": _PROBE}, {"role": "user", "content": "hello"}]
    try:
        out = render(probe)
    except Exception:
        return False
    return _PROBE in str(out)
