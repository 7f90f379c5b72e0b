"""Read theory and anchor files (YAML or JSON) and check them, naming the file and node at fault.

A theory file is a mapping::

    key: my_theory            # snake_case; the prefix of canonical ids
    name: My theory of values
    label: Value              # what one node is called
    description: ...          # optional
    aliases: [mine]           # optional, other keys for the theory
    nodes:                    # a list (or a mapping id -> fields)
      - id: honesty
        name: Honesty
        definition: Telling the truth and ...
        parents: []           # node ids of this theory (bare or "my_theory:...")
        aliases: [truthfulness]
        judge_definition: ...                       # optional
        phrasings: {-2: ..., -1: ..., 0: ..., 1: ..., 2: ...}   # optional, all five or none
    anchors:                  # optional cross-theory anchors
      - {id: truth, name: Truth, description: ..., members: [my_theory:honesty, ross:fidelity]}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from valueflow.errors import DataError, close_matches
from valueflow.theories._model import PHRASING_LEVELS, Anchor, Theory, ValueNode

__all__ = ["parse_anchors", "parse_theory", "read_structured_file"]

# libyaml's loader when available: the built-in data loads several times faster.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_THEORY_FIELDS = {"key", "name", "label", "description", "aliases", "nodes", "anchors"}
_NODE_FIELDS = {"id", "name", "definition", "parents", "aliases", "judge_definition", "phrasings"}
_ANCHOR_FIELDS = {"id", "name", "description", "members"}


def read_structured_file(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML or JSON file (JSON by a ``.json`` suffix, YAML otherwise)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read theory file {str(p)!r}: {exc.strerror or exc}",
                        "check the path; theory files are YAML or JSON") from exc
    except UnicodeDecodeError:
        raise DataError(f"{p} is not a text file (not UTF-8); theory files are YAML or JSON",
                        "see the theory file format in `valueflow theories validate --help`"
                        ) from None
    try:
        if p.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.load(text, Loader=_YAML_LOADER)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: "
                        f"{first}",
                        "fix the syntax; see `valueflow theories validate --help`") from exc


def _fail(source: str, where: str, problem: str, hint: str | None = None) -> DataError:
    return DataError(f"{source}: {where}: {problem}",
                     hint or "see the theory file format in `valueflow theories validate --help`")


def _text(raw: Mapping[str, Any], field: str, source: str, where: str,
          *, required: bool = True) -> str | None:
    value = raw.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        what = "is missing" if value is None else ("is empty" if isinstance(value, str)
                                                     else f"must be text, not {type(value).__name__}")
        raise _fail(source, where, f"{field!r} {what}")
    return " ".join(value.split())


def _str_list(raw: Mapping[str, Any], field: str, source: str, where: str) -> list[str]:
    value = raw.get(field)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(source, where, f"{field!r} must be a list of non-empty strings")
    return [v.strip() for v in value]


def _check_fields(raw: Any, allowed: set[str], source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _fail(source, where, f"expected a mapping, got {type(raw).__name__}")
    extra = sorted(set(map(str, raw)) - allowed)
    if extra:
        hits = close_matches(extra[0], allowed)
        raise _fail(source, where, f"unknown field(s) {', '.join(map(repr, extra))}",
                    f"did you mean {hits[0]!r}?" if hits else f"allowed: {', '.join(sorted(allowed))}")
    return raw


def _phrasings(raw: Mapping[str, Any], source: str, where: str) -> dict[int, str]:
    value = raw.get("phrasings")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(source, where, "'phrasings' must map levels -2..2 to text")
    out: dict[int, str] = {}
    for k, v in value.items():
        try:
            lvl = int(k)
        except (TypeError, ValueError):
            lvl = 99
        if lvl not in PHRASING_LEVELS:
            raise _fail(source, where, f"phrasing level {k!r} is not one of -2, -1, 0, 1, 2")
        if not isinstance(v, str) or not v.strip():
            raise _fail(source, where, f"phrasing for level {lvl} is empty")
        out[lvl] = " ".join(v.split())
    missing = [lvl for lvl in PHRASING_LEVELS if lvl not in out]
    if missing:
        raise _fail(source, where, f"phrasings lack level(s) {', '.join(map(str, missing))}",
                    "give all five levels -2, -1, 0, 1, 2 or none")
    return out


def _node_entries(raw_nodes: Any, source: str) -> list[tuple[str, Any]]:
    """Normalise the list or mapping form of ``nodes`` to (position label, fields) pairs."""
    if isinstance(raw_nodes, Mapping):
        entries: list[tuple[str, Any]] = []
        for nid, fields in raw_nodes.items():
            if fields is None:
                fields = {}
            if not isinstance(fields, Mapping):
                raise _fail(source, f"node {nid!r}", "expected a mapping of fields")
            entries.append((f"node {nid!r}", {"id": nid, **fields}))
        return entries
    if isinstance(raw_nodes, list):
        out: list[tuple[str, Any]] = []
        for i, fields in enumerate(raw_nodes):
            label = (f"node {fields.get('id')!r}" if isinstance(fields, Mapping) and fields.get("id")
                     else f"node #{i + 1}")
            out.append((label, fields))
        return out
    raise _fail(source, "'nodes'", "must be a list of nodes (or a mapping id -> fields)")


def parse_theory(raw: Any, source: str, reserved: Iterable[str] = ()) -> Theory:
    """Check a parsed theory file and build its :class:`Theory`.

    Args:
        raw: The parsed YAML/JSON document.
        source: The file name, used in error messages.
        reserved: Theory keys and aliases already taken (built-in theories); using one is an error.

    Raises:
        DataError: On malformed structure, bad or duplicate ids, empty definitions, unknown
            parents, cycles or a key clash; the message names the file and the node.
    """
    raw = _check_fields(raw, _THEORY_FIELDS, source, "theory")
    key = _text(raw, "key", source, "theory")
    assert key is not None
    if not _ID.match(key):
        raise _fail(source, "theory", f"key {key!r} must be snake_case (a-z, 0-9, _)")
    aliases = [a.lower() for a in _str_list(raw, "aliases", source, "theory")]
    taken = {r.lower() for r in reserved}
    clash = [k for k in [key, *aliases] if k in taken]
    if clash:
        raise _fail(source, "theory", f"key or alias {clash[0]!r} clashes with a built-in theory",
                    "pick another key for your theory")
    name = _text(raw, "name", source, "theory")
    label = _text(raw, "label", source, "theory")
    description = _text(raw, "description", source, "theory", required=False) or ""
    if "nodes" not in raw or not raw["nodes"]:
        raise _fail(source, "theory", "'nodes' is missing or empty")

    specs: dict[str, dict[str, Any]] = {}
    for where, fields in _node_entries(raw["nodes"], source):
        fields = _check_fields(fields, _NODE_FIELDS, source, where)
        nid = fields.get("id")
        if not isinstance(nid, str) or not _ID.match(nid):
            raise _fail(source, where, f"id {nid!r} must be snake_case text (a-z, 0-9, _)")
        where = f"node {nid!r}"
        if nid in specs:
            raise _fail(source, where, "duplicate id", "each node id may appear once")
        parents = []
        for p in _str_list(fields, "parents", source, where):
            pkey, _, pnode = p.rpartition(":")
            if pkey and pkey != key:
                raise _fail(source, where, f"parent {p!r} belongs to another theory",
                            "parents must be nodes of the same theory")
            parents.append(pnode)
        specs[nid] = {
            "name": _text(fields, "name", source, where, required=False)
            or nid.replace("_", " ").capitalize(),
            "definition": _text(fields, "definition", source, where),
            "parents": parents,
            "aliases": _str_list(fields, "aliases", source, where),
            "judge_definition": _text(fields, "judge_definition", source, where, required=False),
            "phrasings": _phrasings(fields, source, where),
        }
    for nid, spec in specs.items():
        for p in spec["parents"]:
            if p not in specs:
                hits = close_matches(p, specs)
                raise _fail(source, f"node {nid!r}", f"unknown parent {p!r}",
                            f"did you mean {hits[0]!r}?" if hits else "parents must be node ids "
                            "defined in the same file")
        if len(set(spec["parents"])) != len(spec["parents"]):
            raise _fail(source, f"node {nid!r}", "a parent is listed twice")

    levels = _levels(specs, source)
    order = {nid: i for i, nid in enumerate(specs)}
    nodes = tuple(
        ValueNode(
            id=f"{key}:{nid}", theory=key, node=nid, name=spec["name"],
            definition=spec["definition"], parents=tuple(f"{key}:{p}" for p in spec["parents"]),
            level=levels[nid], aliases=tuple(spec["aliases"]),
            judge_definition=spec["judge_definition"], phrasings=spec["phrasings"],
        )
        for nid, spec in sorted(specs.items(), key=lambda kv: (levels[kv[0]], order[kv[0]]))
    )
    anchors = parse_anchors(raw.get("anchors") or [], source) if "anchors" in raw else ()
    return Theory(key=key, name=name or key, label=label or "Value", description=description,
                  aliases=tuple(aliases), nodes=nodes, anchors=anchors, source=source)


def _levels(specs: Mapping[str, Mapping[str, Any]], source: str) -> dict[str, int]:
    """Depth of every node (1 + deepest parent); raises on a cycle, naming it."""
    levels: dict[str, int] = {}
    visiting: list[str] = []

    def visit(nid: str) -> int:
        if nid in levels:
            return levels[nid]
        if nid in visiting:
            cycle = [*visiting[visiting.index(nid):], nid]
            raise _fail(source, f"node {nid!r}", f"cycle in parents: {' -> '.join(cycle)}",
                        "a node may not be its own ancestor")
        visiting.append(nid)
        level = 1 + max((visit(p) for p in specs[nid]["parents"]), default=0)
        visiting.pop()
        levels[nid] = level
        return level

    for nid in specs:
        visit(nid)
    return levels


def parse_anchors(raw: Any, source: str) -> tuple[Anchor, ...]:
    """Check the structure of a list of anchors (membership is checked by the registry)."""
    if isinstance(raw, Mapping) and set(raw) == {"anchors"}:
        raw = raw["anchors"]
    if not isinstance(raw, list):
        raise _fail(source, "'anchors'", "must be a list of anchors")
    out: list[Anchor] = []
    seen: set[str] = set()
    for i, fields in enumerate(raw):
        where = (f"anchor {fields.get('id')!r}" if isinstance(fields, Mapping) and fields.get("id")
                 else f"anchor #{i + 1}")
        fields = _check_fields(fields, _ANCHOR_FIELDS, source, where)
        aid = fields.get("id")
        if not isinstance(aid, str) or not _ID.match(aid):
            raise _fail(source, where, f"id {aid!r} must be snake_case text")
        if aid in seen:
            raise _fail(source, where, "duplicate anchor id")
        seen.add(aid)
        members = _str_list(fields, "members", source, where)
        if len(set(members)) != len(members):
            raise _fail(source, where, "a member is listed twice")
        out.append(Anchor(
            id=aid,
            name=_text(fields, "name", source, where, required=False) or aid.replace("_", " "),
            description=_text(fields, "description", source, where) or "",
            members=tuple(members),
        ))
    return tuple(out)
