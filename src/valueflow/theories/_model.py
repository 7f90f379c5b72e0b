"""The typed objects a value theory is made of: nodes, theories and cross-theory anchors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from valueflow.errors import UnknownNameError, close_matches

__all__ = ["PHRASING_LEVELS", "Anchor", "Theory", "ValueNode", "normalize_name"]

#: The steering levels a phrasing exists for: -2 strongly opposes, +2 strongly values.
PHRASING_LEVELS: tuple[int, ...] = (-2, -1, 0, 1, 2)

_NON_WORD = re.compile(r"[^0-9a-z:]+")


def normalize_name(name: str) -> str:
    """Fold a value name for lookup: lower case; spaces, ``-``, ``/``, ``_``, dashes → ``_``.

    ``"Care/Harm"``, ``"care-harm"`` and ``"Care_Harm"`` all become ``"care_harm"``.
    The ``:`` between a theory and a node is kept.
    """
    folded = _NON_WORD.sub("_", name.strip().lower())
    folded = re.sub(r"_*:_*", ":", folded)
    return folded.strip("_")


class ValueNode(BaseModel):
    """One value, foundation, duty or right of a theory."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Canonical id ``theory:node``, e.g. ``schwartz:benevolence``."""
    theory: str
    """Key of the theory the node belongs to, e.g. ``schwartz``."""
    node: str
    """The node's snake_case id inside its theory, e.g. ``benevolence``."""
    name: str
    """Display name, e.g. ``Benevolence`` or ``Care/Harm``."""
    definition: str
    """A short academic definition of the value."""
    parents: tuple[str, ...] = ()
    """Canonical ids of the node's parents; empty for a top-level node."""
    level: int = 1
    """Depth in the hierarchy: 1 is the top; a node with several parents sits below the deepest."""
    aliases: tuple[str, ...] = ()
    """Other names the node is looked up by."""
    judge_definition: str | None = None
    """For evaluation values: what supporting and opposing the value looks like in a text."""
    phrasings: dict[int, str] = Field(default_factory=dict)
    """For evaluation values: second-person steering instructions for levels -2..2."""

    @property
    def is_evaluation_ready(self) -> bool:
        """True when the node has a judge definition and all five steering phrasings."""
        return self.judge_definition is not None and all(
            lvl in self.phrasings for lvl in PHRASING_LEVELS
        )

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.id


class Anchor(BaseModel):
    """A concept shared by several theories, linking their nodes (HiVES trains on these)."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Snake_case id of the anchor, e.g. ``caring_for_close_others``."""
    name: str
    """Display name."""
    description: str
    """One sentence saying what the shared concept is."""
    members: tuple[str, ...]
    """Canonical ids of the linked nodes, from at least two theories."""

    @property
    def theories(self) -> tuple[str, ...]:
        """The theories the anchor's members come from, in first-seen order."""
        return tuple(dict.fromkeys(m.split(":", 1)[0] for m in self.members))


class Theory(BaseModel):
    """A value theory: a named hierarchy (a DAG) of nodes with definitions."""

    model_config = ConfigDict(frozen=True)

    key: str
    """Short snake_case key, the prefix of canonical ids (``schwartz``)."""
    name: str
    """Display name (``Schwartz's refined theory of basic human values``)."""
    label: str
    """What one node is called: ``Value``, ``Foundation``, ``Duty``, ``Right``."""
    description: str = ""
    """A few sentences about the theory."""
    aliases: tuple[str, ...] = ()
    """Other keys the theory is known by (``pvq``)."""
    nodes: tuple[ValueNode, ...] = ()
    """All nodes, parents before children."""
    anchors: tuple[Anchor, ...] = ()
    """Cross-theory anchors shipped with this theory's file (user theories only)."""
    source: str | None = None
    """The file the theory was read from, if any."""

    _by_id: dict[str, ValueNode] = PrivateAttr(default_factory=dict)
    _children: dict[str, tuple[ValueNode, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        kids: dict[str, list[ValueNode]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for p in n.parents:
                kids.setdefault(p, []).append(n)
        self._by_id = {n.id: n for n in self.nodes}
        self._children = {k: tuple(v) for k, v in kids.items()}

    # -- access -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[ValueNode]:  # type: ignore[override]
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, str) and self._canonical(node_id) in self._by_id

    def _canonical(self, node_id: str) -> str:
        return node_id if ":" in node_id else f"{self.key}:{node_id}"

    def node(self, node_id: str) -> ValueNode:
        """The node with canonical id ``theory:node`` or bare node id ``node``."""
        cid = self._canonical(node_id)
        by_id = self._by_id
        if cid not in by_id:
            hits = close_matches(cid, by_id)
            raise UnknownNameError(
                f"{self.key!r} has no node {node_id!r}",
                f"did you mean {', '.join(hits)}?" if hits else
                f"`valueflow theories show {self.key}` lists its nodes",
            )
        return by_id[cid]

    __getitem__ = node

    def roots(self) -> list[ValueNode]:
        """The top-level nodes (level 1)."""
        return [n for n in self.nodes if not n.parents]

    def leaves(self) -> list[ValueNode]:
        """Nodes without children."""
        return [n for n in self.nodes if not self._children[n.id]]

    def at_level(self, level: int) -> list[ValueNode]:
        """The nodes at depth ``level`` (1 = top)."""
        return [n for n in self.nodes if n.level == level]

    @property
    def depth(self) -> int:
        """The deepest level of the hierarchy."""
        return max((n.level for n in self.nodes), default=0)

    def children(self, node_id: str) -> list[ValueNode]:
        """The direct children of a node, in file order."""
        return list(self._children[self.node(node_id).id])

    def ancestors(self, node_id: str) -> list[ValueNode]:
        """Every ancestor of a node (through all its parents), top level first."""
        seen: dict[str, ValueNode] = {}
        stack = list(self.node(node_id).parents)
        while stack:
            pid = stack.pop()
            if pid not in seen:
                seen[pid] = self.node(pid)
                stack.extend(seen[pid].parents)
        order = {n.id: i for i, n in enumerate(self.nodes)}
        return sorted(seen.values(), key=lambda n: (n.level, order[n.id]))

    def path(self, node_id: str) -> list[ValueNode]:
        """The chain from a top-level node down to ``node_id``, through each first parent."""
        chain = [self.node(node_id)]
        while chain[-1].parents:
            chain.append(self.node(chain[-1].parents[0]))
        return chain[::-1]

    def descendants(self, node_id: str) -> list[ValueNode]:
        """Every node below ``node_id``, in file order."""
        found: set[str] = set()
        stack = [self.node(node_id)]
        while stack:
            for child in self.children(stack.pop().id):
                if child.id not in found:
                    found.add(child.id)
                    stack.append(child)
        return [n for n in self.nodes if n.id in found]
