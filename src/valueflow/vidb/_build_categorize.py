"""Running a judge panel down a theory's hierarchy (the optional first step of a build)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from valueflow.errors import ConfigError
from valueflow.vidb._categorize import (
    NEUTRAL,
    AcceptanceRule,
    LevelDecision,
    Vote,
    aggregate_votes,
    categorization_messages,
    categorization_schema,
    parse_vote,
)

if TYPE_CHECKING:
    from valueflow.llm import LLMClient
    from valueflow.theories import Theory, ValueNode

__all__ = ["CategoryResult", "PanelCategorizer"]


@dataclass(frozen=True)
class CategoryResult:
    """Where the panel placed one text.

    Attributes:
        path: Accepted node ids from the top level down (empty: nothing accepted).
        direction: Whether the text supports or opposes the deepest accepted node
            (``None``: the panel was split on it, or nothing was accepted).
        stop: Why the descent ended: ``"leaf"``, ``"neutral"``, ``"no_agreement"`` or
            ``"max_depth"``.
        levels: The panel's decision at each level visited (with vote counts).
    """

    path: tuple[str, ...]
    direction: str | None
    stop: str
    levels: tuple[LevelDecision, ...]

    @property
    def node(self) -> str | None:
        """The deepest accepted node, or ``None``."""
        return self.path[-1] if self.path else None

    def is_about(self, value_id: str, theory: Theory) -> bool:
        """True when the text was placed at ``value_id`` or below it."""
        if not self.path:
            return False
        return value_id in self.path or value_id in {a.id for a in theory.ancestors(self.path[-1])}

    def votes_summary(self) -> str:
        """Vote counts per level, e.g. ``benevolence 6/7 > caring 5/7``."""
        parts = []
        for d in self.levels:
            total = sum(d.counts.values())
            top = d.choice or "none"
            n = d.counts.get(d.choice, 0) if d.choice else max(d.counts.values(), default=0)
            parts.append(f"{top.split(':')[-1]} {n}/{total}")
        return " > ".join(parts)


class PanelCategorizer:
    """A panel of LLMs that votes a text down a theory's hierarchy, level by level.

    Args:
        panel: One :class:`~valueflow.llm.LLMClient` per member (their caches make a rerun
            free). Members should be different models: the same model twice at temperature
            0 gives the same answer twice, which is one opinion counted twice.
        rule: The acceptance rule (default: :meth:`AcceptanceRule.for_panel`).
        max_depth: Stop after this many levels (default: the theory's depth).
        allow_same_model: Accept a model more than once; each repeat then samples at
            ``temperature`` with its own ``sample_index`` (its own, distinct opinion).
        temperature: Sampling temperature of repeated members.
        max_tokens: Tokens per answer.
    """

    def __init__(
        self,
        panel: Sequence[LLMClient],
        rule: AcceptanceRule | None = None,
        *,
        max_depth: int | None = None,
        allow_same_model: bool = False,
        temperature: float = 0.7,
        max_tokens: int = 48,
    ) -> None:
        if not panel:
            raise ConfigError("a categorisation panel needs at least one judge",
                              hint="pass --panel SPEC once per panel member")
        specs = [c.backend.spec for c in panel]
        dupes = sorted({s for s in specs if specs.count(s) > 1})
        if dupes and not allow_same_model:
            raise ConfigError(
                f"the panel lists {', '.join(dupes)} more than once; at temperature 0 a model "
                "repeats its own answer, so its vote would count twice",
                hint="use different models, or allow the same model explicitly "
                "(--panel-allow-same) to sample it several times",
            )
        self.panel = list(panel)
        self.rule = rule or AcceptanceRule.for_panel(len(panel))
        if self.rule.min_agree > len(panel) and self.rule.min_margin is None:
            raise ConfigError(
                f"min_agree={self.rule.min_agree} can never be met by {len(panel)} judges",
                hint="lower --min-agree or add a --min-margin",
            )
        self.max_depth = max_depth
        self.temperature = temperature
        self.max_tokens = max_tokens
        seen: dict[str, int] = {}
        self._sample: list[int] = []
        for s in specs:
            self._sample.append(seen.get(s, 0))
            seen[s] = seen.get(s, 0) + 1

    def spec(self) -> dict[str, Any]:
        """The panel's settings, for the run record."""
        return {"panel": [c.backend.spec for c in self.panel], "min_agree": self.rule.min_agree,
                "min_margin": self.rule.min_margin, "max_depth": self.max_depth}

    def _request(self, member: int, text: str, theory: Theory, parent: ValueNode | None,
                 children: Sequence[ValueNode]) -> Any:
        from valueflow.llm import ChatRequest

        repeat = self._sample[member]
        return ChatRequest(
            messages=categorization_messages(text, theory, parent, children),
            max_tokens=self.max_tokens,
            temperature=self.temperature if repeat else 0.0,
            sample_index=repeat,
            json_schema=categorization_schema(len(children)),
        )

    async def categorize(self, texts: Sequence[str], theory: Theory, *,
                         progress: bool = False) -> list[CategoryResult]:
        """Categorise every text; all texts at one level are sent to all members at once."""
        depth = min(self.max_depth or theory.depth, theory.depth)
        paths: list[list[str]] = [[] for _ in texts]
        levels: list[list[LevelDecision]] = [[] for _ in texts]
        dirs: list[str | None] = [None] * len(texts)
        stops: list[str | None] = [None] * len(texts)
        active = list(range(len(texts)))
        for _level in range(depth):
            if not active:
                break
            options: dict[int, tuple[ValueNode | None, list[ValueNode]]] = {}
            for t in active:
                parent = theory.node(paths[t][-1]) if paths[t] else None
                kids = theory.children(parent.id) if parent else theory.roots()
                options[t] = (parent, kids)
            answers = await asyncio.gather(*(
                client.generate(
                    [self._request(m, texts[t], theory, *options[t]) for t in active],
                    progress=progress,
                )
                for m, client in enumerate(self.panel)
            ))
            still: list[int] = []
            for pos, t in enumerate(active):
                kids = options[t][1]
                votes = [
                    parse_vote(res[pos].text, kids) if res[pos].ok else Vote(None)
                    for res in answers
                ]
                decision = aggregate_votes(votes, self.rule)
                levels[t].append(decision)
                if not decision.accepted:
                    stops[t] = "no_agreement"
                elif decision.choice == NEUTRAL:
                    stops[t] = "neutral"
                else:
                    assert decision.choice is not None
                    paths[t].append(decision.choice)
                    dirs[t] = decision.direction
                    if not theory.children(decision.choice):
                        stops[t] = "leaf"
                    else:
                        still.append(t)
            active = still
        return [
            CategoryResult(tuple(paths[t]), dirs[t] if paths[t] else None,
                           stops[t] or "max_depth", tuple(levels[t]))
            for t in range(len(texts))
        ]
