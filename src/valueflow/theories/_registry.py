"""The registry of theories: built-in data plus user theory files, lookup and anchors."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path

from valueflow.errors import DataError, UnknownNameError, close_matches
from valueflow.theories._load import parse_anchors, parse_theory, read_structured_file
from valueflow.theories._model import Anchor, Theory, ValueNode, normalize_name

__all__ = [
    "BUILTIN_THEORIES",
    "EVALUATION_VALUE_IDS",
    "THEORY_FILES_ENV",
    "TheoryRegistry",
    "evaluation_values",
    "get_registry",
    "load_theory_file",
    "resolve_value",
    "validate_theory_file",
]

#: The built-in theories, in display order; each is ``data/<key>.yaml``.
BUILTIN_THEORIES: tuple[str, ...] = ("schwartz", "mft", "ross", "rights")

#: Environment variable listing user theory files, separated by ``os.pathsep``.
THEORY_FILES_ENV = "VALUEFLOW_THEORY_FILES"

#: The 32 values ValueFlow steers and evaluates, in a fixed order.
EVALUATION_VALUE_IDS: tuple[str, ...] = (
    *(f"schwartz:{v}" for v in (
        "benevolence", "universalism", "self_direction", "stimulation", "hedonism",
        "achievement", "power", "face", "security", "conformity", "tradition", "humility")),
    *(f"mft:{v}" for v in (
        "care_harm", "fairness_cheating", "loyalty_betrayal", "authority_subversion",
        "sanctity_degradation", "liberty_oppression")),
    *(f"ross:{v}" for v in (
        "fidelity", "reparation", "gratitude", "justice", "beneficence", "self_improvement",
        "non_maleficence")),
    *(f"rights:{v}" for v in (
        "civil_rights", "political_rights", "economic_rights", "social_rights",
        "cultural_rights", "national_solidarity_rights", "social_group_solidarity_rights")),
)


class TheoryRegistry:
    """All known theories and anchors, with name lookup.

    Args:
        theories: The theories, in display order; keys and aliases must be unique.
        anchors: Cross-theory anchors; every member must be a node of these theories.

    Raises:
        DataError: On a clash of theory keys or an anchor naming an unknown node.
    """

    def __init__(self, theories: Iterable[Theory], anchors: Iterable[Anchor] = ()) -> None:
        self.theories: dict[str, Theory] = {}
        self._theory_keys: dict[str, str] = {}
        for t in theories:
            for k in (t.key, *t.aliases):
                nk = normalize_name(k)
                if nk in self._theory_keys:
                    raise DataError(
                        f"{t.source or t.key}: theory key or alias {k!r} is already used by "
                        f"theory {self._theory_keys[nk]!r}", "pick another key for your theory")
                self._theory_keys[nk] = t.key
            self.theories[t.key] = t
        self._by_id: dict[str, ValueNode] = {n.id: n for t in self.theories.values() for n in t}
        # normalised name -> [(tier, node)]: tier 0 = node id, tier 1 = display name or alias.
        self._index: dict[str, list[tuple[int, ValueNode]]] = {}
        for node in self._by_id.values():
            keys = [(0, node.node), (1, node.name), *((1, a) for a in node.aliases)]
            for tier, k in keys:
                bucket = self._index.setdefault(normalize_name(k), [])
                if all(n.id != node.id for _, n in bucket):
                    bucket.append((tier, node))
        all_anchors = [*anchors, *(a for t in self.theories.values() for a in t.anchors)]
        self.anchors: tuple[Anchor, ...] = tuple(all_anchors)
        self._check_anchors()

    def _check_anchors(self) -> None:
        seen: set[str] = set()
        for a in self.anchors:
            if a.id in seen:
                raise DataError(f"anchor {a.id!r} is defined twice", "anchor ids must be unique")
            seen.add(a.id)
            for m in a.members:
                if m not in self._by_id:
                    hits = close_matches(m, self._by_id)
                    raise DataError(f"anchor {a.id!r}: unknown member {m!r}",
                                    f"did you mean {', '.join(hits)}?" if hits
                                    else "members are canonical ids like 'schwartz:benevolence'")
            if len(a.theories) < 2:
                raise DataError(f"anchor {a.id!r} links only theory {a.theories[0]!r}",
                                "an anchor links nodes of at least two theories")

    # -- theories -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Theory]:
        return iter(self.theories.values())

    def __len__(self) -> int:
        return len(self.theories)

    def __contains__(self, value_id: object) -> bool:
        return isinstance(value_id, str) and value_id in self._by_id

    def theory(self, name: str) -> Theory:
        """The theory with key or alias ``name`` (``pvq`` → ``schwartz``)."""
        key = self._theory_keys.get(normalize_name(name))
        if key is None:
            hits = close_matches(normalize_name(name), self._theory_keys)
            raise UnknownNameError(
                f"unknown theory {name!r}",
                (f"did you mean {', '.join(dict.fromkeys(self._theory_keys[h] for h in hits))}? "
                 if hits else "") + f"known theories: {', '.join(self.theories)}")
        return self.theories[key]

    def nodes(self) -> list[ValueNode]:
        """Every node of every theory."""
        return list(self._by_id.values())

    def get(self, value_id: str) -> ValueNode:
        """The node with this canonical id; any other spelling goes through :meth:`resolve`."""
        if value_id not in self._by_id:
            return self.resolve(value_id)  # raises with close matches, or finds a spelling
        return self._by_id[value_id]

    def theory_of(self, node: ValueNode | str) -> Theory:
        """The theory a node (or canonical id) belongs to."""
        node_id = node.id if isinstance(node, ValueNode) else self.resolve(node).id
        return self.theories[node_id.split(":", 1)[0]]

    # -- lookup -------------------------------------------------------------------------
    def resolve(self, name: str) -> ValueNode:
        """Find a value by canonical id, theory-alias prefix, bare id, display name or alias.

        Case, spaces, ``-``, ``/`` and ``_`` do not matter. A bare name that several
        theories share (``tradition``, ``justice``) must be qualified (``mft:tradition``).

        Raises:
            UnknownNameError: Unknown (with up to 3 close matches) or ambiguous (with the
                qualified choices).
        """
        if isinstance(name, ValueNode):
            return self.get(name.id)
        if not isinstance(name, str) or not normalize_name(name):
            raise UnknownNameError(f"invalid value name {name!r}",
                                   "give a value id like 'schwartz:benevolence'")
        key = normalize_name(name)
        if ":" in key:
            prefix, rest = key.split(":", 1)
            rest = rest.replace(":", "_")
            if prefix in self._theory_keys:
                return self._lookup(name, rest, [self._theory_keys[prefix]])
            # "benevolence:caring" is the sub-value benevolence_caring in older files.
            flat = key.replace(":", "_")
            if flat in self._index:
                return self._lookup(name, flat, list(self.theories))
            hits = close_matches(prefix, self._theory_keys)
            raise UnknownNameError(
                f"unknown theory {prefix!r} in value name {name!r}",
                (f"did you mean {', '.join(dict.fromkeys(self._theory_keys[h] for h in hits))}? "
                 if hits else "") + f"known theories: {', '.join(self.theories)}")
        return self._lookup(name, key, list(self.theories))

    def _lookup(self, raw: str, key: str, theories: Sequence[str]) -> ValueNode:
        hits = [(tier, n) for tier, n in self._index.get(key, []) if n.theory in theories]
        best = min((tier for tier, _ in hits), default=None)
        found = [n for tier, n in hits if tier == best]
        if len(found) == 1:
            return found[0]
        if found:
            choices = ", ".join(n.id for n in found)
            raise UnknownNameError(
                f"value name {raw!r} is ambiguous: it could be {choices}",
                f"qualify it with its theory, e.g. {found[0].id!r}")
        candidates: dict[str, str] = {}
        for k, bucket in self._index.items():
            for _, n in bucket:
                if n.theory in theories:
                    candidates.setdefault(k, n.id)
                    candidates.setdefault(normalize_name(n.id), n.id)
        # The same name in another theory is the likeliest intent ("mft:benevolence").
        elsewhere = [n.id for _, n in self._index.get(key, []) if n.theory not in theories]
        near = close_matches(key, candidates, n=10)
        ids = list(dict.fromkeys([*elsewhere, *(candidates[h] for h in near)]))[:3]
        where = f" in theory {theories[0]!r}" if len(theories) == 1 else ""
        raise UnknownNameError(
            f"unknown value {raw!r}{where}",
            (f"did you mean {', '.join(ids)}? " if ids else "")
            + "`valueflow theories list` shows the theories and their values")

    def ambiguous_names(self) -> dict[str, list[str]]:
        """Bare names that need a theory prefix, with the canonical ids they could mean."""
        out: dict[str, list[str]] = {}
        for k, bucket in self._index.items():
            best = min(tier for tier, _ in bucket)
            ids = [n.id for tier, n in bucket if tier == best]
            if len(ids) > 1:
                out[k] = ids
        return out

    # -- evaluation values and anchors ---------------------------------------------------
    def evaluation_values(self) -> list[ValueNode]:
        """The 32 values ValueFlow steers and evaluates (each with judge definition and phrasings)."""
        return [self._by_id[i] for i in EVALUATION_VALUE_IDS if i in self._by_id]

    def anchors_for(self, name: str | ValueNode) -> list[Anchor]:
        """The anchors a value belongs to."""
        node = self.resolve(name) if isinstance(name, str) else name
        return [a for a in self.anchors if node.id in a.members]

    def with_theory(self, theory: Theory) -> TheoryRegistry:
        """A new registry with one more theory (and its anchors)."""
        owned = {a.id for t in self.theories.values() for a in t.anchors}
        shared = [a for a in self.anchors if a.id not in owned]
        return TheoryRegistry([*self.theories.values(), theory], shared)


# -- loading ------------------------------------------------------------------------------
def _data_dir() -> Path:
    return Path(str(resources.files("valueflow.theories").joinpath("data")))


def _builtin_theories() -> list[Theory]:
    out = []
    for key in BUILTIN_THEORIES:
        path = _data_dir() / f"{key}.yaml"
        out.append(parse_theory(read_structured_file(path), f"{key}.yaml"))
    return out


_lock = threading.Lock()
_builtin: TheoryRegistry | None = None
_cache: dict[tuple[str, ...], TheoryRegistry] = {}


def _builtin_registry() -> TheoryRegistry:
    global _builtin
    with _lock:
        if _builtin is None:
            anchors = parse_anchors(read_structured_file(_data_dir() / "anchors.yaml"),
                                    "anchors.yaml")
            reg = TheoryRegistry(_builtin_theories(), anchors)
            missing = [i for i in EVALUATION_VALUE_IDS
                       if i not in reg or not reg.get(i).is_evaluation_ready]
            if missing:
                raise DataError(f"built-in theory data lacks evaluation values: {missing}",
                                "each needs a judge_definition and five phrasings")
            _builtin = reg
        return _builtin


def load_theory_file(path: str | os.PathLike[str]) -> Theory:
    """Read and check a user theory file (YAML or JSON; format in ``valueflow.theories._load``).

    Raises:
        DataError: Naming the file and node: malformed structure, duplicate id, empty
            definition, unknown parent, cycle, or a key that clashes with a built-in theory.
    """
    builtin = _builtin_registry()
    reserved = [k for t in builtin for k in (t.key, *t.aliases)]
    return parse_theory(read_structured_file(path), str(path), reserved=reserved)


def validate_theory_file(path: str | os.PathLike[str]) -> Theory:
    """Check a user theory file completely, anchors included; return the theory if it is valid."""
    theory = load_theory_file(path)
    _add_user_theory(_builtin_registry(), theory, path)
    return theory


def _add_user_theory(reg: TheoryRegistry, theory: Theory,
                     path: str | os.PathLike[str]) -> TheoryRegistry:
    """``reg.with_theory(theory)``, with errors that name the file they come from."""
    try:
        return reg.with_theory(theory)
    except DataError as exc:
        if exc.message.startswith(str(path)):
            raise
        raise DataError(f"{path}: {exc.message}", exc.hint) from exc


def get_registry(*, reload: bool = False) -> TheoryRegistry:
    """The registry of built-in theories plus the files listed in ``$VALUEFLOW_THEORY_FILES``.

    Cached per value of the environment variable; ``reload=True`` rereads the user files.
    """
    files = tuple(p for p in os.environ.get(THEORY_FILES_ENV, "").split(os.pathsep) if p.strip())
    with _lock:
        if not reload and files in _cache:
            return _cache[files]
    reg = _builtin_registry()
    for f in files:
        reg = _add_user_theory(reg, load_theory_file(f), f)
    with _lock:
        _cache[files] = reg
    return reg


def resolve_value(name: str) -> ValueNode:
    """Find a value in :func:`get_registry` by id, name or alias (see :meth:`TheoryRegistry.resolve`)."""
    return get_registry().resolve(name)


def evaluation_values() -> list[ValueNode]:
    """The 32 evaluation values, each with a judge definition and steering phrasings."""
    return get_registry().evaluation_values()
